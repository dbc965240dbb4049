"""The Athena compaction engine on this machine: `python -m tools etl run --local --engine athena`.

It runs the very statements the deployed state machine sends to Athena (the plan step's `rows`, which Athena
UNLOADs, and `report`) on DuckDB over the raw bucket's day and the day before (the raw table's rows, read
as Athena reads them: tools/local/sql.py), then finishes the day with the deployed publish step's own code:
one Parquet file at the day's key, the rejects report, the summary.

A key is a name, never a path here: the objects Athena reads (`athena_reads`) go from S3 to DuckDB in memory,
each with its key as Athena's `$path`, so no key (`..`, `//`, a folder marker, a name longer than a file's)
touches this machine's file system or reads differently than on Athena.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any, Mapping

from analytics import athena_compaction_templates
from lambdas.common.layout import PREFIX, day_prefix
from lambdas.etl.athena_engine import finish_day, plan, report_row
from lambdas.etl.handler import EtlSettings
from lambdas.etl.store import list_keys, read_in_order, s3_client
from tools.local.sql import LakeFolders, LocalLake, athena_reads


def compact_day_on_duckdb(settings: EtlSettings, database: str, day: date) -> Mapping[str, Any]:
    """One day, as the Athena engine compacts it, against the S3 endpoint in AWS_ENDPOINT_URL."""
    started = time.monotonic()
    s3 = s3_client(settings.read_concurrency)
    run = plan({"date": day.isoformat()}, athena_compaction_templates(database), settings)
    read = [
        (read_day, key) for read_day in (day - timedelta(days=1), day)
        for key in list_keys(s3, settings.raw_bucket, day_prefix(read_day))
        if athena_reads(key.removeprefix(day_prefix(read_day)))
    ]
    if not read:  # no object Athena reads on either day: the report below is empty, and the day is kept
        return finish_day(s3, settings, day, [], [], started)
    # As many GETs in flight as the Lambda engine's, where Athena's readers run side by side.
    bodies = read_in_order(s3, settings.raw_bucket, (key for _, key in read), settings.read_concurrency)
    objects = [
        (read_day.isoformat(), f"s3://{settings.raw_bucket}/{key}", body)
        for (read_day, key), body in zip(read, bodies, strict=True)
    ]
    lake = LocalLake(
        LakeFolders(enriched=None, raw=None), shown_as=f"s3://{settings.raw_bucket}/{PREFIX}", raw_objects=objects
    )
    try:
        rows = lake.arrow(run["rows"], database, f"the compaction of {day}")
        _, report = lake.execute(run["report"], database, f"the report of {day}")
    finally:
        lake.close()
    return finish_day(s3, settings, day, rows.to_batches(), [report_row(list(row)) for row in report], started)

"""The Athena compaction engine on this machine: `python -m tools etl run --local --engine athena`.

It runs the very statements the deployed state machine sends to Athena (the plan step's `rows`, which Athena
UNLOADs, and `report`) on DuckDB over the raw bucket's day and the day before (the raw table's rows, read
as Athena reads them: tools/local/sql.py), then finishes the day with the deployed publish step's own code:
one Parquet file at the day's key, the rejects report, the summary.
"""

from __future__ import annotations

import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Mapping

from analytics import athena_compaction_templates
from lambdas.common.layout import PREFIX, day_prefix
from lambdas.etl.athena_engine import finish_day, plan, report_row
from lambdas.etl.handler import EtlSettings
from lambdas.etl.store import list_keys, read_in_order, s3_client
from tools.local.sql import LakeFolders, LocalLake


def compact_day_on_duckdb(settings: EtlSettings, database: str, day: date) -> Mapping[str, Any]:
    """One day, as the Athena engine compacts it, against the S3 endpoint in AWS_ENDPOINT_URL."""
    started = time.monotonic()
    s3 = s3_client(settings.read_concurrency)
    run = plan({"date": day.isoformat()}, athena_compaction_templates(database), settings)
    with tempfile.TemporaryDirectory(prefix="athena-engine-") as scratch:
        raw = Path(scratch) / "raw"
        keys = [
            key for read_day in (day - timedelta(days=1), day)
            for key in list_keys(s3, settings.raw_bucket, day_prefix(read_day))
        ]
        if not keys:  # no object on either day: the report below is empty, and the day is kept
            return finish_day(s3, settings, day, [], [], started)
        # As many GETs in flight as the Lambda engine's, where Athena's readers run side by side.
        for key, body in zip(keys, read_in_order(s3, settings.raw_bucket, keys, settings.read_concurrency)):
            target = raw / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
        lake = LocalLake(LakeFolders(enriched=None, raw=raw / PREFIX.rstrip("/")))
        try:
            rows = lake.arrow(run["rows"], database, f"the compaction of {day}")
            _, report = lake.execute(run["report"], database, f"the report of {day}")
        finally:
            lake.close()
    return finish_day(s3, settings, day, rows.to_batches(), [report_row(list(row)) for row in report], started)

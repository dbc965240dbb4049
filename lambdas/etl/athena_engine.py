"""The Athena compaction engine's two steps, around the Athena queries its state machine runs.

For a stage whose days outgrow one Lambda, Athena does the heavy part (read the raw JSON, deduplicate, flatten:
analytics/lake/compacted_day.sql, the same SQL the raw zone is queried with) and this code what a query cannot:

- `plan`: which day (the same events as the Lambda engine: `{}`, `{"date": ...}`, `{"scheduled_time": ...}`),
  a fresh run id, and the two statements: UNLOAD of the day's rows as zstd Parquet into a staging folder of its
  own (UNLOAD refuses a folder that holds anything, and a failed query leaves its files behind), and the
  report of what the day's objects became (raw_day_report.sql).
- `publish`: the staged files, in the order of their names, become the day's ONE Parquet file at its fixed key,
  put in one S3 request (an object is replaced atomically: a reader sees the old day or the new one, never half
  of it, and a re-run replaces the day); then the rejects report, the staging folder's removal, and the same
  summary and metrics as the Lambda engine. A run that fails before publishing changes nothing visible; the
  staged files of a failed attempt expire with the staging prefix's lifecycle rule.

`finish_day` is shared with the local engine (tools/local/athena_engine.py), which runs the same SQL on DuckDB.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import pyarrow as pa
import pyarrow.parquet as pq
from aws_lambda_powertools import Logger

from lambdas.common.layout import ATHENA_STAGING_PREFIX
from lambdas.etl.compact import BATCH_ROWS, DaySummary, record_reject, store_day, write_batches
from lambdas.etl.day import DAY_PLACEHOLDER, KEY_REJECT_REASON, Reject
from lambdas.etl.handler import EtlSettings, checked_day, metrics_namespace, publish_summary
from lambdas.etl.store import list_keys, s3_client


logger = Logger(service="etl")


@dataclass(frozen=True)
class ReportRow:
    """One row of raw_day_report.sql: objects of one outcome, or one rejected object and its reason."""

    outcome: str  # update, duplicate or rejected
    carries_message: bool | None
    rejected_path: str | None
    reason: str | None
    objects: int


def plan(event: Any, templates: Mapping[str, str], settings: EtlSettings, now: datetime | None = None) -> dict[str, Any]:
    """The day, a new run and the run's statements; raises for an event or a day the Lambda engine refuses too."""
    day = checked_day(event, settings, now)
    run = f"{datetime.now().strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}"
    staging_url = f"s3://{settings.enriched_bucket}/{ATHENA_STAGING_PREFIX}{day.isoformat()}/{run}/"
    rows, report = (_for_day(templates[name], day) for name in ("rows", "report"))
    return {
        "day": day.isoformat(),
        "run": run,
        "staging_url": staging_url,
        "rows": rows,
        "unload": f"UNLOAD (\n{rows}\n) TO '{staging_url}' WITH (format = 'PARQUET', compression = 'ZSTD')",
        "report": report,
    }


def _for_day(template: str, day: date) -> str:
    if DAY_PLACEHOLDER not in template:
        raise ValueError(f"a compaction template without {DAY_PLACEHOLDER} would not compact the day it is run for")
    return template.replace(DAY_PLACEHOLDER, day.isoformat())


def publish(run: Mapping[str, Any], report_execution_id: str, settings: EtlSettings) -> dict[str, Any]:
    """The staged Parquet of a finished UNLOAD as the day's file, the rejects report, and the summary."""
    import boto3

    started = time.monotonic()
    s3 = s3_client(settings.read_concurrency)
    bucket, prefix = _bucket_and_prefix(run["staging_url"])
    if bucket != settings.enriched_bucket or not prefix.startswith(ATHENA_STAGING_PREFIX):
        raise ValueError(f"a run's staging folder is in the enriched bucket's {ATHENA_STAGING_PREFIX}, not {run['staging_url']}")
    report = read_report(boto3.client("athena"), report_execution_id)
    staged = sorted(list_keys(s3, bucket, prefix))
    with tempfile.TemporaryDirectory(prefix="athena-publish-") as workdir:
        files = []
        for index, key in enumerate(staged):
            files.append(Path(workdir) / f"{index:05d}.parquet")
            s3.download_file(bucket, key, str(files[-1]))
        summary = finish_day(s3, settings, date.fromisoformat(run["day"]), staged_batches(files), report, started)
    for key in staged:
        s3.delete_object(Bucket=bucket, Key=key)
    publish_summary(summary, metrics_namespace(os.environ))
    return summary


def finish_day(
    s3: Any,
    settings: EtlSettings,
    day: date,
    batches: Iterable[pa.RecordBatch],
    report: Iterable[ReportRow],
    started: float,
) -> dict[str, Any]:
    """Write the day as the Lambda engine leaves it: its one Parquet file (or none, deleting a stale one, when the
    day has objects but no rows), its rejects report, and its summary. A day with no object at all keeps what it
    has: a backfill after the raw zone expired must not wipe a compacted day."""
    summary = DaySummary(day=day.isoformat())
    report = list(report)
    if not report:
        logger.info("empty raw partition: nothing written, nothing deleted", extra={"day": summary.day})
        summary.seconds = round(time.monotonic() - started, 3)
        return summary.as_dict()
    rejects = []
    for row in report:
        if row.outcome == "duplicate":
            summary.duplicates += row.objects
        elif row.outcome == "update":
            summary.objects_read += row.objects
            summary.skipped += 0 if row.carries_message else row.objects
        else:
            reject = Reject(_key(row.rejected_path or ""), row.reason or "rejected")
            record_reject(rejects, reject)
            summary.objects_read += 0 if reject.reason == KEY_REJECT_REASON else 1
    store_day(s3, settings.enriched_bucket, day, summary, lambda parquet: write_batches(parquet, batches), rejects)
    summary.seconds = round(time.monotonic() - started, 3)
    logger.info("day compacted", extra=summary.as_dict())
    return summary.as_dict()


def staged_batches(files: Iterable[Path]) -> Iterator[pa.RecordBatch]:
    """The rows of UNLOAD's files, one bounded batch at a time (a day may be larger than memory)."""
    for file in files:
        yield from pq.ParquetFile(file).iter_batches(batch_size=BATCH_ROWS)


def read_report(athena: Any, execution_id: str) -> list[ReportRow]:
    """raw_day_report.sql's rows from a finished query (every page; the first row repeats the column names)."""
    rows: list[ReportRow] = []
    for number, page in enumerate(athena.get_paginator("get_query_results").paginate(QueryExecutionId=execution_id)):
        for row in page["ResultSet"]["Rows"][1 if number == 0 else 0:]:
            values = [cell.get("VarCharValue") for cell in row["Data"]]
            rows.append(report_row(values))
    return rows


def report_row(values: list[Any]) -> ReportRow:
    """A report row from its five values as either engine gives them (Athena: text; DuckDB: typed)."""
    outcome, carries_message, rejected_path, reason, objects = values
    if isinstance(carries_message, str):
        carries_message = carries_message == "true"
    return ReportRow(outcome, carries_message, rejected_path, reason, int(objects))


def _key(path: str) -> str:
    """The raw object's key from Athena's `$path` (`s3://<bucket>/<key>`)."""
    return _bucket_and_prefix(path)[1]


def _bucket_and_prefix(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise ValueError(f"not an s3:// URL: {url!r}")
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key


@logger.inject_lambda_context
def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The state machine's two steps: `{"step": "plan", ...}` and `{"step": "publish", ...}`."""
    settings = EtlSettings.from_environ(os.environ)
    step = event.get("step") if isinstance(event, Mapping) else None
    if step == "plan":
        return plan(event.get("event", {}), event["templates"], settings)
    if step == "publish":
        return publish(event["plan"], event["report_execution_id"], settings)
    raise ValueError(f"the Athena engine's steps are 'plan' and 'publish', got {step!r}")

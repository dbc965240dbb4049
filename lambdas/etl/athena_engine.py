"""The Athena compaction engine's two steps, around the Athena queries its state machine runs.

For a stage whose days outgrow one Lambda, Athena does the heavy part (read the raw JSON, deduplicate, flatten:
analytics/lake/compacted_day.sql, the same SQL the raw zone is queried with) and this code what a query cannot:

- `plan`: which day (the same events as the Lambda engine: `{}`, `{"date": ...}`, `{"scheduled_time": ...}`),
  a fresh run id, and the two statements: UNLOAD of the day's rows as zstd Parquet into a staging folder of its
  own (UNLOAD refuses a folder that holds anything, and a failed query leaves its files behind), and the
  report of what the day's objects became (raw_day_report.sql).
- `publish`: the staged files, in the order of their names, become the day's ONE Parquet file at its fixed key,
  put in one S3 request (an object is replaced atomically: a reader sees the old day or the new one, never half
  of it, and a re-run replaces the day); then the rejects report, the run's summary in its staging folder, the
  staged files' removal, and the same summary and metrics as the Lambda engine. A run that fails before
  publishing changes nothing visible; the staged files of a failed attempt expire with the staging prefix's
  lifecycle rule. Publish runs once per run: it merges only its run's own folder, never fewer rows than the
  report counts, and a repeat of the step (Step Functions resends its input after a Lambda service error)
  returns the summary the first one left, changing nothing and publishing no metrics again.

`finish_day` is shared with the local engine (tools/local/athena_engine.py), which runs the same SQL on DuckDB.
"""

from __future__ import annotations

import json
import os
import re
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
from lambdas.etl.day import DAY_PLACEHOLDER, Reject, iso_date
from lambdas.etl.handler import EtlSettings, checked_day, metrics_namespace, publish_summary
from lambdas.etl.store import list_keys, s3_client


logger = Logger(service="etl")

# plan's run ids, the name of a run's staging folder: when it was planned, and 12 random hexadecimal digits.
_RUN_ID = re.compile(r"[0-9]{8}T[0-9]{6}-[0-9a-f]{12}")
# What publish leaves in its run's staging folder once the day is published: the run's summary, which a repeat
# of the step returns (Athena never reads the staging folder; the lifecycle rule expires it with the folder).
PUBLISHED_NAME = "_published.json"


@dataclass(frozen=True)
class ReportRow:
    """One row of raw_day_report.sql: the copies of one outcome, a rejected object and its reason, or (outcome
    None) the total, counting the objects read."""

    outcome: str | None  # update, duplicate, rejected; None for the total
    carries_message: bool | None
    rejected_path: str | None
    reason: str | None
    copy_rows: int  # rows of raw_objects.sql: for `update`, one per update
    copies: int  # the copies they stand for (a batch may hold one line twice)
    objects: int  # raw objects the rows come from


def plan(event: Any, templates: Mapping[str, str], settings: EtlSettings, now: datetime | None = None) -> dict[str, Any]:
    """The day, a new run and the run's statements; raises for an event or a day the Lambda engine refuses too."""
    day = checked_day(event, settings, now)
    run = f"{datetime.now().strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}"
    staging_url = f"s3://{settings.enriched_bucket}/{staging_prefix(day, run)}"
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


def staging_prefix(day: date, run: str) -> str:
    """A run's staging folder in the enriched bucket: UNLOAD writes there, publish merges it into the day."""
    return f"{ATHENA_STAGING_PREFIX}{day.isoformat()}/{run}/"


def publish(run: Mapping[str, Any], report_execution_id: str, settings: EtlSettings) -> dict[str, Any]:
    """The staged Parquet of a finished UNLOAD as the day's file, the rejects report, and the summary; once per
    run: a repeat returns the summary the first one left in the run's folder, and changes nothing."""
    import boto3

    started = time.monotonic()
    day, folder = run_folder(run, settings)
    bucket = settings.enriched_bucket
    s3 = s3_client(settings.read_concurrency)
    published = f"{folder}{PUBLISHED_NAME}"
    staged = sorted(list_keys(s3, bucket, folder))
    if published in staged:
        summary = json.loads(s3.get_object(Bucket=bucket, Key=published)["Body"].read())
        logger.info("run already published: the day is left as it is, and no metric is published again", extra=summary)
        return summary
    report = read_report(boto3.client("athena"), report_execution_id)
    with tempfile.TemporaryDirectory(prefix="athena-publish-") as workdir:
        files = []
        for index, key in enumerate(staged):
            files.append(Path(workdir) / f"{index:05d}.parquet")
            s3.download_file(bucket, key, str(files[-1]))
        _check_staged_rows(run, report, files)
        summary = finish_day(s3, settings, day, staged_batches(files), report, started)
    s3.put_object(Bucket=bucket, Key=published, Body=json.dumps(summary).encode(), ContentType="application/json")
    for key in staged:
        s3.delete_object(Bucket=bucket, Key=key)
    publish_summary(summary, metrics_namespace(os.environ))
    return summary


def run_folder(run: Any, settings: EtlSettings) -> tuple[date, str]:
    """A run's day and staging folder, exactly as plan made them: publish merges that one folder into that one
    day, and refuses an event naming any other (another run's or day's folder, or the whole staging area)."""
    if not isinstance(run, Mapping):
        raise ValueError(f"a run is plan's output, a JSON object, not {type(run).__name__}")
    try:
        day = iso_date(run.get("day"))
    except ValueError as error:
        raise ValueError(f"a run's day {error}") from None
    if not isinstance(run.get("run"), str) or not _RUN_ID.fullmatch(run["run"]):
        raise ValueError(f"a run's id is plan's, YYYYMMDDTHHMMSS-<12 hexadecimal digits>, not {run.get('run')!r}")
    folder = staging_prefix(day, run["run"])
    expected = f"s3://{settings.enriched_bucket}/{folder}"
    if run.get("staging_url") != expected:
        raise ValueError(f"a run's staging folder is its own, {expected}, not {run.get('staging_url')!r}")
    return day, folder


def _check_staged_rows(run: Mapping[str, Any], report: Iterable[ReportRow], files: Iterable[Path]) -> None:
    """Publish nothing unless the staged files hold every row the report counts: files gone (removed by an earlier
    publish of the run whose summary is gone too, or expired) or missing must never become a day with fewer rows."""
    counted = sum(row.copy_rows for row in report if row.outcome == "update" and row.carries_message)
    held = sum(pq.ParquetFile(file).metadata.num_rows for file in files)
    if held != counted:
        raise RuntimeError(
            f"run {run['run']} of {run['day']}: its report counts {counted} rows, its staged files hold {held}; "
            "nothing published, the day is left as it is (staged files removed or expired, or the raw day changed "
            "while the queries ran): re-run the day"
        )


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
    if not [row for row in report if row.outcome is not None]:  # only the total: the day has no copy at all
        logger.info("empty raw partition: nothing written, nothing deleted", extra={"day": summary.day})
        summary.seconds = round(time.monotonic() - started, 3)
        return summary.as_dict()
    rejects = []
    for row in report:
        if row.outcome is None:
            summary.objects_read = row.objects
        elif row.outcome == "update":
            summary.duplicates += row.copies - row.copy_rows  # a line a batch holds twice is one update
            summary.skipped += 0 if row.carries_message else row.copy_rows
        elif row.outcome == "duplicate":
            summary.duplicates += row.copies
        else:
            for _ in range(row.copies):
                record_reject(rejects, Reject(_key(row.rejected_path or ""), row.reason or "rejected"))
    store_day(
        s3, settings.enriched_bucket, day, summary, lambda parquet: write_batches(parquet, batches), rejects,
        settings.pseudonymizer(),
    )
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
    """A report row from its seven values as either engine gives them (Athena: text; DuckDB: typed)."""
    outcome, carries_message, rejected_path, reason, copy_rows, copies, objects = values
    if isinstance(carries_message, str):
        carries_message = carries_message == "true"
    return ReportRow(outcome, carries_message, rejected_path, reason, int(copy_rows), int(copies), int(objects))


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

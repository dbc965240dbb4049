"""Compact one day of raw updates into the day's single Parquet file.

Memory stays bounded at any volume: the day is planned from its key listing (update_id -> key only),
bodies stream in update_id order through a small window of parallel GETs, and rows become Parquet row
groups of `BATCH_ROWS` in a local temporary file. Ordering by update_id makes a re-run write the same
rows (and, with the same pyarrow, the same bytes).
"""

from __future__ import annotations

import tempfile
import time
from contextlib import closing, nullcontext
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Mapping

import pyarrow as pa
import pyarrow.parquet as pq
from aws_lambda_powertools import Logger

from lambdas.common.layout import day_prefix
from lambdas.common.updates import carries_message
from lambdas.etl.day import (
    OUTPUT_NAME, NotAnUpdate, Reject, decode_update, enriched_key, plan_reads, rejects_key, rejects_report,
    update_id_of_key,
)
from lambdas.etl.flatten import flatten
from lambdas.etl.schema import arrow_schema
from lambdas.etl.store import list_sizes, read_in_order

BATCH_ROWS = 10_000
PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
# What pyarrow raises for a value it cannot convert to the schema (ArrowInvalid and ArrowTypeError are
# ValueError and TypeError; a string that is not UTF-8 raises UnicodeEncodeError, an int beyond int64 OverflowError).
_UNWRITABLE = (ValueError, TypeError, OverflowError)

logger = Logger(service="etl", child=True)


@dataclass
class DaySummary:
    """What a run did; the handler returns and logs it, and `etl run` tabulates it."""

    day: str
    objects_read: int = 0
    rows_written: int = 0
    duplicates: int = 0
    skipped: int = 0
    rejected: int = 0
    seconds: float = 0.0
    output_key: str | None = None
    rejects_key: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compact_day(s3: Any, *, raw_bucket: str, enriched_bucket: str, day: date, concurrency: int) -> DaySummary:
    """Rebuild the day's Parquet file (and rejects report) from the raw bucket; every S3 error raises."""
    started = time.monotonic()
    summary = DaySummary(day=day.isoformat())
    listed = list(list_sizes(s3, raw_bucket, day_prefix(day)))
    if listed:
        _rebuild(s3, raw_bucket, enriched_bucket, day, listed, concurrency, summary)
    else:
        # Nothing to rebuild from. An output built while the raw data still existed (the raw bucket
        # expires objects) is kept rather than deleted.
        logger.info("empty raw partition: nothing written, nothing deleted", extra={"day": summary.day})
    summary.seconds = round(time.monotonic() - started, 3)
    return summary


def _rebuild(
    s3: Any, raw_bucket: str, enriched_bucket: str, day: date, listed: list[tuple[str, int]], concurrency: int,
    summary: DaySummary,
) -> None:
    previous = day - timedelta(days=1)
    earlier_ids = {
        update_id
        for key, size in list_sizes(s3, raw_bucket, day_prefix(previous))
        if size and (update_id := update_id_of_key(key, previous)) is not None
    }
    plan = plan_reads(day, [key for key, _ in listed], earlier_ids, {key for key, size in listed if not size})
    summary.duplicates = plan.duplicates
    rejects: list[Reject] = []
    for reject in plan.rejects:
        record_reject(rejects, reject)
    bodies = read_in_order(s3, raw_bucket, (key for _, key in plan.objects), concurrency)

    def unwritable(row: Mapping[str, Any], reason: str) -> None:
        record_reject(rejects, Reject(plan.key_of(row["update_id"]), f"not writable to Parquet: {reason}"))

    with closing(bodies):
        rows = _rows(plan.objects, bodies, summary, rejects)
        store_day(
            s3, enriched_bucket, day, summary, lambda parquet: write_parquet(parquet, rows, BATCH_ROWS, unwritable),
            rejects,
        )
    if not summary.rows_written:
        logger.info("day has no rows: nothing written, any previous output deleted", extra={"day": summary.day})


def store_day(
    s3: Any, enriched_bucket: str, day: date, summary: DaySummary, write: Callable[[Path], int], rejects: list[Reject]
) -> None:
    """The day's outputs, as both engines leave them: the one Parquet file `write` makes at the path it is given
    (it returns the rows written; with none, a stale file is deleted), then the rejects report (deleted when
    nothing was rejected). `rejects` is read after `write`, which may add the rows the writer refused."""
    with tempfile.TemporaryDirectory(prefix="etl-") as workdir:
        parquet = Path(workdir) / OUTPUT_NAME
        summary.rows_written = write(parquet)
        with parquet.open("rb") if summary.rows_written else nullcontext() as body:
            summary.output_key = replace_object(s3, enriched_bucket, enriched_key(day), body, PARQUET_CONTENT_TYPE)
    report = rejects_report(day, rejects) if rejects else None
    summary.rejects_key = replace_object(s3, enriched_bucket, rejects_key(day), report, "application/json")
    summary.rejected = len(rejects)


def _rows(
    objects: Iterable[tuple[int, str]], bodies: Iterable[bytes], summary: DaySummary, rejects: list[Reject]
) -> Iterator[dict[str, Any]]:
    """Decode and flatten each planned object; count the skipped and collect the rejected on the way."""
    for (update_id, key), body in zip(objects, bodies, strict=True):
        summary.objects_read += 1
        try:
            update = decode_update(body, update_id)
        except NotAnUpdate as error:
            record_reject(rejects, Reject(key, str(error)))
            continue
        if carries_message(update):
            yield flatten(update)
        else:
            summary.skipped += 1


def record_reject(rejects: list[Reject], reject: Reject) -> None:
    logger.warning("rejected raw object", extra={"key": reject.key, "reason": reject.reason})
    rejects.append(reject)


def write_parquet(
    path: Path, rows: Iterable[dict[str, Any]], batch_rows: int,
    unwritable: Callable[[Mapping[str, Any], str], None] | None = None,
) -> int:
    """Write rows as zstd Parquet row groups of `batch_rows`; create no file when there are none.

    `flatten` makes every row fit the schema; should pyarrow still refuse a batch, `unwritable` gets each
    row it refuses, with the reason, and the batch's other rows are written. Without it, the error raises.
    """
    schema = arrow_schema()
    return write_batches(path, (_record_batch(batch, schema, unwritable) for batch in _chunks(rows, batch_rows)))


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    rows = iter(rows)
    while chunk := list(islice(rows, size)):
        yield chunk


def write_batches(path: Path, batches: Iterable[pa.RecordBatch]) -> int:
    """Write record batches as zstd Parquet with the enriched schema, a row group each; no file when empty.

    Both engines write through here. A batch is cast to the schema: Athena's UNLOAD writes every column
    nullable, the schema's `update_id` is not (and the SQL never yields a null one).
    """
    schema = arrow_schema()
    written = 0
    writer = None
    try:
        for batch in batches:
            if batch.num_rows:
                writer = writer or pq.ParquetWriter(path, schema, compression="zstd")
                writer.write_batch(batch.cast(schema))
                written += batch.num_rows
    finally:
        if writer is not None:
            writer.close()
    return written


def _record_batch(
    batch: list[dict[str, Any]], schema: pa.Schema, unwritable: Callable[[Mapping[str, Any], str], None] | None
) -> pa.RecordBatch:
    """The batch as Arrow; when pyarrow refuses it, the rows it accepts one by one (the others go to
    `unwritable`): one bad row costs its own row, never the day."""
    try:
        return pa.RecordBatch.from_pylist(batch, schema=schema)
    except _UNWRITABLE:
        if unwritable is None:
            raise
    accepted = []
    for row in batch:
        try:
            pa.RecordBatch.from_pylist([row], schema=schema)
        except _UNWRITABLE as error:
            unwritable(row, f"{type(error).__name__}: {error}")
        else:
            accepted.append(row)
    return pa.RecordBatch.from_pylist(accepted, schema=schema)


def replace_object(s3: Any, bucket: str, key: str, body: BinaryIO | bytes | None, content_type: str) -> str | None:
    """Put the new object (S3 swaps it atomically for readers), or delete a stale one when there is none."""
    if body is None:
        s3.delete_object(Bucket=bucket, Key=key)
        return None
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    return key

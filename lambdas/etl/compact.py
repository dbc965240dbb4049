"""Compact one day of raw updates into the day's single Parquet file.

The day's objects (batches and, from before batching, single updates) are read in key order through a bounded
window of parallel GETs. Every copy of an update they hold (lambdas/etl/day.py `copies_of`) becomes a row of an
Arrow table, flattened when it carries a message, beside what decides which copy is the first arrival: its
arrival instant (none for a single-update object), its object's place in key order, the digest of its line.
Then column by column: the first copy of each update_id is the update and every other copy a duplicate, an
update whose copy the day before already held is dropped (a redelivery after midnight belongs to the earlier
day; of the day before, only what may hold a copy of the day's updates is decoded), and the rows are written in
update_id order as zstd Parquet row groups, taken one row group at a time. The SQL twin of these rules is
analytics/lake/raw_objects.sql; a re-run writes the same rows (with the same pyarrow, the same bytes).

Memory holds the day's rows as Arrow columns (a few hundred bytes a row), never a Python object per update.
"""

from __future__ import annotations

import tempfile
import time
from array import array
from bisect import bisect_left
from contextlib import closing, nullcontext
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from aws_lambda_powertools import Logger

from lambdas.common.layout import ObjectKind, day_prefix, raw_object_kind
from lambdas.common.updates import carries_message
from lambdas.etl.day import (
    EMPTY_REASON, KEY_REJECT_REASON, OUTPUT_NAME, Copy, Reject, claims_of, copies_of, enriched_key, may_claim,
    rejects_key, rejects_report, single_update_id,
)
from lambdas.etl.flatten import flatten
from lambdas.etl.schema import arrow_schema
from lambdas.etl.pseudonymize import Pseudonymizer, pseudonymized_key
from lambdas.etl.store import list_sizes, read_in_order

BATCH_ROWS = 10_000
PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
# What pyarrow raises for a value it cannot convert to the schema (ArrowInvalid and ArrowTypeError are
# ValueError and TypeError; a string that is not UTF-8 raises UnicodeEncodeError, an int beyond int64 OverflowError).
_UNWRITABLE = (ValueError, TypeError, OverflowError)
# Beside each copy's row while the day is deduplicated, then dropped: which copy arrived first (and whether it
# carries a message: a copy that does not still counts, as a skipped update or a duplicate).
RECEIVED_AT, KEY_INDEX, LINE_DIGEST, CARRIES_MESSAGE = "_received_at", "_key_index", "_line_digest", "_carries_message"
# The first arrival: the earliest instant, a single-update object (no instant, written before batching) before
# any line, then the object's key, then the line's digest.
ARRIVAL_ORDER = [("update_id", "ascending", "at_end"), (RECEIVED_AT, "ascending", "at_start"),
                 (KEY_INDEX, "ascending", "at_end"), (LINE_DIGEST, "ascending", "at_end")]

logger = Logger(service="etl", child=True)


@dataclass
class DaySummary:
    """What a run did; the handler returns and logs it, and `etl run` tabulates it."""

    day: str
    objects_read: int = 0  # the day's raw objects read (batches and single updates)
    rows_written: int = 0
    duplicates: int = 0  # copies of an update beside its first arrival (or after midnight, its earlier day's)
    skipped: int = 0  # updates that carry no message
    rejected: int = 0  # objects, or lines of a batch, that are no update
    seconds: float = 0.0
    output_key: str | None = None
    rejects_key: str | None = None
    pseudonymized_key: str | None = None  # the analysts' copy of the day, on a pseudonymized stage

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def copies_schema() -> pa.Schema:
    """The enriched schema, every column nullable (a copy without a message has no row), plus the arrival columns."""
    return pa.schema([
        *(field.with_nullable(True) for field in arrow_schema()),
        pa.field(RECEIVED_AT, pa.int64()), pa.field(KEY_INDEX, pa.int32()), pa.field(LINE_DIGEST, pa.binary(16)),
        pa.field(CARRIES_MESSAGE, pa.bool_()),
    ])


def compact_day(
    s3: Any, *, raw_bucket: str, enriched_bucket: str, day: date, concurrency: int,
    pseudonymizer: Pseudonymizer | None = None,
) -> DaySummary:
    """Rebuild the day's Parquet file (and rejects report, and with a `pseudonymizer` the analysts' copy) from the
    raw bucket; every S3 error raises."""
    started = time.monotonic()
    summary = DaySummary(day=day.isoformat())
    listed = list(list_sizes(s3, raw_bucket, day_prefix(day)))
    if listed:
        _rebuild(s3, raw_bucket, enriched_bucket, day, listed, concurrency, summary, pseudonymizer)
    else:
        # Nothing to rebuild from. An output built while the raw data still existed (the raw bucket
        # expires objects) is kept rather than deleted.
        logger.info("empty raw partition: nothing written, nothing deleted", extra={"day": summary.day})
    summary.seconds = round(time.monotonic() - started, 3)
    return summary


def _rebuild(
    s3: Any, raw_bucket: str, enriched_bucket: str, day: date, listed: list[tuple[str, int]], concurrency: int,
    summary: DaySummary, pseudonymizer: Pseudonymizer | None,
) -> None:
    rejects: list[Reject] = []
    readable = readable_objects(listed, day, rejects)
    summary.objects_read = len(readable)
    bodies = read_in_order(s3, raw_bucket, (key for key, _ in readable), concurrency)
    with closing(bodies):
        copies = day_copies(readable, bodies, day, rejects)
    claimed = claimed_update_ids(s3, raw_bucket, day - timedelta(days=1), copies["update_id"], concurrency)
    kept = first_arrivals(copies, claimed)
    with_message = kept.filter(copies[CARRIES_MESSAGE].take(kept))
    summary.duplicates = copies.num_rows - len(kept)
    summary.skipped = len(kept) - len(with_message)
    rows = copies.select(arrow_schema().names)
    del copies
    # One chunk per column, one column at a time: a take from a chunked column first copies all of it, and the
    # day's rows are taken a row group at a time. Memory holds one column twice at most, never the day twice.
    for index, name in enumerate(rows.column_names):
        rows = rows.set_column(index, name, rows.column(index).combine_chunks())
    pa.default_memory_pool().release_unused()  # the chunks' pages, which Arrow's allocator would keep
    store_day(
        s3, enriched_bucket, day, summary, lambda parquet: write_batches(parquet, _taken(rows, with_message)), rejects,
        pseudonymizer,
    )
    if not summary.rows_written:
        logger.info("day has no rows: nothing written, any previous output deleted", extra={"day": summary.day})


def readable_objects(listed: Iterable[tuple[str, int]], day: date, rejects: list[Reject]) -> list[tuple[str, ObjectKind]]:
    """The listed objects worth a GET, in key order, with their kind; the others rejected from the listing: a key
    naming neither kind of raw object, or an empty object (no line: Athena's raw table never sees it)."""
    readable = []
    for key, size in sorted(listed):
        kind = raw_object_kind(key, day)
        if kind is None or (kind == "single" and single_update_id(key, day) is None):
            record_reject(rejects, Reject(key, KEY_REJECT_REASON))
        elif not size:
            record_reject(rejects, Reject(key, EMPTY_REASON))
        else:
            readable.append((key, kind))
    return readable


def day_copies(
    objects: Sequence[tuple[str, ObjectKind]], bodies: Iterable[bytes], day: date, rejects: list[Reject]
) -> pa.Table:
    """Every copy of an update the day's objects hold, a row each (see `copies_schema`); the rest rejected."""
    schema = copies_schema()

    def unwritable(row: Mapping[str, Any], reason: str) -> None:
        record_reject(rejects, Reject(objects[row[KEY_INDEX]][0], f"not writable to Parquet: {reason}"))

    def rows() -> Iterator[dict[str, Any]]:
        for index, ((key, kind), body) in enumerate(zip(objects, bodies, strict=True)):
            for item in copies_of(key, kind, body, day):
                if isinstance(item, Reject):
                    record_reject(rejects, item)
                else:
                    yield _copy_row(item, index)

    batches = [_record_batch(chunk, schema, unwritable) for chunk in _chunks(rows(), BATCH_ROWS)]
    return pa.Table.from_batches(batches, schema=schema)


def _copy_row(copy: Copy, key_index: int) -> dict[str, Any]:
    message = carries_message(copy.update)
    row = flatten(copy.update) if message else {"update_id": copy.update_id}
    row.update({RECEIVED_AT: copy.received_at, KEY_INDEX: key_index, LINE_DIGEST: copy.line_digest,
                CARRIES_MESSAGE: message})
    return row


def claimed_update_ids(s3: Any, raw_bucket: str, day: date, ids: pa.ChunkedArray, concurrency: int) -> pa.Array:
    """Which of `ids` the day before holds a copy of (a valid one: an unreadable copy claims nothing). Only what may
    hold one is read and decoded (lambdas/etl/day.py `claims_of`)."""
    wanted = SortedIds(ids)
    readable = [
        (key, kind) for key, kind in readable_objects(list_sizes(s3, raw_bucket, day_prefix(day)), day, [])
        if may_claim(key, kind, day, wanted)
    ]
    claimed = array("q")
    with closing(read_in_order(s3, raw_bucket, (key for key, _ in readable), concurrency)) as bodies:
        for (key, kind), body in zip(readable, bodies, strict=True):
            claimed.extend(claims_of(key, kind, body, day, wanted))
    return pa.array(claimed, pa.int64())


class SortedIds:
    """Update_ids to look up, in 8 bytes each (a Python set of them takes ten times that, beside the day's rows):
    a sorted array, searched by bisection."""

    def __init__(self, ids: pa.ChunkedArray):
        values = ids.drop_null().combine_chunks().sort()  # int64: its data buffer is the array's bytes
        data = values.buffers()[1] or b""
        self._sorted = array("q")
        self._sorted.frombytes(memoryview(data)[values.offset * 8 : (values.offset + len(values)) * 8])

    def __contains__(self, update_id: object) -> bool:
        if not isinstance(update_id, int):
            return False
        position = bisect_left(self._sorted, update_id)
        return position < len(self._sorted) and self._sorted[position] == update_id


def first_arrivals(copies: pa.Table, claimed: pa.Array) -> pa.Array:
    """The row index of each update's first arrival, in update_id order, unless the day before holds a copy of it.

    Only the arrival columns are sorted (their indices, not a sorted copy of the day's rows)."""
    if not copies.num_rows:
        return pa.array([], pa.uint64())
    order = pc.sort_indices(copies.select([name for name, _, _ in ARRIVAL_ORDER]), sort_keys=ARRIVAL_ORDER)
    ids = copies["update_id"].take(order)
    first = pc.invert(pc.fill_null(pc.equal(ids, _shifted(ids)), False))
    return order.filter(pc.and_(first, pc.invert(pc.is_in(ids, value_set=claimed))))


def _shifted(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """The column one row down: each row's predecessor (null before the first)."""
    return pa.chunked_array([pa.nulls(1, column.type), *column.slice(0, len(column) - 1).chunks], column.type)


def _taken(table: pa.Table, indices: pa.Array) -> Iterator[pa.RecordBatch]:
    """The table's rows at `indices`, in their order, as batches of BATCH_ROWS (a Parquet row group each): only one
    batch beside the table in memory, never a second copy of the day (with one chunk per column: see `_rebuild`)."""
    for start in range(0, len(indices), BATCH_ROWS):
        yield from table.take(indices.slice(start, BATCH_ROWS)).combine_chunks().to_batches()
        pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed pages: each batch's go back


def store_day(
    s3: Any, enriched_bucket: str, day: date, summary: DaySummary, write: Callable[[Path], int], rejects: list[Reject],
    pseudonymizer: Pseudonymizer | None = None,
) -> None:
    """The day's outputs, as both engines leave them: the one Parquet file `write` makes at the path it is given
    (it returns the rows written; with none, a stale file is deleted), then the rejects report (deleted when
    nothing was rejected). `rejects` is read after `write`, which may add the rows the writer refused. With a
    `pseudonymizer`, the analysts' copy of the file is stored first (lambdas/etl/pseudonymize.py)."""
    with tempfile.TemporaryDirectory(prefix="etl-") as workdir:
        parquet = Path(workdir) / OUTPUT_NAME
        summary.rows_written = write(parquet)
        if pseudonymizer is not None:
            summary.pseudonymized_key = _store_pseudonymized(s3, enriched_bucket, day, parquet, summary, pseudonymizer)
        with parquet.open("rb") if summary.rows_written else nullcontext() as body:
            summary.output_key = replace_object(s3, enriched_bucket, enriched_key(day), body, PARQUET_CONTENT_TYPE)
    report = rejects_report(day, rejects) if rejects else None
    summary.rejects_key = replace_object(s3, enriched_bucket, rejects_key(day), report, "application/json")
    summary.rejected = len(rejects)


def _store_pseudonymized(
    s3: Any, enriched_bucket: str, day: date, parquet: Path, summary: DaySummary, pseudonymizer: Pseudonymizer
) -> str | None:
    """The analysts' copy of the day's file just written at `parquet`, put at its own key (or, when the day has no
    rows, a stale one deleted, as the day's file is)."""
    key = pseudonymized_key(day)
    if not summary.rows_written:
        return replace_object(s3, enriched_bucket, key, None, PARQUET_CONTENT_TYPE)
    target = parquet.with_name(f"pseudonymized-{parquet.name}")
    write_batches(target, pseudonymizer.batches(parquet, BATCH_ROWS))
    with target.open("rb") as body:
        return replace_object(s3, enriched_bucket, key, body, PARQUET_CONTENT_TYPE)


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

"""Which day the ETL compacts, what its raw objects hold, and where its output goes (pure, no AWS).

A raw day holds batches of envelope lines and, from before batching, single-update objects
(lambdas/common/layout.py). `copies_of` reads either as Athena's raw table does (analytics/lake/raw_objects.sql
is its SQL twin): every copy of an update it holds, or why a part is rejected. Which copy is the update and
which are duplicates is decided in lambdas/etl/compact.py over the whole day.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Container, Iterable, Iterator, Mapping

from lambdas.common.envelope import CONTEXT_DATE, RECEIVED_AT, UPDATE
from lambdas.common.layout import ObjectKind, day_prefix, previous_day, raw_object_kind
from lambdas.common.reading import BOM, load_json
from lambdas.common.updates import MESSAGE_UPDATE_TYPES, update_type
from lambdas.etl.schema import BIGINT_MAX, BIGINT_MIN

OUTPUT_NAME = "telegram.parquet"
# In the Athena engine's statements (analytics/__init__.py writes them): the raw day each run compacts.
DAY_PLACEHOLDER = "{{day}}"
# Athena skips files whose name starts with `_`, so the report can sit next to the day's Parquet file.
REJECTS_NAME = "_rejects.json"

# The daily schedule's event: `{SCHEDULED_TIME_KEY: "<aws.scheduler.scheduled-time>"}`, which EventBridge
# Scheduler fills in with the instant the run was scheduled for, the same on every retry.
SCHEDULED_TIME_KEY = "scheduled_time"
DATE_KEY = "date"

_EVENT_HELP = (
    f'expected {{"{SCHEDULED_TIME_KEY}": "YYYY-MM-DDTHH:MM:SSZ"}} (the day before it in TIMEZONE), '
    f'{{"{DATE_KEY}": "YYYY-MM-DD"}} or {{}} (yesterday in TIMEZONE)'
)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Scheduler's format, e.g. 2026-03-08T04:00:00Z: UTC, whole seconds.
_SCHEDULED_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def enriched_key(day: date) -> str:
    """The day's single Parquet file: a fixed name, so a re-run replaces it instead of adding a second."""
    return f"{day_prefix(day)}{OUTPUT_NAME}"


def rejects_key(day: date) -> str:
    return f"{day_prefix(day)}{REJECTS_NAME}"


def requested_day(event: Any, zone: str, now: datetime | None = None) -> date:
    """The day an invocation asks for: the day before the schedule's instant (its local date in `zone`),
    `{"date": ...}` from a backfill, or yesterday at run time for `{}`.

    The scheduled instant, not the clock, decides, so a retry that runs after midnight still compacts
    the day its schedule was for.
    """
    if not isinstance(event, Mapping):
        raise ValueError(f"ETL event must be a JSON object, got {type(event).__name__}; {_EVENT_HELP}")
    unknown = sorted(str(name) for name in event if name not in (SCHEDULED_TIME_KEY, DATE_KEY))
    if unknown:
        raise ValueError(f"ETL event has unknown keys {unknown}; {_EVENT_HELP}")
    if SCHEDULED_TIME_KEY in event and DATE_KEY in event:
        raise ValueError(f"ETL event has both {SCHEDULED_TIME_KEY!r} and {DATE_KEY!r}; {_EVENT_HELP}")
    if SCHEDULED_TIME_KEY in event:
        return previous_day(zone, scheduled_instant(event[SCHEDULED_TIME_KEY]))
    if DATE_KEY not in event:
        return previous_day(zone, now)
    try:
        return iso_date(event[DATE_KEY])
    except ValueError as error:
        raise ValueError(f"ETL event date {error}") from None


def refuse_unfinished(day: date, zone: str, now: datetime | None = None) -> None:
    """ValueError unless `day` has ended in `zone`: the up-to-the-minute relation reads a day from the raw zone only
    until it is compacted, so compacting a day that has not ended would hide the rest of it from every answer."""
    latest = previous_day(zone, now)
    if day > latest:
        raise ValueError(
            f"day {day} has not ended in {zone} (the latest day that has is {latest}): compacted now, the rest of "
            "it would be missing from every answer until it is compacted again"
        )


def iso_date(value: Any) -> date:
    """A date written exactly `YYYY-MM-DD` (`date.fromisoformat` also takes `20260101` and `2026-W01-1`)."""
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError(f"must be a string YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a calendar date") from None


def scheduled_instant(value: Any) -> datetime:
    """The UTC instant of Scheduler's `<aws.scheduler.scheduled-time>`, e.g. `2026-03-08T04:00:00Z`."""
    problem = f"ETL event {SCHEDULED_TIME_KEY} must be a UTC time YYYY-MM-DDTHH:MM:SSZ, got {value!r}"
    if not isinstance(value, str) or not _SCHEDULED_TIME.fullmatch(value):
        raise ValueError(problem)
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise ValueError(f"{problem} (not a calendar time)") from None


def single_update_id(key: str, day: date) -> int | None:
    """N for a single update's key `<day prefix>N.json`; None for any other key (or N beyond a bigint)."""
    if raw_object_kind(key, day) != "single":
        return None
    update_id = int(key.removeprefix(day_prefix(day)).removesuffix(".json"))
    return update_id if update_id <= BIGINT_MAX else None


# Why an object is rejected from the listing, before any GET: its key names neither kind of raw object (such an
# object is listed, not read, by either engine: analytics/lake/raw_objects.sql words it the same), or it is empty.
KEY_REJECT_REASON = "key is neither <update_id>.json nor a batch (.jsonl, .jsonl.gz) in the day's folder"
EMPTY_REASON = "empty object: no line of JSON"


@dataclass(frozen=True)
class Reject:
    """A raw object (or a line of a batch) the ETL could not use, and why; listed in the day's rejects report."""

    key: str
    reason: str


@dataclass(frozen=True)
class Copy:
    """One stored copy of an update, and what decides whether it is the first: its arrival instant (None for a
    single-update object, written before batching and so before any batch line of its day), and the md5 of its
    line as stored, the last tie-break (the SQL orders copies by the same: analytics/lake/raw_objects.sql)."""

    update: dict[str, Any]
    received_at: int | None
    line_digest: bytes

    @property
    def update_id(self) -> int:
        return self.update["update_id"]


class NotAnUpdate(ValueError):
    """A raw object or line that is not valid JSON or not a Telegram Update; the message says why."""


class UnreadableObject(Exception):
    """An object no reader can read at all: it fails Athena's queries too, so it fails the day, loudly."""


def object_lines(key: str, body: bytes) -> list[bytes]:
    """An object's lines as Athena's text table reads them: gunzipped when the key ends in `.gz`, a byte order
    mark at its start dropped, split at Hadoop's line breaks (`\n`, `\r`, `\r\n`; no empty last line after a
    final break). A `.gz` body that is not gzip raises UnreadableObject: on Athena it fails every query."""
    if key.endswith(".gz"):
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as error:
            raise UnreadableObject(
                f"{key} is not gzip ({error}): every Athena query reading its day fails too; fix or remove it"
            ) from None
    return body.removeprefix(BOM).splitlines()


def copies_of(key: str, kind: ObjectKind, body: bytes, day: date) -> Iterator[Copy | Reject]:
    """Every copy of an update a raw object of `day` holds, or the reject of each part that is not one."""
    if kind == "single":
        try:
            yield _single_copy(key, body, day)
        except NotAnUpdate as error:
            yield Reject(key, str(error))
        return
    for number, line in enumerate(object_lines(key, body), start=1):
        try:
            yield _batch_copy(line, day)
        except NotAnUpdate as error:
            yield Reject(key, f"line {number}: {error}")


def may_claim(key: str, kind: ObjectKind, day: date, ids: Container[int]) -> bool:
    """Whether a raw object of `day` may hold a copy of one of `ids`: a batch may, a single-update object only when
    its key names one of them (its update_id must match its key). The others need no GET."""
    return kind == "batch" or single_update_id(key, day) in ids


def claims_of(key: str, kind: ObjectKind, body: bytes, day: date, ids: Container[int]) -> Iterator[int]:
    """The update_ids among `ids` of which a raw object of `day` holds a valid copy (an unreadable copy claims
    nothing): those `copies_of` yields a Copy of, with only the lines that may hold one decoded (`_may_hold`).

    The day before a compacted day is read for this alone, and decoding each of its lines as `copies_of` does
    cost a third of a run; reading the start of a line as the ingest writes it costs a quarter of that."""
    if not may_claim(key, kind, day, ids):
        return
    if kind == "single":
        yield from (item.update_id for item in copies_of(key, kind, body, day) if isinstance(item, Copy))
        return
    for line in object_lines(key, body):
        if not _may_hold(line, ids):
            continue
        try:
            copy = _batch_copy(line, day)
        except NotAnUpdate:
            continue
        if copy.update_id in ids:
            yield copy.update_id


# The start of a batch line as the ingest (or the history import, which marks its lines) writes it
# (lambdas/common/envelope.py) around an update whose first field is its update_id, as in Telegram's JSON: that
# id, when the rest of the line cannot replace it.
_LINE_START = re.compile(
    rb'\{"context_date":"[0-9]{4}-[0-9]{2}-[0-9]{2}","received_at":[0-9]+(?:,"imported":true)?,'
    rb'"update":\{"update_id":(-?[0-9]{1,19})[,}]'
)
# A JSON escape of an ASCII character (`\u0075` is "u"): only one could spell a key the fast path relies on.
# Telegram escapes characters beyond ASCII, which spell nothing of it.
_ESCAPED_ASCII = re.compile(rb"\\u00[0-7][0-9a-fA-F]")


def _may_hold(line: bytes, ids: Container[int]) -> bool:
    """False only when the line cannot be a valid copy of any of `ids`: it starts as `_LINE_START` reads, with an
    update_id not among them, and neither key it passed can be repeated later (the last of two equal keys wins):
    "update" appears nowhere else in the line, and no escape of an ASCII character could spell it."""
    start = _LINE_START.match(line)
    if start is None or line.count(b"update") != 2 or _ESCAPED_ASCII.search(line):
        return True
    return int(start[1]) in ids


def _single_copy(key: str, body: bytes, day: date) -> Copy:
    """The update a single-update object `<update_id>.json` holds: one line of JSON naming the key's update."""
    lines = object_lines(key, body)
    if len(lines) != 1:
        raise NotAnUpdate("not one line of JSON: a line break inside the body")
    update = _checked_update(_json(lines[0]))
    key_id = single_update_id(key, day)
    if update["update_id"] != key_id:
        raise NotAnUpdate(f"update_id {update['update_id']} does not match the object's name {key_id}.json")
    return Copy(update, None, hashlib.md5(lines[0]).digest())


def _batch_copy(line: bytes, day: date) -> Copy:
    """The update of one batch line: an envelope of the folder's day, with its arrival instant."""
    envelope = _json(line)
    if not isinstance(envelope, dict):
        raise NotAnUpdate(f"not an envelope: a JSON {type(envelope).__name__}, not an object")
    if envelope.get(CONTEXT_DATE) != day.isoformat():
        raise NotAnUpdate(f"the envelope's context_date {envelope.get(CONTEXT_DATE)!r} is not the folder's day")
    received_at = envelope.get(RECEIVED_AT)
    if isinstance(received_at, bool) or not isinstance(received_at, int) or not 0 <= received_at <= BIGINT_MAX:
        raise NotAnUpdate(f"the envelope has no arrival instant (received_at {received_at!r})")
    return Copy(_checked_update(envelope.get(UPDATE)), received_at, hashlib.md5(line).digest())


def _json(line: bytes) -> Any:
    """One line as Athena reads it (lambdas/common/reading.py: bytes that are not UTF-8 as U+FFFD, keys with lone
    surrogates as Athena writes them, a number past a double as "Infinity", the last of two equal keys winning);
    only standard JSON (Trino's parser refuses NaN/Infinity). String values are written by `flatten`."""
    try:
        return load_json(line.decode("utf-8", "replace"))
    except (ValueError, RecursionError) as error:
        raise NotAnUpdate(f"not valid JSON: {error}") from None


def _checked_update(update: Any) -> dict[str, Any]:
    """A Telegram Update: an object with an integer update_id (a bigint), whose message type's payload is an object."""
    if not isinstance(update, dict):
        raise NotAnUpdate(f"not a Telegram Update: a JSON {type(update).__name__}, not an object")
    update_id = update.get("update_id")
    if isinstance(update_id, bool) or not isinstance(update_id, int):
        raise NotAnUpdate(f"not a Telegram Update: no integer update_id (got {update_id!r})")
    if not BIGINT_MIN <= update_id <= BIGINT_MAX:
        raise NotAnUpdate(f"not a Telegram Update: update_id {update_id} is beyond a bigint")
    kind = update_type(update)
    if kind in MESSAGE_UPDATE_TYPES and not isinstance(update[kind], dict):
        raise NotAnUpdate(f"not a Telegram Update: {kind} is a {type(update[kind]).__name__}, not an object")
    return update


def rejects_report(day: date, rejects: Iterable[Reject]) -> bytes:
    """The small JSON file listing a day's rejected objects, sorted by key so re-runs write the same bytes."""
    listed = sorted(rejects, key=lambda reject: reject.key)
    report = {
        "day": day.isoformat(),
        "rejected": len(listed),
        "objects": [{"key": reject.key, "reason": reject.reason} for reject in listed],
    }
    return json.dumps(report, indent=2, ensure_ascii=False).encode("utf-8")

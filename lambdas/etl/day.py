"""Which day the ETL compacts, which raw objects make it up, and where its output goes (pure, no AWS).

The ingest stores update N of day D at `raw_key(D, N)`, so a key names its update. That lets the ETL
deduplicate and order a whole day from the listing alone, before any GET, and stream the objects in
update_id order in bounded memory.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Collection, Iterable, Mapping

from lambdas.common.layout import day_prefix, previous_day
from lambdas.common.reading import decoded, load_json
from lambdas.common.updates import MESSAGE_UPDATE_TYPES, update_type
from lambdas.etl.schema import BIGINT_MAX

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
_RAW_NAME = re.compile(r"([0-9]{1,19})\.json")
# Where a text file's lines end, as Hadoop's LineRecordReader (Athena's text tables) splits them.
_LINE_BREAK = re.compile(r"[\r\n]")


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


def update_id_of_key(key: str, day: date) -> int | None:
    """N for `<day prefix>N.json`; None for a key outside the ingest's layout (or N beyond a bigint)."""
    prefix = day_prefix(day)
    match = _RAW_NAME.fullmatch(key[len(prefix):]) if key.startswith(prefix) else None
    update_id = int(match.group(1)) if match else None
    return update_id if update_id is not None and update_id <= BIGINT_MAX else None


# Why an object is rejected from the listing, before any GET: its key names no update of the day (such an
# object is listed, not read, by either engine: analytics/lake/raw_objects.sql words it the same), or it is empty.
KEY_REJECT_REASON = "key is not <update_id>.json in the day's folder"
EMPTY_REASON = "empty object: no line of JSON"


@dataclass(frozen=True)
class Reject:
    """A raw object the ETL could not use, and why; listed in the day's rejects report."""

    key: str
    reason: str


@dataclass(frozen=True)
class ReadPlan:
    """The objects to GET, as (update_id, key) in update_id order, and what the listing already ruled out."""

    objects: tuple[tuple[int, str], ...]
    duplicates: int
    rejects: tuple[Reject, ...]

    def key_of(self, update_id: int) -> str:
        """The key planned for `update_id`: a binary search of the sorted objects, so no second index."""
        index = bisect_left(self.objects, (update_id,))
        if index == len(self.objects) or self.objects[index][0] != update_id:
            raise KeyError(f"update_id {update_id} is not in the read plan")
        return self.objects[index][1]


def plan_reads(
    day: date, keys: Iterable[str], earlier_update_ids: Collection[int], empty_keys: Collection[str] = ()
) -> ReadPlan:
    """Deduplicate a day's listing by update_id and order it.

    `earlier_update_ids` are the previous day's: Telegram may redeliver an update just after midnight,
    and the ingest then stores it under both days; the earlier day keeps it. Two keys of the same day
    naming one update_id (`7.json`, `007.json`) keep the first key in sorted order.

    `empty_keys` (and the caller leaves them out of `earlier_update_ids`) are objects of 0 bytes: no line of
    text, so Athena's raw table never sees them. Each is rejected from the listing, unread, and claims no
    update_id, so an empty copy never costs another copy's row (and both engines keep the same one).
    """
    named: list[tuple[int, str]] = []
    rejects: list[Reject] = []
    for key in keys:
        update_id = update_id_of_key(key, day)
        if update_id is None:
            rejects.append(Reject(key, KEY_REJECT_REASON))
        elif key in empty_keys:
            rejects.append(Reject(key, EMPTY_REASON))
        else:
            named.append((update_id, key))
    named.sort()
    objects: list[tuple[int, str]] = []
    duplicates = 0
    for update_id, key in named:
        if update_id in earlier_update_ids or (objects and objects[-1][0] == update_id):
            duplicates += 1
        else:
            objects.append((update_id, key))
    return ReadPlan(tuple(objects), duplicates, tuple(rejects))


class NotAnUpdate(ValueError):
    """A raw object that is not valid JSON or not a Telegram Update; the message says why."""


def decode_update(body: bytes, update_id: int) -> dict[str, Any]:
    """The Update stored in `body` under the name `<update_id>.json`, or NotAnUpdate.

    Telegram sends one line of compact, standard JSON in UTF-8. The bytes are read as the raw table reads them
    on Athena (lambdas/common/reading.py: a leading byte order mark dropped, bytes that are not UTF-8 as U+FFFD,
    keys with lone surrogates as Athena writes them, a number past a double as "Infinity", the last of two equal
    keys winning), and only one line of standard JSON is an update (Trino's parser refuses NaN/Infinity), so both
    engines turn the same objects into the same rows. String values are repaired by `flatten`.
    """
    text = decoded(body)
    if _LINE_BREAK.search(text.removesuffix("\n").removesuffix("\r")):
        raise NotAnUpdate("not one line of JSON: a line break inside the body")
    try:
        update = load_json(text)
    except (ValueError, RecursionError) as error:
        raise NotAnUpdate(f"not valid JSON: {error}") from None
    if not isinstance(update, dict):
        raise NotAnUpdate(f"not a Telegram Update: a JSON {type(update).__name__}, not an object")
    stored_id = update.get("update_id")
    if isinstance(stored_id, bool) or not isinstance(stored_id, int):
        raise NotAnUpdate(f"not a Telegram Update: no integer update_id (got {stored_id!r})")
    if stored_id != update_id:
        raise NotAnUpdate(f"update_id {stored_id} does not match the object's name {update_id}.json")
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

"""Which day the ETL compacts, which raw objects make it up, and where its output goes (pure, no AWS).

The ingest stores update N of day D at `raw_key(D, N)`, so a key names its update. That lets the ETL
deduplicate and order a whole day from the listing alone, before any GET, and stream the objects in
update_id order in bounded memory.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Collection, Iterable, Mapping

from lambdas.common.layout import day_prefix, previous_day
from lambdas.common.updates import MESSAGE_UPDATE_TYPES, update_type
from lambdas.etl.schema import BIGINT_MAX

OUTPUT_NAME = "telegram.parquet"
# Athena skips files whose name starts with `_`, so the report can sit next to the day's Parquet file.
REJECTS_NAME = "_rejects.json"

_EVENT_HELP = 'expected {} (yesterday in TIMEZONE) or {"date": "YYYY-MM-DD"}'
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_RAW_NAME = re.compile(r"([0-9]{1,19})\.json")


def enriched_key(day: date) -> str:
    """The day's single Parquet file: a fixed name, so a re-run replaces it instead of adding a second."""
    return f"{day_prefix(day)}{OUTPUT_NAME}"


def rejects_key(day: date) -> str:
    return f"{day_prefix(day)}{REJECTS_NAME}"


def requested_day(event: Any, zone: str, now: datetime | None = None) -> date:
    """The day an invocation asks for: `{}` from the daily schedule, `{"date": ...}` from a backfill."""
    if not isinstance(event, Mapping):
        raise ValueError(f"ETL event must be a JSON object, got {type(event).__name__}; {_EVENT_HELP}")
    unknown = sorted(str(name) for name in event if name != "date")
    if unknown:
        raise ValueError(f"ETL event has unknown keys {unknown}; {_EVENT_HELP}")
    if "date" not in event:
        return previous_day(zone, now)
    value = event["date"]
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError(f"ETL event date must be a string YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"ETL event date {value!r} is not a calendar date") from None


def update_id_of_key(key: str, day: date) -> int | None:
    """N for `<day prefix>N.json`; None for a key outside the ingest's layout (or N beyond a bigint)."""
    prefix = day_prefix(day)
    match = _RAW_NAME.fullmatch(key[len(prefix):]) if key.startswith(prefix) else None
    update_id = int(match.group(1)) if match else None
    return update_id if update_id is not None and update_id <= BIGINT_MAX else None


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


def plan_reads(day: date, keys: Iterable[str], earlier_update_ids: Collection[int]) -> ReadPlan:
    """Deduplicate a day's listing by update_id and order it.

    `earlier_update_ids` are the previous day's: Telegram may redeliver an update just after midnight,
    and the ingest then stores it under both days; the earlier day keeps it. Two keys of the same day
    naming one update_id (`7.json`, `007.json`) keep the first key in sorted order.
    """
    named: list[tuple[int, str]] = []
    rejects: list[Reject] = []
    for key in keys:
        update_id = update_id_of_key(key, day)
        if update_id is None:
            rejects.append(Reject(key, "key is not <update_id>.json in the day's folder"))
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
    """The Update stored in `body` under the name `<update_id>.json`, or NotAnUpdate."""
    try:
        update = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
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

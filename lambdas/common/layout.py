"""Where things live in the lake and which day they belong to: shared by ingestion, ETL and tools.

"The day" of an update is its arrival date in the stage's IANA time zone (DST-correct), and both zones
(raw and enriched) partition by it as `telegram/context_date=YYYY-MM-DD/`.

A raw day's folder holds two kinds of object:
- batches, written by the stage's Firehose stream about once a minute: one update per line, each line an
  envelope naming the update's arrival day and instant (lambdas/common/envelope.py), gzip when the key ends in
  `.gz` (Firehose names them `<stream>-<version>-<time>-<id>.jsonl.gz`);
- single updates, `<update_id>.json`: what versions before batching wrote, one update as Telegram sent it.
Every reader reads both, so a stage upgrades in place.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PREFIX = "telegram/"
PARTITION_KEY = "context_date"

# What the ingest learns while it runs lives in the raw bucket too, outside `telegram/` (which the ETL and
# the Glue tables read) and outside the raw zone's transition and expiry rules.
STATE_PREFIX = "ingest-state/"
# Chat upgrades (basic group -> supergroup) the ingest followed: one object per link, kept for good.
CHAT_LINKS_PREFIX = f"{STATE_PREFIX}chat-links/"
# Which chats wrote to the bot, per day (no message content): what `tools chats` lists. Expires.
CHATS_SEEN_PREFIX = f"{STATE_PREFIX}chats-seen/"
CHATS_SEEN_RETENTION_DAYS = 35
# Where the Athena compaction engine's UNLOAD writes a run's files in the enriched bucket, before they become the
# day's one Parquet file: outside `telegram/` (never read as the table), one folder per day and run, expired.
ATHENA_STAGING_PREFIX = "athena-staging/"


def day_prefix(day: date) -> str:
    """The partition folder of one day, in both buckets."""
    return f"{PREFIX}{PARTITION_KEY}={day.isoformat()}/"


# What the raw delivery stream names its objects with: newline-delimited JSON, gzip.
BATCH_EXTENSION = ".jsonl.gz"
# A batch closes after the stage's `raw_batch_seconds`, or at dynamic partitioning's smallest buffer, 64 MiB.
BATCH_MAX_MIB = 64
# Where the raw delivery stream sets aside what it could not partition or deliver: in the raw bucket, outside
# `telegram/` (which the ETL and the tables read), as `<prefix><error output type>/<UTC day>/`.
RAW_ERRORS_PREFIX = "firehose-errors/"
_BATCH_NAME = re.compile(r"[^/]+\.jsonl(\.gz)?")
_SINGLE_NAME = re.compile(r"[0-9]{1,19}\.json")
ObjectKind = Literal["batch", "single"]


def raw_key(day: date, update_id: int) -> str:
    """A single update's key, as versions before batching stored each update (readers still read them)."""
    return f"{day_prefix(day)}{update_id}.json"


def raw_object_kind(key: str, day: date) -> ObjectKind | None:
    """What an object directly in the day's raw folder holds: a batch, a single update, or neither (None)."""
    prefix = day_prefix(day)
    name = key[len(prefix):] if key.startswith(prefix) else ""
    if _SINGLE_NAME.fullmatch(name):
        return "single"
    if _BATCH_NAME.fullmatch(name):
        return "batch"
    return None


def chat_link_key(new_chat_id: int, old_chat_id: int) -> str:
    """Where the ingest records that `new_chat_id` continues the allowlisted group `old_chat_id`.

    Both ids are in the key, so one listing of CHAT_LINKS_PREFIX gives every link without a GET.
    """
    return f"{CHAT_LINKS_PREFIX}{new_chat_id}/{old_chat_id}.json"


def chats_seen_prefix(day: date) -> str:
    return f"{CHATS_SEEN_PREFIX}{day.isoformat()}/"


def chats_seen_key(day: date, chat_id: int, container_id: str) -> str:
    """One object per day, chat and ingest container: each container counts its own updates, so concurrent
    containers never overwrite each other's counts."""
    return f"{chats_seen_prefix(day)}{chat_id}/{container_id}.json"


def is_time_zone(name: object) -> bool:
    """Whether `name` is an IANA zone this machine knows (every setting naming "the day's" zone is checked)."""
    try:
        ZoneInfo(name)  # type: ignore[arg-type]
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return False
    return True


def local_day(instant: datetime, zone: str) -> date:
    """The calendar date of an aware instant in the given IANA zone."""
    return instant.astimezone(ZoneInfo(zone)).date()


def today(zone: str, now: datetime | None = None) -> date:
    return local_day(now or datetime.now(timezone.utc), zone)


def previous_day(zone: str, now: datetime | None = None) -> date:
    """Yesterday in the zone: the day a scheduled ETL run compacts."""
    return today(zone, now) - timedelta(days=1)

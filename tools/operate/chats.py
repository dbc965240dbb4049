"""`python -m tools chats --stage S`: the chats that wrote to the bot recently, and whether each is allowlisted.

The ingest records every chat it answers for (id, type, title, username, counts; never message content)
under `ingest-state/chats-seen/` in the raw bucket, including the chats it skips: this is how an operator
finds the id of a group after the first deploy, when `getUpdates` no longer works because the webhook is
set. "Allowlisted" is judged against the stage's cdk.json now, plus the group upgrades the ingest followed
(`ingest-state/chat-links/`, shown as old -> new). `--local` reads the local stack's bucket instead.

Which chats wrote, and the ingest's decision on each, are written at once; the counts at most once a minute per
ingest container, so they may miss up to a minute of updates per container (its last minute, when it stops).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from lambdas.common.layout import CHAT_LINKS_PREFIX, CHATS_SEEN_RETENTION_DAYS, chats_seen_prefix, today
from lambdas.ingest.chats import (
    COUNTED_OUTCOMES, GROUP_TYPES, RECORD_INTERVAL, ChatDay, ChatLink, allowed_through, parse_link_key,
)
from stacks import outputs
from stacks.config import StageConfig
from tools.cli import (
    CommandError, add_stage_argument, aws_session, count_argument, plain, plain_json, require_output, stack_outputs,
    stage_config,
)

DEFAULT_DAYS = 7
FORMATS = ("table", "json")
_EVERY = f"{RECORD_INTERVAL // timedelta(seconds=1)} s"
COUNTS_NOTE = (
    f"counts may miss up to {_EVERY} of updates per ingest container (a container writes a chat's record at once for "
    f"the chat's first update of the day or a change of its allowlisting, otherwise at most every {_EVERY})"
)
PIPED_WIDTH = 160  # piped or captured output gets a fixed width instead of rich's 80 columns


@dataclass(frozen=True)
class SeenChat:
    """One chat over the days read: every container's counts summed, its latest name and type."""

    chat_id: int
    chat_type: str | None
    title: str | None
    username: str | None
    counts: dict[str, int]
    update_types: tuple[str, ...]
    first_seen: datetime
    last_seen: datetime
    allowlisted_by_ingest: bool  # the deployed ingest's decision on its latest update
    configured: bool  # in the stage's cdk.json allowed_chat_ids
    link: ChatLink | None  # the upgrade it is allowed through, when not configured

    @property
    def updates(self) -> int:
        return sum(self.counts.values())

    @property
    def allowlisted(self) -> bool:
        return self.configured or self.link is not None

    @property
    def allowlisted_as(self) -> str:
        if self.configured:
            return "yes (cdk.json)"
        if self.link is not None:
            return f"yes (upgraded from {self.link.old})"
        return "no"

    @property
    def name(self) -> str:
        return self.title or (f"@{self.username}" if self.username else "-")


@dataclass(frozen=True)
class LearnedLink:
    link: ChatLink
    learned: datetime


@dataclass(frozen=True)
class ChatsReport:
    stage: str
    first_day: date
    last_day: date
    chats: tuple[SeenChat, ...]
    links: tuple[LearnedLink, ...]

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def allowlist_problems(self) -> list[str]:
        """What makes the stage drop updates in silence: chats write but none is allowlisted, or cdk.json
        allowlists a chat the deployed ingest still skips (not redeployed)."""
        problems = []
        if self.chats and not any(chat.allowlisted for chat in self.chats):
            groups = [chat for chat in self.chats if chat.chat_type in GROUP_TYPES]
            example = max(groups or self.chats, key=lambda chat: chat.updates)
            problems.append(
                f"{len(self.chats)} chat(s) wrote to the bot in the last {self.days} day(s), but none is allowlisted "
                f"for stage {self.stage}: their updates are answered 200 and dropped. Put the group's id (e.g. "
                f"{example.chat_id}, {plain(example.name)}) in cdk.json context.stages.{self.stage}.allowed_chat_ids "
                f"and redeploy (`make deploy STAGE={self.stage}`)."
            )
        stale = [chat for chat in self.chats if chat.configured and not chat.allowlisted_by_ingest]
        if stale:
            ids = ", ".join(str(chat.chat_id) for chat in stale)
            problems.append(
                f"cdk.json allowlists {ids} for stage {self.stage}, but the deployed ingest skipped its latest "
                f"update: redeploy (`make deploy STAGE={self.stage}`)."
            )
        return problems

    def nothing_seen(self) -> str | None:
        if self.chats:
            return None
        return (
            f"no chat wrote to the bot from {self.first_day} to {self.last_day} (stage {self.stage}). Check that "
            "the webhook is set and delivers (`python -m tools webhook info`: url, last error), that the bot is a "
            "member of the group, and that it may read it (with BotFather's privacy mode on, a bot in a group "
            "receives only commands and replies to it)."
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "from": self.first_day.isoformat(),
            "to": self.last_day.isoformat(),
            "chats": [
                {
                    "chat_id": chat.chat_id, "chat_type": chat.chat_type, "title": chat.title,
                    "username": chat.username, "updates": chat.counts, "update_types": list(chat.update_types),
                    "first_seen": _utc(chat.first_seen), "last_seen": _utc(chat.last_seen),
                    "allowlisted": chat.allowlisted, "allowlisted_as": chat.allowlisted_as,
                    "allowlisted_by_ingest": chat.allowlisted_by_ingest,
                }
                for chat in self.chats
            ],
            "links": [
                {"old": item.link.old, "new": item.link.new, "learned": _utc(item.learned)} for item in self.links
            ],
            "counts_note": COUNTS_NOTE,
            "warnings": [*self.allowlist_problems(), *filter(None, [self.nothing_seen()])],
        }


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "chats",
        help="the chats that wrote to the bot recently (id, type, title) and whether each is allowlisted",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stage_argument(parser)
    parser.add_argument(
        "--days", type=count_argument(CHATS_SEEN_RETENTION_DAYS, " (records are kept that long)"),
        default=DEFAULT_DAYS,
        help=f"days to look back, today included (default {DEFAULT_DAYS}, at most {CHATS_SEEN_RETENTION_DAYS})",
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    parser.add_argument("--local", action="store_true", help="read the local stack's raw bucket at AWS_ENDPOINT_URL")
    parser.add_argument("--raw-bucket", help="with --local: raw bucket (default: env RAW_BUCKET)")
    parser.set_defaults(func=chats_command)


def chats_command(args: argparse.Namespace) -> int:
    config = stage_config(args)
    if args.local:
        s3, bucket = _local_bucket(args, config)
    elif args.raw_bucket:
        raise CommandError("--raw-bucket only applies with --local")
    else:
        s3, bucket = deployed_raw_bucket(config)
    report = read_report(config, s3, bucket, days=args.days)
    if args.format == "json":
        print(plain_json(report.to_json()))
    else:
        print_report(report)
    for problem in report.allowlist_problems():
        print(f"WARNING: {problem}", file=sys.stderr)
    hint = report.nothing_seen()
    if hint:
        print(hint, file=sys.stderr)
    return 0


def allowlist_warning(config: StageConfig, s3: Any, raw_bucket: str) -> str | None:
    """For `webhook set`: what makes the stage drop updates in silence over the last DEFAULT_DAYS, or None.

    Nothing seen yet (a fresh deploy) is no warning: no chat has had a chance to write.
    """
    problems = read_report(config, s3, raw_bucket, days=DEFAULT_DAYS).allowlist_problems()
    return "\n".join(problems) or None


def deployed_raw_bucket(config: StageConfig) -> tuple[Any, str]:
    """An S3 client in the stage's region and the raw bucket's name, from the Ingestion stack's outputs."""
    session = aws_session(config)
    stack = config.stack_name("Ingestion")
    bucket = require_output(stack_outputs(config, "Ingestion", session), outputs.RAW_BUCKET_NAME, stack)
    return session.client("s3"), bucket


def _local_bucket(args: argparse.Namespace, config: StageConfig) -> tuple[Any, str]:
    import boto3

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        raise CommandError(
            "--local needs AWS_ENDPOINT_URL, the local S3 endpoint (`python -m tools local up` prints it)"
        )
    bucket = args.raw_bucket or os.environ.get("RAW_BUCKET")
    if not bucket:
        raise CommandError("--local needs --raw-bucket (or env RAW_BUCKET)")
    return boto3.session.Session(region_name=config.region).client("s3", endpoint_url=endpoint), bucket


def read_report(config: StageConfig, s3: Any, bucket: str, *, days: int, until: date | None = None) -> ChatsReport:
    """The chats seen from `days` days before `until` (default: today in the stage's zone) to `until`."""
    last_day = until or today(config.timezone)
    first_day = last_day - timedelta(days=days - 1)
    links = read_links(s3, bucket)
    allowed = allowed_through(config.allowed_chat_ids, [item.link for item in links])
    records = [record for offset in range(days) for record in read_records(s3, bucket, first_day + timedelta(offset))]
    by_chat: dict[int, list[ChatDay]] = {}
    for record in records:
        by_chat.setdefault(record.chat_id, []).append(record)
    chats = [_seen_chat(chat_id, group, config, allowed) for chat_id, group in by_chat.items()]
    return ChatsReport(
        stage=config.stage,
        first_day=first_day,
        last_day=last_day,
        chats=tuple(sorted(chats, key=lambda chat: chat.last_seen, reverse=True)),
        links=tuple(links),
    )


def _seen_chat(
    chat_id: int, records: list[ChatDay], config: StageConfig, allowed: dict[int, ChatLink | None]
) -> SeenChat:
    latest = max(records, key=lambda record: record.last_seen)
    return SeenChat(
        chat_id=chat_id,
        chat_type=latest.chat_type,
        title=latest.title,
        username=latest.username,
        counts={outcome: sum(record.counts[outcome] for record in records) for outcome in COUNTED_OUTCOMES},
        update_types=tuple(sorted({name for record in records for name in record.update_types})),
        first_seen=min(record.first_seen for record in records),
        last_seen=latest.last_seen,
        allowlisted_by_ingest=latest.allowlisted,
        configured=chat_id in config.allowed_chat_ids,
        link=allowed.get(chat_id),
    )


def read_records(s3: Any, bucket: str, day: date, *, chat_id: int | None = None) -> list[ChatDay]:
    """Every container's record of every chat (or of `chat_id`) on one day; a bad object is a CommandError naming
    it."""
    records = []
    prefix = chats_seen_prefix(day) if chat_id is None else f"{chats_seen_prefix(day)}{chat_id}/"
    for item in _listing(s3, bucket, prefix):
        key = item["Key"]
        try:
            record = ChatDay.from_json(_read(s3, bucket, key))
        except ValueError as error:
            raise CommandError(f"s3://{bucket}/{key} is not a chats-seen record: {error}") from None
        if record.key != key:
            raise CommandError(f"s3://{bucket}/{key} is not a chats-seen record: it describes {record.key}")
        records.append(record)
    return records


def read_links(s3: Any, bucket: str) -> list[LearnedLink]:
    links = []
    for item in _listing(s3, bucket, CHAT_LINKS_PREFIX):
        link = parse_link_key(item["Key"])
        if link is None:
            raise CommandError(
                f"s3://{bucket}/{item['Key']} is not a chat link (expected {CHAT_LINKS_PREFIX}<new id>/<old id>.json)"
            )
        links.append(LearnedLink(link, item["LastModified"]))
    return sorted(links, key=lambda item: item.learned)


def _listing(s3: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            yield from page.get("Contents", [])
    except (BotoCoreError, ClientError) as error:
        raise CommandError(f"cannot list s3://{bucket}/{prefix}: {error}") from None


def _read(s3: Any, bucket: str, key: str) -> bytes:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (BotoCoreError, ClientError) as error:
        raise CommandError(f"cannot read s3://{bucket}/{key}: {error}") from None


def print_report(report: ChatsReport) -> None:
    """The chats as a table; every name and type as plain text (a title is whatever its group chose)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
    table = Table(title=f"Chats seen by stage {report.stage}, {report.first_day} to {report.last_day}",
                  caption=COUNTS_NOTE, caption_justify="left")
    for heading, justify in (("chat id", "right"), ("type", "left"), ("title", "left"), ("updates", "right"),
                             ("stored", "right"), ("skipped", "right"), ("update types", "left"),
                             ("last seen (UTC)", "left"), ("allowlisted", "left")):
        table.add_column(heading, justify=justify, no_wrap=heading in ("chat id", "last seen (UTC)", "allowlisted"))
    for chat in report.chats:
        table.add_row(
            str(chat.chat_id), Text(plain(chat.chat_type or "-")), Text(plain(chat.name)), str(chat.updates),
            str(chat.counts["stored"]), str(chat.counts["skipped"]),
            Text(plain(", ".join(chat.update_types))), _utc(chat.last_seen, "seconds"),
            Text(chat.allowlisted_as, style="" if chat.allowlisted else "bold red"),
        )
    console.print(table)
    if report.links:
        links = Table(title="Group upgrades followed by the ingest (old id -> new id)")
        links.add_column("old -> new")
        links.add_column("learned (UTC)")
        for item in report.links:
            links.add_row(f"{item.link.old} -> {item.link.new}", _utc(item.learned, "seconds"))
        console.print(links)


def _utc(instant: datetime, timespec: str = "milliseconds") -> str:
    return instant.astimezone(timezone.utc).isoformat(timespec=timespec)

"""`python -m tools import-history EXPORT`: a chat's history from Telegram Desktop's export into the lake.

A new stage knows nothing before its webhook was set. This command turns the export (`result.json`, one chat or
the all-chats export: tools/operate/desktop_export.py) into what the webhook would have stored, in the stage's
raw bucket (`--stage S`, with the operator's credentials) or a local lake (`--local DIR`, as `demo-output/lake`),
and compacts the days it touched with the stage's engine, so every saved query and the report include them.

1. Read: the export is parsed as a stream, in bounded memory, behind a progress bar. Each message of a chat the
   stage allows (`allowed_chat_ids`, plus the upgrades the ingest followed) becomes its updates, spooled to a
   scratch folder per chat and day (the message's `date` in the stage's zone). Any other chat is refused, named
   with the id to allowlist. Days before `analytics_start_date` are counted, not written (Athena never shows
   them). Bad input stops here, before anything is written.
2. Write: each chat's day becomes ONE batch of envelope lines marked `imported` (lambdas/common/envelope.py),
   `telegram/context_date=D/import-<chat>-<digest>.jsonl.gz`, the lines in update id order, `received_at` the
   message's own date (so a line is on its arrival day, as the raw zone's contract says, and a re-import writes
   the same bytes: gzip with mtime 0). The digest names the content: the same export finds its object already
   there and writes nothing; a newer export of the chat replaces that day's earlier import (the new object is
   put, then the old one deleted). The webhook's copy wins: a message whose (chat, message id) a webhook copy
   holds on the day or the days beside it is left out, and counted as a duplicate. A day whose compacted file
   holds webhook rows whose raw objects are gone (the raw zone expired them) is left as it is.
3. Compact: every day it wrote that has ended in the stage's zone (a day that has not is left to tonight's run,
   its answers coming from the raw zone until then), and every day whose compacted file is older than its import
   (a run interrupted before compacting), with the stage's engine: deployed through `etl run`'s runners, locally
   in-process against the local stack's S3 (tools/local/stack.py), which the lake's days are copied into and the
   compacted files out of.

No reader-side rule: imported update ids are negative (Telegram's never are), so an imported update and a webhook
one never collide, and every reader keeps both; the import alone decides which message is whose. A webhook copy
that reached the raw zone after the import read it would count twice, so the import leaves out the messages of the
last minutes, which the raw stream may still buffer (the stage's `raw_batch_seconds` and IN_FLIGHT_MARGIN_SECONDS):
import again later to take them. Webhook copies never arrive for older messages: Telegram delivers new ones.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
import tempfile
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence, TextIO

from lambdas.common.envelope import envelope_line
from lambdas.common.layout import (
    CHAT_LINKS_PREFIX, PARTITION_KEY, PREFIX, day_prefix, local_day, previous_day, raw_object_kind,
)
from lambdas.common.updates import update_payload, update_type
from lambdas.etl.day import OUTPUT_NAME, Copy, UnreadableObject, copies_of
from lambdas.etl.flatten import message_type
from lambdas.ingest.chats import ChatLink, allowed_through, parse_link_key
from stacks import outputs
from stacks.config import StageConfig
from tools.cli import CommandError, add_stage_argument, aws_session, plain, require_output, stack_outputs, stage_config
from tools.local.sql import ENRICHED_FOLDER, RAW_FOLDER
from tools.local.stack import telegram_json
from tools.operate.desktop_export import (
    MIGRATED_ID_SHIFT, Converted, ExportedChat, ExportError, TargetChat, bot_api_chat, chat_hash,
    message_updates, read_export,
)

if TYPE_CHECKING:
    from rich.console import Console

    from tools.operate.etl_runs import DayOutcome

EXPORT_FILE = "result.json"  # what Telegram Desktop names the machine-readable export
IMPORT_NAME = "import-"  # the start of every raw object this command writes, and of no other
TELEGRAM_LAUNCH = 1_376_438_400  # 2013-08-14: no message is older
FUTURE_SLACK_SECONDS = 86_400  # a clock a day fast still exports a real message
# Beyond the raw stream's buffering interval: how long a webhook copy may take to reach the raw zone.
IN_FLIGHT_MARGIN_SECONDS = 300
# Exports made before mid-2021 wrote a group's or channel's id with this added (Telegram Desktop's old peer ids).
OLD_EXPORT_ID_SHIFT = 1 << 33
PIPED_WIDTH = 120


class Zone(Protocol):
    """A bucket of the lake (raw or enriched), or its folder in a local lake: keys as in the bucket."""

    where: str

    def listing(self, prefix: str) -> list[Stored]: ...
    def read(self, keys: Sequence[str]) -> Iterator[bytes]: ...
    def write(self, key: str, body: bytes) -> None: ...
    def delete(self, key: str) -> None: ...


@dataclass(frozen=True, order=True)
class Stored:
    key: str
    size: int
    modified: float  # Unix seconds


class FolderZone:
    """A zone of a local lake: `DIR/raw` or `DIR/enriched`, laid out as its bucket."""

    def __init__(self, root: Path):
        self.root = root
        self.where = str(root)

    def listing(self, prefix: str) -> list[Stored]:
        folder = self.root / prefix
        if not folder.is_dir():
            return []
        return sorted(
            Stored(path.relative_to(self.root).as_posix(), path.stat().st_size, path.stat().st_mtime)
            for path in folder.rglob("*") if path.is_file()
        )

    def read(self, keys: Sequence[str]) -> Iterator[bytes]:
        return ((self.root / key).read_bytes() for key in keys)

    def write(self, key: str, body: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")  # hidden: no reader lists it, should the write stop
        partial.write_bytes(body)
        partial.replace(path)

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)


class BucketZone:
    """A bucket of the deployed stage, through the operator's credentials; every S3 error ends the command."""

    def __init__(self, s3: Any, bucket: str, concurrency: int):
        self._s3 = s3
        self.bucket = bucket
        self._concurrency = concurrency
        self.where = f"s3://{bucket}"

    def listing(self, prefix: str) -> list[Stored]:
        with _s3_errors(f"list {self.where}/{prefix}"):
            return [
                Stored(item["Key"], item["Size"], item["LastModified"].timestamp())
                for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
                for item in page.get("Contents", ())
            ]

    def read(self, keys: Sequence[str]) -> Iterator[bytes]:
        from lambdas.etl.store import read_in_order

        with _s3_errors(f"read {self.where}/{keys[0] if keys else ''}"):
            yield from read_in_order(self._s3, self.bucket, keys, self._concurrency)

    def write(self, key: str, body: bytes) -> None:
        with _s3_errors(f"write {self.where}/{key}"):
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/gzip")

    def delete(self, key: str) -> None:
        with _s3_errors(f"delete {self.where}/{key}"):
            self._s3.delete_object(Bucket=self.bucket, Key=key)


@contextmanager
def _s3_errors(what: str) -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as error:
        raise CommandError(f"cannot {what}: {error}") from None


# Compacts the given days with the stage's engine; one outcome per day.
Compactor = Callable[[Sequence[date], "Console"], "list[DayOutcome]"]


@dataclass(frozen=True)
class Lake:
    raw: Zone
    enriched: Zone
    compact: Compactor


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import-history",
        help="import a chat's history from Telegram Desktop's export (result.json) into the lake",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "export", type=Path, metavar="EXPORT",
        help=f"Telegram Desktop's machine-readable export: its {EXPORT_FILE}, or the folder holding it",
    )
    add_stage_argument(parser)
    parser.add_argument(
        "--local", type=Path, metavar="DIR",
        help="import into a local lake (DIR/raw and DIR/enriched, as demo-output/lake) instead of the deployed stage",
    )
    parser.add_argument(
        "--chat-id", type=int, metavar="ID",
        help="the Bot API id of the exported chat (-100... for a supergroup or channel), instead of the export's "
        "own: for an export made before mid-2021, whose ids Telegram Desktop shifted",
    )
    parser.set_defaults(func=import_command)


def import_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    config = stage_config(args)
    console = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
    lake = local_lake(args.local, config) if args.local else deployed_lake(config)
    summary = import_history(args.export, config, lake, console, chat_id=args.chat_id)
    console.print(summary_table(summary, config))
    failed = [outcome for outcome in summary.compacted if not outcome.ok]
    if failed:
        console.print(
            f"[bold red]{len(failed)} day(s) failed to compact[/] (first {failed[0].day}: {plain(failed[0].error)}); "
            "the import is written: run this command again, or `python -m tools etl run` for those days"
        )
        return 1
    return 0


# ---- where the lake is


def deployed_lake(config: StageConfig) -> Lake:
    """The deployed stage's buckets (found through its stacks' outputs) and its engine, as `etl run` runs it."""
    from tools.operate.etl_runs import deployed_runner, run_days

    session = aws_session(config)
    raw_bucket = require_output(
        stack_outputs(config, "Ingestion", session), outputs.RAW_BUCKET_NAME, config.stack_name("Ingestion")
    )
    enriched_bucket = require_output(
        stack_outputs(config, "Etl", session), outputs.ENRICHED_BUCKET_NAME, config.stack_name("Etl")
    )
    s3 = session.client("s3")
    concurrency = config.etl_read_concurrency

    def compact(days: Sequence[date], console: Console) -> list[DayOutcome]:
        return run_days(days, deployed_runner(config), console) if days else []

    return Lake(BucketZone(s3, raw_bucket, concurrency), BucketZone(s3, enriched_bucket, concurrency), compact)


def local_lake(folder: Path, config: StageConfig) -> Lake:
    """A local lake: `DIR/raw` and `DIR/enriched` (written into a new or empty DIR too); its days are compacted by
    the stage's engine in this process, against the local stack's S3."""
    raw, enriched = folder / RAW_FOLDER, folder / ENRICHED_FOLDER
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"--local {folder} is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not (raw.is_dir() or enriched.is_dir()):
        raise CommandError(
            f"--local {folder} holds neither raw/ nor enriched/: a local lake is laid out as demo-output/lake"
        )

    def compact(days: Sequence[date], console: Console) -> list[DayOutcome]:
        return compact_folder_days(config, raw, enriched, days, console)

    return Lake(FolderZone(raw), FolderZone(enriched), compact)


def compact_folder_days(
    config: StageConfig, raw: Path, enriched: Path, days: Sequence[date], console: Console
) -> list[DayOutcome]:
    """Compact days of a local lake with the stage's engine (`etl run --local`'s), against a local stack's S3: each
    day's raw objects and the day before's go in, the day's compacted file and rejects report come out (a file the
    engine deleted is deleted)."""
    if not days:
        return []
    from lambdas.etl.handler import EtlSettings
    from tools.local.stack import LocalStack
    from tools.operate.etl_runs import local_engine_runner, run_days

    raw_zone, enriched_zone = FolderZone(raw), FolderZone(enriched)
    with LocalStack(config) as stack:
        s3 = stack.client("s3")
        for day in sorted({each for day in days for each in (day - timedelta(days=1), day)}):
            for stored in raw_zone.listing(day_prefix(day)):
                s3.put_object(Bucket=stack.raw_bucket, Key=stored.key, Body=(raw / stored.key).read_bytes())
        settings = EtlSettings(
            stack.raw_bucket, stack.enriched_bucket, config.timezone, config.etl_read_concurrency,
            analytics_start_date=date.fromisoformat(config.analytics_start_date),
        )
        outcomes = run_days(days, local_engine_runner(settings, config), console)
        for outcome in outcomes:
            if not outcome.ok:
                continue
            prefix = day_prefix(outcome.day)
            listed = s3.list_objects_v2(Bucket=stack.enriched_bucket, Prefix=prefix).get("Contents", ())
            compacted = {item["Key"] for item in listed}
            for stored in enriched_zone.listing(prefix):
                if stored.key not in compacted:
                    enriched_zone.delete(stored.key)
            for key in sorted(compacted):
                enriched_zone.write(key, s3.get_object(Bucket=stack.enriched_bucket, Key=key)["Body"].read())
    return outcomes


# ---- the import


@dataclass
class ChatImport:
    """One exported chat and what became of it."""

    id: int  # the Bot API id it imports under (or would: a refused chat's id to allowlist)
    name: str | None
    messages: int = 0  # exported messages read
    refused: str | None = None  # why the chat is not imported


@dataclass
class ImportSummary:
    chats: list[ChatImport] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)  # what was written: message types, joins, leaves, reactions
    skipped: Counter[str] = field(default_factory=Counter)  # messages not imported, by reason
    duplicates: int = 0  # messages a webhook copy already holds
    before_start: Counter[date] = field(default_factory=Counter)  # messages per day before analytics_start_date
    too_recent: int = 0  # messages of the last minutes, left to the webhook
    days: set[date] = field(default_factory=set)  # days with imported messages
    written: int = 0  # raw objects put
    unchanged: int = 0  # raw objects already there, byte for byte
    replaced: int = 0  # earlier imports' objects deleted
    kept_days: set[date] = field(default_factory=set)  # compacted days whose raw objects expired: left as they are
    not_ended: set[date] = field(default_factory=set)  # days left to tonight's run
    compacted: list[DayOutcome] = field(default_factory=list)


def import_history(
    export: Path, config: StageConfig, lake: Lake, console: Console, *, chat_id: int | None = None,
    now: datetime | None = None,
) -> ImportSummary:
    """The whole import (see the module's docstring); CommandError for bad input, before anything is written."""
    now = now or datetime.now(timezone.utc)
    path = export / EXPORT_FILE if export.is_dir() else export
    if not path.is_file():
        raise CommandError(f"{export} is not a file (or a folder holding {EXPORT_FILE})")
    links = chat_links(lake.raw)
    summary = ImportSummary()
    with tempfile.TemporaryDirectory(prefix="import-history-") as scratch:
        spool = Spool(Path(scratch))
        read_chats(path, config, links, spool, summary, console, chat_id=chat_id, now=now)
        if not any(chat.refused is None for chat in summary.chats):
            raise CommandError(_nothing_to_import(summary))
        changed = write_days(lake, spool, links, summary, console)
    summary.compacted = lake.compact(days_to_compact(lake, summary, changed, config, now), console)
    return summary


def chat_links(raw: Zone) -> list[ChatLink]:
    """The group upgrades the ingest followed (`ingest-state/chat-links/`; none in a local lake without them)."""
    return [link for stored in raw.listing(CHAT_LINKS_PREFIX) if (link := parse_link_key(stored.key)) is not None]


def target_chat(
    exported: ExportedChat, config: StageConfig, links: Sequence[ChatLink], chat_id: int | None
) -> TargetChat | str:
    """Where an exported chat imports: its Bot API id (or `chat_id`), followed along the group upgrades the stage
    followed to the chat the stage follows now; or why it is refused."""
    mapped = bot_api_chat(exported)
    if mapped is None:
        return f"a {exported.type or 'nameless'} chat, which no bot is in"
    own_id, chat_type = mapped
    start = own_id if chat_id is None else chat_id
    successors = {link.old: link.new for link in links}
    followed, seen = start, {start}
    while successors.get(followed) not in (None, *seen):
        followed = successors[followed]
        seen.add(followed)
    if followed not in allowed_through(config.allowed_chat_ids, links):
        return _not_allowlisted(start, exported, config, links)
    upgraded = followed != start
    return TargetChat(
        id=followed, type="supergroup" if upgraded else chat_type, title=exported.name, own_id=own_id,
        message_id_shift=MIGRATED_ID_SHIFT if upgraded else 0,
    )


def _not_allowlisted(chat_id: int, exported: ExportedChat, config: StageConfig, links: Sequence[ChatLink]) -> str:
    reason = (
        f"not allowlisted in stage {config.stage}: add {chat_id} to its allowed_chat_ids in cdk.json "
        f"(context.stages.{config.stage}) to import it"
    )
    unshifted = exported.export_id - OLD_EXPORT_ID_SHIFT
    if 0 < unshifted < OLD_EXPORT_ID_SHIFT:
        mapped = bot_api_chat(ExportedChat(unshifted, exported.type, exported.name))
        if mapped is not None and mapped[0] in allowed_through(config.allowed_chat_ids, links):
            reason += (
                f"; an export made before mid-2021 shifts chat ids, and {mapped[0]} is allowlisted: "
                f"if this is that chat, import it with --chat-id {mapped[0]}"
            )
    return reason


def read_chats(
    path: Path, config: StageConfig, links: Sequence[ChatLink], spool: Spool, summary: ImportSummary,
    console: Console, *, chat_id: int | None, now: datetime,
) -> None:
    """Step 1: every message of the export to the spool, or counted as not imported."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    start = date.fromisoformat(config.analytics_start_date)
    latest = int(now.timestamp()) + FUTURE_SLACK_SECONDS
    recent = now.timestamp() - config.raw_batch_seconds - IN_FLIGHT_MARGIN_SECONDS
    hashes = {chat_hash(allowed): allowed for allowed in allowed_through(config.allowed_chat_ids, links)}
    columns = (
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()
    )
    chat: ChatImport | None = None
    target: TargetChat | str | None = None
    with Progress(*columns, console=console) as progress, path.open("rb") as stream:
        task = progress.add_task(f"reading {path.name}", total=path.stat().st_size)
        try:
            for item in read_export(stream, lambda read: progress.advance(task, read)):
                if isinstance(item, ExportedChat):
                    if chat_id is not None and summary.chats:
                        raise CommandError(f"{path}: --chat-id names one chat, and this export holds more than one")
                    target = target_chat(item, config, links, chat_id)
                    chat = ChatImport(_shown_id(item, target, chat_id), item.name,
                                      refused=target if isinstance(target, str) else None)
                    summary.chats.append(chat)
                    if isinstance(target, TargetChat):
                        _check_hash(target.id, hashes)
                    continue
                assert chat is not None and target is not None  # read_export yields a chat before its messages
                chat.messages += 1
                if isinstance(target, str):
                    continue
                converted = message_updates(target, item, earliest=TELEGRAM_LAUNCH, latest=latest)
                if converted.skipped:
                    summary.skipped[converted.skipped] += 1
                    continue
                day = local_day(datetime.fromtimestamp(converted.date, timezone.utc), config.timezone)
                if day < start:
                    summary.before_start[day] += 1
                elif converted.date > recent:
                    summary.too_recent += 1
                else:
                    spool.add(target, day, converted)
        except ExportError as error:
            raise CommandError(f"{path}: {error}") from None
        finally:
            spool.close()


def _shown_id(exported: ExportedChat, target: TargetChat | str, chat_id: int | None) -> int:
    """The id a chat is named by in the summary: where it imports, or the id to allowlist."""
    if isinstance(target, TargetChat):
        return target.id
    mapped = bot_api_chat(exported)
    return chat_id or (mapped[0] if mapped else exported.export_id)


def _check_hash(chat_id: int, hashes: dict[int, int]) -> None:
    """Imported update ids number chats by a hash of their id: two chats of the stage must not share one."""
    other = hashes.setdefault(chat_hash(chat_id), chat_id)
    if other != chat_id:
        raise CommandError(
            f"chats {other} and {chat_id} share the hash imported update ids number them by: importing one would "
            "overwrite the other's history; report this to the project"
        )


def _nothing_to_import(summary: ImportSummary) -> str:
    refused = [f"chat {chat.id} ({plain(chat.name)}): {chat.refused}" for chat in summary.chats if chat.refused]
    return "nothing imported: " + ("; ".join(refused) if refused else "the export holds no chat")


class Spool:
    """The converted updates of each chat's day, in a scratch folder: one file of update lines per chat and day.

    An export is in message order, so its days come one after another: one file is open at a time."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.targets: dict[int, TargetChat] = {}
        self.chat_days: set[tuple[int, date]] = set()
        self._open: tuple[tuple[int, date], TextIO] | None = None

    def add(self, target: TargetChat, day: date, converted: Converted) -> None:
        self.targets[target.id] = target
        key = (target.id, day)
        if self._open is None or self._open[0] != key:
            self.close()
            self._open = (key, self.path(*key).open("a", encoding="utf-8"))
            self.chat_days.add(key)
        for update in converted.updates:
            self._open[1].write(telegram_json(update).decode("utf-8") + "\n")

    def path(self, chat_id: int, day: date) -> Path:
        return self.folder / f"{chat_id}_{day.isoformat()}.jsonl"

    def updates(self, chat_id: int, day: date) -> list[dict[str, Any]]:
        with self.path(chat_id, day).open(encoding="utf-8") as lines:
            return [json.loads(line) for line in lines]

    def close(self) -> None:
        if self._open is not None:
            self._open[1].close()
            self._open = None


def write_days(
    lake: Lake, spool: Spool, links: Sequence[ChatLink], summary: ImportSummary, console: Console
) -> set[date]:
    """Step 2: each chat's day as one batch in the raw zone (see the module's docstring); the days that changed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    predecessors: dict[int, set[int]] = {}
    for link in links:
        predecessors.setdefault(link.new, set()).add(link.old)
    compacted = compacted_days(lake.enriched)
    webhook = WebhookCopies(lake.raw)
    changed: set[date] = set()
    chat_days = sorted(spool.chat_days, key=lambda item: (item[1], item[0]))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("writing the raw zone", total=len(chat_days))
        for chat_id, day in chat_days:
            progress.update(task, description=f"writing {day}")
            listed = lake.raw.listing(day_prefix(day))
            if day in compacted and _expired_webhook_rows(lake.enriched, compacted[day], listed):
                summary.kept_days.add(day)
            elif _write_day(lake.raw, chat_id, day, listed, spool, webhook, predecessors, summary):
                changed.add(day)
            progress.advance(task)
    return changed


def _write_day(
    raw: Zone, chat_id: int, day: date, listed: Sequence[Stored], spool: Spool, webhook: WebhookCopies,
    predecessors: Mapping[int, set[int]], summary: ImportSummary,
) -> bool:
    """One chat's day: the batch of its updates no webhook copy holds; whether the raw zone changed."""
    held = webhook.around(day)
    kept, dropped = [], set()
    for update in spool.updates(chat_id, day):
        payload = update_payload(update)
        message_id = payload["message_id"]
        if message_id in dropped or _webhook_holds(held, chat_id, message_id, predecessors):
            if update_type(update) != "message_reaction_count":
                summary.duplicates += 1
            dropped.add(message_id)
            continue
        kept.append(update)
        summary.kinds[_kind(update)] += 1
    if kept:
        summary.days.add(day)
    earlier = [stored.key for stored in listed if _name(stored.key).startswith(f"{IMPORT_NAME}{chat_id}-")]
    key, body = import_object(chat_id, day, kept) if kept else (None, b"")
    if key is not None and earlier == [key]:
        summary.unchanged += 1
        return False
    if key is not None:
        raw.write(key, body)
        summary.written += 1
    for old in earlier:
        if old != key:
            raw.delete(old)
            summary.replaced += 1
    return key is not None or bool(earlier)


def import_object(chat_id: int, day: date, updates: Iterable[dict[str, Any]]) -> tuple[str, bytes]:
    """The key and gzip body of a chat's day: envelope lines marked imported, in update id order, received at the
    message's date; the same updates always give the same key and bytes."""
    lines = b"".join(
        envelope_line(day, update_payload(update)["date"] * 1000, telegram_json(update), imported=True)
        for update in sorted(updates, key=lambda update: update["update_id"])
    )
    digest = hashlib.sha256(lines).hexdigest()[:16]
    return f"{day_prefix(day)}{IMPORT_NAME}{chat_id}-{digest}.jsonl.gz", gzip.compress(lines, compresslevel=9, mtime=0)


def _webhook_holds(
    held: set[tuple[int, int]], chat_id: int, message_id: int, predecessors: Mapping[int, set[int]]
) -> bool:
    """Whether a webhook copy of the message is stored: in the chat, or (a basic group's message, whose id the
    supergroup's export shifted) in a group the chat continues, under its own id."""
    if (chat_id, message_id) in held:
        return True
    groups = predecessors.get(chat_id, ())
    return message_id < 0 and any((old, message_id - MIGRATED_ID_SHIFT) in held for old in groups)


def _kind(update: Mapping[str, Any]) -> str:
    """What the summary counts an update as: a join, a leave, a reaction count, or its message's type."""
    payload = update_payload(update)
    if update_type(update) == "message_reaction_count":
        return "reaction counts"
    if payload.get("new_chat_members"):
        return "joins"
    if payload.get("left_chat_member"):
        return "leaves"
    return message_type(payload)


class WebhookCopies:
    """The (chat, message id) of every new message a webhook copy holds, per raw day, read once per day: the
    objects of the day's folder that this command did not write."""

    def __init__(self, raw: Zone):
        self._raw = raw
        self._days: dict[date, set[tuple[int, int]]] = {}

    def around(self, day: date) -> set[tuple[int, int]]:
        """The day's and the days beside it (a message sent before midnight may arrive after it)."""
        for stale in [known for known in self._days if known < day - timedelta(days=1)]:
            del self._days[stale]
        return set().union(*(self._day(day + timedelta(days=offset)) for offset in (-1, 0, 1)))

    def _day(self, day: date) -> set[tuple[int, int]]:
        if day not in self._days:
            self._days[day] = self._read(day)
        return self._days[day]

    def _read(self, day: date) -> set[tuple[int, int]]:
        objects = [
            (stored.key, kind) for stored in self._raw.listing(day_prefix(day))
            if not _name(stored.key).startswith(IMPORT_NAME) and (kind := raw_object_kind(stored.key, day)) is not None
        ]
        held: set[tuple[int, int]] = set()
        for (key, kind), body in zip(objects, self._raw.read([key for key, _ in objects]), strict=True):
            try:
                copies = list(copies_of(key, kind, body, day))
            except UnreadableObject as error:
                raise CommandError(f"{self._raw.where}/{key}: {error}") from None
            for copy in copies:
                if isinstance(copy, Copy) and update_type(copy.update) in ("message", "channel_post"):
                    payload = update_payload(copy.update)
                    chat = payload.get("chat") if isinstance(payload, Mapping) else None
                    chat_id = chat.get("id") if isinstance(chat, Mapping) else None
                    if isinstance(chat_id, int) and isinstance(payload.get("message_id"), int):
                        held.add((chat_id, payload["message_id"]))
        return held


def compacted_days(enriched: Zone) -> dict[date, Stored]:
    """Each compacted day's Parquet file in the enriched zone."""
    return {
        date.fromisoformat(stored.key.removeprefix(f"{PREFIX}{PARTITION_KEY}=")[:10]): stored
        for stored in enriched.listing(PREFIX) if _name(stored.key) == OUTPUT_NAME
    }


def _name(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def _expired_webhook_rows(enriched: Zone, compacted: Stored, listed: Sequence[Stored]) -> bool:
    """Whether a day's compacted file holds webhook rows (update ids >= 0) that no raw object holds any more: the
    raw zone expired them (raw_expiration_days), and compacting the day again would lose them."""
    import io

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if any(not _name(stored.key).startswith(IMPORT_NAME) for stored in listed):
        return False
    ids = pq.read_table(io.BytesIO(next(enriched.read([compacted.key]))), columns=["update_id"])["update_id"]
    return len(ids) > 0 and pc.max(ids).as_py() >= 0


def days_to_compact(
    lake: Lake, summary: ImportSummary, changed: set[date], config: StageConfig, now: datetime
) -> list[date]:
    """The days whose raw zone this run changed, and those whose compacted file is missing or older than their
    import (an earlier run stopped before compacting): those that have ended in the stage's zone."""
    latest = previous_day(config.timezone, now)
    compacted = compacted_days(lake.enriched)
    due = set(changed)
    for day in summary.days - changed:
        imported = [stored for stored in lake.raw.listing(day_prefix(day)) if _name(stored.key).startswith(IMPORT_NAME)]
        if day not in compacted or any(stored.modified > compacted[day].modified for stored in imported):
            due.add(day)
    summary.not_ended = {day for day in due if day > latest}
    return sorted(day for day in due if day <= latest)


# ---- the summary


def summary_table(summary: ImportSummary, config: StageConfig) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="[bold]History import[/]", show_header=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    rows: list[tuple[str, str]] = []
    for chat in summary.chats:
        refused = f"; refused: {chat.refused}" if chat.refused else ""
        rows.append((f"chat {chat.id}", f"{chat.name or ''}: {chat.messages} messages exported{refused}"))
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(summary.kinds.items()))
    rows.append(("imported", kinds or "nothing"))
    first_last = f" ({min(summary.days)} to {max(summary.days)})" if summary.days else ""
    rows.append(("days", f"{len(summary.days)}{first_last}"))
    objects = f"{summary.written} written, {summary.unchanged} unchanged, {summary.replaced} replaced"
    rows.append(("raw objects", objects))
    duplicates = f"{summary.duplicates} messages a webhook copy already holds (the webhook's copy is kept)"
    rows.append(("duplicates", duplicates))
    for reason, count in sorted(summary.skipped.items()):
        rows.append(("not imported", f"{count} {reason}{'s' if count != 1 else ''}"))
    if summary.before_start:
        earliest = min(summary.before_start)
        rows.append((
            "before analytics_start_date",
            f"{sum(summary.before_start.values())} messages on {len(summary.before_start)} days from {earliest}, not "
            f"imported: Athena shows no day before the stage's analytics_start_date {config.analytics_start_date}; "
            f"set it to {earliest} in cdk.json (context.stages.{config.stage}), deploy, and import again",
        ))
    if summary.too_recent:
        rows.append(("too recent", f"{summary.too_recent} messages of the last minutes, which the webhook may still be "
                                   "delivering: import again later to take those it did not"))
    if summary.kept_days:
        rows.append(("kept as compacted", f"{len(summary.kept_days)} days whose webhook rows' raw objects expired "
                                          f"(raw_expiration_days), first {min(summary.kept_days)}: not imported"))
    ok = [outcome for outcome in summary.compacted if outcome.ok]
    rows.append(("compacted", f"{len(ok)} of {len(summary.compacted)} days"))
    if summary.not_ended:
        rows.append(("left to tonight's run", ", ".join(str(day) for day in sorted(summary.not_ended))
                     + " (not ended yet: answered from the raw zone until then)"))
    for label, value in rows:
        table.add_row(label, Text(plain(value)))
    return table

"""`python -m tools demo`: the whole pipeline on this machine, from webhook deliveries to the analytics report.

1. Starts the local stack (moto S3 + Secrets Manager, the local Firehose, the webhook endpoint, the real
   ingest handler).
2. Generates a synthetic week of a group chat (plus another chat's traffic) and POSTs every update over
   HTTP as Telegram would, a few of them twice (Telegram redelivers when it misses an answer), each
   arriving at its synthetic time, so it lands in that day's partition: the local Firehose batches each
   day's updates as the stage's stream does (a gzip batch per minute with traffic, on the updates' own
   arrival times) and writes what it still buffers once every update is delivered.
3. Runs the ETL handler for every day but the last (today: not compacted yet, as before tonight's run) and
   copies both buckets to `lake/raw/` and `lake/enriched/` in the output folder before the local stack goes
   away, so `python -m tools query NAME --local OUT/lake` works afterwards.
4. Imports the chat's history: the same chat's weeks before the webhook (`--history-days`), written as Telegram
   Desktop's export (`history/result.json`) and imported into that lake as `python -m tools import-history
   OUT/history --local OUT/lake` does, so the engagement questions (newcomers staying, writers per week and
   month, top members) have weeks to answer from.
5. Runs every saved query on DuckDB over the lake (today's answers come from the raw zone, up to the minute),
   prints the answers and writes the analytics report (`report.html`, as `python -m tools report` does).

The Lambda handlers write a JSON log line and an EMF metrics document per request to standard output,
as CloudWatch expects: the demo sends those to `lambda.log` in the output folder, like a log group, and
keeps the terminal for its own output.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, TextIO
from zoneinfo import ZoneInfo

from analytics import SavedQuery, stage_queries
from lambdas.common.layout import PARTITION_KEY, PREFIX, today
from lambdas.common.updates import update_chat_id
from stacks.config import StageConfig
from tools.cli import CommandError, add_stage_argument, count_argument, plain, stage_config
from tools.operate.etl_runs import DayOutcome, days_between, local_engine_runner, run_days, summary_table
from tools.local.stack import LocalStack, deliver, telegram_json
from tools.local.sql import ENRICHED_FOLDER, RAW_FOLDER, download_lake, open_lake
from tools.operate.report import write_demo_report
from tools.local.synthetic import CHAT_TITLE, SyntheticUpdate, desktop_export, synthetic_chat, write_desktop_export
from tools.operate.import_history import EXPORT_FILE, ImportSummary, import_history, local_lake
from tools.operate.import_history import summary_table as import_table

if TYPE_CHECKING:
    from rich.console import Console

DEFAULT_OUT = "demo-output"
DEFAULT_DAYS = 7
DEFAULT_PER_DAY = 300
DEFAULT_HISTORY_DAYS = 28  # the chat's weeks before its webhook was set, imported from its export
HISTORY = "history"  # the export's folder in the output folder
# A year of chat at most, and a busy group's traffic: more only takes hours (and a start date millions of
# days back does not exist).
MAX_DAYS = 366
MAX_PER_DAY = 10_000
LAMBDA_LOG = "lambda.log"
LAKE_COPY = "lake"  # raw/ and enriched/, each laid out as its bucket (telegram/context_date=DAY/...)
# Share of updates delivered twice, and how much later the second delivery arrives.
REDELIVERY_SHARE = 0.02
REDELIVERY_DELAY = timedelta(seconds=20)
DELIVERY_THREADS = 8  # Telegram's webhook delivers in parallel too (max_connections)
OTHER_CHAT_ID = -1009876543210
TABLE_ROWS = 12  # rows shown per saved query; the report and `tools query --local` show everything
PIPED_WIDTH = 120
REPORT = "report.html"  # the analytics report (`python -m tools report`), from the same answers

# A saved query's answer, by query name: column names and rows.
Answers = dict[str, tuple[list[str], list[tuple]]]


@dataclass(frozen=True)
class DemoSummary:
    updates: int
    deliveries: int
    allowed_deliveries: int
    raw_objects_per_day: dict[date, int]
    duplicates_dropped_by_etl: int
    non_message_updates: int
    parquet_rows: int
    parquet_files: int
    history: ImportSummary | None
    queries: int
    lake_copy: Path
    report: Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline locally on a synthetic chat: webhook -> raw -> ETL -> DuckDB -> report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stage_argument(parser)
    parser.add_argument("--out", type=Path, default=Path(DEFAULT_OUT), help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument(
        "--days", type=count_argument(MAX_DAYS), default=DEFAULT_DAYS,
        help=f"days of chat (default {DEFAULT_DAYS}, at most {MAX_DAYS})",
    )
    parser.add_argument(
        "--per-day", type=count_argument(MAX_PER_DAY), default=DEFAULT_PER_DAY,
        help=f"average updates per day (default {DEFAULT_PER_DAY}, at most {MAX_PER_DAY})",
    )
    parser.add_argument(
        "--start", type=date.fromisoformat, metavar="YYYY-MM-DD",
        help="first day (default: the last --days days, today included)",
    )
    parser.add_argument(
        "--history-days", type=_history_days, default=DEFAULT_HISTORY_DAYS,
        help=f"days of the chat before --start, imported from its Telegram Desktop export (default "
        f"{DEFAULT_HISTORY_DAYS}, 0 for none, at most {MAX_DAYS})",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed of the synthetic chat (default 7)")
    parser.set_defaults(func=demo_command)


def demo_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    config = stage_config(args)
    start = args.start or today(config.timezone) - timedelta(days=args.days - 1)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with standard_output_to(args.out / LAMBDA_LOG) as terminal:
        # Piped or captured output gets a fixed width instead of rich's 80 columns, so the tables stay readable.
        console = Console(file=terminal, width=None if terminal.isatty() else PIPED_WIDTH)
        summary = run_demo(
            config, args.out, start=start, days=args.days, per_day=args.per_day, seed=args.seed, console=console,
            history_days=args.history_days,
        )
        console.print()
        console.print(_summary_table(summary, args.out / LAMBDA_LOG, time.monotonic() - started))
    return 0


def run_demo(
    config: StageConfig, out: Path, *, start: date, days: int, per_day: int, seed: int, console: Console,
    history_days: int = 0,
) -> DemoSummary:
    queries = stage_queries(config)  # first: a broken one fails before anything runs
    chat_id = config.allowed_chat_ids[0]
    other_chat_id = _other_chat(config.allowed_chat_ids)
    now = datetime.now(timezone.utc)
    # One community: its weeks before the webhook (exported, then imported) and its days since (delivered).
    chat = synthetic_chat(
        start - timedelta(days=history_days), history_days + days, per_day, chat_id=chat_id,
        other_chat_id=other_chat_id, zone=config.timezone, seed=seed,
    )
    webhook_set = datetime.combine(start, datetime.min.time(), tzinfo=ZoneInfo(config.timezone))
    history = [update for update in chat if update.arrival < webhook_set]
    updates = [update for update in chat if webhook_set <= update.arrival <= now]  # nothing from later today
    deliveries = with_redeliveries(updates, random.Random(seed))
    console.rule(f"[bold]Telegram Lake demo[/]: stage {config.stage}, {config.timezone}")
    with LocalStack(config) as stack:
        console.print(f"local stack: webhook {stack.webhook_url}, S3 {stack.endpoint_url}", soft_wrap=True)
        console.print(
            f"delivering {len(deliveries)} webhook requests ({len(updates)} updates, "
            f"{len(deliveries) - len(updates)} redelivered) for chat {chat_id} and chat {other_chat_id} ..."
        )
        deliver_all(stack, deliveries)
        stack.firehose.flush()  # the last minute of each day, as Firehose writes it a minute later
        raw_objects = raw_objects_per_day(stack)
        last_day = start + timedelta(days=days - 1)
        outcomes = compact_days(stack, config, days_between(start, last_day - timedelta(days=1)), console)
        console.print(f"{last_day} is left to tonight's run: its answers come from the raw zone, up to the minute")
        lake = copy_lake(stack, out / LAKE_COPY, console)
    imported = import_demo_history(config, history, out, lake, console) if history else None
    answers = run_saved_queries(lake, queries, console)
    console.print(today_from_the_raw_zone(answers, last_day), soft_wrap=True)
    first = start - timedelta(days=history_days)
    report = write_demo_report(answers, queries, config, out / REPORT, first=first, last=last_day)
    console.print(f"\nwrote the analytics report {report} (open it in a browser)", soft_wrap=True)
    etl = [outcome.summary or {} for outcome in outcomes]
    return DemoSummary(
        updates=len(updates),
        deliveries=len(deliveries),
        allowed_deliveries=sum(1 for item in deliveries if update_chat_id(item.update) in config.allowed_chat_ids),
        raw_objects_per_day=raw_objects,
        duplicates_dropped_by_etl=sum(day.get("duplicates", 0) for day in etl),
        non_message_updates=sum(day.get("skipped", 0) for day in etl),
        parquet_rows=sum(day.get("rows_written", 0) for day in etl),
        parquet_files=sum(1 for day in etl if day.get("output_key")),
        history=imported,
        queries=len(answers),
        lake_copy=lake,
        report=report,
    )


def import_demo_history(
    config: StageConfig, history: Sequence[SyntheticUpdate], out: Path, lake: Path, console: Console
) -> ImportSummary:
    """The chat's days before the webhook, as Telegram Desktop exports them, imported into the demo's lake."""
    chat_id = config.allowed_chat_ids[0]
    export = write_desktop_export(desktop_export(history, chat_id, name=CHAT_TITLE), out / HISTORY / EXPORT_FILE)
    console.print(f"importing the chat's history before the webhook from its export {export} ...", soft_wrap=True)
    summary = import_history(export, config, local_lake(lake, config), console)
    console.print(import_table(summary, config))
    failed = [outcome for outcome in summary.compacted if not outcome.ok]
    if failed:
        raise CommandError(
            f"the history's compaction failed for {len(failed)} day(s), first {failed[0].day}: {failed[0].error}"
        )
    return summary


def with_redeliveries(updates: Sequence[SyntheticUpdate], rng: random.Random) -> list[SyntheticUpdate]:
    """Every update once, plus a few delivered again `REDELIVERY_DELAY` later, in arrival order.

    Each redelivery is one more line in the raw zone (in the next day's partition when the first copy arrived
    just before midnight); the ETL keeps the first arrival.
    """
    again = rng.sample(list(updates), max(1, round(len(updates) * REDELIVERY_SHARE)))
    repeats = [replace(item, arrival=item.arrival + REDELIVERY_DELAY) for item in again]
    return sorted([*updates, *repeats], key=lambda item: item.arrival)


def deliver_all(stack: LocalStack, deliveries: Sequence[SyntheticUpdate]) -> None:
    """POST every update to the webhook as Telegram would; any answer but 200 fails the demo."""

    def send(item: SyntheticUpdate) -> tuple[int, int, str]:
        answer = deliver(stack.webhook_url, stack.secret, telegram_json(item.update), arrival=item.arrival)
        return item.update["update_id"], answer.status, answer.body

    with ThreadPoolExecutor(max_workers=DELIVERY_THREADS, thread_name_prefix="telegram-delivery") as pool:
        failed = [(update_id, status, body) for update_id, status, body in pool.map(send, deliveries) if status != 200]
    if failed:
        update_id, status, body = failed[0]
        raise CommandError(f"{len(failed)} deliveries failed; first: update {update_id} got HTTP {status} {body!r}")


def compact_days(stack: LocalStack, config: StageConfig, days: Sequence[date], console: Console) -> list[DayOutcome]:
    """The stage's ETL engine for each day, as `etl run --local` runs it; a failed day fails the demo."""
    from lambdas.etl.handler import EtlSettings

    settings = EtlSettings(stack.raw_bucket, stack.enriched_bucket, config.timezone, config.etl_read_concurrency)
    console.print(f"compacting with the stage's {config.etl_engine} engine")
    outcomes = run_days(days, local_engine_runner(settings, config), console)
    console.print(summary_table(outcomes))
    failed = [outcome for outcome in outcomes if not outcome.ok]
    if failed:
        raise CommandError(f"the ETL failed for {len(failed)} day(s), first {failed[0].day}: {failed[0].error}")
    return outcomes


def copy_lake(stack: LocalStack, folder: Path, console: Console) -> Path:
    """Both buckets' days, copied to `folder/raw` and `folder/enriched` with the buckets' layout while the local
    S3 is still up. The folder is the demo's own: a previous run's copy is replaced, so it holds this run only.
    """
    if folder.exists():
        shutil.rmtree(folder)
    raw = download_lake(f"s3://{stack.raw_bucket}/{PREFIX}", folder / RAW_FOLDER / PREFIX, raw=True)
    enriched = download_lake(f"s3://{stack.enriched_bucket}", folder / ENRICHED_FOLDER)
    console.print(
        f"copied {len(raw)} raw objects and {len(enriched)} daily Parquet files to {folder} "
        f"(`python -m tools query NAME --local {folder}`)",
        soft_wrap=True,
    )
    return folder


def today_from_the_raw_zone(answers: Answers, day: date) -> str:
    """The line that shows "up to the minute": the last day's count, which only the raw zone holds."""
    counts = {row["context_date"]: row["message_amount"] for row in _records(answers, "daily_message_count")}
    return (
        f"\n[bold]today[/] ({day}, not compacted yet): {counts.get(day, 0)} messages so far, "
        "answered from the raw zone by the same saved query"
    )


def run_saved_queries(lake_folder: Path, queries: Iterable[SavedQuery], console: Console) -> Answers:
    """Every saved query on DuckDB over the local lake, printed as a table; answers by query name."""
    from rich.text import Text

    answers: Answers = {}
    with open_lake(str(lake_folder)) as lake:
        for query in queries:
            columns, rows = lake.run(query)
            answers[query.name] = (columns, rows)
            console.print(Text.assemble("\n", (query.name, "bold"), ": ", plain(query.question)))
            console.print(_answer_table(columns, rows))
    return answers


def _records(answers: Answers, name: str) -> list[dict[str, Any]]:
    if name not in answers:
        raise CommandError(f"the demo needs the saved query {name!r}, which analytics/ no longer has")
    columns, rows = answers[name]
    return [dict(zip(columns, row)) for row in rows]


def raw_objects_per_day(stack: LocalStack) -> dict[date, int]:
    """The raw zone's objects (Firehose's batches) per day folder; the raw bucket also holds the ingest's own
    state, outside `telegram/`."""
    pages = stack.client("s3").get_paginator("list_objects_v2").paginate(Bucket=stack.raw_bucket, Prefix=PREFIX)
    folders = [item["Key"].removeprefix(f"{PREFIX}{PARTITION_KEY}=").split("/", 1)[0]
               for page in pages for item in page.get("Contents", [])]
    return {date.fromisoformat(day): folders.count(day) for day in sorted(set(folders))}


def _other_chat(allowed: Sequence[int]) -> int:
    """A chat the stage does not allow: its traffic must reach the webhook and never the lake."""
    other = OTHER_CHAT_ID
    while other in allowed:
        other -= 1
    return other


def _answer_table(columns: Sequence[str], rows: Sequence[tuple]) -> Any:
    """The first rows of an answer; every cell as plain text (message text is what users wrote)."""
    from rich.table import Table
    from rich.text import Text

    shown = rows[:TABLE_ROWS]
    more = f"... and {len(rows) - len(shown)} more rows" if len(rows) > len(shown) else None
    table = Table(caption=more, caption_justify="left")
    for index, column in enumerate(columns):
        numeric = bool(rows) and all(isinstance(row[index], (int, float)) or row[index] is None for row in rows)
        table.add_column(Text(plain(column)), justify="right" if numeric else "left")
    for row in shown:
        table.add_row(*(Text("NULL" if value is None else plain(value)) for value in row))
    return table


def _summary_table(summary: DemoSummary, log: Path, seconds: float) -> Any:
    from rich.table import Table

    table = Table(title="[bold]Demo summary[/]", show_header=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(justify="right")
    for label, value in (
        ("updates generated", summary.updates),
        ("webhook deliveries", summary.deliveries),
        ("  not for the allowed chat (200, not stored)", summary.deliveries - summary.allowed_deliveries),
        ("  stored: a line each, in Firehose's batches", summary.allowed_deliveries),
        ("raw objects (gzip batches)", sum(summary.raw_objects_per_day.values())),
        ("  per day", per_day(summary.raw_objects_per_day)),
        ("  redeliveries dropped by the ETL", summary.duplicates_dropped_by_etl),
        ("  non-message updates skipped by the ETL", summary.non_message_updates),
        ("Parquet rows", f"{summary.parquet_rows} in {summary.parquet_files} daily files"),
        ("history imported from its export", _history_line(summary.history)),
        ("saved queries run on DuckDB", summary.queries),
        ("raw and enriched zones copied to", str(summary.lake_copy)),
        ("analytics report", str(summary.report)),
        ("Lambda logs", str(log)),
        ("wall time", f"{seconds:.1f} s"),
    ):
        table.add_row(label, str(value))
    return table


def _history_line(history: ImportSummary | None) -> str:
    if history is None or not history.days:
        return "none"
    messages = sum(count for kind, count in history.kinds.items() if kind != "reaction counts")
    return f"{messages} messages on {len(history.days)} days ({min(history.days):%m-%d} to {max(history.days):%m-%d})"


def _history_days(text: str) -> int:
    """--history-days: 0 (none) to MAX_DAYS."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {MAX_DAYS}, got {text!r}")
    return value


def per_day(counts: dict[date, int]) -> str:
    """A count per day, short for a long run: each day's up to a week, else the least, the mean and the most."""
    if not counts:
        return "none"
    days = f"{min(counts):%m-%d} to {max(counts):%m-%d}"
    values = list(counts.values())
    if len(values) <= 7:
        return f"{' '.join(map(str, values))} ({days})"
    return f"{min(values)} to {max(values)}, {sum(values) / len(values):.0f} on average ({days})"


@contextmanager
def standard_output_to(path: Path) -> Iterator[TextIO]:
    """Point this process's standard output (file descriptor 1) at `path`; yield a stream to the original.

    At the descriptor level, so it catches every writer, whenever it bound `sys.stdout` (Powertools'
    logger binds it at import).
    """
    sys.stdout.flush()
    original = os.dup(1)
    try:
        with path.open("w", encoding="utf-8") as log, open(original, "w", encoding="utf-8", closefd=False) as terminal:
            os.dup2(log.fileno(), 1)
            try:
                yield terminal
            finally:
                sys.stdout.flush()
                os.dup2(original, 1)
    finally:
        os.close(original)

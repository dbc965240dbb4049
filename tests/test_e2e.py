"""End to end over real HTTP: a synthetic group chat -> the local webhook -> the local Firehose -> gzip batches in
the raw bucket -> ETL -> Parquet -> the saved queries on DuckDB, checked against answers computed here, in plain
Python, from the input.

The expected values deliberately do not reuse the pipeline's helpers (allowlist, flattening, command
parsing): they follow the definitions written in the saved queries' headers.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest

from analytics import load_queries
from lambdas.common.envelope import update_bytes
from lambdas.common.layout import PREFIX, raw_object_kind
from lambdas.common.layout import today as local_today
from lambdas.etl.day import object_lines
from lambdas.etl.handler import EtlSettings
from stacks.config import load_from_cdk_json
from tools.__main__ import main as tools_main
from tools.local.demo import standard_output_to
from tools.operate.etl_runs import local_runner
from tools.local.stack import LocalStack, deliver, telegram_json
from tools.local.sql import open_lake
from tools.local.synthetic import SyntheticUpdate, synthetic_chat

pytestmark = pytest.mark.e2e

CONFIG = load_from_cdk_json("dev")
ZONE = ZoneInfo(CONFIG.timezone)
CHAT = CONFIG.allowed_chat_ids[0]
OTHER_CHAT = -1009876543210
START = date(2026, 11, 20)
DAYS = 3
PER_DAY = 110
REDELIVER_EVERY = 20
# The kinds of update the synthetic chat produces, and where each keeps its chat; message kinds become rows.
CHAT_OF_KIND = {
    "message": lambda payload: payload["chat"]["id"],
    "edited_message": lambda payload: payload["chat"]["id"],
    "my_chat_member": lambda payload: payload["chat"]["id"],
    "chat_member": lambda payload: payload["chat"]["id"],
    "message_reaction": lambda payload: payload["chat"]["id"],
    "message_reaction_count": lambda payload: payload["chat"]["id"],
    "callback_query": lambda payload: payload["message"]["chat"]["id"],
    "poll_answer": lambda payload: None,
}
MESSAGE_KINDS = ("message", "edited_message")


def kind_of(update: dict[str, Any]) -> str:
    (kind,) = set(update) - {"update_id"}
    assert kind in CHAT_OF_KIND, f"the synthetic chat produces {kind!r} updates: teach this test where their chat is"
    return kind


def chat_of(update: dict[str, Any]) -> int | None:
    kind = kind_of(update)
    return CHAT_OF_KIND[kind](update[kind])


@dataclass(frozen=True)
class Line:
    """One line of a raw batch: the day folder of its object, its envelope, the update as sent."""

    key: str
    day: date
    envelope: dict[str, Any]
    update: dict[str, Any]


@dataclass
class Pipeline:
    updates: list[SyntheticUpdate]  # each once, with its first arrival
    deliveries: list[SyntheticUpdate]  # what Telegram sent: redeliveries too
    redelivered: list[int]
    across_midnight: int  # redelivered after midnight: two lines in two days' batches, one row
    rejected_id: int
    statuses: Counter
    rejected_status: int
    raw_keys: list[str]
    lines: list[Line]  # every line of every raw batch
    rows: list[dict[str, Any]]  # every Parquet row, plus the day of the file it was read from
    answers: dict[str, list[dict[str, Any]]]

    @property
    def first_arrival_day(self) -> dict[int, date]:
        return {item.update["update_id"]: item.arrival.astimezone(ZONE).date() for item in self.updates}

    def allowed(self, *kinds: str) -> list[dict[str, Any]]:
        return [item.update for item in self.updates if chat_of(item.update) == CHAT and kind_of(item.update) in kinds]


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    assert OTHER_CHAT not in CONFIG.allowed_chat_ids
    updates = synthetic_chat(
        START, DAYS, PER_DAY, chat_id=CHAT, other_chat_id=OTHER_CHAT, zone=CONFIG.timezone, seed=11
    )
    redelivered = [replace(item, arrival=item.arrival + timedelta(seconds=5)) for item in updates[::REDELIVER_EVERY]]
    last_of_first_day = [
        item for item in updates
        if item.arrival.astimezone(ZONE).date() == START
        and chat_of(item.update) == CHAT
        and kind_of(item.update) == "message"
    ][-1]
    after_midnight = datetime.combine(START + timedelta(days=1), time(0, 0, 30), tzinfo=ZONE)
    deliveries = [*updates, *redelivered, replace(last_of_first_day, arrival=after_midnight)]
    rejected = {**last_of_first_day.update, "update_id": max(item.update["update_id"] for item in updates) + 1}

    with LocalStack(CONFIG) as stack:
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = pool.map(
                lambda item: deliver(stack.webhook_url, stack.secret, telegram_json(item.update), arrival=item.arrival),
                deliveries,
            )
            statuses = Counter(answer.status for answer in answers)
        rejected_status = deliver(stack.webhook_url, "a-wrong-secret", telegram_json(rejected)).status

        stack.firehose.flush()
        s3 = stack.client("s3")
        raw_keys = [item["Key"]
                    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack.raw_bucket, Prefix=PREFIX)
                    for item in page.get("Contents", [])]
        lines = [batch_line(key, each) for key in raw_keys
                 for each in object_lines(key, s3.get_object(Bucket=stack.raw_bucket, Key=key)["Body"].read())]
        run_day = local_runner(EtlSettings(stack.raw_bucket, stack.enriched_bucket, CONFIG.timezone, 8))
        rows = []
        for offset in range(DAYS):
            day = START + timedelta(days=offset)
            summary = run_day(day)
            parquet = s3.get_object(Bucket=stack.enriched_bucket, Key=summary["output_key"])["Body"].read()
            rows += [{**row, "context_date": day} for row in pq.read_table(io.BytesIO(parquet)).to_pylist()]
        with open_lake(f"s3://{stack.enriched_bucket}") as lake:
            query_answers = {}
            for query in load_queries(CONFIG.timezone, CONFIG.glue_database):
                columns, result = lake.run(query)
                query_answers[query.name] = [dict(zip(columns, row)) for row in result]

    return Pipeline(
        updates=updates,
        deliveries=deliveries,
        redelivered=[item.update["update_id"] for item in redelivered],
        across_midnight=last_of_first_day.update["update_id"],
        rejected_id=rejected["update_id"],
        statuses=statuses,
        rejected_status=rejected_status,
        raw_keys=raw_keys,
        lines=lines,
        rows=rows,
        answers=query_answers,
    )


def folder_day(key: str) -> date:
    return date.fromisoformat(key.removeprefix(f"{PREFIX}context_date=")[:10])


def batch_line(key: str, line: bytes) -> Line:
    return Line(key, folder_day(key), json.loads(line), json.loads(update_bytes(line)))


# ---- nothing lost, nothing duplicated, nothing foreign


def test_every_delivery_is_answered_200(pipeline):
    assert set(pipeline.statuses) == {200}


def test_every_allowed_delivery_is_one_line_as_sent_in_its_arrival_days_folder(pipeline):
    """Redeliveries too: a line each, the first arrival kept by the readers."""
    sent = Counter(
        (item.arrival.astimezone(ZONE).date(), telegram_json(item.update)) for item in pipeline.deliveries
        if chat_of(item.update) == CHAT
    )
    stored = Counter((line.day, telegram_json(line.update)) for line in pipeline.lines)
    assert stored == sent
    assert all(line.envelope["context_date"] == line.day.isoformat() for line in pipeline.lines)
    redelivered = Counter(line.update["update_id"] for line in pipeline.lines)
    assert {update_id for update_id, copies in redelivered.items() if copies > 1} == (
        {pipeline.across_midnight} | {update["update_id"] for update in pipeline.allowed(*CHAT_OF_KIND)
                                      if update["update_id"] in pipeline.redelivered})


def test_the_raw_zone_holds_gzip_batches_of_a_minute_not_an_object_per_update(pipeline):
    assert all(raw_object_kind(key, folder_day(key)) == "batch" and key.endswith(".jsonl.gz")
               for key in pipeline.raw_keys)
    assert len(pipeline.raw_keys) < len(pipeline.lines)
    for key in pipeline.raw_keys:
        arrivals = [line.envelope["received_at"] for line in pipeline.lines if line.key == key]
        assert max(arrivals) - min(arrivals) < 60_000  # one batch: the arrivals of at most a minute


def test_every_allowed_message_appears_exactly_once_in_the_parquet(pipeline):
    row_ids = [row["update_id"] for row in pipeline.rows]
    assert len(row_ids) == len(set(row_ids))
    assert set(row_ids) == {update["update_id"] for update in pipeline.allowed(*MESSAGE_KINDS)}


def test_rows_carry_the_messages_as_sent_on_their_first_arrival_day(pipeline):
    sent = {update["update_id"]: update[kind_of(update)] for update in pipeline.allowed(*MESSAGE_KINDS)}
    first_day = pipeline.first_arrival_day
    for row in pipeline.rows:
        message = sent[row["update_id"]]
        assert (row["message_id"], row["user_id"], row["chat_id"], row["date"], row["text"], row["caption"]) == (
            message["message_id"], message["from"]["id"], message["chat"]["id"], message["date"],
            message.get("text"), message.get("caption"),
        )
        assert row["context_date"] == first_day[row["update_id"]]
    assert first_day[pipeline.across_midnight] == START


def test_updates_from_other_chats_never_reach_the_lake(pipeline):
    others = {item.update["update_id"] for item in pipeline.updates if chat_of(item.update) == OTHER_CHAT}
    assert others, "the synthetic chat must include another chat's traffic"
    assert others.isdisjoint(line.update["update_id"] for line in pipeline.lines)
    assert {row["chat_id"] for row in pipeline.rows} == {CHAT}


def test_redeliveries_collapse(pipeline):
    allowed_messages = {update["update_id"] for update in pipeline.allowed(*MESSAGE_KINDS)}
    redelivered = [update_id for update_id in pipeline.redelivered if update_id in allowed_messages]
    assert redelivered
    rows = Counter(row["update_id"] for row in pipeline.rows)
    assert all(rows[update_id] == 1 for update_id in [*redelivered, pipeline.across_midnight])


def test_a_wrong_secret_is_rejected_and_stores_nothing(pipeline):
    assert pipeline.rejected_status == 401
    assert pipeline.rejected_id not in {line.update["update_id"] for line in pipeline.lines}
    assert pipeline.rejected_id not in {row["update_id"] for row in pipeline.rows}


# ---- the saved queries answer what the input says


def people(updates: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """(update_id, message) of the updates sent by people, not bots."""
    messages = [(update["update_id"], update[kind_of(update)]) for update in updates]
    return [(update_id, message) for update_id, message in messages if not message["from"]["is_bot"]]


def test_daily_message_count(pipeline):
    day = pipeline.first_arrival_day
    expected = Counter(day[update_id] for update_id, _ in people(pipeline.allowed("message")))
    answer = {row["context_date"]: row["message_amount"] for row in pipeline.answers["daily_message_count"]}
    assert answer == dict(expected) and len(answer) == DAYS


def test_messages_per_user_per_day(pipeline):
    """Per user id and arrival day, people's new messages; the name is the one on the day's latest message."""
    day = pipeline.first_arrival_day
    counts: Counter = Counter()
    latest_name = {}
    for update_id, message in sorted(people(pipeline.allowed("message")), key=lambda sent: sent[0]):
        user_day = (message["from"]["id"], day[update_id])
        counts[user_day] += 1
        latest_name[user_day] = message["from"]["first_name"]
    rows = [(user, latest_name[user, day_], day_, count) for (user, day_), count in counts.items()]
    expected = sorted(rows, key=lambda row: (-row[2].toordinal(), -row[3], row[0]))  # newest day, busiest, id
    answer = [
        (row["user_id"], row["user_first_name"], row["context_date"], row["message_amount"])
        for row in pipeline.answers["messages_per_user_per_day"]
    ]
    assert len({user for user, _ in counts}) > 3 and answer == expected


def test_messages_by_local_hour_weekday(pipeline):
    """People's new messages by the wall-clock time they were sent in the stage's zone; 1 = Monday ... 7 = Sunday."""
    sent: Counter = Counter()
    for _, message in people(pipeline.allowed("message")):
        local = datetime.fromtimestamp(message["date"], ZONE)
        sent[local.isoweekday(), local.hour] += 1
    rows = [(weekday, hour, count) for (weekday, hour), count in sent.items()]
    expected = sorted(rows, key=lambda row: (-row[2], row[0], row[1]))  # busiest first, then weekday and hour
    answer = [
        (row["weekday"], row["hour_of_day"], row["message_amount"])
        for row in pipeline.answers["messages_by_local_hour_weekday"]
    ]
    assert {weekday for weekday, _ in sent} == {5, 6, 7}  # Friday to Sunday: Sunday must be 7, not DuckDB's 0
    assert answer == expected


def test_daily_active_users(pipeline):
    day = pipeline.first_arrival_day
    active = defaultdict(set)
    for update_id, message in people(pipeline.allowed("message", "edited_message")):
        active[day[update_id]].add(message["from"]["id"])
    answer = {row["context_date"]: row["active_users"] for row in pipeline.answers["daily_active_users"]}
    assert answer == {day_: len(users) for day_, users in active.items()}


def leading_command(message: dict[str, Any]) -> str | None:
    """The bot command a text or caption starts with, lower-cased, without its @bot suffix."""
    for text_field, entities_field in (("text", "entities"), ("caption", "caption_entities")):
        for entity in message.get(entities_field, []):
            if entity["type"] == "bot_command" and entity["offset"] == 0:
                return message[text_field][: entity["length"]].partition("@")[0].lower()
    return None


def test_top_commands(pipeline):
    uses: Counter = Counter()
    users = defaultdict(set)
    for _, message in people(pipeline.allowed("message")):
        command = leading_command(message)
        if command:
            uses[command] += 1
            users[command].add(message["from"]["id"])
    counted = [(name, count, len(users[name])) for name, count in uses.items()]
    ranked = sorted(counted, key=lambda row: (-row[1], -row[2], row[0]))  # uses, then users, then name
    expected = ranked[:20]  # the query's LIMIT
    answer = [(row["command"], row["uses"], row["users"]) for row in pipeline.answers["top_commands"]]
    assert len(expected) > 3 and answer == expected


# ---- the demo command


def test_demo_runs_end_to_end_writes_its_report_and_leaves_no_thread(tmp_path, capfd):
    threads_before = set(threading.enumerate())
    exit_code = tools_main(["demo", "--out", str(tmp_path), "--days", "2", "--per-day", "60", "--history-days", "3"])
    assert exit_code == 0
    assert set(threading.enumerate()) == threads_before
    printed = capfd.readouterr().out
    assert "Demo summary" in printed and "daily_message_count" in printed
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert f"wrote the analytics report {tmp_path / 'report.html'}" in printed
    assert report.startswith("<!DOCTYPE html>") and report.count("<svg") >= 3  # the browser check: make check-report

    # Both zones outlive the local stack, for `query --local OUT/lake` (the README's example). Yesterday is
    # compacted; today is left to tonight's run, so its answer comes from the raw zone. The three days before are
    # the chat's history, imported from its export (tools/local/synthetic.py writes it as Telegram Desktop does).
    lake = tmp_path / "lake"
    today = local_today(CONFIG.timezone)
    yesterday = today - timedelta(days=1)
    history = [yesterday - timedelta(days=offset) for offset in (3, 2, 1)]
    files = sorted((lake / "enriched").glob("telegram/context_date=*/telegram.parquet"))
    assert [file.parent.name for file in files] == [f"context_date={day}" for day in (*history, yesterday)]
    assert json.loads((tmp_path / "history" / "result.json").read_text())["type"] == "private_supergroup"
    imported = [path for path in (lake / "raw").glob("telegram/*/import-*.jsonl.gz")]
    assert sorted(path.parent.name for path in imported) == [f"context_date={day}" for day in history]
    raw_objects = [path for path in (lake / "raw").glob("telegram/*/*") if path not in imported]
    assert f"copied {len(raw_objects)} raw objects and 1 daily Parquet files" in printed
    assert all(path.name.endswith(".jsonl.gz") for path in raw_objects)  # Firehose's batches, no single objects
    assert re.search(r"history imported from its export\s*│\s*\d+ messages on 3 days", printed), printed
    per_day = [len([path for path in (lake / "raw").glob(f"telegram/context_date={day}/*") if path not in imported])
               for day in (yesterday, today)]
    summary = re.search(r"raw objects \(gzip batches\)\s*│\s*(\d+)\s*│\s*\n.*per day\s*│\s*([\d ]+) \(", printed)
    assert summary and int(summary[1]) == len(raw_objects), printed
    assert [int(count) for count in summary[2].split()] == [count for count in per_day if count]
    expected = {}
    for file in files:  # the history's days, imported and compacted, and yesterday
        compacted = pq.read_table(file).to_pylist()
        day = file.parent.name.removeprefix("context_date=")
        expected[day] = sum(row["update_type"] == "message" and not row["user_is_bot"] for row in compacted)
    yesterdays_ids = set(raw_updates(lake, yesterday))
    todays = [
        update for update_id, update in raw_updates(lake, today).items()
        if update_id not in yesterdays_ids  # a redelivery after midnight is yesterday's
    ]
    todays_messages = sum("message" in update and not update["message"]["from"]["is_bot"] for update in todays)
    if todays_messages:
        expected[today.isoformat()] = todays_messages
    assert f"today ({today}, not compacted yet): {todays_messages} messages so far" in printed

    assert tools_main(["query", "daily_message_count", "--local", str(lake), "--format", "json"]) == 0
    answer = json.loads(capfd.readouterr().out)
    assert {row["context_date"]: row["message_amount"] for row in answer} == expected


def raw_updates(lake: Path, day: date) -> dict[int, dict[str, Any]]:
    """The updates in a day's raw batches of the demo's copy, once each (a redelivery is a second line)."""
    lines = [each for path in (lake / "raw").glob(f"telegram/context_date={day}/*.jsonl.gz")
             for each in gzip.decompress(path.read_bytes()).splitlines()]
    updates = [json.loads(update_bytes(each)) for each in lines]
    return {update["update_id"]: update for update in updates}


def test_demo_sends_standard_output_to_the_log_file_and_its_own_output_to_the_terminal(tmp_path, capfd):
    log = tmp_path / "lambda.log"
    with standard_output_to(log) as terminal:
        os.write(1, b'{"message":"webhook request"}\n')  # what a handler prints, whenever it bound stdout
        terminal.write("demo table\n")
    os.write(1, b"after the demo\n")
    assert log.read_text() == '{"message":"webhook request"}\n'
    assert capfd.readouterr().out == "demo table\nafter the demo\n"


def test_the_demos_answers_are_printed_as_plain_text():
    """An answer's text is what users wrote: `[/x]` is not rich markup, an escape sequence does nothing."""
    from rich.console import Console

    from tools.local.demo import _answer_table

    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(_answer_table(["question", "[b]times"], [("how [/x] do \x1b[2J\u202eI", 3), (None, 1)]))

    printed = console.file.getvalue()
    assert "how [/x] do \\u001b[2J\\u202eI" in printed and "[b]times" in printed and "NULL" in printed
    assert not set(printed) & set("\x1b\u202e")


@pytest.mark.parametrize(("flag", "value"), [("--days", "9" * 20), ("--days", "0"), ("--per-day", "10001"),
                                             ("--per-day", "x")])
def test_the_demos_size_is_bounded_and_refused_in_one_line(capsys, flag, value):
    """A huge --days once overflowed the start date into a traceback."""
    with pytest.raises(SystemExit):
        tools_main(["demo", flag, value])
    err = capsys.readouterr().err
    assert f"argument {flag}: must be an integer from 1 to " in err and "Traceback" not in err

"""The saved analytics: valid Athena SQL with a header, and on DuckDB the answers plain Python computes.

Every answer is computed here from the generated rows with datetime/zoneinfo, not SQL, and each saved
query's DuckDB result must equal it row for row, in order: Sunday is weekday 7, averages round half up,
local hours are in the scenario's zone (one scenario crosses an ISO year, one a DST change), and weeks are
ISO weeks of the local day, starting on Monday.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

import analytics
from analytics import (
    SHOW_MEMBER_NAMES_PLACEHOLDER, TIMEZONE_PLACEHOLDER, find_query, load_queries, load_query, stage_queries,
)
from stacks.config import load_from_cdk_json
from tests.analytics_dataset import DAY, Scenario, generate, write_lake
from tests.test_raw_analytics import EXPECTED as RAW_ZONE_EXPECTED
from tools.cli import CommandError
from tools.local.sql import LocalLake, open_lake, run_local, to_duckdb

Rows = list[dict[str, Any]]
SCENARIOS = {
    "sao-paulo-new-year": Scenario("America/Sao_Paulo", date(2025, 12, 26), later_weeks=True),
    "new-york-dst": Scenario("America/New_York", date(2026, 3, 4), later_weeks=True),
}
DATABASE = "telegram_lake_test"
ALL_QUERY_NAMES = [query.name for query in load_queries("UTC", DATABASE)]
# The raw zone's questions (members, reactions) and "right now" need recent raw updates: tests/test_raw_analytics.py.
QUERY_NAMES = [name for name in ALL_QUERY_NAMES if name not in RAW_ZONE_EXPECTED]


@pytest.fixture(scope="module", params=list(SCENARIOS))
def dataset(request, tmp_path_factory) -> Iterator[tuple[Scenario, Rows, LocalLake]]:
    scenario = SCENARIOS[request.param]
    rows = generate(scenario)
    root = write_lake(rows, tmp_path_factory.mktemp(request.param))
    with open_lake(str(root)) as lake:
        yield scenario, rows, lake


# --- independent answers, in plain Python ------------------------------------------------------------


def _user_messages(rows: Rows) -> Rows:
    """New messages from people: not edits, not channel posts, not bots."""
    return [row for row in rows if row["update_type"] == "message" and row["user_is_bot"] is False]


def _newest_day_first(day: date) -> int:
    return -day.toordinal()


def _nulls_last(value: Any) -> tuple[bool, Any]:
    """An ascending SQL sort key: NULL after every value, as both engines order it by default."""
    return value is None, value or 0


def _latest_names(rows: Rows) -> dict[tuple[int, date], str]:
    latest = {}
    for row in sorted(rows, key=lambda row: row["update_id"]):
        latest[row["user_id"], row["context_date"]] = row["user_first_name"]
    return latest


def _question(row: dict[str, Any]) -> str | None:
    """The normalized question a message asks, if it asks one.

    Whitespace is the SQL's explicit set: `str.split()` and `str.strip()` would also take a non-breaking
    space (and more) for whitespace, which neither engine does in the saved queries.
    """
    body = row["text"] if row["text"] is not None else row["caption"]
    if body is None:
        return None
    normalized = re.sub(r"[ \t\n\f\r]+", " ", body.lower()).strip(" ")
    if not normalized.endswith("?") or not normalized.replace("?", "").strip(" "):
        return None
    return normalized


def daily_message_count(rows: Rows, zone: str) -> list[tuple]:
    counts = Counter(row["context_date"] for row in _user_messages(rows))
    return sorted(counts.items(), key=lambda item: _newest_day_first(item[0]))


def messages_per_user_per_day(rows: Rows, zone: str) -> list[tuple]:
    messages = _user_messages(rows)
    counts = Counter((row["user_id"], row["context_date"]) for row in messages)
    names = _latest_names(messages)
    result = [(user, names[user, day], day, count) for (user, day), count in counts.items()]
    return sorted(result, key=lambda row: (_newest_day_first(row[2]), -row[3], _nulls_last(row[0])))


def _text_lengths(rows: Rows) -> dict[tuple[int, date], list[int]]:
    """Code points of each user's message texts, by user and day."""
    lengths = defaultdict(list)
    for row in _user_messages(rows):
        if row["text"] is not None:
            lengths[row["user_id"], row["context_date"]].append(len(row["text"]))
    return lengths


def average_message_length_per_user_per_day(rows: Rows, zone: str) -> list[tuple]:
    names = _latest_names([row for row in _user_messages(rows) if row["text"] is not None])
    result = [
        (user, names[user, day], day, math.floor(Fraction(sum(lengths), len(lengths)) + Fraction(1, 2)))
        for (user, day), lengths in _text_lengths(rows).items()
    ]
    return sorted(result, key=lambda row: (_newest_day_first(row[2]), _nulls_last(row[0])))


def messages_per_hour_weekday_weeknum(rows: Rows, zone: str) -> list[tuple]:
    counts = Counter()
    for row in _user_messages(rows):
        sent = datetime.fromtimestamp(row["date"], timezone.utc)
        iso = sent.isocalendar()
        counts[sent.hour, iso.weekday, iso.week, iso.year] += 1
    result = [(*key, count) for key, count in counts.items()]
    return sorted(result, key=lambda row: (row[3], row[2], row[1], row[0]))


def messages_by_local_hour_weekday(rows: Rows, zone: str) -> list[tuple]:
    counts = Counter()
    for row in _user_messages(rows):
        sent = datetime.fromtimestamp(row["date"], ZoneInfo(zone))
        counts[sent.isoweekday(), sent.hour] += 1
    result = [(weekday, hour, count) for (weekday, hour), count in counts.items()]
    return sorted(result, key=lambda row: (-row[2], row[0], row[1]))


def top_questions(rows: Rows, zone: str) -> list[tuple]:
    asked = defaultdict(list)
    for row in _user_messages(rows):
        if (question := _question(row)) is not None:
            asked[question].append(row["user_id"])
    result = [(question, len(users), len(set(users))) for question, users in asked.items()]
    return sorted(result, key=lambda row: (-row[1], -row[2], row[0]))[:20]


def top_commands(rows: Rows, zone: str) -> list[tuple]:
    used = defaultdict(list)
    for row in _user_messages(rows):
        if row["command"] is not None:
            used[row["command"]].append(row["user_id"])
    result = [(command, len(users), len(set(users))) for command, users in used.items()]
    return sorted(result, key=lambda row: (-row[1], -row[2], row[0]))[:20]


def repeated_questions(rows: Rows, zone: str) -> list[tuple]:
    askings = defaultdict(list)
    for row in _user_messages(rows):
        if (question := _question(row)) is not None:
            askings[row["user_id"], question].append(row)
    asking, repeating = defaultdict(set), defaultdict(set)
    for (user, _), asked in askings.items():
        asked.sort(key=lambda row: row["date"])
        for previous, row in zip([None, *asked], asked):
            asking[row["context_date"]].add(user)
            if previous is not None and row["date"] - previous["date"] <= DAY:
                repeating[row["context_date"]].add(user)
    result = []
    for day, users in asking.items():
        share = (Decimal(100) * len(repeating[day]) / len(users)).quantize(Decimal("0.1"), ROUND_HALF_UP)
        result.append((day, len(users), len(repeating[day]), float(share)))
    return sorted(result, key=lambda row: _newest_day_first(row[0]))


def daily_active_users(rows: Rows, zone: str) -> list[tuple]:
    active = defaultdict(set)
    for row in rows:
        if row["update_type"] in ("message", "edited_message") and row["user_is_bot"] is False:
            active[row["context_date"]].add(row["user_id"])
    active = {day: users - {None} for day, users in active.items()}  # count(DISTINCT) skips NULL
    return sorted(((day, len(users)) for day, users in active.items()), key=lambda row: _newest_day_first(row[0]))


# --- the engagement questions: writers, weeks, months, chats

def _written(rows: Rows) -> Rows:
    """What the engagement questions count as writing: a new message of a person with an id, not a service
    message (a join, a pin)."""
    return [row for row in _user_messages(rows) if row["user_id"] is not None and row["message_type"] != "service"]


def _week(day: date) -> date:
    """The Monday of the ISO week `day` is in."""
    return day - timedelta(days=day.weekday())


def _one_decimal(numerator: int, denominator: int) -> float:
    """numerator / denominator rounded half up to one decimal, as Athena's round() of the double."""
    return float((Decimal(numerator) / Decimal(denominator)).quantize(Decimal("0.1"), ROUND_HALF_UP))


def weekly_active_writers(rows: Rows, zone: str) -> list[tuple]:
    writers, messages, first_week = defaultdict(set), Counter(), {}
    for row in _written(rows):
        week = _week(row["context_date"])
        writers[week].add(row["user_id"])
        messages[week] += 1
        first_week[row["user_id"]] = min(first_week.get(row["user_id"], week), week)
    result = [
        (week, len(users), sum(1 for user in users if first_week[user] == week), messages[week])
        for week, users in writers.items()
    ]
    return sorted(result, key=lambda row: _newest_day_first(row[0]))


def monthly_active_writers(rows: Rows, zone: str) -> list[tuple]:
    writers_by_day = defaultdict(set)
    for row in _written(rows):
        writers_by_day[row["context_date"]].add(row["user_id"])
    first, last = min(writers_by_day), max(writers_by_day)
    writers, writer_days = defaultdict(set), Counter()
    for day, users in writers_by_day.items():
        writers[day.replace(day=1)] |= users
        writer_days[day.replace(day=1)] += len(users)
    result = []
    for month, users in writers.items():
        month_end = (month + timedelta(days=31)).replace(day=1) - timedelta(days=1)
        averaged = (min(month_end, last) - max(month, first)).days + 1
        result.append((
            month, len(users), _one_decimal(writer_days[month], averaged), averaged,
            _one_decimal(100 * writer_days[month], averaged * len(users)),
        ))
    return sorted(result, key=lambda row: _newest_day_first(row[0]))


def newcomer_retention(rows: Rows, zone: str) -> list[tuple]:
    weeks_written = defaultdict(set)
    for row in _written(rows):
        weeks_written[row["user_id"]].add(_week(row["context_date"]))
    last_week = max(max(weeks) for weeks in weeks_written.values())
    cohorts = defaultdict(list)
    for weeks in weeks_written.values():
        cohorts[min(weeks)].append(weeks)
    result = []
    for cohort, members in cohorts.items():
        for later in range((last_week - cohort).days // 7 + 1):
            writers = sum(1 for weeks in members if cohort + timedelta(weeks=later) in weeks)
            result.append((cohort, later, len(members), writers, _one_decimal(100 * writers, len(members))))
    return sorted(result, key=lambda row: (row[0], row[1]))


def top_members(rows: Rows, zone: str, show_member_names: bool = True) -> list[tuple]:
    messages = defaultdict(list)
    for row in sorted(_written(rows), key=lambda row: row["update_id"]):
        messages[row["user_id"]].append(row)
    result = []
    for user, written in messages.items():
        latest, days = written[-1], {row["context_date"] for row in written}
        first_name, last_name = latest["user_first_name"], latest["user_last_name"]
        name = first_name if last_name is None or first_name is None else f"{first_name} {last_name}"
        result.append((
            user, name if show_member_names else None, latest["user_username"] if show_member_names else None,
            len(written), len(days), min(days), max(days),
        ))
    return sorted(result, key=lambda row: (-row[3], -row[4], row[0]))[:20]


def message_types_per_week(rows: Rows, zone: str) -> list[tuple]:
    counts = Counter((_week(row["context_date"]), row["message_type"]) for row in _written(rows))
    weekly = Counter()
    for (week, _), count in counts.items():
        weekly[week] += count
    result = [(week, kind, count, _one_decimal(100 * count, weekly[week])) for (week, kind), count in counts.items()]
    return sorted(result, key=lambda row: (_newest_day_first(row[0]), -row[2], row[1]))


def messages_per_chat(rows: Rows, zone: str) -> list[tuple]:
    chats = defaultdict(list)
    for row in sorted(rows, key=lambda row: row["update_id"]):
        if row["chat_id"] is not None:
            chats[row["chat_id"]].append(row)
    written = {id(row) for row in _written(rows)}
    result = []
    for chat_id, chat_rows in chats.items():
        titles = [row["chat_title"] for row in chat_rows if row["chat_title"] is not None]
        types = [row["chat_type"] for row in chat_rows if row["chat_type"] is not None]
        messages = [row for row in chat_rows if id(row) in written]
        posts = sum(1 for row in chat_rows if row["update_type"] == "channel_post")
        if messages or posts:
            result.append((
                chat_id, titles[-1] if titles else None, types[-1] if types else None, len(messages),
                len({row["user_id"] for row in messages}), len({row["context_date"] for row in messages}), posts,
            ))
    return sorted(result, key=lambda row: (-row[3], -row[6], row[0]))


EXPECTED: dict[str, Callable[[Rows, str], list[tuple]]] = {
    function.__name__: function
    for function in (
        daily_message_count, messages_per_user_per_day, average_message_length_per_user_per_day,
        messages_per_hour_weekday_weeknum, messages_by_local_hour_weekday, top_questions, top_commands,
        repeated_questions, daily_active_users, weekly_active_writers, monthly_active_writers, newcomer_retention,
        top_members, message_types_per_week, messages_per_chat,
    )
}


# --- the saved queries against those answers -----------------------------------------------------------


def test_every_saved_query_has_an_independent_answer():
    assert sorted(ALL_QUERY_NAMES) == sorted([*EXPECTED, *RAW_ZONE_EXPECTED])


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_saved_query_on_duckdb_equals_python(dataset, name):
    scenario, rows, lake = dataset
    _, result = lake.run(load_query(name, scenario.zone, DATABASE))
    assert result == EXPECTED[name](rows, scenario.zone)


def test_original_column_names_are_kept():
    columns = {name: _columns(name) for name in QUERY_NAMES}
    assert columns["daily_message_count"] == ["context_date", "message_amount"]
    assert columns["messages_per_user_per_day"] == ["user_id", "user_first_name", "context_date", "message_amount"]
    assert columns["average_message_length_per_user_per_day"] == [
        "user_id", "user_first_name", "context_date", "average_message_length",
    ]
    assert columns["messages_per_hour_weekday_weeknum"][:3] == [
        "parsed_date_hour", "parsed_date_weekday", "parsed_date_weeknum",
    ]


def _columns(name: str) -> list[str]:
    return sqlglot.parse_one(load_query(name, "UTC", DATABASE).sql, read="athena").named_selects


def test_the_dataset_holds_the_cases_the_sql_must_get_right(dataset):
    """Without these, the equality above could pass for a query that gets them wrong."""
    scenario, rows, _ = dataset
    messages = _user_messages(rows)
    local = [datetime.fromtimestamp(row["date"], ZoneInfo(scenario.zone)) for row in messages]
    utc = [datetime.fromtimestamp(row["date"], timezone.utc) for row in messages]
    assert any(sent.isoweekday() == 7 for sent in local)
    assert any(here.isoweekday() != there.isoweekday() for here, there in zip(local, utc))
    assert {sent.utcoffset() for sent in local} != {timedelta(0)}
    averages = [Fraction(sum(lengths), len(lengths)) for lengths in _text_lengths(rows).values()]
    assert any(average.denominator == 2 and math.floor(average) % 2 == 0 for average in averages)  # half-even differs
    assert len({row["user_first_name"] for row in messages if row["user_id"] == 104}) > 1
    assert any(
        row["update_type"] == "edited_message" and _local_day(row["date"], scenario.zone) != row["context_date"]
        for row in rows
    )
    assert any(row["user_is_bot"] for row in rows) and any(row["update_type"] == "channel_post" for row in rows)
    assert any(users_repeating for _, _, users_repeating, _ in repeated_questions(rows, scenario.zone))
    assert len(top_questions(rows, scenario.zone)) == 20  # more distinct questions than the top shows
    questions = {_question(row) for row in messages} - {None}
    assert any("\u00a0" in question and " ".join(question.split()) in questions for question in questions)
    # One scenario crosses an ISO year (week 52/53 -> week 1), the other a daylight saving change.
    assert len({sent.isocalendar().year for sent in utc}) > 1 or len({sent.utcoffset() for sent in local}) > 1


def test_the_dataset_holds_the_engagement_cases(dataset):
    """Without these, the engagement questions could pass while miscounting writers, weeks, months or chats."""
    scenario, rows, _ = dataset
    written = _written(rows)
    first_written = {}
    for row in sorted(written, key=lambda row: row["update_id"]):
        first_written.setdefault(row["user_id"], row)
    # Not writing: a join (service message) a week before the joiner's first message, an edit as someone's only
    # activity of a week, a sender without an id.
    joins = [row for row in _user_messages(rows) if row["message_type"] == "service"]
    assert any(_week(row["context_date"]) < _week(first_written[row["user_id"]]["context_date"]) for row in joins)
    weeks_written = {(row["user_id"], _week(row["context_date"])) for row in written}
    edits = [row for row in rows if row["update_type"] == "edited_message" and row["user_is_bot"] is False]
    assert any((row["user_id"], _week(row["context_date"])) not in weeks_written for row in edits)
    assert any(row["user_id"] is None for row in _user_messages(rows))
    # Weeks: a first message on a local Sunday that is Monday in UTC; a cohort that skips a week and returns.
    firsts = [datetime.fromtimestamp(row["date"], ZoneInfo(scenario.zone)) for row in first_written.values()]
    assert any(sent.isoweekday() == 7 and sent.astimezone(timezone.utc).isoweekday() == 1 for sent in firsts)
    retention = newcomer_retention(rows, scenario.zone)
    assert any(
        later[3] == 0 and any(after[0] == later[0] and after[1] > later[1] and after[3] for after in retention)
        for later in retention if later[1] > 0
    )
    # Months: two of them, and days nobody wrote on between the first and the last day.
    days = {row["context_date"] for row in written}
    assert len({day.replace(day=1) for day in days}) > 1 and len(days) < (max(days) - min(days)).days + 1
    # Kinds, names and chats.
    assert len({row["message_type"] for row in written}) >= 10
    assert any(row["user_last_name"] for row in written)
    assert len({row["user_username"] for row in written if row["user_id"] == 112}) == 2
    chats = defaultdict(list)
    for row in sorted(rows, key=lambda row: row["update_id"]):
        chats[row["chat_id"]].append(row)
    assert len(chats) >= 3 and any(row["chat_title"] is None for row in written if row["chat_type"] == "private")
    renamed = [chat for chat in chats.values() if len({row["chat_title"] for row in chat} - {None}) > 1]
    assert renamed and renamed[0][-1]["chat_title"] is None  # the newest title is not on the newest update


def test_without_member_names_the_top_members_are_user_ids_only(dataset):
    scenario, rows, lake = dataset
    [query] = [q for q in load_queries(scenario.zone, DATABASE, show_member_names=False) if q.name == "top_members"]

    _, result = lake.run(query)

    assert result == top_members(rows, scenario.zone, show_member_names=False)
    assert {(name, username) for _, name, username, *_ in result} == {(None, None)}
    assert "CASE WHEN false THEN" in query.sql
    assert "CASE WHEN true THEN" in load_query("top_members", scenario.zone, DATABASE).sql  # the default names them


def test_the_stage_setting_decides_what_every_sender_of_the_saved_queries_sends():
    """The named query (stacks/presentation.py), `tools query` and the report all load through stage_queries."""
    config = load_from_cdk_json("dev")
    for shown in (True, False):
        top = find_query(stage_queries(replace(config, show_member_names=shown)), "top_members")
        assert f"CASE WHEN {str(shown).lower()} THEN" in top.sql and SHOW_MEMBER_NAMES_PLACEHOLDER not in top.sql


def _local_day(seconds: int, zone: str) -> date:
    return datetime.fromtimestamp(seconds, ZoneInfo(zone)).date()


# --- the files themselves ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(analytics.QUERY_DIR.glob("*.sql")), ids=lambda path: path.name)
def test_sql_file_is_athena_sql_with_a_question_header(path):
    text = path.read_text(encoding="utf-8")
    assert re.fullmatch(r"\d\d_[a-z0-9_]+", path.stem), "name files NN_name.sql"
    first_line = text.splitlines()[0]
    assert re.fullmatch(r"-- \S.*\?", first_line), f"the first line must ask the question: {first_line!r}"
    sql = text.replace(TIMEZONE_PLACEHOLDER, "America/Sao_Paulo").replace(SHOW_MEMBER_NAMES_PLACEHOLDER, "true")
    statements = sqlglot.parse(sql, read="athena", error_level=ErrorLevel.RAISE)
    assert len(statements) == 1 and isinstance(statements[0], sqlglot.exp.Query)


def test_local_hours_follow_the_configured_zone():
    """The zone is the only placeholder; it reaches the SQL as the stage's IANA name."""
    query = load_query("messages_by_local_hour_weekday", "Asia/Kolkata", DATABASE)
    assert "AT TIME ZONE 'Asia/Kolkata'" in query.sql and TIMEZONE_PLACEHOLDER not in query.sql
    assert "Asia/Kolkata" in query.question


def test_loader_rejects_an_unknown_zone():
    with pytest.raises(analytics.QueryLoadError, match="unknown IANA time zone 'Asia/Nowhere'"):
        load_queries("Asia/Nowhere", DATABASE)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("SELECT 1\n", "first line must be a `--` comment"),
        ("--\nSELECT 1\n", "first line must be a `--` comment"),
        ("-- Which day?\nSELECT '{{timezone }}'\n", "unknown placeholder"),
    ],
)
def test_loader_rejects_a_malformed_file(tmp_path, monkeypatch, content, problem):
    (tmp_path / "01_broken.sql").write_text(content, encoding="utf-8")
    monkeypatch.setattr(analytics, "QUERY_DIR", tmp_path)
    with pytest.raises(analytics.QueryLoadError, match=problem):
        load_queries("UTC", DATABASE)


def test_loader_rejects_a_file_that_is_not_utf8_naming_it(tmp_path, monkeypatch):
    (tmp_path / "01_latin1.sql").write_bytes("-- Qual é a pergunta?\nSELECT 1\n".encode("latin-1"))
    monkeypatch.setattr(analytics, "QUERY_DIR", tmp_path)
    with pytest.raises(analytics.QueryLoadError, match="^01_latin1.sql: cannot read it as UTF-8 text: 'utf-8' codec"):
        load_queries("UTC", DATABASE)


def test_loader_rejects_two_files_with_one_name(tmp_path, monkeypatch):
    for stem in ("01_same", "02_same"):
        (tmp_path / f"{stem}.sql").write_text("-- Which?\nSELECT 1\n", encoding="utf-8")
    monkeypatch.setattr(analytics, "QUERY_DIR", tmp_path)
    with pytest.raises(analytics.QueryLoadError, match="share the name same"):
        load_queries("UTC", DATABASE)


# --- the dialect fixes, one by one ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("athena_sql", "answer"),
    [
        ("SELECT EXTRACT(dow FROM DATE '2026-03-01')", 7),  # a Sunday: 0 in DuckDB's own numbering
        ("SELECT EXTRACT(day_of_week FROM DATE '2026-03-02')", 1),
        ("SELECT EXTRACT(year_of_week FROM DATE '2025-12-29')", 2026),
        ("SELECT CAST(avg(x) AS integer) FROM (VALUES (2), (3)) AS t(x)", 3),  # 2.5: half to even gives 2
        ("SELECT CAST(avg(x) AS bigint) FROM (VALUES (4), (5)) AS t(x)", 5),
        ("SELECT CAST(x AS integer) FROM (VALUES (7)) AS t(x)", 7),
        ("SELECT 7 / 2", 3),  # Trino divides integers as integers
        ("SELECT EXTRACT(hour FROM from_unixtime(0) AT TIME ZONE 'Asia/Kolkata')", 5),
    ],
)
def test_transpiled_sql_answers_as_athena_does(athena_sql, answer):
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    assert connection.execute(to_duckdb(athena_sql, DATABASE)).fetchone()[0] == answer


def test_local_run_over_a_folder_without_parquet_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="no enriched Parquet or raw objects"):
        run_local(load_query("daily_message_count", "UTC", DATABASE), str(tmp_path))


def test_local_run_reads_the_table_folder_as_well_as_the_bucket_layout(tmp_path):
    rows = generate(Scenario("UTC", date(2026, 1, 5), days=3))
    root = write_lake(rows, tmp_path)
    query = load_query("daily_message_count", "UTC", DATABASE)
    assert run_local(query, str(root)) == run_local(query, str(root / "telegram"))
    assert run_local(query, str(root))[1] == daily_message_count(rows, "UTC")

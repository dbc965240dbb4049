"""The saved analytics: valid Athena SQL with a header, and on DuckDB the answers plain Python computes.

Every answer is computed here from the generated rows with datetime/zoneinfo, not SQL, and each saved
query's DuckDB result must equal it row for row, in order: Sunday is weekday 7, averages round half up,
and local hours are in the scenario's zone (one scenario crosses an ISO year, one a DST change).
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
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
from analytics import TIMEZONE_PLACEHOLDER, load_queries, load_query
from tests.analytics_dataset import DAY, Scenario, generate, write_lake
from tests.test_raw_analytics import EXPECTED as RAW_ZONE_EXPECTED
from tools.cli import CommandError
from tools.local.sql import LocalLake, open_lake, run_local, to_duckdb

Rows = list[dict[str, Any]]
SCENARIOS = {
    "sao-paulo-new-year": Scenario("America/Sao_Paulo", date(2025, 12, 26)),
    "new-york-dst": Scenario("America/New_York", date(2026, 3, 4)),
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
    return sorted(result, key=lambda row: (_newest_day_first(row[2]), -row[3], row[0]))


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
    return sorted(result, key=lambda row: (_newest_day_first(row[2]), row[0]))


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
    return sorted(((day, len(users)) for day, users in active.items()), key=lambda row: _newest_day_first(row[0]))


EXPECTED: dict[str, Callable[[Rows, str], list[tuple]]] = {
    function.__name__: function
    for function in (
        daily_message_count, messages_per_user_per_day, average_message_length_per_user_per_day,
        messages_per_hour_weekday_weeknum, messages_by_local_hour_weekday, top_questions, top_commands,
        repeated_questions, daily_active_users,
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


def _local_day(seconds: int, zone: str) -> date:
    return datetime.fromtimestamp(seconds, ZoneInfo(zone)).date()


# --- the files themselves ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(analytics.QUERY_DIR.glob("*.sql")), ids=lambda path: path.name)
def test_sql_file_is_athena_sql_with_a_question_header(path):
    text = path.read_text(encoding="utf-8")
    assert re.fullmatch(r"\d\d_[a-z0-9_]+", path.stem), "name files NN_name.sql"
    first_line = text.splitlines()[0]
    assert re.fullmatch(r"-- \S.*\?", first_line), f"the first line must ask the question: {first_line!r}"
    sql = text.replace(TIMEZONE_PLACEHOLDER, "America/Sao_Paulo")
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

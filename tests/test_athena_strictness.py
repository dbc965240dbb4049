"""The local translation refuses what Athena refuses (tools/local/sql.py `to_duckdb`): DuckDB runs these, Athena's
Trino does not, so a local answer would hide a query that fails on AWS.
"""

from __future__ import annotations

from datetime import date

import pytest

from analytics import load_queries
from tests.analytics_dataset import Scenario, generate, write_lake
from tools.cli import CommandError
from tools.local.sql import AthenaRefuses, open_lake, to_duckdb

DATABASE = "telegram_lake_test"
TABLE = f"{DATABASE}.telegram"


@pytest.mark.parametrize(
    ("athena_sql", "named"),
    [
        (f"SELECT (length(text) > 1) IS TRUE FROM {TABLE}", "`IS TRUE` (line 1)"),
        (f"SELECT user_is_bot IS NOT TRUE FROM {TABLE}", "`IS NOT TRUE`"),
        (f"SELECT user_is_bot is false FROM {TABLE}", "`IS FALSE`"),
        (f"SELECT\n  (text = 'a') IS UNKNOWN FROM {TABLE}", "`IS UNKNOWN` (line 2)"),  # sqlglot reads it as IS NULL
        (f"SELECT 1 FROM {TABLE} WHERE user_is_bot IS NOT UNKNOWN", "`IS NOT UNKNOWN`"),
    ],
)
def test_a_truth_test_trino_cannot_parse_is_refused(athena_sql, named):
    with pytest.raises(AthenaRefuses, match="does not parse on Athena") as refused:
        to_duckdb(athena_sql, DATABASE)
    assert str(refused.value).startswith(named)


@pytest.mark.parametrize(
    ("athena_sql", "named"),
    [
        (f"SELECT 1 FROM {TABLE} WHERE context_date = '2026-01-05'", "= '2026-01-05'` compares DATE with VARCHAR"),
        (f"SELECT 1 FROM {TABLE} WHERE '2026-01-05' <= context_date", "compares VARCHAR with DATE"),
        (f"SELECT 1 FROM {TABLE} WHERE context_date BETWEEN '2026-01-01' AND DATE '2026-01-05'", "DATE with VARCHAR"),
        (f"SELECT 1 FROM {TABLE} WHERE from_unixtime(\"date\") < '2026-01-05'", "compares TIMESTAMP with VARCHAR"),
        ("SELECT 1 = '1'", "`1 = '1'` compares INTEGER with VARCHAR"),
        (f"SELECT 1 FROM {TABLE} WHERE user_id IN (1, '2')", "compares BIGINT with VARCHAR"),
        (f"SELECT 1 FROM {TABLE} WHERE text <> 5", "compares VARCHAR with INTEGER"),
    ],
)
def test_a_string_compared_with_a_date_timestamp_or_number_is_refused(athena_sql, named):
    with pytest.raises(AthenaRefuses, match="Athena \\(Trino\\) refuses it") as refused:
        to_duckdb(athena_sql, DATABASE)
    assert named in str(refused.value)


@pytest.mark.parametrize(
    "athena_sql",
    [
        f"SELECT user_is_bot IS NULL, user_id IS NOT DISTINCT FROM chat_id, COALESCE(user_is_bot, false) FROM {TABLE}",
        f"SELECT 'x IS TRUE' AS quoted -- x IS TRUE, in a comment\nFROM {TABLE}",
        f"SELECT 1 FROM {TABLE} WHERE context_date = DATE '2026-01-05' AND text = 'hi' AND user_id = 1",
        f"SELECT 1 FROM {TABLE} WHERE context_date BETWEEN DATE '2026-01-01' AND current_date",
    ],
)
def test_what_athena_runs_is_translated(athena_sql):
    assert to_duckdb(athena_sql, DATABASE).startswith("SELECT")


def test_every_saved_query_still_runs_locally_and_a_refusal_names_the_query(tmp_path):
    root = write_lake(generate(Scenario("UTC", date(2026, 1, 5), days=3)), tmp_path)
    with open_lake(str(root)) as lake:
        answers = {query.name: lake.run(query) for query in load_queries("UTC", DATABASE)}
        with pytest.raises(CommandError, match="^query broken: `1 = '1'` compares INTEGER with VARCHAR"):
            lake.execute("SELECT 1 = '1'", DATABASE, "query broken")

    assert answers["daily_message_count"][1]  # the lake's days are answered, not just accepted
    assert all(columns for columns, _ in answers.values())

"""`telegram` up to the minute: the compacted days, plus the recent raw days the ETL has not compacted yet.

Every saved query reads this relation (analytics/lake/telegram.sql), so today's messages count before the
nightly run, a day whose run failed or is late (within the stage's `raw_window_days`) still counts, and a day
in both zones counts once, from the compacted one, read by one scan of its partition.
"""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
import sqlglot
from moto import mock_aws
from sqlglot import exp

from analytics import UPDATES_WINDOW_DAYS, load_query, recent_updates, up_to_the_minute
from lambdas.common.layout import raw_key
from lambdas.etl.compact import compact_day
from lambdas.etl.day import enriched_key
from tests.test_flatten_sql import compact_json, message, write_raw
from stacks.config import DEFAULT_RAW_WINDOW_DAYS
from tools.local.sql import open_lake

DATABASE = "telegram_lake_test"
ZONE = "UTC"
TODAY = datetime.now(timezone.utc).date()


def chat_message(update_id: int, day: date, text: str = "hello") -> dict[str, Any]:
    sent = int(datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc).timestamp()) + 3600 + update_id
    return message(update_id, text=text, date=sent)


def compact_into(folder: Path, raw_objects: list[tuple[str, bytes]], days: list[date]) -> None:
    """Run the ETL's own code for `days` and copy its Parquet to `folder/enriched` (the bucket's layout)."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in ("raw", "enriched"):
            s3.create_bucket(Bucket=bucket)
        for key, body in raw_objects:
            s3.put_object(Bucket="raw", Key=key, Body=body)
        for day in days:
            compact_day(s3, raw_bucket="raw", enriched_bucket="enriched", day=day, concurrency=2)
            body = s3.get_object(Bucket="enriched", Key=enriched_key(day))["Body"].read()
            target = folder / "enriched" / enriched_key(day)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
            assert pq.read_table(io.BytesIO(body)).num_rows


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    """Six days of one message per update id, their raw objects kept as the raw zone keeps them:
    - 10 days ago: raw only, outside the window (its run failed long ago: the compacted zone is the record);
    - 5 days ago: raw only, a run late by more than the default window: visible with a wider one;
    - 3 and 2 days ago: compacted; 2 days ago also has a raw object added after its run (still counted once);
    - yesterday: raw only (its run failed); today: raw only (not compacted yet);
    - one update of 2 days ago redelivered after midnight, stored again under yesterday."""
    folder = tmp_path_factory.mktemp("lake")
    days = {offset: TODAY - timedelta(days=offset) for offset in (10, 5, 3, 2, 1, 0)}
    raw = []
    for offset, day in days.items():
        raw += [(raw_key(day, offset * 100 + n), compact_json(chat_message(offset * 100 + n, day))) for n in range(offset + 1)]
    redelivered = chat_message(200, days[2])
    raw.append((raw_key(days[1], 200), compact_json(redelivered)))
    compact_into(folder, raw, [days[3], days[2]])
    late = chat_message(299, days[2], text="stored after the run")
    raw.append((raw_key(days[2], 299), compact_json(late)))
    write_raw(raw, folder)
    return folder


def messages_per_day(lake: Path, raw_window_days: int = DEFAULT_RAW_WINDOW_DAYS) -> dict[date, int]:
    query = load_query("daily_message_count", ZONE, DATABASE, raw_window_days=raw_window_days)
    with open_lake(str(lake)) as local:
        _, rows = local.run(query)
    return {row[0]: row[1] for row in rows}


def test_today_and_a_failed_day_count_from_the_raw_zone_and_compacted_days_once(lake):
    assert messages_per_day(lake) == {
        TODAY - timedelta(days=3): 4,
        TODAY - timedelta(days=2): 3,  # compacted: not the object added after the run, nor the raw copy again
        TODAY - timedelta(days=1): 2,  # raw only: the redelivered update 200 belongs to the day before
        TODAY: 1,
    }


def test_a_raw_day_outside_the_window_is_not_read(lake):
    assert TODAY - timedelta(days=10) not in messages_per_day(lake)
    assert TODAY - timedelta(days=5) not in messages_per_day(lake)
    assert DEFAULT_RAW_WINDOW_DAYS < 5


def test_a_wider_window_keeps_a_late_day_visible_and_still_counts_every_day_once(lake):
    assert messages_per_day(lake, raw_window_days=7) == {
        TODAY - timedelta(days=5): 6,
        TODAY - timedelta(days=3): 4,
        TODAY - timedelta(days=2): 3,
        TODAY - timedelta(days=1): 2,
        TODAY: 1,
    }


def test_each_partition_of_the_compacted_table_is_read_by_one_scan_only():
    """Two scans of one partition could see it before and after a publish: the day dropped or doubled. The two
    scans of `telegram` read the days before the window and the window's days: never the same partition."""
    scans = [
        select for select in sqlglot.parse_one(up_to_the_minute(DATABASE), read="athena").find_all(exp.Select)
        if select.args.get("from_") and isinstance(select.args["from_"].this, exp.Table)
        and select.args["from_"].this.name == "telegram"
    ]
    window_start = sqlglot.parse_one(f"current_date - INTERVAL '{DEFAULT_RAW_WINDOW_DAYS}' DAY", read="athena")

    assert sorted(type(select.args["where"].this).__name__ for select in scans) == ["GTE", "LT"]
    for select in scans:
        predicate = select.args["where"].this
        assert predicate.this.name == "context_date" and predicate.expression == window_start


def _raw_scans(sql: str) -> list[exp.Select]:
    """Every SELECT that reads the raw table directly."""
    return [
        select
        for select in sqlglot.parse_one(sql, read="athena").find_all(exp.Select)
        if select.args.get("from_") and isinstance(select.args["from_"].this, exp.Table)
        and select.args["from_"].this.name == "telegram_raw"
    ]


@pytest.mark.parametrize("relation", [up_to_the_minute, recent_updates], ids=["telegram", "telegram_updates"])
def test_the_raw_zone_is_read_only_for_days_a_constant_of_the_query_selects(relation):
    """Partition pruning at planning time: every read of `telegram_raw` is bounded by a predicate on
    context_date made only of current_date, intervals and literals, never of another table's data; so
    Athena's partition projection lists the window's days only, however much history there is."""
    scans = _raw_scans(relation(DATABASE))

    assert scans
    for select in scans:
        where = select.args["where"].this
        assert isinstance(where, exp.Between) and where.this.name == "context_date"
        for bound in (where.args["low"], where.args["high"]):
            assert not list(bound.find_all(exp.Column)), bound.sql()
            assert any(isinstance(node, exp.CurrentDate) for node in bound.walk()), bound.sql()


def test_the_windows_are_the_ones_the_docs_state():
    assert f"current_date - INTERVAL '{DEFAULT_RAW_WINDOW_DAYS}' DAY" in up_to_the_minute(DATABASE)
    assert "current_date - INTERVAL '9' DAY" in up_to_the_minute(DATABASE, 9)
    assert f"current_date - INTERVAL '{UPDATES_WINDOW_DAYS}' DAY" in recent_updates(DATABASE)

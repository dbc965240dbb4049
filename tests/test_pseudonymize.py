"""The analysts' pseudonymized table: keyed hashes for user ids (and private chats), no names, text kept or
dropped; written by both engines beside the full table, from the same rows, with the key read from Secrets Manager.
"""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from lambdas.etl.compact import compact_day
from lambdas.etl.day import enriched_key
from lambdas.etl.handler import EtlSettings, process
from lambdas.etl.pseudonymize import (
    MIN_KEY_BYTES, NAME_COLUMNS, PSEUDONYMIZED_PREFIX, Pseudonymizer, pseudonym, pseudonymized_key,
)
from lambdas.etl.schema import arrow_schema
from stacks.config import PSEUDONYMIZED_TABLE
from tests.test_flatten_sql import DAYS, FIRST_DAY, chat_batches, chat_objects
from tools.local.athena_engine import compact_day_on_duckdb

KEY = b"k" * MIN_KEY_BYTES
OTHER_KEY = b"o" * MIN_KEY_BYTES
RAW, BY_LAMBDA, BY_ATHENA = "lake-raw", "enriched-by-lambda", "enriched-by-athena"
ZONE = "America/Sao_Paulo"
DATABASE = "telegram_lake_test"


def row(**fields: Any) -> dict[str, Any]:
    base = dict.fromkeys(arrow_schema().names)
    base.update(update_id=1, user_id=42, user_first_name="Ana", user_last_name="Silva", user_username="ana",
                user_language_code="pt-br", chat_id=-100, chat_type="supergroup", chat_title="Lake", text="hello?",
                caption=None, message_id=7, command=None, is_command=False)
    return {**base, **fields}


def pseudonymized(rows: list[dict[str, Any]], keep_text: bool = True) -> list[dict[str, Any]]:
    batch = pa.RecordBatch.from_pylist(rows, schema=arrow_schema())
    return Pseudonymizer(KEY, keep_text).batch(batch).to_pylist()


def test_a_pseudonym_is_a_positive_bigint_the_same_for_the_same_id_and_key_and_nothing_without_the_key():
    values = {pseudonym(KEY, user_id) for user_id in range(1, 2_001)}

    assert len(values) == 2_000  # no two of these ids share one
    assert all(0 <= value < 2**63 for value in values)
    assert pseudonym(KEY, 42) == pseudonym(KEY, 42) != pseudonym(OTHER_KEY, 42)
    assert pseudonym(KEY, 42) != 42


def test_ids_become_pseudonyms_names_are_dropped_and_everything_else_is_the_full_tables():
    rows = [
        row(),
        row(update_id=2, user_id=43, user_first_name="Bo", user_username=None, text="/price btc", command="/price"),
        row(update_id=3, chat_id=42, chat_type="private", chat_title=None),  # Ana's private chat: her own id
        row(update_id=4, user_id=None, user_first_name=None, user_last_name=None, user_username=None),  # a channel
    ]

    out = pseudonymized(rows)

    assert [item["user_id"] for item in out] == [pseudonym(KEY, 42), pseudonym(KEY, 43), pseudonym(KEY, 42), None]
    assert [item["chat_id"] for item in out] == [-100, -100, pseudonym(KEY, 42), -100]
    for name in NAME_COLUMNS:
        assert {item[name] for item in out} == {None}
    untouched = set(arrow_schema().names) - {"user_id", "chat_id", *NAME_COLUMNS}
    assert [{k: item[k] for k in untouched} for item in out] == [{k: item[k] for k in untouched} for item in rows]
    assert [item["text"] for item in out] == ["hello?", "/price btc", "hello?", "hello?"]


def test_a_stage_that_drops_text_drops_text_and_captions_and_keeps_the_command():
    out = pseudonymized([row(text="/help me", caption="a caption", command="/help", is_command=True)], keep_text=False)

    assert (out[0]["text"], out[0]["caption"], out[0]["command"], out[0]["is_command"]) == (None, None, "/help", True)


def test_a_short_key_is_refused_and_the_key_is_never_shown():
    with pytest.raises(ValueError, match=f"at least {MIN_KEY_BYTES} are needed"):
        Pseudonymizer(b"short")
    assert "kkkk" not in repr(Pseudonymizer(KEY)) and "kkkk" not in str(Pseudonymizer(KEY))


def test_the_table_and_its_location_agree():
    assert PSEUDONYMIZED_PREFIX == f"{PSEUDONYMIZED_TABLE}/"
    assert pseudonymized_key(date(2026, 3, 8)) == "telegram_pseudonymized/context_date=2026-03-08/telegram.parquet"
    assert enriched_key(date(2026, 3, 8)).removeprefix("telegram/") == pseudonymized_key(date(2026, 3, 8)).removeprefix(
        PSEUDONYMIZED_PREFIX
    )


def test_the_etl_reads_the_key_and_the_text_setting_from_its_environment():
    environ = {"RAW_BUCKET": "r", "ENRICHED_BUCKET": "e", "TIMEZONE": ZONE}
    settings = EtlSettings.from_environ({**environ, "PSEUDONYM_KEY_ARN": "arn:key", "PSEUDONYMIZED_TEXT": "drop"})

    assert (settings.pseudonym_key_arn, settings.pseudonymized_text) == ("arn:key", "drop")
    assert EtlSettings.from_environ(environ).pseudonymizer() is None  # a full-access stage writes no second table
    with pytest.raises(ValueError, match="PSEUDONYMIZED_TEXT must be keep or drop, got 'hash'"):
        EtlSettings.from_environ({**environ, "PSEUDONYMIZED_TEXT": "hash"})


def parquet_rows(s3, bucket: str, key: str) -> list[dict[str, Any]]:
    return pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())).to_pylist()


@pytest.fixture(scope="module")
def both_engines(tmp_path_factory):
    """The shared synthetic chat compacted by each engine on a pseudonymized stage, the key in Secrets Manager."""
    days = [FIRST_DAY + timedelta(days=offset) for offset in range(DAYS + 1)]
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        secret = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="pseudonym-key", SecretString=KEY.decode()
        )
        for bucket in (RAW, BY_LAMBDA, BY_ATHENA):
            s3.create_bucket(Bucket=bucket)
        for key, body in [*chat_objects(), *chat_batches()]:
            s3.put_object(Bucket=RAW, Key=key, Body=body)
        summaries = {}
        for day in days:
            by_lambda = EtlSettings(RAW, BY_LAMBDA, ZONE, 4, pseudonym_key_arn=secret["ARN"])
            by_athena = EtlSettings(RAW, BY_ATHENA, ZONE, 4, pseudonym_key_arn=secret["ARN"])
            summaries[day] = (process({"date": day.isoformat()}, by_lambda),
                              compact_day_on_duckdb(by_athena, DATABASE, day))
        yield s3, summaries


def test_both_engines_write_the_pseudonymized_day_beside_the_full_one_from_the_same_rows(both_engines):
    s3, summaries = both_engines
    compared = 0
    for day, (by_lambda, by_athena) in summaries.items():
        if not by_lambda["rows_written"]:
            assert by_lambda["pseudonymized_key"] is None
            continue
        assert by_lambda["pseudonymized_key"] == by_athena["pseudonymized_key"] == pseudonymized_key(day)
        full = parquet_rows(s3, BY_LAMBDA, enriched_key(day))
        for bucket in (BY_LAMBDA, BY_ATHENA):
            assert parquet_rows(s3, bucket, pseudonymized_key(day)) == pseudonymized(full)
        compared += len(full)
        senders = {item["user_id"] for item in full} - {None}
        analysts_see = {item["user_id"] for item in parquet_rows(s3, BY_ATHENA, pseudonymized_key(day))}
        assert senders and not senders & analysts_see
    assert compared > 100


def test_a_day_left_without_rows_deletes_its_stale_pseudonymized_file_too():
    day, raw, enriched = date(2026, 11, 20), "no-rows-raw", "no-rows-enriched"
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (raw, enriched):
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=enriched, Key=pseudonymized_key(day), Body=b"an earlier run's file")
        s3.put_object(Bucket=raw, Key=f"telegram/context_date={day}/1.json", Body=b'{"update_id":1,"poll":{}}')

        summary = compact_day(
            s3, raw_bucket=raw, enriched_bucket=enriched, day=day, concurrency=2, pseudonymizer=Pseudonymizer(KEY)
        )

        assert (summary.rows_written, summary.pseudonymized_key) == (0, None)
        assert s3.list_objects_v2(Bucket=enriched).get("KeyCount") == 0


def lake_folder(s3, bucket: str, root) -> Any:
    """The enriched bucket as a local lake folder (`enriched/telegram/...`, `enriched/telegram_pseudonymized/...`)."""
    for item in s3.list_objects_v2(Bucket=bucket)["Contents"]:
        if item["Key"].endswith(".parquet"):
            path = root / "enriched" / item["Key"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
    return root


def as_analysts_see_it(columns: list[str], rows: list[tuple]) -> list[tuple]:
    """A full-table answer with each user id as its pseudonym and each name dropped: what analysts must get."""
    mapped = {"user_id": lambda value: None if value is None else pseudonym(KEY, value),
              "user_first_name": lambda value: None}
    return sorted((tuple(mapped.get(column, lambda value: value)(value) for column, value in zip(columns, row))
                   for row in rows), key=repr)


def test_the_analysts_saved_queries_answer_what_the_full_ones_do_with_pseudonyms_for_ids_and_no_names(
    both_engines, tmp_path
):
    """Every saved query that reads `telegram` alone runs on the pseudonymized table (compacted days) and answers
    the full table's answer, each user id its pseudonym and no name; the raw-zone questions are not analysts'."""
    from analytics import analyst_queries, stage_queries
    from stacks.config import load_from_cdk_json
    from tools.local.sql import LakeFolders, LocalLake

    s3, _ = both_engines
    config = replace(load_from_cdk_json("dev"), timezone=ZONE, analyst_access="pseudonymized")
    root = lake_folder(s3, BY_ATHENA, tmp_path)
    analysts = {query.name: query for query in analyst_queries(config)}
    full = {query.name: query for query in stage_queries(config)}
    lake = LocalLake(LakeFolders.find(root))
    try:
        answered = 0
        for name, query in analysts.items():
            assert "telegram_pseudonymized" in query.sql and "telegram_raw" not in query.sql
            columns, rows = lake.run(query)
            expected_columns, expected = lake.run(full[name])
            assert columns == expected_columns
            assert sorted(rows, key=repr) == as_analysts_see_it(columns, expected), name
            answered += bool(rows)
    finally:
        lake.close()
    assert answered >= 7
    assert set(full) - set(analysts) == {"member_changes_per_day", "reactions_per_day", "most_reacted_messages"}

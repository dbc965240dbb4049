"""The ETL Lambda against moto S3: volume, dedupe, poison objects, empty days, idempotence, time zones."""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import threading
import time
from datetime import date, datetime, timezone
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

import lambdas.etl.compact as compact
import lambdas.etl.store as store
from lambdas.common.envelope import envelope_line
from lambdas.common.layout import day_prefix, raw_key
from lambdas.common.updates import MESSAGE_UPDATE_TYPES, UPDATE_TYPES
from lambdas.etl.day import (
    KEY_REJECT_REASON, SCHEDULED_TIME_KEY, UnreadableObject, enriched_key, rejects_key, requested_day,
)
from lambdas.etl.handler import EtlSettings, checked_day, handler, process
from lambdas.etl.store import s3_client
from lambdas.etl.schema import BIGINT_MAX, arrow_schema
from lambdas.etl.store import read_in_order

DAY = date(2026, 11, 24)
ZONE = "America/Sao_Paulo"
RAW, ENRICHED = "lake-raw", "lake-enriched"
CONTEXT = SimpleNamespace(
    function_name="etl", memory_limit_in_mb=1024, aws_request_id="test-request",
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:etl",
)


@pytest.fixture
def s3(monkeypatch):
    environment = {"RAW_BUCKET": RAW, "ENRICHED_BUCKET": ENRICHED, "TIMEZONE": ZONE, "READ_CONCURRENCY": "8"}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3")
        for bucket in (RAW, ENRICHED):
            client.create_bucket(Bucket=bucket)
        yield client


def message(update_id: int, text: str | None = "hello", **fields: Any) -> dict[str, Any]:
    body = {"message_id": update_id, "from": {"id": 42, "is_bot": False, "first_name": "Ana"},
            "chat": {"id": -100, "type": "supergroup", "title": "Lake"}, "date": 1_795_000_000 + update_id, **fields}
    if text is not None:
        body["text"] = text
    return {"update_id": update_id, "message": body}


def put_raw(s3, day: date, update: dict[str, Any] | bytes, key: str | None = None) -> str:
    key = key or raw_key(day, update["update_id"])
    s3.put_object(Bucket=RAW, Key=key, Body=update if isinstance(update, bytes) else json.dumps(update).encode())
    return key


def run(day: date = DAY) -> dict[str, Any]:
    return handler({"date": day.isoformat()}, CONTEXT)


def output(s3, day: date = DAY) -> bytes:
    return s3.get_object(Bucket=ENRICHED, Key=enriched_key(day))["Body"].read()


def rows(s3, day: date = DAY) -> list[dict[str, Any]]:
    return pq.read_table(io.BytesIO(output(s3, day))).to_pylist()


def enriched_keys(s3) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=ENRICHED).get("Contents", [])]


def test_more_than_1000_objects_become_one_file_with_every_row_in_update_id_order(s3, monkeypatch):
    monkeypatch.setattr(compact, "BATCH_ROWS", 400)  # several row groups: order must hold across batches
    update_ids = list(range(5_000, 6_100))
    for update_id in random.Random(1).sample(update_ids, len(update_ids)):
        put_raw(s3, DAY, message(update_id, text=f"message {update_id}"))

    summary = run()

    assert (summary["objects_read"], summary["rows_written"], summary["duplicates"]) == (1100, 1100, 0)
    parquet = pq.ParquetFile(io.BytesIO(output(s3)))
    assert parquet.schema_arrow == arrow_schema()
    assert parquet.metadata.num_row_groups == 3
    assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"
    table = parquet.read()
    assert table.column("update_id").to_pylist() == update_ids
    assert table.column("text").to_pylist() == [f"message {update_id}" for update_id in update_ids]
    assert enriched_keys(s3) == [enriched_key(DAY)]


def test_a_first_message_without_text_does_not_fail_the_day(s3):
    put_raw(s3, DAY, message(1, text=None, photo=[{"file_id": "a", "file_unique_id": "b", "width": 1, "height": 1}]))
    put_raw(s3, DAY, message(2, text="after the photo"))

    summary = run()

    assert summary["rows_written"] == 2
    assert [(row["message_type"], row["text"]) for row in rows(s3)] == [("photo", None), ("text", "after the photo")]


def test_every_update_type_is_flattened_or_counted_and_skipped(s3):
    """Known message types and newer types whose payload is a Message become rows; every other type is
    skipped, even a known one shaped like a Message (a reaction has message_id, date and chat too)."""
    kinds = list(UPDATE_TYPES) + ["guest_message", "some_future_type"]
    for update_id, kind in enumerate(kinds, start=1):
        payload = {"id": str(update_id)} if kind == "some_future_type" else message(update_id)["message"]
        put_raw(s3, DAY, {"update_id": update_id, kind: payload})

    summary = run()

    written = rows(s3)
    assert [row["update_type"] for row in written] == [*MESSAGE_UPDATE_TYPES, "guest_message"]
    assert written[-1]["text"] == "hello" and written[-1]["update_id"] == len(UPDATE_TYPES) + 1
    assert summary["skipped"] == len(kinds) - len(MESSAGE_UPDATE_TYPES) - 1
    assert (summary["objects_read"], summary["rejected"]) == (len(kinds), 0)


def test_two_objects_of_one_update_id_in_a_day_give_one_row(s3):
    put_raw(s3, DAY, message(7, text="kept"), key=f"{day_prefix(DAY)}007.json")
    put_raw(s3, DAY, message(7, text="a copy"))
    put_raw(s3, DAY, message(8))

    summary = run()

    assert [(row["update_id"], row["text"]) for row in rows(s3)] == [(7, "kept"), (8, "hello")]
    assert (summary["objects_read"], summary["duplicates"]) == (3, 1)


def test_a_day_upgraded_in_place_compacts_to_the_rows_its_updates_gave_as_single_objects(s3):
    """Before batching, each update was an object of its own. A stage upgraded during a day holds both kinds: the
    day's first updates as single objects, the rest in batches (with Firehose's duplicates, and a redelivery of an
    update stored before the upgrade). The day's rows are the rows its updates give as single objects alone."""
    updates = [message(update_id, text=f"message {update_id}") for update_id in range(1_000, 1_060)]
    singles, batched = updates[:20], updates[20:]
    for update in updates:
        put_raw(s3, DAY, update)
    as_single_objects = (run(), rows(s3))
    s3.delete_objects(Bucket=RAW, Delete={"Objects": [{"Key": raw_key(DAY, update["update_id"])} for update in batched]})
    lines = [envelope_line(DAY, 1_000 + index, json.dumps(update).encode()) for index, update in enumerate(batched)]
    redelivery = envelope_line(DAY, 5_000, json.dumps(singles[3]).encode())
    put_raw(s3, DAY, gzip.compress(b"".join(lines[:25] + [lines[7], redelivery])), key=f"{day_prefix(DAY)}a.jsonl.gz")
    put_raw(s3, DAY, gzip.compress(b"".join(lines[25:] + [lines[30]])), key=f"{day_prefix(DAY)}b.jsonl.gz")

    summary = run()

    assert rows(s3) == as_single_objects[1]
    assert (summary["rows_written"], summary["duplicates"], summary["objects_read"]) == (60, 3, 22)


def test_a_batch_that_is_not_gzip_fails_the_day_loudly_and_changes_nothing(s3):
    """Athena fails every query that reads such an object: the ETL does not pretend the day is whole either."""
    put_raw(s3, DAY, message(1))
    run()
    before = output(s3)
    put_raw(s3, DAY, b"plain text", key=f"{day_prefix(DAY)}broken.jsonl.gz")

    with pytest.raises(UnreadableObject, match="broken.jsonl.gz is not gzip"):
        run()
    assert output(s3) == before


def test_an_update_redelivered_after_midnight_belongs_to_the_earlier_day(s3):
    before = date(2026, 11, 23)
    put_raw(s3, before, message(499))
    put_raw(s3, before, message(500, text="sent at 23:59:58"))
    put_raw(s3, DAY, message(500, text="sent at 23:59:58"))  # Telegram's redelivery at 00:00:03
    put_raw(s3, DAY, message(501))

    summary = run(DAY)

    assert [row["update_id"] for row in rows(s3, DAY)] == [501]
    assert (summary["duplicates"], summary["objects_read"], summary["rows_written"]) == (1, 2, 1)
    assert run(before)["rows_written"] == 2
    assert [row["update_id"] for row in rows(s3, before)] == [499, 500]


def test_of_the_day_before_only_what_may_hold_a_copy_of_the_days_updates_is_read(s3, monkeypatch):
    """The day before is read only for which of the day's updates it already holds: a single-update object of
    another update is not even fetched."""
    before = date(2026, 11, 23)
    for update_id in range(400, 410):
        put_raw(s3, before, message(update_id))
    put_raw(s3, before, message(500))
    lines = [envelope_line(before, 1, json.dumps(message(update_id)).encode()) for update_id in (501, 502)]
    put_raw(s3, before, gzip.compress(b"".join(lines)), key=f"{day_prefix(before)}a.jsonl.gz")
    put_raw(s3, DAY, message(500))  # redelivered after midnight, as a single object and as a line
    lines = [envelope_line(DAY, 2, json.dumps(message(update_id)).encode()) for update_id in (501, 503)]
    put_raw(s3, DAY, gzip.compress(b"".join(lines)), key=f"{day_prefix(DAY)}b.jsonl.gz")
    read: list[str] = []

    def recorded(client, bucket, keys, concurrency):
        return store.read_in_order(client, bucket, (read.append(key) or key for key in keys), concurrency)

    monkeypatch.setattr(compact, "read_in_order", recorded)
    summary = run()

    assert [row["update_id"] for row in rows(s3)] == [503]
    assert summary["duplicates"] == 2
    assert [key for key in read if key.startswith(day_prefix(before))] == [
        raw_key(before, 500), f"{day_prefix(before)}a.jsonl.gz"
    ]


@pytest.mark.parametrize(
    "chunks", [[[5, 3, 3], [9, 1, None]], [[]], [[BIGINT_MAX, -BIGINT_MAX - 1, 0]], [list(range(0, 1_000, 7))]]
)
def test_sorted_ids_hold_exactly_the_ids_they_are_given(chunks):
    import pyarrow as pa

    ids = compact.SortedIds(pa.chunked_array([pa.array([0, *chunk], pa.int64()).slice(1) for chunk in chunks]))
    given = {value for chunk in chunks for value in chunk if value is not None}

    for probe in (*given, -1, 2, 4, 1_000, BIGINT_MAX - 1, -BIGINT_MAX, "5", None):
        assert (probe in ids) == (probe in given)


def test_poison_objects_are_reported_and_the_rest_of_the_day_is_written(s3, caplog):
    prefix = day_prefix(DAY)
    poison = {
        put_raw(s3, DAY, b"{not json", key=f"{prefix}100.json"): "not valid JSON: ",
        put_raw(s3, DAY, b"", key=f"{prefix}101.json"): "empty object: no line of JSON",  # refused unread
        put_raw(s3, DAY, b"\xc3\x28", key=f"{prefix}102.json"): "not valid JSON: ",  # read as "\ufffd("
        put_raw(s3, DAY, b"[1, 2]", key=f"{prefix}103.json"): "not a Telegram Update: a JSON list, not an object",
        put_raw(s3, DAY, {**message(104), "update_id": "104"}, key=f"{prefix}104.json"):
            "not a Telegram Update: no integer update_id (got '104')",
        put_raw(s3, DAY, message(999), key=f"{prefix}105.json"):
            "update_id 999 does not match the object's name 105.json",
        put_raw(s3, DAY, {"update_id": 106, "message": "hello"}):
            "not a Telegram Update: message is a str, not an object",
        put_raw(s3, DAY, b"notes", key=f"{prefix}notes.txt"): KEY_REJECT_REASON,
        put_raw(s3, DAY, message(107), key=f"{prefix}copy/107.json"): KEY_REJECT_REASON,
    }
    put_raw(s3, DAY, message(1))
    put_raw(s3, DAY, message(200))

    summary = run()

    assert [row["update_id"] for row in rows(s3)] == [1, 200]
    assert (summary["rejected"], summary["objects_read"], summary["rows_written"]) == (9, 8, 2)
    assert summary["rejects_key"] == rejects_key(DAY) and rejects_key(DAY).split("/")[-1].startswith("_")
    report = json.loads(s3.get_object(Bucket=ENRICHED, Key=rejects_key(DAY))["Body"].read())
    assert (report["day"], report["rejected"]) == (DAY.isoformat(), 9)
    assert [entry["key"] for entry in report["objects"]] == sorted(poison)
    for entry in report["objects"]:
        assert entry["reason"].startswith(poison[entry["key"]]), entry
    logged = [record.key for record in caplog.records if record.getMessage() == "rejected raw object"]
    assert sorted(logged) == sorted(poison)

    for key in poison:  # the poison is dealt with: a re-run drops the stale report
        s3.delete_object(Bucket=RAW, Key=key)
    assert run()["rejects_key"] is None
    assert enriched_keys(s3) == [enriched_key(DAY)]


def test_lone_surrogates_and_bytes_that_are_not_utf8_are_read_as_athena_reads_them_not_refused(s3):
    """A lone surrogate, escaped in JSON or as the raw bytes ED A0 80, made pyarrow refuse the whole day. Both are
    read as Athena reads them (lambdas/common/reading.py): the escape is written `?`, as Java's encoder writes it;
    bytes that are not UTF-8 are U+FFFD, as Java's decoder reads them."""
    put_raw(s3, DAY, message(1, text="before"))
    put_raw(s3, DAY, b'{"update_id": 2, "message": {"message_id": 2, "date": 1, "chat": {"id": -100}, '
                     b'"text": "escaped \\ud800 surrogate"}}', key=raw_key(DAY, 2))
    put_raw(s3, DAY, b'{"update_id": 3, "message": {"message_id": 3, "date": 1, "chat": {"id": -100}, '
                     b'"from": {"id": 42, "first_name": "raw \xed\xa0\x80 bytes"}}}', key=raw_key(DAY, 3))
    put_raw(s3, DAY, message(4, text="after"))

    summary = run()

    assert (summary["rows_written"], summary["rejected"], summary["rejects_key"]) == (4, 0, None)
    assert [row["text"] for row in rows(s3)] == ["before", "escaped ? surrogate", None, "after"]
    assert rows(s3)[2]["user_first_name"] == "raw \ufffd\ufffd\ufffd bytes"


def test_a_body_that_is_not_one_line_of_standard_json_is_rejected(s3):
    """Athena reads the raw zone line by line with a strict parser: so does the ETL, so both agree."""
    pretty = json.dumps(message(2), indent=1).encode()
    put_raw(s3, DAY, message(1))
    put_raw(s3, DAY, pretty, key=raw_key(DAY, 2))
    put_raw(s3, DAY, json.dumps(message(3)).replace('"date": ', '"date": NaN, "x": ').encode(), key=raw_key(DAY, 3))
    put_raw(s3, DAY, json.dumps(message(4)).encode() + b"\r\n", key=raw_key(DAY, 4))  # one trailing break: one line

    summary = run()

    assert [row["update_id"] for row in rows(s3)] == [1, 4]
    report = json.loads(s3.get_object(Bucket=ENRICHED, Key=rejects_key(DAY))["Body"].read())
    assert {entry["key"]: entry["reason"] for entry in report["objects"]} == {
        raw_key(DAY, 2): "not one line of JSON: a line break inside the body",
        raw_key(DAY, 3): "not valid JSON: NaN is not JSON",
    }
    assert summary["rejected"] == 2


def unwritable_for(update_ids: set[int], monkeypatch) -> None:
    """Make `flatten` give the listed updates a value pyarrow refuses, as a future bug or field might."""
    flatten = compact.flatten

    def flatten_with_bad_values(update: dict[str, Any]) -> dict[str, Any]:
        row = flatten(update)
        if row["update_id"] in update_ids:
            row["date"] = "not a bigint"
        return row

    monkeypatch.setattr(compact, "flatten", flatten_with_bad_values)


def test_rows_pyarrow_refuses_are_rejected_with_their_key_and_the_rest_of_the_day_is_written(s3, monkeypatch):
    monkeypatch.setattr(compact, "BATCH_ROWS", 3)  # a refused batch is one of several
    for update_id in range(1, 9):
        put_raw(s3, DAY, message(update_id))
    renamed = put_raw(s3, DAY, message(9), key=f"{day_prefix(DAY)}0009.json")
    unwritable_for({2, 9}, monkeypatch)

    for attempt in range(2):  # every retry of the day writes it the same way
        summary = run()

        assert [row["update_id"] for row in rows(s3)] == [1, 3, 4, 5, 6, 7, 8], attempt
        assert (summary["objects_read"], summary["rows_written"], summary["rejected"]) == (9, 7, 2)
        report = json.loads(s3.get_object(Bucket=ENRICHED, Key=rejects_key(DAY))["Body"].read())
        assert [entry["key"] for entry in report["objects"]] == [renamed, raw_key(DAY, 2)]
        for entry in report["objects"]:
            assert entry["reason"].startswith("not writable to Parquet: ArrowInvalid: "), entry
            assert "not a bigint" in entry["reason"]


def test_a_day_whose_every_row_pyarrow_refuses_has_no_output_and_a_report(s3, monkeypatch):
    put_raw(s3, DAY, message(1))
    run()
    unwritable_for({1}, monkeypatch)

    summary = run()

    assert (summary["rows_written"], summary["rejected"], summary["output_key"]) == (0, 1, None)
    assert enriched_keys(s3) == [rejects_key(DAY)]


def test_a_raw_key_naming_an_update_id_beyond_a_bigint_is_rejected_from_the_listing(s3):
    beyond = put_raw(s3, DAY, message(BIGINT_MAX + 1))
    put_raw(s3, DAY, message(BIGINT_MAX))
    put_raw(s3, DAY, message(1))

    summary = run()

    assert [row["update_id"] for row in rows(s3)] == [1, BIGINT_MAX]
    assert (summary["objects_read"], summary["rejected"]) == (2, 1)  # refused before any GET
    report = json.loads(s3.get_object(Bucket=ENRICHED, Key=rejects_key(DAY))["Body"].read())
    assert report["objects"] == [{"key": beyond, "reason": KEY_REJECT_REASON}]


def test_a_boolean_update_id_is_rejected_although_true_equals_1(s3):
    put_raw(s3, DAY, {**message(1), "update_id": True}, key=raw_key(DAY, 1))
    put_raw(s3, DAY, message(2))

    summary = run()

    assert [row["update_id"] for row in rows(s3)] == [2]
    report = json.loads(s3.get_object(Bucket=ENRICHED, Key=rejects_key(DAY))["Body"].read())
    assert report["objects"] == [
        {"key": raw_key(DAY, 1), "reason": "not a Telegram Update: no integer update_id (got True)"}
    ]
    assert summary["rejected"] == 1


def test_an_empty_day_writes_nothing_and_keeps_what_an_earlier_run_built(s3, caplog):
    summary = run()

    assert summary == {"day": DAY.isoformat(), "objects_read": 0, "rows_written": 0, "duplicates": 0, "skipped": 0,
                       "rejected": 0, "seconds": summary["seconds"], "output_key": None, "rejects_key": None,
                       "pseudonymized_key": None}
    assert enriched_keys(s3) == []
    assert "empty raw partition" in caplog.text

    # Raw objects expire before enriched ones: a re-run after expiry must not delete the day's table.
    put_raw(s3, DAY, message(1))
    run()
    s3.delete_object(Bucket=RAW, Key=raw_key(DAY, 1))
    run()
    assert [row["update_id"] for row in rows(s3)] == [1]


def test_a_day_without_message_rows_deletes_its_stale_output(s3, caplog):
    put_raw(s3, DAY, message(1))
    run()
    s3.delete_object(Bucket=RAW, Key=raw_key(DAY, 1))
    put_raw(s3, DAY, {"update_id": 2, "callback_query": {"id": "q", "data": "price:btc"}})

    summary = run()

    assert (summary["rows_written"], summary["skipped"], summary["output_key"]) == (0, 1, None)
    assert enriched_keys(s3) == []
    assert "day has no rows" in caplog.text


def test_the_days_file_is_typed_as_parquet_and_its_rejects_report_as_json(s3):
    put_raw(s3, DAY, message(1))
    put_raw(s3, DAY, b"not json", key=raw_key(DAY, 2))

    run()

    assert s3.head_object(Bucket=ENRICHED, Key=enriched_key(DAY))["ContentType"] == "application/vnd.apache.parquet"
    assert s3.head_object(Bucket=ENRICHED, Key=rejects_key(DAY))["ContentType"] == "application/json"


def test_a_rerun_writes_identical_bytes_and_a_changed_day_replaces_its_only_file(s3):
    for update_id in (3, 1, 2):
        put_raw(s3, DAY, message(update_id))
    run()
    first = output(s3)

    run()
    assert output(s3) == first

    put_raw(s3, DAY, message(4, text="late arrival"))
    assert run()["rows_written"] == 4
    assert [row["update_id"] for row in rows(s3)] == [1, 2, 3, 4]
    assert enriched_keys(s3) == [enriched_key(DAY)]


def test_the_summary_is_logged(s3, caplog):
    put_raw(s3, DAY, message(1))

    summary = run()

    record = next(record for record in caplog.records if record.getMessage() == "day compacted")
    assert {key: getattr(record, key) for key in summary} == summary
    assert summary["output_key"] == enriched_key(DAY)


@pytest.mark.parametrize(
    ("zone", "local_now", "expected"),
    [
        ("America/Sao_Paulo", datetime(2026, 11, 25, 0, 30), date(2026, 11, 24)),
        ("America/Sao_Paulo", datetime(2026, 11, 24, 23, 59), date(2026, 11, 23)),
        # New York springs forward on 2026-03-08 (UTC-5 -> UTC-4) and falls back on 2026-11-01.
        ("America/New_York", datetime(2026, 3, 9, 0, 30), date(2026, 3, 8)),
        ("America/New_York", datetime(2026, 3, 8, 0, 30), date(2026, 3, 7)),
        ("America/New_York", datetime(2026, 3, 8, 3, 30), date(2026, 3, 7)),
        ("America/New_York", datetime(2026, 11, 1, 23, 30), date(2026, 10, 31)),
        ("America/New_York", datetime(2026, 11, 2, 0, 30), date(2026, 11, 1)),
    ],
)
def test_an_empty_event_means_yesterday_in_the_configured_zone(zone, local_now, expected):
    instant = local_now.replace(tzinfo=ZoneInfo(zone)).astimezone(timezone.utc)

    assert requested_day({}, zone, now=instant) == expected


def test_the_scheduled_run_at_half_past_midnight_compacts_the_day_that_just_ended(s3):
    put_raw(s3, date(2026, 3, 8), message(1))
    put_raw(s3, date(2026, 3, 9), message(2))
    settings = EtlSettings(RAW, ENRICHED, "America/New_York", read_concurrency=4)
    half_past_midnight = datetime(2026, 3, 9, 4, 30, tzinfo=timezone.utc)  # 00:30 EDT; still 23:30 in EST

    summary = process({}, settings, now=half_past_midnight)

    assert summary["day"] == "2026-03-08" and summary["rows_written"] == 1
    assert [row["update_id"] for row in rows(s3, date(2026, 3, 8))] == [1]


@pytest.mark.parametrize(
    ("zone", "scheduled_time", "expected"),
    [
        ("America/Sao_Paulo", "2026-11-25T04:00:00Z", date(2026, 11, 24)),  # 01:00 local
        ("America/Sao_Paulo", "2026-11-25T02:59:59Z", date(2026, 11, 23)),  # 23:59:59 the evening before
        # New York springs forward on 2026-03-08 and falls back on 2026-11-01.
        ("America/New_York", "2026-03-09T04:30:00Z", date(2026, 3, 8)),  # 00:30 EDT
        ("America/New_York", "2026-03-08T05:30:00Z", date(2026, 3, 7)),  # 00:30 EST, the spring-forward day
        ("America/New_York", "2026-11-02T05:30:00Z", date(2026, 11, 1)),  # 00:30 EST
        ("Asia/Tokyo", "2026-11-24T15:30:00Z", date(2026, 11, 24)),  # 00:30 on the 25th in Tokyo
    ],
)
def test_a_scheduled_event_means_the_day_before_the_scheduled_instant_in_the_zone(zone, scheduled_time, expected):
    three_days_later = datetime(2026, 12, 31, tzinfo=timezone.utc)  # the clock plays no part

    assert requested_day({SCHEDULED_TIME_KEY: scheduled_time}, zone, now=three_days_later) == expected


def test_a_scheduled_run_retried_after_midnight_still_compacts_the_day_it_was_scheduled_for(s3):
    put_raw(s3, date(2026, 11, 23), message(1))
    put_raw(s3, date(2026, 11, 24), message(2))
    settings = EtlSettings(RAW, ENRICHED, ZONE, read_concurrency=4)
    scheduled = "2026-11-25T02:50:00Z"  # 23:50 on the 24th in Sao Paulo: the run is for the 23rd
    retried = datetime(2026, 11, 25, 3, 20, tzinfo=timezone.utc)  # 00:20 on the 25th: {} would mean the 24th

    summary = process({SCHEDULED_TIME_KEY: scheduled}, settings, now=retried)

    assert summary["day"] == "2026-11-23" and summary["rows_written"] == 1
    assert [row["update_id"] for row in rows(s3, date(2026, 11, 23))] == [1]
    assert enriched_keys(s3) == [enriched_key(date(2026, 11, 23))]


@pytest.mark.parametrize(
    ("event", "message_part"),
    [
        (None, "must be a JSON object, got NoneType"),
        ([], "must be a JSON object, got list"),
        ({"day": "2026-11-24"}, "unknown keys ['day']"),
        ({"date": "2026-11-24", "force": True}, "unknown keys ['force']"),
        ({"date": "24/11/2026"}, "must be a string YYYY-MM-DD"),
        ({"date": 20261124}, "must be a string YYYY-MM-DD"),
        ({"date": "2026-02-30"}, "is not a calendar date"),
        ({"version": "0", "detail-type": "Scheduled Event"}, "unknown keys"),
        ({"date": "20261124"}, "must be a string YYYY-MM-DD"),
        ({"date": "2026-11-24\n"}, "must be a string YYYY-MM-DD"),
        ({SCHEDULED_TIME_KEY: "2026-11-25T04:00:00Z", "date": "2026-11-24"}, "has both 'scheduled_time' and 'date'"),
        ({SCHEDULED_TIME_KEY: "<aws.scheduler.scheduled-time>"}, "scheduled_time must be a UTC time"),
        ({SCHEDULED_TIME_KEY: "2026-11-25"}, "scheduled_time must be a UTC time"),
        ({SCHEDULED_TIME_KEY: "2026-11-25T04:00:00"}, "scheduled_time must be a UTC time"),
        ({SCHEDULED_TIME_KEY: "2026-11-5T4:00:00Z"}, "scheduled_time must be a UTC time"),
        ({SCHEDULED_TIME_KEY: "2026-11-25T04:00:00+01:00"}, "scheduled_time must be a UTC time"),
        ({SCHEDULED_TIME_KEY: "2026-11-25T04:00:00Z\n"}, "scheduled_time must be a UTC time"),
        ({SCHEDULED_TIME_KEY: 1795000000}, "scheduled_time must be a UTC time"),
        ({SCHEDULED_TIME_KEY: "2026-11-31T04:00:00Z"}, "not a calendar time"),
        ({SCHEDULED_TIME_KEY: "2026-11-25T24:00:00Z"}, "not a calendar time"),
    ],
)
def test_any_other_event_fails_loudly(s3, event, message_part):
    with pytest.raises(ValueError, match="ETL event") as raised:
        handler(event, CONTEXT)
    assert message_part in str(raised.value)


def test_s3_errors_raise(s3):
    put_raw(s3, DAY, message(1))
    s3.delete_bucket(Bucket=ENRICHED)

    with pytest.raises(ClientError, match="NoSuchBucket"):
        run()

    s3.delete_object(Bucket=RAW, Key=raw_key(DAY, 1))
    s3.delete_bucket(Bucket=RAW)
    with pytest.raises(ClientError, match="NoSuchBucket"):
        run()


@pytest.mark.parametrize(
    ("environ", "message_part"),
    [
        ({"ENRICHED_BUCKET": "e", "TIMEZONE": ZONE}, "RAW_BUCKET is not set"),
        ({"RAW_BUCKET": "r", "ENRICHED_BUCKET": " ", "TIMEZONE": ZONE}, "ENRICHED_BUCKET is not set"),
        ({"RAW_BUCKET": "r", "ENRICHED_BUCKET": "e", "TIMEZONE": "Mars/Olympus"}, "unknown IANA time zone"),
        ({"RAW_BUCKET": "r", "ENRICHED_BUCKET": "e", "TIMEZONE": ZONE, "READ_CONCURRENCY": "0"}, "READ_CONCURRENCY"),
        ({"RAW_BUCKET": "r", "ENRICHED_BUCKET": "e", "TIMEZONE": ZONE, "READ_CONCURRENCY": "many"}, "READ_CONCURRENCY"),
    ],
)
def test_a_misconfigured_function_names_the_setting(environ, message_part):
    with pytest.raises(ValueError, match=message_part):
        EtlSettings.from_environ(environ)


def test_settings_default_to_32_parallel_reads_and_no_start_date():
    settings = EtlSettings.from_environ({"RAW_BUCKET": "r", "ENRICHED_BUCKET": "e", "TIMEZONE": ZONE})

    assert settings == EtlSettings("r", "e", ZONE, 32, analytics_start_date=None)


def test_settings_read_the_optional_analytics_start_date():
    environ = {"RAW_BUCKET": "r", "ENRICHED_BUCKET": "e", "TIMEZONE": ZONE, "ANALYTICS_START_DATE": "2026-01-01"}

    assert EtlSettings.from_environ(environ).analytics_start_date == date(2026, 1, 1)


@pytest.mark.parametrize("value", ["20260101", "2026-W01-1", "2026-02-30", "2026-01-01\n", " 2026-01-01", "soon"])
def test_an_analytics_start_date_that_is_not_exactly_a_date_is_refused(value):
    environ = {"RAW_BUCKET": "r", "ENRICHED_BUCKET": "e", "TIMEZONE": ZONE, "ANALYTICS_START_DATE": value}

    with pytest.raises(ValueError, match="environment variable ANALYTICS_START_DATE"):
        EtlSettings.from_environ(environ)


def test_a_day_before_the_analytics_start_date_is_refused_before_any_s3_call(s3, monkeypatch):
    monkeypatch.setenv("ANALYTICS_START_DATE", "2026-11-24")
    monkeypatch.setenv("RAW_BUCKET", "no-such-bucket")  # any S3 call would fail with NoSuchBucket

    with pytest.raises(ValueError, match="ETL day 2026-11-23 is before the stage's analytics_start_date 2026-11-24"):
        run(date(2026, 11, 23))
    with pytest.raises(ValueError, match="analytics_start_date"):
        handler({SCHEDULED_TIME_KEY: "2026-11-24T04:00:00Z"}, CONTEXT)  # the scheduled run for the 23rd


def test_a_day_that_has_not_ended_in_the_zone_is_refused_before_any_s3_call(s3, monkeypatch):
    """Compacted before it ends, the rest of a day would be missing from every answer: the up-to-the-minute
    relation reads a day from the raw zone only while it has no compacted rows."""
    monkeypatch.setenv("RAW_BUCKET", "no-such-bucket")  # any S3 call would fail with NoSuchBucket
    now = datetime(2026, 11, 25, 2, 30, tzinfo=timezone.utc)  # still the 24th in Sao Paulo (UTC-3)
    settings = EtlSettings.from_environ(os.environ)

    for day in ("2026-11-24", "2026-11-25", "9999-12-31"):
        with pytest.raises(ValueError, match=rf"day {day} has not ended in {ZONE} \(the latest day that has is 2026-11-23\)"):
            process({"date": day}, settings, now=now)
    assert checked_day({}, settings, now=now) == date(2026, 11, 23)
    at_the_schedule = datetime(2026, 11, 25, 4, 0, 1, tzinfo=timezone.utc)  # 01:00 on the 25th in Sao Paulo
    assert checked_day({SCHEDULED_TIME_KEY: "2026-11-25T04:00:00Z"}, settings, now=at_the_schedule) == date(2026, 11, 24)


def test_the_analytics_start_date_itself_is_compacted(s3, monkeypatch):
    monkeypatch.setenv("ANALYTICS_START_DATE", DAY.isoformat())
    put_raw(s3, DAY, message(1))

    assert run()["rows_written"] == 1


class SlowS3:
    """A stand-in client whose GETs take random time, to check order, bounds and failures of the reads."""

    def __init__(self, failing_key: str | None = None):
        self.failing_key = failing_key
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(random.uniform(0, 0.004))
        with self.lock:
            self.in_flight -= 1
        if Key == self.failing_key:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "Reduce your request rate"}}, "GetObject")
        return {"Body": io.BytesIO(Key.encode())}


def test_parallel_reads_come_back_in_key_order_with_bounded_concurrency():
    keys = [f"k{index}" for index in range(300)]
    client = SlowS3()

    bodies = list(read_in_order(client, RAW, keys, concurrency=6))

    assert bodies == [key.encode() for key in keys]
    assert 1 < client.most_in_flight <= 6


def test_a_failed_read_raises():
    keys = [f"k{index}" for index in range(100)]

    with pytest.raises(ClientError, match="SlowDown"):
        list(read_in_order(SlowS3(failing_key="k50"), RAW, keys, concurrency=4))


def test_reads_run_only_a_bounded_window_ahead_of_the_consumer():
    """The memory guarantee: however long the day, only `concurrency * _QUEUED_PER_THREAD` bodies wait."""
    pulled = 0

    def keys():
        nonlocal pulled
        for index in range(500):
            pulled += 1
            yield f"k{index}"

    concurrency = 3
    ahead = [pulled - consumed for consumed, _ in enumerate(read_in_order(SlowS3(), RAW, keys(), concurrency), 1)]

    assert len(ahead) == 500
    assert concurrency <= max(ahead) <= concurrency * store._QUEUED_PER_THREAD


class GatedS3:
    """GETs record their key; the failing key's GET fails at once, every other GET holds its thread for
    half a second, so the reads queued behind them are still waiting when the failure surfaces."""

    def __init__(self, failing_key: str):
        self.failing_key = failing_key
        self.fetched: list[str] = []
        self.lock = threading.Lock()

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        with self.lock:
            self.fetched.append(Key)
        if Key == self.failing_key:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")
        time.sleep(0.5)
        return {"Body": io.BytesIO(Key.encode())}


def test_a_failed_read_cancels_the_reads_queued_behind_it():
    client = GatedS3(failing_key="k0")

    with pytest.raises(ClientError, match="AccessDenied"):
        list(read_in_order(client, RAW, [f"k{index}" for index in range(50)], concurrency=2))

    # Two threads and a window of four: k0..k3 were submitted. k0 fails at once while k1 holds the other
    # thread; the freed thread takes at most one more read before the rest of the window is cancelled.
    # Without the cancel, all four are fetched once the threads are free.
    assert "k0" in client.fetched and len(client.fetched) <= 3, client.fetched


def test_the_etl_client_leaves_s3_timestamps_unparsed(s3):
    """Two date parses per object were the costliest part of botocore's response parsing; the ETL reads none."""
    put_raw(s3, DAY, message(1))
    client = s3_client(2)
    listed = client.list_objects_v2(Bucket=RAW, Prefix=day_prefix(DAY))["Contents"][0]
    fetched = client.get_object(Bucket=RAW, Key=listed["Key"])
    assert isinstance(listed["LastModified"], str) and isinstance(fetched["LastModified"], str)
    assert isinstance(s3.list_objects_v2(Bucket=RAW)["Contents"][0]["LastModified"], datetime)  # others unaffected

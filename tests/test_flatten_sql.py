"""One flattening, two engines: `analytics/lake/raw_rows.sql` on DuckDB writes exactly the ETL Lambda's rows.

The same raw objects (a synthetic chat over several days with redeliveries across midnight, and every edge
case the ETL handles) are compacted by the ETL's own code against moto, and flattened by the SQL over the
local raw table; every cell of every row must be equal. Then each place where DuckDB and Trino differ, and
the local translation closes the gap, is pinned by a test of its own.
"""

from __future__ import annotations

import io
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import boto3
import duckdb
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from analytics import raw_rows
from lambdas.common.layout import day_prefix, raw_key
from lambdas.common.updates import MESSAGE_UPDATE_TYPES, UPDATE_TYPES
from lambdas.etl.compact import compact_day
from lambdas.etl.day import enriched_key
from lambdas.etl.schema import BIGINT_MAX, BIGINT_MIN, COLUMN_NAMES
from tools.local.sql import LakeFolders, LocalLake, raw_lines
from tools.local.synthetic import synthetic_chat

DATABASE = "telegram_lake_test"
ZONE = "America/Sao_Paulo"
FIRST_DAY = date(2026, 11, 20)
DAYS = 4
RAW, ENRICHED = "lake-raw", "lake-enriched"

Objects = list[tuple[str, bytes]]  # (raw key, body)


def compact_json(update: dict[str, Any]) -> bytes:
    """A webhook body as Telegram sends it: one line of compact UTF-8 JSON."""
    return json.dumps(update, ensure_ascii=False, separators=(",", ":")).encode()


def message(update_id: int, **fields: Any) -> dict[str, Any]:
    payload = {
        "message_id": update_id, "date": 1_795_000_000 + update_id,
        "from": {"id": 42, "is_bot": False, "first_name": "Ana", "last_name": "Silva", "username": "ana",
                 "language_code": "pt-br"},
        "chat": {"id": -100, "type": "supergroup", "title": "Lake"}, "text": "hello", **fields,
    }
    return {"update_id": update_id, "message": {key: value for key, value in payload.items() if value is not None}}


def command_entity(length: Any, offset: Any = 0, kind: Any = "bot_command") -> dict[str, Any]:
    return {"type": kind, "offset": offset, "length": length}


def edge_cases(day: date) -> Objects:
    """Every case the ETL's rules decide: each key names what it is about."""
    first = 9_000_000
    cases: list[tuple[str, bytes]] = []

    def add(update_id: int, body: bytes | dict[str, Any], key: str | None = None) -> None:
        cases.append((key or raw_key(day, update_id), body if isinstance(body, bytes) else compact_json(body)))

    ids = iter(range(first, first + 10_000))
    # every known update type: the message-like ones become rows, the others are skipped
    for kind in UPDATE_TYPES:
        update_id = next(ids)
        payload = message(update_id)["message"] if kind in MESSAGE_UPDATE_TYPES else {
            "chat": {"id": -100, "type": "supergroup"}, "message_id": 1, "date": 1_795_000_000, "user": {"id": 1}
        }
        add(update_id, {"update_id": update_id, kind: payload})
    # types newer than the code: a Message-shaped payload is a row, under the field's own name
    update_id = next(ids)
    add(update_id, {"update_id": update_id, "guest_message": message(update_id)["message"]})
    update_id = next(ids)
    add(update_id, {"update_id": update_id, "zeta_thing": {"id": 1}, "alpha_post": message(update_id)["message"]})
    update_id = next(ids)
    add(update_id, {"update_id": update_id, "future_event": {"message_id": 1, "date": "today", "chat": {"id": 1}}})
    update_id = next(ids)
    add(update_id, {"update_id": update_id})  # no type at all
    # fields missing or of the wrong type become null; integers outside a bigint too, both ends
    for fields in (
        {"text": 5}, {"text": None, "caption": ["x"]}, {"from": "someone"}, {"from": {"id": "42", "is_bot": 1}},
        {"chat": {"id": 1.0, "type": None, "title": 3}}, {"date": 1.5}, {"message_id": True},
        {"message_id": BIGINT_MAX}, {"message_id": BIGINT_MAX + 1}, {"message_id": BIGINT_MIN},
        {"message_id": BIGINT_MIN - 1}, {"reply_to_message": "nope"}, {"reply_to_message": {"message_id": -0}},
        {"message_thread_id": 12, "edit_date": 1_795_000_123}, {"from": {"id": 7, "is_bot": True}},
        {"text": "Olá, São Paulo ☀️ — 日本語 👍"}, {"text": "NUL \u0000 inside"}, {"text": ""},
    ):
        update_id = next(ids)
        add(update_id, message(update_id, **fields))
    # message types: the detection order (animation before document, venue before location), service, other
    for fields in (
        {"text": None, "animation": {}, "document": {}}, {"text": None, "venue": {}, "location": {}},
        {"text": None, "photo": [], "caption": "a caption"}, {"text": None, "sticker": None, "dice": {"value": 3}},
        {"text": None, "new_chat_members": [{"id": 1}]}, {"text": None, "migrate_to_chat_id": -1001},
        {"text": None, "some_future_content": {}}, {"text": None, "poll": False},
    ):
        update_id = next(ids)
        add(update_id, message(update_id, **fields))
    # commands: clamped, ASCII-lowered, `@bot` cut, the first matching entity decides, text before caption
    for fields in (
        {"text": "/Price@SomeBot btc", "entities": [command_entity(14)]},
        {"text": "/help", "entities": [command_entity(99)]},
        {"text": "/help", "entities": [command_entity(2**70)]},
        {"text": "/help", "entities": [command_entity(-2)]},
        {"text": "/help", "entities": [command_entity(0)]},
        {"text": "/help", "entities": [command_entity(5, offset=1)]},
        {"text": "/help", "entities": [command_entity(5, offset=0.0)]},
        {"text": "/help", "entities": [command_entity(5, kind="mention")]},
        {"text": "hi /help", "entities": [command_entity(3)]},
        {"text": "/", "entities": [command_entity(1)]},
        {"text": "/ÀB@x", "entities": [command_entity(5)]},
        {"text": "/a", "entities": "not a list"},
        {"text": "/a", "entities": ["x", command_entity(2)]},
        {"text": "/a", "entities": [command_entity(1), command_entity(2)]},
        {"text": None, "caption": "/Start now", "caption_entities": [command_entity(6)]},
        {"text": "plain", "entities": [], "caption": "/cap", "caption_entities": [command_entity(4)]},
        {"text": 7, "entities": [command_entity(2)], "caption": "/cap", "caption_entities": [command_entity(4)]},
    ):
        update_id = next(ids)
        add(update_id, message(update_id, **fields))
    # bodies that are not one line of standard UTF-8 JSON, or not this object's update
    update_id = next(ids)
    add(update_id, compact_json(message(update_id))[:-1])  # cut short
    update_id = next(ids)
    add(update_id, json.dumps(message(update_id), indent=2).encode())  # several lines
    update_id = next(ids)
    add(update_id, compact_json(message(update_id)) + b"\n")  # one trailing line break is still one line
    update_id = next(ids)
    add(update_id, compact_json(message(update_id)) + b"\r\n")
    update_id = next(ids)
    add(update_id, compact_json(message(update_id)) + b"\n" + compact_json(message(update_id)))  # two lines
    update_id = next(ids)
    add(update_id, compact_json(message(update_id, text="surrogate \\ud800 escaped")).replace(b"\\\\ud800", b"\\ud800"))
    update_id = next(ids)
    add(update_id, compact_json(message(update_id, text="pair \\ud83d\\ude00")).replace(b"\\\\u", b"\\u"))
    update_id = next(ids)
    add(update_id, compact_json(message(update_id, text="@@")).replace(b"@@", b"\xed\xa0\x80"))  # not UTF-8
    update_id = next(ids)
    add(update_id, compact_json(message(update_id, text="@@")).replace(b"@@", b"\xff"))
    update_id = next(ids)
    add(update_id, compact_json(message(update_id)).replace(b'"date":', b'"date":NaN,"x":', 1))
    update_id = next(ids)
    add(update_id, b"\xef\xbb\xbf" + compact_json(message(update_id)))  # a byte-order mark
    update_id = next(ids)
    add(update_id, b"[1, 2]")
    update_id = next(ids)
    add(update_id, b"")
    update_id = next(ids)
    add(update_id, {"update_id": update_id + 1, "message": message(update_id)["message"]})  # names another update
    update_id = next(ids)
    add(update_id, {"update_id": True, "message": message(update_id)["message"]})
    update_id = next(ids)
    add(update_id, {"update_id": str(update_id), "message": message(update_id)["message"]})
    update_id = next(ids)
    add(update_id, {"update_id": update_id, "message": "not an object"})
    # Telegram's other message shapes: channel posts (no `from`, a `sender_chat`), business messages, replies,
    # forwards and quotes from elsewhere (nested objects the row leaves out), captioned media with UTF-16 offsets
    channel = {"id": -1001234567890, "type": "channel", "title": "News"}
    for kind, fields in (
        ("channel_post", {"from": None, "sender_chat": channel, "chat": channel, "author_signature": "Ed"}),
        ("edited_channel_post", {"from": None, "sender_chat": channel, "chat": channel, "edit_date": 1_795_000_999,
                                 "text": None, "photo": [{"file_id": "p"}], "caption": "/Cmd@News x",
                                 "caption_entities": [command_entity(9)]}),
        ("business_message", {"business_connection_id": "bc1", "sender_business_bot": {"id": 9, "is_bot": True}}),
        ("edited_business_message", {"business_connection_id": "bc1", "edit_date": 1_795_000_999}),
        ("message", {"forward_origin": {"type": "channel", "chat": channel, "message_id": 3, "date": 1},
                     "quote": {"text": "q", "position": 0, "entities": [command_entity(1)]},
                     "reply_to_message": {"message_id": 8, "date": 1, "chat": channel}}),
        ("message", {"external_reply": {"origin": {"type": "hidden_user", "date": 1, "sender_user_name": "h"},
                                        "message_id": 77, "chat": channel}}),
        ("message", {"reply_to_story": {"chat": channel, "id": 5}}),
        ("message", {"text": None, "video": {"file_id": "v"}, "caption": "a 😀 caption",
                     "caption_entities": [{"type": "bold", "offset": 2, "length": 2}]}),
    ):
        update_id = next(ids)
        add(update_id, {"update_id": update_id, kind: message(update_id, **fields)["message"]})
    # commands after or around characters of two UTF-16 code units, combining marks, NUL; long, RTL texts
    for fields in (
        {"text": "😀 /start", "entities": [command_entity(6, offset=3)]},
        {"text": "/st😀rt@bot", "entities": [command_entity(7)]},
        {"text": "/é", "entities": [command_entity(3)]},
        {"text": "/a\u0000b", "entities": [command_entity(4)]},
        {"text": "/abc", "entities": [None, [1], {"type": ["bot_command"], "offset": 0, "length": 3},
                                      command_entity("3"), command_entity(3.0), command_entity(2**64)]},
        {"text": "/" + "x" * 100_000, "entities": [command_entity(100_001)]},
        {"text": "שלום \u202e עולם \u2028 line \u2029 \x85"},
    ):
        update_id = next(ids)
        add(update_id, message(update_id, **fields))
    # numbers at the edges of JSON and of a bigint, floats and exponents where integers belong
    for number in (2**53 + 1, 2**64 - 1, 2**64, 10**30, -1001234567890, 0, 1.0, 1e2, -0.0):
        update_id = next(ids)
        add(update_id, message(update_id, message_id=number, date=number, chat={"id": number, "type": "channel"},
                               **{"from": {"id": number, "first_name": "n"}}))
    for spelled in (b"1E3", b"1.0e0", b"-0", b"1e999", b"1" * 4301):  # the last: more digits than Python parses
        update_id = next(ids)
        add(update_id, compact_json(message(update_id)).replace(b'"date":', b'"date":' + spelled + b',"was":', 1))
    for spelled in (b"1e400", b"-1e400", b"1.5e300"):  # past a double, a string column reads Trino's "Infinity"
        update_id = next(ids)
        add(update_id, compact_json(message(update_id)).replace(b'"text":"hello"', b'"text":' + spelled, 1))
    for late in ({"date": 2_250_000_000_000}, {"edit_date": 10**13}, {"date": -1}, {"date": 253_402_300_799}):
        update_id = next(ids)  # dates no query could read are null (Athena's from_unixtime fails past ~2.25e12)
        add(update_id, message(update_id, **late))
    # null fields, and a key named twice: Trino's json_parse keeps its last value, as Python does
    update_id = next(ids)
    add(update_id, compact_json(message(update_id)).replace(
        b'"text":"hello"', b'"text":null,"photo":null,"caption":null,"entities":null,"from":null', 1))
    update_id = next(ids)
    add(update_id, {"update_id": update_id, "message": message(update_id)["message"], "edited_message": None})
    for twice in (
        b'"text":"first","text":"second"', b'"text":"first","text":null', b'"text":"hello","photo":[],"photo":null',
        b'"text":"/a","entities":[],"entities":[{"type":"bot_command","offset":0,"length":2,"length":0}]',
        b'"text":"hello","chat":{"id":1,"id":-7}',
    ):
        update_id = next(ids)
        add(update_id, compact_json(message(update_id)).replace(b'"text":"hello"', twice, 1))
    update_id = next(ids)
    add(update_id, compact_json(message(update_id)).replace(b'{"update_id":', b'{"update_id":1,"update_id":', 1))
    update_id = next(ids)
    add(update_id, compact_json(message(update_id)).replace(b'{"update_id":%d' % update_id,
                                                              b'{"update_id":%d,"update_id":1' % update_id, 1))
    update_id = next(ids)
    add(update_id, compact_json(message(update_id)).replace(b',"message":', b',"message":"x","message":', 1))
    # lone surrogates in keys: the type is chosen among the repaired names, and two may become one
    for names in (b'"\\ue000y":1,"\\ud800x"', b'"\\udc00":1,"\\ud800"'):
        update_id = next(ids)
        add(update_id, b'{"update_id":%d,%s:%s}' % (update_id, names, compact_json(message(update_id)["message"])))
    # bodies that are JSON but no object, blank, padded, pretty-printed with CRLF, or deeper than parsers go
    for body in (b"5", b'"x"', b"null", b"true", b"{}", b"   ", b"\n", b"\r", b"\n\n", b"[" * 5000 + b"]" * 5000):
        add(next(ids), body)
    update_id = next(ids)
    add(update_id, b"  " + compact_json(message(update_id)) + b"  ")
    update_id = next(ids)
    add(update_id, compact_json(message(update_id)) + b"\r")
    update_id = next(ids)
    add(update_id, compact_json(message(update_id)) + b"\n\r")
    update_id = next(ids)
    add(update_id, b"\n" + compact_json(message(update_id)))
    update_id = next(ids)
    add(update_id, json.dumps(message(update_id), indent=2).replace("\n", "\r\n").encode())
    update_id = next(ids)
    add(update_id, compact_json(message(update_id)).replace(b'"hello"', b'"tab\there"'))  # a raw control character
    update_id = next(ids)
    add(update_id, compact_json(message(update_id)) + b" {}")
    update_id = next(ids)
    add(update_id, compact_json(message(update_id, deep=json.loads("[" * 400 + "]" * 400))))
    # an empty object (Athena's raw table never sees it) claims no update_id: not its own day's other key for
    # the update, nor, the day before, this day's copy
    update_id = next(ids)
    add(update_id, b"", key=f"{day_prefix(day)}0{update_id}.json")
    add(update_id, message(update_id, text="kept despite an empty 0-prefixed copy"))
    update_id = first + 5_000 + day.day  # one id per day: another day's edge cases never name this key
    add(update_id, b"", key=raw_key(day - timedelta(days=1), update_id))
    add(update_id, message(update_id, text="kept despite an empty copy the day before"))
    # keys: another name for an update already stored (the first key in sorted order wins), keys that name
    # no update (not <digits>.json, beyond a bigint, hidden, nested)
    update_id = next(ids)
    add(update_id, message(update_id, text="under 000 key"), key=f"{day_prefix(day)}000{update_id}.json")
    add(update_id, message(update_id, text="under its own key"))
    add(0, message(1), key=f"{day_prefix(day)}notes.txt")
    add(0, message(2), key=f"{day_prefix(day)}{BIGINT_MAX + 1}.json")
    add(0, message(3), key=f"{day_prefix(day)}_3.json")
    add(0, message(4), key=f"{day_prefix(day)}nested/4.json")
    add(0, message(5), key=f"{day_prefix(day)}-5.json")
    return cases


def chat_objects() -> Objects:
    """A synthetic chat over DAYS days, stored as the ingest stores it, with updates redelivered after
    midnight (stored under both days: the earlier day keeps them)."""
    objects: Objects = []
    updates = synthetic_chat(FIRST_DAY, DAYS, 120, chat_id=-100123, other_chat_id=-100456, zone=ZONE, seed=11)
    by_day: dict[date, list[Any]] = {}
    for update in updates:
        day = update.arrival.astimezone(_zone()).date()
        by_day.setdefault(day, []).append(update.update)
    for day, day_updates in sorted(by_day.items()):
        objects += [(raw_key(day, update["update_id"]), compact_json(update)) for update in day_updates]
        next_day = day + timedelta(days=1)
        objects += [(raw_key(next_day, update["update_id"]), compact_json(update)) for update in day_updates[-3:]]
    return objects


def _zone():
    from zoneinfo import ZoneInfo

    return ZoneInfo(ZONE)


def corpus() -> Objects:
    return chat_objects() + edge_cases(FIRST_DAY + timedelta(days=1)) + edge_cases(FIRST_DAY + timedelta(days=2))


def etl_rows(objects: Objects, days: list[date]) -> list[dict[str, Any]]:
    """What the ETL Lambda's own code writes for each day, read back from its Parquet files."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (RAW, ENRICHED):
            s3.create_bucket(Bucket=bucket)
        for key, body in objects:
            s3.put_object(Bucket=RAW, Key=key, Body=body)
        rows = []
        for day in days:
            summary = compact_day(s3, raw_bucket=RAW, enriched_bucket=ENRICHED, day=day, concurrency=4)
            if summary.rows_written:
                body = s3.get_object(Bucket=ENRICHED, Key=enriched_key(day))["Body"].read()
                rows += [{**row, "context_date": day} for row in pq.read_table(io.BytesIO(body)).to_pylist()]
        return rows


def write_raw(objects: Objects, root: Path) -> Path:
    """The raw bucket's layout in a folder (`raw/telegram/context_date=D/<name>`)."""
    for key, body in objects:
        path = root / "raw" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return root / "raw"


def sql_rows(raw: Path, first: date, last: date) -> list[dict[str, Any]]:
    lake = LocalLake(LakeFolders(enriched=None, raw=raw / "telegram"))
    try:
        sql = raw_rows(DATABASE, f"DATE '{first.isoformat()}'", f"DATE '{last.isoformat()}'")
        columns, rows = lake.execute(sql, DATABASE, "raw_rows.sql")
    finally:
        lake.close()
    return [dict(zip(columns, row)) for row in rows]


def by_update(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda row: (row["context_date"], row["update_id"]))


@pytest.fixture(scope="module")
def both_engines(tmp_path_factory) -> Iterator[tuple[list[dict], list[dict]]]:
    objects = corpus()
    days = [FIRST_DAY + timedelta(days=offset) for offset in range(DAYS + 1)]
    raw = write_raw(objects, tmp_path_factory.mktemp("lake"))
    yield by_update(etl_rows(objects, days)), by_update(sql_rows(raw, days[0], days[-1]))


def test_the_sql_writes_the_etls_rows_cell_by_cell(both_engines):
    etl, sql = both_engines

    assert len(etl) > 500  # the synthetic chat and the edge cases, not a handful
    assert [list(row) for row in sql[:1]] == [[*COLUMN_NAMES, "context_date"]]
    assert [(row["context_date"], row["update_id"]) for row in sql] == [
        (row["context_date"], row["update_id"]) for row in etl
    ]
    for expected, actual in zip(etl, sql):
        assert actual == expected, f"update {expected['update_id']} differs"


def test_the_corpus_reaches_every_rule(both_engines):
    """The equality above means something only if the corpus exercises what differs between updates."""
    etl, _ = both_engines
    types = {row["update_type"] for row in etl}

    assert set(MESSAGE_UPDATE_TYPES) | {"guest_message", "alpha_post"} <= types
    assert {"animation", "venue", "service", "other", "photo", "text"} <= {row["message_type"] for row in etl}
    assert {"/price", "/help", "/start"} <= {row["command"] for row in etl}
    assert any(row["text"] and "?" in row["text"] and "surrogate" in row["text"] for row in etl)  # a lone one
    assert any(row["text"] and "\ufffd" in row["text"] for row in etl)  # bytes that are not UTF-8
    assert any(row["message_id"] is None for row in etl) and any(row["user_is_bot"] for row in etl)


# ---- each difference between DuckDB and Trino that the local translation handles


def test_duckdb_refuses_an_escaped_lone_surrogate_which_the_translation_writes_as_athena_does():
    escaped = '{"text":"a\\ud800b","pair":"\\ud83d\\ude00","literal":"\\\\ud800"}'

    with pytest.raises(duckdb.Error, match="surrogate"):
        duckdb.connect().execute(f"SELECT json('{escaped}')").fetchall()
    assert raw_lines(escaped.encode()) == ['{"text":"a?b","pair":"\\ud83d\\ude00","literal":"\\\\ud800"}']
    assert json.loads(raw_lines(escaped.encode())[0])["text"] == "a?b"


def test_duckdb_parses_nan_and_trailing_commas_which_trino_refuses_so_such_a_line_is_null():
    connection = duckdb.connect()
    for lenient in ('{"a":NaN}', '{"a":Infinity}', '{"a":1,}'):
        assert connection.execute(f"SELECT json('{lenient}')").fetchone()[0] is not None
        assert raw_lines(lenient.encode()) == [None]


def test_a_number_past_a_double_is_the_string_trino_writes_for_it():
    assert raw_lines(b'{"a":1e999,"b":[-1e400],"c":1.5}') == ['{"a":"Infinity","b":["-Infinity"],"c":1.5}']
    assert raw_lines(b'{"a":1.5e300}') == ['{"a":1.5e300}']  # a finite one reaches DuckDB byte for byte


def test_duckdb_keeps_the_first_of_a_repeated_key_which_the_translation_collapses_to_the_last_as_trino():
    assert duckdb.connect().execute("""SELECT json('{"a":1,"a":2}') ->> '$.a'""").fetchone() == ("1",)
    assert raw_lines(b'{"a":1,"b":{"c":1,"c":[2]},"a":"\\ud800"}') == ['{"a":"?","b":{"c":[2]}}']
    assert raw_lines(b'{"a":1,"b":2}') == ['{"a":1,"b":2}']  # a line without one is read byte for byte
    assert raw_lines(b'{"a":1,"a":2,"b":NaN}') == [None]  # and one that is not standard JSON is still refused


def test_bytes_that_are_not_utf8_read_as_u_fffd_and_lines_split_as_hadoops():
    assert raw_lines(b'{"a":"\xff"}\n{"b":2}') == ['{"a":"\ufffd"}', '{"b":2}']
    assert raw_lines(b'{"a":1}\xff\n{"b":2}') == [None, '{"b":2}']  # outside a string it is no JSON
    assert raw_lines(b"\xef\xbb\xbf1\r\n2\r3\n\n4\n") == ["1", "2", "3", None, "4"]  # an empty line is no JSON either
    assert raw_lines(b"") == []


def test_duckdb_substr_refuses_a_length_beyond_4_gib_so_the_sql_clamps_it_to_the_text_as_python_slices():
    with pytest.raises(duckdb.Error, match="Substring length"):
        duckdb.connect().execute("SELECT substr('/help', 1, 9223372036854775807)").fetchall()
    clamped = "SELECT substr('/help', 1, least(length('/help'), 9223372036854775807))"
    assert duckdb.connect().execute(clamped).fetchone() == ("/help",)


def test_unicode_lower_differs_between_engines_so_commands_lower_ascii_letters_only():
    assert "İ".lower() != duckdb.connect().execute("SELECT lower('İ')").fetchone()[0]  # Python's full case mapping
    sql = "SELECT translate('/ÀB', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
    assert duckdb.connect().execute(sql).fetchone()[0] == "/Àb"


def test_json_numbers_are_typed_by_their_text_in_both_engines():
    """Trino has no json_type: the SQL reads a value's JSON text (json_format), whose first character or
    digits say its type. DuckDB's CAST(json AS VARCHAR) gives that text too, canonical like Trino's."""
    values = duckdb.connect().execute(
        """SELECT CAST(TO_JSON(j -> '$.a') AS TEXT), CAST(TO_JSON(j -> '$.b') AS TEXT), CAST(TO_JSON(j -> '$.c') AS TEXT),
                  CAST(TO_JSON(j -> '$.d') AS TEXT)
           FROM (SELECT json('{"a": 1e2, "b": -0, "c": "1", "d": true}') AS j)"""
    ).fetchone()
    assert values == ("100.0", "0", '"1"', "true")


def test_the_day_window_of_the_sql_reads_the_day_before_for_its_keys_only(tmp_path):
    """An update stored on day D and redelivered on D+1 is D's: flattening D+1 alone must still drop it."""
    day = FIRST_DAY
    update = message(77)
    raw = write_raw([(raw_key(day, 77), compact_json(update)), (raw_key(day + timedelta(days=1), 77),
                                                                 compact_json(update))], tmp_path)

    assert [row["update_id"] for row in sql_rows(raw, day, day)] == [77]
    assert sql_rows(raw, day + timedelta(days=1), day + timedelta(days=1)) == []

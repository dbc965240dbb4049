"""The ETL's pure rules on raw keys and bodies: which objects hold updates, and every copy of an update they hold."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import date

import pytest

from lambdas.common.envelope import envelope_line, update_bytes
from lambdas.common.layout import day_prefix, raw_key, raw_object_kind
import lambdas.etl.day as day_module
from lambdas.etl.day import (
    Copy, Reject, UnreadableObject, claims_of, copies_of, may_claim, object_lines, single_update_id,
)
from lambdas.etl.schema import BIGINT_MAX

DAY = date(2026, 11, 24)
MESSAGE = b'{"message_id":1,"date":1,"chat":{"id":1}}'


def update(update_id: int) -> bytes:
    return b'{"update_id":%d,"message":%s}' % (update_id, MESSAGE)


@pytest.mark.parametrize(
    ("name", "kind", "update_id"),
    [
        ("0.json", "single", 0),
        ("007.json", "single", 7),
        (f"{BIGINT_MAX}.json", "single", BIGINT_MAX),
        (f"{BIGINT_MAX + 1}.json", "single", None),  # 19 digits, but no bigint: the ETL could never store it
        ("99999999999999999999.json", None, None),
        ("-1.json", None, None),
        ("1.json.tmp", None, None),
        ("TelegramLake-dev-Raw-1-2026-11-24-10-00-00-abc.jsonl.gz", "batch", None),
        ("hand-made.jsonl", "batch", None),
        ("a.jsonl.gz.tmp", None, None),
        ("nested/1.json", None, None),
        ("nested/x.jsonl.gz", None, None),
    ],
)
def test_a_raw_key_names_its_kind_and_a_single_updates_id_within_a_bigint(name, kind, update_id):
    key = f"{day_prefix(DAY)}{name}"

    assert raw_object_kind(key, DAY) == kind
    assert single_update_id(key, DAY) == update_id


def test_a_batch_line_is_an_envelope_whose_update_is_the_body_byte_for_byte():
    body = b'{"update_id":7,"message":{"text":"a,\\"update\\":b \\ud800"}}'
    line = envelope_line(DAY, 1_796_000_000_123, body)

    assert line.endswith(b"}\n") and line.count(b"\n") == 1
    assert update_bytes(line) == body
    [copy] = copies_of("k.jsonl", "batch", line, DAY)
    assert (copy.update_id, copy.received_at) == (7, 1_796_000_000_123)
    assert copy.update["message"]["text"] == 'a,"update":b \ud800'  # flatten writes it as Athena does
    assert copy.line_digest == hashlib.md5(line.rstrip(b"\n")).digest()


def test_every_line_of_a_batch_is_a_copy_or_a_reject_naming_its_line():
    lines = [
        envelope_line(DAY, 1, update(1)),
        b"not json\n",
        envelope_line(date(2026, 11, 23), 2, update(2)),  # another day's line in this day's folder
        b'{"context_date":"2026-11-24","received_at":-3,"update":%s}\n' % update(3),
        b'{"context_date":"2026-11-24","received_at":true,"update":%s}\n' % update(4),
        b'{"context_date":"2026-11-24","received_at":5.0,"update":%s}\n' % update(5),
        b'{"context_date":"2026-11-24","received_at":6,"update":[6]}\n',
        b'{"context_date":"2026-11-24","received_at":7,"update":{"update_id":true}}\n',
        b'{"context_date":"2026-11-24","received_at":8,"update":{"update_id":%d}}\n' % (BIGINT_MAX + 1),
        b'{"context_date":"2026-11-24","received_at":9,"update":{"update_id":9,"message":"x"}}\n',
        b"[1]\n",
        b"\n",
        envelope_line(DAY, 10, update(10)),
    ]
    found = list(copies_of("k.jsonl.gz", "batch", gzip.compress(b"".join(lines)), DAY))

    assert [item.update_id for item in found if isinstance(item, Copy)] == [1, 10]
    reasons = [item.reason for item in found if isinstance(item, Reject)]
    assert [reason.split(":")[0] for reason in reasons] == [f"line {number}" for number in range(2, 13)]
    assert "not valid JSON" in reasons[0] and "is not the folder's day" in reasons[1]
    assert all("received_at" in reason for reason in reasons[2:5])
    assert "a JSON list, not an object" in reasons[5] and "no integer update_id (got True)" in reasons[6]
    assert "beyond a bigint" in reasons[7] and "message is a str" in reasons[8]


def test_a_single_update_object_is_one_line_of_json_naming_its_keys_update():
    assert [copy.update_id for copy in copies_of(raw_key(DAY, 1), "single", update(1) + b"\r\n", DAY)] == [1]
    for body, reason in (
        (update(2), "update_id 2 does not match the object's name 1.json"),
        (update(1) + b"\n" + update(1), "not one line of JSON"),
        (b'{"update_id":true,"message":%s}' % MESSAGE, "no integer update_id (got True)"),
    ):
        [reject] = copies_of(raw_key(DAY, 1), "single", body, DAY)
        assert isinstance(reject, Reject) and reason in reject.reason


@pytest.mark.parametrize("flag", [True, False])
def test_a_boolean_update_id_is_not_an_update_id(flag):
    """True == 1 and False == 0 in Python: a key's name alone would match."""
    body = json.dumps({"update_id": flag, "message": {"message_id": 1, "date": 1, "chat": {"id": 1}}}).encode()

    [reject] = copies_of(raw_key(DAY, int(flag)), "single", body, DAY)
    assert isinstance(reject, Reject) and f"no integer update_id (got {flag})" in reject.reason


def test_a_repeated_key_keeps_its_last_value_and_lone_surrogates_in_keys_are_written_before_the_type_is_chosen():
    def only(body: bytes, update_id: int = 1) -> dict:
        [copy] = copies_of(raw_key(DAY, update_id), "single", body, DAY)
        return copy.update

    assert only(b'{"update_id":2,"update_id":1,"message":' + MESSAGE + b"}")["update_id"] == 1
    # As Athena reads the line: "\ud800x" is "?x", which sorts before "\ue000y", the type it names
    assert only(b'{"update_id":1,"\\ue000y":1,"\\ud800x":' + MESSAGE + b"}") == {
        "update_id": 1, "\ue000y": 1, "?x": json.loads(MESSAGE)
    }
    # two keys Athena writes alike: the last wins
    assert only(b'{"update_id":1,"\\ud800":' + MESSAGE + b',"\\udc00":2}') == {"update_id": 1, "?": 2}


def line(update_id: int, rest: bytes = b',"message":' + MESSAGE, day: date = DAY) -> bytes:
    """A batch line as the ingest writes it, with an update whose JSON goes on with `rest`."""
    envelope = b'{"context_date":"%s","received_at":1,"update":{"update_id":%d%s}}\n'
    return envelope % (day.isoformat().encode(), update_id, rest)


CLAIM_LINES = [
    envelope_line(DAY, 1, update(1)),
    envelope_line(DAY, 2, update(2)),
    line(3, b',"message":' + MESSAGE + b',"update_id":4'),  # the last update_id wins: a copy of 4
    line(5, b',"message":' + MESSAGE + b',"upd\\u0061te_id":6'),  # an escaped key spells it too: a copy of 6
    line(7, b',"message":' + MESSAGE + b'},"update":{"update_id":8,"message":' + MESSAGE),  # a later update: 8
    line(9, b',"message":'),  # not JSON: a copy of nothing
    line(10, day=date(2026, 11, 23)),  # another day's envelope: a copy of nothing
    line(11, b',"message":"text"'),  # no Telegram Update: a copy of nothing
    line(12, b',"message":{"text":"update"}'),  # "update" in a text
    b'{"context_date": "2026-11-24", "received_at": 1, "update": {"update_id": 13, "message": %s}}\n' % MESSAGE,
    line(-14),
    line(15, b',"message":{"text":"\\u041f\\u0440\\u0438"}'),  # Telegram's escapes of what is beyond ASCII
    line(16, b',"message":{"text":"\\u0075"}'),  # an escaped ASCII letter: read whole, to be sure
    b'{"context_date":"2026-11-24","received_at":1,"imported":true,"update":{"update_id":-17,"message":%s}}\n' % MESSAGE,
]


@pytest.mark.parametrize(
    "ids", [set(), {1}, {2, 3, 5, 7}, {4, 6, 8}, {9, 10, 11}, {12, 13, -14}, {15, 16, -17}, set(range(-20, 20))]
)
def test_the_claims_on_a_day_are_the_copies_of_its_objects_among_the_ids_asked_for(ids):
    body = gzip.compress(b"".join(CLAIM_LINES))
    copies = [item.update_id for item in copies_of("k.jsonl.gz", "batch", body, DAY) if isinstance(item, Copy)]

    assert copies == [1, 2, 4, 6, 8, 12, 13, -14, 15, 16, -17]
    assert list(claims_of("k.jsonl.gz", "batch", body, DAY, ids)) == [i for i in copies if i in ids]


def test_a_line_as_the_ingest_writes_it_is_decoded_for_claims_only_when_its_update_id_is_asked_for(monkeypatch):
    decoded = []
    decode = day_module._batch_copy
    monkeypatch.setattr(day_module, "_batch_copy", lambda line, day: decoded.append(line) or decode(line, day))
    beyond_ascii = b'{"update_id":%d,"message":{"text":"\\u041f\\u0440\\u0438\\u0432\\u0435\\u0442"}}'
    lines = [envelope_line(DAY, 1, beyond_ascii % update_id) for update_id in range(100)]
    imported = envelope_line(DAY, 1, update(-5), imported=True)

    assert list(claims_of("k.jsonl", "batch", b"".join([*lines, imported]), DAY, {7, 100})) == [7]
    assert decoded == [lines[7].rstrip(b"\n")]


def test_a_single_update_object_claims_only_its_keys_update_and_is_read_only_when_that_is_asked_for():
    key = raw_key(DAY, 7)

    assert not may_claim(key, "single", DAY, {8}) and may_claim(key, "single", DAY, {7})
    assert may_claim("k.jsonl.gz", "batch", DAY, set())
    assert list(claims_of(key, "single", update(7), DAY, {7})) == [7]
    assert list(claims_of(key, "single", update(8), DAY, {7, 8})) == []  # its update_id is not its key's


def test_an_object_is_split_as_athenas_reader_splits_it():
    assert object_lines("k.jsonl", b"\xef\xbb\xbfa\r\nb\rc\n\nd\n") == [b"a", b"b", b"c", b"", b"d"]
    assert object_lines("k.jsonl.gz", gzip.compress(b"a\nb")) == [b"a", b"b"]
    assert object_lines("k.jsonl", b"\xef\xbb\xbf\xef\xbb\xbfa") == [b"\xef\xbb\xbfa"]  # only one mark, at the start
    with pytest.raises(UnreadableObject, match="k.jsonl.gz is not gzip"):
        object_lines("k.jsonl.gz", b"plain text")

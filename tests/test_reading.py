"""One reading of every stored byte (lambdas/common/reading.py): Athena, the ETL Lambda and the local path read the
same stored bytes to the same row, and the ingest refuses what Telegram never sends.

Athena cannot run here, so each case says what Athena makes of the bytes, from Trino's source (the text line
reader drops a leading byte order mark; `json_parse` decodes with Java's InputStreamReader; strings leave through
Java's UTF-8 encoder; a number past a double is re-serialized as the string "Infinity"), and both local readers
must give exactly that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from lambdas.common.layout import raw_key
from lambdas.common.reading import UNIX_SECONDS_MAX, athena_text, decoded, load_json
from lambdas.etl.schema import COLUMN_NAMES
from lambdas.ingest.webhook import Rejection, parse_update
from tests.test_flatten_sql import etl_rows, sql_rows, write_raw

DAY = date(2026, 11, 21)
BASE = (
    b'{"update_id":%d,"message":{"message_id":1,"date":1795000000,'
    b'"chat":{"id":-100,"type":"supergroup","title":"Lake"},"from":{"id":42,"first_name":"Ana"},%s}}'
)


@dataclass(frozen=True)
class Case:
    """Stored bytes, what Athena reads of them (`expected`: columns of the row), and whether Telegram can send them."""

    name: str
    fields: bytes  # the message's last fields, spliced into BASE (or a whole body when `whole`)
    expected: dict[str, Any]
    telegram_sends_it: bool
    whole: bool = False

    def body(self, update_id: int) -> bytes:
        return self.fields % update_id if self.whole else BASE % (update_id, self.fields)


CASES = (
    Case("plain", b'"text":"hello"', {"text": "hello"}, True),
    Case("byte order mark", b"\xef\xbb\xbf" + BASE.replace(b"%s", b'"text":"bom"'), {"text": "bom"}, False, whole=True),
    Case("not UTF-8: a stray byte", b'"text":"a\xffb"', {"text": "a\ufffdb"}, False),
    Case("not UTF-8: an encoded surrogate", b'"text":"a\xed\xa0\x80b"', {"text": "a\ufffd\ufffd\ufffdb"}, False),
    Case("not UTF-8: a cut sequence", b'"text":"a\xe2\x82b"', {"text": "a\ufffdb"}, False),
    Case("a lone surrogate escaped", b'"text":"a\\ud800b"', {"text": "a?b"}, True),
    Case("a pair of surrogates escaped", b'"text":"a\\ud83d\\ude00b"', {"text": "a\U0001F600b"}, True),
    Case("a lone low surrogate in the caption", b'"text":"x","caption":"\\udc00"', {"caption": "?"}, True),
    Case("a number past a double in a string column", b'"text":1e400', {"text": "Infinity"}, False),
    Case("a negative one", b'"text":-1e400,"caption":1e400', {"text": "-Infinity", "caption": "Infinity"}, False),
    Case("a big finite double in a string column", b'"text":1.5e300', {"text": None}, True),
    Case("a date Athena cannot read", b'"text":"late","edit_date":2250000000000', {"edit_date": None}, False),
    Case("the last date every reader keeps", b'"text":"x","edit_date":%d' % UNIX_SECONDS_MAX,
         {"edit_date": UNIX_SECONDS_MAX}, True),
    Case("a date past a double", b'"text":"x","edit_date":1e400', {"edit_date": None}, False),
)
TYPE_CASES = (
    # A lone surrogate in a key: Trino's map keys are written as Athena writes them, and the type is chosen among
    # those names: "?x" sorts before "alpha", so it is this (newer, Message-shaped) update's type.
    Case(
        "a lone surrogate in a type's key",
        b'{"update_id":%d,"alpha":{},"\\ud800x":{"message_id":1,"date":1795000000,"chat":{"id":-100},"text":"k"}}',
        {"update_type": "?x", "text": "k"}, True, whole=True,
    ),
)


def rows_by_reader(cases: tuple[Case, ...], tmp_path) -> tuple[dict[int, dict], dict[int, dict]]:
    objects = [(raw_key(DAY, number), case.body(number)) for number, case in enumerate(cases, start=1)]
    etl = {row["update_id"]: row for row in etl_rows(objects, [DAY])}
    sql = {row["update_id"]: row for row in sql_rows(write_raw(objects, tmp_path), DAY, DAY)}
    return etl, sql


@pytest.fixture(scope="module")
def readers(tmp_path_factory):
    return rows_by_reader(CASES + TYPE_CASES, tmp_path_factory.mktemp("reading"))


@pytest.mark.parametrize("number_and_case", list(enumerate(CASES + TYPE_CASES, start=1)), ids=lambda nc: nc[1].name)
def test_every_reader_reads_the_stored_bytes_as_athena_does(readers, number_and_case):
    number, case = number_and_case
    etl, sql = readers

    assert number in etl, f"the ETL made no row of {case.name!r}"
    assert sql.get(number) == etl[number]
    for column, value in case.expected.items():
        assert etl[number][column] == value, column
    assert set(case.expected) <= set(COLUMN_NAMES)


@pytest.mark.parametrize("case", CASES + TYPE_CASES, ids=lambda case: case.name)
def test_the_ingest_refuses_what_telegram_never_sends_and_stores_the_rest(case):
    body = case.body(1)
    if case.telegram_sends_it:
        assert parse_update(body).body == body  # stored byte for byte
    else:
        with pytest.raises(Rejection) as refused:
            parse_update(body)
        assert refused.value.status == 400


@pytest.mark.parametrize("line_break", [b"\n", b"\r", b"\r\n"], ids=["LF", "CR", "CRLF"])
def test_a_line_break_is_refused_by_the_ingest_and_every_reader_rejects_the_object_that_holds_one(line_break, tmp_path):
    """Telegram sends compact JSON. A line break between tokens would split the update's line in a batch; an older
    single-update object holding one is split by Athena's line reader too, so every reader rejects it."""
    broken = BASE % (2, b'"text":"x",' + line_break + b'"caption":"y"')
    with pytest.raises(Rejection) as refused:
        parse_update(broken)
    assert (refused.value.status, refused.value.reason) == (400, "body has a line break")

    objects = [(raw_key(DAY, 1), BASE % (1, b'"text":"kept"')), (raw_key(DAY, 2), broken)]
    etl = [row["update_id"] for row in etl_rows(objects, [DAY])]
    sql = [row["update_id"] for row in sql_rows(write_raw(objects, tmp_path), DAY, DAY)]
    assert etl == sql == [1]


def test_athena_text_writes_lone_surrogates_as_java_does_and_keeps_pairs_and_offsets():
    assert athena_text("plain") == "plain"
    assert athena_text("olá \U0001F600") == "olá \U0001F600"
    assert athena_text("\ud800") == "?"
    assert athena_text("a\udc00b\ud800") == "a?b?"
    assert athena_text("\ud83d\ude00") == "\U0001F600"  # two code units of a pair are their one character
    assert len(athena_text("x\ud800y").encode("utf-16-le")) == len("x?y".encode("utf-16-le"))


def test_decoded_drops_a_byte_order_mark_only_at_the_start():
    assert decoded(b"\xef\xbb\xbf{}") == "{}"
    assert decoded(b"{}\xef\xbb\xbf") == "{}\ufeff"


def test_load_json_keeps_trinos_numbers_keys_and_refusals():
    assert load_json('{"a":1e400,"b":-1e999,"c":1.5,"d":10}') == {"a": "Infinity", "b": "-Infinity", "c": 1.5, "d": 10}
    assert load_json('{"\\ud800":1,"\\udc00":2}') == {"?": 2}  # two names Athena writes alike: the last wins
    for not_json in ('{"a":NaN}', '{"a":Infinity}', '{"a":-Infinity}'):
        with pytest.raises(ValueError):
            load_json(not_json)
    assert json.loads('{"a":1}') == load_json('{"a":1}')

"""Update -> row: every column, every message kind, commands, and anything missing or malformed becoming null."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import pyarrow as pa
import pytest

from lambdas.common.layout import local_day
from lambdas.common.updates import MESSAGE_UPDATE_TYPES, UPDATE_TYPES, carries_message, update_type
from lambdas.etl.flatten import flatten, leading_command, message_type
from lambdas.etl.schema import BIGINT_MAX, BIGINT_MIN, COLUMN_NAMES, arrow_schema
from tools.local.synthetic import synthetic_chat

CHAT = {"id": -1001234567890, "type": "supergroup", "title": "Lake"}
ANA = {
    "id": 42, "is_bot": False, "first_name": "Ana", "last_name": "Silva", "username": "ana", "language_code": "pt-br",
}


def update(kind: str = "message", update_id: int = 1, **message: Any) -> dict[str, Any]:
    payload = {"message_id": 7, "from": ANA, "chat": CHAT, "date": 1_790_000_000, **message}
    return {"update_id": update_id, kind: payload}


def command_entity(length: int, offset: int = 0) -> list[dict[str, Any]]:
    return [{"type": "bot_command", "offset": offset, "length": length}]


def test_a_text_message_fills_every_column():
    row = flatten(update(text="/Price@SomeBot btc", entities=command_entity(14), message_thread_id=3,
                         reply_to_message={"message_id": 5, "chat": CHAT, "date": 1}))

    assert tuple(row) == COLUMN_NAMES
    assert row == {
        "message_id": 7, "user_id": 42, "user_is_bot": False, "user_first_name": "Ana",
        "chat_id": -1001234567890, "chat_type": "supergroup", "text": "/Price@SomeBot btc", "date": 1_790_000_000,
        "update_id": 1, "update_type": "message", "message_type": "text", "caption": None,
        "user_last_name": "Silva", "user_username": "ana", "user_language_code": "pt-br", "chat_title": "Lake",
        "reply_to_message_id": 5, "message_thread_id": 3, "edit_date": None, "is_command": True, "command": "/price",
    }


@pytest.mark.parametrize("kind", MESSAGE_UPDATE_TYPES)
def test_every_message_like_update_type_becomes_a_row(kind):
    row = flatten(update(kind, text="hello", edit_date=1_790_000_100))

    assert carries_message(update(kind))
    assert (row["update_type"], row["text"], row["edit_date"], row["message_id"]) == (kind, "hello", 1_790_000_100, 7)


def test_an_update_type_newer_than_the_code_carrying_a_message_is_a_row_named_after_its_field():
    newer = update("guest_message", text="hello from a newer Bot API")

    row = flatten(newer)

    assert carries_message(newer)
    assert (row["update_type"], row["text"], row["chat_id"], row["user_id"]) == (
        "guest_message", "hello from a newer Bot API", CHAT["id"], ANA["id"]
    )
    pa.RecordBatch.from_pylist([row], schema=arrow_schema())


@pytest.mark.parametrize("kind", [k for k in UPDATE_TYPES if k not in MESSAGE_UPDATE_TYPES])
def test_known_update_types_that_are_not_messages_are_not_rows_even_when_shaped_like_one(kind):
    # message_reaction, for one, really has message_id, date and chat.
    assert not carries_message(update(kind))


@pytest.mark.parametrize(
    "payload",
    [{"id": "x"}, {"message_id": 1, "date": 2}, {"message_id": "1", "date": 2, "chat": {}},
     {"message_id": 1, "date": 2, "chat": "c"}, "text", None],
)
def test_a_newer_update_type_whose_payload_is_not_a_message_is_not_a_row(payload):
    assert not carries_message({"update_id": 1, "unknown_future_type": payload})


def test_a_message_with_nothing_but_its_ids_is_a_row_of_nulls():
    row = flatten({"update_id": 9, "message": {}})

    assert row["update_id"] == 9 and row["update_type"] == "message"
    assert row["message_type"] == "other" and row["is_command"] is False
    not_null = [name for name, value in row.items() if value is not None]
    assert not_null == ["update_id", "update_type", "message_type", "is_command"]


def test_a_channel_post_without_from_has_null_user_columns():
    channel = {"id": -100, "type": "channel", "title": "News"}
    post = {"update_id": 3, "channel_post": {"message_id": 1, "sender_chat": channel, "chat": channel, "text": "hi"}}

    row = flatten(post)

    assert [row[name] for name in ("user_id", "user_is_bot", "user_first_name", "user_username")] == [None] * 4
    assert (row["chat_type"], row["chat_title"], row["text"]) == ("channel", "News", "hi")


def test_fields_of_the_wrong_type_become_null_instead_of_failing():
    row = flatten(update(message_id="7", date=2**70, text=["not", "text"], caption=5, message_thread_id=True,
                         **{"from": {"id": "42", "is_bot": "no", "first_name": None}, "chat": "oops"}))

    for column in ("message_id", "date", "text", "caption", "message_thread_id", "user_id", "user_is_bot",
                   "user_first_name", "chat_id", "chat_type"):
        assert row[column] is None, column
    pa.RecordBatch.from_pylist([row], schema=arrow_schema())  # still fits the schema


@pytest.mark.parametrize("value", [BIGINT_MIN - 1, BIGINT_MAX + 1, 2**70, -(2**70)])
def test_integers_beyond_a_bigint_at_either_end_become_null(value):
    row = flatten(update(message_id=value, date=value, reply_to_message={"message_id": value},
                         **{"from": {**ANA, "id": value}, "chat": {**CHAT, "id": value}}))

    assert [row[name] for name in ("message_id", "date", "reply_to_message_id", "user_id", "chat_id")] == [None] * 5
    pa.RecordBatch.from_pylist([row], schema=arrow_schema())


def test_the_bigint_bounds_themselves_are_kept():
    row = flatten(update(message_id=BIGINT_MAX, **{"chat": {**CHAT, "id": BIGINT_MIN}}))

    assert (row["message_id"], row["chat_id"]) == (BIGINT_MAX, BIGINT_MIN)
    pa.RecordBatch.from_pylist([row], schema=arrow_schema())


def test_every_string_column_holds_a_lone_surrogate_as_athena_writes_it():
    lone = "caf\ud800e"  # what JSON's "\ud800" decodes to
    newer_type = f"future{lone}"
    row = flatten({"update_id": 1, newer_type: {
        "message_id": 7, "date": 1, "text": f"/go\udfff now {lone}", "caption": lone,
        "entities": [{"type": "bot_command", "offset": 0, "length": 4}],
        "from": {"id": 42, "first_name": lone, "last_name": lone, "username": lone, "language_code": lone},
        "chat": {"id": -1, "type": lone, "title": lone},
    }})

    repaired = "caf?e"
    assert row["text"] == f"/go? now {repaired}" and row["update_type"] == f"future{repaired}"
    assert row["command"] == "/go?"  # the entity still spans the same UTF-16 units
    for name in ("caption", "user_first_name", "user_last_name", "user_username", "user_language_code",
                 "chat_type", "chat_title"):
        assert row[name] == repaired, name
    pa.RecordBatch.from_pylist([row], schema=arrow_schema())


@pytest.mark.parametrize("field", ["date", "edit_date"])
@pytest.mark.parametrize(
    ("value", "kept"),
    [(0, 0), (1_700_000_000, 1_700_000_000), (253_402_300_799, 253_402_300_799), (253_402_300_800, None),
     (2_250_000_000_000, None), (-1, None), (1.5, None), (True, None), ("1700000000", None)],
)
def test_a_date_no_query_could_read_is_null(field, value, kept):
    """Athena's from_unixtime fails the whole query past about 2.25e12 seconds: such a date never reaches one."""
    row = flatten(update(**{field: value}))

    assert row[field] == kept


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"text": "hi"}, "text"),
        ({"photo": [{"file_id": "a"}]}, "photo"),
        ({"sticker": {"file_id": "a"}}, "sticker"),
        ({"voice": {"file_id": "a"}}, "voice"),
        ({"video": {"file_id": "a"}}, "video"),
        ({"video_note": {"file_id": "a"}}, "video_note"),
        ({"audio": {"file_id": "a"}}, "audio"),
        ({"animation": {"file_id": "a"}, "document": {"file_id": "a"}}, "animation"),
        ({"document": {"file_id": "a"}}, "document"),
        ({"location": {"latitude": 1.0, "longitude": 2.0}}, "location"),
        ({"venue": {"title": "Cafe"}, "location": {"latitude": 1.0, "longitude": 2.0}}, "venue"),
        ({"contact": {"phone_number": "1"}}, "contact"),
        ({"poll": {"id": "p"}}, "poll"),
        ({"dice": {"emoji": "🎲", "value": 3}}, "dice"),
        ({"story": {"id": 1}}, "story"),
        ({"new_chat_members": [ANA]}, "service"),
        ({"left_chat_member": ANA}, "service"),
        ({"pinned_message": {"message_id": 1}}, "service"),
        ({"forum_topic_created": {"name": "Help"}}, "service"),
        ({"giveaway": {"chats": []}}, "other"),
    ],
)
def test_message_type(fields, expected):
    assert message_type(fields) == expected
    assert flatten(update(**fields))["message_type"] == expected


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"text": "/start", "entities": command_entity(6)}, "/start"),
        ({"text": "/Help@SomeBot", "entities": command_entity(13)}, "/help"),
        ({"text": "/price@SomeBot btc 😀", "entities": command_entity(14)}, "/price"),
        ({"caption": "/price eth", "caption_entities": command_entity(6)}, "/price"),
        ({"text": "see /help", "entities": command_entity(5, offset=4)}, None),
        ({"text": "/start", "entities": [{"type": "mention", "offset": 0, "length": 6}]}, None),
        ({"text": "/start"}, None),  # no entity: Telegram did not see a command
        ({"text": "/", "entities": command_entity(1)}, None),
        ({"text": "/start", "entities": [{"type": "bot_command", "offset": False, "length": 6}]}, None),
        ({"text": "/start", "entities": command_entity(99)}, "/start"),  # clamped to the text
        ({"text": "/start", "entities": command_entity(-2)}, None),  # not "/sta"
        ({"text": "/start", "entities": command_entity(0)}, None),
        ({"text": "hello world", "entities": command_entity(5)}, None),  # what it marks is no command
        ({"caption": " /start", "caption_entities": command_entity(7)}, None),
        ({"text": "/start", "entities": ["broken", {"type": "bot_command", "offset": 0, "length": "6"}]}, None),
    ],
)
def test_leading_command(message, expected):
    assert leading_command(message) == expected
    assert flatten(update(**message))["is_command"] is (expected is not None)


def test_the_synthetic_chat_flattens_completely_into_the_schema():
    chat = synthetic_chat(date(2026, 11, 2), 2, 400, chat_id=-1001, other_chat_id=-1002, zone="America/Sao_Paulo")
    rows = [flatten(item.update) for item in chat if carries_message(item.update)]

    batch = pa.RecordBatch.from_pylist(rows, schema=arrow_schema())

    assert batch.num_rows == len(rows) > 700
    kinds = Counter(row["message_type"] for row in rows)
    assert {"text", "photo", "sticker", "voice", "document", "location", "service"} <= set(kinds)
    commands = Counter(row["command"] for row in rows if row["is_command"])
    assert {"/start", "/help", "/price"} <= set(commands)
    assert Counter(row["chat_id"] for row in rows).keys() == {-1001, -1002}
    assert any(row["update_type"] == "edited_message" for row in rows)
    assert any(row["caption"] and row["message_type"] == "photo" for row in rows)
    assert any(row["message_type"] == "photo" and row["caption"] is None for row in rows)
    assert any(row["user_is_bot"] for row in rows) and any(row["reply_to_message_id"] for row in rows)
    questions = Counter(row["text"] for row in rows if row["text"] and row["text"].endswith("?"))
    assert questions.most_common(1)[0][1] >= 5  # questions recur, so "most frequent" means something


@pytest.mark.parametrize("saturday", [date(2026, 3, 7), date(2026, 10, 31)])  # New York's clocks change on Sunday
def test_the_synthetic_chat_is_deterministic_and_in_arrival_order_across_dst(saturday):
    def chat(seed: int) -> list:
        return synthetic_chat(saturday, 3, 1000, chat_id=-1, other_chat_id=None, zone="America/New_York", seed=seed)

    first = chat(7)

    assert first == chat(7) and first != chat(8)
    ids = [item.update["update_id"] for item in first]
    assert ids == sorted(set(ids)) and len(ids) == 3000
    instants = [item.arrival.timestamp() for item in first]
    assert instants == sorted(instants)
    days = Counter(local_day(item.arrival, "America/New_York") for item in first)
    sunday, monday = date.fromordinal(saturday.toordinal() + 1), date.fromordinal(saturday.toordinal() + 2)
    assert set(days) == {saturday, sunday, monday}
    assert days[monday] > days[sunday]  # weekdays are busier
    assert {update_type(item.update) for item in first} >= {"message", "edited_message", "callback_query"}

"""One Telegram Update -> one row of the enriched table (pure functions, no AWS).

Telegram omits every field that has no value, and a client or a future Bot API version may send a field
with an unexpected type. Neither may fail a day: a field that is missing or of the wrong type becomes
null, a lone surrogate in a string is written as Athena writes it (lambdas/common/reading.py), a date no
query could read is null, and the row always matches `schema.arrow_schema()` exactly.
"""

from __future__ import annotations

from typing import Any, Mapping

from lambdas.common.reading import athena_text, unix_seconds
from lambdas.common.updates import update_type
from lambdas.etl.schema import BIGINT_MAX, BIGINT_MIN

# A message's kind is the first of these fields it carries. Order matters: Telegram also sends `document`
# with every `animation`, and `location` with every `venue`.
CONTENT_TYPES = (
    "text", "animation", "photo", "sticker", "video_note", "video", "voice", "audio", "document", "venue",
    "location", "contact", "poll", "dice", "story",
)

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# Fields of a service message: something happened to the chat rather than someone saying something.
SERVICE_FIELDS = (
    "new_chat_members", "left_chat_member", "new_chat_title", "new_chat_photo", "delete_chat_photo",
    "group_chat_created", "supergroup_chat_created", "channel_chat_created", "message_auto_delete_timer_changed",
    "migrate_to_chat_id", "migrate_from_chat_id", "pinned_message", "successful_payment", "refunded_payment",
    "users_shared", "chat_shared", "write_access_allowed", "proximity_alert_triggered", "boost_added",
    "chat_background_set", "forum_topic_created", "forum_topic_edited", "forum_topic_closed",
    "forum_topic_reopened", "general_forum_topic_hidden", "general_forum_topic_unhidden", "giveaway_created",
    "giveaway_completed", "video_chat_scheduled", "video_chat_started", "video_chat_ended",
    "video_chat_participants_invited",
)


def flatten(update: Mapping[str, Any]) -> dict[str, Any]:
    """The enriched row of an update that carries a Message, with exactly the schema's columns.

    The caller has checked `updates.carries_message`, that `update_id` is an integer and that a known
    message type's payload is an object (see `day.decode_update`). A type newer than this code keeps its
    own name in `update_type`.
    """
    kind = update_type(update)
    message = _mapping(update.get(kind))
    sender = _mapping(message.get("from"))
    chat = _mapping(message.get("chat"))
    command = leading_command(message)
    return {
        "message_id": _integer(message.get("message_id")),
        "user_id": _integer(sender.get("id")),
        "user_is_bot": _boolean(sender.get("is_bot")),
        "user_first_name": _string(sender.get("first_name")),
        "chat_id": _integer(chat.get("id")),
        "chat_type": _string(chat.get("type")),
        "text": _string(message.get("text")),
        "date": unix_seconds(message.get("date")),
        "update_id": update["update_id"],
        "update_type": _string(kind),
        "message_type": message_type(message),
        "caption": _string(message.get("caption")),
        "user_last_name": _string(sender.get("last_name")),
        "user_username": _string(sender.get("username")),
        "user_language_code": _string(sender.get("language_code")),
        "chat_title": _string(chat.get("title")),
        "reply_to_message_id": _integer(_mapping(message.get("reply_to_message")).get("message_id")),
        "message_thread_id": _integer(message.get("message_thread_id")),
        "edit_date": unix_seconds(message.get("edit_date")),
        "is_command": command is not None,
        "command": command,
    }


def message_type(message: Mapping[str, Any]) -> str:
    """text, photo, sticker, ... for content; `service` for chat events; `other` for anything newer."""
    for field in CONTENT_TYPES:
        if message.get(field) is not None:
            return field
    if any(message.get(field) is not None for field in SERVICE_FIELDS):
        return "service"
    return "other"


def leading_command(message: Mapping[str, Any]) -> str | None:
    """`/price` for a message starting with `/Price@SomeBot btc`; None when it does not start with a command.

    Telegram marks commands with a `bot_command` entity (in `entities` for text, `caption_entities` for a
    caption). Entity lengths count UTF-16 code units; a command is ASCII, so at offset 0 they are characters.
    The entity is data like any other: its span is clamped to the text, and what it marks must start with `/`.
    Only ASCII letters are lowered (Telegram's commands are ASCII): Unicode case rules differ between Python
    and the SQL engines that flatten the same updates (analytics/lake/raw_rows.sql).
    """
    for text_field, entities_field in (("text", "entities"), ("caption", "caption_entities")):
        text = _string(message.get(text_field))
        entities = message.get(entities_field)
        if text is None or not isinstance(entities, list):
            continue
        for entity in entities:
            entity = _mapping(entity)
            length = _integer(entity.get("length")) or 0
            if entity.get("type") == "bot_command" and _integer(entity.get("offset")) == 0 and length > 0:
                command = text[:length].split("@", 1)[0].translate(_ASCII_LOWER)  # the slice stops at the text's end
                return command if len(command) > 1 and command.startswith("/") else None
    return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _integer(value: Any) -> int | None:
    """An int that fits a bigint column; bool is an int subclass in Python but not in JSON."""
    if isinstance(value, int) and not isinstance(value, bool) and BIGINT_MIN <= value <= BIGINT_MAX:
        return value
    return None


def _boolean(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _string(value: Any) -> str | None:
    """A str as Athena writes it: JSON's `\\ud800` decodes to a lone surrogate, which is not UTF-8 (pyarrow would
    refuse the whole batch) and which Athena writes as `?`."""
    return athena_text(value) if isinstance(value, str) else None

"""What kind of Telegram update this is and which chat it belongs to (Bot API 10.x `Update`).

An Update carries `update_id` plus exactly one optional field naming its type. Telegram adds new types
several times a year, so nothing here depends on knowing them: the type is whatever field the update
carries, its chat is found wherever payloads keep one, and a payload shaped like a Message is one.
Shared by the ingest handler (allowlist), the ETL (flattening) and the stage configuration.
"""

from __future__ import annotations

from typing import Any, Mapping

# Every optional field of Bot API 10.x's `Update`, in the order the Bot API documents them.
UPDATE_TYPES = (
    "message", "edited_message", "channel_post", "edited_channel_post", "business_connection",
    "business_message", "edited_business_message", "deleted_business_messages", "message_reaction",
    "message_reaction_count", "inline_query", "chosen_inline_result", "callback_query", "shipping_query",
    "pre_checkout_query", "purchased_paid_media", "poll", "poll_answer", "my_chat_member", "chat_member",
    "chat_join_request", "chat_boost", "removed_chat_boost",
)

# Known update types whose payload is a `Message`: these become rows of the enriched table.
MESSAGE_UPDATE_TYPES = (
    "message", "edited_message", "channel_post", "edited_channel_post", "business_message",
    "edited_business_message",
)

# Known update types that never carry a chat: a stage that asks Telegram only for these stores nothing.
CHATLESS_UPDATE_TYPES = (
    "business_connection", "inline_query", "chosen_inline_result", "shipping_query", "pre_checkout_query",
    "purchased_paid_media", "poll", "poll_answer",
)

# What `update_type` answers for a body that names no type at all (only `update_id`).
NO_TYPE = "unknown"


def update_type(update: Mapping[str, Any]) -> str:
    """The update's type: the first known type it carries, else the (alphabetically) first field besides
    `update_id` (a type newer than this code keeps its own name), else `unknown`.

    Not "the first field in the document": SQL engines read a JSON object as a map, whose key order is not
    the document's, and the flattening SQL (analytics/lake/raw_rows.sql) must name the same type.
    """
    for name in UPDATE_TYPES:
        if name in update:
            return name
    return min((str(name) for name in update if name != "update_id"), default=NO_TYPE)


def is_known_type(name: str) -> bool:
    return name in UPDATE_TYPES


def update_payload(update: Mapping[str, Any]) -> Any:
    """The value of the update's type field (normally an object), or None when it has no type."""
    return update.get(update_type(update))


def update_chat(update: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The chat object an update happened in, wherever its type keeps it; None for chat-less updates.

    Messages, membership, reaction and boost updates keep it in the payload's `chat`; callback queries
    (and any newer type built the same way) in the payload's `message.chat`. Inline queries, polls, poll
    answers and payments have none.
    """
    payload = update_payload(update)
    if not isinstance(payload, Mapping):
        return None
    chat = payload.get("chat")
    if chat is None and isinstance(payload.get("message"), Mapping):
        chat = payload["message"].get("chat")
    return chat if isinstance(chat, Mapping) and _is_integer(chat.get("id")) else None


def update_chat_id(update: Mapping[str, Any]) -> int | None:
    chat = update_chat(update)
    return None if chat is None else chat["id"]


def is_message(payload: Any) -> bool:
    """Whether a payload has a Message's shape: an object with an integer `message_id` and `date` and a `chat`."""
    return (
        isinstance(payload, Mapping)
        and _is_integer(payload.get("message_id"))
        and _is_integer(payload.get("date"))
        and isinstance(payload.get("chat"), Mapping)
    )


def carries_message(update: Mapping[str, Any]) -> bool:
    """Whether the update becomes a row: a known message type, or a newer type whose payload is a Message.

    Known types that are not messages (reactions, members, ...) stay out even where their payload happens
    to have `message_id`, `date` and `chat` too.
    """
    kind = update_type(update)
    if is_known_type(kind):
        return kind in MESSAGE_UPDATE_TYPES
    return is_message(update.get(kind))


def _is_integer(value: Any) -> bool:
    """JSON integers only: bool is an int subclass in Python but not a number in JSON."""
    return isinstance(value, int) and not isinstance(value, bool)

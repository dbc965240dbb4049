"""What kind of Telegram update this is and which chat it belongs to (Bot API 10.x `Update`).

An Update carries `update_id` plus exactly one optional field naming its type. Shared by the ingest
handler (allowlist), the ETL (flattening) and the stage configuration (`allowed_updates`).
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

# Update types whose payload is a `Message`: these become rows of the enriched table.
MESSAGE_UPDATE_TYPES = (
    "message", "edited_message", "channel_post", "edited_channel_post", "business_message",
    "edited_business_message",
)


def update_type(update: Mapping[str, Any]) -> str:
    """The update's type: the first known field present, or `unknown` for a type newer than this code."""
    for name in UPDATE_TYPES:
        if name in update:
            return name
    return "unknown"


def update_chat_id(update: Mapping[str, Any]) -> int | None:
    """The chat an update happened in, wherever its type keeps it; None for chat-less updates.

    Messages and membership/reaction/boost updates have `chat`; callback queries carry theirs in
    `callback_query.message.chat`; inline queries, polls, poll answers and payments have no chat.
    """
    payload = update.get(update_type(update))
    if not isinstance(payload, Mapping):
        return None
    chat = payload.get("chat")
    if chat is None and isinstance(payload.get("message"), Mapping):
        chat = payload["message"].get("chat")
    if isinstance(chat, Mapping) and isinstance(chat.get("id"), int) and not isinstance(chat.get("id"), bool):
        return chat["id"]
    return None

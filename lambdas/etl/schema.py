"""The enriched table's schema: the single source of truth for the ETL writer and the Glue table.

The first eight columns are the original design's, with the same names and types, so its analytics run
unchanged. Every column is nullable except `update_id`: a field Telegram did not send is null, never an
error. pyarrow is imported lazily so the CDK app can read the Glue columns without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lambdas.common.layout import PARTITION_KEY

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str  # Athena/Glue type name: bigint, boolean, string or date
    comment: str
    nullable: bool = True


COLUMNS: tuple[Column, ...] = (
    Column("message_id", "bigint", "Telegram message id, unique within its chat"),
    Column("user_id", "bigint", "sender's user id (from.id)"),
    Column("user_is_bot", "boolean", "whether the sender is a bot"),
    Column("user_first_name", "string", "sender's first name"),
    Column("chat_id", "bigint", "chat the message was sent in"),
    Column("chat_type", "string", "private, group, supergroup or channel"),
    Column("text", "string", "message text; null for media without text"),
    Column("date", "bigint", "when the message was sent, Unix seconds (UTC)"),
    Column("update_id", "bigint", "Telegram update id, unique per bot: the deduplication key", nullable=False),
    Column("update_type", "string", "message, edited_message, channel_post, business_message, ..."),
    Column("message_type", "string", "text, photo, sticker, voice, video, document, location, poll, service, ..."),
    Column("caption", "string", "caption of a photo, video, document or other media"),
    Column("user_last_name", "string", "sender's last name"),
    Column("user_username", "string", "sender's @username without the @"),
    Column("user_language_code", "string", "sender's IETF language tag as their client reports it"),
    Column("chat_title", "string", "title of a group, supergroup or channel"),
    Column("reply_to_message_id", "bigint", "message this one replies to"),
    Column("message_thread_id", "bigint", "forum topic or reply thread"),
    Column("edit_date", "bigint", "when the message was last edited, Unix seconds (UTC)"),
    Column("is_command", "boolean", "whether the message starts with a bot command"),
    Column("command", "string", "the leading bot command without its @botname suffix, e.g. /start"),
)

# The partition column: Hive-style folder `context_date=YYYY-MM-DD`, the update's day in the stage's zone.
PARTITION = Column(PARTITION_KEY, "date", "the day the update arrived, in the stage's time zone")

# The range of a `bigint` column: an id outside it cannot be stored, so it counts as missing or rejected.
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1

COLUMN_NAMES: tuple[str, ...] = tuple(column.name for column in COLUMNS)


def arrow_schema() -> "pa.Schema":
    """The Parquet schema the ETL writes, derived from COLUMNS."""
    import pyarrow as pa

    types = {"bigint": pa.int64(), "boolean": pa.bool_(), "string": pa.string()}
    return pa.schema([pa.field(c.name, types[c.sql_type], nullable=c.nullable) for c in COLUMNS])


def glue_columns() -> list[dict[str, str]]:
    """The Glue table's columns (name, type, comment), in the same order as the Parquet file."""
    return [{"name": c.name, "type": c.sql_type, "comment": c.comment} for c in COLUMNS]

"""The analysts' table without identities: each compacted day again, pseudonymized, in a location of its own.

With `analyst_access: pseudonymized` the ETL writes, beside the day's `telegram/context_date=D/telegram.parquet`,
`telegram_pseudonymized/context_date=D/telegram.parquet`: the same rows and columns (so every saved query runs on
either), with

- `user_id` replaced by a keyed hash (HMAC-SHA256 of the id, 63 bits: a positive bigint, the same person the
  same number on every day), and a private chat's `chat_id` (positive: it is the user's own id) by the same;
- `user_first_name`, `user_last_name` and `user_username` null;
- `text` and `caption` null when the stage drops text (`pseudonymized_text: drop`).

A separate file, not an Athena view: without Lake Formation a view is no security boundary (reading it needs
reading the table under it), while a location can be granted alone. The key is a Secrets Manager secret read when
the ETL runs; it never enters SQL, a log or Athena's query history (the Athena engine pseudonymizes in its publish
step, in Python). Both engines write it where the day's file is stored (lambdas/etl/compact.py `store_day`), from
the very file written for the full table.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from lambdas.common.layout import PARTITION_KEY
from lambdas.etl import schema
from lambdas.etl.day import OUTPUT_NAME

if TYPE_CHECKING:
    import pyarrow as pa

# The pseudonymized table's location in the enriched bucket: outside `telegram/`, so it can be granted alone.
PSEUDONYMIZED_PREFIX = "telegram_pseudonymized/"
# The columns that name a person: dropped (null) in the pseudonymized table.
NAME_COLUMNS = ("user_first_name", "user_last_name", "user_username")
# What people wrote: dropped too when the stage drops text.
TEXT_COLUMNS = ("text", "caption")
# A key shorter than this is refused: HMAC's security is the key's.
MIN_KEY_BYTES = 32
# Domain separation: the key hashes Telegram ids (users, and private chats, whose id is their user's) only.
_ID_LABEL = b"telegram-id:"


def pseudonymized_key(day: date) -> str:
    """The day's pseudonymized file, beside the full table's (`telegram/context_date=D/telegram.parquet`)."""
    return f"{PSEUDONYMIZED_PREFIX}{PARTITION_KEY}={day.isoformat()}/{OUTPUT_NAME}"


def pseudonym(key: bytes, telegram_id: int) -> int:
    """The keyed hash standing for a Telegram user (or private chat) id: the first 63 bits of HMAC-SHA256, so a
    positive bigint like the ids it replaces. Without the key, nobody can tell whose it is or compute it."""
    digest = hmac.new(key, _ID_LABEL + str(telegram_id).encode("ascii"), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass(frozen=True)
class Pseudonymizer:
    """The stage's key and whether text is kept: what turns the full table's rows into the analysts'."""

    key: bytes = field(repr=False)  # never in a log line or a traceback
    keep_text: bool = True

    def __post_init__(self) -> None:
        if len(self.key) < MIN_KEY_BYTES:
            raise ValueError(f"the pseudonym key has {len(self.key)} bytes; at least {MIN_KEY_BYTES} are needed")

    def pseudonym(self, telegram_id: int) -> int:
        return pseudonym(self.key, telegram_id)

    def chat_pseudonym(self, chat_id: int) -> int:
        """A chat id as the pseudonymized table holds it: a private chat's (positive: its user's id) hashed,
        a group's or channel's (negative) as it is."""
        return self.pseudonym(chat_id) if chat_id > 0 else chat_id

    def batch(self, batch: "pa.RecordBatch") -> "pa.RecordBatch":
        """One batch of the enriched table's rows, pseudonymized; every other column unchanged."""
        import pyarrow as pa

        columns = {name: batch.column(name) for name in batch.schema.names}
        columns["user_id"] = self._mapped(columns["user_id"], self.pseudonym)
        columns["chat_id"] = self._mapped(columns["chat_id"], self.chat_pseudonym)
        dropped = NAME_COLUMNS + (() if self.keep_text else TEXT_COLUMNS)
        for name in dropped:
            columns[name] = pa.nulls(batch.num_rows, batch.schema.field(name).type)
        return pa.RecordBatch.from_arrays(list(columns.values()), schema=batch.schema)

    @staticmethod
    def _mapped(ids: "pa.Array", function: Any) -> "pa.Array":
        """`function` of every distinct id (a day has few senders), nulls kept."""
        import pyarrow as pa
        import pyarrow.compute as pc

        distinct = pc.unique(ids).drop_null()
        mapped = pa.array([function(value) for value in distinct.to_pylist()], ids.type)
        return pc.take(mapped, pc.index_in(ids, value_set=distinct))

    def batches(self, source: Path, batch_rows: int) -> Iterator["pa.RecordBatch"]:
        """The Parquet file `source` (the day's full table) pseudonymized, `batch_rows` rows at a time."""
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(source).iter_batches(batch_size=batch_rows):
            yield self.batch(batch)


def glue_columns(keep_text: bool) -> list[dict[str, str]]:
    """The pseudonymized table's Glue columns: the enriched table's (lambdas/etl/schema.py), each one this module
    changes saying how."""
    changed = {
        "user_id": "the sender's pseudonym: a keyed hash (HMAC-SHA256, 63 bits) of their user id, the same on every day",
        "chat_id": "chat the message was sent in; a private chat's (its user's id) as that user's pseudonym",
        **{name: "always null: names are dropped" for name in NAME_COLUMNS},
        **({} if keep_text else {name: "always null: the stage drops text" for name in TEXT_COLUMNS}),
    }
    return [{**column, "comment": changed.get(column["name"], column["comment"])} for column in schema.glue_columns()]


def read_key(secrets: Any, secret_arn: str) -> bytes:
    """The stage's pseudonym key: the secret's string, as bytes."""
    return secrets.get_secret_value(SecretId=secret_arn)["SecretString"].encode("utf-8")

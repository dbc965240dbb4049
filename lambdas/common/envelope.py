"""One update in a batch of the raw zone: the line the ingest hands the raw delivery stream (Firehose).

    {"context_date":"2026-12-07","received_at":1796684399900,"update":<the update, as Telegram sent it>}

- `context_date`: the update's arrival day in the stage's zone. Firehose partitions by it, so the line lands in
  that day's folder however late its batch is written (one that arrived at 23:59:59.9 stays on its day).
- `received_at`: the arrival instant, milliseconds since the epoch (API Gateway's). Of several copies of one
  update (Telegram redelivers after a lost answer, Firehose delivers at least once), the first arrival wins.
- `update`: last, and the request body byte for byte: `update_bytes` gives back exactly what Telegram sent.
- `imported` (only on lines `python -m tools import-history` wrote, `true`): the update was rebuilt from a
  Telegram Desktop export, not received. Every reader ignores fields it does not know, this one included.

A line is one line: the ingest refuses a body with a line break (Telegram sends compact JSON), so no update
can split a batch's lines.
"""

from __future__ import annotations

from datetime import date

CONTEXT_DATE, RECEIVED_AT, UPDATE, IMPORTED = "context_date", "received_at", "update", "imported"
_UPDATE_FIELD = b',"update":'


def envelope_line(day: date, received_at_ms: int, body: bytes, *, imported: bool = False) -> bytes:
    """The batch line of one update (with its line break): the body is embedded as sent, not re-encoded."""
    marker = b',"%s":true' % IMPORTED.encode() if imported else b""
    return b'{"context_date":"%s","received_at":%d%s,"update":%s}\n' % (
        day.isoformat().encode(), received_at_ms, marker, body
    )


def update_bytes(line: bytes) -> bytes:
    """The update's bytes exactly as Telegram sent them, from a line `envelope_line` wrote."""
    start = line.index(_UPDATE_FIELD) + len(_UPDATE_FIELD)
    return line.rstrip(b"\r\n").removesuffix(b"}")[start:]

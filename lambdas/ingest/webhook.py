"""The ingest Lambda's rules, free of AWS: its configuration, who may call it, and what counts as an update.

`handler.py` wires these to Secrets Manager, Firehose, S3, logs and metrics; everything here is plain data in
and plain data out, so each rule of the webhook contract is testable on its own. The requests are API Gateway
HTTP API events, payload format 2.0.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Mapping

from lambdas.common.layout import is_time_zone
from lambdas.common.reading import BOM, UNIX_SECONDS_MAX, refuse_json_constant, unix_seconds
from lambdas.common.updates import carries_message, is_known_type, is_message, update_payload, update_type
from lambdas.ingest.chats import Chat, ChatLink, chat_of, migration_of, valid_text
from lambdas.ingest.errors import ConfigurationError

if TYPE_CHECKING:
    from lambdas.ingest.secret import WebhookSecret

# The webhook's contract, shared with the stack that serves it and the local stack that imitates it.
SECRET_TOKEN_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_PATH = "/webhook"  # the HTTP API's one route (POST)
_CHAT_ID = re.compile(r"-?\d+")
# Telegram's update ids are non-negative bigints; the ETL reads no other (Parquet int64, Athena bigint).
UPDATE_ID_MAX = 2**63 - 1
# Firehose takes records of at most 1,000 KiB (1,024,000 bytes): a body this size leaves room for its envelope.
# Telegram's updates are a few kilobytes; a larger body must be a 400, not a 5xx Telegram would retry for a day.
MAX_BODY_BYTES = 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MILLISECOND = timedelta(milliseconds=1)


class Rejection(Exception):
    """A request that must not be stored: its HTTP status and a short reason, safe to return and to log."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class IngestSettings:
    """The function's environment, parsed once per container."""

    raw_bucket: str  # the ingest's own state (chat links, chats seen); Firehose writes the updates there
    delivery_stream: str  # the Firehose stream every accepted update is handed to
    webhook_secret_arn: str
    allowed_chat_ids: frozenset[int]
    timezone: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> IngestSettings:
        return cls(
            raw_bucket=_required(environ, "RAW_BUCKET"),
            delivery_stream=_required(environ, "DELIVERY_STREAM"),
            webhook_secret_arn=_required(environ, "WEBHOOK_SECRET_ARN"),
            allowed_chat_ids=parse_chat_ids(_required(environ, "ALLOWED_CHAT_IDS")),
            timezone=_time_zone(_required(environ, "TIMEZONE")),
        )


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set")
    return value


def parse_chat_ids(text: str) -> frozenset[int]:
    """`ALLOWED_CHAT_IDS`: comma-separated integers (group ids are negative); anything else is a deployment bug."""
    items = [item.strip() for item in text.split(",")]
    invalid = [item for item in items if not _CHAT_ID.fullmatch(item)]
    if invalid:
        raise ConfigurationError(
            f"ALLOWED_CHAT_IDS must be comma-separated integer chat ids, got {text!r} (bad items: {invalid!r})"
        )
    return frozenset(int(item) for item in items)


def _time_zone(name: str) -> str:
    if not is_time_zone(name):
        raise ConfigurationError(f"TIMEZONE must be an IANA time zone, got {name!r}")
    return name


def header_values(event: Mapping[str, Any], name: str) -> list[str]:
    """What the request carries for a header: nothing, or its one value.

    A payload 2.0 event's `headers` (absent when there are none) has lower-cased names, and a header sent more
    than once arrives as one string, its values joined by commas: that string is what was presented, so a secret
    token sent twice is never the secret (no token holds a comma: Telegram's alphabet is A-Z a-z 0-9 _ -).
    """
    value = (event.get("headers") or {}).get(name.lower())
    return [] if value is None else [value]


def authenticate(event: Mapping[str, Any], secret: WebhookSecret) -> None:
    """Reject (401) a request unless every value of its secret-token header is the webhook secret."""
    presented = header_values(event, SECRET_TOKEN_HEADER)
    if not presented:
        raise Rejection(401, "missing secret token")
    if not secret.matches(presented):
        raise Rejection(401, "wrong secret token")


@dataclass(frozen=True)
class Update:
    """A valid update: its exact bytes (what is stored) and the facts the ingest acts on (never its content):
    its chat, found generically for any type, and the group upgrade it announces, if any."""

    update_id: int
    type: str
    chat: Chat | None
    migration: ChatLink | None
    body: bytes

    @property
    def chat_id(self) -> int | None:
        return None if self.chat is None else self.chat.id

    @property
    def is_known_type(self) -> bool:
        return is_known_type(self.type)


def arrival_instant(event: Mapping[str, Any]) -> datetime | None:
    """When API Gateway received the request (`requestContext.timeEpoch`, integer ms), exact; None if absent."""
    epoch_ms = (event.get("requestContext") or {}).get("timeEpoch")
    if isinstance(epoch_ms, int) and not isinstance(epoch_ms, bool):
        return EPOCH + epoch_ms * _MILLISECOND
    return None


def epoch_milliseconds(instant: datetime) -> int:
    """An aware instant as whole Unix milliseconds, as API Gateway's `timeEpoch` and the envelope's `received_at`
    count it: exact, no float rounding (23:59:59.9 must stay on its day)."""
    return (instant - EPOCH) // _MILLISECOND


def request_body(event: Mapping[str, Any]) -> bytes:
    """The body's bytes as Telegram sent them: API Gateway hands over text as str and binary as base64."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except ValueError as error:
            raise Rejection(400, "body is not valid base64") from error
    try:
        return body.encode("utf-8")
    except UnicodeEncodeError as error:
        raise Rejection(400, "body is not valid UTF-8") from error


def _finite_double(token: str) -> float:
    value = float(token)
    if math.isinf(value):
        raise Rejection(400, "body has a number beyond a double's range")
    return value


def parse_update(body: bytes) -> Update:
    """Validate the body as a Bot API `Update`: a JSON object with an integer `update_id` (not a bool).

    What Telegram never sends, and what the lake's readers would read otherwise than as sent, is refused
    (lambdas/common/reading.py): a body too large for one Firehose record, a byte order mark, bytes that are not
    UTF-8, a line break (it would split the update's line in a batch), NaN/Infinity, a number beyond a double,
    a message date no query could read.
    """
    if len(body) > MAX_BODY_BYTES:
        raise Rejection(400, f"body is larger than {MAX_BODY_BYTES:,} bytes")
    if body.startswith(BOM):
        raise Rejection(400, "body starts with a byte order mark")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Rejection(400, "body is not valid UTF-8") from error
    if b"\n" in body or b"\r" in body:
        raise Rejection(400, "body has a line break")
    try:
        update = json.loads(text, parse_constant=refuse_json_constant, parse_float=_finite_double)
    except (ValueError, RecursionError) as error:
        raise Rejection(400, "body is not JSON") from error
    if not isinstance(update, dict):
        raise Rejection(400, "body is not a JSON object")
    update_id = update.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise Rejection(400, "update_id is missing or not an integer")
    if not 0 <= update_id <= UPDATE_ID_MAX:
        raise Rejection(400, "update_id is outside 0 .. 2^63-1")
    _check_message_dates(update)
    return Update(
        update_id=update_id,
        type=valid_text(update_type(update)),  # a field's name: logged and recorded, so valid UTF-8
        chat=chat_of(update),
        migration=migration_of(update),
        body=body,
    )


def _check_message_dates(update: Mapping[str, Any]) -> None:
    """A message's `date` and `edit_date`, when integers, within what every reader keeps (0 .. UNIX_SECONDS_MAX):
    Athena's `from_unixtime` fails a whole query on a later one. (Any other value is null to every reader.)"""
    payload = update_payload(update)
    if not (carries_message(update) and is_message(payload)):
        return
    for field in ("date", "edit_date"):
        value = payload.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and unix_seconds(value) is None:
            raise Rejection(400, f"message {field} is outside 0 .. {UNIX_SECONDS_MAX} (Unix seconds)")


def read_update(event: Mapping[str, Any]) -> Update:
    return parse_update(request_body(event))

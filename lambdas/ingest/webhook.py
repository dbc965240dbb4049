"""The ingest Lambda's rules, free of AWS: its configuration, who may call it, what counts as an update,
and where an update is stored.

`handler.py` wires these to Secrets Manager, S3, logs and metrics; everything here is plain data in and
plain data out, so each rule of the webhook contract is testable on its own.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from lambdas.common.layout import is_time_zone, local_day, raw_key
from lambdas.common.updates import update_chat_id, update_type

# The webhook's contract, shared with the stack that serves it and the local stack that imitates it.
SECRET_TOKEN_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_PATH = "/webhook"  # the REST API's one route (POST)
_CHAT_ID = re.compile(r"-?\d+")


class ConfigurationError(ValueError):
    """The function's environment is unusable; the message names the variable and the bad value."""


class Rejection(Exception):
    """A request that must not be stored: its HTTP status and a short reason, safe to return and to log."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class IngestSettings:
    """The function's environment, parsed once per container."""

    raw_bucket: str
    webhook_secret_arn: str
    allowed_chat_ids: frozenset[int]
    timezone: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> IngestSettings:
        return cls(
            raw_bucket=_required(environ, "RAW_BUCKET"),
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
    """Every value the request carries for a header, its name matched case-insensitively.

    An API Gateway v1 proxy event has `headers` (the last value per name) and `multiValueHeaders` (all
    values); either may be None.
    """
    wanted = name.lower()
    values = [value for key, value in (event.get("headers") or {}).items() if key.lower() == wanted]
    for key, many in (event.get("multiValueHeaders") or {}).items():
        if key.lower() == wanted:
            values.extend(many or ())
    return values


def authenticate(event: Mapping[str, Any], secret: str) -> None:
    """Reject (401) a request unless every value of its secret-token header is the webhook secret.

    Compared as bytes in constant time: a timing difference must not reveal a prefix of the secret, and a
    non-ASCII header must be a mismatch rather than a `TypeError`.
    """
    presented = header_values(event, SECRET_TOKEN_HEADER)
    if not presented:
        raise Rejection(401, "missing secret token")
    expected = secret.encode()
    if not all(hmac.compare_digest(value.encode(), expected) for value in presented):
        raise Rejection(401, "wrong secret token")


@dataclass(frozen=True)
class Update:
    """A valid update: its exact bytes (what is stored) and the facts that may be logged (never its content)."""

    update_id: int
    type: str
    chat_id: int | None
    body: bytes


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


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def parse_update(body: bytes) -> Update:
    """Validate the body as a Bot API `Update`: a JSON object with an integer `update_id` (not a bool)."""
    try:
        update = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise Rejection(400, "body is not JSON") from error
    if not isinstance(update, dict):
        raise Rejection(400, "body is not a JSON object")
    update_id = update.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise Rejection(400, "update_id is missing or not an integer")
    return Update(update_id=update_id, type=update_type(update), chat_id=update_chat_id(update), body=body)


def read_update(event: Mapping[str, Any]) -> Update:
    return parse_update(request_body(event))


def storage_key(update: Update, settings: IngestSettings, now: datetime) -> str | None:
    """Where the update belongs in the raw bucket (its arrival day in the stage's zone), or None when its
    chat is not allowlisted (including chat-less updates such as inline queries and polls)."""
    if update.chat_id not in settings.allowed_chat_ids:
        return None
    return raw_key(local_day(now, settings.timezone), update.update_id)

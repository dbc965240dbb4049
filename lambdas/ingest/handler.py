"""Ingest Lambda: Telegram webhook (API Gateway HTTP API, payload 2.0) -> the raw delivery stream (Firehose).

Each accepted update is one PutRecord of its envelope line (lambdas/common/envelope.py: the arrival day and
instant, then the body byte for byte); Firehose writes the lines in gzip batches into the raw bucket, in the
folder of each line's day, about once a minute. No conditional write: a redelivery is one more line, and every
reader keeps the first arrival.

A thin adapter around `webhook.py`, `secret.py` and `chats.py`: it caches what a warm container reuses
(settings, clients, the secret, the allowlist with its learned group upgrades, its chats-seen counts),
makes the AWS calls, and leaves one JSON log line and one EMF count of the outcome per request (plus a line
for a group upgrade it followed or a chats-seen record it could not write). Status codes are Telegram's
contract: 2xx means "delivered, do not retry", so a 200 is only ever returned for an update that Firehose
accepted or that is deliberately not kept; a failed or timed-out PutRecord answers 5xx and Telegram
redelivers. Every AWS call is bounded (budget.py), so a hung one ends here, in the `failed` path, too.
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from datetime import date, datetime, timezone
from typing import Any, Callable

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.handlers import add_expect_header

from lambdas.common.envelope import envelope_line
from lambdas.common.layout import CHAT_LINKS_PREFIX, local_day
from lambdas.ingest import budget
from lambdas.ingest import metrics as metric_names
from lambdas.ingest.chats import Allowlist, ChatLink, ChatsSeen, link_record, parse_link_key
from lambdas.ingest.secret import WebhookSecret
from lambdas.ingest.errors import ConfigurationError
from lambdas.ingest.webhook import (
    IngestSettings, Rejection, Update, arrival_instant, authenticate, epoch_milliseconds, read_update,
)

# Defaults in code so the stack needs no Powertools variables; set in the environment, those still win.
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", metric_names.SERVICE)
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", metric_names.DEFAULT_NAMESPACE)

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

OUTCOME_METRICS = {
    "stored": metric_names.STORED,
    "skipped": metric_names.SKIPPED,
    "rejected": metric_names.REJECTED,
    "failed": metric_names.FAILED,
}
AWS_ERRORS = (BotoCoreError, ClientError)
CLIENT_CONFIG = Config(
    connect_timeout=budget.CONNECT_TIMEOUT_SECONDS,
    read_timeout=budget.READ_TIMEOUT_SECONDS,
    retries={"mode": budget.RETRY_MODE, "total_max_attempts": budget.TOTAL_MAX_ATTEMPTS},
)
# The clock of the secret's re-read limit (a seam for tests).
clock: Callable[[], float] = time.monotonic


class TooManyChatLinks(Exception):
    """More links than one listing page holds: the time budget counts one page, so this fails loudly."""


@functools.cache
def settings() -> IngestSettings:
    """Read once per container: a misconfigured function fails its first invocation with a clear message."""
    return IngestSettings.from_environ(os.environ)


@functools.cache
def container_id() -> str:
    """A random id made at cold start: each container writes its own chats-seen records."""
    return uuid.uuid4().hex


@functools.cache
def s3_client() -> Any:
    """S3 with the budget's timeouts and retries.

    botocore makes every S3 upload wait up to 1 s for `100 Continue` before it sends the body, a wait the
    read timeout does not bound; the bodies here are a few kilobytes, so they are sent at once instead.
    """
    client = boto3.client("s3", config=CLIENT_CONFIG)
    client.meta.events.unregister("before-call.s3", add_expect_header)
    return client


@functools.cache
def firehose_client() -> Any:
    """Firehose with the budget's timeouts and retries (the endpoint, as every client's, from the environment:
    `AWS_ENDPOINT_URL_FIREHOSE` reaches the local emulation, tools/local/firehose.py)."""
    return boto3.client("firehose", config=CLIENT_CONFIG)


@functools.cache
def secrets_client() -> Any:
    return boto3.client("secretsmanager", config=CLIENT_CONFIG)


@functools.cache
def webhook_secret() -> WebhookSecret:
    """The secret token Telegram presents, stored as the plain string: read at the first request, and again
    (at most every budget.SECRET_REFRESH_SECONDS) when a token does not match, as after a rotation."""
    arn = settings().webhook_secret_arn
    return WebhookSecret(lambda: secrets_client().get_secret_value(SecretId=arn).get("SecretString"), clock=clock)


@functools.cache
def allowlist() -> Allowlist:
    return Allowlist(settings().allowed_chat_ids, read_chat_links)


@functools.cache
def chats_seen() -> ChatsSeen:
    return ChatsSeen(container_id())


def reset_container() -> None:
    """Forget everything a warm container caches, as a new container would (tests start each case cold)."""
    for cached in (
        settings, container_id, s3_client, firehose_client, secrets_client, webhook_secret, allowlist, chats_seen,
    ):
        cached.cache_clear()


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, now=arrival_time(event))


def arrival_time(event: dict[str, Any]) -> datetime:
    """When API Gateway received the request (`requestContext.timeEpoch`, ms); the clock if absent."""
    return arrival_instant(event) or datetime.now(timezone.utc)


def handle(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Answer one webhook request that arrived at `now` (an aware instant: it decides the update's day and is
    its envelope's `received_at`)."""
    started = time.perf_counter()
    config = settings()
    try:
        authenticate(event, webhook_secret())
        update = read_update(event)
    except Rejection as rejection:
        if rejection.status == 401:
            _count(metric_names.UNAUTHORIZED)
        return _answer(started, "rejected", rejection.status, rejection.reason, logger.warning)
    # Still a 5xx: Telegram redelivers once the secret is readable (ConfigurationError: it has no string).
    except (*AWS_ERRORS, ConfigurationError):
        return _answer(started, "failed", 500, "secret unavailable", logger.exception)

    chat = update.chat
    facts = {"update_id": update.update_id, "update_type": update.type, "chat_id": update.chat_id,
             "chat_type": None if chat is None else chat.type}
    if not update.is_known_type:
        _count(metric_names.UNKNOWN_UPDATE_TYPE)
    try:
        allowed = chat is not None and allowlist().allows(chat)
        link = update.migration if update.migration and allowlist().should_learn(update.migration) else None
    except (*AWS_ERRORS, TooManyChatLinks):
        return _answer(started, "failed", 500, "chat links unreadable", logger.exception, **facts)
    if link is not None:
        try:
            learn_link(link, update, now)
        except AWS_ERRORS:  # the upgraded group's next updates depend on it: Telegram redelivers this one
            return _answer(started, "failed", 500, "chat link not stored", logger.exception, **facts)
        allowed = True  # the notice comes from the allowed group or from the group it became

    day = local_day(now, config.timezone)
    if not allowed:
        if chat is not None and chat.is_group:
            _count(metric_names.SKIPPED_FROM_GROUP)
        outcome = "skipped"
    else:
        try:
            hand_over(config.delivery_stream, envelope_line(day, epoch_milliseconds(now), update.body))
        except AWS_ERRORS:
            return _answer(started, "failed", 500, "update not stored", logger.exception, **facts)
        outcome = "stored"
    record_chat(day, update, outcome, allowed, now)
    return _answer(started, outcome, 200, "", logger.info, **facts)


def hand_over(stream: str, line: bytes) -> None:
    """One update's line to the raw delivery stream; returns once Firehose has accepted it (it raises otherwise)."""
    firehose_client().put_record(DeliveryStreamName=stream, Record={"Data": line})


def read_chat_links() -> list[ChatLink]:
    """Every group upgrade the ingest followed: one ListObjectsV2 page of keys, no GET (both ids are in
    each key). A key that names no link is logged and ignored."""
    listing = s3_client().list_objects_v2(Bucket=settings().raw_bucket, Prefix=CHAT_LINKS_PREFIX)
    if listing.get("IsTruncated"):
        raise TooManyChatLinks(f"more than {listing.get('KeyCount')} keys under {CHAT_LINKS_PREFIX}")
    links = []
    for item in listing.get("Contents", []):
        link = parse_link_key(item["Key"])
        if link is None:
            logger.warning("not a chat link: ignored", extra={"key": item["Key"]})
        else:
            links.append(link)
    return links


def learn_link(link: ChatLink, update: Update, now: datetime) -> None:
    """Store that `link.new` continues the allowed group `link.old`, then allow it in this container."""
    s3_client().put_object(
        Bucket=settings().raw_bucket, Key=link.key, Body=link_record(link, update.update_id, now),
        ContentType="application/json",
    )
    allowlist().learn(link)
    _count(metric_names.CHAT_MIGRATED)
    logger.info("chat upgrade followed",
                extra={"old_chat_id": link.old, "new_chat_id": link.new, "update_id": update.update_id})


def record_chat(day: date, update: Update, outcome: str, allowed: bool, now: datetime) -> None:
    """Count the update in this container's record of its chat for the day (never content), and write the whole
    record when it is due (chats.ChatsSeen: at once for the chat's first update of the day or a change of its
    allowlisting, else at most once a minute).

    A failure is loud (an error line, ChatRecordFailed) but never fails the request: the update itself was
    handled, and the record stays due, so the chat's next update writes it again.
    """
    if update.chat is None:
        return
    seen = chats_seen()
    record = seen.observe(day, update.chat, update.type, outcome, allowed, now)
    if record is None:
        return
    try:
        s3_client().put_object(
            Bucket=settings().raw_bucket, Key=record.key, Body=record.to_json(), ContentType="application/json"
        )
    except AWS_ERRORS:
        _count(metric_names.CHAT_RECORD_FAILED)
        logger.exception("chat record not written", extra={"update_id": update.update_id, "key": record.key})
    else:
        seen.written(record, now)


def _count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def _answer(
    started: float, outcome: str, status: int, reason: str, log: Callable[..., None], **facts: Any
) -> dict[str, Any]:
    """Count the outcome, write the request's log line, and build the response (payload format 2.0).

    The reason is the whole body: a 200 stays empty because Telegram executes a JSON body naming a `method`.
    """
    _count(OUTCOME_METRICS[outcome])
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    log(
        "webhook request",
        extra={"outcome": outcome, "status": status, "reason": reason or None, "latency_ms": latency_ms, **facts},
    )
    return {"statusCode": status, "headers": {"Content-Type": "text/plain"}, "body": reason}

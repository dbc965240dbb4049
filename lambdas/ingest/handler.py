"""Ingest Lambda: Telegram webhook (API Gateway REST proxy) -> raw S3, one object per update, stored as received.

A thin adapter around `webhook.py`: it caches what a warm container reuses (settings, clients, the secret),
writes to S3, and leaves one JSON log line and one EMF count per request. Status codes are Telegram's
contract: 2xx means "delivered, do not retry", so a 200 is only ever returned for an update that is stored
or deliberately not kept; a failed write answers 5xx and Telegram redelivers.
"""

from __future__ import annotations

import functools
import os
import time
from datetime import datetime, timezone
from typing import Any, Callable

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.ingest.webhook import (
    ConfigurationError,
    IngestSettings,
    Rejection,
    authenticate,
    read_update,
    storage_key,
)

# Defaults in code so the stack needs no Powertools variables; set in the environment, those still win.
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "ingest")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "TelegramLake")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


@functools.cache
def settings() -> IngestSettings:
    """Read once per container: a misconfigured function fails its first invocation with a clear message."""
    return IngestSettings.from_environ(os.environ)


@functools.cache
def s3_client() -> Any:
    return boto3.client("s3")


@functools.cache
def webhook_secret() -> str:
    """The secret token Telegram presents, stored as the plain string; fetched once per container."""
    arn = settings().webhook_secret_arn
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=arn).get("SecretString")
    if not secret:
        raise ConfigurationError(f"secret {arn} has no string value: it must hold the plain webhook token")
    return secret


def reset_container() -> None:
    """Forget everything a warm container caches, as a new container would (tests start each case cold)."""
    for cached in (settings, s3_client, webhook_secret):
        cached.cache_clear()


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, now=arrival_time(event))


def arrival_time(event: dict[str, Any]) -> datetime:
    """When API Gateway received the request (`requestContext.requestTimeEpoch`, ms); the clock if absent."""
    epoch_ms = (event.get("requestContext") or {}).get("requestTimeEpoch")
    if isinstance(epoch_ms, int) and not isinstance(epoch_ms, bool):
        return datetime.fromtimestamp(epoch_ms / 1000, timezone.utc)
    return datetime.now(timezone.utc)


def handle(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Answer one webhook request that arrived at `now` (an aware instant: it decides the update's day)."""
    started = time.perf_counter()
    config = settings()
    try:
        secret = webhook_secret()
    except (BotoCoreError, ClientError):  # still a 5xx: Telegram redelivers once the secret is readable again
        return _answer(started, "failed", 500, "secret unavailable", logger.exception)
    try:
        authenticate(event, secret)
        update = read_update(event)
    except Rejection as rejection:
        return _answer(started, "rejected", rejection.status, rejection.reason, logger.warning)

    facts = {"update_id": update.update_id, "update_type": update.type, "chat_id": update.chat_id}
    key = storage_key(update, config, now)
    if key is None:
        return _answer(started, "skipped", 200, "", logger.info, **facts)
    try:
        created = put_once(config.raw_bucket, key, update.body)
    except (BotoCoreError, ClientError):
        return _answer(started, "failed", 500, "update not stored", logger.exception, **facts)
    return _answer(started, "stored" if created else "duplicate", 200, "", logger.info, **facts)


def put_once(bucket: str, key: str, body: bytes) -> bool:
    """Store the update unless its key exists; False for a redelivery.

    The conditional write lets the first delivery win, so a redelivered update adds neither an object
    nor a version to the versioned bucket.
    """
    try:
        s3_client().put_object(
            Bucket=bucket, Key=key, Body=body, ContentType="application/json", IfNoneMatch="*"
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "PreconditionFailed":
            return False
        raise
    return True


def _answer(
    started: float, outcome: str, status: int, reason: str, log: Callable[..., None], **facts: Any
) -> dict[str, Any]:
    """Count the outcome, write the request's single log line, and build the proxy response.

    The reason is the whole body: a 200 stays empty because Telegram executes a JSON body naming a `method`.
    """
    metrics.add_metric(name=outcome.capitalize(), unit=MetricUnit.Count, value=1)
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    log(
        "webhook request",
        extra={"outcome": outcome, "status": status, "reason": reason or None, "latency_ms": latency_ms, **facts},
    )
    return {"statusCode": status, "headers": {"Content-Type": "text/plain"}, "body": reason}

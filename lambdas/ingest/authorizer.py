"""The webhook's Lambda authorizer (API Gateway HTTP API, simple responses): does the request carry the secret?

API Gateway answers a request without the secret-token header 401 itself, invoking nothing (the header is the
authorizer's identity source), and caches this function's verdict per header value, so Telegram's deliveries
cost about one invocation per cache period. Every value of the header must be the webhook secret, compared in
constant time (secret.py, re-read at most every budget.SECRET_REFRESH_SECONDS after a mismatch, as after a
rotation). The ingest function compares the token again: this is the first of two checks, not the only one.

A denial is loud. A wrong token is logged (never the token) and counted as `Unauthorized`, the ingest's own
metric in the stage's namespace (the RejectedTokens alarm counts refusals from the access log instead, where
the cached denials, which never reach this function, appear too). A secret that cannot be read (Secrets
Manager failing, or a secret with no string) is denied too, logged with its cause and counted as `Failed`,
which raises UpdatesNotStored: Telegram redelivers the refused update, and is let in once the secret is
readable and the cached denial has expired.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.ingest import budget
from lambdas.ingest import metrics as metric_names
from lambdas.ingest.secret import WebhookSecret
from lambdas.ingest.webhook import SECRET_TOKEN_HEADER, ConfigurationError, header_values

# The ingest's service and namespace: its metric names mean the same here (lambdas/ingest/metrics.py).
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", metric_names.SERVICE)
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", metric_names.DEFAULT_NAMESPACE)

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

# One GetSecretValue at most per invocation, bounded like every call of the ingest (budget.py).
CLIENT_CONFIG = Config(
    connect_timeout=budget.CONNECT_TIMEOUT_SECONDS,
    read_timeout=budget.READ_TIMEOUT_SECONDS,
    retries={"mode": budget.RETRY_MODE, "total_max_attempts": budget.TOTAL_MAX_ATTEMPTS},
)
SECRET_UNAVAILABLE = (BotoCoreError, ClientError, ConfigurationError)


@functools.cache
def webhook_secret() -> WebhookSecret:
    """The secret as this container holds it: read at the first request, re-read after a mismatch."""
    arn = os.environ.get("WEBHOOK_SECRET_ARN", "").strip()
    if not arn:
        raise ConfigurationError("environment variable WEBHOOK_SECRET_ARN is not set")
    client = boto3.client("secretsmanager", config=CLIENT_CONFIG)
    return WebhookSecret(lambda: client.get_secret_value(SecretId=arn).get("SecretString"))


def handler(event: dict[str, Any], context: Any) -> dict[str, bool]:
    """A simple response: `{"isAuthorized": true}` lets the request through to the ingest function."""
    return {"isAuthorized": authorized(event)}


def authorized(event: dict[str, Any]) -> bool:
    """Whether every value of the request's secret-token header is the webhook secret."""
    presented = header_values(event, SECRET_TOKEN_HEADER)
    try:
        if webhook_secret().matches(presented):
            return True
    except SECRET_UNAVAILABLE:
        _deny(metric_names.FAILED, "secret unavailable", logger.exception)
        return False
    _deny(metric_names.UNAUTHORIZED, "wrong secret token", logger.warning)
    return False


def _deny(metric: str, reason: str, log: Callable[..., None]) -> None:
    """Log the denial (never the token) and publish its count at once (EMF, one document)."""
    log("webhook request denied", extra={"outcome": "denied", "reason": reason})
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()

"""The webhook's Lambda authorizer (lambdas/ingest/authorizer.py), against moto's Secrets Manager: who gets
through, and that every denial is logged and counted in the stage's namespace."""

from __future__ import annotations

import json
import sys

import boto3
import pytest
from moto import mock_aws

from lambdas.ingest import authorizer
from lambdas.ingest import metrics as metric_names

SECRET = "Sup3r_secret-token_with_32_chars_"
GUESS = "guess-1234"
NAMESPACE = "TelegramLake/dev"


def authorizer_event(*tokens: str) -> dict:
    """An HTTP API authorizer event (payload 2.0): header names lower-cased, repeated values comma-joined."""
    headers = {"content-type": "application/json"}
    if tokens:
        headers["x-telegram-bot-api-secret-token"] = ",".join(tokens)
    return {
        "version": "2.0", "type": "REQUEST", "routeKey": "POST /webhook", "rawPath": "/dev/webhook",
        "routeArn": "arn:aws:execute-api:us-east-1:123456789012:abc123/dev/POST/webhook",
        "identitySource": list(tokens), "headers": headers,
        "requestContext": {"http": {"method": "POST", "path": "/dev/webhook"}, "timeEpoch": 1779030000000},
    }


@pytest.fixture
def secrets(monkeypatch):
    """A cold container whose stage secret holds SECRET; the metrics it publishes go to the stage's namespace."""
    with mock_aws():
        client = boto3.client("secretsmanager")
        arn = client.create_secret(Name="webhook-secret", SecretString=SECRET)["ARN"]
        monkeypatch.setenv("WEBHOOK_SECRET_ARN", arn)
        monkeypatch.setattr(authorizer.metrics, "namespace", NAMESPACE)
        authorizer.webhook_secret.cache_clear()
        authorizer.metrics.clear_metrics()
        yield client, arn
        authorizer.webhook_secret.cache_clear()


@pytest.fixture
def output(capsys):
    """What the function printed, as JSON documents: its log lines, and its EMF metric documents (`_aws`)."""
    handler = authorizer.logger.registered_handler
    previous = handler.setStream(_CurrentStdout())

    def read() -> tuple[list[dict], list[dict]]:
        documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
        return [d for d in documents if "_aws" not in d], [d for d in documents if "_aws" in d]

    yield read
    handler.setStream(previous)


class _CurrentStdout:
    """Writes to whatever `sys.stdout` is now: pytest swaps it between phases, the logger binds it once."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def counted(documents: list[dict]) -> dict[tuple[str, str, str], float]:
    """(namespace, service, metric name) -> total, over the EMF documents."""
    totals: dict[tuple[str, str, str], float] = {}
    for document in documents:
        for definition in document["_aws"]["CloudWatchMetrics"]:
            assert definition["Dimensions"] == [["service"]]
            for metric in definition["Metrics"]:
                key = (definition["Namespace"], document["service"], metric["Name"])
                totals[key] = totals.get(key, 0) + sum(document[metric["Name"]])
    return totals


def test_the_secret_lets_the_request_through_silently(secrets, output):
    assert authorizer.handler(authorizer_event(SECRET), None) == {"isAuthorized": True}

    logs, emf = output()
    assert (logs, emf) == ([], [])


@pytest.mark.parametrize(
    "tokens",
    [(GUESS,), (SECRET[:-1],), (SECRET + "x",), (SECRET, GUESS), (SECRET, SECRET), ("",)],
    ids=["wrong", "prefix", "longer", "second-value-wrong", "two-values", "empty"],
)
def test_any_other_token_is_denied_logged_without_the_token_and_counted_as_unauthorized(secrets, output, tokens):
    """Two header values reach the function comma-joined: never the secret, whatever they are."""
    assert authorizer.handler(authorizer_event(*tokens), None) == {"isAuthorized": False}

    logs, emf = output()
    [line] = logs
    assert (line["level"], line["message"], line["reason"]) == ("WARNING", "webhook request denied", "wrong secret token")
    assert SECRET[:-1] not in json.dumps(logs) and GUESS not in json.dumps(logs)
    assert counted(emf) == {(NAMESPACE, metric_names.SERVICE, metric_names.UNAUTHORIZED): 1}


def test_a_request_without_the_header_is_denied_if_it_ever_arrives(secrets, output):
    """API Gateway answers it 401 without invoking the authorizer; the function denies it all the same."""
    assert authorizer.handler(authorizer_event(), None) == {"isAuthorized": False}
    assert counted(output()[1]) == {(NAMESPACE, metric_names.SERVICE, metric_names.UNAUTHORIZED): 1}


def test_an_unreadable_secret_denies_logs_the_cause_and_counts_a_failure(secrets, output):
    """Failed raises UpdatesNotStored: Telegram redelivers, the operator learns why from the log line."""
    client, arn = secrets
    client.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)

    assert authorizer.handler(authorizer_event(SECRET), None) == {"isAuthorized": False}

    logs, emf = output()
    [line] = logs
    assert (line["level"], line["reason"]) == ("ERROR", "secret unavailable")
    assert "ResourceNotFoundException" in line["exception"]
    assert counted(emf) == {(NAMESPACE, metric_names.SERVICE, metric_names.FAILED): 1}


def test_a_secret_without_a_string_is_unavailable_too(secrets, output):
    client, arn = secrets
    client.put_secret_value(SecretId=arn, SecretBinary=b"\x00")

    assert authorizer.handler(authorizer_event(SECRET), None) == {"isAuthorized": False}
    assert counted(output()[1]) == {(NAMESPACE, metric_names.SERVICE, metric_names.FAILED): 1}


def test_a_missing_secret_arn_is_a_logged_failure_naming_the_variable(secrets, output, monkeypatch):
    monkeypatch.delenv("WEBHOOK_SECRET_ARN")

    assert authorizer.handler(authorizer_event(SECRET), None) == {"isAuthorized": False}

    logs, emf = output()
    assert "WEBHOOK_SECRET_ARN is not set" in logs[0]["exception"]
    assert counted(emf) == {(NAMESPACE, metric_names.SERVICE, metric_names.FAILED): 1}


def test_the_secret_is_read_once_per_container_while_tokens_match(secrets, output, monkeypatch):
    reads = []
    real_client = boto3.client

    def counting_client(*args, **kwargs):
        client = real_client(*args, **kwargs)
        client.meta.events.register("before-call.secrets-manager.GetSecretValue", lambda **_: reads.append(1))
        return client

    monkeypatch.setattr(authorizer.boto3, "client", counting_client)
    for _ in range(3):
        assert authorizer.handler(authorizer_event(SECRET), None) == {"isAuthorized": True}

    assert len(reads) == 1

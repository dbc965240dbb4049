"""The ingest handler's contract (issue 2, "Ingest handler behaviour"), one rule per test, against moto."""

from __future__ import annotations

import base64
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone

import boto3
import pytest
from moto import mock_aws

from lambdas.common.layout import raw_key
from lambdas.common.updates import UPDATE_TYPES
from lambdas.ingest import handler as ingest
from lambdas.ingest.webhook import SECRET_TOKEN_HEADER, ConfigurationError, IngestSettings, parse_chat_ids

BUCKET = "raw-bucket"
SECRET = "Sup3r_secret-token_with_32_chars_"
ALLOWED_CHAT = -1001234567890
OTHER_CHAT = 42
ZONE = "America/Sao_Paulo"
NOW = datetime(2026, 5, 17, 15, 0, tzinfo=timezone.utc)
CHAT_TEXT = "private words that must never reach a log"


# --- Telegram updates of every Bot API 10.x type -------------------------------------------------------

def _message(chat_id: int) -> dict:
    return {"message_id": 7, "date": 1779030000, "chat": {"id": chat_id, "type": "supergroup"}, "text": CHAT_TEXT}


USER = {"id": 99, "is_bot": False, "first_name": "Ana"}
MEMBER_UPDATE = {
    "from": USER, "date": 1779030000,
    "old_chat_member": {"status": "left", "user": USER}, "new_chat_member": {"status": "member", "user": USER},
}
# Each type's payload for a chat id; types whose payload has no chat ignore it.
PAYLOADS = {
    "message": _message,
    "edited_message": lambda chat: {**_message(chat), "edit_date": 1779030060},
    "channel_post": _message,
    "edited_channel_post": lambda chat: {**_message(chat), "edit_date": 1779030060},
    "business_connection": lambda chat: {"id": "bc1", "user": USER, "user_chat_id": 99, "date": 1779030000,
                                         "is_enabled": True},
    "business_message": lambda chat: {**_message(chat), "business_connection_id": "bc1"},
    "edited_business_message": lambda chat: {**_message(chat), "business_connection_id": "bc1",
                                             "edit_date": 1779030060},
    "deleted_business_messages": lambda chat: {"business_connection_id": "bc1",
                                               "chat": {"id": chat, "type": "private"}, "message_ids": [7]},
    "message_reaction": lambda chat: {"chat": {"id": chat, "type": "group"}, "message_id": 7, "date": 1779030000,
                                      "old_reaction": [], "new_reaction": [{"type": "emoji", "emoji": "👍"}]},
    "message_reaction_count": lambda chat: {"chat": {"id": chat, "type": "channel"}, "message_id": 7,
                                            "date": 1779030000, "reactions": []},
    "inline_query": lambda chat: {"id": "iq1", "from": USER, "query": CHAT_TEXT, "offset": ""},
    "chosen_inline_result": lambda chat: {"result_id": "r1", "from": USER, "query": CHAT_TEXT},
    "callback_query": lambda chat: {"id": "cq1", "from": USER, "chat_instance": "ci", "message": _message(chat),
                                    "data": "vote:1"},
    "shipping_query": lambda chat: {"id": "sq1", "from": USER, "invoice_payload": "p", "shipping_address": {}},
    "pre_checkout_query": lambda chat: {"id": "pq1", "from": USER, "currency": "BRL", "total_amount": 100,
                                        "invoice_payload": "p"},
    "purchased_paid_media": lambda chat: {"from": USER, "paid_media_payload": "p"},
    "poll": lambda chat: {"id": "p1", "question": CHAT_TEXT, "options": [], "total_voter_count": 0},
    "poll_answer": lambda chat: {"poll_id": "p1", "user": USER, "option_ids": [0]},
    "my_chat_member": lambda chat: {"chat": {"id": chat, "type": "group"}, **MEMBER_UPDATE},
    "chat_member": lambda chat: {"chat": {"id": chat, "type": "group"}, **MEMBER_UPDATE},
    "chat_join_request": lambda chat: {"chat": {"id": chat, "type": "supergroup"}, "from": USER,
                                       "user_chat_id": 99, "date": 1779030000},
    "chat_boost": lambda chat: {"chat": {"id": chat, "type": "channel"},
                                "boost": {"boost_id": "b1", "add_date": 1, "expiration_date": 2, "source": {}}},
    "removed_chat_boost": lambda chat: {"chat": {"id": chat, "type": "channel"}, "boost_id": "b1",
                                        "remove_date": 1, "source": {}},
}
CHATLESS_TYPES = {"business_connection", "inline_query", "chosen_inline_result", "shipping_query",
                  "pre_checkout_query", "purchased_paid_media", "poll", "poll_answer"}


def update_body(kind: str = "message", chat_id: int = ALLOWED_CHAT, update_id: int = 1001) -> bytes:
    return json.dumps({"update_id": update_id, kind: PAYLOADS[kind](chat_id)}, ensure_ascii=False).encode()


TELEGRAM_HEADERS = {SECRET_TOKEN_HEADER: SECRET, "Content-Type": "application/json"}


def webhook_event(body: bytes | str | None, *, headers: dict | None = TELEGRAM_HEADERS,
                  multi_headers: dict | None = None, base64_encoded: bool = False) -> dict:
    """An API Gateway REST proxy (v1) event as the webhook route receives it."""
    if isinstance(body, bytes):
        body = base64.b64encode(body).decode() if base64_encoded else body.decode()
    return {
        "resource": "/webhook", "path": "/webhook", "httpMethod": "POST",
        "headers": headers, "multiValueHeaders": multi_headers, "queryStringParameters": None,
        "requestContext": {"requestId": "req-1", "stage": "prod"},
        "body": body, "isBase64Encoded": base64_encoded,
    }


# --- fixtures --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def aws():
    """One moto world per module (cheap tests); `lake` empties the bucket between tests."""
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        secrets = boto3.client("secretsmanager")
        arn = secrets.create_secret(Name="webhook-secret", SecretString=SECRET)["ARN"]
        yield s3, secrets, arn


@dataclass
class Lake:
    s3: object
    secrets: object
    secret_arn: str

    def versions(self) -> list[dict]:
        return self.s3.list_object_versions(Bucket=BUCKET).get("Versions", [])

    def keys(self) -> list[str]:
        return [version["Key"] for version in self.versions()]

    def read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


@pytest.fixture
def lake(aws, monkeypatch):
    """A freshly started container with the stage's environment and an empty raw bucket."""
    s3, secrets, arn = aws
    for name, value in {"RAW_BUCKET": BUCKET, "WEBHOOK_SECRET_ARN": arn,
                        "ALLOWED_CHAT_IDS": f"{ALLOWED_CHAT}, 555", "TIMEZONE": ZONE}.items():
        monkeypatch.setenv(name, value)
    ingest.reset_container()
    ingest.metrics.clear_metrics()
    state = Lake(s3, secrets, arn)
    yield state
    for version in state.versions():
        s3.delete_object(Bucket=BUCKET, Key=version["Key"], VersionId=version["VersionId"])
    secrets.put_secret_value(SecretId=arn, SecretString=SECRET)
    ingest.reset_container()


@dataclass
class Output:
    """What the function wrote to stdout: Powertools log lines and EMF metric documents."""
    logs: list[dict] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)
    raw: str = ""

    def counts(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for document in self.metrics:
            for definition in document["_aws"]["CloudWatchMetrics"]:
                for metric in definition["Metrics"]:
                    totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(document[metric["Name"]])
        return totals


class _CurrentStdout:
    """Writes to whatever `sys.stdout` is now: pytest swaps it between phases, the logger binds it once."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def stdout(capsys):
    """Read what the function printed: its log lines (Powertools Logger) and EMF documents (Metrics)."""
    handler = ingest.logger.registered_handler
    previous = handler.setStream(_CurrentStdout())

    def read() -> Output:
        raw = capsys.readouterr().out
        documents = [json.loads(line) for line in raw.splitlines() if line.strip()]
        return Output(logs=[d for d in documents if "_aws" not in d],
                      metrics=[d for d in documents if "_aws" in d], raw=raw)

    yield read
    handler.setStream(previous)


def invoke(event: dict) -> dict:
    """Through the Lambda entry point (real clock, metrics flushed to stdout)."""
    return ingest.handler(event, None)


def deliver(event: dict) -> dict:
    """Arriving at the frozen instant NOW, so the expected day is known."""
    return ingest.handle(event, now=NOW)


def assert_ok_and_empty(response: dict) -> None:
    """A 200 must carry no JSON body: Telegram would execute one that names a `method`."""
    assert response["statusCode"] == 200
    assert response["body"] == ""


# --- configuration ----------------------------------------------------------------------------------------

def test_chat_allowlist_parses_negative_ids_and_spaces():
    assert parse_chat_ids("-1001234567890, 42 ,7") == {-1001234567890, 42, 7}


@pytest.mark.parametrize("variable, value, message", [
    ("ALLOWED_CHAT_IDS", "1,two", "ALLOWED_CHAT_IDS must be comma-separated integer chat ids"),
    ("ALLOWED_CHAT_IDS", "1,,2", "ALLOWED_CHAT_IDS must be comma-separated integer chat ids"),
    ("ALLOWED_CHAT_IDS", "1.5", "ALLOWED_CHAT_IDS must be comma-separated integer chat ids"),
    ("ALLOWED_CHAT_IDS", " ", "ALLOWED_CHAT_IDS is not set"),
    ("TIMEZONE", "Mars/Olympus_Mons", "TIMEZONE must be an IANA time zone"),
    ("RAW_BUCKET", "", "RAW_BUCKET is not set"),
])
def test_invalid_environment_fails_the_cold_start_loudly(lake, monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=message):
        deliver(webhook_event(update_body()))
    assert lake.keys() == []


def test_missing_environment_variable_is_named():
    with pytest.raises(ConfigurationError, match="WEBHOOK_SECRET_ARN is not set"):
        IngestSettings.from_environ({"RAW_BUCKET": "b", "ALLOWED_CHAT_IDS": "1", "TIMEZONE": ZONE})


# --- authentication ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("headers, multi_headers", [
    ({}, None),
    (None, None),
    ({SECRET_TOKEN_HEADER: "wrong-token"}, None),
    ({SECRET_TOKEN_HEADER: SECRET[:-1]}, None),
    ({SECRET_TOKEN_HEADER: SECRET + "é"}, None),
    ({SECRET_TOKEN_HEADER: SECRET}, {SECRET_TOKEN_HEADER: [SECRET, "wrong-token"]}),
], ids=["no-header", "headers-none", "wrong", "prefix", "non-ascii", "conflicting-values"])
def test_missing_or_wrong_secret_token_is_401_and_stores_nothing(lake, stdout, headers, multi_headers):
    event = webhook_event(update_body(), headers=headers, multi_headers=multi_headers)
    response = invoke(event)
    assert response["statusCode"] == 401
    assert lake.keys() == []
    (line,) = stdout().logs
    assert line["outcome"] == "rejected" and line["status"] == 401


@pytest.mark.parametrize("headers, multi_headers", [
    ({SECRET_TOKEN_HEADER.lower(): SECRET}, None),
    ({"X-TELEGRAM-BOT-API-SECRET-TOKEN": SECRET}, None),
    (None, {"x-telegram-bot-api-secret-token": [SECRET]}),
], ids=["lower-case", "upper-case", "multi-value-only"])
def test_secret_token_header_name_is_case_insensitive(lake, headers, multi_headers):
    event = webhook_event(update_body(), headers=headers, multi_headers=multi_headers)
    assert_ok_and_empty(deliver(event))
    assert lake.keys() == [raw_key(NOW.date(), 1001)]


def test_secret_is_fetched_once_per_container(lake):
    assert_ok_and_empty(invoke(webhook_event(update_body(update_id=1))))
    lake.secrets.put_secret_value(SecretId=lake.secret_arn, SecretString="rotated-token")

    assert_ok_and_empty(invoke(webhook_event(update_body(update_id=2))))  # warm container: cached secret
    ingest.reset_container()
    assert invoke(webhook_event(update_body(update_id=3)))["statusCode"] == 401  # new container: new secret


# --- validation -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, reason", [
    ("", "body is not JSON"),
    (None, "body is not JSON"),
    ("not json", "body is not JSON"),
    ('{"update_id": 1', "body is not JSON"),
    ('{"update_id": NaN}', "body is not JSON"),
    ("[" * 100_000, "body is not JSON"),
    ("[1, 2]", "body is not a JSON object"),
    ('"text"', "body is not a JSON object"),
    ("{}", "update_id is missing or not an integer"),
    ('{"update_id": "5", "message": {}}', "update_id is missing or not an integer"),
    ('{"update_id": 5.0}', "update_id is missing or not an integer"),
    ('{"update_id": true}', "update_id is missing or not an integer"),
    ('{"update_id": null}', "update_id is missing or not an integer"),
])
def test_invalid_body_is_400_with_a_reason_and_one_log_line(lake, stdout, body, reason):
    response = invoke(webhook_event(body))
    assert (response["statusCode"], response["body"]) == (400, reason)
    assert lake.keys() == []
    (line,) = stdout().logs
    assert (line["outcome"], line["reason"], line["status"]) == ("rejected", reason, 400)


def test_invalid_base64_body_is_400(lake):
    event = webhook_event("not base64 at all!", base64_encoded=True)
    response = invoke(event)
    assert (response["statusCode"], response["body"]) == (400, "body is not valid base64")
    assert lake.keys() == []


def test_base64_encoded_body_is_decoded_and_stored_as_sent(lake):
    body = update_body()
    assert_ok_and_empty(deliver(webhook_event(body, base64_encoded=True)))
    assert lake.read(raw_key(NOW.date(), 1001)) == body


# --- storage ----------------------------------------------------------------------------------------------

def test_every_bot_api_update_type_has_a_sample():
    assert set(PAYLOADS) == set(UPDATE_TYPES)


@pytest.mark.parametrize("kind", UPDATE_TYPES)
def test_every_update_type_is_200_and_stored_only_for_an_allowed_chat(lake, stdout, kind):
    allowed, other = update_body(kind, ALLOWED_CHAT, update_id=1), update_body(kind, OTHER_CHAT, update_id=2)
    assert_ok_and_empty(deliver(webhook_event(allowed)))
    assert_ok_and_empty(deliver(webhook_event(other)))

    expected = [] if kind in CHATLESS_TYPES else [raw_key(NOW.date(), 1)]
    assert lake.keys() == expected
    outcomes = [(line["update_type"], line["outcome"]) for line in stdout().logs]
    first = "skipped" if kind in CHATLESS_TYPES else "stored"
    assert outcomes == [(kind, first), (kind, "skipped")]


def test_update_of_a_type_newer_than_this_code_is_200_and_skipped(lake, stdout):
    assert_ok_and_empty(invoke(webhook_event('{"update_id": 9, "future_update": {"chat": {"id": 1}}}')))
    assert lake.keys() == []
    (line,) = stdout().logs
    assert (line["update_type"], line["outcome"]) == ("unknown", "skipped")


def test_body_is_stored_byte_for_byte_with_json_content_type(lake):
    body = ('{ "update_id":1001,\n  "message":{"chat":{"id":%d,"type":"group"},"text":"caf\\u00e9 é 🎉"},'
            '"message_id":7 }' % ALLOWED_CHAT).encode()
    assert_ok_and_empty(deliver(webhook_event(body)))
    stored = lake.s3.get_object(Bucket=BUCKET, Key=raw_key(NOW.date(), 1001))
    assert stored["Body"].read() == body
    assert stored["ContentType"] == "application/json"


@pytest.mark.parametrize("zone, arrival, day", [
    ("America/Sao_Paulo", "2026-03-01T02:59:59.999+00:00", "2026-02-28"),
    ("America/Sao_Paulo", "2026-03-01T03:00:00+00:00", "2026-03-01"),
    ("Europe/Berlin", "2026-07-01T21:59:59+00:00", "2026-07-01"),  # summer time: UTC+2
    ("Europe/Berlin", "2026-07-01T22:00:00+00:00", "2026-07-02"),
])
def test_day_is_the_arrival_date_in_the_configured_zone(lake, monkeypatch, zone, arrival, day):
    monkeypatch.setenv("TIMEZONE", zone)
    assert_ok_and_empty(ingest.handle(webhook_event(update_body()), now=datetime.fromisoformat(arrival)))
    assert lake.keys() == [f"telegram/context_date={day}/1001.json"]


def test_lambda_entry_point_takes_the_day_from_api_gateways_request_time(lake):
    event = webhook_event(update_body())
    event["requestContext"] = {"requestTimeEpoch": 1772333999000}  # 2026-03-01T02:59:59Z, still Feb 28 in Sao Paulo
    assert_ok_and_empty(ingest.handler(event, None))
    assert lake.keys() == ["telegram/context_date=2026-02-28/1001.json"]


def test_same_update_delivered_twice_is_one_object(lake, stdout):
    body = update_body()
    assert_ok_and_empty(deliver(webhook_event(body)))
    assert_ok_and_empty(deliver(webhook_event(body)))

    versions = lake.versions()
    assert [version["Key"] for version in versions] == [raw_key(NOW.date(), 1001)]  # one object, one version
    assert lake.read(versions[0]["Key"]) == body
    assert [line["outcome"] for line in stdout().logs] == ["stored", "duplicate"]


def test_storage_failure_is_5xx_and_logged_loudly_without_text(lake, stdout, monkeypatch):
    monkeypatch.setenv("RAW_BUCKET", "bucket-that-does-not-exist")
    response = invoke(webhook_event(update_body(update_id=4242)))

    assert response["statusCode"] >= 500  # Telegram retries: never a 200 for an update that was not stored
    assert lake.keys() == []
    output = stdout()
    (line,) = output.logs
    assert (line["level"], line["outcome"], line["update_id"]) == ("ERROR", "failed", 4242)
    assert "NoSuchBucket" in line["exception"]
    assert CHAT_TEXT not in output.raw
    assert output.counts() == {"Failed": 1}


def test_unreadable_secret_is_5xx_logged_loudly_and_counted_and_stores_nothing(lake, stdout, monkeypatch):
    deleted = lake.secrets.create_secret(Name="deleted-webhook-secret", SecretString=SECRET)["ARN"]
    lake.secrets.delete_secret(SecretId=deleted, ForceDeleteWithoutRecovery=True)
    monkeypatch.setenv("WEBHOOK_SECRET_ARN", deleted)

    response = invoke(webhook_event(update_body(update_id=4343)))

    assert (response["statusCode"], response["body"]) == (500, "secret unavailable")  # Telegram retries
    assert lake.keys() == []
    output = stdout()
    (line,) = output.logs
    assert (line["level"], line["outcome"], line["status"]) == ("ERROR", "failed", 500)
    assert "ResourceNotFoundException" in line["exception"]
    assert output.counts() == {"Failed": 1}


# --- observability ----------------------------------------------------------------------------------------

def test_one_structured_log_line_per_request_without_text_or_secret(lake, stdout):
    invoke(webhook_event(update_body(update_id=5)))
    output = stdout()
    (line,) = output.logs
    assert {key: line[key] for key in ("update_id", "update_type", "chat_id", "outcome", "status")} == {
        "update_id": 5, "update_type": "message", "chat_id": ALLOWED_CHAT, "outcome": "stored", "status": 200}
    assert line["latency_ms"] >= 0
    assert CHAT_TEXT not in output.raw
    assert SECRET not in output.raw


def test_stored_skipped_and_rejected_are_counted_as_emf_metrics(lake, stdout):
    invoke(webhook_event(update_body(update_id=1)))
    invoke(webhook_event(update_body(chat_id=OTHER_CHAT, update_id=2)))
    invoke(webhook_event(update_body(kind="poll", update_id=3)))
    invoke(webhook_event("not json"))

    output = stdout()
    assert output.counts() == {"Stored": 1, "Skipped": 2, "Rejected": 1}
    definition = output.metrics[0]["_aws"]["CloudWatchMetrics"][0]
    assert definition["Namespace"] == "TelegramLake"
    assert definition["Dimensions"] == [["service"]]
    assert output.metrics[0]["service"] == "ingest"

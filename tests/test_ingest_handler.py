"""The ingest handler's contract (issue 2, "Ingest handler behaviour"; issue 8: chats seen, group upgrades,
new update types, secret rotation), one rule per test, against moto."""

from __future__ import annotations

import base64
import json
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import boto3
import pytest
from moto import mock_aws

from botocore.exceptions import ClientError

from lambdas.common.layout import CHAT_LINKS_PREFIX, CHATS_SEEN_PREFIX, PREFIX, chat_link_key, raw_key
from lambdas.common.updates import UPDATE_TYPES
from lambdas.ingest import budget
from lambdas.ingest import handler as ingest
from lambdas.ingest.errors import ConfigurationError
from lambdas.ingest.webhook import SECRET_TOKEN_HEADER, IngestSettings, parse_chat_ids

BUCKET = "raw-bucket"
SECRET = "Sup3r_secret-token_with_32_chars_"
ALLOWED_CHAT = -1001234567890
OTHER_CHAT = 42
BASIC_GROUP = -4001234567  # allowlisted, until it becomes a supergroup
SUPERGROUP = -1004001234567  # what it becomes
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

    def versions(self, prefix: str = PREFIX) -> list[dict]:
        """Every version of every object under `prefix` (default: the stored updates)."""
        return self.s3.list_object_versions(Bucket=BUCKET, Prefix=prefix).get("Versions", [])

    def keys(self, prefix: str = PREFIX) -> list[str]:
        return [version["Key"] for version in self.versions(prefix)]

    def read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def chat_records(self) -> dict[str, dict]:
        """The chats-seen records (current versions), by key."""
        listing = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=CHATS_SEEN_PREFIX).get("Contents", [])
        return {item["Key"]: json.loads(self.read(item["Key"])) for item in listing}

    def link_keys(self) -> list[str]:
        return self.keys(CHAT_LINKS_PREFIX)


@pytest.fixture
def lake(aws, monkeypatch):
    """A freshly started container with the stage's environment and an empty raw bucket."""
    s3, secrets, arn = aws
    for name, value in {"RAW_BUCKET": BUCKET, "WEBHOOK_SECRET_ARN": arn,
                        "ALLOWED_CHAT_IDS": f"{ALLOWED_CHAT}, 555, {BASIC_GROUP}", "TIMEZONE": ZONE}.items():
        monkeypatch.setenv(name, value)
    ingest.reset_container()
    ingest.metrics.clear_metrics()
    state = Lake(s3, secrets, arn)
    yield state
    for version in state.versions(prefix=""):
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


def invoke_at_now(event: dict) -> dict:
    """Through the Lambda entry point (metrics flushed to stdout), as if API Gateway received it at NOW."""
    event["requestContext"] = {**event["requestContext"], "requestTimeEpoch": int(NOW.timestamp() * 1000)}
    return ingest.handler(event, None)


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


@pytest.mark.parametrize("payload", [
    '{"chat": {"id": %d, "type": "supergroup"}, "date": 1779030000, "stars": 5}',
    '{"id": "x1", "message": {"message_id": 7, "date": 1779030000, "chat": {"id": %d, "type": "group"}}}',
], ids=["chat-in-payload", "chat-in-payload-message"])
def test_update_of_a_type_newer_than_this_code_is_stored_byte_for_byte_and_counted(lake, stdout, payload):
    body = ('{"update_id": 9,  "future_update": %s}' % (payload % ALLOWED_CHAT)).encode()
    assert_ok_and_empty(invoke_at_now(webhook_event(body)))
    assert lake.keys() == [raw_key(NOW.date(), 9)]
    assert lake.read(raw_key(NOW.date(), 9)) == body
    output = stdout()
    (line,) = output.logs
    assert (line["update_type"], line["chat_id"], line["outcome"]) == ("future_update", ALLOWED_CHAT, "stored")
    assert output.counts() == {"Stored": 1, "UnknownUpdateType": 1}


@pytest.mark.parametrize("body, update_type", [
    ('{"update_id": 9, "future_update": {"chat": {"id": 42, "type": "private"}}}', "future_update"),
    ('{"update_id": 9, "future_update": {"text": "no chat at all"}}', "future_update"),
    ('{"update_id": 9}', "unknown"),
], ids=["other-chat", "chat-less", "no-type"])
def test_update_of_an_unknown_type_outside_the_allowlist_is_skipped_and_counted(lake, stdout, body, update_type):
    assert_ok_and_empty(invoke(webhook_event(body)))
    assert lake.keys() == []
    output = stdout()
    (line,) = output.logs
    assert (line["update_type"], line["outcome"]) == (update_type, "skipped")
    assert output.counts() == {"Skipped": 1, "UnknownUpdateType": 1}


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


@pytest.mark.parametrize("epoch", [True, False, "1772333999000", 1772333999000.0, None], ids=repr)
def test_a_request_time_that_is_not_integer_milliseconds_is_ignored_for_the_clock(epoch):
    """JSON's `true` is no time: read as 1 (ms after 1970) it would file today's update on 1969-12-31."""
    before = datetime.now(timezone.utc)
    arrived = ingest.arrival_time({"requestContext": {"requestTimeEpoch": epoch}})
    assert before <= arrived <= datetime.now(timezone.utc)


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
    assert output.counts() == {"Stored": 1, "Skipped": 2, "Rejected": 1, "SkippedFromGroup": 1}
    definition = output.metrics[0]["_aws"]["CloudWatchMetrics"][0]
    assert definition["Namespace"] == "TelegramLake"
    assert definition["Dimensions"] == [["service"]]
    assert output.metrics[0]["service"] == "ingest"


# --- section 4: what the handler cannot encode or the lake cannot hold ------------------------------------

@pytest.mark.parametrize("token", ["\ud800", SECRET + "\udcff", SECRET[:5] + "\ud800" + SECRET[6:]],
                         ids=["lone-surrogate", "secret-plus-surrogate", "surrogate-inside"])
def test_a_token_header_that_cannot_be_encoded_is_401_not_a_crash(lake, stdout, token):
    response = invoke(webhook_event(update_body(), headers={SECRET_TOKEN_HEADER: token}))

    assert (response["statusCode"], response["body"]) == (401, "wrong secret token")
    assert lake.keys() == []
    assert stdout().counts() == {"Rejected": 1, "Unauthorized": 1}


def test_lone_surrogates_in_names_reach_logs_and_records_as_replacement_characters(lake, stdout):
    chat = '{"id": %d, "type": "gr\\ud800oup", "title": "Lake \\udcff"}' % ALLOWED_CHAT
    body = '{"update_id": 5, "future\\ud800": {"chat": %s}}' % chat
    assert_ok_and_empty(invoke_at_now(webhook_event(body)))

    assert lake.read(raw_key(NOW.date(), 5)) == body.encode()  # stored as sent
    record = the_record(lake, ALLOWED_CHAT)
    assert (record["chat_type"], record["title"], record["update_types"]) == (
        "gr\ufffdoup", "Lake \ufffd", ["future\ufffd"])
    (line,) = stdout().logs
    assert (line["update_type"], line["chat_type"], line["outcome"]) == ("future\ufffd", "gr\ufffdoup", "stored")


@pytest.mark.parametrize("update_id", [-1, 2**63, -(2**63), 10**30])
def test_update_id_outside_the_bigint_range_is_400_with_the_reason(lake, update_id):
    response = deliver(webhook_event(update_body(update_id=update_id)))
    assert (response["statusCode"], response["body"]) == (400, "update_id is outside 0 .. 2^63-1")
    assert lake.keys() == []


@pytest.mark.parametrize("update_id", [0, 2**63 - 1])
def test_update_ids_at_the_ends_of_the_range_are_stored(lake, update_id):
    assert_ok_and_empty(deliver(webhook_event(update_body(update_id=update_id))))
    assert lake.keys() == [raw_key(NOW.date(), update_id)]


# --- section 7: secret rotation ---------------------------------------------------------------------------

class FakeClock:
    """The clock of the secret's re-read limit, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(lake, monkeypatch):
    """Installed before the container's first request builds its secret cache."""
    fake = FakeClock()
    monkeypatch.setattr(ingest, "clock", fake)
    return fake


class AwsCalls:
    """The AWS API calls the current container's clients make (one per call, whatever its retries)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def attach(self) -> AwsCalls:
        for client in (ingest.s3_client(), ingest.secrets_client()):
            client.meta.events.register("before-call", self._record)
        return self

    def _record(self, model, **_) -> None:
        self.names.append(model.name)

    def take(self) -> list[str]:
        names, self.names = self.names, []
        return names


@pytest.fixture
def aws_calls(lake):
    return AwsCalls().attach()


def with_token(token: str, update_id: int) -> dict:
    return webhook_event(update_body(update_id=update_id), headers={SECRET_TOKEN_HEADER: token})


def test_after_a_rotation_a_warm_container_accepts_the_new_token_at_once(lake, clock, aws_calls, stdout):
    assert_ok_and_empty(invoke_at_now(with_token(SECRET, 1)))  # the container reads the secret
    clock.advance(budget.SECRET_REFRESH_SECONDS)
    lake.secrets.put_secret_value(SecretId=lake.secret_arn, SecretString="rotated-token")

    assert_ok_and_empty(invoke_at_now(with_token("rotated-token", 2)))  # `webhook set` gave Telegram the new one
    assert invoke_at_now(with_token(SECRET, 3))["statusCode"] == 401  # and the old one is refused from now on
    assert aws_calls.take().count("GetSecretValue") == 2
    assert lake.keys() == [raw_key(NOW.date(), 1), raw_key(NOW.date(), 2)]
    assert stdout().counts() == {"Stored": 2, "Rejected": 1, "Unauthorized": 1}


def test_a_new_token_within_the_refresh_interval_waits_for_it(lake, clock):
    assert_ok_and_empty(deliver(with_token(SECRET, 1)))
    lake.secrets.put_secret_value(SecretId=lake.secret_arn, SecretString="rotated-token")

    clock.advance(budget.SECRET_REFRESH_SECONDS - 1)
    assert deliver(with_token("rotated-token", 2))["statusCode"] == 401  # read too recently: Telegram retries
    clock.advance(1)
    assert_ok_and_empty(deliver(with_token("rotated-token", 2)))  # the retry gets in
    assert lake.keys() == [raw_key(NOW.date(), 1), raw_key(NOW.date(), 2)]


def test_a_stream_of_wrong_tokens_reads_the_secret_at_most_once_per_interval(lake, clock, aws_calls, stdout):
    assert_ok_and_empty(invoke(with_token(SECRET, 1)))
    for second in range(0, 3 * budget.SECRET_REFRESH_SECONDS):  # one wrong token a second for 90 s
        assert invoke(with_token("wrong-token", 100 + second))["statusCode"] == 401
        clock.advance(1)

    # The first read, then one at 30 s and one at 60 s: never two within the interval.
    assert aws_calls.take().count("GetSecretValue") == 3
    counts = stdout().counts()
    assert (counts["Rejected"], counts["Unauthorized"]) == (90, 90)


def test_a_missing_token_never_reads_the_secret_again(lake, clock, aws_calls):
    assert_ok_and_empty(deliver(with_token(SECRET, 1)))
    clock.advance(budget.SECRET_REFRESH_SECONDS)
    assert deliver(webhook_event(update_body(), headers={}))["statusCode"] == 401
    assert aws_calls.take().count("GetSecretValue") == 1


def test_a_failed_re_read_answers_5xx_keeps_the_old_secret_and_counts_for_the_limit(
    lake, clock, aws_calls, stdout, monkeypatch
):
    assert_ok_and_empty(invoke(with_token(SECRET, 1)))
    clock.advance(budget.SECRET_REFRESH_SECONDS)
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "denied"}}, "GetSecretValue")
    monkeypatch.setattr(ingest.secrets_client(), "get_secret_value", lambda **_: (_ for _ in ()).throw(denied))

    response = invoke(with_token("rotated-token", 2))
    assert (response["statusCode"], response["body"]) == (500, "secret unavailable")  # Telegram retries
    assert invoke(with_token("rotated-token", 3))["statusCode"] == 401  # no second read within the interval
    assert_ok_and_empty(invoke(with_token(SECRET, 4)))  # the cached secret still works
    assert stdout().counts() == {"Stored": 2, "Failed": 1, "Rejected": 1, "Unauthorized": 1}


def test_missing_and_wrong_tokens_are_counted_as_unauthorized(lake, stdout):
    invoke(webhook_event(update_body(), headers={}))
    invoke(with_token("wrong-token", 1))
    invoke(webhook_event("not json"))  # a 400 is rejected but not unauthorized
    assert stdout().counts() == {"Rejected": 3, "Unauthorized": 2}


def test_a_secret_without_a_string_value_answers_5xx_and_never_accepts_a_request(lake, stdout, monkeypatch):
    binary = lake.secrets.create_secret(Name="binary-webhook-secret", SecretBinary=b"\x00")["ARN"]
    monkeypatch.setenv("WEBHOOK_SECRET_ARN", binary)
    try:
        response = invoke(webhook_event(update_body(), headers={SECRET_TOKEN_HEADER: ""}))
    finally:
        lake.secrets.delete_secret(SecretId=binary, ForceDeleteWithoutRecovery=True)

    assert (response["statusCode"], response["body"]) == (500, "secret unavailable")
    assert lake.keys() == []
    output = stdout()
    (line,) = output.logs
    assert (line["level"], line["outcome"]) == ("ERROR", "failed")
    assert "has no string value" in line["exception"]
    assert output.counts() == {"Failed": 1}


def test_aws_clients_are_bounded_by_the_time_budget(lake):
    for client in (ingest.s3_client(), ingest.secrets_client()):
        config = client.meta.config
        assert (config.connect_timeout, config.read_timeout) == (
            budget.CONNECT_TIMEOUT_SECONDS, budget.READ_TIMEOUT_SECONDS)
        assert config.retries == {"mode": budget.RETRY_MODE, "total_max_attempts": budget.TOTAL_MAX_ATTEMPTS}


# --- section 1: the chats that write to the bot -----------------------------------------------------------

def group_update(chat_id: int, update_id: int, *, chat_type: str = "supergroup", kind: str = "message",
                 title: str = "Lake", **message: object) -> bytes:
    payload = {"message_id": update_id, "date": 1779030000, "text": CHAT_TEXT,
               "chat": {"id": chat_id, "type": chat_type, "title": title, "username": "lake_chat"}, **message}
    return json.dumps({"update_id": update_id, kind: payload}).encode()


def the_record(lake: Lake, chat_id: int) -> dict:
    (record,) = [record for record in lake.chat_records().values() if record["chat_id"] == chat_id]
    return record


def test_each_chat_gets_one_record_per_day_and_container_with_exact_counts_and_no_text(lake, stdout):
    later = NOW.replace(hour=18)
    for update_id in (1, 2):
        assert_ok_and_empty(deliver(webhook_event(group_update(ALLOWED_CHAT, update_id))))
    assert_ok_and_empty(deliver(webhook_event(group_update(ALLOWED_CHAT, 2))))  # a redelivery
    assert_ok_and_empty(ingest.handle(webhook_event(group_update(ALLOWED_CHAT, 3, kind="edited_message")), later))
    for update_id in (4, 5):
        assert_ok_and_empty(deliver(webhook_event(group_update(OTHER_CHAT, update_id, title="Elsewhere"))))
    assert_ok_and_empty(deliver(webhook_event(update_body("poll", update_id=6))))  # no chat: no record

    container = ingest.container_id()
    records = lake.chat_records()
    assert sorted(records) == sorted(
        f"{CHATS_SEEN_PREFIX}{NOW.date()}/{chat}/{container}.json" for chat in (ALLOWED_CHAT, OTHER_CHAT))
    assert the_record(lake, ALLOWED_CHAT) == {
        "chat_id": ALLOWED_CHAT, "day": "2026-05-17", "container_id": container, "chat_type": "supergroup",
        "title": "Lake", "username": "lake_chat", "updates": {"stored": 3, "duplicate": 1, "skipped": 0},
        "update_types": ["edited_message", "message"], "first_seen": "2026-05-17T15:00:00.000+00:00",
        "last_seen": "2026-05-17T18:00:00.000+00:00", "allowlisted": True,
    }
    other = the_record(lake, OTHER_CHAT)
    assert (other["updates"], other["allowlisted"], other["title"]) == (
        {"stored": 0, "duplicate": 0, "skipped": 2}, False, "Elsewhere")
    assert CHAT_TEXT not in json.dumps(records)
    assert CHAT_TEXT not in stdout().raw


def test_a_record_belongs_to_the_arrival_day_in_the_stages_zone(lake):
    before_midnight = datetime(2026, 5, 18, 2, 59, tzinfo=timezone.utc)  # still May 17 in Sao Paulo
    after_midnight = datetime(2026, 5, 18, 3, 1, tzinfo=timezone.utc)
    ingest.handle(webhook_event(group_update(OTHER_CHAT, 1)), before_midnight)
    ingest.handle(webhook_event(group_update(OTHER_CHAT, 2)), after_midnight)

    days = {record["day"]: record["updates"]["skipped"] for record in lake.chat_records().values()}
    assert days == {"2026-05-17": 1, "2026-05-18": 1}


def test_each_container_writes_its_own_record_so_none_overwrites_another(lake):
    deliver(webhook_event(group_update(OTHER_CHAT, 1)))
    first = ingest.container_id()
    ingest.reset_container()  # another container (a cold start or a concurrent one)
    deliver(webhook_event(group_update(OTHER_CHAT, 2)))
    deliver(webhook_event(group_update(OTHER_CHAT, 3)))
    second = ingest.container_id()

    assert first != second
    counts = {record["container_id"]: record["updates"]["skipped"] for record in lake.chat_records().values()}
    assert counts == {first: 1, second: 2}


@pytest.fixture
def state_writes_denied(lake):
    """S3 refuses the ingest's writes under ingest-state/ (as with a missing grant), and only those."""

    def refuse(params, **_):
        if "ingest-state/" in params["url_path"]:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "PutObject")

    ingest.s3_client().meta.events.register("before-call.s3.PutObject", refuse)


def test_a_failed_record_write_is_loud_but_the_update_is_stored_and_answered_200(lake, stdout, state_writes_denied):
    response = invoke_at_now(webhook_event(group_update(ALLOWED_CHAT, 7)))

    assert_ok_and_empty(response)
    assert lake.keys() == [raw_key(NOW.date(), 7)]
    assert lake.chat_records() == {}
    output = stdout()
    error, request = output.logs
    assert (error["level"], error["message"], error["update_id"]) == ("ERROR", "chat record not written", 7)
    assert "AccessDenied" in error["exception"]
    assert (request["outcome"], request["status"]) == ("stored", 200)
    assert output.counts() == {"Stored": 1, "ChatRecordFailed": 1}


def test_the_next_record_write_repairs_a_failed_one(lake, monkeypatch):
    deliver(webhook_event(group_update(OTHER_CHAT, 1)))
    refused = ClientError({"Error": {"Code": "SlowDown", "Message": "slow down"}}, "PutObject")
    real_put = ingest.s3_client().put_object
    monkeypatch.setattr(ingest.s3_client(), "put_object", lambda **_: (_ for _ in ()).throw(refused))
    deliver(webhook_event(group_update(OTHER_CHAT, 2)))
    monkeypatch.setattr(ingest.s3_client(), "put_object", real_put)
    deliver(webhook_event(group_update(OTHER_CHAT, 3)))

    assert the_record(lake, OTHER_CHAT)["updates"]["skipped"] == 3


@pytest.mark.parametrize("chat_type, from_group", [
    ("group", 1), ("supergroup", 1), ("channel", 1), ("private", 0), (None, 0),
])
def test_a_skipped_update_from_a_group_is_counted_as_skipped_from_group(lake, stdout, chat_type, from_group):
    invoke(webhook_event(group_update(OTHER_CHAT, 1, chat_type=chat_type)))
    invoke(webhook_event(group_update(ALLOWED_CHAT, 2, chat_type=chat_type)))  # stored: never counted
    expected = {"Skipped": 1, "Stored": 1} | ({"SkippedFromGroup": 1} if from_group else {})
    assert stdout().counts() == expected


# --- section 2: an allowlisted group that becomes a supergroup --------------------------------------------

def migrate_to(update_id: int, old: int = BASIC_GROUP, new: int = SUPERGROUP) -> bytes:
    """The service message Telegram sends in the old group when it becomes a supergroup."""
    return group_update(old, update_id, chat_type="group", migrate_to_chat_id=new)


def migrate_from(update_id: int, new: int = SUPERGROUP, old: int = BASIC_GROUP) -> bytes:
    """The first message of the supergroup, naming the group it continues."""
    return group_update(new, update_id, migrate_from_chat_id=old)


def in_supergroup(update_id: int, chat_id: int = SUPERGROUP) -> dict:
    return webhook_event(group_update(chat_id, update_id))


def test_an_upgrade_notice_from_an_allowlisted_group_allows_the_new_id_with_a_log_line_and_metric(lake, stdout):
    assert_ok_and_empty(invoke_at_now(webhook_event(migrate_to(1))))
    assert_ok_and_empty(invoke_at_now(in_supergroup(2)))

    assert lake.keys() == [raw_key(NOW.date(), 1), raw_key(NOW.date(), 2)]
    assert lake.link_keys() == [chat_link_key(SUPERGROUP, BASIC_GROUP)]
    assert json.loads(lake.read(chat_link_key(SUPERGROUP, BASIC_GROUP))) == {
        "from": BASIC_GROUP, "to": SUPERGROUP, "update_id": 1, "when": "2026-05-17T15:00:00.000+00:00"}
    output = stdout()
    learned = [line for line in output.logs if line["message"] == "chat upgrade followed"]
    assert [(line["old_chat_id"], line["new_chat_id"], line["update_id"]) for line in learned] == [
        (BASIC_GROUP, SUPERGROUP, 1)]
    assert output.counts() == {"Stored": 2, "ChatMigrated": 1}


def test_the_new_groups_first_message_naming_an_allowlisted_group_is_stored_and_teaches_the_link(lake, stdout):
    assert_ok_and_empty(invoke_at_now(webhook_event(migrate_from(1))))
    assert_ok_and_empty(invoke_at_now(in_supergroup(2)))

    assert lake.keys() == [raw_key(NOW.date(), 1), raw_key(NOW.date(), 2)]
    assert lake.link_keys() == [chat_link_key(SUPERGROUP, BASIC_GROUP)]
    assert stdout().counts() == {"Stored": 2, "ChatMigrated": 1}


def test_a_learned_upgrade_survives_a_cold_start(lake):
    deliver(webhook_event(migrate_to(1)))
    ingest.reset_container()

    assert_ok_and_empty(deliver(in_supergroup(2)))
    assert raw_key(NOW.date(), 2) in lake.keys()
    assert the_record(lake, SUPERGROUP)["allowlisted"] is True


def test_an_upgrade_learned_by_another_container_is_seen_at_once(lake, aws_calls):
    assert_ok_and_empty(deliver(in_supergroup(1)))  # this container lists the links: none yet
    assert lake.keys() == []
    # Meanwhile another container stores the link (as its own handler would).
    lake.s3.put_object(Bucket=BUCKET, Key=chat_link_key(SUPERGROUP, BASIC_GROUP), Body=b"{}")

    assert_ok_and_empty(deliver(in_supergroup(2)))  # no cached "no" for a supergroup: listed again
    assert lake.keys() == [raw_key(NOW.date(), 2)]
    assert aws_calls.take().count("ListObjectsV2") == 2


@pytest.mark.parametrize("chat_type", ["private", "group", "channel"])
def test_only_a_supergroup_outside_the_allowlist_lists_the_links_again(lake, aws_calls, chat_type):
    for update_id in (1, 2, 3):
        assert_ok_and_empty(deliver(webhook_event(group_update(OTHER_CHAT, update_id, chat_type=chat_type))))
    assert aws_calls.take().count("ListObjectsV2") == 1  # the first decision outside ALLOWED_CHAT_IDS only


def test_allowlisted_chats_never_wait_for_the_links(lake, aws_calls):
    for update_id in (1, 2):
        deliver(webhook_event(group_update(ALLOWED_CHAT, update_id)))
    assert "ListObjectsV2" not in aws_calls.take()


def test_an_upgrade_notice_from_a_chat_outside_the_allowlist_adds_nothing(lake, stdout):
    invoke_at_now(webhook_event(migrate_to(1, old=-4009999999)))
    invoke_at_now(webhook_event(migrate_from(2, old=-4009999999)))
    invoke_at_now(in_supergroup(3))

    assert lake.keys() == []
    assert lake.link_keys() == []
    assert "ChatMigrated" not in stdout().counts()


@pytest.mark.parametrize("notice", [
    lambda: migrate_to(1, new=OTHER_CHAT),  # a private chat
    lambda: migrate_to(1, new=-4002002002),  # another basic group
    lambda: group_update(OTHER_CHAT, 1, chat_type="private", migrate_from_chat_id=BASIC_GROUP),
], ids=["to-private-chat", "to-basic-group", "from-private-chat"])
def test_an_upgrade_notice_that_names_no_supergroup_allows_nothing(lake, stdout, notice):
    """Only a supergroup continues an upgraded group: a notice naming any other chat (a forged or garbled
    update) must not put that chat on the allowlist."""
    invoke_at_now(webhook_event(notice()))
    invoke_at_now(webhook_event(group_update(OTHER_CHAT, 2, chat_type="private")))
    invoke_at_now(webhook_event(group_update(-4002002002, 3, chat_type="group")))

    assert lake.link_keys() == []
    assert raw_key(NOW.date(), 2) not in lake.keys() and raw_key(NOW.date(), 3) not in lake.keys()
    assert "ChatMigrated" not in stdout().counts()


def test_a_chain_of_upgrades_is_followed_to_its_end_across_cold_starts(lake):
    next_group = -1007007007007
    deliver(webhook_event(migrate_to(1)))
    ingest.reset_container()
    deliver(webhook_event(migrate_to(2, old=SUPERGROUP, new=next_group)))  # allowed through the first link
    ingest.reset_container()

    assert_ok_and_empty(deliver(in_supergroup(3, chat_id=next_group)))
    assert lake.keys() == [raw_key(NOW.date(), update_id) for update_id in (1, 2, 3)]
    assert sorted(lake.link_keys()) == sorted([chat_link_key(SUPERGROUP, BASIC_GROUP),
                                              chat_link_key(next_group, SUPERGROUP)])


def test_a_known_upgrade_is_not_stored_again(lake, stdout):
    invoke_at_now(webhook_event(migrate_to(1)))
    invoke_at_now(webhook_event(migrate_from(2)))
    assert len(lake.link_keys()) == 1
    assert stdout().counts()["ChatMigrated"] == 1


def test_a_link_that_cannot_be_stored_fails_the_request_so_telegram_redelivers_it(lake, stdout, state_writes_denied):
    response = invoke_at_now(webhook_event(migrate_from(1)))

    assert (response["statusCode"], response["body"]) == (500, "chat link not stored")
    assert lake.keys() == [] and lake.link_keys() == []
    output = stdout()
    (line,) = output.logs
    assert (line["level"], line["outcome"], line["chat_id"]) == ("ERROR", "failed", SUPERGROUP)
    assert output.counts() == {"Failed": 1}
    assert deliver(in_supergroup(2))["statusCode"] == 200 and lake.keys() == []  # not learned in memory either


def test_unreadable_links_fail_the_request_for_a_chat_outside_the_allowlist_only(lake, stdout, monkeypatch):
    monkeypatch.setenv("RAW_BUCKET", "bucket-that-does-not-exist")
    response = invoke(in_supergroup(1))
    assert (response["statusCode"], response["body"]) == (500, "chat links unreadable")
    (line,) = stdout().logs
    assert "NoSuchBucket" in line["exception"]


def test_a_key_under_the_links_prefix_that_names_no_link_is_ignored_with_a_warning(lake, stdout):
    lake.s3.put_object(Bucket=BUCKET, Key=f"{CHAT_LINKS_PREFIX}notes.txt", Body=b"hand-written")
    lake.s3.put_object(Bucket=BUCKET, Key=chat_link_key(SUPERGROUP, BASIC_GROUP), Body=b"{}")

    assert_ok_and_empty(deliver(in_supergroup(1)))
    assert lake.keys() == [raw_key(NOW.date(), 1)]
    warning = [line for line in stdout().logs if line["level"] == "WARNING"]
    assert [(line["message"], line["key"]) for line in warning] == [
        ("not a chat link: ignored", f"{CHAT_LINKS_PREFIX}notes.txt")]


def test_more_links_than_one_listing_page_fail_loudly(lake, stdout):
    for index in range(1001):
        lake.s3.put_object(Bucket=BUCKET, Key=chat_link_key(-1000000000000 - index, BASIC_GROUP), Body=b"{}")
    response = invoke(in_supergroup(1))
    assert (response["statusCode"], response["body"]) == (500, "chat links unreadable")
    (line,) = stdout().logs
    assert "TooManyChatLinks" in line["exception"]


# --- the time budget: the most AWS calls one request makes ------------------------------------------------

def test_the_most_calls_a_cold_request_makes_is_the_budgets(lake, aws_calls):
    assert_ok_and_empty(deliver(webhook_event(migrate_from(1))))
    assert aws_calls.take() == ["GetSecretValue", "ListObjectsV2", "PutObject", "PutObject", "PutObject"]
    assert budget.MAX_CALLS_PER_REQUEST == 5


def test_the_most_calls_a_warm_request_makes_is_the_budgets(lake, clock, aws_calls):
    deliver(webhook_event(group_update(OTHER_CHAT, 1, chat_type="private")))  # cold: secret and links read
    aws_calls.take()
    clock.advance(budget.SECRET_REFRESH_SECONDS)
    lake.secrets.put_secret_value(SecretId=lake.secret_arn, SecretString="rotated-token")

    event = webhook_event(migrate_from(2), headers={SECRET_TOKEN_HEADER: "rotated-token"})
    assert_ok_and_empty(deliver(event))
    assert aws_calls.take() == ["GetSecretValue", "ListObjectsV2", "PutObject", "PutObject", "PutObject"]


def test_the_worst_request_fits_in_the_function_timeout_below_api_gateways():
    per_call = budget.TOTAL_MAX_ATTEMPTS * (budget.CONNECT_TIMEOUT_SECONDS + budget.READ_TIMEOUT_SECONDS) + (
        budget.TOTAL_MAX_ATTEMPTS - 1) * budget.RETRY_DELAY_MAX_SECONDS
    worst = budget.MAX_CALLS_PER_REQUEST * per_call
    assert (budget.WORST_CALL_SECONDS, budget.WORST_REQUEST_SECONDS) == (per_call, worst)
    assert worst + budget.HANDLER_MARGIN_SECONDS <= budget.FUNCTION_TIMEOUT_SECONDS
    assert budget.FUNCTION_TIMEOUT_SECONDS < budget.API_GATEWAY_TIMEOUT_SECONDS == 29
    assert isinstance(budget.FUNCTION_TIMEOUT_SECONDS, int)  # Lambda's timeout is whole seconds


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts every connection and never answers: a hung S3."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                self.connections.append(self._socket.accept()[0])
            except OSError:  # closed
                return

    def received(self) -> list[bytes]:
        """What each connection sent (already in its socket buffer: the server never answers)."""
        requests = []
        for connection in self.connections:
            connection.settimeout(1)
            chunks = []
            try:
                while chunk := connection.recv(65536):
                    chunks.append(chunk)
            except TimeoutError:
                pass
            requests.append(b"".join(chunks))
        return requests

    def close(self) -> None:
        self._socket.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._socket.close()
        self._thread.join()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def hung_s3(lake, monkeypatch):
    server = SilentServer()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", server.url)  # S3 only; Secrets Manager stays on moto
    ingest.reset_container()
    yield server
    server.close()


def test_a_hung_s3_call_ends_in_the_handlers_failed_path_within_the_budget(hung_s3, stdout):
    started = time.monotonic()
    response = invoke(webhook_event(update_body(update_id=77)))
    elapsed = time.monotonic() - started

    assert (response["statusCode"], response["body"]) == (500, "update not stored")  # Telegram redelivers
    output = stdout()
    (line,) = output.logs
    assert (line["level"], line["outcome"], line["update_id"]) == ("ERROR", "failed", 77)
    assert "ReadTimeoutError" in line["exception"]
    assert output.counts() == {"Failed": 1}
    assert len(hung_s3.connections) == budget.TOTAL_MAX_ATTEMPTS  # tried, then retried once
    # The contract: the handler's own `failed` path, well before Lambda's timeout would cut it off silently.
    # (The per-call bounds are the client settings, asserted above; no timing is asserted tighter than this.)
    assert elapsed < budget.FUNCTION_TIMEOUT_SECONDS
    # Each attempt sends its body at once: no `Expect: 100-continue`, whose wait the read timeout does not bound.
    for request in hung_s3.received():
        assert b"expect: 100-continue" not in request.lower()
        assert request.endswith(update_body(update_id=77))


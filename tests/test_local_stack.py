"""The local stack (`tools.local.stack`): moto, the local Firehose and the webhook endpoint in front of the real
ingest handler, the `local up` command, and polling a bot's getUpdates into the webhook (against the fake Bot API)."""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

import tools.local.stack
from analytics import load_queries, requested_updates
from stacks.config import load_from_cdk_json
from lambdas.common.envelope import update_bytes
from lambdas.common.layout import PREFIX, chat_link_key, raw_object_kind
from lambdas.etl.day import object_lines
from lambdas.ingest.webhook import SECRET_TOKEN_HEADER
from tests.fake_bot_api import FakeBotApi, Reply
from tools.cli import CommandError
from tools.local.firehose import DeliveryStreams
from tools.local.stack import (
    ARRIVAL_HEADER,
    LONG_POLL_SECONDS,
    LocalStack,
    deliver,
    http_api_event,
    poll_into_webhook,
    telegram_json,
)
from tools.telegram import API_BASE_ENV, TOKEN_ENV, BotApi

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG = load_from_cdk_json("dev")
ALLOWED_CHAT = CONFIG.allowed_chat_ids[0]
OTHER_CHAT = -100555
TOKEN = "123456789:AAH-local_stack_token"
TELEGRAM_SECRET = re.compile(r"^[A-Za-z0-9_-]{32,256}$")


def message_update(update_id: int, chat_id: int = ALLOWED_CHAT, text: str = "olá, mundo") -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "from": {"id": 42, "is_bot": False, "first_name": "Ana"},
            "chat": {"id": chat_id, "type": "supergroup", "title": "Lake"},
            "date": 1_795_000_000,
            "text": text,
        },
    }


def batches_in(s3: Any, bucket: str) -> dict[str, list[bytes]]:
    """The raw zone's batches, by key, each as its lines (the lake's prefix only: the ingest keeps its own state
    beside it)."""
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=PREFIX).get("Contents", [])
    return {item["Key"]: object_lines(item["Key"], s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            for item in listing}


def stored(stack: LocalStack) -> list[tuple[str, bytes]]:
    """Every update line the raw zone holds once the local Firehose has written what it buffers: the day of its
    folder, and the update's bytes as sent."""
    stack.firehose.flush()
    found = []
    for key, lines in batches_in(stack.client("s3"), stack.raw_bucket).items():
        day = key.removeprefix(f"{PREFIX}context_date=")[:10]
        assert raw_object_kind(key, date.fromisoformat(day)) == "batch", key
        found += [(day, update_bytes(line)) for line in lines]
    return found


def stored_ids(stack: LocalStack) -> list[int]:
    return sorted(json.loads(body)["update_id"] for _, body in stored(stack))


def raw_key_count(stack: LocalStack) -> int:
    """Every object in the raw bucket, the ingest's state included."""
    return stack.client("s3").list_objects_v2(Bucket=stack.raw_bucket)["KeyCount"]


@pytest.fixture(scope="class")
def stack():
    with LocalStack(CONFIG) as local:
        yield local


@pytest.fixture
def empty_raw_bucket(stack):
    """Each test starts with an empty raw bucket (and nothing buffered in the local Firehose) in the shared stack."""
    stack.firehose.flush()
    s3 = stack.client("s3")
    for item in s3.list_objects_v2(Bucket=stack.raw_bucket).get("Contents", []):
        s3.delete_object(Bucket=stack.raw_bucket, Key=item["Key"])
    return stack


# ---- the proxy event


def test_the_event_is_the_http_apis_payload_2_0():
    received = datetime(2026, 11, 2, 2, 30, 15, 250_000, tzinfo=timezone.utc)
    event = http_api_event(
        method="POST",
        path="/webhook",
        headers=[("Content-Type", "application/json"), ("X-Forwarded-For", "a"), ("X-Forwarded-For", "b"),
                 ("Host", "127.0.0.1:8080")],
        body='{"update_id":1,"text":"olá"}'.encode(),
        received_at=received,
        source_ip="127.0.0.1",
    )
    assert (event["version"], event["routeKey"], event["rawPath"]) == ("2.0", "POST /webhook", "/webhook")
    assert event["headers"] == {"content-type": "application/json", "x-forwarded-for": "a,b", "host": "127.0.0.1:8080"}
    assert event["body"] == '{"update_id":1,"text":"olá"}' and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["timeEpoch"] == 1793586615250  # exact milliseconds
    assert datetime.fromtimestamp(context["timeEpoch"] / 1000, timezone.utc) == received
    assert context["time"] == "02/Nov/2026:02:30:15 +0000"
    assert context["http"] == {"method": "POST", "path": "/webhook", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                               "userAgent": ""}
    assert (context["stage"], context["routeKey"], context["domainName"]) == ("$default", "POST /webhook",
                                                                               "127.0.0.1:8080")


def test_the_event_passes_a_body_that_is_not_utf8_as_base64_and_no_body_for_an_empty_one():
    common = dict(method="POST", path="/webhook", headers=[], received_at=datetime.now(timezone.utc), source_ip="::1")
    binary = http_api_event(body=b"\xff\xfe{}", **common)
    assert binary["isBase64Encoded"] is True and base64.b64decode(binary["body"]) == b"\xff\xfe{}"
    assert "body" not in http_api_event(body=b"", **common)


def test_telegram_json_is_utf8_with_a_lone_surrogate_kept_as_its_escape():
    update = message_update(1, text="olá \ud800 👍")  # as json.loads reads Telegram's "olá \\ud800 👍"
    body = telegram_json(update)
    assert json.loads(body.decode("utf-8")) == update  # strict UTF-8, and the same update
    assert b"\\ud800" in body and "olá".encode() in body and "👍".encode() in body


class TestRunningStack:
    """One stack shared by the tests that only need it running (stacks cannot overlap in a process)."""

    # ---- the stack's resources and environment

    def test_stack_creates_buckets_and_a_telegram_compatible_secret(self, stack):
        buckets = {bucket["Name"] for bucket in stack.client("s3").list_buckets()["Buckets"]}
        assert {stack.raw_bucket, stack.enriched_bucket} <= buckets
        stored = stack.client("secretsmanager").get_secret_value(SecretId=stack.secret_arn)["SecretString"]
        assert stored == stack.secret and TELEGRAM_SECRET.match(stack.secret)

    def test_stack_points_the_handlers_environment_at_itself_from_the_stage_config(self, stack):
        assert os.environ["AWS_ENDPOINT_URL"] == stack.endpoint_url
        assert os.environ["AWS_ENDPOINT_URL_FIREHOSE"] == stack.firehose.endpoint_url == stack.firehose_url
        assert os.environ["DELIVERY_STREAM"] == stack.delivery_stream == "TelegramLake-dev-Raw"
        assert stack.batch_interval == timedelta(seconds=CONFIG.raw_batch_seconds)
        assert os.environ["RAW_BUCKET"] == stack.raw_bucket and os.environ["ENRICHED_BUCKET"] == stack.enriched_bucket
        assert os.environ["WEBHOOK_SECRET_ARN"] == stack.secret_arn
        assert os.environ["ALLOWED_CHAT_IDS"] == ",".join(map(str, CONFIG.allowed_chat_ids))
        assert os.environ["TIMEZONE"] == CONFIG.timezone

    # ---- the webhook endpoint

    def test_allowed_update_is_stored_byte_for_byte_under_its_arrival_day(self, empty_raw_bucket):
        stack = empty_raw_bucket
        body = telegram_json(message_update(1001))
        # 02:30 UTC on Nov 2 is still Nov 1 in São Paulo (UTC-3): the day is the stage zone's.
        arrival = datetime(2026, 11, 2, 2, 30, tzinfo=timezone.utc)
        answer = deliver(stack.webhook_url, stack.secret, body, arrival=arrival)
        assert answer.status == 200
        assert stored(stack) == [("2026-11-01", body)]

    def test_updates_arriving_within_a_minute_are_one_batch_redeliveries_included(self, empty_raw_bucket):
        stack = empty_raw_bucket
        arrival = datetime(2026, 11, 2, 12, tzinfo=timezone.utc)
        for update_id, seconds in ((1101, 0), (1102, 10), (1101, 30), (1103, 59), (1104, 60)):
            body = telegram_json(message_update(update_id))
            answer = deliver(stack.webhook_url, stack.secret, body, arrival=arrival + timedelta(seconds=seconds))
            assert answer.status == 200

        stack.firehose.flush()
        batches = batches_in(stack.client("s3"), stack.raw_bucket)
        assert [[json.loads(update_bytes(line))["update_id"] for line in lines]
                for _, lines in sorted(batches.items())] == [[1101, 1102, 1101, 1103], [1104]]

    def test_a_wrong_secret_is_the_ingests_401_and_a_missing_one_the_authorizers_and_nothing_is_stored(
        self, empty_raw_bucket
    ):
        stack = empty_raw_bucket
        body = telegram_json(message_update(1002))
        wrong = deliver(stack.webhook_url, "not-the-secret", body)
        assert (wrong.status, wrong.body) == (401, "wrong secret token")
        missing = deliver(stack.webhook_url, None, body)  # API Gateway answers: the function never runs
        assert (missing.status, json.loads(missing.body)) == (401, {"message": "Unauthorized"})
        empty = urllib.request.Request(stack.webhook_url, data=body, headers={SECRET_TOKEN_HEADER: ""})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(empty, timeout=10)
        with refused.value:
            assert (refused.value.code, json.loads(refused.value.read())) == (401, {"message": "Unauthorized"})
        assert stored(stack) == []

    def test_other_chat_is_answered_200_and_not_stored(self, empty_raw_bucket):
        stack = empty_raw_bucket
        assert deliver(stack.webhook_url, stack.secret, telegram_json(message_update(1003, OTHER_CHAT))).status == 200
        assert stored(stack) == []

    def test_only_post_to_the_webhook_route_reaches_the_handler(self, empty_raw_bucket):
        stack = empty_raw_bucket
        body = telegram_json(message_update(1004))
        assert deliver(stack.webhook_url.replace("/webhook", "/other"), stack.secret, body).status == 404
        with socket.create_connection(("127.0.0.1", urlsplit(stack.webhook_url).port)) as connection:
            connection.sendall(b"GET /webhook HTTP/1.0\r\n\r\n")
            assert connection.recv(64).startswith(b"HTTP/1.0 404")
        assert stored(stack) == []

    @pytest.mark.parametrize("header", ["yesterday", "99999999999999999999", "253402300800000", "9" * 5000])
    def test_malformed_or_out_of_range_arrival_header_is_refused_before_the_handler(self, empty_raw_bucket, header):
        stack = empty_raw_bucket
        request_headers = {SECRET_TOKEN_HEADER: stack.secret, ARRIVAL_HEADER: header}
        body = telegram_json(message_update(1005))
        request = urllib.request.Request(stack.webhook_url, data=body, headers=request_headers)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 400 and ARRIVAL_HEADER in refused.value.read().decode()
        assert stored(stack) == []

    def test_a_body_shorter_than_its_content_length_is_refused_before_the_handler(self, empty_raw_bucket):
        stack = empty_raw_bucket
        body = telegram_json(message_update(1007))  # a whole update, but 10 bytes short of what was announced
        head = f"{SECRET_TOKEN_HEADER}: {stack.secret}\r\nContent-Length: {len(body) + 10}\r\n"
        with socket.create_connection(("127.0.0.1", urlsplit(stack.webhook_url).port), timeout=10) as connection:
            connection.sendall(b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n" + head.encode() + b"\r\n" + body)
            connection.shutdown(socket.SHUT_WR)  # the client's side ends early
            answer = read_answer(connection)
        assert answer.startswith(b"HTTP/1.0 400") and f"ended after {len(body)} of".encode() in answer
        assert stored(stack) == []

    # ---- polling getUpdates into the webhook

    def test_polling_delivers_every_update_through_the_webhook_and_confirms_it(self, empty_raw_bucket):
        stack = empty_raw_bucket
        updates = [message_update(5001), message_update(5002, OTHER_CHAT), message_update(5003, text="second")]
        with FakeBotApi(token=TOKEN) as telegram:
            telegram.add_updates(*updates)
            delivered = poll_into_webhook(
                BotApi(TOKEN, telegram.base_url), stack.webhook_url, stack.secret, CONFIG.allowed_updates,
                stop=threading.Event(), max_polls=2, long_poll_seconds=0, report=lambda line: None,
            )
            calls = telegram.calls("getUpdates")
        assert delivered == 3
        allowed = list(CONFIG.allowed_updates)
        assert calls == [
            {"timeout": 0, "allowed_updates": allowed},
            {"timeout": 0, "offset": 5004, "allowed_updates": allowed},
        ]
        bodies = [body for _, body in stored(stack)]
        assert sorted(json.loads(body)["update_id"] for body in bodies) == [5001, 5003]
        assert telegram_json(updates[2]) in bodies

    def test_polling_delivers_an_update_whose_text_holds_a_lone_surrogate(self, empty_raw_bucket):
        stack = empty_raw_bucket
        update = message_update(5101, text="half an emoji: \ud83d")  # Telegram's JSON: "\\ud83d"
        with FakeBotApi(token=TOKEN) as telegram:
            telegram.add_updates(update)
            delivered = poll_into_webhook(
                BotApi(TOKEN, telegram.base_url), stack.webhook_url, stack.secret, CONFIG.allowed_updates,
                stop=threading.Event(), max_polls=1, long_poll_seconds=0, report=lambda line: None,
            )
        [(_, body)] = stored(stack)
        assert delivered == 1 and body == telegram_json(update)
        assert json.loads(body.decode("utf-8")) == update  # valid UTF-8 JSON all the way to the lake

    def test_polling_reports_telegram_errors_and_retries_after_backing_off(self, empty_raw_bucket):
        stack = empty_raw_bucket
        reports: list[str] = []
        with FakeBotApi(token=TOKEN) as telegram:
            telegram.queue(
                "getUpdates", Reply.error("Too Many Requests: retry later", 429), Reply.error("Bad\x1b[2J Gateway", 502)
            )
            telegram.add_updates(message_update(6001))
            delivered = poll_into_webhook(
                BotApi(TOKEN, telegram.base_url), stack.webhook_url, stack.secret, CONFIG.allowed_updates,
                stop=threading.Event(), max_polls=3, long_poll_seconds=0, first_backoff_seconds=0.01,
                report=reports.append,
            )
        assert delivered == 1
        assert reports[0] == "getUpdates failed: Too Many Requests: retry later (error 429); retrying in 0.01 s"
        # What Telegram said is quoted as plain text: an escape sequence in it does nothing to the terminal.
        assert reports[1].startswith("getUpdates failed: Bad\\u001b[2J Gateway (error 502); retrying in 0.02 s")
        assert reports[2] == "update 6001 delivered"
        assert stored_ids(stack) == [6001]

    def test_polling_leaves_an_update_unconfirmed_while_the_webhook_refuses_it(self, empty_raw_bucket):
        stack = empty_raw_bucket
        reports: list[str] = []
        with FakeBotApi(token=TOKEN) as telegram:
            telegram.add_updates(message_update(7001))
            delivered = poll_into_webhook(
                BotApi(TOKEN, telegram.base_url), stack.webhook_url, "wrong-secret", CONFIG.allowed_updates,
                stop=threading.Event(), max_polls=2, long_poll_seconds=0, first_backoff_seconds=0.01,
                report=reports.append,
            )
            offsets = [call.get("offset") for call in telegram.calls("getUpdates")]
        assert delivered == 0 and offsets == [None, None]  # fetched again: never confirmed
        assert reports[0] == "update 7001: the webhook answered 401 'wrong secret token'; fetching it again in 0.01 s"
        assert stored(stack) == []

    def test_polling_stops_with_a_clear_error_when_telegram_rejects_the_token(self, stack):
        with FakeBotApi(token=TOKEN) as telegram:
            bot = BotApi("999:not-this-bot", telegram.base_url)
            with pytest.raises(CommandError, match="Telegram rejected the bot token: getUpdates failed: Unauthorized"):
                poll_into_webhook(bot, stack.webhook_url, stack.secret, CONFIG.allowed_updates, stop=threading.Event(),
                                  long_poll_seconds=0, report=lambda line: None)


@pytest.mark.filterwarnings("ignore:No application metrics to publish")  # the request failed before counting
def test_a_handler_that_raises_answers_500_like_the_http_api(capsys):
    with LocalStack(CONFIG, timezone="Not/A_Zone") as stack:  # the handler's settings refuse the zone
        answer = deliver(stack.webhook_url, stack.secret, telegram_json(message_update(1006)))
        assert answer.status == 500 and json.loads(answer.body) == {"message": "Internal Server Error"}
        assert stored(stack) == []
    assert "TIMEZONE" in capsys.readouterr().err  # the traceback is logged, as Lambda would


# ---- lifecycle


def test_a_second_stack_starts_fresh_and_the_handler_uses_its_secret_and_buckets():
    body = telegram_json(message_update(2001))
    with LocalStack(CONFIG) as first:
        # The ingest's own state lives beside the updates, outside the lake's prefix: it must not disturb them.
        first.client("s3").put_object(Bucket=first.raw_bucket, Key=chat_link_key(-1002, -1001), Body=b"{}")
        assert deliver(first.webhook_url, first.secret, body).status == 200
        assert [body for _, body in stored(first)] == [body]
        first_secret = first.secret
    with LocalStack(CONFIG) as second:
        assert second.secret != first_secret
        assert raw_key_count(second) == 0  # moto's state did not survive the first stack, state objects included
        assert deliver(second.webhook_url, first_secret, body).status == 401
        arrival = datetime(2026, 11, 3, 12, tzinfo=timezone.utc)
        assert deliver(second.webhook_url, second.secret, body, arrival=arrival).status == 200
        assert stored(second) == [("2026-11-03", body)]


def test_stack_stops_every_thread_closes_its_ports_and_restores_the_environment():
    threads_before = set(threading.enumerate())
    environment_before = dict(os.environ)
    with LocalStack(CONFIG) as stack:
        assert deliver(stack.webhook_url, stack.secret, telegram_json(message_update(3001))).status == 200
        ports = [urlsplit(url).port for url in (stack.webhook_url, stack.endpoint_url, stack.firehose_url)]
    assert set(threading.enumerate()) == threads_before
    assert dict(os.environ) == environment_before
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)


STALLED_REQUEST = (
    b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    b'{"update_i'  # 10 of the 100 bytes announced, then nothing
)


def read_answer(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    return b"".join(iter(lambda: connection.recv(4096), b""))


def test_a_client_stalled_mid_body_is_answered_408_and_cannot_keep_the_stack_from_stopping(monkeypatch):
    monkeypatch.setattr(tools.local.stack, "REQUEST_TIMEOUT_SECONDS", 1.0)
    with LocalStack(CONFIG) as stack:
        address = ("127.0.0.1", urlsplit(stack.webhook_url).port)
        with socket.create_connection(address, timeout=10) as stalled:
            stalled.sendall(STALLED_REQUEST)
            assert read_answer(stalled).startswith(b"HTTP/1.0 408")
        assert raw_key_count(stack) == 0
        still_stalled = socket.create_connection(address, timeout=10)
        still_stalled.sendall(STALLED_REQUEST)
        time.sleep(0.2)  # the webhook is now waiting for the rest of the body
        rescue = threading.Timer(10, still_stalled.close)  # without the timeout, only this would let the stop end
        rescue.start()
        stopping = time.monotonic()
    stopped_in = time.monotonic() - stopping
    rescue.cancel()
    still_stalled.close()
    assert stopped_in < 9  # the 1 s request timeout ended it, not the 10 s rescue (generous for a loaded machine)


def test_an_arrival_whose_date_does_not_exist_in_the_stage_zone_is_refused():
    latest = datetime(9999, 12, 30, 23, 59, 59, 999_000, tzinfo=timezone.utc)
    with LocalStack(CONFIG, timezone="Pacific/Kiritimati") as stack:  # UTC+14: a day ahead of UTC after 10:00
        body = telegram_json(message_update(1008))
        refused = deliver(stack.webhook_url, stack.secret, body, arrival=latest + timedelta(days=1))
        assert refused.status == 400 and ARRIVAL_HEADER in refused.body
        assert deliver(stack.webhook_url, stack.secret, body, arrival=latest).status == 200
        assert stored(stack) == [("9999-12-31", body)]


def test_the_stack_writes_what_its_firehose_buffers_while_s3_still_answers(monkeypatch):
    written_at_exit = []
    real_flush = DeliveryStreams.flush

    def flush_then_look(streams: DeliveryStreams) -> None:
        real_flush(streams)
        written_at_exit.append(batches_in(stack.client("s3"), stack.raw_bucket))

    arrival = datetime(2026, 11, 3, 12, tzinfo=timezone.utc)
    with LocalStack(CONFIG) as stack:
        body = telegram_json(message_update(3101))
        assert deliver(stack.webhook_url, stack.secret, body, arrival=arrival).status == 200
        assert batches_in(stack.client("s3"), stack.raw_bucket) == {}  # buffered: its minute is not over
        monkeypatch.setattr(DeliveryStreams, "flush", flush_then_look)
    [batches] = written_at_exit
    assert [update_bytes(line) for lines in batches.values() for line in lines] == [body]


def test_stacks_cannot_overlap_in_one_process():
    with LocalStack(CONFIG) as running:
        with pytest.raises(RuntimeError, match="already running"):
            with LocalStack(CONFIG):
                pass
        assert deliver(running.webhook_url, running.secret, telegram_json(message_update(3501))).status == 200


def test_an_empty_allowlist_is_refused_rather_than_replaced_by_the_stages():
    with pytest.raises(ValueError, match="allowed_chat_ids must name at least one chat"):
        LocalStack(CONFIG, allowed_chat_ids=[])


def test_allowlist_and_zone_can_be_overridden():
    with LocalStack(CONFIG, allowed_chat_ids=[OTHER_CHAT], timezone="Asia/Tokyo") as stack:
        arrival = datetime(2026, 11, 1, 16, 0, tzinfo=timezone.utc)  # Nov 2, 01:00 in Tokyo
        for update in (message_update(4001, OTHER_CHAT), message_update(4002, ALLOWED_CHAT)):
            assert deliver(stack.webhook_url, stack.secret, telegram_json(update), arrival=arrival).status == 200
        assert [(day, json.loads(body)["update_id"]) for day, body in stored(stack)] == [("2026-11-02", 4001)]


# ---- `python -m tools local up`

# Waits on the subprocess are bounded by these, so a broken command fails the test instead of hanging it:
# hang guards, not speed targets (a loaded machine may take many seconds to start or stop Python and moto).
START_SECONDS = 60
STOP_SECONDS = 120


class LocalUp:
    """`python -m tools local up ARGS` in a subprocess; its output (stdout and stderr) read in the background."""

    def __init__(self, *args: str, environment: dict[str, str]):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tools", "local", "up", "--stage", "dev", *args],
            cwd=PROJECT_ROOT, env={**environment, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="local-up-output")
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)  # the process closed its output

    def read_until(self, last: Callable[[str], bool]) -> list[str]:
        """The lines printed up to the first one `last` accepts (failing after START_SECONDS)."""
        deadline = time.monotonic() + START_SECONDS
        read: list[str] = []
        while True:
            try:
                line = self._lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                pytest.fail(f"local up did not print the line within {START_SECONDS} s:\n" + "\n".join(self.output))
            assert line is not None, "local up ended early:\n" + "\n".join(self.output)
            self.output.append(line)
            read.append(line)
            if last(line):
                return read

    def banner(self) -> dict[str, str]:
        """The stack's description, by label: `webhook URL`, `secret token`, `S3 endpoint`, `raw bucket`, ..."""
        described = {}
        for line in self.read_until(lambda line: line.strip().startswith("time zone")):
            label, _, value = line.strip().partition("  ")
            described[label] = value.split()[0] if value.strip() else ""
        return described

    def stop(self, signal_number: int, within: float = STOP_SECONDS) -> int:
        """Send the signal; the exit code, which must come within `within` seconds (the rest is read into
        `output`)."""
        self.process.send_signal(signal_number)
        code = self.process.wait(timeout=within)
        self._reader.join()
        self.output.extend(iter(self._lines.get_nowait, None))
        return code

    def __enter__(self) -> LocalUp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join()
        self.process.stdout.close()


def update_ids_at(described: dict[str, str]) -> list[int]:
    """The update ids of every line in the raw zone's batches, read through the S3 endpoint `local up` printed."""
    s3 = boto3.client("s3", endpoint_url=described["S3 endpoint"])
    try:
        batches = batches_in(s3, described["raw bucket"])
    finally:
        s3.close()
    return sorted(json.loads(update_bytes(line))["update_id"] for lines in batches.values() for line in lines)


def wait_for(found: Callable[[], list]) -> list:
    """What `found` returns once it is not empty, checked every 50 ms for up to START_SECONDS."""
    deadline = time.monotonic() + START_SECONDS
    while not (result := found()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return result


def test_local_up_serves_until_interrupted_batches_on_the_wall_clock_and_prints_how_to_reach_it():
    """Serving is not a phase that ends: after a delivery it still runs and serves the next, and its Firehose
    writes each batch once the interval has passed on the wall clock; only the interrupt ends it, and then
    cleanly (exit code 0, its closing line, no traceback)."""
    environment = {name: value for name, value in os.environ.items() if name != TOKEN_ENV}
    with LocalUp("--batch-seconds", "1", environment=environment) as local_up:
        described = local_up.banner()
        assert described["Firehose"].startswith("http://127.0.0.1:")
        for update_id in (8001, 8002):
            body = telegram_json(message_update(update_id))
            assert deliver(described["webhook URL"], described["secret token"], body).status == 200
            assert local_up.process.poll() is None, "local up ended without an interrupt"
        assert wait_for(lambda: update_ids_at(described) if len(update_ids_at(described)) == 2 else []) == [8001, 8002]
        assert local_up.stop(signal.SIGINT) == 0, "\n".join(local_up.output)
    assert "local stack stopped" in local_up.output
    assert not any("Traceback" in line for line in local_up.output), "\n".join(local_up.output)


def test_local_up_poll_feeds_the_bots_updates_through_the_webhook_and_stops_on_sigterm_mid_poll():
    with FakeBotApi(token=TOKEN) as telegram:
        telegram.add_updates(message_update(9001))
        # Telegram never answers the next long poll: waiting it out would take the client's whole read timeout
        # (longer than LONG_POLL_SECONDS), so an exit within LONG_POLL_SECONDS proves the signal ended the wait.
        telegram.hold_long_polls()
        environment = {**os.environ, TOKEN_ENV: TOKEN, API_BASE_ENV: telegram.base_url}
        with LocalUp("--poll", "--batch-seconds", "1", environment=environment) as local_up:
            described = local_up.banner()
            local_up.read_until(lambda line: line == "update 9001 delivered")
            assert wait_for(lambda: update_ids_at(described)) == [9001]
            confirming = wait_for(lambda: [call for call in telegram.calls("getUpdates") if call.get("offset") == 9002])
            assert confirming[0]["timeout"] == LONG_POLL_SECONDS  # the stack is now waiting in a long poll
            assert local_up.stop(signal.SIGTERM, within=LONG_POLL_SECONDS) == 0, "\n".join(local_up.output)
    # The types `webhook set` would ask for: the stage's, plus those its saved queries declare.
    asked, _ = requested_updates(CONFIG.allowed_updates, load_queries(CONFIG.timezone, CONFIG.glue_database))
    assert set(CONFIG.allowed_updates) < set(asked)
    assert f"polling getUpdates at {telegram.base_url} for {', '.join(asked)} ..." in local_up.output
    assert {call.get("allowed_updates") and tuple(call["allowed_updates"]) for call in telegram.calls("getUpdates")} == {asked}
    assert "local stack stopped" in local_up.output


@pytest.mark.parametrize("seconds", ["0", "901", "minute"])
def test_local_up_refuses_a_batch_interval_firehose_could_not_have(seconds):
    finished = subprocess.run(
        [sys.executable, "-m", "tools", "local", "up", "--batch-seconds", seconds],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert finished.returncode == 2
    assert "argument --batch-seconds: must be an integer from 1 to 900 (Firehose's longest interval)" in finished.stderr


def test_local_up_poll_needs_the_bot_token():
    environment = {name: value for name, value in os.environ.items() if name != "TELEGRAM_BOT_TOKEN"}
    finished = subprocess.run(
        [sys.executable, "-m", "tools", "local", "up", "--poll"],
        cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=60,
    )
    assert finished.returncode == 1
    assert "error: set TELEGRAM_BOT_TOKEN" in finished.stderr

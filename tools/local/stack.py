"""The local stack: the ingestion path of the AWS stacks on 127.0.0.1, with no AWS account and no Docker.

    AWS                                          local
    S3 (raw, enriched) + Secrets Manager     ->  moto's ThreadedMotoServer (AWS_ENDPOINT_URL)
    Firehose raw delivery stream             ->  tools/local/firehose.py (AWS_ENDPOINT_URL_FIREHOSE), batching
                                                 into moto's S3 as the stage's stream does
    API Gateway HTTP API (POST /webhook),    ->  a ThreadingHTTPServer building the same payload 2.0 event, and
      its authorizer on the secret header        answering 401 itself to a request without the header
    ingest Lambda                            ->  the same handler code, one request at a time (one container)

`LocalStack` is a context manager: it starts the servers on free ports, creates the buckets and a fresh
webhook secret, points the handlers' environment at them, and on exit writes what the local Firehose still
buffers, restores the environment and closes everything it started. `python -m tools local up` keeps one
running (and `--poll` feeds it a real bot's updates through `getUpdates`); the demo and the end-to-end tests
use it in-process.

One local-only addition: a request may carry `X-Local-Request-Time-Epoch` (milliseconds), which becomes
the event's `requestContext.timeEpoch` instead of the real clock. The demo uses it to deliver a synthetic
week "as it arrived"; the header is not forwarded to the handler.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import re
import secrets
import signal
import sys
import threading
import traceback
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from analytics import requested_updates, stage_queries
from lambdas.ingest.webhook import EPOCH, SECRET_TOKEN_HEADER, WEBHOOK_PATH, epoch_milliseconds
from stacks.config import MAX_RAW_BATCH_SECONDS, StageConfig
from tools.cli import CommandError, add_stage_argument, count_argument, plain, stage_config
from tools.local.firehose import LocalFirehose
from tools.telegram import BotApi, TelegramError, add_api_base_argument, bot_api_from_env

HOST = "127.0.0.1"
ARRIVAL_HEADER = "X-Local-Request-Time-Epoch"
DEFAULT_REGION = "us-east-1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
# What the HTTP API answers for a method or path it does not route, when its authorizer finds no secret-token header
# (without invoking anything), and when the Lambda raises.
MISSING_ROUTE = (404, {"message": "Not Found"})
UNAUTHORIZED = (401, {"message": "Unauthorized"})
LAMBDA_FAILED = (500, {"message": "Internal Server Error"})
LONG_POLL_SECONDS = 30
MAX_BACKOFF_SECONDS = 60.0
# How long the webhook waits for a client that stopped sending mid-request (it then answers 408), so a
# stalled client can neither hold a handler thread forever nor keep the stack from stopping.
REQUEST_TIMEOUT_SECONDS = 10.0
REQUEST_TIMEOUT = (408, {"message": "Request Timeout"})
# The latest arrival the header may set: a day before datetime's end, so its date exists in every zone.
_LAST_ARRIVAL_MS = epoch_milliseconds(datetime.max.replace(tzinfo=timezone.utc) - timedelta(days=1))
# moto's state, the environment and the ingest handler's caches are all process-wide: one stack at a time.
_ONE_STACK = threading.Lock()
# A UTF-16 surrogate on its own: a code point JSON can carry escaped but UTF-8 cannot encode.
_SURROGATE = re.compile("[\ud800-\udfff]")
# The local servers are on 127.0.0.1: never go through an HTTP proxy from the environment to reach them.
_LOCAL_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LocalStack:
    """moto S3 + Secrets Manager, the local Firehose and the webhook endpoint on 127.0.0.1, wired to the real ingest
    handler.

    The allowlist and time zone come from the stage's configuration unless overridden (an allowlist, like
    the stage's, names at least one chat). The local Firehose batches every `batch_interval` (the stage's
    `raw_batch_seconds` unless given) of the records' own arrivals, and with `batch_by_wall_clock` of real time too
    (`local up`).
    Attributes are valid inside the `with` block: `endpoint_url`, `firehose` (its `flush()` writes every
    buffered batch now), `webhook_url`, `secret`, `secret_arn`, `raw_bucket`, `enriched_bucket`,
    `delivery_stream`.
    """

    def __init__(
        self,
        config: StageConfig,
        *,
        allowed_chat_ids: Sequence[int] | None = None,
        timezone: str | None = None,
        batch_interval: timedelta | None = None,
        batch_by_wall_clock: bool = False,
    ):
        if allowed_chat_ids is not None and not allowed_chat_ids:
            raise ValueError("allowed_chat_ids must name at least one chat (None keeps the stage's allowlist)")
        self.config = config
        self.allowed_chat_ids = tuple(config.allowed_chat_ids if allowed_chat_ids is None else allowed_chat_ids)
        self.timezone = config.timezone if timezone is None else timezone
        self.region = config.region or DEFAULT_REGION
        self.raw_bucket = f"telegram-lake-{config.stage}-raw"
        self.enriched_bucket = f"telegram-lake-{config.stage}-enriched"
        self.delivery_stream = config.raw_stream_name
        self.batch_interval = timedelta(seconds=config.raw_batch_seconds) if batch_interval is None else batch_interval
        self.batch_by_wall_clock = batch_by_wall_clock
        self.firehose: LocalFirehose | None = None
        # Telegram's secret_token alphabet is A-Z a-z 0-9 _ -: exactly URL-safe base64. 32 bytes -> 43 characters.
        self.secret = secrets.token_urlsafe(32)
        self.secret_arn = ""
        self.endpoint_url = ""
        self.firehose_url = ""
        self.webhook_url = ""
        self._resources = ExitStack()
        self._clients: list[Any] = []

    def __enter__(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self._resources.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._resources.close()

    def client(self, service: str) -> Any:
        """A boto3 client for the local endpoint, closed when the stack stops (usable before the environment is set)."""
        import boto3

        session = boto3.session.Session(
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
            region_name=self.region,
        )
        client = session.client(service, endpoint_url=self.endpoint_url)
        self._clients.append(client)
        return client

    @property
    def environment(self) -> dict[str, str]:
        """What the handlers (and `etl run --local`, `query --local`) read: the AWS ones and the functions' own."""
        return {
            **DUMMY_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL_FIREHOSE": self.firehose_url,
            "AWS_DEFAULT_REGION": self.region,
            "RAW_BUCKET": self.raw_bucket,
            "DELIVERY_STREAM": self.delivery_stream,
            "ENRICHED_BUCKET": self.enriched_bucket,
            "WEBHOOK_SECRET_ARN": self.secret_arn,
            "ALLOWED_CHAT_IDS": ",".join(str(chat_id) for chat_id in self.allowed_chat_ids),
            "TIMEZONE": self.timezone,
            "READ_CONCURRENCY": str(self.config.etl_read_concurrency),
        }

    def _start(self) -> None:
        from lambdas.ingest import handler as ingest

        resources = self._resources
        if not _ONE_STACK.acquire(blocking=False):
            raise RuntimeError("a LocalStack is already running in this process: moto's state, the environment "
                               "and the ingest handler's caches are process-wide, so stacks cannot overlap")
        resources.callback(_ONE_STACK.release)
        # moto's werkzeug logs every request (412s of redeliveries included) on stderr: errors only.
        resources.enter_context(_logger_level("werkzeug", logging.WARNING))
        moto = _moto_server()
        moto.start()
        resources.callback(moto.stop)
        host, port = moto.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        # moto keeps its state in this process: wipe it on exit, so the next stack starts empty.
        resources.callback(_post, f"{self.endpoint_url}/moto-api/reset")
        resources.callback(self._close_clients)

        self._create_resources()
        # Stopped before moto (the exit stack unwinds in reverse): its last batches go to S3 while S3 is up.
        self.firehose = resources.enter_context(LocalFirehose(
            self.client("s3"), {self.delivery_stream: self.raw_bucket}, interval=self.batch_interval,
            wall_clock=self.batch_by_wall_clock,
        ))
        self.firehose_url = self.firehose.endpoint_url
        resources.enter_context(_environment({**self.environment, "AWS_PROFILE": None}))
        # The handler caches settings, clients and the secret per container: this stack is a new container,
        # and nothing cached may outlive it (its endpoint is about to disappear).
        ingest.reset_container()
        resources.callback(ingest.reset_container)

        webhook = _WebhookServer(_IngestContainer(ingest), timeout=REQUEST_TIMEOUT_SECONDS)
        webhook.start()
        resources.callback(webhook.stop)
        self.webhook_url = f"http://{HOST}:{webhook.port}{WEBHOOK_PATH}"

    def _create_resources(self) -> None:
        s3 = self.client("s3")
        for bucket in (self.raw_bucket, self.enriched_bucket):
            s3.create_bucket(Bucket=bucket)
        secret = self.client("secretsmanager").create_secret(
            Name=f"{self.config.stack_name('Ingestion')}/webhook-secret", SecretString=self.secret
        )
        self.secret_arn = secret["ARN"]

    def _close_clients(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()


def _moto_server() -> Any:
    """moto's ThreadedMotoServer on a free port of 127.0.0.1, whose `stop` also closes the listening socket."""
    from moto.server import ThreadedMotoServer

    class ClosingMotoServer(ThreadedMotoServer):
        def stop(self) -> None:
            super().stop()
            self._server.server_close()  # moto's own stop leaves the socket open

    return ClosingMotoServer(ip_address=HOST, port=0, verbose=False)


class _IngestContainer:
    """One warm ingest Lambda container: requests run one at a time, as Lambda gives a container one event.

    The handler takes the arrival instant from the event's `timeEpoch`, as on AWS: it decides the update's day.
    """

    def __init__(self, ingest: Any):
        self._ingest = ingest
        self._lock = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return self._ingest.handler(event, None)


def http_api_event(
    *,
    method: str,
    path: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    received_at: datetime,
    source_ip: str,
) -> dict[str, Any]:
    """The API Gateway HTTP API event (payload format 2.0) for one request, as the deployed API builds it.

    Header names are lower-cased, and the values of a header sent more than once are joined by commas; a body
    that is not UTF-8 text is passed base64-encoded, as API Gateway does for binary payloads, and an empty one
    not at all.
    """
    joined: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    epoch_ms = epoch_milliseconds(received_at)
    route = f"{method} {WEBHOOK_PATH}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": "",
        "headers": joined,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": joined.get("host", HOST),
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                     "userAgent": joined.get("user-agent", "")},
            "requestId": str(uuid.uuid4()),
            "routeKey": route,
            "stage": "$default",
            "time": f"{received_at.astimezone(timezone.utc):%d/%b/%Y:%H:%M:%S} +0000",
            "timeEpoch": epoch_ms,
        },
        "isBase64Encoded": False,
    }
    if body:
        try:
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode("ascii"), True
    return event


def has_identity(headers: Mapping[str, str]) -> bool:
    """Whether the authorizer's identity source, the secret-token header, is there and not empty: API Gateway answers
    401 itself to a request without it, invoking neither the authorizer nor the function."""
    return bool(headers.get(SECRET_TOKEN_HEADER.lower()))


class _WebhookServer(ThreadingHTTPServer):
    """The HTTP API's one route, POST /webhook, with its authorizer's 401 and the Lambda integration in front of
    the container.

    Handler threads are joined on close (`daemon_threads = False`), so stopping leaves no thread behind;
    each connection's reads time out after `timeout` seconds, so that join cannot wait on a stalled client.
    """

    daemon_threads = False

    def __init__(self, container: _IngestContainer, timeout: float):
        super().__init__((HOST, 0), _WebhookRequestHandler)
        self.container = container
        self.request_timeout = timeout
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="local-webhook")

    @property
    def port(self) -> int:
        return self.server_address[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join()


class _WebhookRequestHandler(BaseHTTPRequestHandler):
    server: _WebhookServer

    def setup(self) -> None:
        self.timeout = self.server.request_timeout  # StreamRequestHandler applies it to the connection
        super().setup()

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != WEBHOOK_PATH:
            self._answer(*MISSING_ROUTE)
            return
        length = self.headers.get("Content-Length")
        if length is None or not (length.isascii() and length.isdigit()):
            self._answer(411, {"message": "Content-Length required"})
            return
        try:
            body = self.rfile.read(int(length))
        except TimeoutError:
            self._answer(*REQUEST_TIMEOUT)
            return
        if len(body) < int(length):  # the client ended its side early: API Gateway never passes a cut body on
            self._answer(400, {"message": f"the body ended after {len(body)} of {length} bytes"})
            return
        try:
            received_at = _arrival(self.headers.get(ARRIVAL_HEADER))
        except ValueError as error:
            self._answer(400, {"message": str(error)})
            return
        event = http_api_event(
            method="POST",
            path=self.path.split("?", 1)[0],
            headers=[(name, value) for name, value in self.headers.items() if name.lower() != ARRIVAL_HEADER.lower()],
            body=body,
            received_at=received_at,
            source_ip=self.client_address[0],
        )
        if not has_identity(event["headers"]):
            self._answer(*UNAUTHORIZED)
            return
        try:
            response = self.server.container.invoke(event)
        except Exception:  # as Lambda + API Gateway do: the traceback goes to the log, the caller gets a 500
            traceback.print_exc(file=sys.stderr)
            self._answer(*LAMBDA_FAILED)
            return
        self._send(response)

    def _missing_route(self) -> None:
        self._answer(*MISSING_ROUTE)

    do_GET = do_PUT = do_PATCH = do_DELETE = _missing_route

    def _answer(self, status: int, message: Mapping[str, str]) -> None:
        self._send({"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(message)})

    def _send(self, response: Mapping[str, Any]) -> None:
        """Write a Lambda response (payload 2.0: `statusCode`, `headers`, `body`, `isBase64Encoded`) as HTTP."""
        body = response.get("body") or ""
        payload = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode("utf-8")
        self.send_response(response["statusCode"])
        for name, value in (response.get("headers") or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the ingest handler already writes one log line per request."""


def _arrival(header: str | None) -> datetime:
    """The arrival instant a request asks for; exact to the millisecond (no float on the way)."""
    if header is None:
        return datetime.now(timezone.utc)
    digits = header.isascii() and header.isdigit() and len(header) <= len(str(_LAST_ARRIVAL_MS))
    if not (digits and int(header) <= _LAST_ARRIVAL_MS):
        raise ValueError(f"{ARRIVAL_HEADER} must be Unix epoch milliseconds, 0 to {_LAST_ARRIVAL_MS}, got {header!r}")
    return EPOCH + timedelta(milliseconds=int(header))


# ---- clients of the local webhook


@dataclass(frozen=True)
class Delivery:
    """The webhook's answer to one POST."""

    status: int
    body: str


def telegram_json(update: Mapping[str, Any]) -> bytes:
    """An Update as a webhook body: compact UTF-8 JSON.

    A text may hold a lone surrogate (Telegram passes `"\\ud800"` through as sent), which UTF-8 cannot
    encode: it stays a `\\uXXXX` escape, as in Telegram's own JSON, so the body is still valid UTF-8.
    """
    text = json.dumps(update, ensure_ascii=False, separators=(",", ":"))
    return _SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text).encode("utf-8")


def deliver(webhook_url: str, secret: str | None, body: bytes, *, arrival: datetime | None = None) -> Delivery:
    """POST one update as Telegram does (JSON body, secret-token header); `arrival` sets the request time."""
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_TOKEN_HEADER] = secret
    if arrival is not None:
        headers[ARRIVAL_HEADER] = str(epoch_milliseconds(arrival))
    request = urllib.request.Request(webhook_url, data=body, headers=headers, method="POST")
    try:
        with _LOCAL_HTTP.open(request, timeout=30) as response:
            return Delivery(response.status, response.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as error:
        with error:
            return Delivery(error.code, error.read().decode("utf-8", "replace"))


def poll_into_webhook(
    bot: BotApi,
    webhook_url: str,
    secret: str,
    allowed_updates: Sequence[str],
    *,
    stop: threading.Event,
    max_polls: int | None = None,
    long_poll_seconds: int = LONG_POLL_SECONDS,
    first_backoff_seconds: float = 1.0,
    report: Callable[[str], None] = print,
) -> int:
    """Long-poll `getUpdates` and POST each update to the local webhook; return how many were delivered.

    Telegram's own contract: an update is confirmed (offset = its update_id + 1) only once the webhook
    answered 200, so a failed delivery is fetched and tried again. Failures are reported and back off
    exponentially from `first_backoff_seconds` (or as long as Telegram's `retry_after` says), what Telegram
    or the webhook said quoted as plain text; a rejected token ends polling with a CommandError.
    """
    offset: int | None = None
    delivered = polls = failures = 0
    while not stop.is_set() and (max_polls is None or polls < max_polls):
        polls += 1
        try:
            for update in bot.get_updates(offset=offset, timeout=long_poll_seconds, allowed_updates=allowed_updates):
                answer = deliver(webhook_url, secret, telegram_json(update))
                if answer.status != 200:
                    raise _NotDelivered(
                        f"update {update['update_id']}: the webhook answered {answer.status} {answer.body!r}"
                    )
                offset = update["update_id"] + 1
                delivered += 1
                report(f"update {update['update_id']} delivered")
        except TelegramError as error:
            if error.error_code in (401, 404):
                raise CommandError(f"Telegram rejected the bot token: {error}") from None
            failures += 1
            delay = error.retry_after or _backoff(first_backoff_seconds, failures)
            hint = " (this bot has a webhook: run `python -m tools webhook delete`)" if error.error_code == 409 else ""
            report(f"{plain(error)}{hint}; retrying in {delay:g} s")  # it names the method: `getUpdates failed: ...`
        except _NotDelivered as error:
            failures += 1
            delay = _backoff(first_backoff_seconds, failures)
            report(f"{plain(error)}; fetching it again in {delay:g} s")
        else:
            failures = 0
            continue
        stop.wait(delay)
    return delivered


class _NotDelivered(Exception):
    """The local webhook did not answer 200: the update stays unconfirmed, so getUpdates returns it again."""


def _backoff(first: float, failures: int) -> float:
    return min(first * 2 ** (failures - 1), MAX_BACKOFF_SECONDS)


# ---- process-wide state the stack borrows, and gives back


@contextmanager
def _environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for None, unset) environment variables, restoring the previous values on exit."""
    previous = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            _set_env(name, value)
        yield
    finally:
        for name, value in previous.items():
            _set_env(name, value)


def _set_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@contextmanager
def _logger_level(name: str, level: int) -> Iterator[None]:
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _post(url: str) -> None:
    with _LOCAL_HTTP.open(urllib.request.Request(url, data=b"", method="POST"), timeout=10):
        pass


# ---- `python -m tools local up`


def register(subparsers: argparse._SubParsersAction) -> None:
    local = subparsers.add_parser("local", help="run the ingestion path locally (moto S3 + webhook endpoint)")
    commands = local.add_subparsers(dest="local_command", required=True)
    up = commands.add_parser(
        "up",
        help="start the local stack and keep it running until Ctrl-C",
        description="Start moto (S3, Secrets Manager), the local Firehose and the webhook endpoint on 127.0.0.1 and "
        "print how to reach them. With --poll, long-poll the bot's getUpdates (TELEGRAM_BOT_TOKEN) into the webhook.",
    )
    add_stage_argument(up)
    up.add_argument(
        "--batch-seconds", type=count_argument(MAX_RAW_BATCH_SECONDS, " (Firehose's longest interval)"),
        help="how long the local Firehose buffers a day's updates before writing them as one batch (default: the "
        f"stage's raw_batch_seconds; at most {MAX_RAW_BATCH_SECONDS})",
    )
    up.add_argument(
        "--poll", action="store_true", help="feed the bot's updates through getUpdates (needs TELEGRAM_BOT_TOKEN)"
    )
    add_api_base_argument(up)
    up.set_defaults(func=up_command)


def up_command(args: argparse.Namespace) -> int:
    config = stage_config(args)
    bot = bot_api_from_env(args.api_base) if args.poll else None  # a missing token fails before anything starts
    allowed_updates: tuple[str, ...] = ()
    if bot is not None:  # what `webhook set` asks for: the stage's types and those its saved queries need
        queries = stage_queries(config)  # a broken one fails before anything starts
        allowed_updates, _ = requested_updates(config.allowed_updates, queries)
    # `kill` (SIGTERM) stops the stack as cleanly as Ctrl-C: both end the wait below with KeyboardInterrupt.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    # Never set: that KeyboardInterrupt is what stops the stack, whether it waits or is in a long poll.
    stop = threading.Event()
    try:
        interval = None if args.batch_seconds is None else timedelta(seconds=args.batch_seconds)
        with LocalStack(config, batch_interval=interval, batch_by_wall_clock=True) as stack:
            print(describe(stack), flush=True)
            if bot is None:
                stop.wait()
            else:
                print(f"polling getUpdates at {bot.api_base} for {', '.join(allowed_updates)} ...", flush=True)
                poll_into_webhook(bot, stack.webhook_url, stack.secret, allowed_updates, stop=stop,
                                  report=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        print("\nlocal stack stopped", flush=True)
    return 0


def describe(stack: LocalStack) -> str:
    """What a developer needs to talk to the stack, and the environment other commands need to reach it."""
    exports = " ".join(f"{name}={value}" for name, value in stack.environment.items() if name != "WEBHOOK_SECRET_ARN")
    batch_seconds = stack.batch_interval / timedelta(seconds=1)
    return "\n".join([
        f"local stack for stage {stack.config.stage} is up (Ctrl-C to stop)",
        f"  webhook URL      {stack.webhook_url}",
        f"  secret token     {stack.secret}   (header {SECRET_TOKEN_HEADER})",
        f"  S3 endpoint      {stack.endpoint_url}",
        f"  Firehose         {stack.firehose_url}   (stream {stack.delivery_stream}: a gzip batch per day's folder "
        f"every {batch_seconds:g} s, and at Ctrl-C)",
        f"  raw bucket       {stack.raw_bucket}",
        f"  enriched bucket  {stack.enriched_bucket}",
        f"  allowed chats    {', '.join(str(chat_id) for chat_id in stack.allowed_chat_ids)}",
        f"  time zone        {stack.timezone}",
        "in another shell, for `python -m tools etl run --local`, `query --local` and `chats --local`:",
        f"  export {exports}",
    ])


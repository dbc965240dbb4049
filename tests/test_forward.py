"""Beside an existing bot: its backend forwards each update to the stage (docs/operating.md, "Beside an existing
bot"), and what the forward stores is what a direct delivery stores.

The forwarder is the documentation's own standard-library example, run as written. The raw zone is read back as
the ETL reads it (each object by its kind: a single update, or a batch of envelope lines whose `update_bytes` are
the update as it arrived), not by object keys, so the proof holds for either layout of the raw zone.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.error
from collections.abc import Callable, Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lambdas.common.envelope import update_bytes
from lambdas.common.layout import PARTITION_KEY, PREFIX, raw_object_kind
from lambdas.etl.day import Copy, copies_of, object_lines
from lambdas.ingest.webhook import SECRET_TOKEN_HEADER
from stacks.config import PROJECT_ROOT, load_from_cdk_json
from tools.local.stack import LocalStack, deliver

CONFIG = load_from_cdk_json("dev")
CHAT_ID = -1001234500001
OPERATING = PROJECT_ROOT / "docs" / "operating.md"


def update(update_id: int) -> bytes:
    """An update as Telegram writes it: `/` escaped, non-ASCII escaped, a field newer than any library, a float
    with a trailing zero. Parsing and dumping it again gives other bytes (see the first test)."""
    return (
        '{"update_id":%d,"message":{"message_id":%d,"from":{"id":42,"is_bot":false,"first_name":"Ana"},'
        '"chat":{"id":%d,"title":"Lake","type":"supergroup"},"date":1796680000,'
        '"text":"\\/start@SomeBot caf\\u00e9 \\ud83d\\ude00",'
        '"entities":[{"offset":0,"length":14,"type":"bot_command"}],"a_field_from_the_future":{"ratio":1.50}}}'
        % (update_id, update_id, CHAT_ID)
    ).encode()


def documented_forward(url: str, secret: str, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """`forward` from the first Python example of the documentation's section, with the stage's URL and secret."""
    text = OPERATING.read_text(encoding="utf-8")
    section = text[text.index("### Beside an existing bot"):]
    source = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    monkeypatch.setenv("LAKE_WEBHOOK_URL", url)
    monkeypatch.setenv("LAKE_WEBHOOK_SECRET", secret)
    namespace: dict = {}
    exec(compile(source, str(OPERATING), "exec"), namespace)
    return namespace["forward"]


def stored_updates(stack: LocalStack) -> dict[int, tuple[str, bytes]]:
    """Each update the raw zone holds, by update id: the kind of object it is in and its bytes as stored, read
    as the ETL reads each object (every copy must be one the ETL compacts)."""
    s3 = stack.client("s3")
    stored = {}
    for item in s3.list_objects_v2(Bucket=stack.raw_bucket, Prefix=PREFIX).get("Contents", []):
        key = item["Key"]
        day = date.fromisoformat(re.search(rf"{PARTITION_KEY}=([0-9-]+)/", key).group(1))
        kind = raw_object_kind(key, day)
        body = s3.get_object(Bucket=stack.raw_bucket, Key=key)["Body"].read()
        copies = list(copies_of(key, kind, body, day))
        assert copies and all(isinstance(copy, Copy) for copy in copies), copies
        lines = object_lines(key, body)
        as_stored = lines if kind == "single" else [update_bytes(line) for line in lines]
        for copy, stored_bytes in zip(copies, as_stored, strict=True):
            assert json.loads(stored_bytes) == copy.update  # the bytes are the update the ETL reads
            stored.setdefault(copy.update_id, (kind, stored_bytes))
    return stored


def test_a_forward_is_stored_byte_for_byte_as_a_direct_delivery(monkeypatch):
    direct, forwarded = update(900_001), update(900_002)
    assert json.dumps(json.loads(forwarded), separators=(",", ":")).encode() != forwarded  # why bytes, not objects

    with LocalStack(CONFIG, allowed_chat_ids=[CHAT_ID]) as stack:
        assert deliver(stack.webhook_url, stack.secret, direct).status == 200  # as Telegram delivers
        documented_forward(stack.webhook_url, stack.secret, monkeypatch)(forwarded)  # as a bot's backend forwards
        stack.firehose.flush()  # the batch the local Firehose holds until its minute ends
        stored = stored_updates(stack)

    assert stored[900_001][1] == direct
    assert stored[900_002][1] == forwarded
    assert stored[900_001][0] == stored[900_002][0]  # the same kind of object, whichever way it came


class _Stage(ThreadingHTTPServer):
    """A stand-in for the stage that answers each POST with the next status of a script, recording what came."""

    daemon_threads = True

    def __init__(self, statuses: list[int]):
        super().__init__(("127.0.0.1", 0), _Answer)
        self.statuses = statuses
        self.received: list[tuple[bytes, str | None, str | None]] = []


class _Answer(BaseHTTPRequestHandler):
    server: _Stage

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((body, self.headers.get(SECRET_TOKEN_HEADER), self.headers.get("Content-Type")))
        self.send_response(self.server.statuses.pop(0))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def scripted_stage() -> Iterator[Callable[[list[int]], _Stage]]:
    servers = []

    def start(statuses: list[int]) -> _Stage:
        server = _Stage(statuses)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_forwarder_retries_until_the_stage_answers_2xx_and_gives_up_at_once_on_a_refusal(
    scripted_stage, monkeypatch
):
    waits = []
    monkeypatch.setattr("time.sleep", waits.append)
    body = update(900_003)

    busy = scripted_stage([503, 429, 502, 200])
    documented_forward(f"http://127.0.0.1:{busy.server_port}/webhook", "s3cret", monkeypatch)(body)
    assert busy.received == [(body, "s3cret", "application/json")] * 4 and waits == [1, 2, 4]

    refusing = scripted_stage([401])
    with pytest.raises(urllib.error.HTTPError, match="401"):
        documented_forward(f"http://127.0.0.1:{refusing.server_port}/webhook", "stale", monkeypatch)(body)
    assert len(refusing.received) == 1

    down = scripted_stage([503] * 3)
    with pytest.raises(RuntimeError, match="did not take the update after 3 attempts"):
        documented_forward(f"http://127.0.0.1:{down.server_port}/webhook", "s3cret", monkeypatch)(body, attempts=3)

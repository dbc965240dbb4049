"""A fake Telegram Bot API on 127.0.0.1: records every call and answers like Telegram, or as a test programs.

Out of the box it behaves like the real Bot API for the methods this project calls: setWebhook,
deleteWebhook and getWebhookInfo share one webhook state; getUpdates serves the updates a test added
with Telegram's offset rules and long polling, and refuses (409) while a webhook is set; other methods
answer 404. A test overrides any method with `reply(method, Reply...)` (every call) or
`queue(method, Reply..., Reply...)` (the next calls, in order); instead of a Reply, a function of the
request's path (as the server received it) builds the answer, e.g. one that echoes the URL.

    with FakeBotApi(token=TOKEN) as telegram:
        telegram.add_updates({"update_id": 1, "message": {...}})
        BotApi(TOKEN, telegram.base_url).get_updates(offset=0, timeout=1)
        assert telegram.calls("getUpdates") == [{"offset": 0, "timeout": 1}]
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

_PATH = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>\w+)$")
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: status and raw body (build JSON ones with `ok` / `error`)."""

    status: int
    body: bytes
    content_type: str = "application/json"

    @classmethod
    def ok(cls, result: Any = True, description: str | None = None) -> Reply:
        answer: dict[str, Any] = {"ok": True, "result": result}
        if description is not None:
            answer["description"] = description
        return cls(200, json.dumps(answer).encode())

    @classmethod
    def error(cls, description: str, error_code: int = 400, retry_after: int | None = None) -> Reply:
        answer: dict[str, Any] = {"ok": False, "error_code": error_code, "description": description}
        if retry_after is not None:
            answer["parameters"] = {"retry_after": retry_after}
        return cls(error_code, json.dumps(answer).encode())


# What a test programs for a method: a fixed answer, or one built from the request's path.
Programmed = Reply | Callable[[str], Reply]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    token: str
    body: Any  # the parsed JSON body: {} when empty, None when not JSON
    http_method: str
    content_type: str | None


class FakeBotApi:
    """A context manager serving the fake on a free port; `base_url` is what the client's `api_base` takes."""

    def __init__(self, token: str | None = None):
        self.token = token  # when set, any other token is answered 401 Unauthorized, as Telegram does
        self._changed = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._replies: dict[str, Programmed] = {}
        self._queued: dict[str, list[Programmed]] = {}
        self._pending_updates: list[dict[str, Any]] = []
        self._webhook: dict[str, Any] = {}
        self._closing = False
        self._holding = False  # long polls wait for an update (or the fake's end) however long they asked for
        self._defaults: dict[str, Callable[[dict[str, Any]], Reply]] = {
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "getUpdates": self._get_updates,
        }
        self._server = _Server(self)
        # A short poll interval: shutdown() waits up to one interval, and tests start many servers.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-bot-api", daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeBotApi:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._changed:
            self._closing = True  # wakes long polls so shutdown does not wait for their timeout
            self._changed.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # ---- what a test programs and inspects

    def reply(self, method: str, reply: Programmed) -> None:
        """Answer every later call of `method` with `reply` (after any queued replies)."""
        with self._changed:
            self._replies[method] = reply

    def queue(self, method: str, *replies: Programmed) -> None:
        """Answer the next calls of `method` with these replies, one each, in order."""
        with self._changed:
            self._queued.setdefault(method, []).extend(replies)

    def add_updates(self, *updates: dict[str, Any]) -> None:
        """Updates for getUpdates to deliver; a waiting long poll answers at once."""
        with self._changed:
            self._pending_updates.extend(updates)
            self._changed.notify_all()

    def hold_long_polls(self) -> None:
        """From now on a getUpdates with no update to give never answers on its own (an update added later,
        or the fake's end, still answers it): a test can then tell a client that stops waiting from one that
        waits its poll out, without timing it."""
        with self._changed:
            self._holding = True

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._changed:
            return list(self._requests)

    def calls(self, method: str) -> list[Any]:
        """The JSON bodies `method` was called with, in order."""
        return [request.body for request in self.requests if request.method == method]

    # ---- serving

    def answer(self, http_method: str, path: str, content_type: str | None, raw_body: bytes) -> Reply:
        match = _PATH.match(path)
        if not match:
            return Reply.error("Not Found", 404)
        token, method = match["token"], match["method"]
        body = _parse_body(raw_body)
        with self._changed:
            self._requests.append(RecordedRequest(method, token, body, http_method, content_type))
            if self.token is not None and token != self.token:
                return Reply.error("Unauthorized", 401)
            programmed = self._queued[method].pop(0) if self._queued.get(method) else self._replies.get(method)
            if programmed is not None:
                return programmed(path) if callable(programmed) else programmed
            if method not in self._defaults:
                return Reply.error("Not Found", 404)
            if not isinstance(body, dict):
                return Reply.error("Bad Request: this fake reads only JSON object bodies")
            return self._defaults[method](body)

    # The defaults run with the lock held (inside `answer`).

    def _set_webhook(self, body: dict[str, Any]) -> Reply:
        if body.get("drop_pending_updates"):
            self._pending_updates.clear()
        self._webhook = {key: body[key] for key in ("url", "max_connections", "allowed_updates") if key in body}
        return Reply.ok(True, "Webhook was set")

    def _delete_webhook(self, body: dict[str, Any]) -> Reply:
        if body.get("drop_pending_updates"):
            self._pending_updates.clear()
        self._webhook = {}
        return Reply.ok(True, "Webhook was deleted")

    def _get_webhook_info(self, body: dict[str, Any]) -> Reply:
        info = {"url": "", "has_custom_certificate": False, "pending_update_count": len(self._pending_updates)}
        return Reply.ok({**info, **self._webhook})

    def _get_updates(self, body: dict[str, Any]) -> Reply:
        """Telegram's rules: an offset confirms (forgets) every update below it; wait up to `timeout` for one."""
        if self._webhook.get("url"):
            return Reply.error(WEBHOOK_CONFLICT, 409)
        offset, limit = body.get("offset"), body.get("limit", 100)
        deadline = time.monotonic() + body.get("timeout", 0)
        while True:
            if offset is not None:
                self._pending_updates = [u for u in self._pending_updates if u["update_id"] >= offset]
            remaining = deadline - time.monotonic()
            if self._pending_updates or self._closing or (remaining <= 0 and not self._holding):
                return Reply.ok(self._pending_updates[:limit])
            self._changed.wait(None if self._holding else remaining)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeBotApi):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        raw_body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        reply = self.server.fake.answer(self.command, self.path, self.headers.get("Content-Type"), raw_body)
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `requests` instead of an access log on stderr."""


def _parse_body(raw_body: bytes) -> Any:
    try:
        return json.loads(raw_body) if raw_body else {}
    except ValueError:
        return None

"""A small Telegram Bot API client on the standard library: the webhook command and local polling use it.

The bot token is part of every request URL (`<base>/bot<token>/<method>`), so it could leak through an
error message, a traceback or a repr. This client keeps it private: messages are redacted and the
underlying exceptions (which carry the URL) are never chained.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import urllib.error
import urllib.request
from typing import Any, Iterable
from urllib.parse import urlsplit

from tools.cli import CommandError

DEFAULT_API_BASE = "https://api.telegram.org"
API_BASE_ENV = "TELEGRAM_API_BASE"
TOKEN_ENV = "TELEGRAM_BOT_TOKEN"
REDACTED = "<bot-token>"
# The token BotFather hands out: the bot's numeric id, a colon, then URL-safe characters.
_TOKEN_FORMAT = re.compile(r"^\d+:[A-Za-z0-9_-]+$")


class TelegramError(Exception):
    """The Bot API refused a call (`ok: false`) or answered something that is not Bot API JSON."""

    def __init__(self, message: str, *, error_code: int | None = None, retry_after: int | None = None):
        super().__init__(message)
        self.error_code = error_code
        self.retry_after = retry_after


class TelegramUnreachable(TelegramError):
    """The Bot API could not be reached or did not answer in time: a caller may retry later."""


class BotApi:
    """Calls Bot API methods with a JSON POST and returns their `result`."""

    def __init__(self, token: str, api_base: str = DEFAULT_API_BASE, timeout: float = 15.0):
        if not _TOKEN_FORMAT.match(token):
            # Never echo the value: a malformed token may still be most of a real one.
            raise ValueError("the bot token is malformed: expected <bot id>:<characters> as BotFather gives it")
        parts = urlsplit(api_base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the Bot API base URL must be http(s)://host[:port], got {api_base!r}")
        self._token = token
        self._token_forms = _token_pattern(token)
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"BotApi(api_base={self.api_base!r}, token={REDACTED!r})"

    def set_webhook(
        self,
        url: str,
        secret_token: str,
        allowed_updates: Iterable[str],
        max_connections: int,
        drop_pending_updates: bool = False,
    ) -> bool:
        payload: dict[str, Any] = {
            "url": url,
            "secret_token": secret_token,
            "allowed_updates": list(allowed_updates),
            "max_connections": max_connections,
        }
        if drop_pending_updates:
            payload["drop_pending_updates"] = True
        return self.call("setWebhook", payload)

    def get_webhook_info(self) -> dict[str, Any]:
        return self.call("getWebhookInfo")

    def delete_webhook(self, drop_pending_updates: bool = False) -> bool:
        return self.call("deleteWebhook", {"drop_pending_updates": True} if drop_pending_updates else {})

    def get_updates(
        self, offset: int | None = None, timeout: int = 0, allowed_updates: Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        """Long-poll for updates; Telegram holds the request up to `timeout` seconds when none are waiting."""
        payload: dict[str, Any] = {"timeout": timeout}
        if offset is not None:
            payload["offset"] = offset
        if allowed_updates is not None:
            payload["allowed_updates"] = list(allowed_updates)
        # The socket must outlive the long poll, or every quiet poll would end as a timeout.
        return self.call("getUpdates", payload, timeout=timeout + self.timeout)

    def call(self, method: str, payload: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
        request = urllib.request.Request(
            f"{self.api_base}/bot{self._token}/{method}",
            data=json.dumps(payload or {}).encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout if timeout is None else timeout) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as error:
            # Telegram answers refusals with 4xx/5xx and a JSON body that explains them.
            status, body = error.code, self._read_error_body(error)
        except (OSError, http.client.HTTPException) as error:
            reason = error.reason if isinstance(error, urllib.error.URLError) else error
            message = f"{method}: cannot reach the Bot API at {self.api_base}: {reason}"
            raise TelegramUnreachable(self._redact(message)) from None
        return self._result(method, status, body)

    def _read_error_body(self, error: urllib.error.HTTPError) -> bytes:
        try:
            return error.read()
        except (OSError, http.client.HTTPException):
            return b""
        finally:
            error.close()

    def _result(self, method: str, status: int, body: bytes) -> Any:
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
            message = f"{method}: the Bot API at {self.api_base} answered HTTP {status} with something not Bot API JSON"
            raise TelegramError(message, error_code=status)
        if not answer["ok"]:
            description = answer.get("description") or "no description"
            error_code = answer.get("error_code", status)
            retry_after = (answer.get("parameters") or {}).get("retry_after")
            raise TelegramError(
                self._redact(f"{method} failed: {description} (error {error_code})"),
                error_code=error_code,
                retry_after=retry_after,
            )
        return answer.get("result")

    def _redact(self, text: str) -> str:
        return self._token_forms.sub(REDACTED, text)


def _token_pattern(token: str) -> re.Pattern[str]:
    """Every way a server may echo the token: as is, its colon percent-encoded once or more (`%3A`, `%253A`,
    any case), and the secret after the colon on its own. The secret's characters are all URL-safe, so no
    encoding changes them: hiding the secret alone hides every form, the longer match just reads better."""
    bot_id, _, secret = token.partition(":")
    return re.compile(rf"(?:{re.escape(bot_id)}(?::|%(?:25)*3a))?{re.escape(secret)}", re.IGNORECASE)


def add_api_base_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-base",
        help=f"Bot API base URL, e.g. a local Bot API server (default: ${API_BASE_ENV}, else {DEFAULT_API_BASE})",
    )


def bot_api_from_env(api_base: str | None = None) -> BotApi:
    """The client a command uses: the token only from the environment (a flag would land in shell history
    and process lists), the base URL from `--api-base`, else `TELEGRAM_API_BASE`, else Telegram's own."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise CommandError(f"set {TOKEN_ENV} to the bot's token from @BotFather (it is read only from the environment)")
    try:
        return BotApi(token, api_base or os.environ.get(API_BASE_ENV) or DEFAULT_API_BASE)
    except ValueError as error:
        raise CommandError(str(error)) from None

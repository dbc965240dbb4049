"""The webhook secret as a container holds it: read once, and read again when a token does not match.

After the secret is rotated and `python -m tools webhook set` hands Telegram the new token, a warm
container still holds the old one. Re-reading it when a presented token does not match lets the new token
in at once; doing so at most once per `refresh_seconds` keeps a stream of wrong tokens from turning into a
stream of Secrets Manager calls. Free of AWS: the handler passes the function that reads the secret.
"""

from __future__ import annotations

import hmac
import time
from typing import Callable, Sequence

from lambdas.ingest.budget import SECRET_REFRESH_SECONDS
from lambdas.ingest.errors import ConfigurationError


class WebhookSecret:
    """`matches(tokens)` against the cached secret, re-read (rate-limited) when they do not match.

    `read` returns the secret's string (None when it has none); it raises when Secrets Manager fails, and
    then the cached secret stays. A read counts for the rate limit whether or not it succeeded.
    """

    def __init__(
        self,
        read: Callable[[], str | None],
        *,
        refresh_seconds: float = SECRET_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._read = read
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._secret: str | None = None
        self._read_at: float | None = None

    def matches(self, tokens: Sequence[object]) -> bool:
        """Whether every presented token is the secret (read now if this container never has)."""
        if self._secret is None:
            self._reload()
        if tokens_match(tokens, self._secret):
            return True
        if self._clock() - self._read_at < self._refresh_seconds:
            return False
        self._reload()
        return tokens_match(tokens, self._secret)

    def _reload(self) -> None:
        self._read_at = self._clock()
        secret = self._read()
        if not secret:  # an empty secret would let an empty token header in
            raise ConfigurationError("the webhook secret has no string value: it must hold the plain token")
        self._secret = secret


def tokens_match(tokens: Sequence[object], secret: str) -> bool:
    """Every token is the secret, compared as UTF-8 bytes in constant time (a timing difference must not
    reveal a prefix of it). A token that is not encodable text, such as a lone surrogate, is a mismatch."""
    expected = secret.encode()
    return bool(tokens) and all(_is_secret(token, expected) for token in tokens)


def _is_secret(token: object, expected: bytes) -> bool:
    if not isinstance(token, str):
        return False
    try:
        presented = token.encode()
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(presented, expected)

"""The webhook secret as a container holds it (lambdas/ingest/secret.py): compare, re-read, rate limit."""

from __future__ import annotations

import pytest

from lambdas.ingest.errors import ConfigurationError
from lambdas.ingest.secret import WebhookSecret, tokens_match

REFRESH = 30


class SecretsManager:
    """Answers GetSecretValue with `value` (or raises `error`) and counts the reads."""

    def __init__(self, value: str | None) -> None:
        self.value = value
        self.error: Exception | None = None
        self.reads = 0

    def read(self) -> str | None:
        self.reads += 1
        if self.error is not None:
            raise self.error
        return self.value


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def cached(value: str | None) -> tuple[WebhookSecret, SecretsManager, Clock]:
    store, clock = SecretsManager(value), Clock()
    return WebhookSecret(store.read, refresh_seconds=REFRESH, clock=clock), store, clock


@pytest.mark.parametrize("tokens, expected", [
    (["token"], True),
    (["token", "token"], True),
    (["token", "other"], False),
    ([], False),  # no header at all is never a match
    ([""], False),
    (["tokenx"], False),
    (["\ud800"], False),  # not encodable as UTF-8: a mismatch, not a UnicodeEncodeError
    (["tok\udcffen"], False),
    ([None], False),
    ([b"token"], False),
])
def test_tokens_match_only_when_every_token_is_the_secret(tokens, expected):
    assert tokens_match(tokens, "token") is expected


@pytest.mark.parametrize("empty", ["", None])
def test_an_empty_secret_never_accepts_an_empty_token(empty):
    secret, _, _ = cached(empty)
    with pytest.raises(ConfigurationError, match="has no string value"):
        secret.matches([""])


def test_the_secret_is_read_once_while_tokens_match():
    secret, store, clock = cached("token")
    for _ in range(5):
        assert secret.matches(["token"])
        clock.now += REFRESH
    assert store.reads == 1


def test_a_mismatch_re_reads_the_secret_once_the_interval_has_passed():
    secret, store, clock = cached("old")
    assert secret.matches(["old"])
    store.value = "new"

    clock.now = REFRESH - 0.001
    assert not secret.matches(["new"])  # too soon after the last read
    assert store.reads == 1
    clock.now = REFRESH
    assert secret.matches(["new"])
    assert not secret.matches(["old"])  # the old token is refused at once (within the interval: no read)
    assert store.reads == 2


def test_a_failed_re_read_raises_keeps_the_cached_secret_and_counts_for_the_limit():
    secret, store, clock = cached("old")
    assert secret.matches(["old"])
    clock.now = REFRESH
    store.error = TimeoutError("Secrets Manager did not answer")

    with pytest.raises(TimeoutError):
        secret.matches(["new"])
    assert not secret.matches(["new"])  # no second read within the interval
    assert secret.matches(["old"])
    assert store.reads == 2


def test_a_re_read_that_finds_an_empty_secret_keeps_the_cached_one():
    secret, store, clock = cached("old")
    assert secret.matches(["old"])
    clock.now, store.value = REFRESH, ""

    with pytest.raises(ConfigurationError):
        secret.matches([""])
    assert secret.matches(["old"])


def test_a_first_read_that_failed_is_retried_on_the_next_request():
    secret, store, _ = cached("token")
    store.error = TimeoutError()
    with pytest.raises(TimeoutError):
        secret.matches(["token"])
    store.error = None
    assert secret.matches(["token"])  # nothing cached yet: read again, whatever the interval

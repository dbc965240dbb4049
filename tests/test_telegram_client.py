"""The Bot API client (`tools.telegram.BotApi`) against the fake Bot API on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import traceback
from urllib.parse import quote

import pytest

from tests.fake_bot_api import WEBHOOK_CONFLICT, FakeBotApi, Reply
from tools.telegram import BotApi, TelegramError, TelegramUnreachable

TOKEN = "123456789:AAH-client_test_token"


@pytest.fixture
def telegram():
    with FakeBotApi(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def bot(telegram):
    return BotApi(TOKEN, telegram.base_url + "/")  # a trailing slash must not double up in the path


def assert_token_hidden(error: BaseException) -> None:
    """Not in the message, and not in the printed traceback either (no chained exception carrying the URL)."""
    printed = "".join(traceback.format_exception(error))
    assert TOKEN not in printed
    assert TOKEN.split(":")[1].lower() not in printed.lower()


def test_calls_are_json_posts_to_the_method_path(telegram, bot):
    assert bot.set_webhook("https://example.test/hook", "s3cret", ("message",), 5) is True

    [request] = telegram.requests
    assert (request.http_method, request.token, request.method) == ("POST", TOKEN, "setWebhook")
    assert request.content_type == "application/json"
    assert request.body == {"url": "https://example.test/hook", "secret_token": "s3cret",
                            "allowed_updates": ["message"], "max_connections": 5}


def test_get_updates_follows_telegram_offsets(telegram, bot):
    telegram.add_updates({"update_id": 10}, {"update_id": 11})

    assert [u["update_id"] for u in bot.get_updates()] == [10, 11]
    assert [u["update_id"] for u in bot.get_updates(offset=11, allowed_updates=["message"])] == [11]
    assert bot.get_updates(offset=12) == []
    assert telegram.calls("getUpdates") == [
        {"timeout": 0},
        {"timeout": 0, "offset": 11, "allowed_updates": ["message"]},
        {"timeout": 0, "offset": 12},
    ]


def test_a_long_poll_answers_as_soon_as_an_update_arrives(telegram, bot):
    threading.Timer(0.1, telegram.add_updates, args=({"update_id": 1},)).start()
    assert bot.get_updates(offset=1, timeout=30) == [{"update_id": 1}]


def test_a_quiet_long_poll_outlasting_the_request_timeout_is_not_an_error(telegram):
    bot = BotApi(TOKEN, telegram.base_url, timeout=0.2)
    assert bot.get_updates(timeout=1) == []


def test_get_updates_while_a_webhook_is_set_is_refused(telegram, bot):
    bot.set_webhook("https://example.test/hook", "s3cret", ("message",), 5)
    with pytest.raises(TelegramError) as raised:
        bot.get_updates()
    assert raised.value.error_code == 409
    assert str(raised.value) == f"getUpdates failed: {WEBHOOK_CONFLICT} (error 409)"


def test_refusal_carries_description_code_and_retry_after(telegram, bot):
    telegram.queue("getWebhookInfo", Reply.error("Too Many Requests: retry after 3", 429, retry_after=3))
    with pytest.raises(TelegramError) as raised:
        bot.get_webhook_info()
    assert not isinstance(raised.value, TelegramUnreachable)
    assert str(raised.value) == "getWebhookInfo failed: Too Many Requests: retry after 3 (error 429)"
    assert (raised.value.error_code, raised.value.retry_after) == (429, 3)
    assert bot.get_webhook_info()["url"] == ""  # the queued refusal answered once only


def test_token_echoed_by_the_server_is_redacted(telegram, bot):
    telegram.reply("deleteWebhook", Reply.error(f"Not Found: no bot {TOKEN}", 404))
    with pytest.raises(TelegramError) as raised:
        bot.delete_webhook()
    assert str(raised.value) == "deleteWebhook failed: Not Found: no bot <bot-token> (error 404)"
    assert_token_hidden(raised.value)


def _percent_encoded(text: str) -> str:
    return quote(text, safe="")


@pytest.mark.parametrize(
    "echo",
    [
        lambda path: path,  # /bot123456789:AAH-.../getWebhookInfo
        _percent_encoded,  # %2Fbot123456789%3AAAH-...
        lambda path: _percent_encoded(path).replace("%3A", "%3a"),
        lambda path: _percent_encoded(_percent_encoded(path)),  # %253A
        lambda path: path.partition(":")[2].partition("/")[0],  # the secret alone
        lambda path: path.partition(":")[2].upper(),  # a server that shouts
    ],
    ids=["raw", "percent-encoded", "lower-case-percent", "double-encoded", "secret-alone", "upper-case"],
)
def test_every_encoding_of_the_token_echoed_in_a_description_is_redacted(telegram, bot, echo):
    telegram.reply("getWebhookInfo", lambda path: Reply.error(f"Not Found: {echo(path)} is unknown", 404))
    with pytest.raises(TelegramError) as raised:
        bot.get_webhook_info()
    assert "<bot-token>" in str(raised.value)
    assert TOKEN.partition(":")[0] not in str(raised.value)  # the whole token is one <bot-token>, whatever its form
    assert_token_hidden(raised.value)


@pytest.mark.parametrize("reply", [Reply(502, b"<html>Bad Gateway</html>", "text/html"), Reply(200, b'{"result": 1}')])
def test_an_answer_that_is_not_bot_api_json_is_an_error(telegram, bot, reply):
    telegram.reply("getWebhookInfo", reply)
    with pytest.raises(TelegramError, match=f"answered HTTP {reply.status} with something not Bot API JSON"):
        bot.get_webhook_info()


def test_connection_refused_is_unreachable_and_hides_the_token():
    with socket.socket() as bound_not_listening:
        bound_not_listening.bind(("127.0.0.1", 0))
        base = "http://127.0.0.1:%d" % bound_not_listening.getsockname()[1]
        with pytest.raises(TelegramUnreachable) as raised:
            BotApi(TOKEN, base).get_webhook_info()
    assert str(raised.value) == f"getWebhookInfo: cannot reach the Bot API at {base}: [Errno 111] Connection refused"
    assert_token_hidden(raised.value)


def test_a_server_that_never_answers_times_out_as_unreachable():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel accepts the connection; nobody ever answers
        base = "http://127.0.0.1:%d" % silent.getsockname()[1]
        with pytest.raises(TelegramUnreachable, match="timed out") as raised:
            BotApi(TOKEN, base, timeout=0.2).get_webhook_info()
    assert_token_hidden(raised.value)


def test_repr_hides_the_token():
    assert repr(BotApi(TOKEN, "http://127.0.0.1:1")) == "BotApi(api_base='http://127.0.0.1:1', token='<bot-token>')"


@pytest.mark.parametrize("token", ["", "123456789", "123:has space", "abc:def", f"{TOKEN}/../x"])
def test_malformed_token_is_refused_without_echoing_it(token):
    with pytest.raises(ValueError) as raised:
        BotApi(token, "https://api.telegram.org")
    assert str(raised.value) == "the bot token is malformed: expected <bot id>:<characters> as BotFather gives it"


@pytest.mark.parametrize("base", ["api.telegram.org", "ftp://api.telegram.org", "https://"])
def test_api_base_must_be_an_http_url(base):
    with pytest.raises(ValueError, match="must be http"):
        BotApi(TOKEN, base)

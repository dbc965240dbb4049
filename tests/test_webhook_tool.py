"""`python -m tools webhook set|info|delete` against a fake Bot API on 127.0.0.1 and moto (CloudFormation, secrets).

Every run goes through `tools.__main__.main`, and every run checks that neither the bot token nor the
webhook secret reached stdout or stderr, whether the command succeeded or failed.
"""

from __future__ import annotations

import json
import socket
from datetime import datetime, timezone

import boto3
import pytest
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count

import tools.__main__
from analytics import SavedQuery
from lambdas.common.layout import today
from lambdas.ingest.chats import Chat, ChatsSeen
from stacks import outputs
from stacks.config import load_from_cdk_json
from tests.fake_bot_api import FakeBotApi, Reply
from tools.telegram import API_BASE_ENV, TOKEN_ENV
from analytics import requested_updates

TOKEN = "123456789:AAH-test_token-never-printed"
SECRET = "webhook_secret-0123456789-abcdefghijkl"
WEBHOOK_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/webhook"
DEV = load_from_cdk_json("dev")
STACK = DEV.stack_name("Ingestion")
RAW_BUCKET = "telegram-lake-dev-raw"
# What the member and reaction queries read, which Telegram sends only when asked (in the Bot API's order).
SAVED_QUERY_UPDATES = ["message_reaction", "message_reaction_count", "chat_member"]


@pytest.fixture
def telegram(monkeypatch):
    with FakeBotApi(token=TOKEN) as fake:
        monkeypatch.setenv(TOKEN_ENV, TOKEN)
        monkeypatch.setenv(API_BASE_ENV, fake.base_url)
        yield fake


@pytest.fixture
def aws():
    with mock_aws():
        yield


@pytest.fixture
def secret_arn(aws):
    return boto3.client("secretsmanager").create_secret(Name="TelegramLake-dev-webhook", SecretString=SECRET)["ARN"]


def deploy_ingestion_stack(values: dict[str, str]) -> None:
    """A stand-in for the deployed Ingestion stack in moto: one resource, outputs with the given values."""
    template = {
        "Resources": {"RawBucket": {"Type": "AWS::S3::Bucket"}},
        "Outputs": {key: {"Value": value} for key, value in values.items()},
    }
    boto3.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))


@pytest.fixture
def deployed(secret_arn):
    """The Ingestion stack's outputs and its (empty) raw bucket: a fresh deploy nobody has written to yet."""
    boto3.client("s3").create_bucket(Bucket=RAW_BUCKET)
    deploy_ingestion_stack(
        {outputs.WEBHOOK_URL: WEBHOOK_URL, outputs.WEBHOOK_SECRET_ARN: secret_arn, outputs.RAW_BUCKET_NAME: RAW_BUCKET}
    )


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = tools.__main__.main(["webhook", *argv])
    out, err = capsys.readouterr()
    for leak in (TOKEN, TOKEN.split(":")[1], SECRET):
        assert leak not in out + err
    return code, out, err


# ---- set


def test_set_sends_the_deployed_url_secret_and_stage_settings(telegram, deployed, capsys):
    code, out, err = run(capsys, "set", "--stage", "dev")

    assert (code, err) == (0, "")
    asked, request = telegram.requests  # what the bot's webhook is now, first: another backend's is kept
    assert (asked.method, asked.token) == ("getWebhookInfo", TOKEN)
    assert (request.http_method, request.method, request.token) == ("POST", "setWebhook", TOKEN)
    assert request.content_type == "application/json"
    assert request.body == {
        "url": WEBHOOK_URL,
        "secret_token": SECRET,
        "allowed_updates": [*DEV.allowed_updates, *SAVED_QUERY_UPDATES],
        "max_connections": DEV.webhook_max_connections,
    }
    assert WEBHOOK_URL in out
    assert "dropped" not in out


def test_set_asks_for_the_update_types_the_saved_queries_read_and_says_which_query_wants_which(
    telegram, deployed, capsys
):
    assert not set(SAVED_QUERY_UPDATES) & set(DEV.allowed_updates)  # else the stage asks for them anyway

    code, out, _ = run(capsys, "set", "--stage", "dev")

    assert code == 0
    lines = out.splitlines()
    start = lines.index(f"allowed updates: {', '.join([*DEV.allowed_updates, *SAVED_QUERY_UPDATES])}")
    assert lines[start + 1:start + 5] == [
        "  message_reaction: for the saved queries reactions_per_day, most_reacted_messages",
        "  message_reaction_count: for the saved queries reactions_per_day, most_reacted_messages",
        "  chat_member: for the saved query member_changes_per_day",
        "  message_reaction, message_reaction_count, chat_member: sent only in chats where the bot is an administrator",
    ]


def saved(name: str, *update_types: str) -> SavedQuery:
    return SavedQuery(name=name, question="Which?", sql="SELECT 1", database="db", update_types=update_types)


def test_requested_updates_keep_the_stage_s_order_and_add_the_rest_once_in_the_bot_api_s_order():
    queries = [
        saved("plain"),
        saved("members", "chat_member", "message"),
        saved("reactions", "message_reaction_count", "message_reaction"),
        saved("boosts", "chat_member", "chat_boost"),
    ]

    allowed, asked_by = requested_updates(("edited_message", "message"), queries)

    assert allowed == ("edited_message", "message", "message_reaction", "message_reaction_count", "chat_member",
                       "chat_boost")
    assert asked_by == {  # `message` is the stage's own: no query is said to have added it
        "message_reaction": ("reactions",),
        "message_reaction_count": ("reactions",),
        "chat_member": ("members", "boosts"),
        "chat_boost": ("boosts",),
    }


def test_requested_updates_without_declarations_are_the_stage_s():
    assert requested_updates(("message", "poll"), [saved("plain"), saved("asks_for_message", "message")]) == (
        ("message", "poll"), {}
    )


def test_set_on_a_fresh_deploy_names_the_stored_chats_and_how_to_check_them(telegram, deployed, capsys):
    code, out, err = run(capsys, "set", "--stage", "dev")

    assert (code, err) == (0, "")
    assert f"stored chats: {DEV.allowed_chat_ids[0]} (allowed_chat_ids)" in out
    assert "`python -m tools chats --stage dev`" in out


def test_set_warns_when_chats_wrote_but_none_of_them_is_allowlisted(telegram, deployed, capsys):
    """The fresh-deploy mistake: the example id is still in cdk.json, and the real group's updates are
    skipped (the ingest recorded the group under `ingest-state/chats-seen/`)."""
    group = Chat(id=-1005550001111, type="supergroup", title="Our real group", username=None)
    now = datetime.now(timezone.utc)
    record = ChatsSeen("container-1").observe(
        today(DEV.timezone), group, "message", "skipped", allowlisted=False, now=now
    )
    boto3.client("s3").put_object(Bucket=RAW_BUCKET, Key=record.key, Body=record.to_json())

    code, out, err = run(capsys, "set", "--stage", "dev")

    assert code == 0  # the webhook is set: the warning says what to change
    assert out.startswith("webhook set for stage dev")
    assert err.startswith("WARNING: ")
    assert "-1005550001111" in err and "allowed_chat_ids" in err
    assert telegram.calls("setWebhook")


def test_set_can_drop_pending_updates_and_override_max_connections(telegram, deployed, capsys):
    code, out, _ = run(capsys, "set", "--stage", "dev", "--drop-pending-updates", "--max-connections", "7")

    assert code == 0
    [body] = telegram.calls("setWebhook")
    assert body["drop_pending_updates"] is True
    assert body["max_connections"] == 7
    assert "pending updates dropped" in out


@pytest.mark.parametrize("value", ["0", "101", "many"])
def test_set_rejects_max_connections_telegram_would_refuse(telegram, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        tools.__main__.main(["webhook", "set", "--max-connections", value])
    assert exit_info.value.code == 2
    assert "1 to 100" in capsys.readouterr().err
    assert telegram.requests == []


def test_api_base_flag_wins_over_the_environment(telegram, deployed, monkeypatch, capsys):
    monkeypatch.setenv(API_BASE_ENV, "http://127.0.0.1:9")  # nothing listens on the discard port
    code, _, _ = run(capsys, "set", "--api-base", telegram.base_url)
    assert code == 0
    assert len(telegram.calls("setWebhook")) == 1


# ---- beside an existing bot: one webhook per bot

OTHER_BACKEND = "https://bot.example.com/telegram/hook"


def test_set_refuses_to_replace_another_backends_webhook_and_names_it(telegram, deployed, capsys):
    telegram.reply("getWebhookInfo", Reply.ok({**WEBHOOK_INFO, "url": OTHER_BACKEND}))

    code, out, err = run(capsys, "set", "--stage", "dev")

    assert (code, out) == (1, "")
    assert err.startswith(f"error: the bot's webhook is {OTHER_BACKEND}, not this stage's {WEBHOOK_URL}: ")
    assert "--replace" in err and "webhook forward-target --stage dev" in err and len(err.splitlines()) == 1
    assert telegram.calls("setWebhook") == []


def test_set_replaces_another_backends_webhook_when_told_to_and_says_so(telegram, deployed, capsys):
    telegram.reply("getWebhookInfo", Reply.ok({**WEBHOOK_INFO, "url": OTHER_BACKEND}))

    code, out, _ = run(capsys, "set", "--stage", "dev", "--replace")

    assert code == 0
    assert [body["url"] for body in telegram.calls("setWebhook")] == [WEBHOOK_URL]
    assert f"replaced the webhook {OTHER_BACKEND}: it receives no update from Telegram any more" in out


@pytest.mark.parametrize("current", ["", WEBHOOK_URL], ids=["none", "the-stage-s-own"])
def test_set_needs_no_replace_for_no_webhook_or_the_stages_own(telegram, deployed, current, capsys):
    """Setting the stage's webhook again (a new secret, new update types) is not replacing anybody's."""
    telegram.reply("getWebhookInfo", Reply.ok({**WEBHOOK_INFO, "url": current}))
    code, out, _ = run(capsys, "set", "--stage", "dev")
    assert code == 0 and len(telegram.calls("setWebhook")) == 1 and "replaced" not in out


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (Reply.ok({"url": "https://evil.example/\x1b[2J\nforged"}),
         "the bot's webhook is https://evil.example/\\u001b[2J\\nforged"),
        (Reply.ok({"url": 5}), "getWebhookInfo answered the url 5, which is no URL"),
        (Reply.ok([]), "getWebhookInfo answered [] instead of a WebhookInfo object"),
        (Reply.error("Unauthorized", 401), "getWebhookInfo failed: Unauthorized (error 401)"),
    ],
    ids=["hostile-url", "url-not-text", "not-an-object", "refused"],
)
def test_set_sets_nothing_when_the_current_webhook_is_unknown_or_strange(
    telegram, deployed, reply, problem, capsys
):
    telegram.reply("getWebhookInfo", reply)
    code, _, err = run(capsys, "set", "--stage", "dev")
    assert code == 1 and err.startswith(f"error: {problem}") and len(err.splitlines()) == 1
    assert telegram.calls("setWebhook") == []


def test_forward_target_names_the_url_the_header_and_how_to_read_the_secret_never_the_secret(
    deployed, secret_arn, capsys
):
    code, out, err = run(capsys, "forward-target", "--stage", "dev")

    assert (code, err) == (0, "")
    assert out.splitlines()[:3] == [
        f"url:     {WEBHOOK_URL}",
        "header:  X-Telegram-Bot-Api-Secret-Token: <the secret>",
        f"secret:  aws secretsmanager get-secret-value --region us-east-1 --secret-id {secret_arn} "
        "--query SecretString --output text",
    ]
    assert "retry until the stage answers 2xx" in out


def test_forward_target_of_a_stage_not_deployed_is_one_error_line(aws, capsys):
    code, _, err = run(capsys, "forward-target", "--stage", "dev")
    assert code == 1 and err == f"error: stack {STACK} is not deployed (run `make deploy STAGE=dev`)\n"


# ---- info and delete


WEBHOOK_INFO = {
    "url": WEBHOOK_URL,
    "has_custom_certificate": False,
    "pending_update_count": 3,
    "ip_address": "203.0.113.7",
    "last_error_date": int(datetime(2026, 11, 2, 10, 40, tzinfo=timezone.utc).timestamp()),
    "last_error_message": "Wrong response from the webhook: 401 Unauthorized",
    "max_connections": 40,
    "allowed_updates": ["message", "edited_message"],
}


def test_info_prints_telegram_answer_readably(telegram, capsys):
    telegram.reply("getWebhookInfo", Reply.ok(WEBHOOK_INFO))

    code, out, _ = run(capsys, "info")

    assert code == 0
    assert telegram.calls("getWebhookInfo") == [{}]
    assert out.splitlines() == [
        f"url:              {WEBHOOK_URL}",
        "pending updates:  3",
        "last error:       2026-11-02T10:40:00+00:00 Wrong response from the webhook: 401 Unauthorized",
        "max connections:  40",
        "allowed updates:  message, edited_message",
        "ip address:       203.0.113.7",
    ]


def test_info_without_a_webhook_says_so(telegram, capsys):
    code, out, _ = run(capsys, "info")
    assert code == 0
    assert "url:              none (no webhook set" in out
    assert "last error:       none" in out


@pytest.mark.parametrize(
    ("field", "value", "line"),
    [
        ("url", 5, "url:              unexpected 5"),
        ("url", f"{WEBHOOK_URL}\nip address: forged", f"url:              {WEBHOOK_URL}\\nip address: forged"),
        ("pending_update_count", None, "pending updates:  unexpected null"),
        ("pending_update_count", True, "pending updates:  unexpected true"),
        ("pending_update_count", -3, "pending updates:  unexpected -3"),
        ("last_error_date", "yesterday",
         'last error:       (unexpected date "yesterday") Wrong response from the webhook: 401 Unauthorized'),
        ("last_error_date", 10**20,
         "last error:       (unexpected date 100000000000000000000) Wrong response from the webhook: 401 Unauthorized"),
        ("last_error_message", 7, "last error:       2026-11-02T10:40:00+00:00 (unexpected message 7)"),
        ("last_error_message", "bad \ud800 text", "last error:       2026-11-02T10:40:00+00:00 bad \\ud800 text"),
        ("last_error_message", "\x1b]0;pwned\x07 \u202eerror",
         "last error:       2026-11-02T10:40:00+00:00 \\u001b]0;pwned\\u0007 \\u202eerror"),
        ("ip_address", "203.0.113.7\r\x9b2K", "ip address:       203.0.113.7\\r\\u009b2K"),
        ("allowed_updates", ["message", "\x1b[2Jpoll"], "allowed updates:  message, \\u001b[2Jpoll"),
        ("max_connections", "40", 'max connections:  unexpected "40"'),
        ("allowed_updates", "message", 'allowed updates:  unexpected "message"'),
        ("allowed_updates", ["message", 1], 'allowed updates:  unexpected ["message", 1]'),
        ("ip_address", {"v4": "203.0.113.7"}, 'ip address:       unexpected {"v4": "203.0.113.7"}'),
    ],
)
def test_info_shows_a_field_of_an_unexpected_type_as_received(telegram, capsys, field, value, line):
    telegram.reply("getWebhookInfo", Reply.ok({**WEBHOOK_INFO, field: value}))
    code, out, err = run(capsys, "info")
    assert (code, err) == (0, "")
    assert line in out.splitlines() and len(out.splitlines()) == 6


def test_info_cuts_a_long_unexpected_value_short(telegram, capsys):
    telegram.reply("getWebhookInfo", Reply.ok({**WEBHOOK_INFO, "allowed_updates": list(range(1000))}))
    code, out, _ = run(capsys, "info")
    [line] = [line for line in out.splitlines() if line.startswith("allowed updates:")]
    assert code == 0 and line.startswith("allowed updates:  unexpected [0, 1, 2, ") and line.endswith("...")
    assert len(line) <= 120  # one terminal line, not a thousand numbers


@pytest.mark.parametrize(
    ("reply", "shown"), [(Reply.ok([]), "[]"), (Reply.ok("none"), '"none"'), (Reply(200, b'{"ok": true}'), "null")]
)
def test_info_refuses_an_answer_that_is_not_an_object_in_one_line(telegram, capsys, reply, shown):
    telegram.reply("getWebhookInfo", reply)
    code, out, err = run(capsys, "info")
    assert (code, out) == (1, "")
    assert err == f"error: getWebhookInfo answered {shown} instead of a WebhookInfo object\n"


def test_telegrams_refusal_is_one_error_line_of_plain_text(telegram, capsys):
    """Every `error:` line may quote someone else (Telegram here): nothing in it acts on the terminal."""
    telegram.reply("getWebhookInfo", Reply.error("Bad Request: \x1b]0;owned\x07\u202e\nforged line", 400))
    code, out, err = run(capsys, "info")
    assert (code, out) == (1, "")
    assert err == "error: getWebhookInfo failed: Bad Request: \\u001b]0;owned\\u0007\\u202e\\nforged line (error 400)\n"


def test_set_then_info_shows_what_was_set(telegram, deployed, capsys):
    run(capsys, "set")
    code, out, _ = run(capsys, "info")
    assert code == 0
    assert f"url:              {WEBHOOK_URL}" in out
    assert f"allowed updates:  {', '.join([*DEV.allowed_updates, *SAVED_QUERY_UPDATES])}" in out


@pytest.mark.parametrize(("flags", "body"), [([], {}), (["--drop-pending-updates"], {"drop_pending_updates": True})])
def test_delete(telegram, flags, body, capsys):
    code, out, _ = run(capsys, "delete", *flags)
    assert code == 0
    [request] = telegram.requests
    assert (request.method, request.token, request.body) == ("deleteWebhook", TOKEN, body)
    assert out.startswith("webhook deleted")


# ---- failures: clear message, exit code 1, nothing leaked


@pytest.mark.parametrize("token", [None, "", "   "])
def test_missing_token_fails_before_any_call(telegram, deployed, monkeypatch, token, capsys):
    if token is None:
        monkeypatch.delenv(TOKEN_ENV)
    else:
        monkeypatch.setenv(TOKEN_ENV, token)
    for argv in (["set"], ["info"], ["delete"]):
        code, _, err = run(capsys, *argv)
        assert code == 1
        assert err == (
            f"error: set {TOKEN_ENV} to the bot's token from @BotFather (it is read only from the environment)\n"
        )
    assert telegram.requests == []


def test_malformed_token_is_refused_without_echoing_it(telegram, monkeypatch, capsys):
    monkeypatch.setenv(TOKEN_ENV, "not a token/" + TOKEN)
    code, _, err = run(capsys, "info")
    assert code == 1
    assert "bot token is malformed" in err
    assert telegram.requests == []


def test_stack_not_deployed(telegram, aws, capsys):
    code, _, err = run(capsys, "set", "--stage", "dev")
    assert code == 1
    assert err == f"error: stack {STACK} is not deployed (run `make deploy STAGE=dev`)\n"
    assert telegram.requests == []


@pytest.mark.parametrize("missing", [outputs.WEBHOOK_URL, outputs.WEBHOOK_SECRET_ARN, outputs.RAW_BUCKET_NAME])
def test_stack_output_missing(telegram, secret_arn, missing, capsys):
    values = {outputs.WEBHOOK_URL: WEBHOOK_URL, outputs.WEBHOOK_SECRET_ARN: secret_arn, outputs.RAW_BUCKET_NAME: RAW_BUCKET}
    del values[missing]
    deploy_ingestion_stack(values)

    code, _, err = run(capsys, "set")

    assert code == 1
    assert f"stack {STACK} has no output '{missing}'" in err
    assert telegram.requests == []


def test_secret_that_is_not_a_telegram_token_is_refused_without_printing_it(telegram, aws, capsys):
    wrapped = json.dumps({"token": SECRET})  # a JSON wrapper instead of the plain token string
    arn = boto3.client("secretsmanager").create_secret(Name="wrapped", SecretString=wrapped)["ARN"]
    deploy_ingestion_stack(
        {outputs.WEBHOOK_URL: WEBHOOK_URL, outputs.WEBHOOK_SECRET_ARN: arn, outputs.RAW_BUCKET_NAME: RAW_BUCKET}
    )

    code, _, err = run(capsys, "set")

    assert code == 1
    assert err == (
        f"error: the webhook secret {arn} is not a Telegram secret token (1-256 characters of A-Z a-z 0-9 _ -)\n"
    )
    assert telegram.requests == []


def test_deleted_secret_is_a_clear_error(telegram, deployed, secret_arn, capsys):
    boto3.client("secretsmanager").delete_secret(SecretId=secret_arn, ForceDeleteWithoutRecovery=True)

    code, _, err = run(capsys, "set")

    assert code == 1
    assert err.startswith(
        f"error: cannot read the webhook secret {secret_arn}: An error occurred (ResourceNotFoundException)"
    )
    assert telegram.requests == []


def test_credentials_aws_refuses_are_a_clear_error(telegram, deployed, capsys):
    # moto checking every request's credentials: it knows no dummy key, as AWS knows no revoked one.
    code, _, err = set_initial_no_auth_action_count(0)(run)(capsys, "set")

    assert code == 1
    assert err.startswith(f"error: cannot read stack {STACK}: An error occurred (InvalidClientTokenId)")
    assert telegram.requests == []


def test_telegram_refusal_shows_its_description(telegram, deployed, capsys):
    telegram.reply("setWebhook", Reply.error("Bad Request: bad webhook: Failed to resolve host", 400))
    code, _, err = run(capsys, "set")
    assert code == 1
    assert err == "error: setWebhook failed: Bad Request: bad webhook: Failed to resolve host (error 400)\n"


def test_wrong_token_is_telegram_unauthorized(telegram, monkeypatch, capsys):
    monkeypatch.setenv(TOKEN_ENV, "987654321:another-bots-token")
    code, _, err = run(capsys, "delete")
    assert code == 1
    assert err == "error: deleteWebhook failed: Unauthorized (error 401)\n"
    assert "another-bots-token" not in err


@pytest.fixture
def refusing_port():
    """A port bound but not listening: connecting to it is refused, and no other process can take it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.mark.parametrize("argv", [["set"], ["info"], ["delete"]])
def test_connection_refused(telegram, deployed, refusing_port, monkeypatch, argv, capsys):
    base = f"http://127.0.0.1:{refusing_port}"
    monkeypatch.setenv(API_BASE_ENV, base)
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert err.startswith("error: ")
    assert f"cannot reach the Bot API at {base}: [Errno 111] Connection refused" in err


def test_unreachable_aws_endpoint_is_a_clear_error(telegram, refusing_port, monkeypatch, capsys):
    endpoint = f"http://127.0.0.1:{refusing_port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # no retries: the refusal is final at once

    code, _, err = run(capsys, "set")

    assert code == 1
    assert err == (
        f'error: cannot reach CloudFormation for {STACK}: Could not connect to the endpoint URL: "{endpoint}/"\n'
    )
    assert telegram.requests == []

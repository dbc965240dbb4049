"""`python -m tools webhook set|info|delete|forward-target`: point the bot at a stage's deployed webhook, inspect it,
remove it, or say where another backend forwards updates to.

`set` reads the webhook URL and the secret's ARN from the Ingestion stack's outputs and the secret from
Secrets Manager, so nothing is copied by hand; the bot token comes only from TELEGRAM_BOT_TOKEN. Neither
the token nor the secret is ever printed. It asks Telegram for the stage's `allowed_updates` plus the update
types the saved queries declare (`-- updates:` in their headers). It then warns when chats wrote to the
stage recently but none of them is allowlisted (see `tools chats`): the fresh-deploy mistake that otherwise
drops every update.

Telegram allows one webhook per bot, so `set` first asks getWebhookInfo, and refuses to replace a webhook
that is not the stage's own (naming it) unless `--replace` is given: a bot that already has a backend keeps
it, and that backend forwards each update to the stage instead. `forward-target` prints what such a
forwarder needs: the stage's URL, the header, and how to read the secret (not the secret itself).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from analytics import requested_updates, stage_queries
from lambdas.ingest.webhook import SECRET_TOKEN_HEADER
from stacks import outputs
from stacks.config import MAX_WEBHOOK_CONNECTIONS, StageConfig
from tools.operate.chats import allowlist_warning
from tools.cli import (
    CommandError, add_stage_argument, aws_session, count_argument, plain, require_output, stack_outputs, stage_config,
)
from tools.telegram import TelegramError, add_api_base_argument, bot_api_from_env

# What Telegram accepts as `secret_token` (and what the stack's generated secret is made of).
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
# Telegram's `allowed_updates` default, shown when a webhook was set without the field.
_TELEGRAM_DEFAULT_UPDATES = "Telegram's default (all but chat_member, message_reaction, message_reaction_count)"
_NO_WEBHOOK = "none (no webhook set: the bot can poll getUpdates)"
# Update types Telegram sends only to a bot that is an administrator of the chat (Bot API `Update`).
ADMIN_ONLY_UPDATES = ("message_reaction", "message_reaction_count", "chat_member", "chat_join_request", "chat_boost",
                      "removed_chat_boost")
# How much of an unexpected value `webhook info` shows.
_RECEIVED_CHARACTERS = 80


def register(subparsers: argparse._SubParsersAction) -> None:
    webhook = subparsers.add_parser("webhook", help="set, inspect or delete the bot's webhook", description=__doc__)
    actions = webhook.add_subparsers(dest="action", required=True)

    set_parser = actions.add_parser("set", help="setWebhook to the stage's deployed URL, with its secret")
    add_stage_argument(set_parser)
    set_parser.add_argument(
        "--max-connections", type=count_argument(MAX_WEBHOOK_CONNECTIONS), metavar="N",
        help=f"parallel deliveries, 1-{MAX_WEBHOOK_CONNECTIONS} (default: config)",
    )
    set_parser.add_argument(
        "--replace", action="store_true",
        help="replace a webhook that is not this stage's (another backend's: it stops receiving updates)",
    )
    set_parser.set_defaults(func=set_webhook)

    info = actions.add_parser("info", help="getWebhookInfo: URL, pending updates, last delivery error")
    info.set_defaults(func=show_webhook_info)

    delete = actions.add_parser("delete", help="deleteWebhook: Telegram stops delivering to the stack")
    delete.set_defaults(func=delete_webhook)

    target = actions.add_parser(
        "forward-target",
        help="where a bot's own backend forwards updates to: the stage's URL, header and how to read its secret",
    )
    add_stage_argument(target)
    target.set_defaults(func=show_forward_target)

    for parser in (set_parser, delete):
        parser.add_argument(
            "--drop-pending-updates", action="store_true", help="discard the updates Telegram is still holding"
        )
    for parser in (set_parser, info, delete):
        add_api_base_argument(parser)


def set_webhook(args: argparse.Namespace) -> int:
    bot = bot_api_from_env(args.api_base)  # first: a missing token fails before any AWS call
    config = stage_config(args)
    allowed_updates, asked_by = requested_updates(  # a broken saved query fails before any AWS call too
        config.allowed_updates, stage_queries(config)
    )
    deployed = deployed_webhook(config)
    current = current_webhook_url(_telegram(bot.get_webhook_info))
    if current and current != deployed.url and not args.replace:
        raise CommandError(
            f"the bot's webhook is {plain(current)}, not this stage's {deployed.url}: Telegram allows one webhook per "
            "bot, and setting this stage's would cut that backend off. Keep it and have it forward each update to "
            f"the stage (`python -m tools webhook forward-target --stage {config.stage}`; docs/operating.md, "
            "\"Beside an existing bot\"), or pass --replace to replace it"
        )
    max_connections = args.max_connections or config.webhook_max_connections
    _telegram(
        bot.set_webhook, deployed.url, deployed.secret_token, allowed_updates, max_connections,
        args.drop_pending_updates,
    )
    print(f"webhook set for stage {config.stage}: {deployed.url}")
    if current and current != deployed.url:
        print(f"replaced the webhook {plain(current)}: it receives no update from Telegram any more")
    print(f"allowed updates: {', '.join(allowed_updates)}")
    for update_type, names in asked_by.items():
        print(f"  {update_type}: for the saved {'queries' if len(names) > 1 else 'query'} {', '.join(names)}")
    admin_only = [update_type for update_type in allowed_updates if update_type in ADMIN_ONLY_UPDATES]
    if admin_only:
        print(f"  {', '.join(admin_only)}: sent only in chats where the bot is an administrator")
    print(f"max connections: {max_connections}")
    if args.drop_pending_updates:
        print("pending updates dropped")
    print(f"stored chats: {', '.join(str(chat_id) for chat_id in config.allowed_chat_ids)} (allowed_chat_ids)")
    warning = allowlist_warning(config, deployed.session.client("s3"), deployed.raw_bucket)
    if warning:
        print(f"WARNING: {warning}", file=sys.stderr)
    else:
        print(f"next: write in the group, then `python -m tools chats --stage {config.stage}` shows whether it is stored")
    return 0


def show_webhook_info(args: argparse.Namespace) -> int:
    info = _webhook_info(_telegram(bot_api_from_env(args.api_base).get_webhook_info))
    for label, value in describe_webhook_info(info):
        print(f"{label + ':':<17} {value}")
    return 0


def show_forward_target(args: argparse.Namespace) -> int:
    """What a bot's own backend needs to forward updates to the stage; the secret is named, never printed."""
    config = stage_config(args)
    session, stack, deployed = _ingestion_outputs(config)
    url = require_output(deployed, outputs.WEBHOOK_URL, stack)
    secret_arn = require_output(deployed, outputs.WEBHOOK_SECRET_ARN, stack)
    print(f"url:     {url}")
    print(f"header:  {SECRET_TOKEN_HEADER}: <the secret>")
    print(
        f"secret:  aws secretsmanager get-secret-value --region {session.region_name} --secret-id {secret_arn} "
        "--query SecretString --output text"
    )
    print(
        "forward: POST each update's body exactly as Telegram sent it (Content-Type: application/json) with that "
        "header; retry until the stage answers 2xx (docs/operating.md, \"Beside an existing bot\")"
    )
    return 0


def delete_webhook(args: argparse.Namespace) -> int:
    _telegram(bot_api_from_env(args.api_base).delete_webhook, args.drop_pending_updates)
    print("webhook deleted" + ("; pending updates dropped" if args.drop_pending_updates else ""))
    return 0


@dataclass(frozen=True)
class DeployedWebhook:
    """What `webhook set` reads from a deployed stage: where Telegram posts, the token it must send, and the
    raw bucket whose chats-seen records say whether the allowlist matches the chats that write."""

    url: str
    secret_token: str
    raw_bucket: str
    session: Any  # boto3 session in the stage's region


def deployed_webhook(config: StageConfig) -> DeployedWebhook:
    """The Ingestion stack's webhook URL, raw bucket and the secret Telegram must send with every delivery."""
    from botocore.exceptions import BotoCoreError, ClientError

    session, stack, deployed = _ingestion_outputs(config)
    url = require_output(deployed, outputs.WEBHOOK_URL, stack)
    secret_arn = require_output(deployed, outputs.WEBHOOK_SECRET_ARN, stack)
    raw_bucket = require_output(deployed, outputs.RAW_BUCKET_NAME, stack)
    try:
        secret_token = session.client("secretsmanager").get_secret_value(SecretId=secret_arn).get("SecretString")
    except (BotoCoreError, ClientError) as error:
        raise CommandError(f"cannot read the webhook secret {secret_arn}: {error}") from None
    if not secret_token or not _SECRET_TOKEN.fullmatch(secret_token):
        raise CommandError(
            f"the webhook secret {secret_arn} is not a Telegram secret token (1-256 characters of A-Z a-z 0-9 _ -)"
        )
    return DeployedWebhook(url, secret_token, raw_bucket, session)


def _ingestion_outputs(config: StageConfig) -> tuple[Any, str, dict[str, str]]:
    """A boto3 session in the stage's region, the name of its Ingestion stack, and that stack's outputs."""
    session = aws_session(config)
    return session, config.stack_name("Ingestion"), stack_outputs(config, "Ingestion", session)


def current_webhook_url(info: Any) -> str:
    """The URL a getWebhookInfo answer names ("" when no webhook is set)."""
    url = _webhook_info(info).get("url", "")
    if not isinstance(url, str):
        raise CommandError(f"getWebhookInfo answered the url {_received(url)}, which is no URL")
    return url


def _webhook_info(info: Any) -> dict[str, Any]:
    if not isinstance(info, dict):
        raise CommandError(f"getWebhookInfo answered {_received(info)} instead of a WebhookInfo object")
    return info


def describe_webhook_info(info: dict[str, Any]) -> list[tuple[str, str]]:
    """getWebhookInfo's answer as labelled lines; Telegram omits the fields that do not apply.

    Nothing in the answer is trusted: a field of an unexpected type is shown as received and marked, and
    text is shown as plain text on one line (`tools.cli.plain`), so a strange answer is still readable.
    """
    return [
        ("url", _field(info, "url", _is_text, lambda url: plain(url) if url else _NO_WEBHOOK, _NO_WEBHOOK)),
        ("pending updates", _field(info, "pending_update_count", _is_count, str, "0")),
        ("last error", _last_error(info)),
        ("max connections", _field(info, "max_connections", _is_count, str, "-")),
        ("allowed updates", _field(info, "allowed_updates", _is_names, _names, _TELEGRAM_DEFAULT_UPDATES)),
        ("ip address", _field(info, "ip_address", _is_text, plain, "-")),
    ]


def _field(
    info: dict[str, Any], name: str, valid: Callable[[Any], bool], shown: Callable[[Any], str], missing: str
) -> str:
    if name not in info:
        return missing
    value = info[name]
    return shown(value) if valid(value) else f"unexpected {_received(value)}"


def _last_error(info: dict[str, Any]) -> str:
    if "last_error_date" not in info:
        return "none"
    message = info.get("last_error_message", "")
    shown = plain(message) if _is_text(message) else f"(unexpected message {_received(message)})"
    return f"{_utc_time(info['last_error_date'])} {shown}".rstrip()


def _utc_time(value: Any) -> str:
    if _is_count(value):
        try:
            return datetime.fromtimestamp(value, timezone.utc).isoformat()
        except (OverflowError, OSError, ValueError):  # beyond what a datetime holds
            pass
    return f"(unexpected date {_received(value)})"


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(name, str) for name in value)


def _names(names: list[str]) -> str:
    return ", ".join(plain(name) for name in names)


def _received(value: Any) -> str:
    """A value from the answer as JSON, cut short: what Telegram sent, readable on one line."""
    shown = json.dumps(value)
    return shown if len(shown) <= _RECEIVED_CHARACTERS else shown[: _RECEIVED_CHARACTERS - 3] + "..."


def _telegram(call: Callable[..., Any], *args: Any) -> Any:
    """One Bot API call; Telegram's refusal (with its description) or silence becomes a CommandError."""
    try:
        return call(*args)
    except TelegramError as error:
        raise CommandError(str(error)) from None

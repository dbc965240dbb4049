"""`python -m tools webhook set|info|delete`: point the bot at a stage's deployed webhook, inspect it, remove it.

`set` reads the webhook URL and the secret's ARN from the Ingestion stack's outputs and the secret from
Secrets Manager, so nothing is copied by hand; the bot token comes only from TELEGRAM_BOT_TOKEN. Neither
the token nor the secret is ever printed.
"""

from __future__ import annotations

import argparse
import re
from datetime import datetime, timezone
from typing import Any, Callable

from stacks import outputs
from stacks.config import StageConfig
from tools.cli import CommandError, add_stage_argument, require_output, stack_outputs, stage_config
from tools.telegram import TelegramError, add_api_base_argument, bot_api_from_env

# What Telegram accepts as `secret_token` (and what the stack's generated secret is made of).
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
# Telegram's `allowed_updates` default, shown when a webhook was set without the field.
_TELEGRAM_DEFAULT_UPDATES = "Telegram's default (all but chat_member, message_reaction, message_reaction_count)"


def register(subparsers: argparse._SubParsersAction) -> None:
    webhook = subparsers.add_parser("webhook", help="set, inspect or delete the bot's webhook", description=__doc__)
    actions = webhook.add_subparsers(dest="action", required=True)

    set_parser = actions.add_parser("set", help="setWebhook to the stage's deployed URL, with its secret")
    add_stage_argument(set_parser)
    set_parser.add_argument(
        "--max-connections", type=_max_connections, metavar="N", help="parallel deliveries, 1-100 (default: config)"
    )
    set_parser.set_defaults(func=set_webhook)

    info = actions.add_parser("info", help="getWebhookInfo: URL, pending updates, last delivery error")
    info.set_defaults(func=show_webhook_info)

    delete = actions.add_parser("delete", help="deleteWebhook: Telegram stops delivering to the stack")
    delete.set_defaults(func=delete_webhook)

    for parser in (set_parser, delete):
        parser.add_argument(
            "--drop-pending-updates", action="store_true", help="discard the updates Telegram is still holding"
        )
    for parser in (set_parser, info, delete):
        add_api_base_argument(parser)


def set_webhook(args: argparse.Namespace) -> int:
    bot = bot_api_from_env(args.api_base)  # first: a missing token fails before any AWS call
    config = stage_config(args)
    url, secret_token = deployed_webhook(config)
    max_connections = args.max_connections or config.webhook_max_connections
    _telegram(bot.set_webhook, url, secret_token, config.allowed_updates, max_connections, args.drop_pending_updates)
    print(f"webhook set for stage {config.stage}: {url}")
    print(f"allowed updates: {', '.join(config.allowed_updates)}")
    print(f"max connections: {max_connections}")
    if args.drop_pending_updates:
        print("pending updates dropped")
    return 0


def show_webhook_info(args: argparse.Namespace) -> int:
    info = _telegram(bot_api_from_env(args.api_base).get_webhook_info)
    for label, value in describe_webhook_info(info):
        print(f"{label + ':':<17} {value}")
    return 0


def delete_webhook(args: argparse.Namespace) -> int:
    _telegram(bot_api_from_env(args.api_base).delete_webhook, args.drop_pending_updates)
    print("webhook deleted" + ("; pending updates dropped" if args.drop_pending_updates else ""))
    return 0


def deployed_webhook(config: StageConfig) -> tuple[str, str]:
    """The Ingestion stack's webhook URL and the secret Telegram must send with every delivery."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    session = boto3.session.Session(region_name=config.region)
    stack = config.stack_name("Ingestion")
    deployed = stack_outputs(config, "Ingestion", session)
    url = require_output(deployed, outputs.WEBHOOK_URL, stack)
    secret_arn = require_output(deployed, outputs.WEBHOOK_SECRET_ARN, stack)
    try:
        secret_token = session.client("secretsmanager").get_secret_value(SecretId=secret_arn).get("SecretString")
    except (BotoCoreError, ClientError) as error:
        raise CommandError(f"cannot read the webhook secret {secret_arn}: {error}") from None
    if not secret_token or not _SECRET_TOKEN.match(secret_token):
        raise CommandError(
            f"the webhook secret {secret_arn} is not a Telegram secret token (1-256 characters of A-Z a-z 0-9 _ -)"
        )
    return url, secret_token


def describe_webhook_info(info: dict[str, Any]) -> list[tuple[str, str]]:
    """getWebhookInfo's answer as labelled lines; Telegram omits the fields that do not apply."""
    error_date = info.get("last_error_date")
    last_error = "none"
    if error_date:
        when = datetime.fromtimestamp(error_date, timezone.utc).isoformat()
        last_error = f"{when} {info.get('last_error_message', '')}".rstrip()
    allowed_updates = ", ".join(info["allowed_updates"]) if "allowed_updates" in info else _TELEGRAM_DEFAULT_UPDATES
    return [
        ("url", info.get("url") or "none (no webhook set: the bot can poll getUpdates)"),
        ("pending updates", str(info.get("pending_update_count", 0))),
        ("last error", last_error),
        ("max connections", str(info.get("max_connections", "-"))),
        ("allowed updates", allowed_updates),
        ("ip address", info.get("ip_address", "-")),
    ]


def _telegram(call: Callable[..., Any], *args: Any) -> Any:
    """One Bot API call; Telegram's refusal (with its description) or silence becomes a CommandError."""
    try:
        return call(*args)
    except TelegramError as error:
        raise CommandError(str(error)) from None


def _max_connections(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be an integer from 1 to 100, got {text!r}")
    return value

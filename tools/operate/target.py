"""`python -m tools target --stage S`: the AWS account and region a stage's deploy (and every command) will use.

`make deploy`, `make diff`, `make bootstrap` and `make destroy` print it before they start, so an operator sees
where the stacks go before CloudFormation does anything. The region is the stage's `region` when cdk.json pins
one, else the operator's own (AWS_REGION, AWS_DEFAULT_REGION or the profile), exactly as the CDK CLI and the
other commands resolve it. Refused here, before CloudFormation fails halfway:

- a pinned `account` that the credentials do not belong to;
- a stage with `github_repository` in an account without GitHub's OIDC provider, unless cdk.json's
  `create_github_oidc_provider` is true (its roles would trust a provider that does not exist);
- `create_github_oidc_provider: true` in an account whose provider that setting's stack did not create (an
  account has one: creating a second fails the deploy).

GitHub's own deploy and review jobs skip the provider check: their credentials came through that provider, and
their roles may not list IAM. A stage whose alarms nobody is mailed gets a WARNING line (on stderr).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, NamedTuple

from stacks.alarm_subscribers import unheard_alarms
from stacks.config import ConfigError, StageConfig
from stacks.github_access import (
    CREATE_PROVIDER_KEY, DEPLOY, OIDC_HOST, PROVIDER_ARN_OUTPUT, PROVIDER_STACK_NAME, REVIEW, read_provider_setting,
    role_name,
)
from tools.cli import CommandError, add_stage_argument, aws_session, stage_config


class Caller(NamedTuple):
    """Who the credentials are: the account, and the ARN STS names them by."""

    account: str
    arn: str


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "target", help="print the AWS account and region the stage deploys to", description=__doc__
    )
    add_stage_argument(parser)
    parser.set_defaults(func=target_command)


def target_command(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    config = stage_config(args)
    session = aws_session(config)
    try:
        identity = session.client("sts").get_caller_identity()
    except (BotoCoreError, ClientError) as error:
        raise CommandError(f"cannot tell which AWS account your credentials belong to: {error}") from None
    caller = Caller(identity["Account"], identity["Arn"])
    if config.account is not None and caller.account != config.account:
        raise CommandError(
            f"stage {config.stage} is pinned to account {config.account} in cdk.json, "
            f"but your credentials are for account {caller.account}"
        )
    region_source = "cdk.json" if config.region else "your AWS configuration"
    print(f"stage {config.stage}: account {caller.account}, region {session.region_name} (region from {region_source})")
    check_github_oidc_provider(config, session, caller)
    warning = unheard_alarms(config)
    if warning:
        print(f"WARNING: {warning}", file=sys.stderr)
    return 0


def check_github_oidc_provider(config: StageConfig, session: Any, caller: Caller) -> None:
    """CommandError when the deploy would fail on GitHub's OIDC provider (see the module's docstring)."""
    try:
        creates = read_provider_setting()
    except ConfigError as error:
        raise CommandError(str(error)) from None
    if (config.github_repository is None and not creates) or is_github_role(caller.arn, config.stage):
        return
    existing = github_provider(session)
    held = existing is not None and creates and provider_stack_output(session) == existing
    problem = provider_problem(config, creates=creates, existing=existing, held=held, account=caller.account)
    if problem:
        raise CommandError(problem)


def provider_problem(
    config: StageConfig, *, creates: bool, existing: str | None, held: bool, account: str
) -> str | None:
    """What is wrong with the account's GitHub OIDC provider for this deploy, or None. `existing` is its ARN,
    `held` whether TelegramLake-GitHubOidcProvider created it."""
    if creates and existing is not None and not held:
        return (
            f"`{CREATE_PROVIDER_KEY}` is true in cdk.json, but account {account} already has GitHub's OIDC provider "
            f"({existing}), not created by {PROVIDER_STACK_NAME}: an account has only one, so creating it would "
            f"fail the deploy. Leave `{CREATE_PROVIDER_KEY}` unset: the stages' roles trust the existing provider."
        )
    if config.github_repository is not None and existing is None and not creates:
        return (
            f"stage {config.stage} sets `github_repository` ({config.github_repository}), but account {account} has "
            f"no GitHub OIDC provider ({OIDC_HOST}) for its roles to trust: set `\"{CREATE_PROVIDER_KEY}\": true` "
            "in cdk.json's `context` (next to `stages`), and this deploy creates it."
        )
    return None


def is_github_role(caller_arn: str, stage: str) -> bool:
    """The credentials are the stage's GitHub deploy or review role: GitHub's token came through the provider."""
    _, _, session = caller_arn.partition(":assumed-role/")
    return session.split("/")[0] in {role_name(DEPLOY, stage), role_name(REVIEW, stage)}


def github_provider(session: Any) -> str | None:
    """The ARN of the account's GitHub OIDC provider, or None."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        providers = session.client("iam").list_open_id_connect_providers()["OpenIDConnectProviderList"]
    except (BotoCoreError, ClientError) as error:
        raise CommandError(f"cannot list the account's OIDC providers to find GitHub's: {error}") from None
    arns = [provider["Arn"] for provider in providers if provider["Arn"].endswith(f":oidc-provider/{OIDC_HOST}")]
    return arns[0] if arns else None


def provider_stack_output(session: Any) -> str | None:
    """The provider ARN that TelegramLake-GitHubOidcProvider created, or None when that stack is not deployed."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=PROVIDER_STACK_NAME)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise CommandError(f"cannot read stack {PROVIDER_STACK_NAME}: {error}") from None
    except BotoCoreError as error:
        raise CommandError(f"cannot reach CloudFormation for {PROVIDER_STACK_NAME}: {error}") from None
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}
    return outputs.get(PROVIDER_ARN_OUTPUT)

"""`python -m tools target --stage S`: the AWS account and region a stage's deploy (and every command) will use.

`make deploy`, `make diff` and `make bootstrap` print it before they start, so an operator sees where the
stacks go before CloudFormation does anything. The region is the stage's `region` when cdk.json pins one,
else the operator's own (AWS_REGION, AWS_DEFAULT_REGION or the profile), exactly as the CDK CLI and the
other commands resolve it. A pinned `account` that the credentials do not belong to is refused here.
"""

from __future__ import annotations

import argparse

from tools.cli import CommandError, add_stage_argument, aws_session, stage_config


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
        account = session.client("sts").get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as error:
        raise CommandError(f"cannot tell which AWS account your credentials belong to: {error}") from None
    if config.account is not None and account != config.account:
        raise CommandError(
            f"stage {config.stage} is pinned to account {config.account} in cdk.json, "
            f"but your credentials are for account {account}"
        )
    region_source = "cdk.json" if config.region else "your AWS configuration"
    print(f"stage {config.stage}: account {account}, region {session.region_name} (region from {region_source})")
    return 0

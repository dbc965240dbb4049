"""What every command shares: the error that ends it with a clear message, and the deployed stacks' outputs."""

from __future__ import annotations

import argparse
from typing import Any

from stacks.config import DEFAULT_STAGE, ConfigError, StageConfig, load_from_cdk_json


class CommandError(Exception):
    """A user-facing failure: printed as `error: ...` with exit code 1, no traceback."""


def add_stage_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", default=DEFAULT_STAGE, help=f"stage from cdk.json (default {DEFAULT_STAGE})")


def stage_config(args: argparse.Namespace) -> StageConfig:
    try:
        return load_from_cdk_json(args.stage)
    except ConfigError as error:
        raise CommandError(str(error)) from None


def stack_outputs(config: StageConfig, part: str, session: Any = None) -> dict[str, str]:
    """The outputs of `TelegramLake-<stage>-<part>`; CommandError when it is not deployed."""
    from botocore.exceptions import BotoCoreError, ClientError

    name = config.stack_name(part)
    client = (session or aws_session(config)).client("cloudformation")
    try:
        stacks = client.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            raise CommandError(f"stack {name} is not deployed (run `make deploy STAGE={config.stage}`)") from None
        raise CommandError(f"cannot read stack {name}: {error}") from None
    except BotoCoreError as error:
        raise CommandError(f"cannot reach CloudFormation for {name}: {error}") from None
    return {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}


def require_output(outputs: dict[str, str], key: str, stack: str) -> str:
    if key not in outputs:
        raise CommandError(f"stack {stack} has no output {key!r}; redeploy it with this version of the project")
    return outputs[key]


def aws_session(config: StageConfig) -> Any:
    """A boto3 session in the stage's region: its pinned `region`, else the operator's, resolved as the CDK
    CLI does (AWS_REGION, then AWS_DEFAULT_REGION, then the profile; boto3 alone ignores AWS_REGION), so a
    command finds the stacks `make deploy` created. CommandError when there is none."""
    import os

    import boto3

    session = boto3.session.Session(region_name=config.region or os.environ.get("AWS_REGION") or None)
    if not session.region_name:
        raise CommandError(
            f"no AWS region for stage {config.stage}: set its `region` in cdk.json, or AWS_REGION, "
            "or a region in your AWS profile"
        )
    return session

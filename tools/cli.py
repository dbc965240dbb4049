"""What every command shares: the error that ends it with a clear message, the deployed stacks' outputs, the
AWS session (and what is wrong with the operator's AWS configuration), and the one way to print text that
someone else wrote."""

from __future__ import annotations

import argparse
import json
import os
import unicodedata
from typing import Any, Callable

from stacks.config import DEFAULT_STAGE, ConfigError, StageConfig, is_region_name, load_from_cdk_json


# What acts on a terminal instead of showing, or hides what is around it: C0 and C1 controls and DEL (escape
# sequences, carriage returns, bells), format characters (bidi overrides and isolates, zero-width ones), line
# and paragraph separators, and lone surrogates (which no encoding of the terminal can write).
_UNSHOWN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ZERO_WIDTH_JOINER = "\u200d"


class CommandError(Exception):
    """A user-facing failure: printed as `error: ...` with exit code 1, no traceback."""


def plain(text: object) -> str:
    """Text a user, Telegram or AWS wrote (a chat title, an alarm reason, a result's cell), safe to print as it
    is: every character that would act on the terminal rather than show is written as its JSON escape
    (`\\u001b`, `\\u202e`, `\\n`). Everything else, emoji included, is unchanged. Pass the result to rich as
    `rich.text.Text(plain(...))`, never as a string: rich reads `[...]` in a string as markup."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(_escaped(char) if _unshown(text, index) else char for index, char in enumerate(text))


def plain_json(value: Any) -> str:
    """`value` as indented JSON to print: text as it is (not ASCII-escaped), but every character `plain`
    escapes written as its JSON escape, so the document still reads back as exactly `value`."""
    document = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return "\n".join(plain(line) for line in document.split("\n"))  # the newlines between items are JSON's


def _unshown(text: str, index: int) -> bool:
    char = text[index]
    if unicodedata.category(char) not in _UNSHOWN_CATEGORIES:
        return False
    # A joiner between two pictographs draws one emoji (👩‍💻): shown as it is.
    return not (
        char == _ZERO_WIDTH_JOINER
        and 0 < index < len(text) - 1
        and unicodedata.category(text[index - 1]) in ("So", "Sk", "Mn")
        and unicodedata.category(text[index + 1]) == "So"
    )


def _escaped(char: str) -> str:
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    if code > 0xFFFF:  # JSON writes a character beyond the BMP as its UTF-16 surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def add_stage_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", default=DEFAULT_STAGE, help=f"stage from cdk.json (default {DEFAULT_STAGE})")


def count_argument(maximum: int | None = None, why: str = "") -> Callable[[str], int]:
    """An argparse `type`: a whole number from 1 to `maximum` (unbounded when None); `why` says, in the
    refusal, where the bound comes from."""

    def count(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if maximum is None and value < 1:
            raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
        if maximum is not None and not 1 <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be an integer from 1 to {maximum}{why}, got {text!r}")
        return value

    return count


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
    command finds the stacks `make deploy` created. CommandError when there is none, or when the operator's
    AWS configuration is unusable: a profile it lacks, a malformed region, a config file that does not parse."""
    import boto3

    try:
        session = boto3.session.Session(region_name=config.region or os.environ.get("AWS_REGION") or None)
        region = session.region_name  # reads the profile and the config file
    except Exception as error:
        problem = aws_configuration_problem(error)
        if problem is None:
            raise
        raise CommandError(problem) from None
    if not region:
        raise CommandError(
            f"no AWS region for stage {config.stage}: set its `region` in cdk.json, or AWS_REGION, "
            "or a region in your AWS profile"
        )
    if not is_region_name(region):  # botocore would take `us-east-1\n` and fail later on a URL
        raise CommandError(f"{region!r} is not an AWS region name ({_region_source(config)})")
    return session


def aws_configuration_problem(error: BaseException) -> str | None:
    """One line saying what is wrong with the operator's AWS configuration, when `error` is botocore refusing
    it (a profile, region, config file or credentials setting); None for any other error. Used where sessions
    are made, and by `python -m tools` for a client made anywhere else."""
    if not type(error).__module__.startswith("botocore"):
        return None
    from botocore import exceptions as aws

    if isinstance(error, aws.ProfileNotFound):
        profile = error.kwargs["profile"]
        return (
            f"AWS profile {profile!r} not found in your AWS config ({_profile_source(profile)}); "
            f"profiles there: {', '.join(_available_profiles()) or 'none'}"
        )
    if isinstance(error, aws.InvalidRegionError):
        return f"{error.kwargs['region_name']!r} is not an AWS region name ({_region_source(None)})"
    if isinstance(error, aws.NoRegionError):
        return "no AWS region: set AWS_REGION, or a region in your AWS profile"
    if isinstance(error, aws.ConfigParseError):  # the parser's first line only: the next ones quote the file
        reason = str(error.kwargs.get("error") or "").partition("\n")[0]
        return f"cannot parse {error.kwargs['path']}, an AWS config or credentials file: {reason} Fix or move it."
    if isinstance(error, aws.ConfigNotFound):
        return f"the AWS config file {error.kwargs['path']} does not exist (AWS_CONFIG_FILE)"
    if isinstance(error, aws.NoCredentialsError):
        return "no AWS credentials: sign in (e.g. `aws sso login`), or set AWS_PROFILE to a configured profile"
    configuration = (
        aws.InvalidConfigError, aws.PartialCredentialsError, aws.CredentialRetrievalError, aws.UnknownCredentialError,
        aws.SSOError, aws.TokenRetrievalError, aws.LoginError, aws.RefreshWithMFAUnsupportedError,
        aws.InvalidRetryConfigurationError, aws.InvalidDefaultsMode, aws.InvalidSTSRegionalEndpointsConfigError,
        aws.InvalidS3UsEast1RegionalEndpointConfigError, aws.InvalidS3AddressingStyleError,
        aws.InvalidEndpointDiscoveryConfigurationError, aws.InvalidChecksumConfigError, aws.InvalidIMDSEndpointError,
        aws.InvalidIMDSEndpointModeError, aws.InvalidProxiesConfigError, aws.UnknownRegionError,
    )
    if isinstance(error, configuration):
        return f"your AWS configuration is unusable: {' '.join(str(error).split())}"
    return None


def _profile_source(profile: str) -> str:
    named_by = [name for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE") if os.environ.get(name) == profile]
    return named_by[0] if named_by else "the profile asked for"


def _available_profiles() -> list[str]:
    import botocore.session

    return botocore.session.Session().available_profiles


def _region_source(config: StageConfig | None) -> str:
    """Where the region came from, for a message: what `aws_session` reads, in its order."""
    if config is not None and config.region:
        return "cdk.json"
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if os.environ.get(name):
            return name
    return "the `region` of your AWS profile"

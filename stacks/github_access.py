"""Who on GitHub may do what to a stage, and the names the stacks, the workflows and the operator share.

A stage with `github_repository` set gets two roles that only GitHub's OIDC tokens of that repository can
assume: a deploy role for the workflow job that runs in the stage's GitHub environment (where required
reviewers can guard it), and a review role for pull requests, which may only read the stage's templates.
The workflows find the roles' ARNs in repository variables named here. No CDK import: the workflows' helper
(`tools/ci/stages.py`) runs with the system Python before anything is installed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stacks.config import CDK_JSON, CREATE_PROVIDER_KEY, PROJECT, ConfigError

# GitHub's OIDC provider, and the audience aws-actions/configure-aws-credentials asks tokens for.
OIDC_HOST = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
# CREATE_PROVIDER_KEY is a top-level CDK context key, not a stage setting: the provider is one per account (IAM
# is global). When true, the app holds the provider's own shared stack (named here, with the output holding the
# provider's ARN). stacks/config.py names the key with the project's other context keys, so a misspelling of it
# is refused rather than ignored.
PROVIDER_STACK_NAME = f"{PROJECT}-GitHubOidcProvider"
PROVIDER_ARN_OUTPUT = "ProviderArn"
DEPLOY, REVIEW = "deploy", "review"
# The stage's stack holding the roles (`TelegramLake-<stage>-GitHub`), and its outputs: the roles' ARNs, which
# the operator copies into the repository variables.
PART = "GitHub"
ROLE_OUTPUTS = {DEPLOY: "DeployRoleArn", REVIEW: "ReviewRoleArn"}


def subject(repository: str, purpose: str, stage: str) -> str:
    """The OIDC `sub` claim a role trusts: the job in the stage's GitHub environment, or a pull request.

    A job with `environment: NAME` gets `repo:OWNER/NAME:environment:NAME`, whatever its branch: the
    environment's protection rules (required reviewers, allowed branches) decide who gets there. Pull
    requests from the repository's own branches get `repo:OWNER/NAME:pull_request`; forks get no token.
    """
    if purpose == DEPLOY:
        return f"repo:{repository}:environment:{stage}"
    if purpose == REVIEW:
        return f"repo:{repository}:pull_request"
    raise ValueError(f"unknown purpose {purpose!r}")


def role_name(purpose: str, stage: str) -> str:
    """`TelegramLake-dev-GitHubDeploy`: the IAM role a stage's `purpose` jobs assume."""
    return f"{PROJECT}-{stage}-GitHub{purpose.capitalize()}"


def role_variable(purpose: str, stage: str) -> str:
    """`AWS_DEPLOY_ROLE_ARN_DEV`: the repository variable holding a stage's role ARN (GitHub allows A-Z 0-9 _)."""
    return f"AWS_{purpose.upper()}_ROLE_ARN_{stage.upper().replace('-', '_')}"


def creates_oidc_provider(value: Any) -> bool:
    """The top-level context setting: true adds the stack that creates GitHub's OIDC provider to the app; unset
    or false reuses the one the account already has (there can be only one)."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ConfigError(f"`{CREATE_PROVIDER_KEY}` in the CDK context must be true or false, got {value!r}")
    return value


def read_provider_setting(path: Path | None = None) -> bool:
    """The setting as cdk.json holds it, for the tools (the app reads it from the CDK context)."""
    path = path or CDK_JSON
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read `{CREATE_PROVIDER_KEY}` from {path.name}: {error}") from None
    context = document.get("context") if isinstance(document, dict) else None
    return creates_oidc_provider(context.get(CREATE_PROVIDER_KEY) if isinstance(context, dict) else None)

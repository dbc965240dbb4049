"""Who on GitHub may do what to a stage, and the names the stacks, the workflows and the operator share.

A stage with `github_repository` set gets two roles that only GitHub's OIDC tokens of that repository can
assume: a deploy role for the workflow job that runs in the stage's GitHub environment (where required
reviewers can guard it), and a review role for pull requests, which may only read the stage's templates.
The workflows find the roles' ARNs in repository variables named here. No CDK import: the workflows' helper
(`tools/ci/stages.py`) runs with the system Python before anything is installed.
"""

from __future__ import annotations

from typing import Any

from stacks.config import CREATE_PROVIDER_KEY, ConfigError

# GitHub's OIDC provider, and the audience aws-actions/configure-aws-credentials asks tokens for.
OIDC_HOST = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
# CREATE_PROVIDER_KEY is a top-level CDK context key, not a stage setting: the provider is one per account (IAM
# is global), and the account's shared stack must stay identical for every stage. stacks/config.py names it
# with the project's other context keys, so a misspelling of it is refused rather than ignored.
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


def role_variable(purpose: str, stage: str) -> str:
    """`AWS_DEPLOY_ROLE_ARN_DEV`: the repository variable holding a stage's role ARN (GitHub allows A-Z 0-9 _)."""
    return f"AWS_{purpose.upper()}_ROLE_ARN_{stage.upper().replace('-', '_')}"


def creates_oidc_provider(value: Any) -> bool:
    """The top-level context setting: true makes the account's shared stack create GitHub's OIDC provider;
    unset or false reuses the one the account already has (there can be only one)."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ConfigError(f"`{CREATE_PROVIDER_KEY}` in the CDK context must be true or false, got {value!r}")
    return value

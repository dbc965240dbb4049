"""Which stages a GitHub workflow can reach, with which role and region: the plan of `review` and `deploy`.

A stage is reachable from this repository when cdk.json names it as the stage's `github_repository` and the
repository variable with the role's ARN is set (`AWS_REVIEW_ROLE_ARN_<STAGE>`, `AWS_DEPLOY_ROLE_ARN_<STAGE>`:
the outputs of `TelegramLake-<stage>-GitHub`). The region is the stage's `region` from cdk.json, else the
repository variable `AWS_REGION`. Runs with the system Python before anything is installed (stdlib only).

    python3 -m tools.ci.stages review               # output `matrix`: the stages a pull request can diff
    python3 -m tools.ci.stages deploy --stage prod  # outputs `deploy` (true/false), `role` and `region`

Inputs come from the environment: GITHUB_VARS (the workflow's `toJSON(vars)`), GITHUB_REPOSITORY and, for
review, PULL_REQUEST_FROM_FORK and PULL_REQUEST_BY_DEPENDABOT. The outputs go to GITHUB_OUTPUT; why a stage is
left out goes to GITHUB_STEP_SUMMARY (and stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from stacks.config import ConfigError, StageConfig, load_stage, read_stages, stage_names
from stacks.github_access import DEPLOY, PART, REVIEW, ROLE_OUTPUTS, role_variable

REGION_VARIABLE = "AWS_REGION"
# Pull requests whose review gets no OIDC token from GitHub, by the environment variable that says so, and the
# note their review passes with.
WITHOUT_TOKEN = {
    "PULL_REQUEST_FROM_FORK": "Pull requests from forks get no OIDC token from GitHub: no `cdk diff` against AWS.",
    "PULL_REQUEST_BY_DEPENDABOT": "Dependabot's pull requests get no OIDC token (nor the repository's variables) "
    "from GitHub: no `cdk diff` against AWS; the checks still run `make test`.",
}
# An IAM role ARN in any partition: a variable holding something else fails here, not in the AWS action.
_ROLE_ARN = re.compile(r"arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}")


@dataclass(frozen=True)
class Target:
    """Where a workflow job goes: the stage, the role it assumes through OIDC and the region."""

    stage: str
    role: str
    region: str


class Unreachable(Exception):
    """Why a workflow cannot reach a stage. `declared`: cdk.json says this repository may, so the
    repository's setup is missing something (a deploy fails on it; a review only says so)."""

    def __init__(self, message: str, *, declared: bool):
        super().__init__(message)
        self.declared = declared


def plan(config: StageConfig, purpose: str, variables: Mapping[str, str], repository: str) -> Target:
    """The role and region a `purpose` (deploy or review) job of `repository` uses for the stage."""
    stage = config.stage
    if config.github_repository is None:
        raise Unreachable(
            f"stage {stage}: cdk.json sets no `github_repository`, so it has no GitHub roles", declared=False
        )
    if config.github_repository != repository:
        # GitHub ignores the case of a repository's name, the tokens' `sub` claim (matched exactly) does not.
        miscased = config.github_repository.lower() == repository.lower()
        raise Unreachable(
            f"stage {stage}: its roles trust the repository {config.github_repository}, not {repository}"
            + (": spell it in cdk.json exactly as GitHub does" if miscased else ""),
            declared=miscased,
        )
    variable = role_variable(purpose, stage)
    role = variables.get(variable, "")
    if not role:
        raise Unreachable(
            f"stage {stage}: set the repository variable {variable} to the {ROLE_OUTPUTS[purpose]} output of "
            f"{config.stack_name(PART)}",
            declared=True,
        )
    if not _ROLE_ARN.fullmatch(role):
        raise Unreachable(f"stage {stage}: the repository variable {variable} is not an IAM role ARN", declared=True)
    region = config.region or variables.get(REGION_VARIABLE, "")
    if not region:
        raise Unreachable(
            f"stage {stage}: no region: set `region` in cdk.json or the repository variable {REGION_VARIABLE}",
            declared=True,
        )
    return Target(stage=stage, role=role, region=region)


def review_matrix(
    stages: Mapping[str, Any], variables: Mapping[str, str], repository: str, *, without_token: str | None = None
) -> tuple[list[Target], list[str]]:
    """The stages a pull request can diff, and why each other stage is left out; none, with `without_token` as
    the reason, when GitHub gives the pull request no OIDC token."""
    names = stage_names(stages)
    if without_token:
        return [], [without_token]
    targets, reasons = [], []
    for name in names:
        try:
            targets.append(plan(load_stage(stages, name), REVIEW, variables, repository))
        except Unreachable as error:
            reasons.append(str(error))
    return targets, reasons


def _write(variable: str, text: str) -> None:
    """Append to the file GitHub names in `variable` (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY)."""
    path = os.environ.get(variable)
    if not path:
        raise ConfigError(f"{variable} is not set: this runs inside a GitHub Actions job")
    with open(path, "a", encoding="utf-8") as file:
        file.write(text)


def _variables() -> dict[str, str]:
    try:
        variables = json.loads(os.environ.get("GITHUB_VARS") or "{}")
    except ValueError:
        raise ConfigError("GITHUB_VARS is not JSON: pass the workflow's `toJSON(vars)`") from None
    if not isinstance(variables, dict):
        raise ConfigError("GITHUB_VARS is not a JSON object: pass the workflow's `toJSON(vars)`")
    return variables


def _review(repository: str) -> int:
    without_token = next((note for name, note in WITHOUT_TOKEN.items() if os.environ.get(name) == "true"), None)
    targets, reasons = review_matrix(read_stages(), _variables(), repository, without_token=without_token)
    _write("GITHUB_OUTPUT", f"matrix={json.dumps([asdict(target) for target in targets])}\n")
    if reasons:
        lines = ["## cdk diff", "", "No diff for these stages (the review passes):", ""]
        _write("GITHUB_STEP_SUMMARY", "\n".join(lines + [f"- {reason}" for reason in reasons]) + "\n")
        print("\n".join(reasons), file=sys.stderr)
    return 0


def _deploy(repository: str, stage: str) -> int:
    try:
        target = plan(load_stage(read_stages(), stage), DEPLOY, _variables(), repository)
    except Unreachable as error:
        if error.declared:
            raise ConfigError(str(error)) from None
        _write("GITHUB_OUTPUT", "deploy=false\n")
        _write("GITHUB_STEP_SUMMARY", f"Not deployed from GitHub: {error}\n")
        print(error, file=sys.stderr)
        return 0
    _write("GITHUB_OUTPUT", f"deploy=true\nrole={target.role}\nregion={target.region}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tools.ci.stages", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("review", help="the stages a pull request can diff: output `matrix`")
    deploy = commands.add_parser("deploy", help="whether and where to deploy a stage: `deploy`, `role`, `region`")
    deploy.add_argument("--stage", required=True)
    args = parser.parse_args(argv)
    repository = os.environ.get("GITHUB_REPOSITORY", "")
    try:
        return _review(repository) if args.command == "review" else _deploy(repository, args.stage)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

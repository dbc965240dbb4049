"""The Makefile's promises about where things go: offline targets stay offline, deploy-like targets use the
operator's (or the stage's) region and say where they go first, and an empty STAGE never means dev.

`make -n` prints the recipes without running them, so these tests need neither AWS nor the CDK CLI.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from stacks.config import PROJECT_ROOT


def make(*arguments: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "-n", *arguments], cwd=cwd, capture_output=True, text=True, check=False
    )


def recipe_lines(result: subprocess.CompletedProcess, marker: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if marker in line]


@pytest.mark.parametrize("target", ["deploy", "diff", "bootstrap"])
def test_deploy_like_targets_show_the_target_first_and_never_force_a_region(target):
    result = make(target, "STAGE=prod")

    assert result.returncode == 0, result.stderr
    commands = [line for line in result.stdout.splitlines() if "tools target" in line or "/cdk " in line]
    assert "tools target --stage prod" in commands[0]
    assert f"/cdk {target} -c stage=prod" in commands[1]
    assert not [line for line in commands if "AWS_DEFAULT_REGION" in line or "AWS_REGION" in line]


def test_offline_targets_bring_their_own_dummy_credentials_and_region():
    result = make("unit", "synth-all")

    assert result.returncode == 0, result.stderr
    lines = recipe_lines(result, "-m pytest") + recipe_lines(result, "/cdk synth")
    assert len(lines) == 2
    for line in lines:
        assert "AWS_ACCESS_KEY_ID=testing" in line and "AWS_DEFAULT_REGION=us-east-1" in line, line


@pytest.mark.parametrize("target", ["deploy", "diff", "bootstrap", "synth", "destroy"])
def test_an_empty_stage_is_an_error_not_dev(target):
    result = make(target, "STAGE=")

    assert result.returncode != 0
    assert "STAGE is empty" in result.stderr
    assert "cdk" not in result.stdout


def test_a_broken_cdk_json_stops_make_with_one_clear_line(tmp_path):
    shutil.copy(PROJECT_ROOT / "Makefile", tmp_path)
    for package in ("stacks", "lambdas"):  # what `python3 -m stacks.config stages` imports
        shutil.copytree(PROJECT_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "cdk.json").write_text('{"context": {"stages": ', encoding="utf-8")

    result = make("help", cwd=tmp_path)

    assert result.returncode != 0
    assert "cdk.json" in result.stderr and "Traceback" not in result.stderr



FAKE_CDK = """#!/bin/bash
# `cdk list` of one stage's app: the shared stacks and the stage's own; `cdk destroy` records its arguments.
if [ "$1" = list ]; then
  printf '%s\\n' TelegramLake-Account TelegramLake-GitHubOidcProvider \\
    TelegramLake-dev-Ingestion TelegramLake-dev-Etl TelegramLake-dev-Presentation TelegramLake-dev-GitHub
else
  echo "$@" > "$(dirname "$0")/destroyed"
fi
"""


def destroy(tmp_path: Path, *arguments: str) -> tuple[list[str], str]:
    """The recipe of `make destroy STAGE=dev ...` as make prints it, and the arguments its `cdk destroy` gets
    when run against a fake CDK CLI."""
    cdk = tmp_path / "cdk"
    cdk.write_text(FAKE_CDK, encoding="utf-8")
    cdk.chmod(0o755)
    result = make("destroy", "STAGE=dev", f"CDK={cdk}", *arguments)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    recipe = "\n".join(lines[next(i for i, line in enumerate(lines) if line.startswith("stacks=")):])
    subprocess.run(["bash", "-eu", "-o", "pipefail", "-c", recipe], check=True)
    return lines, (tmp_path / "destroyed").read_text(encoding="utf-8").strip()


def test_destroy_removes_the_stages_own_stacks_by_name_and_never_the_shared_ones(tmp_path):
    lines, destroyed = destroy(tmp_path)

    assert [line for line in lines if "tools target" in line or "cdk" in line][0].endswith("tools target --stage dev")
    assert destroyed == (
        "destroy -c stage=dev -o cdk.out/dev --exclusively "
        "TelegramLake-dev-Ingestion TelegramLake-dev-Etl TelegramLake-dev-Presentation TelegramLake-dev-GitHub"
    )


def test_destroy_asks_first_unless_forced(tmp_path):
    """`cdk destroy` asks for confirmation unless given --force."""
    assert "--force" not in destroy(tmp_path)[1]
    assert "--exclusively --force TelegramLake-dev-Ingestion" in destroy(tmp_path, "FORCE=1")[1]

"""`python -m tools target`: the account and region a stage deploys to, as `make deploy` prints it first."""

from __future__ import annotations

import pytest
from moto import mock_aws

from stacks.config import load_stage
from tests.stage_settings import stages_with
from tools import cli
from tools.__main__ import main

MOTO_ACCOUNT = "123456789012"  # what moto's STS answers for any credentials


@pytest.fixture
def cdk_json(monkeypatch):
    """Make the tools read a dev stage with the given settings instead of cdk.json's."""

    def configure(**settings):
        stages = stages_with("dev", **settings)
        monkeypatch.setattr(cli, "load_from_cdk_json", lambda stage=None: load_stage(stages, stage))

    return configure


@pytest.fixture
def no_region(monkeypatch, tmp_path):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))


@mock_aws
def test_the_operators_region_is_used_when_the_stage_pins_none(cdk_json, monkeypatch, capsys):
    """AWS_REGION first, as the CDK CLI reads it (boto3 alone would take AWS_DEFAULT_REGION)."""
    cdk_json(region=None, account=None)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "sa-east-1")

    assert main(["target", "--stage", "dev"]) == 0
    assert capsys.readouterr().out == (
        f"stage dev: account {MOTO_ACCOUNT}, region sa-east-1 (region from your AWS configuration)\n"
    )


@mock_aws
def test_a_pinned_region_wins_over_the_operators(cdk_json, monkeypatch, capsys):
    cdk_json(region="eu-west-1", account=MOTO_ACCOUNT)
    monkeypatch.setenv("AWS_REGION", "sa-east-1")

    assert main(["target", "--stage", "dev"]) == 0
    assert "region eu-west-1 (region from cdk.json)" in capsys.readouterr().out


@mock_aws
def test_credentials_of_another_account_than_the_pinned_one_are_refused(cdk_json, capsys):
    cdk_json(region="eu-west-1", account="210987654321")

    assert main(["target", "--stage", "dev"]) == 1
    assert capsys.readouterr().err == (
        "error: stage dev is pinned to account 210987654321 in cdk.json, "
        f"but your credentials are for account {MOTO_ACCOUNT}\n"
    )


@mock_aws
def test_no_region_anywhere_is_a_clear_error_before_any_call(cdk_json, no_region, capsys):
    cdk_json(region=None, account=None)

    assert main(["target", "--stage", "dev"]) == 1
    assert "no AWS region for stage dev" in capsys.readouterr().err


# ---- the operator's AWS configuration: what is wrong in one line, never botocore's traceback


@pytest.fixture
def aws_config(monkeypatch, tmp_path):
    """An AWS config file with two profiles, as the operator's, and no region from the environment (`make`
    sets AWS_REGION); returns a function writing another file. Under moto: a regression calls no real AWS."""
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    def write(text: str = "[default]\nregion = us-east-1\n\n[profile prod]\nregion = eu-west-1\n") -> str:
        path = tmp_path / "aws-config"
        path.write_text(text, encoding="utf-8")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(path))
        return str(path)

    write()
    with mock_aws():
        yield write


@pytest.mark.parametrize(("environment", "error"), [
    ({"AWS_PROFILE": "prdo"}, "error: AWS profile 'prdo' not found in your AWS config (AWS_PROFILE); "
                              "profiles there: default, prod\n"),
    ({"AWS_REGION": "us east 1"}, "error: 'us east 1' is not an AWS region name (AWS_REGION)\n"),
    ({"AWS_REGION": "us-east-1\n"}, "error: 'us-east-1\\n' is not an AWS region name (AWS_REGION)\n"),
    ({"AWS_DEFAULT_REGION": "eu-west-1 "}, "error: 'eu-west-1 ' is not an AWS region name (AWS_DEFAULT_REGION)\n"),
], ids=["mistyped-profile", "region-with-spaces", "region-with-newline", "default-region"])
def test_a_mistyped_profile_or_a_malformed_region_is_one_line_before_any_call(
    cdk_json, aws_config, monkeypatch, capsys, environment, error
):
    cdk_json(region=None, account=None)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    assert main(["target", "--stage", "dev"]) == 1
    assert capsys.readouterr().err == error


def test_a_broken_aws_config_file_is_one_line_that_quotes_none_of_it(cdk_json, aws_config, capsys):
    path = aws_config("[default\nregion = us-east-1\naws_secret_access_key = not-for-the-terminal\n")
    cdk_json(region=None, account=None)

    assert main(["target", "--stage", "dev"]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: cannot parse {path}, an AWS config or credentials file: File contains no section headers. "
        "Fix or move it.\n"
    )

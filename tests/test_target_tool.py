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

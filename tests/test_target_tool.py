"""`python -m tools target`: the account and region a stage deploys to, as `make deploy` prints it first."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from stacks.config import load_stage
from tests.stage_settings import stages_with
from tools import cli
from tools.__main__ import main
from tools.operate import target

MOTO_ACCOUNT = "123456789012"  # what moto's STS answers for any credentials
REPOSITORY = "octo-org/telegram-lake"
GITHUB_HOST = "token.actions.githubusercontent.com"
REGION = "eu-west-1"


@pytest.fixture
def cdk_json(monkeypatch):
    """Make the tools read a dev stage with the given settings (and the top-level `create_github_oidc_provider`)
    instead of cdk.json's."""

    def configure(create_github_oidc_provider: bool = False, **settings):
        stages = stages_with("dev", **settings)
        monkeypatch.setattr(cli, "load_from_cdk_json", lambda stage=None: load_stage(stages, stage))
        monkeypatch.setattr(target, "read_provider_setting", lambda: create_github_oidc_provider)

    return configure


def github_provider(url: str = f"https://{GITHUB_HOST}") -> str:
    return boto3.client("iam").create_open_id_connect_provider(Url=url, ClientIDList=["sts.amazonaws.com"])[
        "OpenIDConnectProviderArn"
    ]


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


@pytest.fixture
def region(monkeypatch):
    monkeypatch.setenv("AWS_REGION", REGION)


@mock_aws
def test_a_stage_opened_to_github_in_an_account_without_its_provider_is_told_what_to_set(cdk_json, region, capsys):
    cdk_json(github_repository=REPOSITORY, alarm_email="oncall@example.org")
    github_provider("https://accounts.google.com")  # another identity provider is not GitHub's

    assert main(["target", "--stage", "dev"]) == 1
    assert capsys.readouterr().err == (
        f"error: stage dev sets `github_repository` ({REPOSITORY}), but account {MOTO_ACCOUNT} has no GitHub OIDC "
        f"provider ({GITHUB_HOST}) for its roles to trust: set `\"create_github_oidc_provider\": true` in "
        "cdk.json's `context` (next to `stages`), and this deploy creates it.\n"
    )


@mock_aws
def test_creating_the_provider_when_another_one_exists_is_refused(cdk_json, region, capsys):
    """Whoever created it: another project, or this one's older TelegramLake-Account stack (which kept it)."""
    cdk_json(github_repository=REPOSITORY, alarm_email="oncall@example.org", create_github_oidc_provider=True)
    existing = github_provider()

    assert main(["target", "--stage", "dev"]) == 1
    error = capsys.readouterr().err
    assert f"already has GitHub's OIDC provider ({existing}), not created by TelegramLake-GitHubOidcProvider" in error
    assert error.endswith("Leave `create_github_oidc_provider` unset: the stages' roles trust the existing provider.\n")


def deploy_provider_stack(arn: str) -> None:
    """TelegramLake-GitHubOidcProvider as CloudFormation describes it once deployed: its output names the provider."""
    template = {"Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}}, "Outputs": {"ProviderArn": {"Value": arn}}}
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="TelegramLake-GitHubOidcProvider", TemplateBody=json.dumps(template)
    )


@pytest.mark.parametrize("existing", ["this project's", "none yet"])
@mock_aws
def test_creating_the_provider_is_fine_when_none_exists_or_when_its_own_stack_holds_it(
    existing, cdk_json, region, capsys
):
    cdk_json(github_repository=REPOSITORY, alarm_email="oncall@example.org", create_github_oidc_provider=True)
    if existing == "this project's":
        deploy_provider_stack(github_provider())

    assert main(["target", "--stage", "dev"]) == 0
    assert capsys.readouterr().err == ""


@mock_aws
def test_a_provider_stack_holding_another_provider_does_not_make_the_existing_one_its_own(cdk_json, region, capsys):
    cdk_json(github_repository=REPOSITORY, create_github_oidc_provider=True)
    github_provider()
    deploy_provider_stack(f"arn:aws:iam::{MOTO_ACCOUNT}:oidc-provider/{GITHUB_HOST}-old")

    assert main(["target", "--stage", "dev"]) == 1
    assert "not created by TelegramLake-GitHubOidcProvider" in capsys.readouterr().err


@mock_aws
def test_a_stage_opened_to_github_reuses_the_accounts_provider(cdk_json, region, capsys):
    cdk_json(github_repository=REPOSITORY, alarm_email="oncall@example.org")
    github_provider()

    assert main(["target", "--stage", "dev"]) == 0
    assert capsys.readouterr().err == ""


@mock_aws
def test_a_stage_without_github_never_asks_iam(cdk_json, region, monkeypatch):
    cdk_json(alarm_email="oncall@example.org")
    monkeypatch.setattr(target, "github_provider", lambda session: pytest.fail("listed the OIDC providers"))

    assert main(["target", "--stage", "dev"]) == 0


@mock_aws
def test_githubs_own_jobs_skip_the_provider_check_their_token_came_through_it(cdk_json, region, monkeypatch, capsys):
    """The deploy and review roles may not list IAM; that they were assumed at all proves the provider exists."""
    cdk_json(github_repository=REPOSITORY, alarm_email="oncall@example.org")
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    role = boto3.client("iam").create_role(RoleName="TelegramLake-dev-GitHubDeploy", AssumeRolePolicyDocument=trust)
    assumed = boto3.client("sts").assume_role(RoleArn=role["Role"]["Arn"], RoleSessionName="GitHubActions")
    for variable, key in (("AWS_ACCESS_KEY_ID", "AccessKeyId"), ("AWS_SECRET_ACCESS_KEY", "SecretAccessKey"),
                          ("AWS_SESSION_TOKEN", "SessionToken")):
        monkeypatch.setenv(variable, assumed["Credentials"][key])

    assert main(["target", "--stage", "dev"]) == 0  # no provider in this account, and no error
    sts = f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role"
    assert target.is_github_role(f"{sts}/TelegramLake-dev-GitHubReview/x", "dev")
    assert not target.is_github_role(f"{sts}/TelegramLake-prod-GitHubDeploy/x", "dev")
    assert not target.is_github_role(f"arn:aws:iam::{MOTO_ACCOUNT}:user/TelegramLake-dev-GitHubDeploy", "dev")


@mock_aws
def test_a_stage_whose_alarms_nobody_is_mailed_gets_a_warning_line(cdk_json, region, capsys):
    cdk_json(alarm_email=None)

    assert main(["target", "--stage", "dev"]) == 0
    output = capsys.readouterr()
    assert output.out.startswith("stage dev: account ")
    assert output.err.startswith("WARNING: stage dev sets no `alarm_email`: its alarms notify only the SNS topic in ")
    assert output.err.count("\n") == 1


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

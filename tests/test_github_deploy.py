"""GitHub Actions' access to a stage through OIDC: exact trust and permissions of the deploy and review roles,
the account's OIDC provider in its own shared stack, nothing at all when the stage names no repository, cdk-nag
and cfn-lint clean."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from cfnlint.api import ManualArgs, lint

import stacks.github
from stacks.config import DOCTOR_PROBE_CHAT_ID, ConfigError
from stacks.github_access import CREATE_PROVIDER_KEY
from tests.cdk_support import PARTS, arn, build, normalized, policy_statements, resources
from tests.stage_settings import stages_with
from tests.test_nag import findings

REPOSITORY = "octo-org/telegram-lake"
PROVIDER = {CREATE_PROVIDER_KEY: True}  # the top-level context setting that creates the OIDC provider
GITHUB_STACK = "TelegramLake-{stage}-GitHub"
PROVIDER_STACK = "TelegramLake-GitHubOidcProvider"
AUDIENCE = {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}


def partition_arn(*parts: object) -> dict:
    """`arn:${AWS::Partition}...` as CDK renders an ARN in the stack's account: Fn::Join of the parts."""
    return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, *parts]]}


ACCOUNT, REGION = {"Ref": "AWS::AccountId"}, {"Ref": "AWS::Region"}
PROVIDER_ARN = partition_arn(":iam::", ACCOUNT, ":oidc-provider/token.actions.githubusercontent.com")


def synthesized(stage: str, *, context: dict | None = None, **settings) -> dict[str, tuple[cdk.Stack, dict]]:
    """The stage's stacks with `github_repository` set, by name: (stack, template)."""
    _, built = build(stage, stages=stages_with(stage, github_repository=REPOSITORY, **settings), context=context)
    return {stack.stack_name: (stack, Template.from_stack(stack).to_json()) for stack in built}


@pytest.fixture(scope="module")
def dev():
    return synthesized("dev", context=PROVIDER)


@pytest.fixture(scope="module")
def github(dev):
    return dev[GITHUB_STACK.format(stage="dev")]


def role_id(stack: cdk.Stack, construct_id: str) -> str:
    return stack.resolve(stack.node.find_child(construct_id).node.default_child.logical_id)


def trust(template: dict, logical_id: str) -> list[dict]:
    return template["Resources"][logical_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]


def test_the_deploy_role_trusts_only_oidc_tokens_of_the_stages_github_environment_in_the_repository(github):
    stack, template = github

    assert trust(template, role_id(stack, "DeployRole")) == [{
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            **AUDIENCE, "token.actions.githubusercontent.com:sub": "repo:octo-org/telegram-lake:environment:dev",
        }},
        "Effect": "Allow",
        "Principal": {"Federated": PROVIDER_ARN},
    }]


def test_the_review_role_trusts_only_oidc_tokens_of_the_repositorys_pull_requests(github):
    stack, template = github

    assert trust(template, role_id(stack, "ReviewRole")) == [{
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            **AUDIENCE, "token.actions.githubusercontent.com:sub": "repo:octo-org/telegram-lake:pull_request",
        }},
        "Effect": "Allow",
        "Principal": {"Federated": PROVIDER_ARN},
    }]


def bootstrap_role(purpose: str, account: object = ACCOUNT, region: object = REGION) -> dict:
    return partition_arn(":iam::", account, f":role/cdk-hnb659fds-{purpose}-role-", account, "-", region)


def imported(stage: str, part: str, output_id: str) -> dict:
    return {"Fn::ImportValue": f"TelegramLake-{stage}-{part}-{output_id}"}


def bucket(name: dict, objects: str | None = None) -> dict:
    return partition_arn(":s3:::", name, *([objects] if objects else []))


def in_region(service: str, resource: str) -> dict:
    return partition_arn(f":{service}:", REGION, ":", ACCOUNT, f":{resource}")


def doctor_reads(stage: str, engine: str, tables: tuple[str, ...] = ("telegram", "telegram_raw")) -> list[dict]:
    """What `tools doctor` reads after the deploy, on the stage's own resources (and Athena's plan it writes)."""
    database = f"telegram_lake_{stage}"
    results = imported(stage, "Presentation", "ResultsBucketName")
    reads = [
        allow(["cloudformation:DescribeStacks"],
              [in_region("cloudformation", f"stack/TelegramLake-{stage}-{part}/*")
               for part in ("Ingestion", "Etl", "Presentation")]),
        allow("secretsmanager:GetSecretValue", imported(stage, "Ingestion", "WebhookSecretArn")),
        {**allow("s3:ListBucket", [bucket(imported(stage, "Ingestion", "RawBucketName")),
                                   bucket(imported(stage, "Etl", "EnrichedBucketName"))]),
         "Condition": {"StringLike": {"s3:prefix": ["telegram/*"]}}},
        # the webhook probe's own chat's records, and nothing else of the ingest's state
        {**allow("s3:ListBucket", bucket(imported(stage, "Ingestion", "RawBucketName"))),
         "Condition": {"StringLike": {"s3:prefix": [f"ingest-state/chats-seen/*/{DOCTOR_PROBE_CHAT_ID}/*"]}}},
        allow("s3:GetObject",
              bucket(imported(stage, "Ingestion", "RawBucketName"), f"/ingest-state/chats-seen/*/{DOCTOR_PROBE_CHAT_ID}/*")),
        allow("sns:ListSubscriptionsByTopic", imported(stage, "Ingestion", "AlarmTopicArn")),
        allow(["athena:GetQueryExecution", "athena:StartQueryExecution", "athena:StopQueryExecution"],
              in_region("athena", f"workgroup/telegram-lake-{stage}")),
        allow(["glue:GetDatabase", "glue:GetPartition", "glue:GetPartitions", "glue:GetTable"],
              [in_region("glue", "catalog"), in_region("glue", f"database/{database}"),
               *(in_region("glue", f"table/{database}/{table}") for table in tables)]),
        allow(["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"], bucket(results)),
        allow(["s3:AbortMultipartUpload", "s3:ListMultipartUploadParts", "s3:PutObject"], bucket(results, "/*")),
        allow("scheduler:GetSchedule",
              in_region("scheduler", f"schedule/default/TelegramLake-{stage}-DailyRun-{engine}")),
    ]
    if engine == "athena":
        reads += [
            allow("states:DescribeStateMachine", in_region("states", f"stateMachine:TelegramLake-{stage}-Compaction")),
            allow("states:ValidateStateMachineDefinition", "*"),
        ]
    return reads


def allow(actions: str | list[str], resources: object) -> dict:
    return {"Action": actions, "Effect": "Allow", "Resource": resources}


def test_the_deploy_role_may_assume_the_bootstrap_roles_cdk_deploy_uses_and_make_the_doctors_reads(github):
    """`make deploy` ends with `tools doctor`, run in the workflow with this role: reads of the stage's resources
    only, never an object's content (listings under `telegram/`), Athena's EXPLAIN writing its plan."""
    stack, template = github

    assert normalized(policy_statements(template, role_id(stack, "DeployRole"))) == normalized([
        allow("sts:AssumeRole", [bootstrap_role("deploy"), bootstrap_role("file-publishing")]),
        *doctor_reads("dev", "athena"),
    ])


def test_on_the_lambda_engine_the_doctor_reads_no_state_machine_and_the_lambda_engines_schedule():
    pinned = synthesized("prod")
    stack, template = pinned[GITHUB_STACK.format(stage="prod")]

    assert normalized(policy_statements(template, role_id(stack, "DeployRole"))) == normalized([
        allow("sts:AssumeRole", [bootstrap_role("deploy"), bootstrap_role("file-publishing")]),
        *doctor_reads("prod", "lambda"),
    ])


def test_on_a_pseudonymized_stage_the_doctor_also_reads_the_analysts_tables_definition():
    """The doctor EXPLAINs the analysts' saved queries too, which read `telegram_pseudonymized`."""
    pseudonymized = synthesized("prod", analyst_access="pseudonymized")
    stack, template = pseudonymized[GITHUB_STACK.format(stage="prod")]

    assert normalized(policy_statements(template, role_id(stack, "DeployRole"))) == normalized([
        allow("sts:AssumeRole", [bootstrap_role("deploy"), bootstrap_role("file-publishing")]),
        *doctor_reads("prod", "lambda", ("telegram", "telegram_raw", "telegram_pseudonymized")),
    ])


def test_the_bootstrap_roles_are_the_ones_the_cdk_cli_assumes_for_a_pinned_environment():
    """With `account` and `region` pinned the ARNs are literal: the deploy role's is the one the synthesizer
    writes into the cloud assembly for the CLI to assume, and the file-publishing role is its sibling."""
    pinned = synthesized("prod", account="123456789012", region="eu-west-1")
    stack, template = pinned[GITHUB_STACK.format(stage="prod")]
    statements = policy_statements(template, role_id(stack, "DeployRole"))
    [statement] = [s for s in statements if s["Action"] == "sts:AssumeRole"]
    cli_role = stack.synthesizer.deploy_role_arn.replace("${AWS::Partition}", "aws")

    assert cli_role == "arn:aws:iam::123456789012:role/cdk-hnb659fds-deploy-role-123456789012-eu-west-1"
    assert sorted(statement["Resource"]) == [cli_role, cli_role.replace("-deploy-role-", "-file-publishing-role-")]


def test_the_review_role_may_only_read_the_templates_of_the_stages_own_stacks(github):
    stack, template = github
    names = [
        "TelegramLake-GitHubOidcProvider", *(f"TelegramLake-dev-{part}" for part in (*PARTS, "GitHub")),
    ]

    assert normalized(policy_statements(template, role_id(stack, "ReviewRole"))) == normalized([{
        "Action": ["cloudformation:DescribeStacks", "cloudformation:GetTemplate"],
        "Effect": "Allow",
        "Resource": [partition_arn(":cloudformation:", REGION, ":", ACCOUNT, f":stack/{name}/*") for name in names],
    }])
    assert set(resources(template, "AWS::IAM::Role")) == {role_id(stack, "DeployRole"), role_id(stack, "ReviewRole")}


def test_the_role_arns_are_outputs_naming_the_repository_variable_to_set(github):
    stack, template = github

    assert template["Outputs"] == {
        "DeployRoleArn": {
            "Value": arn(role_id(stack, "DeployRole")),
            "Description": "Set as the GitHub repository variable AWS_DEPLOY_ROLE_ARN_DEV",
        },
        "ReviewRoleArn": {
            "Value": arn(role_id(stack, "ReviewRole")),
            "Description": "Set as the GitHub repository variable AWS_REVIEW_ROLE_ARN_DEV",
        },
    }


def test_the_github_stack_deploys_after_the_stacks_it_imports_from_and_carries_the_stage_tags(dev, github):
    """The provider's stack (the roles trust its provider), and the stage's: the doctor's reads import their
    exported outputs."""
    stack, template = github
    stage = sorted(f"TelegramLake-dev-{part}" for part in ("Ingestion", "Etl", "Presentation"))

    def names(stacks: list[cdk.Stack]) -> list[str]:
        return sorted(stack.stack_name for stack in stacks)

    assert names(stack.dependencies) == sorted([PROVIDER_STACK, *stage])
    for role in resources(template, "AWS::IAM::Role").values():
        assert {"Key": "stage", "Value": "dev"} in role["Properties"]["Tags"]
    # With the account's own provider, only the stage's stacks.
    assert names(synthesized("dev")[GITHUB_STACK.format(stage="dev")][0].dependencies) == stage


def test_without_github_repository_the_stage_has_no_github_stack_and_the_account_no_provider():
    _, built = build("dev")

    assert [stack.stack_name for stack in built] == [
        "TelegramLake-dev-Ingestion", "TelegramLake-dev-Etl", "TelegramLake-dev-Presentation",
    ]
    for stack in built:
        assert not resources(Template.from_stack(stack).to_json(), "AWS::IAM::OIDCProvider"), stack.stack_name


def test_the_provider_is_alone_in_its_own_retained_stack_which_exists_only_when_the_context_says_so(dev):
    """A deploy from a checkout without the setting has no such stack, so it cannot remove the provider."""
    stack, template = dev[PROVIDER_STACK]
    without = synthesized("dev")

    provider_id = stack.resolve(stack.node.find_child("Provider").node.default_child.logical_id)
    assert list(template["Resources"]) == [provider_id]
    provider = template["Resources"][provider_id]
    assert provider["Properties"]["Url"] == "https://token.actions.githubusercontent.com"
    assert provider["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]
    assert (provider["DeletionPolicy"], provider["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert template["Outputs"]["ProviderArn"]["Value"] == {"Ref": provider_id}  # how `tools target` knows it
    assert {"Key": "project", "Value": "TelegramLake"} in provider["Properties"]["Tags"]
    assert "stage" not in json.dumps(provider["Properties"]["Tags"])  # shared by every stage
    assert PROVIDER_STACK not in without
    # Reusing the account's provider: the roles trust the same, fixed ARN.
    github, template = without[GITHUB_STACK.format(stage="dev")]
    assert trust(template, role_id(github, "DeployRole"))[0]["Principal"] == {"Federated": PROVIDER_ARN}


def test_no_setting_changes_the_shared_stack_whichever_stage_deploys_it(dev):
    """Last deploy wins on a shared stack: dev naming a repository and prod naming none must leave the
    provider's stack identical."""
    _, prod = build("prod", context=PROVIDER)
    shared = {stack.stack_name: Template.from_stack(stack).to_json() for stack in prod}

    assert dev[PROVIDER_STACK][1] == shared[PROVIDER_STACK]


@pytest.mark.parametrize("value", ["true", 1, ["yes"]])
def test_the_provider_setting_must_be_a_json_boolean(value):
    with pytest.raises(ConfigError, match=f"`{CREATE_PROVIDER_KEY}` in the CDK context must be true or false"):
        build("dev", context={CREATE_PROVIDER_KEY: value})


def test_cdk_nag_finds_nothing_unacknowledged(tmp_path):
    app, _ = build(
        "dev", stages=stages_with("dev", github_repository=REPOSITORY), context=PROVIDER, nag=True, outdir=tmp_path
    )
    try:
        app.synth()
    except RuntimeError:
        pytest.fail(f"cdk-nag findings: {sorted(findings(tmp_path))}")

    assert findings(tmp_path) == set()


def test_every_acknowledgment_of_the_github_stack_suppresses_a_real_finding(tmp_path, monkeypatch):
    recorded: list[tuple[str, str, str]] = []
    def record(construct, rule: str, reason: str) -> None:
        recorded.append((rule, construct.node.path, reason))

    monkeypatch.setattr(stacks.github, "acknowledge", record)
    app, _ = build("dev", stages=stages_with("dev", github_repository=REPOSITORY), nag=True, outdir=tmp_path)
    with pytest.raises(RuntimeError, match="^ValidationFailed"):
        app.synth()
    reported = findings(tmp_path)

    # One wildcard per stack the review role reads (the stack id CloudFormation adds), and of the deploy role's
    # reads: one per stack whose outputs the doctor reads, the probe chat's records, the EXPLAIN plans' keys,
    # ValidateStateMachineDefinition.
    assert len(recorded) == 4 + 3 + 1 + 1 + 1
    for rule, path, reason in recorded:
        assert any(found == rule and where.startswith(path + "/") for found, where in reported), (rule, path)
        assert len(reason) >= 40


def test_cfn_lint_accepts_the_github_stack_and_the_provider_stack(dev):
    for name in (PROVIDER_STACK, GITHUB_STACK.format(stage="dev")):
        matches = lint(json.dumps(dev[name][1]), config=ManualArgs(regions=["us-east-1"], ignore_checks=["W3005"]))
        assert [str(match) for match in matches] == [], name

"""The app as a whole: stage selection, stack names and order, environment, tags, secure buckets, data retention."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from stacks.app import build_app
from stacks.config import ConfigError
from stacks.references import keep_retired
from tests.cdk_support import PARTS, build, resources, stage_fixture
from tests.stage_settings import CDK_CONTEXT

TLS_ONLY = {
    "Action": "s3:*",
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    "Effect": "Deny",
    "Principal": {"AWS": "*"},
}
# Resource types of this app that CloudFormation can tag: each must carry the project and stage tags.
TAGGABLE = {
    "AWS::S3::Bucket", "AWS::Lambda::Function", "AWS::IAM::Role", "AWS::Logs::LogGroup", "AWS::SecretsManager::Secret",
    "AWS::SQS::Queue", "AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Stage", "AWS::Athena::WorkGroup",
    "AWS::CloudWatch::Alarm", "AWS::KinesisFirehose::DeliveryStream",
}
DATA_RESOURCES = ("AWS::S3::Bucket", "AWS::Logs::LogGroup", "AWS::SecretsManager::Secret")


dev = stage_fixture("dev")
prod = stage_fixture("prod")
pinned = stage_fixture("dev", name="pinned", account="123456789012", region="eu-west-1")


@pytest.fixture(scope="module")
def stacks_without_a_stage() -> list[cdk.Stack]:
    """The app as `cdk synth` builds it when no `-c stage=...` is given (cdk.json sets no stage)."""
    return build_app(cdk.App(context={**CDK_CONTEXT, "aws:cdk:bundling-stacks": []}), nag=False)


@pytest.fixture(scope="module", params=["dev", "prod"])
def stage_app(request, dev, prod):
    return {"dev": dev, "prod": prod}[request.param]


def test_stack_names_carry_the_stage_and_deploy_in_order(stage_app):
    stage = stage_app.config.stage
    ingestion, etl, presentation = (stage_app.stacks[part] for part in PARTS)

    assert [stage_app.stacks[part].stack_name for part in PARTS] == [f"TelegramLake-{stage}-{part}" for part in PARTS]
    assert ingestion.dependencies == []
    assert etl.dependencies == [ingestion]
    assert presentation.dependencies == [ingestion, etl]


def test_no_stack_sets_api_gateways_account_wide_logging_role(stage_app):
    """An HTTP API has no execution logs, so no stage needs (or repoints) the role one account has per region:
    the shared `TelegramLake-Account` stack that set it is gone (issue 17)."""
    assembly = stage_app.app.synth()

    assert "TelegramLake-Account" not in [stack.stack_name for stack in assembly.stacks]
    for part in PARTS:
        assert not resources(stage_app.template(part), "AWS::ApiGateway::Account"), part


def test_stacks_are_environment_agnostic_unless_the_stage_sets_account_and_region(dev, pinned):
    for stack in dev.stacks.values():
        assert cdk.Token.is_unresolved(stack.account) and cdk.Token.is_unresolved(stack.region)
    assert {(stack.account, stack.region) for stack in pinned.stacks.values()} == {("123456789012", "eu-west-1")}


def test_the_stage_comes_from_the_context_and_defaults_to_dev(stacks_without_a_stage):
    assert [stack.stack_name for stack in stacks_without_a_stage] == [f"TelegramLake-dev-{part}" for part in PARTS]


def test_an_unknown_stage_or_missing_stages_fail_the_synth_with_a_clear_message():
    with pytest.raises(ConfigError, match="unknown stage 'qa'"):
        build("qa")
    with pytest.raises(ConfigError, match="no `stages` in the CDK context"):
        build_app(cdk.App(context={"stage": "dev"}), nag=False)


@pytest.mark.parametrize("key", ["create_github_oidc_providr", "create-github-oidc-provider", "Stage"])
def test_a_misspelled_project_key_in_the_context_or_from_c_fails_the_synth_naming_it(key):
    """`-c Stage=prod` or a typo of the OIDC switch would otherwise build something else in silence."""
    with pytest.raises(ConfigError, match=rf"unknown key '{key}' in the CDK context \(did you mean"):
        build("dev", context={key: True})


def test_every_stack_and_taggable_resource_is_tagged_with_project_and_stage(stage_app):
    expected = {"project": "TelegramLake", "stage": stage_app.config.stage}
    assembly = stage_app.app.synth()

    for part in PARTS:
        assert assembly.get_stack_by_name(stage_app.stacks[part].stack_name).tags == expected
        for logical_id, resource in stage_app.template(part)["Resources"].items():
            tags = resource.get("Properties", {}).get("Tags")
            if resource["Type"] in TAGGABLE:
                assert tags is not None, f"{part}/{logical_id} has no tags"
            if tags is not None:
                as_dict = {tag["Key"]: tag["Value"] for tag in tags} if isinstance(tags, list) else tags
                assert expected.items() <= as_dict.items(), f"{part}/{logical_id}"
                assert as_dict.get("stage") == expected.get("stage"), f"{part}/{logical_id}"


def test_every_bucket_is_encrypted_private_owner_enforced_and_tls_only(stage_app):
    buckets = 0
    for part in PARTS:
        template = stage_app.template(part)
        policies = {
            policy["Properties"]["Bucket"]["Ref"]: policy["Properties"]["PolicyDocument"]
            for policy in resources(template, "AWS::S3::BucketPolicy").values()
        }
        for logical_id, bucket in resources(template, "AWS::S3::Bucket").items():
            buckets += 1
            properties = bucket["Properties"]
            assert properties["BucketEncryption"] == {
                "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            }
            assert properties["PublicAccessBlockConfiguration"] == {
                "BlockPublicAcls": True, "BlockPublicPolicy": True,
                "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
            }
            assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
            tls = [s for s in policies[logical_id]["Statement"] if {k: s[k] for k in TLS_ONLY if k in s} == TLS_ONLY]
            assert len(tls) == 1, f"{part}/{logical_id} accepts plain HTTP"
    assert buckets == 6  # raw, enriched, results and one access-log bucket per stack


def test_prod_retains_every_bucket_log_group_and_secret(prod):
    for part in PARTS:
        for resource_type in DATA_RESOURCES:
            for logical_id, resource in resources(prod.template(part), resource_type).items():
                assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain"), logical_id


def test_dev_follows_its_config_and_removes_them_with_the_stack(dev):
    assert dev.config.removal_policy == "destroy"
    for part in PARTS:
        for resource_type in DATA_RESOURCES:
            for logical_id, resource in resources(dev.template(part), resource_type).items():
                assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Delete", "Delete"), logical_id


def _values_of(node, key: str):
    """Every value of an intrinsic function (e.g. `Fn::ImportValue`) anywhere in a template."""
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key:
                yield value
            yield from _values_of(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from _values_of(item, key)


def test_stacks_read_each_other_only_through_exports_that_cannot_change_while_in_use(stage_app):
    """A weak `Fn::GetStackOutput` is read only when the consumer deploys, and `cdk deploy --all` skips an
    unchanged consumer: a replaced raw bucket would leave the ETL on the old one, silently. An export in use
    cannot change: CloudFormation fails the producer's update instead (issue 8, section 6)."""
    stage = stage_app.config.stage
    exported = {
        output["Export"]["Name"]: part
        for part in PARTS
        for output in stage_app.template(part).get("Outputs", {}).values()
        if "Export" in output
    }
    imported = {part: set(_values_of(stage_app.template(part), "Fn::ImportValue")) for part in PARTS}

    assert not [part for part in PARTS if list(_values_of(stage_app.template(part), "Fn::GetStackOutput"))]
    # The Athena compaction engine (dev) shares the ETL's dead-letter queue and the stage's alarm topic.
    athena_engine = {f"TelegramLake-{stage}-Etl-FailedRunsQueueArn", f"TelegramLake-{stage}-Ingestion-AlarmTopicArn"}
    # The dashboard (Etl) reads the webhook's metrics by its HTTP API's id.
    assert imported == {
        "Ingestion": set(),
        "Etl": {
            f"TelegramLake-{stage}-Ingestion-RawBucketName", f"TelegramLake-{stage}-Ingestion-AlarmTopicArn",
            f"TelegramLake-{stage}-Ingestion-WebhookApiId",
        },
        "Presentation": {
            f"TelegramLake-{stage}-Ingestion-RawBucketName", f"TelegramLake-{stage}-Etl-EnrichedBucketName",
            *(athena_engine if stage == "dev" else ()),
        },
    }
    for part, names in imported.items():
        for name in names:
            assert stage_app.stacks[exported[name]] in stage_app.stacks[part].dependencies


def test_a_retired_export_stays_published_beside_its_successor_until_the_next_release():
    """Step 1 of renaming an output the Etl stack imports (docs/operating.md, "A deploy fails on an export in
    use"): the new export is published and imported, the old one keeps its name and value for one release."""
    _, stacks = build("prod")
    ingestion, etl = stacks[0], stacks[1]
    bucket = ingestion.node.find_child("RawBucket")

    keep_retired(ingestion, "RawBucketNameBefore", bucket.bucket_name)
    outputs = Template.from_stack(ingestion).to_json()["Outputs"]

    retired, current = outputs["RawBucketNameBefore"], outputs["RawBucketName"]
    assert retired["Export"] == {"Name": "TelegramLake-prod-Ingestion-RawBucketNameBefore"}
    assert retired["Value"] == current["Value"] == {"Ref": ingestion.resolve(bucket.node.default_child.logical_id)}
    assert retired["Description"].startswith("Retired:")
    imported = list(_values_of(Template.from_stack(etl).to_json(), "Fn::ImportValue"))
    assert "TelegramLake-prod-Ingestion-RawBucketName" in imported
    assert "TelegramLake-prod-Ingestion-RawBucketNameBefore" not in imported

"""PolicyGrantee: a managed policy as the grantee of CDK's grants, for identities the app does not own."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from stacks.grantees import PolicyGrantee
from tests.cdk_support import arn, normalized, resources


def policy_and_grantee(stack: cdk.Stack) -> tuple[iam.ManagedPolicy, PolicyGrantee]:
    policy = iam.ManagedPolicy(stack, "Policy")
    return policy, PolicyGrantee(policy)


def test_an_l2_grant_becomes_a_statement_of_the_policy_and_leaves_the_bucket_policy_alone():
    stack = cdk.Stack(cdk.App())
    bucket = s3.Bucket(stack, "Bucket")
    policy, grantee = policy_and_grantee(stack)

    grant = bucket.grant_put(grantee)
    template = Template.from_stack(stack).to_json()
    granted = [stack.resolve(statement.to_statement_json()) for statement in grant.principal_statements]

    assert grant.success and granted
    assert normalized(the_policy(template)["PolicyDocument"]["Statement"]) == normalized(granted)
    assert {json.dumps(statement["Resource"]) for statement in granted} == {
        json.dumps({"Fn::Join": ["", [arn(stack.resolve(bucket.node.default_child.logical_id)), "/*"]]})
    }
    assert not resources(template, "AWS::S3::BucketPolicy")


def test_a_grant_by_arn_lands_in_the_policy_too():
    stack = cdk.Stack(cdk.App())
    policy, grantee = policy_and_grantee(stack)

    iam.Grant.add_to_principal(grantee=grantee, actions=["athena:GetWorkGroup"], resource_arns=["arn:aws:athena:x"])

    statements = the_policy(Template.from_stack(stack).to_json())["PolicyDocument"]["Statement"]
    assert normalized(statements) == normalized(
        [{"Effect": "Allow", "Action": "athena:GetWorkGroup", "Resource": "arn:aws:athena:x"}]
    )


@pytest.mark.parametrize(
    "misuse",
    [
        lambda stack, grantee: s3.Bucket(stack, "Bucket").add_to_resource_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"], principals=[grantee])
        ),
        lambda stack, grantee: iam.Role(stack, "Role", assumed_by=grantee),
    ],
    ids=["named in a resource policy", "trusted by a role"],
)
def test_it_cannot_stand_for_a_principal_in_a_resource_or_trust_policy(misuse):
    """A policy ARN as a principal means nothing to IAM: the synth fails instead of writing it."""
    stack = cdk.Stack(cdk.App())
    _, grantee = policy_and_grantee(stack)

    with pytest.raises(Exception, match="is a managed policy, not a principal"):
        misuse(stack, grantee)
        Template.from_stack(stack)


def the_policy(template: dict) -> dict:
    (policy,) = resources(template, "AWS::IAM::ManagedPolicy").values()
    return policy["Properties"]

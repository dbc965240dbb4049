"""The account's shared stack: API Gateway's logging role, set once per account and region for every stage."""

from __future__ import annotations

import pytest

from tests.cdk_support import arn, resources, stage_fixture, the_resource

dev = stage_fixture("dev")


@pytest.fixture(scope="module")
def template(dev):
    return dev.template("Account")


def test_the_account_setting_points_api_gateway_at_a_role_only_api_gateway_may_assume(dev, template):
    role_id = dev.logical_id("Account", "CloudWatchRole")
    role = template["Resources"][role_id]

    assert the_resource(template, "AWS::ApiGateway::Account")["Properties"] == {"CloudWatchRoleArn": arn(role_id)}
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"}}
    ]
    assert role["Properties"]["ManagedPolicyArns"] == [
        {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"},
                           ":iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"]]}
    ]


def test_the_role_outlives_the_stack_because_the_account_setting_keeps_pointing_at_it(dev, template):
    role = template["Resources"][dev.logical_id("Account", "CloudWatchRole")]

    assert (role["DeletionPolicy"], role["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert set(resources(template, "AWS::IAM::Role")) == {dev.logical_id("Account", "CloudWatchRole")}

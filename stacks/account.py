"""What the lake needs once per AWS account and region, whatever its stages: today, API Gateway's logging role.

API Gateway writes every REST API's execution logs in a region with ONE role, an account setting. A stage
that set it itself (`RestApi(cloud_watch_role=True)`) would repoint it to its own role on every deploy, and
leave that role behind on delete; deleting the role later would break logging for every REST API in the
region. This stack owns the setting instead: every stage's app contains it with the same name and the same
template (no stage tag), so deploying dev and then prod in one account changes nothing the second time,
and no stage deletes or repoints it. The role is retained if the stack is ever deleted, because the
account setting would still point at it.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.compliance import acknowledge
from stacks.config import PROJECT

STACK_NAME = f"{PROJECT}-Account"
API_GATEWAY_LOGGING_POLICY = "service-role/AmazonAPIGatewayPushToCloudWatchLogs"


class AccountStack(cdk.Stack):
    """Shared by every stage in an account and region: API Gateway's CloudWatch role for every webhook API.

    Every stage's app builds it from nothing stage-specific, so all stages synthesize the same template."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs):
        super().__init__(scope, construct_id, **kwargs)
        role = iam.Role(
            self,
            "CloudWatchRole",
            description="API Gateway writes the REST APIs' execution and access logs of this region with this role",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(API_GATEWAY_LOGGING_POLICY)],
        )
        role.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        apigw.CfnAccount(self, "Account", cloud_watch_role_arn=role.role_arn)
        acknowledge(
            role,
            f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{API_GATEWAY_LOGGING_POLICY}]",
            "API Gateway's account-level logging role; this AWS managed policy is the documented one for it.",
        )

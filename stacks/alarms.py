"""Where a stack's alarms are sent: an encrypted SNS topic, mailed to the stage's `alarm_email` when set.

The ETL stack outputs the topic's ARN, so a team can also subscribe a chat integration or a pager to it later.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from stacks.config import StageConfig

CLOUDWATCH = "cloudwatch.amazonaws.com"


class AlarmTopic(Construct):
    """An SNS topic for alarm and OK notifications: TLS-only, encrypted with its own KMS key.

    Not the AWS managed `alias/aws/sns` key: its key policy cannot be changed to let CloudWatch use it,
    so every alarm action on such a topic fails ("CloudWatch Alarms does not have authorization to
    access the SNS topic encryption key") and the alarm stays silent. The key policy grants CloudWatch
    exactly the two calls publishing needs; the topic policy lets only this account's alarms publish.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, subject: str):
        super().__init__(scope, construct_id)
        key = kms.Key(
            self,
            "Key",
            description=f"Encrypts the {subject} alarm notifications of stage {config.stage}",
            enable_key_rotation=True,
            # It protects messages only while SNS delivers them: nothing to decrypt once the topic is gone.
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.topic = sns.Topic(
            self, "Topic", display_name=f"{config.stack_name(subject)} alarms", master_key=key, enforce_ssl=True
        )
        key.grant(iam.ServicePrincipal(CLOUDWATCH), "kms:Decrypt", "kms:GenerateDataKey*")
        stack = cdk.Stack.of(self)
        this_accounts_alarms = stack.format_arn(
            service="cloudwatch", resource="alarm", resource_name="*", arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisAccountsAlarms",
                principals=[iam.ServicePrincipal(CLOUDWATCH)],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"ArnLike": {"aws:SourceArn": this_accounts_alarms}},
            )
        )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))

    def notify(self, alarm: cloudwatch.Alarm) -> None:
        """Send the alarm's transitions to ALARM and back to OK to the topic."""
        action = cloudwatch_actions.SnsAction(self.topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)

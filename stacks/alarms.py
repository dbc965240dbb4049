"""Where the stage's alarms are sent: one encrypted SNS topic, mailed to the stage's `alarm_email` when set.

The Ingestion stack, deployed first, creates the topic and outputs its ARN; the later stacks' alarms
notify it through that output, and a team can also subscribe a chat integration or a pager to it later.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from stacks import outputs
from stacks.alarm_subscribers import unheard_alarms
from stacks.config import PROJECT, StageConfig
from stacks.references import stack_output

CLOUDWATCH = "cloudwatch.amazonaws.com"
# Every alarm of the lake counts failures over this period and is raised by the first one.
ALARM_PERIOD = cdk.Duration.minutes(5)
ANY_FAILURE = 1
# The id of the synth-time warning of a stage whose alarms nobody is subscribed to (acknowledge it with this id).
NO_SUBSCRIBER_WARNING = f"{PROJECT}:alarmsWithoutSubscriber"


class AlarmTopic(Construct):
    """An SNS topic for alarm and OK notifications: TLS-only, encrypted with its own KMS key.

    Not the AWS managed `alias/aws/sns` key: its key policy cannot be changed to let CloudWatch use it,
    so every alarm action on such a topic fails ("CloudWatch Alarms does not have authorization to
    access the SNS topic encryption key") and the alarm stays silent. The key policy grants CloudWatch
    exactly the two calls publishing needs; the topic policy lets only this stage's alarms (named
    `TelegramLake-<stage>-...` in this account and region: every stack of the stage) publish.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig):
        super().__init__(scope, construct_id)
        key = kms.Key(
            self,
            "Key",
            description=f"Encrypts the alarm notifications of stage {config.stage}",
            enable_key_rotation=True,
            # It protects messages only while SNS delivers them: nothing to decrypt once the topic is gone.
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.topic = sns.Topic(
            self, "Topic", display_name=f"{PROJECT} {config.stage} alarms", master_key=key, enforce_ssl=True
        )
        key.grant(iam.ServicePrincipal(CLOUDWATCH), "kms:Decrypt", "kms:GenerateDataKey*")
        this_stages_alarms = cdk.Stack.of(self).format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=alarm_name(config, "*"),
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisStagesAlarms",
                principals=[iam.ServicePrincipal(CLOUDWATCH)],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"ArnLike": {"aws:SourceArn": this_stages_alarms}},
            )
        )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        else:
            # Printed by `cdk synth` and `cdk deploy`; `python -m tools target` (run first by make) says it too.
            cdk.Annotations.of(self.topic).add_warning_v2(NO_SUBSCRIBER_WARNING, unheard_alarms(config))


def alarm_topic_from_output(consumer: cdk.Stack, construct_id: str, *, producer: cdk.Stack) -> sns.ITopic:
    """The stage's alarm topic, read from the ALARM_TOPIC_ARN output of the stack that created it."""
    arn = stack_output(consumer, producer=producer, output_id=outputs.ALARM_TOPIC_ARN)
    return sns.Topic.from_topic_arn(consumer, construct_id, arn)


def alarm_name(config: StageConfig, construct_id: str) -> str:
    """`TelegramLake-dev-UpdatesNotStored`: the stage in every alarm's name, which the topic policy relies on."""
    return f"{PROJECT}-{config.stage}-{construct_id}"


def notify(alarm: cloudwatch.Alarm, topic: sns.ITopic) -> cloudwatch.Alarm:
    """Both transitions notify `topic`: raised, and cleared."""
    action = cloudwatch_actions.SnsAction(topic)
    alarm.add_alarm_action(action)
    alarm.add_ok_action(action)
    return alarm


def alarm_on_any(
    scope: Construct,
    construct_id: str,
    metric: cloudwatch.IMetric,
    *,
    config: StageConfig,
    description: str,
    topic: sns.ITopic,
    threshold: int = ANY_FAILURE,
) -> cloudwatch.Alarm:
    """Raised when a period counts `threshold` (by default one failure), cleared by a period without.

    Missing data means nothing ran (no request, no invocation), so it is not breaching.
    """
    return _one_period_alarm(
        scope, construct_id, metric, threshold, cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        config=config, description=description, topic=topic,
    )


def alarm_on_shortfall(
    scope: Construct,
    construct_id: str,
    metric: cloudwatch.IMetric,
    *,
    threshold: float,
    config: StageConfig,
    description: str,
    topic: sns.ITopic,
) -> cloudwatch.Alarm:
    """Raised when a period's value is below `threshold` (a success rate under 1), cleared by a period at or above
    it. Missing data means nothing was attempted, so it is not breaching."""
    return _one_period_alarm(
        scope, construct_id, metric, threshold, cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        config=config, description=description, topic=topic,
    )


def _one_period_alarm(
    scope: Construct,
    construct_id: str,
    metric: cloudwatch.IMetric,
    threshold: float,
    comparison: cloudwatch.ComparisonOperator,
    *,
    config: StageConfig,
    description: str,
    topic: sns.ITopic,
) -> cloudwatch.Alarm:
    """Judged on each period alone; missing data is not breaching; both transitions notify `topic`."""
    alarm = metric.create_alarm(
        scope,
        construct_id,
        alarm_name=alarm_name(config, construct_id),
        alarm_description=description,
        threshold=threshold,
        evaluation_periods=1,
        comparison_operator=comparison,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    return notify(alarm, topic)


def log_event_count(
    scope: Construct,
    construct_id: str,
    log_group: logs.ILogGroup,
    pattern: logs.IFilterPattern,
    *,
    config: StageConfig,
    metric_name: str,
) -> cloudwatch.Metric:
    """The number of `log_group`'s events matching `pattern`, per ALARM_PERIOD, as a metric of the stage's
    namespace: for what a service writes to a log but counts in no metric of its own."""
    count = logs.MetricFilter(
        scope,
        construct_id,
        log_group=log_group,
        filter_pattern=pattern,
        metric_namespace=config.metrics_namespace,
        metric_name=metric_name,
        metric_value="1",
    )
    return count.metric(period=ALARM_PERIOD, statistic="Sum")


def alarm_on_silence(
    scope: Construct,
    construct_id: str,
    metric: cloudwatch.IMetric,
    *,
    hours: int,
    config: StageConfig,
    description: str,
    topic: sns.ITopic,
) -> cloudwatch.Alarm:
    """Raised when none of the last `hours` hourly periods has a datapoint of at least one: what should happen
    at least every `hours` hours did not. Missing data is exactly that, so it is breaching. `metric`'s period
    must be an hour."""
    alarm = metric.create_alarm(
        scope,
        construct_id,
        alarm_name=alarm_name(config, construct_id),
        alarm_description=description,
        threshold=1,
        evaluation_periods=hours,
        datapoints_to_alarm=hours,
        comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
    )
    return notify(alarm, topic)

"""Ingestion: Telegram's webhook -> API Gateway (REST) -> ingest Lambda -> raw bucket, byte for byte."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from lambdas.common.layout import CHAT_LINKS_PREFIX, CHATS_SEEN_PREFIX, CHATS_SEEN_RETENTION_DAYS, PREFIX
from lambdas.ingest import metrics
from lambdas.ingest.budget import FUNCTION_TIMEOUT_SECONDS
from lambdas.ingest.webhook import SECRET_TOKEN_HEADER, WEBHOOK_PATH
from stacks import outputs
from stacks.alarms import ALARM_PERIOD, AlarmTopic, alarm_on_any, alarm_on_silence
from stacks.compliance import acknowledge, nag_resource
from stacks.config import StageConfig
from stacks.functions import lake_function, log_group
from stacks.metrics import lake_metric
from stacks.packaging import runtime_layer
from stacks.references import publish
from stacks.storage import AccessLogBucket, SecureBucket, grant_listing, grant_on_objects, removal_policy

# Telegram accepts 1-256 characters of A-Z a-z 0-9 _ - as secret_token; letters and digits are a subset.
SECRET_LENGTH = 64
# Refused tokens in one ALARM_PERIOD that make a burst: after a rotation that Telegram was not told about,
# every delivery and retry is refused; a stray scanner's single guess is not a burst.
REJECTED_TOKENS_BURST = 5
# Over this period, groups that wrote while nothing was stored mean the allowlist misses the stage's group.
UNLISTED_CHATS_PERIOD = cdk.Duration.hours(1)
# The "nothing stored" alarm counts hours: CloudWatch evaluates an hourly alarm over at most 7 days.
HOUR = cdk.Duration.hours(1)
# What the ingest keeps under STATE_PREFIX is rewritten per update (chats seen): old versions go in a day.
STATE_NONCURRENT_DAYS = 1


class IngestionStack(cdk.Stack):
    """Receives every webhook update and stores the allowed chats' updates unchanged in the raw bucket.

    Deployed first, it also holds the stage's alarm topic, which the later stacks' alarms notify too.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs):
        super().__init__(scope, construct_id, **kwargs)
        access_logs = AccessLogBucket(self, "AccessLogs", config=config)
        raw_bucket = SecureBucket(
            self, "RawBucket", config=config, access_logs=access_logs, lifecycle_rules=_raw_lifecycle(config)
        )
        secret = secretsmanager.Secret(
            self,
            "WebhookSecret",
            description=f"Telegram webhook secret_token of {config.stack_name('Ingestion')} (plain string)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=SECRET_LENGTH, exclude_punctuation=True, include_space=False
            ),
            removal_policy=removal_policy(config),
        )
        acknowledge(
            secret,
            "AwsSolutions-SMG4",
            "Telegram holds a copy of this token (setWebhook secret_token); an automatic rotation would reject "
            "every update until `python -m tools webhook set` runs. Rotate by changing the secret, then webhook set.",
        )
        function = lake_function(
            self,
            "Ingest",
            config=config,
            package="ingest",
            description="Stores each allowed Telegram webhook update unchanged in the raw bucket",
            function_name=ingest_function_name(config),
            memory_mb=256,
            timeout=cdk.Duration.seconds(FUNCTION_TIMEOUT_SECONDS),
            environment={
                "RAW_BUCKET": raw_bucket.bucket_name,
                "WEBHOOK_SECRET_ARN": secret.secret_arn,
                "ALLOWED_CHAT_IDS": ",".join(str(chat_id) for chat_id in config.allowed_chat_ids),
                "TIMEZONE": config.timezone,
                # Powertools' own variable: each stage's metrics in their own namespace.
                "POWERTOOLS_METRICS_NAMESPACE": config.metrics_namespace,
            },
            layers=[runtime_layer(self, config)],
        )
        self._grant_raw_access(function, raw_bucket)
        secret.grant_read(function)
        api = WebhookApi(self, "WebhookApi", config=config, handler=function)
        alarm_topic = AlarmTopic(self, "AlarmTopic", config=config)
        IngestionAlarms(self, "Alarms", config=config, function=function, stage=api.stage, topic=alarm_topic.topic)

        cdk.CfnOutput(
            self, outputs.WEBHOOK_URL, value=api.webhook_url, description="POST URL for Telegram's setWebhook"
        )
        cdk.CfnOutput(
            self, outputs.WEBHOOK_SECRET_ARN, value=secret.secret_arn, description="The webhook's secret_token"
        )
        publish(self, outputs.RAW_BUCKET_NAME, raw_bucket.bucket_name, "Raw updates, one object each")
        publish(
            self,
            outputs.ALARM_TOPIC_ARN,
            alarm_topic.topic.topic_arn,
            "The stage's alarm topic: subscribe to hear of failed ingestion and ETL runs",
        )

    def _grant_raw_access(self, function: lambda_.Function, raw_bucket: s3.Bucket) -> None:
        """New objects only (no reads, no deletes, no version or retention calls): the updates under
        `telegram/`, the chats-seen records and the learned group upgrades; plus listing those upgrades.

        S3 answers the conditional write of a redelivery with 412 on `s3:PutObject` alone.
        """
        written = (f"{PREFIX}*", f"{CHATS_SEEN_PREFIX}*", f"{CHAT_LINKS_PREFIX}*")
        grant_on_objects(raw_bucket, function, ["s3:PutObject"], *written)
        grant_listing(raw_bucket, function, CHAT_LINKS_PREFIX)
        for pattern in written:
            acknowledge(
                function.role,
                f"AwsSolutions-IAM5[Resource::{nag_resource(self, raw_bucket.arn_for_objects(pattern))}]",
                f"The function writes one object per update or chat under `{pattern}`; keys are only known at run time.",
            )



class IngestionAlarms(Construct):
    """Every way the webhook can lose updates, or stop receiving them, raises an alarm on the stage's topic.

    Only Telegram retries a failed request, and it eventually drops the update: a request that fails (not
    stored, function crashed, any 5xx) alarms at once. Silence alarms too: refused tokens (a rotated
    secret Telegram does not know), groups writing while nothing is stored (an allowlist without the
    stage's group), and, when the stage sets `no_updates_alarm_hours`, hours without a stored update.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        function: lambda_.IFunction,
        stage: apigw.Stage,
        topic: sns.ITopic,
    ):
        super().__init__(scope, construct_id)
        self.config = config
        self.topic = topic
        failures = (
            (
                "UpdatesNotStored",
                self.ingest_metric(metrics.FAILED),
                "An update was not stored (S3 or the webhook secret failed); Telegram redelivers it for a while, "
                "then drops it. See the ingest function's log lines with outcome `failed`.",
            ),
            (
                "IngestErrors",
                function.metric_errors(period=ALARM_PERIOD, statistic="Sum"),
                "The ingest function crashed (e.g. misconfigured): see its logs; Telegram redelivers",
            ),
            (
                "WebhookServerErrors",
                stage.metric_server_error(period=ALARM_PERIOD, statistic="Sum"),
                "The webhook answered 5xx: Telegram redelivers the update for a while, then drops it",
            ),
        )
        for alarm_id, metric, description in failures:
            alarm_on_any(self, alarm_id, metric, config=config, description=description, topic=topic)
        alarm_on_any(
            self,
            "IngestThrottled",
            function.metric_throttles(period=ALARM_PERIOD, statistic="Sum"),
            config=config,
            description="Lambda refused to run the ingest function: the account's concurrent executions in this "
            f"region were used up (new accounts may get as few as 10; Telegram opens up to "
            f"{config.webhook_max_connections} connections, webhook_max_connections). The webhook answered 5xx and "
            "Telegram redelivers. Ask for a higher Lambda 'Concurrent executions' quota (Service Quotas), or lower "
            "webhook_max_connections and run `python -m tools webhook set`.",
            topic=topic,
        )
        alarm_on_any(
            self,
            "RejectedTokens",
            self.ingest_metric(metrics.UNAUTHORIZED),
            config=config,
            threshold=REJECTED_TOKENS_BURST,
            description=f"The webhook refused at least {REJECTED_TOKENS_BURST} secret tokens in 5 minutes. After a "
            "secret rotation, Telegram still sends the old token: run `python -m tools webhook set`. Otherwise "
            "someone is probing the webhook URL.",
            topic=topic,
        )
        self._unlisted_chats_alarm()
        if config.no_updates_alarm_hours:
            self._silence_alarm(config.no_updates_alarm_hours)

    def ingest_metric(self, name: str, period: cdk.Duration = ALARM_PERIOD) -> cloudwatch.Metric:
        """A count the ingest handler emits (EMF), in the stage's namespace."""
        return lake_metric(self.config, metrics.SERVICE, name, period=period)

    def _unlisted_chats_alarm(self) -> None:
        """Groups (or channels) wrote but nothing was stored: on a fresh deploy, the allowlist's example id.

        On that fresh stage `Stored` was never published: its query returns no datapoint at all, and what FILL
        makes of a series with nothing to fill is not documented. So the expression never relies on it: a
        comparison of two time series "treats the missing value in the other time series as 0" when only one has
        a value at a timestamp (CloudWatch's metric math reference). Each hour in which groups wrote is 1 when
        nothing was stored, whether `stored` has no datapoint or a 0, and 0 when something was; an hour with
        no unlisted write has no datapoint (or 0), which the alarm treats as not breaching."""
        unlisted_only = cloudwatch.MathExpression(
            expression="(unlisted > 0) > (stored > 0)",
            using_metrics={
                "unlisted": self.ingest_metric(metrics.SKIPPED_FROM_GROUP, UNLISTED_CHATS_PERIOD),
                "stored": self.ingest_metric(metrics.STORED, UNLISTED_CHATS_PERIOD),
            },
            period=UNLISTED_CHATS_PERIOD,
            label="groups wrote, nothing stored",
        )
        alarm_on_any(
            self,
            "OnlyUnlistedChatsWrite",
            unlisted_only,
            config=self.config,
            description="In the last hour, groups or channels wrote to the bot but no update was stored: the "
            "stage's allowed_chat_ids holds none of them. Run `python -m tools chats --stage "
            f"{self.config.stage}`, put the group's id in cdk.json and redeploy.",
            topic=self.topic,
        )

    def _silence_alarm(self, hours: int) -> None:
        """No update stored for `hours` hours: a deleted webhook, a wrong secret or a lost allowlist all look
        like this. Missing data (no request at all) is what this alarm is about, so it is breaching."""
        alarm_on_silence(
            self,
            "NoUpdatesStored",
            self.ingest_metric(metrics.STORED, HOUR),
            hours=hours,
            config=self.config,
            description=f"No update was stored for {hours} hours. Check `python -m tools webhook info` (URL, "
            "last error), the RejectedTokens and OnlyUnlistedChatsWrite alarms and `python -m tools chats`.",
            topic=self.topic,
        )


def _raw_lifecycle(config: StageConfig) -> list[s3.LifecycleRule]:
    """Raw updates move to Glacier Instant Retrieval, then expire if the stage says so; the ingest's own
    records are untouched by that: chats seen expire on their own, learned group upgrades are kept for good.

    After the daily ETL, raw objects are read only by backfills (`tools etl run --from`), which need
    plain GETs: of the classes that allow them, Glacier IR stores for the least. S3 by default skips
    transitioning objects under 128 KB (they would cost more there), so the rule only moves larger ones.
    """
    return [
        s3.LifecycleRule(
            id="RawUpdatesAge",
            prefix=PREFIX,
            transitions=[
                s3.Transition(
                    storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                    transition_after=cdk.Duration.days(config.raw_transition_days),
                )
            ],
            expiration=cdk.Duration.days(config.raw_expiration_days) if config.raw_expiration_days else None,
        ),
        s3.LifecycleRule(
            id="ChatsSeenExpire",
            prefix=CHATS_SEEN_PREFIX,
            expiration=cdk.Duration.days(CHATS_SEEN_RETENTION_DAYS),
            noncurrent_version_expiration=cdk.Duration.days(STATE_NONCURRENT_DAYS),
        ),
    ]


def ingest_function_name(config: StageConfig) -> str:
    """The ingest function's name: its Lambda metrics (throttles, concurrency) are dimensioned by it, as the
    dashboard reads them."""
    return config.stack_name("Ingest")


def webhook_api_name(config: StageConfig) -> str:
    """The REST API's name: API Gateway's metrics are dimensioned by it (and the stage), as the dashboard reads them."""
    return config.stack_name("Webhook")


class WebhookApi(Construct):
    """A regional REST API with one route, `POST /webhook`, proxied to the ingest function.

    API Gateway itself rejects requests without the secret-token header (401) and bodies, whatever their
    Content-Type, that are not a JSON object with an integer `update_id` (400), so scanners never reach the
    function; the function still compares the token in constant time.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, handler: lambda_.IFunction):
        super().__init__(scope, construct_id)
        access_log = log_group(self, "AccessLogs", config=config)
        api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=webhook_api_name(config),
            description="Telegram Bot API webhook",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # API Gateway logs with one role per account and region: the shared account stack sets it
            # (stacks/account.py), so no stage repoints it or leaves one behind.
            cloud_watch_role=False,
            deploy_options=apigw.StageOptions(
                stage_name=config.stage,
                throttling_rate_limit=config.api_throttle_rate,
                throttling_burst_limit=config.api_throttle_burst,
                access_log_destination=apigw.LogGroupLogDestination(access_log),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True, http_method=True, ip=True, protocol=True, request_time=True,
                    resource_path=True, response_length=True, status=True, user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # would log request bodies, i.e. users' messages
                tracing_enabled=True,
            ),
        )
        api.add_gateway_response(
            "MissingSecretToken",
            type=apigw.ResponseType.BAD_REQUEST_PARAMETERS,
            status_code="401",
            templates={"application/json": '{"message": "missing secret token"}'},
        )
        update_model = api.add_model(
            "TelegramUpdate",
            content_type="application/json",
            model_name="TelegramUpdate",
            schema=apigw.JsonSchema(
                schema=apigw.JsonSchemaVersion.DRAFT4,
                title="TelegramUpdate",
                type=apigw.JsonSchemaType.OBJECT,
                required=["update_id"],
                properties={"update_id": apigw.JsonSchema(type=apigw.JsonSchemaType.INTEGER)},
            ),
        )
        validator = api.add_request_validator(
            "HeaderAndBody", validate_request_parameters=True, validate_request_body=True
        )
        resource = api.root.resource_for_path(WEBHOOK_PATH)
        method = resource.add_method(
            "POST",
            apigw.LambdaIntegration(handler, allow_test_invoke=False),
            request_parameters={f"method.request.header.{SECRET_TOKEN_HEADER}": True},
            request_validator=validator,
            # Whatever the Content-Type: a model mapped to one media type leaves every other one unvalidated.
            request_models={"$default": update_model},
        )
        self.webhook_url = api.url_for_path(resource.path)
        self.stage = api.deployment_stage
        # API Gateway creates its execution log group on first use, with no retention: created here first
        # (the stage waits for it), it keeps the stage's retention.
        execution_logs = log_group(
            self,
            "ExecutionLogs",
            config=config,
            name=f"API-Gateway-Execution-Logs_{api.rest_api_id}/{config.stage}",
        )
        self.stage.node.add_dependency(execution_logs)

        acknowledge(
            api.deployment_stage,
            "AwsSolutions-APIG3",
            "Telegram authenticates each call with the secret-token header, checked at the edge and in "
            "constant time by the function; throttling bounds abuse. A web ACL costs more at idle than this API.",
        )
        for rule in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
            acknowledge(
                method,
                rule,
                "Telegram cannot send IAM signatures, Cognito tokens or custom credentials: it sends only the "
                f"{SECRET_TOKEN_HEADER} header, which API Gateway requires and the function verifies.",
            )

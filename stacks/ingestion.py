"""Ingestion: Telegram's webhook -> API Gateway (HTTP API) + Lambda authorizer -> ingest Lambda -> Firehose ->
the raw bucket, one batch object per day folder about once a minute, each update's bytes as Telegram sent them."""

from __future__ import annotations

import json
import math

import aws_cdk as cdk
import jsii
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from lambdas.common.envelope import CONTEXT_DATE
from lambdas.common.layout import (
    BATCH_EXTENSION, BATCH_MAX_MIB, CHAT_LINKS_PREFIX, CHATS_SEEN_PREFIX, CHATS_SEEN_RETENTION_DAYS, PARTITION_KEY,
    PREFIX, RAW_ERRORS_PREFIX,
)
from lambdas.ingest import metrics
from lambdas.ingest.budget import FUNCTION_TIMEOUT_SECONDS, INGEST_MEMORY_MB, WORST_CALL_SECONDS
from lambdas.ingest.webhook import SECRET_TOKEN_HEADER, WEBHOOK_PATH
from stacks import outputs
from stacks.alarms import (
    ALARM_PERIOD, AlarmTopic, alarm_on_any, alarm_on_shortfall, alarm_on_silence, log_event_count,
)
from stacks.compliance import acknowledge, nag_resource
from stacks.config import StageConfig
from stacks.functions import lake_function, log_group
from stacks.metrics import lake_metric
from stacks.packaging import runtime_layer
from stacks.references import publish
from stacks.secrets import GeneratedSecret
from stacks.storage import (
    AccessLogBucket, SecureBucket, grant_listing, grant_on_bucket, grant_on_objects, removal_policy,
)

# Telegram accepts 1-256 characters of A-Z a-z 0-9 _ - as secret_token; letters and digits are a subset.
SECRET_LENGTH = 64
# Refused tokens in one ALARM_PERIOD that make a burst: after a rotation that Telegram was not told about,
# every delivery and retry is refused; a stray scanner's single guess is not a burst.
REJECTED_TOKENS_BURST = 5
# Over this period, groups that wrote while nothing was stored mean the allowlist misses the stage's group.
UNLISTED_CHATS_PERIOD = cdk.Duration.hours(1)
# The "nothing stored" alarm counts hours: CloudWatch evaluates an hourly alarm over at most 7 days.
HOUR = cdk.Duration.hours(1)
# What the ingest keeps under STATE_PREFIX is rewritten often (a chat's record at most once a minute per
# container): old versions go in a day.
STATE_NONCURRENT_DAYS = 1

# The authorizer's verdict is cached per secret-token value: Telegram's deliveries cost one invocation per
# period, and a rotated secret's new token is a new key, evaluated at once.
AUTHORIZER_CACHE = cdk.Duration.minutes(5)
# The authorizer makes at most one Secrets Manager call (bounded by the ingest's budget), plus a second to start.
AUTHORIZER_TIMEOUT_SECONDS = math.ceil(WORST_CALL_SECONDS) + 1
AUTHORIZER_MEMORY_MB = 256
# The webhook's access log fields (HTTP API context variables): today's REST access log's, plus why API
# Gateway itself answered an error (the authorizer's or the integration's).
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "caller": "$context.identity.caller",
    "user": "$context.identity.user",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "authorizerError": "$context.authorizer.error",
    "integrationError": "$context.integrationErrorMessage",
}
# The stage's own count of the webhook requests refused for their secret token, from its access log: 401 (no
# header: API Gateway, or the ingest's own check) and 403 (the authorizer's denial, cached ones included).
REFUSED_TOKENS = "RefusedTokens"

# Firehose writes what it could not partition or deliver under RAW_ERRORS_PREFIX, by error type and UTC day,
# kept as long as the stage's logs.
RAW_ERROR_OBJECTS = f"{RAW_ERRORS_PREFIX}!{{firehose:error-output-type}}/!{{timestamp:yyyy-MM-dd}}/"
# Each line lands in its own arrival day's folder, whichever batch carries it (lambdas/common/envelope.py).
RAW_BATCH_OBJECTS = f"{PREFIX}{PARTITION_KEY}=!{{partitionKeyFromQuery:{PARTITION_KEY}}}/"
PARTITION_QUERY = f"{{{PARTITION_KEY}: .{CONTEXT_DATE}}}"
# How long Firehose retries a failed S3 delivery before it puts the records under RAW_ERRORS_PREFIX: its
# maximum, so that no S3 blip sends updates out of the raw zone.
RAW_DELIVERY_RETRY = cdk.Duration.hours(2)
# The stream's own log stream in its error log group (Firehose writes to an existing one).
RAW_DELIVERY_LOG_STREAM = "S3Delivery"
# The stage's own count of the events Firehose logged: failed deliveries, records it could not partition.
RAW_DELIVERY_ERRORS = "RawDeliveryErrors"
FIREHOSE = "AWS/Firehose"


class IngestionStack(cdk.Stack):
    """Receives every webhook update and hands the allowed chats' updates, unchanged, to the raw delivery stream.

    Deployed first, it also holds the stage's alarm topic, which the later stacks' alarms notify too.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs):
        super().__init__(scope, construct_id, **kwargs)
        access_logs = AccessLogBucket(self, "AccessLogs", config=config)
        raw_bucket = SecureBucket(
            self, "RawBucket", config=config, access_logs=access_logs, lifecycle_rules=_raw_lifecycle(config)
        )
        secret = GeneratedSecret(
            self,
            "WebhookSecret",
            config=config,
            description=f"Telegram webhook secret_token of {config.stack_name('Ingestion')} (plain string)",
            length=SECRET_LENGTH,
            why_not_rotated="Telegram holds a copy of this token (setWebhook secret_token); an automatic rotation would "
            "reject every update until `python -m tools webhook set` runs. Rotate by changing the secret, then "
            "webhook set.",
        )
        stream = RawDeliveryStream(self, "RawStream", config=config, bucket=raw_bucket)
        layers = [runtime_layer(self, config)]
        function = lake_function(
            self,
            "Ingest",
            config=config,
            package="ingest",
            description="Hands each allowed Telegram webhook update, unchanged, to the raw delivery stream",
            function_name=ingest_function_name(config),
            memory_mb=INGEST_MEMORY_MB,
            timeout=cdk.Duration.seconds(FUNCTION_TIMEOUT_SECONDS),
            # Not traced: X-Ray's sampling of one request a second and 5% of the rest would cost more per million
            # updates than the rest of the ingest (bench/cost.py); each request's log line has its outcome and
            # latency, and the HTTP API passes no trace to continue.
            traced=False,
            environment={
                "RAW_BUCKET": raw_bucket.bucket_name,
                "DELIVERY_STREAM": stream.name,
                "WEBHOOK_SECRET_ARN": secret.secret_arn,
                "ALLOWED_CHAT_IDS": ",".join(str(chat_id) for chat_id in config.allowed_chat_ids),
                "TIMEZONE": config.timezone,
                # Powertools' own variable: each stage's metrics in their own namespace.
                "POWERTOOLS_METRICS_NAMESPACE": config.metrics_namespace,
            },
            layers=layers,
        )
        self._grant_state_access(function, raw_bucket)
        stream.grant_put_record(function)
        secret.grant_read(function)
        authorizer = lake_function(
            self,
            "Authorizer",
            config=config,
            package="ingest",
            module="authorizer",
            description="Lets a webhook request through only with the stage's secret token (Lambda authorizer)",
            memory_mb=AUTHORIZER_MEMORY_MB,
            timeout=cdk.Duration.seconds(AUTHORIZER_TIMEOUT_SECONDS),
            environment={
                "WEBHOOK_SECRET_ARN": secret.secret_arn,
                "POWERTOOLS_METRICS_NAMESPACE": config.metrics_namespace,
            },
            layers=layers,
        )
        secret.grant_read(authorizer)
        api = WebhookApi(self, "WebhookApi", config=config, handler=function, authorizer=authorizer)
        alarm_topic = AlarmTopic(self, "AlarmTopic", config=config)
        IngestionAlarms(
            self, "Alarms", config=config, function=function, api=api, stream=stream, topic=alarm_topic.topic
        )

        cdk.CfnOutput(
            self, outputs.WEBHOOK_URL, value=api.webhook_url, description="POST URL for Telegram's setWebhook"
        )
        publish(self, outputs.WEBHOOK_SECRET_ARN, secret.secret_arn, "The webhook's secret_token")
        cdk.CfnOutput(
            self, outputs.DELIVERY_STREAM_NAME, value=stream.name,
            description="The raw delivery stream (Firehose) that writes the raw zone's batches",
        )
        publish(self, outputs.WEBHOOK_API_ID, api.api_id, "The webhook's HTTP API (its metrics' ApiId)")
        publish(self, outputs.RAW_BUCKET_NAME, raw_bucket.bucket_name, "Raw updates, in batches per arrival day")
        publish(
            self,
            outputs.ALARM_TOPIC_ARN,
            alarm_topic.topic.topic_arn,
            "The stage's alarm topic: subscribe to hear of failed ingestion and ETL runs",
        )

    def _grant_state_access(self, function: lambda_.Function, raw_bucket: s3.Bucket) -> None:
        """The ingest's own records only (new objects: no reads, no deletes, no version or retention calls): the
        chats-seen records and the learned group upgrades; plus listing those upgrades. Updates go through
        the delivery stream: the function cannot write under `telegram/`."""
        written = (f"{CHATS_SEEN_PREFIX}*", f"{CHAT_LINKS_PREFIX}*")
        grant_on_objects(raw_bucket, function, ["s3:PutObject"], *written)
        grant_listing(raw_bucket, function, CHAT_LINKS_PREFIX)
        for pattern in written:
            acknowledge(
                function.role,
                f"AwsSolutions-IAM5[Resource::{nag_resource(self, raw_bucket.arn_for_objects(pattern))}]",
                f"The function writes one object per chat or group upgrade under `{pattern}`; keys are only "
                "known at run time.",
            )


class RawDeliveryStream(Construct):
    """The raw zone's writer: an Amazon Data Firehose stream (Direct PUT) that batches the ingest's envelope
    lines (lambdas/common/envelope.py) into gzip objects, `telegram/context_date=DAY/*.jsonl.gz`.

    Dynamic partitioning reads each line's own `context_date` (JQ), so a line lands in its arrival day's folder
    whatever the time its batch is written; the lines already end in a line break, so the batch is
    newline-delimited JSON as it is. A batch closes after `raw_batch_seconds` (or at 64 MiB before gzip).
    What Firehose cannot partition or deliver goes under RAW_ERRORS_PREFIX, and each failure is logged to the
    stream's error log group; the stream is encrypted at rest with an AWS owned key.

    Its role may do only what an S3 destination needs, as AWS documents it, on the two prefixes it writes
    (objects: put, abort a multipart upload, read back; the bucket: its location, list it, list uploads), and
    write its own log stream.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, bucket: s3.IBucket):
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.name = config.raw_stream_name
        self.logs = log_group(self, "DeliveryLogs", config=config)
        log_stream = logs.LogStream(
            self, "DeliveryLogStream", log_group=self.logs, log_stream_name=RAW_DELIVERY_LOG_STREAM,
            removal_policy=removal_policy(config),
        )
        role = iam.Role(
            self,
            "Role",
            description=f"Firehose delivery of stage {config.stage}'s raw zone: its two prefixes and its error log",
            # The documented confused-deputy guard: only Firehose acting for this account.
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com", conditions={"StringEquals": {"sts:ExternalId": stack.account}}
            ),
        )
        written = (f"{PREFIX}*", f"{RAW_ERRORS_PREFIX}*")
        grant_on_objects(bucket, role, ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"], *written)
        grant_on_bucket(bucket, role, ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"])
        self.logs.grant(role, "logs:PutLogEvents")
        for pattern in written:
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::{nag_resource(stack, bucket.arn_for_objects(pattern))}]",
                f"Firehose names each batch object under `{pattern}` itself (time and a random id).",
            )
        self.stream = firehose.CfnDeliveryStream(
            self,
            "Resource",
            delivery_stream_name=self.name,
            delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=(
                firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(key_type="AWS_OWNED_CMK")
            ),
            extended_s3_destination_configuration=_batches(config, bucket, role, self.logs, log_stream),
        )
        # Created once its role may write: no delivery starts without its permissions.
        self.stream.node.add_dependency(role)
        self.arn = self.stream.attr_arn

    def grant_put_record(self, grantee: iam.IGrantable) -> iam.Grant:
        """`firehose:PutRecord` on this stream only: one update, one record (no batches, no other stream)."""
        return iam.Grant.add_to_principal(grantee=grantee, actions=["firehose:PutRecord"], resource_arns=[self.arn])

    def metric(self, name: str, statistic: str, period: cdk.Duration = ALARM_PERIOD, **options) -> cloudwatch.Metric:
        """One of Firehose's own metrics of this stream (by its name, as the dashboard reads it too)."""
        return raw_stream_metric(self.name, name, statistic, period, **options)


def _batches(
    config: StageConfig, bucket: s3.IBucket, role: iam.IRole, log: logs.ILogGroup, log_stream: logs.ILogStream
) -> firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty:
    """Gzip batches of the lines in each line's own day folder, after `raw_batch_seconds`; the rest, with each
    failure logged, under RAW_ERRORS_PREFIX."""
    stream = firehose.CfnDeliveryStream
    return stream.ExtendedS3DestinationConfigurationProperty(
        bucket_arn=bucket.bucket_arn,
        role_arn=role.role_arn,
        prefix=RAW_BATCH_OBJECTS,
        error_output_prefix=RAW_ERROR_OBJECTS,
        compression_format="GZIP",
        file_extension=BATCH_EXTENSION,
        buffering_hints=stream.BufferingHintsProperty(
            interval_in_seconds=config.raw_batch_seconds, size_in_m_bs=BATCH_MAX_MIB
        ),
        dynamic_partitioning_configuration=stream.DynamicPartitioningConfigurationProperty(
            enabled=True,
            retry_options=stream.RetryOptionsProperty(duration_in_seconds=int(RAW_DELIVERY_RETRY.to_seconds())),
        ),
        processing_configuration=stream.ProcessingConfigurationProperty(
            enabled=True,
            processors=[
                stream.ProcessorProperty(
                    type="MetadataExtraction",
                    parameters=[
                        stream.ProcessorParameterProperty(
                            parameter_name="MetadataExtractionQuery", parameter_value=PARTITION_QUERY
                        ),
                        stream.ProcessorParameterProperty(parameter_name="JsonParsingEngine", parameter_value="JQ-1.6"),
                    ],
                )
            ],
        ),
        cloud_watch_logging_options=stream.CloudWatchLoggingOptionsProperty(
            enabled=True, log_group_name=log.log_group_name, log_stream_name=log_stream.log_stream_name
        ),
    )


class IngestionAlarms(Construct):
    """Every way the webhook can lose updates, or stop receiving them, raises an alarm on the stage's topic.

    Only Telegram retries a failed request, and it eventually drops the update: a request that fails (not
    handed to the stream, function crashed, any 5xx) alarms at once. So does the raw delivery stream when it
    falls behind, fails to write to S3, or sets records aside under RAW_ERRORS_PREFIX. Silence alarms too:
    refused tokens (a rotated secret Telegram does not know), groups writing while nothing is stored (an
    allowlist without the stage's group), and, when the stage sets `no_updates_alarm_hours`, hours without a
    stored update.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        function: lambda_.IFunction,
        api: WebhookApi,
        stream: RawDeliveryStream,
        topic: sns.ITopic,
    ):
        super().__init__(scope, construct_id)
        self.config = config
        self.topic = topic
        failures = (
            (
                "UpdatesNotStored",
                self.ingest_metric(metrics.FAILED),
                "An update was not stored (the delivery stream, S3 or the webhook secret failed); Telegram "
                "redelivers it for a while, then drops it. See the ingest function's and the authorizer's log "
                "lines with outcome `failed` or `denied`.",
            ),
            (
                "IngestErrors",
                function.metric_errors(period=ALARM_PERIOD, statistic="Sum"),
                "The ingest function crashed (e.g. misconfigured): see its logs; Telegram redelivers",
            ),
            (
                "WebhookServerErrors",
                api.stage.metric_server_error(period=ALARM_PERIOD, statistic="Sum"),
                "The webhook answered 5xx (the ingest function failed, or the authorizer crashed or timed out: see "
                "the access log's authorizerError and integrationError): Telegram redelivers the update for a "
                "while, then drops it",
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
            api.refused_tokens,
            config=config,
            threshold=REJECTED_TOKENS_BURST,
            description=f"The webhook refused at least {REJECTED_TOKENS_BURST} secret tokens in 5 minutes (counted "
            f"from its access log: POST {WEBHOOK_PATH} answered 401 or 403, so the authorizer's cached denials "
            "count too, which its own Unauthorized metric does not). After a secret rotation, Telegram still sends "
            "the old token: run `python -m tools webhook set`. Otherwise someone is probing the webhook URL.",
            topic=topic,
        )
        self._raw_delivery_alarms(stream)
        self._unlisted_chats_alarm()
        if config.no_updates_alarm_hours:
            self._silence_alarm(config.no_updates_alarm_hours)

    def _raw_delivery_alarms(self, stream: RawDeliveryStream) -> None:
        """The raw delivery stream holds what the ingest answered 200 for: a delivery that lags, fails or sets
        records aside means updates Telegram will never send again are not (yet) in the raw zone."""
        limit = int(raw_freshness_limit(self.config).to_seconds())
        alarm_on_any(
            self,
            "RawDeliveryLate",
            stream.metric("DeliveryToS3.DataFreshness", "Maximum"),
            config=self.config,
            threshold=limit,
            description=f"The oldest update not yet in the raw bucket is {limit} seconds old or more "
            f"(batches close every {self.config.raw_batch_seconds} s): Firehose cannot write to S3 (see "
            "RawDeliveryFailing and the stream's error log group). It keeps retrying for 24 hours.",
            topic=self.topic,
        )
        alarm_on_shortfall(
            self,
            "RawDeliveryFailing",
            stream.metric("DeliveryToS3.Success", "Minimum"),
            threshold=1,
            config=self.config,
            description="Firehose failed to write a batch to the raw bucket (DeliveryToS3.Success below 1): read "
            "the stream's error log group (S3 access denied, bucket policy, throttling). Firehose retries; after "
            f"{RAW_DELIVERY_RETRY.to_hours()} hours, records go under {RAW_ERRORS_PREFIX} instead.",
            topic=self.topic,
        )
        alarm_on_any(
            self,
            "RawPartitionsExceeded",
            stream.metric("PartitionCountExceeded", "Maximum"),
            config=self.config,
            description="Firehose had more day folders open than its active-partition quota: the excess records "
            f"went under {RAW_ERRORS_PREFIX}activePartitionExceeded/, not into the raw zone. Only wrong "
            "`context_date` values can do that: check the ingest's version and logs.",
            topic=self.topic,
        )
        alarm_on_any(
            self,
            "RawDeliveryErrors",
            log_event_count(
                self, "RawDeliveryErrorEvents", stream.logs, logs.FilterPattern.all_events(),
                config=self.config, metric_name=RAW_DELIVERY_ERRORS,
            ),
            config=self.config,
            description="Firehose logged an error in the stream's error log group: a record it could not "
            f"partition (no `context_date`) or deliver, set aside under {RAW_ERRORS_PREFIX}, or a failed S3 "
            "write. Read the log group, then the objects under that prefix: their updates are not in the raw zone.",
            topic=self.topic,
        )

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
    """Raw batches move to Glacier Instant Retrieval, then expire if the stage says so; the ingest's own
    records are untouched by that: chats seen expire on their own, learned group upgrades are kept for good.
    What Firehose set aside expires with the stage's logs.

    After the daily ETL, raw objects are read only by backfills (`tools etl run --from`), which need
    plain GETs: of the classes that allow them, Glacier IR stores for the least. S3 by default skips
    transitioning objects under 128 KB (they would cost more there): a busy stage's minute-long batches are
    above it, a quiet stage's small ones stay where they are cheapest.
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
        s3.LifecycleRule(
            id="DeliveryErrorsExpire",
            prefix=RAW_ERRORS_PREFIX,
            expiration=cdk.Duration.days(config.log_retention_days),
            noncurrent_version_expiration=cdk.Duration.days(STATE_NONCURRENT_DAYS),
        ),
    ]


def ingest_function_name(config: StageConfig) -> str:
    """The ingest function's name: its Lambda metrics (throttles, concurrency) are dimensioned by it, as the
    dashboard reads them."""
    return config.stack_name("Ingest")


def webhook_api_name(config: StageConfig) -> str:
    """The HTTP API's name, as the console lists it (its metrics are dimensioned by its id: the WebhookApiId output)."""
    return config.stack_name("Webhook")


def raw_freshness_limit(config: StageConfig) -> cdk.Duration:
    """How old the oldest undelivered update may get: a batch's interval, half again (Firehose documents up to
    1.5 times the buffering interval with dynamic partitioning), and five minutes of slack."""
    return cdk.Duration.seconds(math.ceil(1.5 * config.raw_batch_seconds) + 300)


def raw_stream_metric(
    stream_name: str, name: str, statistic: str, period: cdk.Duration, **options
) -> cloudwatch.Metric:
    """A Firehose metric of the stream named `stream_name`."""
    return cloudwatch.Metric(
        namespace=FIREHOSE, metric_name=name, dimensions_map={"DeliveryStreamName": stream_name},
        statistic=statistic, period=period, **options,
    )


@jsii.implements(apigwv2.IAccessLogSettings)
class JsonAccessLog:
    """The stage's access log settings: one JSON object per request (ACCESS_LOG_FIELDS) into `group`."""

    def __init__(self, group: logs.ILogGroup):
        self._group = group

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return apigwv2.LogGroupLogDestination(self._group)

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS, separators=(",", ":")))


class WebhookApi(Construct):
    """An HTTP API with one route, `POST /webhook`, proxied to the ingest function (payload format 2.0), on a
    stage named after the stage, so the URL keeps the REST API's shape `https://<id>.execute-api.<region>.
    amazonaws.com/<stage>/webhook`.

    A Lambda authorizer guards the route: its identity source is the secret-token header, so API Gateway
    answers a request without it 401 and invokes nothing; the authorizer's verdict on a header value is cached
    for AUTHORIZER_CACHE. The ingest function compares the token again. The stage throttles and writes a JSON
    access log with the stage's retention. HTTP APIs have no execution logs, so nothing here needs API
    Gateway's account-wide CloudWatch role.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        handler: lambda_.IFunction,
        authorizer: lambda_.IFunction,
    ):
        super().__init__(scope, construct_id)
        api = apigwv2.HttpApi(
            self,
            "Api",
            api_name=webhook_api_name(config),
            description="Telegram Bot API webhook",
            create_default_stage=False,
        )
        access_log = log_group(self, "AccessLogs", config=config)
        self.stage = apigwv2.HttpStage(
            self,
            "Stage",
            http_api=api,
            stage_name=config.stage,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=config.api_throttle_rate, burst_limit=config.api_throttle_burst
            ),
            access_log_settings=JsonAccessLog(access_log),
        )
        api.add_routes(
            path=WEBHOOK_PATH,
            methods=[apigwv2.HttpMethod.POST],
            integration=integrations.HttpLambdaIntegration(
                "Ingest", handler, payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0
            ),
            authorizer=authorizers.HttpLambdaAuthorizer(
                "SecretToken",
                authorizer,
                authorizer_name="SecretToken",
                identity_source=[f"$request.header.{SECRET_TOKEN_HEADER}"],
                response_types=[authorizers.HttpLambdaResponseType.SIMPLE],
                results_cache_ttl=AUTHORIZER_CACHE,
            ),
        )
        self.api_id = api.api_id
        self.webhook_url = f"{self.stage.url}{WEBHOOK_PATH}"
        refused = logs.FilterPattern.all(
            logs.FilterPattern.string_value("$.routeKey", "=", f"POST {WEBHOOK_PATH}"),
            logs.FilterPattern.any(
                logs.FilterPattern.string_value("$.status", "=", "401"),
                logs.FilterPattern.string_value("$.status", "=", "403"),
            ),
        )
        self.refused_tokens = log_event_count(
            self, "RefusedTokenRequests", access_log, refused, config=config, metric_name=REFUSED_TOKENS
        )

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

from lambdas.common.layout import PREFIX
from lambdas.ingest.webhook import SECRET_TOKEN_HEADER, WEBHOOK_PATH
from stacks import outputs
from stacks.alarms import ALARM_PERIOD, AlarmTopic, alarm_on_any
from stacks.compliance import acknowledge, nag_resource
from stacks.config import StageConfig
from stacks.functions import lake_function, log_group
from stacks.packaging import runtime_layer
from stacks.storage import AccessLogBucket, SecureBucket, removal_policy

# Telegram accepts 1-256 characters of A-Z a-z 0-9 _ - as secret_token; letters and digits are a subset.
SECRET_LENGTH = 64
API_GATEWAY_LOGGING_POLICY = "arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
# The ingest handler's EMF count of requests whose update it could not store (lambdas/ingest/handler.py:
# Powertools' namespace and `service` dimension, one metric per outcome).
INGEST_METRICS_NAMESPACE = "TelegramLake"
INGEST_SERVICE = "ingest"
FAILED_METRIC = "Failed"


class IngestionStack(cdk.Stack):
    """Receives every webhook update and stores the allowed chats' updates unchanged in the raw bucket.

    Deployed first, it also holds the stage's alarm topic, which the later stacks' alarms notify too.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs):
        super().__init__(scope, construct_id, **kwargs)
        access_logs = AccessLogBucket(self, "AccessLogs", config=config)
        raw_bucket = SecureBucket(
            self, "RawBucket", config=config, access_logs=access_logs, lifecycle_rules=[_raw_lifecycle(config)]
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
            memory_mb=256,
            timeout=cdk.Duration.seconds(10),
            environment={
                "RAW_BUCKET": raw_bucket.bucket_name,
                "WEBHOOK_SECRET_ARN": secret.secret_arn,
                "ALLOWED_CHAT_IDS": ",".join(str(chat_id) for chat_id in config.allowed_chat_ids),
                "TIMEZONE": config.timezone,
            },
            layers=[runtime_layer(self, config)],
        )
        raw_bucket.grant_put(function, f"{PREFIX}*")
        secret.grant_read(function)
        acknowledge(
            function.role,
            f"AwsSolutions-IAM5[Resource::{nag_resource(self, raw_bucket.arn_for_objects(f'{PREFIX}*'))}]",
            f"The function writes one object per update under `{PREFIX}`; keys are only known at run time.",
        )
        acknowledge(
            function.role,
            "AwsSolutions-IAM5[Action::s3:Abort*]",
            "Part of Bucket.grant_put: lets the function abort its own failed uploads, on the same prefix only.",
        )
        api = WebhookApi(self, "WebhookApi", config=config, handler=function)
        alarm_topic = AlarmTopic(self, "AlarmTopic", config=config)
        self._alarms(function, api.stage, alarm_topic.topic)

        cdk.CfnOutput(
            self, outputs.WEBHOOK_URL, value=api.webhook_url, description="POST URL for Telegram's setWebhook"
        )
        cdk.CfnOutput(
            self, outputs.WEBHOOK_SECRET_ARN, value=secret.secret_arn, description="The webhook's secret_token"
        )
        cdk.CfnOutput(
            self, outputs.RAW_BUCKET_NAME, value=raw_bucket.bucket_name, description="Raw updates, one object each"
        )
        cdk.CfnOutput(
            self,
            outputs.ALARM_TOPIC_ARN,
            value=alarm_topic.topic.topic_arn,
            description="The stage's alarm topic: subscribe to hear of failed ingestion and ETL runs",
        )

    def _alarms(self, function: lambda_.IFunction, stage: apigw.Stage, topic: sns.ITopic) -> None:
        """Only Telegram retries a failed request, and it eventually drops the update: each way a request
        can fail (not stored, function crashed, any 5xx) raises an alarm, so no update is lost in silence."""
        not_stored = cloudwatch.Metric(
            namespace=INGEST_METRICS_NAMESPACE,
            metric_name=FAILED_METRIC,
            dimensions_map={"service": INGEST_SERVICE},
            period=ALARM_PERIOD,
            statistic="Sum",
        )
        failures = (
            (
                "UpdatesNotStored",
                not_stored,
                "An update was not stored (S3 or the webhook secret failed); Telegram redelivers it for a while, "
                "then drops it",
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
        for construct_id, metric, description in failures:
            alarm_on_any(self, construct_id, metric, description=description, topic=topic)


def _raw_lifecycle(config: StageConfig) -> s3.LifecycleRule:
    """Raw updates move to Glacier Instant Retrieval, then expire if the stage says so.

    After the daily ETL, raw objects are read only by backfills (`tools etl run --from`), which need
    plain GETs: of the classes that allow them, Glacier IR stores for the least. S3 by default skips
    transitioning objects under 128 KB (they would cost more there), so the rule only moves larger ones.
    """
    return s3.LifecycleRule(
        id="RawUpdatesAge",
        transitions=[
            s3.Transition(
                storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                transition_after=cdk.Duration.days(config.raw_transition_days),
            )
        ],
        expiration=cdk.Duration.days(config.raw_expiration_days) if config.raw_expiration_days else None,
    )


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
            rest_api_name=config.stack_name("Webhook"),
            description="Telegram Bot API webhook",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # API Gateway writes access and execution logs with one role per account and region; the CDK
            # retains it when a stack is deleted, so another stage's logging keeps working.
            cloud_watch_role=True,
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
        acknowledge(
            api.node.find_child("CloudWatchRole"),
            f"AwsSolutions-IAM4[Policy::{API_GATEWAY_LOGGING_POLICY}]",
            "API Gateway's account-level logging role; this AWS managed policy is the documented one for it.",
        )

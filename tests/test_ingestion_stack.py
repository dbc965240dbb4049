"""Ingestion stack template: raw bucket, webhook secret, raw delivery stream (Firehose), ingest function and
authorizer with their exact permissions, HTTP API, alarms."""

from __future__ import annotations

import json
from datetime import date

import pytest
from aws_cdk.assertions import Annotations, Match

from lambdas.common.envelope import envelope_line
from lambdas.common.layout import day_prefix
from lambdas.ingest import metrics
from lambdas.ingest.budget import FUNCTION_TIMEOUT_SECONDS
from stacks import outputs
from stacks.ingestion import RAW_BATCH_OBJECTS
from tests.cdk_support import arn, normalized, policy_statements, ref, resources, stage_fixture, the_resource

dev = stage_fixture("dev")
several_chats = stage_fixture("dev", name="several_chats", allowed_chat_ids=[-1001, 42, -7])
# The same stage with someone to mail the alarms to, and an alarm after 6 hours without a stored update.
dev_mailed = stage_fixture("dev", name="dev_mailed", alarm_email="oncall@example.org", no_updates_alarm_hours=6)
# Batches every five minutes instead of every minute.
slow_batches = stage_fixture("dev", name="slow_batches", raw_batch_seconds=300)


@pytest.fixture(scope="module")
def template(dev):
    return dev.template("Ingestion")


def test_raw_bucket_is_versioned_logged_and_ages_as_configured(dev, template):
    raw = template["Resources"][dev.logical_id("Ingestion", "RawBucket")]["Properties"]

    assert raw["VersioningConfiguration"] == {"Status": "Enabled"}
    assert raw["LoggingConfiguration"] == {
        "DestinationBucketName": ref(dev.logical_id("Ingestion", "AccessLogs")),
        "LogFilePrefix": "RawBucket/",
    }
    rules = {rule["Id"]: rule for rule in raw["LifecycleConfiguration"]["Rules"]}
    assert rules.keys() == {"ExpireOldVersions", "RawUpdatesAge", "ChatsSeenExpire", "DeliveryErrorsExpire"}
    assert rules["RawUpdatesAge"] == {
        "Id": "RawUpdatesAge",
        "Prefix": "telegram/",
        "Status": "Enabled",
        "Transitions": [{"StorageClass": "GLACIER_IR", "TransitionInDays": dev.config.raw_transition_days}],
        "ExpirationInDays": dev.config.raw_expiration_days,
    }
    assert rules["ExpireOldVersions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7}
    assert rules["ExpireOldVersions"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}


def test_the_raw_zones_expiry_never_reaches_the_ingests_learned_group_upgrades(dev, template):
    """Only `telegram/` ages out; chats seen expire on their own schedule, and what Firehose set aside with the
    stage's logs; chat links are kept for good."""
    raw = template["Resources"][dev.logical_id("Ingestion", "RawBucket")]["Properties"]
    ageing = [
        rule for rule in raw["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in rule or "Transitions" in rule
    ]

    assert {rule["Id"]: rule.get("Prefix") for rule in ageing} == {
        "RawUpdatesAge": "telegram/", "ChatsSeenExpire": "ingest-state/chats-seen/",
        "DeliveryErrorsExpire": "firehose-errors/",
    }
    assert next(rule for rule in ageing if rule["Id"] == "ChatsSeenExpire") == {
        "Id": "ChatsSeenExpire",
        "Prefix": "ingest-state/chats-seen/",
        "Status": "Enabled",
        "ExpirationInDays": 35,
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
    }
    assert next(rule for rule in ageing if rule["Id"] == "DeliveryErrorsExpire") == {
        "Id": "DeliveryErrorsExpire",
        "Prefix": "firehose-errors/",
        "Status": "Enabled",
        "ExpirationInDays": dev.config.log_retention_days,
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
    }


def test_access_log_bucket_accepts_only_the_raw_buckets_logs_and_expires_them(dev, template):
    log_bucket = dev.logical_id("Ingestion", "AccessLogs")
    properties = template["Resources"][log_bucket]["Properties"]
    policy = next(
        p["Properties"]["PolicyDocument"]
        for p in resources(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == ref(log_bucket)
    )
    delivery = [s for s in policy["Statement"] if s["Effect"] == "Allow"]

    assert properties["LifecycleConfiguration"]["Rules"] == [
        {"Id": "ExpireAccessLogs", "Status": "Enabled", "ExpirationInDays": dev.config.log_retention_days}
    ]
    assert "LoggingConfiguration" not in properties
    assert delivery == [
        {
            "Action": "s3:PutObject",
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Condition": {
                "ArnLike": {"aws:SourceArn": arn(dev.logical_id("Ingestion", "RawBucket"))},
                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
            },
            "Resource": {"Fn::Join": ["", [arn(log_bucket), "/RawBucket/*"]]},
        }
    ]


def test_webhook_secret_is_generated_as_a_plain_token_of_telegrams_alphabet(template):
    secret = the_resource(template, "AWS::SecretsManager::Secret")["Properties"]

    assert secret["GenerateSecretString"] == {"PasswordLength": 64, "ExcludePunctuation": True, "IncludeSpace": False}
    assert "SecretString" not in secret  # the value never appears in the template


def function(stage_app, name: str) -> dict:
    return stage_app.template("Ingestion")["Resources"][stage_app.logical_id("Ingestion", name)]["Properties"]


def test_ingest_function_runtime_code_and_limits(dev, template):
    ingest = function(dev, "Ingest")
    layer = the_resource(template, "AWS::Lambda::LayerVersion")["Properties"]

    assert ingest["FunctionName"] == "TelegramLake-dev-Ingest"  # the dashboard reads its metrics by this name
    assert ingest["Handler"] == "lambdas.ingest.handler.handler"
    assert ingest["Runtime"] == "python3.14"
    assert ingest["Architectures"] == ["arm64"]
    # The handler's own AWS-call budget (lambdas/ingest/budget.py) fits inside this timeout.
    assert (ingest["MemorySize"], ingest["Timeout"]) == (256, FUNCTION_TIMEOUT_SECONDS)
    assert "TracingConfig" not in ingest  # not traced: every request's trace would cost more than the rest of it
    assert ingest["Layers"] == [ref(dev.logical_id("Ingestion", "RuntimeLayer"))]
    assert (layer["CompatibleRuntimes"], layer["CompatibleArchitectures"]) == (["python3.14"], ["arm64"])
    assert "ReservedConcurrentExecutions" not in ingest


def test_ingest_function_is_configured_through_its_variables_and_its_stages_metric_namespace(dev):
    assert function(dev, "Ingest")["Environment"]["Variables"] == {
        "RAW_BUCKET": ref(dev.logical_id("Ingestion", "RawBucket")),
        "DELIVERY_STREAM": "TelegramLake-dev-Raw",
        "WEBHOOK_SECRET_ARN": ref(dev.logical_id("Ingestion", "WebhookSecret")),
        "ALLOWED_CHAT_IDS": ",".join(str(chat) for chat in dev.config.allowed_chat_ids),
        "TIMEZONE": dev.config.timezone,
        "POWERTOOLS_METRICS_NAMESPACE": "TelegramLake/dev",
    }


def test_the_authorizer_is_a_small_function_of_the_ingest_package_that_knows_only_the_secret(dev):
    """Its one Secrets Manager call fits its timeout twice over (lambdas/ingest/budget.py)."""
    authorizer = function(dev, "Authorizer")

    assert authorizer["Handler"] == "lambdas.ingest.authorizer.handler"
    assert (authorizer["Runtime"], authorizer["Architectures"]) == ("python3.14", ["arm64"])
    assert (authorizer["MemorySize"], authorizer["Timeout"]) == (256, 5)
    assert authorizer["Layers"] == [ref(dev.logical_id("Ingestion", "RuntimeLayer"))]
    assert authorizer["LoggingConfig"] == {"LogGroup": ref(dev.logical_id("Ingestion", "AuthorizerLogs"))}
    assert authorizer["Environment"]["Variables"] == {
        "WEBHOOK_SECRET_ARN": ref(dev.logical_id("Ingestion", "WebhookSecret")),
        "POWERTOOLS_METRICS_NAMESPACE": "TelegramLake/dev",
    }


def test_several_allowed_chats_are_comma_separated(several_chats):
    assert function(several_chats, "Ingest")["Environment"]["Variables"]["ALLOWED_CHAT_IDS"] == "-1001,42,-7"


def test_each_function_logs_to_its_own_group_kept_for_the_configured_days(dev, template):
    for name in ("Ingest", "Authorizer"):
        log_group = dev.logical_id("Ingestion", f"{name}Logs")

        assert function(dev, name)["LoggingConfig"] == {"LogGroup": ref(log_group)}
        assert template["Resources"][log_group]["Properties"]["RetentionInDays"] == dev.config.log_retention_days


def own_logs_and_traces(stage_app, name: str, *, traced: bool = True) -> list[dict]:
    """What every lake function's role holds: writing its own log group, and, when traced, X-Ray's two resource-less
    calls."""
    own_logs = {
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": arn(stage_app.logical_id("Ingestion", f"{name}Logs")),
    }
    traces = {"Effect": "Allow", "Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], "Resource": "*"}
    return [own_logs, traces] if traced else [own_logs]


def read_the_secret(stage_app) -> dict:
    return {
        "Effect": "Allow",
        "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
        "Resource": ref(stage_app.logical_id("Ingestion", "WebhookSecret")),
    }


def test_ingest_role_may_put_records_on_its_stream_add_its_own_state_read_its_secret_and_write_logs(dev, template):
    """Updates go to the delivery stream (exactly PutRecord, on that stream): no S3 write under `telegram/` any
    more. In the raw bucket only new objects of its own state (no GET, no delete, no version, tagging,
    retention or abort calls): the chats-seen records and the learned group upgrades, and listing those
    upgrades only (the `s3:prefix` condition)."""
    raw = dev.logical_id("Ingestion", "RawBucket")
    statements = policy_statements(template, dev.logical_id("Ingestion", "IngestRole"))

    def objects(pattern):
        return {"Fn::Join": ["", [arn(raw), f"/{pattern}"]]}

    assert normalized(statements) == normalized(
        [
            {
                "Effect": "Allow",
                "Action": "firehose:PutRecord",
                "Resource": arn(dev.logical_id("Ingestion", "RawStream")),
            },
            {
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": [objects("ingest-state/chats-seen/*"), objects("ingest-state/chat-links/*")],
            },
            {
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": arn(raw),
                "Condition": {"StringLike": {"s3:prefix": ["ingest-state/chat-links/*"]}},
            },
            read_the_secret(dev),
            *own_logs_and_traces(dev, "Ingest", traced=False),  # every request's trace would cost too much
        ]
    )
    assert not [p for p in template["Resources"].values() if p["Type"] == "AWS::IAM::ManagedPolicy"]


def test_authorizer_role_may_only_read_the_secret_and_write_its_logs(dev, template):
    statements = policy_statements(template, dev.logical_id("Ingestion", "AuthorizerRole"))

    assert normalized(statements) == normalized([read_the_secret(dev), *own_logs_and_traces(dev, "Authorizer")])


def test_the_policy_comparison_sees_conditions_and_principals():
    """The helper every IAM test relies on: dropping a condition or changing a principal is a difference."""
    statement = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
                 "Condition": {"StringLike": {"s3:prefix": ["x/*"]}}}
    unconditional = {key: value for key, value in statement.items() if key != "Condition"}

    assert normalized([statement]) != normalized([unconditional])
    assert normalized([{**statement, "Principal": {"Service": "a"}}]) != normalized([statement])
    assert normalized([{**statement, "Principal": {"Service": "a"}}]) != normalized(
        [{**statement, "Principal": {"Service": "b"}}]
    )


def test_the_raw_stream_batches_gzip_lines_into_each_lines_own_day_folder(dev, template):
    """Direct PUT, dynamic partitioning on the line's own `context_date` (JQ 1.6): a line lands in its arrival
    day's folder whenever its batch is written; what cannot be partitioned goes outside `telegram/`."""
    stream = the_resource(template, "AWS::KinesisFirehose::DeliveryStream")["Properties"]
    destination = stream.pop("ExtendedS3DestinationConfiguration")

    assert stream == {
        "DeliveryStreamName": "TelegramLake-dev-Raw",
        "DeliveryStreamType": "DirectPut",
        "DeliveryStreamEncryptionConfigurationInput": {"KeyType": "AWS_OWNED_CMK"},
        "Tags": [{"Key": "project", "Value": "TelegramLake"}, {"Key": "stage", "Value": "dev"}],
    }
    assert destination == {
        "BucketARN": arn(dev.logical_id("Ingestion", "RawBucket")),
        "RoleARN": arn(dev.logical_id("Ingestion", "RawStream", "Role")),
        "Prefix": "telegram/context_date=!{partitionKeyFromQuery:context_date}/",
        "ErrorOutputPrefix": "firehose-errors/!{firehose:error-output-type}/!{timestamp:yyyy-MM-dd}/",
        "CompressionFormat": "GZIP",
        "FileExtension": ".jsonl.gz",
        "BufferingHints": {"IntervalInSeconds": 60, "SizeInMBs": 64},
        "DynamicPartitioningConfiguration": {"Enabled": True, "RetryOptions": {"DurationInSeconds": 7200}},
        "ProcessingConfiguration": {
            "Enabled": True,
            "Processors": [
                {
                    "Type": "MetadataExtraction",
                    "Parameters": [
                        {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{context_date: .context_date}"},
                        {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"},
                    ],
                }
            ],
        },
        "CloudWatchLoggingOptions": {
            "Enabled": True,
            "LogGroupName": ref(dev.logical_id("Ingestion", "RawStream", "DeliveryLogs")),
            "LogStreamName": ref(dev.logical_id("Ingestion", "RawStream", "DeliveryLogStream")),
        },
    }


def test_the_partition_query_reads_the_field_the_ingest_writes_and_the_folder_is_the_readers_day_folder():
    """The JQ key and the prefix are built from the envelope's and the layout's own names."""
    line = json.loads(envelope_line(date(2026, 12, 7), 1796684399900, b'{"update_id":1}'))

    assert line["context_date"] == "2026-12-07"
    assert day_prefix(date(2026, 12, 7)) == RAW_BATCH_OBJECTS.replace(
        "!{partitionKeyFromQuery:context_date}", line["context_date"]
    )


def test_a_stage_sets_how_often_a_batch_closes(slow_batches):
    stream = the_resource(slow_batches.template("Ingestion"), "AWS::KinesisFirehose::DeliveryStream")["Properties"]

    assert stream["ExtendedS3DestinationConfiguration"]["BufferingHints"] == {"IntervalInSeconds": 300, "SizeInMBs": 64}


def test_the_raw_streams_errors_are_logged_to_its_own_group_and_stream_kept_for_the_configured_days(dev, template):
    group = dev.logical_id("Ingestion", "RawStream", "DeliveryLogs")
    stream = template["Resources"][dev.logical_id("Ingestion", "RawStream", "DeliveryLogStream")]

    assert template["Resources"][group]["Properties"]["RetentionInDays"] == dev.config.log_retention_days
    assert stream["Properties"] == {"LogGroupName": ref(group), "LogStreamName": "S3Delivery"}


def test_firehose_may_write_only_the_raw_zone_and_its_error_prefix_and_its_own_log(dev, template):
    """The S3 actions AWS documents for an S3 destination, objects under `telegram/` and `firehose-errors/`
    only (never `ingest-state/`), and the role trusts only Firehose acting for this account."""
    raw = dev.logical_id("Ingestion", "RawBucket")
    role_id = dev.logical_id("Ingestion", "RawStream", "Role")
    role = template["Resources"][role_id]["Properties"]

    def objects(pattern):
        return {"Fn::Join": ["", [arn(raw), f"/{pattern}"]]}

    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": {"Ref": "AWS::AccountId"}}},
            "Effect": "Allow",
            "Principal": {"Service": "firehose.amazonaws.com"},
        }
    ]
    assert normalized(policy_statements(template, role_id)) == normalized(
        [
            {
                "Effect": "Allow",
                "Action": ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
                "Resource": [objects("telegram/*"), objects("firehose-errors/*")],
            },
            {
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                "Resource": arn(raw),
            },
            {
                "Effect": "Allow",
                "Action": "logs:PutLogEvents",
                "Resource": arn(dev.logical_id("Ingestion", "RawStream", "DeliveryLogs")),
            },
        ]
    )


def test_the_stream_is_created_only_once_its_role_may_write(dev, template):
    stream = template["Resources"][dev.logical_id("Ingestion", "RawStream")]

    assert {
        dev.logical_id("Ingestion", "RawStream", "Role"),
        dev.stacks["Ingestion"].resolve(
            dev.stacks["Ingestion"].node.find_child("RawStream").node.find_child("Role")
            .node.find_child("DefaultPolicy").node.default_child.logical_id
        ),
    } <= set(stream["DependsOn"])


def test_api_is_an_http_api_with_one_post_route_proxied_to_the_ingest_function_in_payload_format_2(dev, template):
    api = the_resource(template, "AWS::ApiGatewayV2::Api")["Properties"]
    route = the_resource(template, "AWS::ApiGatewayV2::Route")["Properties"]
    integration = the_resource(template, "AWS::ApiGatewayV2::Integration")["Properties"]
    api_id = ref(dev.logical_id("Ingestion", "WebhookApi", "Api"))

    assert (api["ProtocolType"], api["Name"]) == ("HTTP", "TelegramLake-dev-Webhook")
    assert "DisableExecuteApiEndpoint" not in api
    assert route["RouteKey"] == "POST /webhook"
    assert route["Target"] == {"Fn::Join": ["", ["integrations/", ref(dev.logical_id(
        "Ingestion", "WebhookApi", "Api", "POST--webhook", "Ingest"))]]}
    assert integration == {
        "ApiId": api_id,
        "IntegrationType": "AWS_PROXY",
        "IntegrationUri": arn(dev.logical_id("Ingestion", "Ingest")),
        "PayloadFormatVersion": "2.0",
    }


def test_the_route_lets_requests_through_only_past_the_authorizer_keyed_on_the_secret_header(dev, template):
    """A request without the header is answered 401 by API Gateway itself; verdicts are cached per value."""
    route = the_resource(template, "AWS::ApiGatewayV2::Route")["Properties"]
    authorizer = the_resource(template, "AWS::ApiGatewayV2::Authorizer")["Properties"]

    assert (route["AuthorizationType"], route["AuthorizerId"]) == (
        "CUSTOM", ref(dev.logical_id("Ingestion", "WebhookApi", "Api", "SecretToken")),
    )
    assert authorizer == {
        "ApiId": ref(dev.logical_id("Ingestion", "WebhookApi", "Api")),
        "AuthorizerType": "REQUEST",
        "Name": "SecretToken",
        "IdentitySource": ["$request.header.X-Telegram-Bot-Api-Secret-Token"],
        "EnableSimpleResponses": True,
        "AuthorizerPayloadFormatVersion": "2.0",
        "AuthorizerResultTtlInSeconds": 300,
        "AuthorizerUri": {"Fn::Join": ["", [
            "arn:", {"Ref": "AWS::Partition"}, ":apigateway:", {"Ref": "AWS::Region"},
            ":lambda:path/2015-03-31/functions/", arn(dev.logical_id("Ingestion", "Authorizer")), "/invocations",
        ]]},
    }


def test_only_this_api_may_invoke_the_functions_the_ingest_through_its_webhook_route(dev, template):
    permissions = {
        json.dumps(p["Properties"]["FunctionName"]): p["Properties"]
        for p in resources(template, "AWS::Lambda::Permission").values()
    }
    api = ref(dev.logical_id("Ingestion", "WebhookApi", "Api"))
    ingest = permissions.pop(json.dumps(arn(dev.logical_id("Ingestion", "Ingest"))))
    authorizer = permissions.pop(json.dumps(arn(dev.logical_id("Ingestion", "Authorizer"))))

    assert permissions == {}
    for permission in (ingest, authorizer):
        assert (permission["Principal"], permission["Action"]) == ("apigateway.amazonaws.com", "lambda:InvokeFunction")
        assert api in permission["SourceArn"]["Fn::Join"][1]
    assert ingest["SourceArn"]["Fn::Join"][1][-1] == "/*/*/webhook"
    assert authorizer["SourceArn"]["Fn::Join"][1][-2:] == [
        "/authorizers/", ref(dev.logical_id("Ingestion", "WebhookApi", "Api", "SecretToken"))
    ]


def test_api_stage_is_named_after_the_stage_deploys_itself_throttles_and_logs_json_but_never_bodies(dev, template):
    stage = the_resource(template, "AWS::ApiGatewayV2::Stage")["Properties"]
    access_logs = dev.logical_id("Ingestion", "WebhookApi", "AccessLogs")

    assert (stage["StageName"], stage["AutoDeploy"]) == ("dev", True)
    assert stage["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": dev.config.api_throttle_rate, "ThrottlingBurstLimit": dev.config.api_throttle_burst,
    }
    assert stage["AccessLogSettings"]["DestinationArn"] == arn(access_logs)
    log_fields = json.loads(stage["AccessLogSettings"]["Format"])
    # The REST access log's fields, where an HTTP API has them (`routeKey` for the resource path).
    assert {"requestId", "ip", "caller", "user", "requestTime", "httpMethod", "routeKey", "status", "protocol",
            "responseLength"} <= log_fields.keys()
    assert (log_fields["routeKey"], log_fields["status"]) == ("$context.routeKey", "$context.status")
    assert not [value for value in log_fields.values() if "body" in value.lower()]
    assert template["Resources"][access_logs]["Properties"]["RetentionInDays"] == dev.config.log_retention_days


def test_nothing_needs_api_gateways_account_wide_logging_role(template):
    """An HTTP API has no execution logs: no account setting, no role API Gateway assumes, no execution log group."""
    assert not resources(template, "AWS::ApiGateway::Account")
    assert not [r for r in resources(template, "AWS::Logs::LogGroup").values() if "LogGroupName" in r["Properties"]]
    trusted = [
        statement["Principal"]
        for role in resources(template, "AWS::IAM::Role").values()
        for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    ]
    assert {"Service": "apigateway.amazonaws.com"} not in trusted
    assert not [name for name in resources(template, "AWS::ApiGateway::RestApi")]


def test_outputs_give_the_webhook_url_the_secret_the_stream_the_api_the_raw_bucket_and_the_alarm_topic(dev, template):
    declared = template["Outputs"]

    # The ids `tools webhook set`, the ETL stack and its dashboard read.
    assert {
        outputs.WEBHOOK_URL, outputs.WEBHOOK_SECRET_ARN, outputs.DELIVERY_STREAM_NAME, outputs.WEBHOOK_API_ID,
        outputs.RAW_BUCKET_NAME, outputs.ALARM_TOPIC_ARN,
    } == declared.keys()
    # The URL keeps the REST API's shape: https://<id>.execute-api.<region>.<suffix>/<stage>/webhook
    assert declared[outputs.WEBHOOK_URL]["Value"] == {"Fn::Join": ["", [
        "https://", ref(dev.logical_id("Ingestion", "WebhookApi", "Api")), ".execute-api.", {"Ref": "AWS::Region"},
        ".", {"Ref": "AWS::URLSuffix"}, "/dev/webhook",
    ]]}
    assert declared[outputs.WEBHOOK_SECRET_ARN]["Value"] == ref(dev.logical_id("Ingestion", "WebhookSecret"))
    assert declared[outputs.DELIVERY_STREAM_NAME]["Value"] == "TelegramLake-dev-Raw"
    assert declared[outputs.WEBHOOK_API_ID]["Value"] == ref(dev.logical_id("Ingestion", "WebhookApi", "Api"))
    assert declared[outputs.RAW_BUCKET_NAME]["Value"] == ref(dev.logical_id("Ingestion", "RawBucket"))
    assert declared[outputs.ALARM_TOPIC_ARN]["Value"] == ref(dev.logical_id("Ingestion", "AlarmTopic", "Topic"))
    # What the later stacks import: CloudFormation keeps an export in use from changing (tests/test_app.py).
    # ... and what the GitHub deploy role's reads for `tools doctor` name (stacks/github.py).
    assert {name: output["Export"]["Name"] for name, output in declared.items() if "Export" in output} == {
        outputs.RAW_BUCKET_NAME: "TelegramLake-dev-Ingestion-RawBucketName",
        outputs.ALARM_TOPIC_ARN: "TelegramLake-dev-Ingestion-AlarmTopicArn",
        outputs.WEBHOOK_API_ID: "TelegramLake-dev-Ingestion-WebhookApiId",
        outputs.WEBHOOK_SECRET_ARN: "TelegramLake-dev-Ingestion-WebhookSecretArn",
    }


def alarms_by_name(template) -> dict[str, dict]:
    return {
        alarm["Properties"]["AlarmName"]: alarm["Properties"]
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values()
    }


def ingest_metric(name: str, period: int = 300) -> dict:
    """A count the ingest handler emits, as an alarm's metric stat: the stage's own namespace."""
    return {
        "Metric": {
            "Namespace": "TelegramLake/dev",
            "MetricName": name,
            "Dimensions": [{"Name": "service", "Value": metrics.SERVICE}],
        },
        "Period": period,
        "Stat": "Sum",
    }


def test_alarms_on_failed_stores_function_errors_and_api_server_errors(dev, template):
    alarms = alarms_by_name(template)
    failed, errors, server_errors = (
        alarms[f"TelegramLake-dev-{name}"] for name in ("UpdatesNotStored", "IngestErrors", "WebhookServerErrors")
    )

    # The count the handler emits (Powertools EMF) for every update it answers 5xx without storing, in the
    # stage's namespace: another stage's failures never raise this stage's alarm.
    assert (failed["Namespace"], failed["MetricName"], failed["Dimensions"]) == (
        "TelegramLake/dev", metrics.FAILED, [{"Name": "service", "Value": metrics.SERVICE}]
    )
    assert (errors["Namespace"], errors["MetricName"], errors["Dimensions"]) == (
        "AWS/Lambda", "Errors", [{"Name": "FunctionName", "Value": ref(dev.logical_id("Ingestion", "Ingest"))}]
    )
    # An HTTP API's metrics: `5xx` by its id and stage (a crashed or timed-out authorizer is a 5xx too).
    assert (server_errors["Namespace"], server_errors["MetricName"], server_errors["Dimensions"]) == (
        "AWS/ApiGateway", "5xx",
        [{"Name": "ApiId", "Value": ref(dev.logical_id("Ingestion", "WebhookApi", "Api"))},
         {"Name": "Stage", "Value": "dev"}],
    )
    for alarm in (failed, errors, server_errors):
        assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 300, 1)
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
        assert alarm["TreatMissingData"] == "notBreaching"


def test_any_throttle_of_the_ingest_function_raises_an_alarm(dev, template):
    """Telegram opens up to webhook_max_connections connections; a new account's Lambda quota may be lower."""
    throttled = alarms_by_name(template)["TelegramLake-dev-IngestThrottled"]

    assert (throttled["Namespace"], throttled["MetricName"], throttled["Dimensions"]) == (
        "AWS/Lambda", "Throttles", [{"Name": "FunctionName", "Value": ref(dev.logical_id("Ingestion", "Ingest"))}]
    )
    assert (throttled["Statistic"], throttled["Period"], throttled["EvaluationPeriods"]) == ("Sum", 300, 1)
    assert (throttled["Threshold"], throttled["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert throttled["TreatMissingData"] == "notBreaching"
    assert f"up to {dev.config.webhook_max_connections} connections" in throttled["AlarmDescription"]


def test_a_burst_of_refused_secret_tokens_raises_an_alarm(dev, template):
    """Counted from the access log, so the authorizer's cached denials count too (its own Unauthorized metric
    sees only the uncached ones: a rotated secret Telegram does not know would stay below the burst)."""
    rejected = alarms_by_name(template)["TelegramLake-dev-RejectedTokens"]
    count = template["Resources"][dev.logical_id("Ingestion", "WebhookApi", "RefusedTokenRequests")]["Properties"]

    assert (rejected["Namespace"], rejected["MetricName"], rejected.get("Dimensions")) == (
        "TelegramLake/dev", "RefusedTokens", None
    )
    assert count == {
        "LogGroupName": ref(dev.logical_id("Ingestion", "WebhookApi", "AccessLogs")),
        "FilterPattern": '{ ($.routeKey = "POST /webhook") && (($.status = "401") || ($.status = "403")) }',
        "MetricTransformations": [{"MetricName": "RefusedTokens", "MetricNamespace": "TelegramLake/dev", "MetricValue": "1"}],
    }
    assert (rejected["Statistic"], rejected["Period"], rejected["EvaluationPeriods"]) == ("Sum", 300, 1)
    assert (rejected["Threshold"], rejected["ComparisonOperator"]) == (5, "GreaterThanOrEqualToThreshold")
    assert rejected["TreatMissingData"] == "notBreaching"
    assert "webhook set" in rejected["AlarmDescription"] and "access log" in rejected["AlarmDescription"]


def firehose_metric(alarm: dict) -> tuple:
    return alarm["Namespace"], alarm["MetricName"], alarm["Dimensions"], alarm["Statistic"], alarm["Period"]


STREAM = [{"Name": "DeliveryStreamName", "Value": "TelegramLake-dev-Raw"}]


def test_a_raw_delivery_that_falls_behind_its_batches_raises_an_alarm(template, slow_batches):
    """The oldest undelivered update older than 1.5 batch intervals (Firehose's documented worst case with
    dynamic partitioning) plus five minutes."""
    late = alarms_by_name(template)["TelegramLake-dev-RawDeliveryLate"]
    slow = alarms_by_name(slow_batches.template("Ingestion"))["TelegramLake-dev-RawDeliveryLate"]

    assert firehose_metric(late) == ("AWS/Firehose", "DeliveryToS3.DataFreshness", STREAM, "Maximum", 300)
    assert (late["Threshold"], late["ComparisonOperator"]) == (390, "GreaterThanOrEqualToThreshold")
    assert slow["Threshold"] == 750
    assert late["TreatMissingData"] == "notBreaching"


def test_a_failed_s3_write_of_the_raw_stream_raises_an_alarm(template):
    failing = alarms_by_name(template)["TelegramLake-dev-RawDeliveryFailing"]

    assert firehose_metric(failing) == ("AWS/Firehose", "DeliveryToS3.Success", STREAM, "Minimum", 300)
    assert (failing["Threshold"], failing["ComparisonOperator"], failing["EvaluationPeriods"]) == (
        1, "LessThanThreshold", 1
    )
    assert failing["TreatMissingData"] == "notBreaching"  # no delivery attempted: nothing came in


def test_records_set_aside_under_the_error_prefix_raise_an_alarm(dev, template):
    """Firehose counts no record it fails to partition: every event in the stream's error log is counted
    instead; records beyond the active-partition quota are signalled by PartitionCountExceeded."""
    alarms = alarms_by_name(template)
    exceeded, errors = alarms["TelegramLake-dev-RawPartitionsExceeded"], alarms["TelegramLake-dev-RawDeliveryErrors"]
    count = template["Resources"][dev.logical_id("Ingestion", "Alarms", "RawDeliveryErrorEvents")]["Properties"]

    assert firehose_metric(exceeded) == ("AWS/Firehose", "PartitionCountExceeded", STREAM, "Maximum", 300)
    assert (errors["Namespace"], errors["MetricName"], errors["Statistic"]) == (
        "TelegramLake/dev", "RawDeliveryErrors", "Sum"
    )
    assert count == {
        "LogGroupName": ref(dev.logical_id("Ingestion", "RawStream", "DeliveryLogs")),
        "FilterPattern": "",  # every event
        "MetricTransformations": [
            {"MetricName": "RawDeliveryErrors", "MetricNamespace": "TelegramLake/dev", "MetricValue": "1"}
        ],
    }
    for alarm in (exceeded, errors):
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
        assert "firehose-errors/" in alarm["AlarmDescription"]


class Series(dict):
    """A metric math time series ({timestamp: value}) with the comparison the alarm's expression uses, as
    CloudWatch's metric math reference states it: against a scalar, each datapoint becomes 1 or 0; between
    two series, a timestamp where only one has a value compares with 0 for the other."""

    def __gt__(self, other):
        if isinstance(other, Series):
            return Series({t: int(self.get(t, 0) > other.get(t, 0)) for t in self.keys() | other.keys()})
        return Series({t: int(value > other) for t, value in self.items()})


def test_groups_writing_while_nothing_is_stored_raise_an_alarm(template):
    """The fresh-deploy case: the allowlist still holds the example id, the real group is skipped."""
    unlisted = alarms_by_name(template)["TelegramLake-dev-OnlyUnlistedChatsWrite"]
    queries = {query["Id"]: query for query in unlisted["Metrics"]}
    [expression] = [query["Expression"] for query in unlisted["Metrics"] if "Expression" in query]

    def evaluate(**series: dict[int, float]) -> Series:
        return eval(expression, {"__builtins__": {}}, {name: Series(values) for name, values in series.items()})

    # Hours 1-4: `Stored` was never published (a fresh stage), then groups write unlisted in hours 2 and 3.
    assert evaluate(unlisted={2: 3, 3: 1}, stored={}) == {2: 1, 3: 1}
    # Stored in hour 3 only: hour 2 still alarms, hour 3 does not; an hour of stores alone is not breaching.
    assert evaluate(unlisted={2: 3, 3: 1}, stored={3: 5, 4: 2}) == {2: 1, 3: 0, 4: 0}
    assert evaluate(unlisted={}, stored={}) == {}  # nothing at all: missing data, not breaching
    assert queries["unlisted"]["MetricStat"] == ingest_metric(metrics.SKIPPED_FROM_GROUP, 3600)
    assert queries["stored"]["MetricStat"] == ingest_metric(metrics.STORED, 3600)
    assert (unlisted["Threshold"], unlisted["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert unlisted["TreatMissingData"] == "notBreaching"
    assert "tools chats --stage dev" in unlisted["AlarmDescription"]


def test_hours_without_a_stored_update_raise_an_alarm_when_the_stage_asks_for_it(dev_mailed, template):
    silent = alarms_by_name(dev_mailed.template("Ingestion"))["TelegramLake-dev-NoUpdatesStored"]

    assert (silent["Namespace"], silent["MetricName"], silent["Statistic"]) == ("TelegramLake/dev", metrics.STORED, "Sum")
    assert (silent["Period"], silent["EvaluationPeriods"], silent["DatapointsToAlarm"]) == (3600, 6, 6)
    assert (silent["Threshold"], silent["ComparisonOperator"]) == (1, "LessThanThreshold")
    assert silent["TreatMissingData"] == "breaching"  # no request at all is exactly the silence it is about
    assert "TelegramLake-dev-NoUpdatesStored" not in alarms_by_name(template)  # dev: no_updates_alarm_hours 0


def test_every_alarm_is_named_after_the_stage_and_notifies_the_topic_when_raised_and_when_cleared(
    dev, template, dev_mailed
):
    topic = ref(dev.logical_id("Ingestion", "AlarmTopic", "Topic"))

    for stage_template in (template, dev_mailed.template("Ingestion")):
        for name, alarm in alarms_by_name(stage_template).items():
            assert name.startswith("TelegramLake-dev-")
            assert (alarm["AlarmActions"], alarm["OKActions"]) == ([topic], [topic])


def test_alarm_topic_is_tls_only_and_encrypted_with_a_rotated_key_cloudwatch_may_use(dev, template):
    """Not the AWS managed alias/aws/sns key: CloudWatch cannot use it, and alarm actions would fail.
    The grants name no stack: the ETL stack's alarms publish too; but only this stage's alarms may."""
    key_id = dev.logical_id("Ingestion", "AlarmTopic", "Key")
    topic_id = dev.logical_id("Ingestion", "AlarmTopic", "Topic")
    topic = the_resource(template, "AWS::SNS::Topic")["Properties"]
    key = the_resource(template, "AWS::KMS::Key")["Properties"]
    topic_policy = the_resource(template, "AWS::SNS::TopicPolicy")["Properties"]

    assert topic["KmsMasterKeyId"] == arn(key_id)
    assert key["EnableKeyRotation"] is True
    cloudwatch = {"Service": "cloudwatch.amazonaws.com"}
    assert [s for s in key["KeyPolicy"]["Statement"] if s["Principal"] == cloudwatch] == [
        {"Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Effect": "Allow", "Principal": cloudwatch, "Resource": "*"}
    ]
    assert topic_policy["Topics"] == [ref(topic_id)]
    this_stages_alarms = {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, ":cloudwatch:", {"Ref": "AWS::Region"}, ":",
             {"Ref": "AWS::AccountId"}, ":alarm:TelegramLake-dev-*"],
        ]
    }
    assert sorted(topic_policy["PolicyDocument"]["Statement"], key=lambda s: s["Effect"]) == [
        {
            "Action": "sns:Publish",
            "Condition": {"ArnLike": {"aws:SourceArn": this_stages_alarms}},
            "Effect": "Allow",
            "Principal": cloudwatch,
            "Resource": ref(topic_id),
            "Sid": "AllowThisStagesAlarms",
        },
        {
            "Action": "sns:Publish",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": "*",
            "Resource": ref(topic_id),
            "Sid": "AllowPublishThroughSSLOnly",
        },
    ]


def test_alarm_topic_mails_the_configured_address_and_nobody_otherwise(dev_mailed, template):
    subscription = the_resource(dev_mailed.template("Ingestion"), "AWS::SNS::Subscription")["Properties"]

    assert subscription == {
        "Protocol": "email",
        "Endpoint": "oncall@example.org",
        "TopicArn": ref(dev_mailed.logical_id("Ingestion", "AlarmTopic", "Topic")),
    }
    assert not resources(template, "AWS::SNS::Subscription")  # dev configures no alarm_email


def test_synth_warns_when_nobody_is_mailed_the_alarms(dev, dev_mailed):
    """`cdk synth` and `cdk deploy` print it; `python -m tools target` says the same before every deploy."""

    def warnings(stage_app) -> list[tuple[str, str]]:
        found = Annotations.from_stack(stage_app.stacks["Ingestion"]).find_warning("*", Match.any_value())
        return [(message.id, message.entry.data) for message in found]

    [(path, text)] = warnings(dev)
    assert path == "/TelegramLake-dev-Ingestion/AlarmTopic/Topic"
    assert text.startswith("stage dev sets no `alarm_email`: its alarms notify only the SNS topic in the ")
    assert "AlarmTopicArn output of TelegramLake-dev-Ingestion" in text
    assert warnings(dev_mailed) == []

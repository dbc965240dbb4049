"""Ingestion stack template: raw bucket, webhook secret, ingest function and its exact permissions, REST API."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Annotations, Match

from lambdas.ingest import metrics
from lambdas.ingest.budget import FUNCTION_TIMEOUT_SECONDS
from stacks import outputs
from tests.cdk_support import arn, normalized, policy_statements, ref, resources, stage_fixture, the_resource

dev = stage_fixture("dev")
several_chats = stage_fixture("dev", name="several_chats", allowed_chat_ids=[-1001, 42, -7])
# The same stage with someone to mail the alarms to, and an alarm after 6 hours without a stored update.
dev_mailed = stage_fixture("dev", name="dev_mailed", alarm_email="oncall@example.org", no_updates_alarm_hours=6)


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
    assert rules.keys() == {"ExpireOldVersions", "RawUpdatesAge", "ChatsSeenExpire"}
    assert rules["RawUpdatesAge"] == {
        "Id": "RawUpdatesAge",
        "Prefix": "telegram/",
        "Status": "Enabled",
        "Transitions": [{"StorageClass": "GLACIER_IR", "TransitionInDays": dev.config.raw_transition_days}],
        "ExpirationInDays": dev.config.raw_expiration_days,
    }
    assert rules["ExpireOldVersions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert rules["ExpireOldVersions"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}


def test_the_raw_zones_expiry_never_reaches_the_ingests_learned_group_upgrades(dev, template):
    """Only `telegram/` ages out; chats seen expire on their own schedule; chat links are kept for good."""
    raw = template["Resources"][dev.logical_id("Ingestion", "RawBucket")]["Properties"]
    ageing = [
        rule for rule in raw["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in rule or "Transitions" in rule
    ]

    assert {rule["Id"]: rule.get("Prefix") for rule in ageing} == {
        "RawUpdatesAge": "telegram/", "ChatsSeenExpire": "ingest-state/chats-seen/"
    }
    assert next(rule for rule in ageing if rule["Id"] == "ChatsSeenExpire") == {
        "Id": "ChatsSeenExpire",
        "Prefix": "ingest-state/chats-seen/",
        "Status": "Enabled",
        "ExpirationInDays": 35,
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


def test_ingest_function_runtime_code_and_limits(dev, template):
    function = the_resource(template, "AWS::Lambda::Function")["Properties"]
    layer = the_resource(template, "AWS::Lambda::LayerVersion")["Properties"]

    assert function["FunctionName"] == "TelegramLake-dev-Ingest"  # the dashboard reads its metrics by this name
    assert function["Handler"] == "lambdas.ingest.handler.handler"
    assert function["Runtime"] == "python3.14"
    assert function["Architectures"] == ["arm64"]
    # The handler's own AWS-call budget (lambdas/ingest/budget.py) fits inside this timeout.
    assert (function["MemorySize"], function["Timeout"]) == (256, FUNCTION_TIMEOUT_SECONDS)
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert function["Layers"] == [ref(dev.logical_id("Ingestion", "RuntimeLayer"))]
    assert (layer["CompatibleRuntimes"], layer["CompatibleArchitectures"]) == (["python3.14"], ["arm64"])
    assert "ReservedConcurrentExecutions" not in function


def test_ingest_function_is_configured_through_its_four_variables_and_its_stages_metric_namespace(dev, template):
    function = the_resource(template, "AWS::Lambda::Function")["Properties"]

    assert function["Environment"]["Variables"] == {
        "RAW_BUCKET": ref(dev.logical_id("Ingestion", "RawBucket")),
        "WEBHOOK_SECRET_ARN": ref(dev.logical_id("Ingestion", "WebhookSecret")),
        "ALLOWED_CHAT_IDS": ",".join(str(chat) for chat in dev.config.allowed_chat_ids),
        "TIMEZONE": dev.config.timezone,
        "POWERTOOLS_METRICS_NAMESPACE": "TelegramLake/dev",
    }


def test_several_allowed_chats_are_comma_separated(several_chats):
    function = the_resource(several_chats.template("Ingestion"), "AWS::Lambda::Function")["Properties"]

    assert function["Environment"]["Variables"]["ALLOWED_CHAT_IDS"] == "-1001,42,-7"


def test_ingest_logs_go_to_its_own_group_kept_for_the_configured_days(dev, template):
    function = the_resource(template, "AWS::Lambda::Function")["Properties"]
    log_group = dev.logical_id("Ingestion", "IngestLogs")

    assert function["LoggingConfig"] == {"LogGroup": ref(log_group)}
    assert template["Resources"][log_group]["Properties"]["RetentionInDays"] == dev.config.log_retention_days


def test_ingest_role_may_only_add_objects_list_chat_links_read_its_secret_and_write_logs_and_traces(dev, template):
    """No GET, no delete, no version, tagging, retention or abort calls: a conditional PutObject per update
    (S3 answers a redelivery with 412), the chats-seen records, the learned group upgrades, and listing
    those upgrades only (the `s3:prefix` condition)."""
    raw = dev.logical_id("Ingestion", "RawBucket")
    statements = policy_statements(template, dev.logical_id("Ingestion", "IngestRole"))

    def objects(pattern):
        return {"Fn::Join": ["", [arn(raw), f"/{pattern}"]]}

    assert normalized(statements) == normalized(
        [
            {
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": [
                    objects("telegram/*"), objects("ingest-state/chats-seen/*"), objects("ingest-state/chat-links/*")
                ],
            },
            {
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": arn(raw),
                "Condition": {"StringLike": {"s3:prefix": ["ingest-state/chat-links/*"]}},
            },
            {
                "Effect": "Allow",
                "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
                "Resource": ref(dev.logical_id("Ingestion", "WebhookSecret")),
            },
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": arn(dev.logical_id("Ingestion", "IngestLogs")),
            },
            {"Effect": "Allow", "Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], "Resource": "*"},
        ]
    )
    assert not [p for p in template["Resources"].values() if p["Type"] == "AWS::IAM::ManagedPolicy"]


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


def test_api_has_one_post_route_proxied_to_the_function(dev, template):
    methods = list(resources(template, "AWS::ApiGateway::Method").values())
    route = the_resource(template, "AWS::ApiGateway::Resource")["Properties"]
    api = the_resource(template, "AWS::ApiGateway::RestApi")["Properties"]

    assert api["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    assert route["PathPart"] == "webhook"
    assert len(methods) == 1
    method = methods[0]["Properties"]
    assert method["HttpMethod"] == "POST"
    assert method["Integration"]["Type"] == "AWS_PROXY"
    assert arn(dev.logical_id("Ingestion", "Ingest")) in method["Integration"]["Uri"]["Fn::Join"][1]


def test_api_rejects_requests_without_the_secret_header_or_an_update_id_before_the_function(dev, template):
    method = the_resource(template, "AWS::ApiGateway::Method")["Properties"]
    validator = the_resource(template, "AWS::ApiGateway::RequestValidator")["Properties"]
    model = the_resource(template, "AWS::ApiGateway::Model")["Properties"]
    missing_header = the_resource(template, "AWS::ApiGateway::GatewayResponse")["Properties"]

    assert method["RequestParameters"] == {"method.request.header.X-Telegram-Bot-Api-Secret-Token": True}
    assert (validator["ValidateRequestParameters"], validator["ValidateRequestBody"]) == (True, True)
    model_id = dev.logical_id("Ingestion", "WebhookApi", "Api", "TelegramUpdate")
    assert method["RequestModels"] == {"$default": ref(model_id)}  # any Content-Type is validated
    assert model["Schema"]["type"] == "object"
    assert model["Schema"]["required"] == ["update_id"]
    assert model["Schema"]["properties"] == {"update_id": {"type": "integer"}}
    assert (missing_header["ResponseType"], missing_header["StatusCode"]) == ("BAD_REQUEST_PARAMETERS", "401")


def test_only_api_gateway_may_invoke_the_function_and_only_through_post_webhook(template):
    permission = the_resource(template, "AWS::Lambda::Permission")["Properties"]

    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert permission["SourceArn"]["Fn::Join"][1][-1] == "/POST/webhook"


def test_api_stage_throttles_traces_and_writes_json_access_logs_but_never_bodies(dev, template):
    stage = the_resource(template, "AWS::ApiGateway::Stage")["Properties"]
    access_logs = dev.logical_id("Ingestion", "WebhookApi", "AccessLogs")

    assert stage["StageName"] == "dev"
    assert stage["TracingEnabled"] is True
    assert stage["MethodSettings"] == [
        {
            "HttpMethod": "*",
            "ResourcePath": "/*",
            "ThrottlingRateLimit": dev.config.api_throttle_rate,
            "ThrottlingBurstLimit": dev.config.api_throttle_burst,
            "LoggingLevel": "ERROR",
            "DataTraceEnabled": False,
        }
    ]
    assert ref(access_logs) in stage["AccessLogSetting"]["DestinationArn"]["Fn::Join"][1]
    log_fields = json.loads(stage["AccessLogSetting"]["Format"]).keys()
    assert {"requestId", "ip", "status", "resourcePath", "requestTime"} <= log_fields
    assert template["Resources"][access_logs]["Properties"]["RetentionInDays"] == dev.config.log_retention_days


def test_api_execution_logs_keep_the_stages_retention_and_exist_before_the_stage_writes_to_them(dev, template):
    """API Gateway would otherwise create `API-Gateway-Execution-Logs_<api id>/<stage>` itself, kept forever."""
    group_id = dev.logical_id("Ingestion", "WebhookApi", "ExecutionLogs")
    group = template["Resources"][group_id]
    stage_id = dev.logical_id("Ingestion", "WebhookApi", "Api", "DeploymentStage.dev")

    assert group["Properties"]["LogGroupName"] == {
        "Fn::Join": ["", ["API-Gateway-Execution-Logs_", ref(dev.logical_id("Ingestion", "WebhookApi", "Api")), "/dev"]]
    }
    assert group["Properties"]["RetentionInDays"] == dev.config.log_retention_days
    assert group_id in template["Resources"][stage_id]["DependsOn"]


def test_no_stage_touches_api_gateways_account_wide_logging_role(template):
    """One role per account and region, owned by the shared account stack (tests/test_account_stack.py)."""
    assert not resources(template, "AWS::ApiGateway::Account")
    trusted = [
        statement["Principal"]
        for role in resources(template, "AWS::IAM::Role").values()
        for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    ]
    assert {"Service": "apigateway.amazonaws.com"} not in trusted


def test_outputs_give_the_full_webhook_url_the_secret_arn_the_raw_bucket_and_the_alarm_topic(dev, template):
    declared = template["Outputs"]
    url = declared[outputs.WEBHOOK_URL]["Value"]["Fn::Join"][1]

    # The ids `tools webhook set` and the ETL stack read; the REST API adds its own endpoint output.
    assert {outputs.WEBHOOK_URL, outputs.WEBHOOK_SECRET_ARN, outputs.RAW_BUCKET_NAME, outputs.ALARM_TOPIC_ARN} <= (
        declared.keys()
    )
    assert url[0] == "https://" and url[-1] == "/webhook"
    assert ref(dev.logical_id("Ingestion", "WebhookApi", "Api")) in url
    assert ref(dev.logical_id("Ingestion", "WebhookApi", "Api", "DeploymentStage.dev")) in url
    assert declared[outputs.WEBHOOK_SECRET_ARN]["Value"] == ref(dev.logical_id("Ingestion", "WebhookSecret"))
    assert declared[outputs.RAW_BUCKET_NAME]["Value"] == ref(dev.logical_id("Ingestion", "RawBucket"))
    assert declared[outputs.ALARM_TOPIC_ARN]["Value"] == ref(dev.logical_id("Ingestion", "AlarmTopic", "Topic"))
    # What the later stacks import: CloudFormation keeps an export in use from changing (tests/test_app.py).
    assert declared[outputs.RAW_BUCKET_NAME]["Export"] == {"Name": "TelegramLake-dev-Ingestion-RawBucketName"}
    assert declared[outputs.ALARM_TOPIC_ARN]["Export"] == {"Name": "TelegramLake-dev-Ingestion-AlarmTopicArn"}


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
    stage = ref(dev.logical_id("Ingestion", "WebhookApi", "Api", "DeploymentStage.dev"))
    assert (server_errors["Namespace"], server_errors["MetricName"], server_errors["Dimensions"]) == (
        "AWS/ApiGateway", "5XXError",
        [{"Name": "ApiName", "Value": "TelegramLake-dev-Webhook"}, {"Name": "Stage", "Value": stage}],
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


def test_a_burst_of_refused_secret_tokens_raises_an_alarm(template):
    rejected = alarms_by_name(template)["TelegramLake-dev-RejectedTokens"]

    assert (rejected["Namespace"], rejected["MetricName"]) == ("TelegramLake/dev", metrics.UNAUTHORIZED)
    assert (rejected["Statistic"], rejected["Period"], rejected["EvaluationPeriods"]) == ("Sum", 300, 1)
    assert (rejected["Threshold"], rejected["ComparisonOperator"]) == (5, "GreaterThanOrEqualToThreshold")
    assert "webhook set" in rejected["AlarmDescription"]


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

"""ETL stack template (function, layers, schedule, failure handling, exact permissions) and its bundlers."""

from __future__ import annotations

import json
import shutil

import pytest

from lambdas.common.layout import ATHENA_STAGING_PREFIX, PREFIX
from lambdas.etl.day import SCHEDULED_TIME_KEY
from stacks import outputs, packaging
from stacks.limits import LAYER_BUDGET_METADATA, PYARROW_LAYER_BUDGET_BYTES
from tests.cdk_support import arn, normalized, policy_statements, ref, resources, stage_fixture, the_resource

# cdk.json's dev on the Lambda engine: its ETL function is the daily run.
dev = stage_fixture("dev", etl_engine="lambda")
# cdk.json's dev as it is, on the Athena engine: the Presentation stack's state machine is the daily run.
dev_on_athena = stage_fixture("dev", name="dev_on_athena")
# cdk.json's dev on the Lambda engine, pseudonymized for analysts without text, its compacted days kept 400 days
# and older versions 3.
pseudonymized = stage_fixture(
    "dev", name="pseudonymized", etl_engine="lambda", analyst_access="pseudonymized", pseudonymized_text="drop",
    enriched_expiration_days=400, noncurrent_version_days=3,
)
# A stage on x86_64 whose ETL runs at 23:45 Berlin time.
berlin_x86 = stage_fixture(
    "dev", name="berlin_x86", etl_engine="lambda", lambda_architecture="x86_64", etl_schedule_local_time="23:45",
    timezone="Europe/Berlin",
)


@pytest.fixture(scope="module")
def template(dev):
    return dev.template("Etl")


def ingestion_output(config, output_id: str) -> dict:
    """A value the ETL stack imports from the Ingestion stack's exported outputs."""
    return {"Fn::ImportValue": f"{config.stack_name('Ingestion')}-{output_id}"}


def raw_bucket_name(config) -> dict:
    return ingestion_output(config, outputs.RAW_BUCKET_NAME)


def raw_bucket_arn(config) -> dict:
    return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::", raw_bucket_name(config)]]}


def test_enriched_bucket_is_versioned_and_logged(dev, template):
    enriched = template["Resources"][dev.logical_id("Etl", "EnrichedBucket")]["Properties"]

    assert enriched["VersioningConfiguration"] == {"Status": "Enabled"}
    assert enriched["LoggingConfiguration"]["DestinationBucketName"] == ref(dev.logical_id("Etl", "AccessLogs"))
    assert [rule["Id"] for rule in enriched["LifecycleConfiguration"]["Rules"]] == [
        "ExpireOldVersions", "ExpireAthenaStaging", "RemoveAthenaStagingMarkers"
    ]


@pytest.mark.parametrize("stage", ["dev", "dev_on_athena"])
def test_the_athena_engines_staged_files_are_gone_a_day_later_with_their_versions_whichever_the_engine(
    stage, request
):
    """A failed attempt leaves its staged files behind; a stage switched back to the Lambda engine may too."""
    stage_app = request.getfixturevalue(stage)
    enriched = stage_app.template("Etl")["Resources"][stage_app.logical_id("Etl", "EnrichedBucket")]["Properties"]
    rules = {rule["Id"]: rule for rule in enriched["LifecycleConfiguration"]["Rules"]}

    assert rules["ExpireAthenaStaging"] == {
        "Id": "ExpireAthenaStaging", "Status": "Enabled", "Prefix": ATHENA_STAGING_PREFIX,
        "ExpirationInDays": 1, "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
    }
    assert rules["RemoveAthenaStagingMarkers"] == {
        "Id": "RemoveAthenaStagingMarkers", "Status": "Enabled", "Prefix": ATHENA_STAGING_PREFIX,
        "ExpiredObjectDeleteMarker": True,
    }
    assert not ATHENA_STAGING_PREFIX.startswith(PREFIX)  # never the lake's own files


def test_etl_function_runtime_limits_and_layers_follow_the_config(dev, template):
    function = template["Resources"][dev.logical_id("Etl", "Etl")]["Properties"]

    assert function["Handler"] == "lambdas.etl.handler.handler"
    assert (function["Runtime"], function["Architectures"]) == ("python3.14", ["arm64"])
    assert function["MemorySize"] == dev.config.etl_memory_mb
    assert function["Timeout"] == dev.config.etl_timeout_minutes * 60 <= 900
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert sorted(layer["Ref"] for layer in function["Layers"]) == sorted(
        [dev.logical_id("Etl", "RuntimeLayer"), dev.logical_id("Etl", "PyarrowLayer")]
    )
    log_group = template["Resources"][dev.logical_id("Etl", "EtlLogs")]["Properties"]
    assert log_group["RetentionInDays"] == dev.config.log_retention_days


def test_etl_environment_names_both_buckets_the_zone_the_read_concurrency_and_the_first_day(dev, template):
    function = template["Resources"][dev.logical_id("Etl", "Etl")]["Properties"]

    assert function["Environment"]["Variables"] == {
        "RAW_BUCKET": raw_bucket_name(dev.config),
        "ENRICHED_BUCKET": ref(dev.logical_id("Etl", "EnrichedBucket")),
        "TIMEZONE": dev.config.timezone,
        "READ_CONCURRENCY": str(dev.config.etl_read_concurrency),
        "ANALYTICS_START_DATE": dev.config.analytics_start_date,  # the ETL refuses days Athena cannot see
        "POWERTOOLS_METRICS_NAMESPACE": dev.config.metrics_namespace,  # each day's summary, as metrics
    }


def test_pyarrow_layer_is_built_for_the_runtime_and_carries_its_size_budget(dev, template):
    layer = template["Resources"][dev.logical_id("Etl", "PyarrowLayer")]

    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.14"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"][LAYER_BUDGET_METADATA] == PYARROW_LAYER_BUDGET_BYTES == 110 * 1024 * 1024


def test_architecture_switches_function_layers_and_pip_platform_together(berlin_x86):
    template = berlin_x86.template("Etl")

    assert the_resource(template, "AWS::Lambda::Function")["Properties"]["Architectures"] == ["x86_64"]
    layers = resources(template, "AWS::Lambda::LayerVersion").values()
    assert [layer["Properties"]["CompatibleArchitectures"] for layer in layers] == [["x86_64"], ["x86_64"]]
    assert packaging.pip_platforms(berlin_x86.config) == ("manylinux_2_28_x86_64", "manylinux2014_x86_64")


def test_schedule_runs_daily_at_the_local_time_in_the_stages_zone(dev, template, berlin_x86):
    schedule = the_resource(template, "AWS::Scheduler::Schedule")["Properties"]
    berlin = the_resource(berlin_x86.template("Etl"), "AWS::Scheduler::Schedule")["Properties"]

    assert schedule["ScheduleExpression"] == "cron(0 1 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "America/Sao_Paulo"
    assert berlin["ScheduleExpression"] == "cron(45 23 * * ? *)"
    assert berlin["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["State"] == "ENABLED"


def test_schedule_has_a_fixed_name_per_engine_published_as_the_stacks_output(dev, template):
    """Fixed, so the GitHub deploy role can read this one schedule (`tools doctor`); the engine in the name lets
    a stage switch engines without two schedules of one name."""
    schedule = the_resource(template, "AWS::Scheduler::Schedule")["Properties"]

    assert schedule["Name"] == "TelegramLake-dev-DailyRun-lambda"
    assert template["Outputs"][outputs.DAILY_SCHEDULE_NAME]["Value"] == ref(dev.logical_id("Etl", "Daily"))


def test_schedule_invokes_the_etl_for_the_day_before_its_scheduled_time_with_retries_and_a_dlq(dev, template):
    """Scheduler fills in the run's scheduled time, so a retry after midnight still compacts the right day."""
    target = the_resource(template, "AWS::Scheduler::Schedule")["Properties"]["Target"]

    assert target["Arn"] == arn(dev.logical_id("Etl", "Etl"))
    assert json.loads(target["Input"]) == {SCHEDULED_TIME_KEY: "<aws.scheduler.scheduled-time>"}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 6 * 3600}
    assert target["DeadLetterConfig"] == {"Arn": arn(dev.logical_id("Etl", "FailedRuns"))}
    assert target["RoleArn"] == arn(dev.logical_id("Etl", "ScheduleRole"))


def test_a_failing_run_is_retried_by_lambda_then_sent_to_the_dead_letter_queue(dev, template):
    invoke_config = the_resource(template, "AWS::Lambda::EventInvokeConfig")["Properties"]

    assert invoke_config["FunctionName"] == ref(dev.logical_id("Etl", "Etl"))
    assert invoke_config["MaximumRetryAttempts"] == 2
    assert invoke_config["MaximumEventAgeInSeconds"] == 6 * 3600
    failed_runs = arn(dev.logical_id("Etl", "FailedRuns"))
    assert invoke_config["DestinationConfig"] == {"OnFailure": {"Destination": failed_runs}}


def test_dead_letter_queue_is_encrypted_tls_only_and_keeps_messages_14_days(dev, template):
    queue = the_resource(template, "AWS::SQS::Queue")["Properties"]
    policy = the_resource(template, "AWS::SQS::QueuePolicy")["Properties"]["PolicyDocument"]

    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert policy["Statement"] == [
        {
            "Action": "sqs:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": arn(dev.logical_id("Etl", "FailedRuns")),
        }
    ]


ETL_ALARMS = {
    "TelegramLake-dev-EtlErrors", "TelegramLake-dev-FailedRunsWaiting", "TelegramLake-dev-EtlObjectsRejected",
    "TelegramLake-dev-NoDayCompacted",
}


def alarms_by_name(template) -> dict[str, dict]:
    return {
        alarm["Properties"]["AlarmName"]: alarm["Properties"]
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values()
    }


def test_alarms_on_function_errors_and_on_runs_waiting_in_the_dead_letter_queue(dev, template):
    alarms = alarms_by_name(template)

    assert alarms.keys() == ETL_ALARMS
    errors, waiting = alarms["TelegramLake-dev-EtlErrors"], alarms["TelegramLake-dev-FailedRunsWaiting"]
    assert (errors["Namespace"], errors["MetricName"], errors["Dimensions"]) == (
        "AWS/Lambda", "Errors", [{"Name": "FunctionName", "Value": ref(dev.logical_id("Etl", "Etl"))}]
    )
    assert (errors["Statistic"], errors["Period"]) == ("Sum", 300)
    assert (waiting["Namespace"], waiting["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    queue_name = {"Fn::GetAtt": [dev.logical_id("Etl", "FailedRuns"), "QueueName"]}
    assert waiting["Dimensions"] == [{"Name": "QueueName", "Value": queue_name}]
    # A gauge, not a count: the most messages waiting in the period (a Sum would add up every sample).
    assert (waiting["Statistic"], waiting["Period"]) == ("Maximum", 300)
    for alarm in (errors, waiting):
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
        assert alarm["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("stage", ["dev", "dev_on_athena"])
def test_a_day_that_left_raw_objects_out_raises_an_alarm_whichever_the_engine(stage, request):
    stage_app = request.getfixturevalue(stage)
    rejected = alarms_by_name(stage_app.template("Etl"))["TelegramLake-dev-EtlObjectsRejected"]

    assert (rejected["Namespace"], rejected["MetricName"]) == (stage_app.config.metrics_namespace, "ObjectsRejected")
    assert rejected["Dimensions"] == [{"Name": "service", "Value": "etl"}]
    assert (rejected["Statistic"], rejected["Period"], rejected["Threshold"]) == ("Sum", 300, 1)
    assert rejected["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert rejected["TreatMissingData"] == "notBreaching"  # no run, nothing rejected


@pytest.mark.parametrize("stage", ["dev", "dev_on_athena"])
def test_no_day_compacted_for_30_hours_raises_an_alarm_whichever_the_engine(stage, request):
    """Every run publishes its summary, of an empty day too: 30 hours without one means the schedule is gone."""
    stage_app = request.getfixturevalue(stage)
    silence = alarms_by_name(stage_app.template("Etl"))["TelegramLake-dev-NoDayCompacted"]

    assert (silence["Namespace"], silence["MetricName"]) == (stage_app.config.metrics_namespace, "ObjectsRead")
    assert silence["Dimensions"] == [{"Name": "service", "Value": "etl"}]
    assert (silence["Statistic"], silence["Period"]) == ("SampleCount", 3600)
    assert (silence["EvaluationPeriods"], silence["DatapointsToAlarm"]) == (30, 30)
    assert (silence["Threshold"], silence["ComparisonOperator"]) == (1, "LessThanThreshold")
    assert silence["TreatMissingData"] == "breaching"


def test_both_alarms_notify_the_ingestion_stacks_alarm_topic_when_raised_and_when_cleared(dev, template):
    alarms = [alarm["Properties"] for alarm in resources(template, "AWS::CloudWatch::Alarm").values()]
    topic = ingestion_output(dev.config, outputs.ALARM_TOPIC_ARN)

    assert len(alarms) == len(ETL_ALARMS)
    for alarm in alarms:
        assert (alarm["AlarmActions"], alarm["OKActions"]) == ([topic], [topic])
    assert not resources(template, "AWS::SNS::Topic")  # the stage has one topic, in the Ingestion stack


def test_etl_role_lists_and_reads_raw_replaces_enriched_files_under_the_prefix_and_nothing_else(dev, template):
    """Listing only under `telegram/` (the `s3:prefix` condition), GETs only there; the enriched bucket is
    written and pruned, never read or listed, and no version of any object can be deleted."""
    enriched = dev.logical_id("Etl", "EnrichedBucket")
    raw = raw_bucket_arn(dev.config)
    statements = policy_statements(template, dev.logical_id("Etl", "EtlRole"))

    assert normalized(statements) == normalized(
        [
            {
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": raw,
                "Condition": {"StringLike": {"s3:prefix": ["telegram/*"]}},
            },
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": {"Fn::Join": ["", [*raw["Fn::Join"][1], "/telegram/*"]]},
            },
            {
                "Effect": "Allow",
                "Action": ["s3:DeleteObject", "s3:PutObject"],
                "Resource": {"Fn::Join": ["", [arn(enriched), "/telegram/*"]]},
            },
            {
                "Effect": "Allow",
                "Action": ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"],
                "Resource": arn(dev.logical_id("Etl", "FailedRuns")),
            },
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": arn(dev.logical_id("Etl", "EtlLogs")),
            },
            {"Effect": "Allow", "Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], "Resource": "*"},
        ]
    )


def test_schedule_role_may_only_invoke_the_etl_and_feed_its_dead_letter_queue(dev, template):
    """Only Scheduler may assume it, and only for this account's default schedule group (confused deputy)."""
    role_id = dev.logical_id("Etl", "ScheduleRole")
    function = arn(dev.logical_id("Etl", "Etl"))
    trust = template["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]

    assert normalized(policy_statements(template, role_id)) == normalized(
        [
            {
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": [function, {"Fn::Join": ["", [function, ":*"]]}],
            },
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": arn(dev.logical_id("Etl", "FailedRuns"))},
        ]
    )
    default_group = {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, ":scheduler:", {"Ref": "AWS::Region"}, ":",
             {"Ref": "AWS::AccountId"}, ":schedule-group/default"],
        ]
    }
    assert normalized(trust) == normalized(
        [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"Service": "scheduler.amazonaws.com"},
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}, "aws:SourceArn": default_group}
                },
            }
        ]
    )


@pytest.mark.parametrize("stage", ["dev", "dev_on_athena"])
def test_outputs_and_the_dependency_on_the_ingestion_stack(stage, request):
    """The dead-letter queue is exported whichever the engine: an export in use cannot be removed, so one that
    followed the engine would fail this stack's deploy when a stage switches from athena back to lambda."""
    stage_app = request.getfixturevalue(stage)
    declared = stage_app.template("Etl")["Outputs"]
    schedule = set() if stage_app.config.etl_engine_is_athena else {outputs.DAILY_SCHEDULE_NAME}

    assert declared.keys() == {
        outputs.ETL_FUNCTION_NAME, outputs.ENRICHED_BUCKET_NAME, outputs.DASHBOARD_URL, outputs.FAILED_RUNS_QUEUE_ARN,
        outputs.PSEUDONYM_KEY_ARN,
    } | schedule
    assert declared[outputs.ETL_FUNCTION_NAME]["Value"] == ref(stage_app.logical_id("Etl", "Etl"))
    assert declared[outputs.ENRICHED_BUCKET_NAME]["Value"] == ref(stage_app.logical_id("Etl", "EnrichedBucket"))
    assert declared[outputs.ENRICHED_BUCKET_NAME]["Export"] == {"Name": "TelegramLake-dev-Etl-EnrichedBucketName"}
    assert declared[outputs.FAILED_RUNS_QUEUE_ARN]["Value"] == arn(stage_app.logical_id("Etl", "FailedRuns"))
    assert declared[outputs.FAILED_RUNS_QUEUE_ARN]["Export"] == {"Name": "TelegramLake-dev-Etl-FailedRunsQueueArn"}
    assert stage_app.stacks["Ingestion"] in stage_app.stacks["Etl"].dependencies


def test_on_the_athena_engine_the_function_has_no_schedule_but_keeps_its_retries_dead_letters_and_alarms(
    dev_on_athena,
):
    """The state machine (Presentation stack) is the daily run; a backfill or a switch back finds the function
    as it was."""
    template = dev_on_athena.template("Etl")
    invoke_config = the_resource(template, "AWS::Lambda::EventInvokeConfig")["Properties"]
    alarms = {alarm["Properties"]["AlarmName"] for alarm in resources(template, "AWS::CloudWatch::Alarm").values()}

    assert dev_on_athena.config.etl_engine_is_athena
    assert not resources(template, "AWS::Scheduler::Schedule")
    assert [role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"]
            for role in resources(template, "AWS::IAM::Role").values()] == ["lambda.amazonaws.com"]
    assert invoke_config["DestinationConfig"] == {
        "OnFailure": {"Destination": arn(dev_on_athena.logical_id("Etl", "FailedRuns"))}
    }
    assert alarms == ETL_ALARMS


def test_function_code_bundle_holds_the_shared_package_and_only_its_own_function(tmp_path):
    bundler = packaging.FunctionCodeBundler("etl")

    assert bundler.try_bundle(str(tmp_path)) is True
    bundled = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*") if path.is_file())
    assert {"lambdas/__init__.py", "lambdas/common/layout.py", "lambdas/etl/schema.py"} <= set(bundled)
    assert not [path for path in bundled if path.startswith("lambdas/ingest/")]
    assert not [path for path in bundled if "__pycache__" in path or path.endswith((".pyc", "requirements.txt"))]
    assert bundled == [f"lambdas/{path.relative_to(packaging.LAMBDAS_DIR)}" for path in bundler.files()]


def test_function_code_hash_changes_with_its_own_files_only(tmp_path, monkeypatch):
    lambdas = tmp_path / "lambdas"
    shutil.copytree(packaging.LAMBDAS_DIR, lambdas, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(packaging, "LAMBDAS_DIR", lambdas)
    before = packaging.FunctionCodeBundler("etl").fingerprint()

    (lambdas / "ingest" / "handler.py").write_text("# another function\n")
    (lambdas / "etl" / "__pycache__").mkdir()
    (lambdas / "etl" / "__pycache__" / "schema.cpython-311.pyc").write_bytes(b"\0")
    (lambdas / "etl" / "requirements.txt").write_text("pyarrow==0.0.1\n")
    unchanged = packaging.FunctionCodeBundler("etl").fingerprint()
    (lambdas / "common" / "layout.py").write_text("# changed\n")
    changed = packaging.FunctionCodeBundler("etl").fingerprint()

    assert unchanged == before
    assert changed != before


def test_layer_hash_follows_requirements_platform_and_strip_list(dev, berlin_x86):
    requirements = packaging.LAMBDAS_DIR / "etl" / "requirements.txt"
    arm = packaging.PipLayerBundler(requirements, packaging.pip_platforms(dev.config), packaging.PYARROW_STRIP)
    x86 = packaging.PipLayerBundler(requirements, packaging.pip_platforms(berlin_x86.config), packaging.PYARROW_STRIP)
    unstripped = packaging.PipLayerBundler(requirements, packaging.pip_platforms(dev.config), ())

    options = " ".join(arm.pip_options())
    assert "--platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64" in options
    assert "--implementation cp --python-version 3.14 --only-binary=:all:" in options
    assert len({arm.fingerprint(), x86.fingerprint(), unstripped.fingerprint()}) == 3


def test_a_layer_installs_only_what_its_lock_pins_with_hashes(tmp_path, dev):
    lock = tmp_path / "requirements.txt"
    lock.write_text("pyarrow==26.0.1\n")  # pinned, but no hash: a lock pip-compile did not write
    bundler = packaging.PipLayerBundler(lock, packaging.pip_platforms(dev.config), ())

    assert "--require-hashes" in bundler.pip_options()
    with pytest.raises(RuntimeError, match=r"(?s)pip could not build the layer.*[Hh]ashes are required"):
        bundler.try_bundle(str(tmp_path / "out"))


def test_a_failing_pip_fails_the_bundling_loudly(tmp_path, dev):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("this is not a requirement!!\n")
    bundler = packaging.PipLayerBundler(requirements, packaging.pip_platforms(dev.config), ())

    with pytest.raises(RuntimeError, match=r"pip could not build the layer from .*requirements.txt \(exit [1-9]"):
        bundler.try_bundle(str(tmp_path / "out"))


def test_the_pseudonym_key_is_generated_by_the_stack_kept_and_exported_for_the_tools(dev, template):
    """One secret per stage (the analysts' pseudonyms and the erasures' audit records), whichever the access: its
    value is generated, never in the template; never rotated (every pseudonym would change)."""
    key_id = dev.logical_id("Etl", "PseudonymKey")
    secret = template["Resources"][key_id]

    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert secret["Properties"]["GenerateSecretString"] == {
        "ExcludePunctuation": True, "IncludeSpace": False, "PasswordLength": 64,
    }
    assert "SecretString" not in secret["Properties"]
    assert not resources(template, "AWS::SecretsManager::RotationSchedule")
    assert template["Outputs"][outputs.PSEUDONYM_KEY_ARN]["Value"] == ref(key_id)
    assert template["Outputs"][outputs.PSEUDONYM_KEY_ARN]["Export"] == {"Name": "TelegramLake-dev-Etl-PseudonymKeyArn"}


def test_on_full_access_the_etl_neither_reads_the_key_nor_writes_a_pseudonymized_table(dev, template):
    variables = template["Resources"][dev.logical_id("Etl", "Etl")]["Properties"]["Environment"]["Variables"]
    statements = json.dumps(policy_statements(template, dev.logical_id("Etl", "EtlRole")))

    assert not {"PSEUDONYM_KEY_ARN", "PSEUDONYMIZED_TEXT"} & variables.keys()
    assert "secretsmanager" not in statements and "telegram_pseudonymized" not in statements


def test_on_a_pseudonymized_stage_the_etl_reads_the_key_and_replaces_the_pseudonymized_days_only(
    dev, pseudonymized
):
    """Beside what it does on full access: reading this one secret, and putting or deleting the pseudonymized files
    (one statement with the day's files: IAM merges grants of the same actions)."""
    template = pseudonymized.template("Etl")
    key = ref(pseudonymized.logical_id("Etl", "PseudonymKey"))
    enriched = arn(pseudonymized.logical_id("Etl", "EnrichedBucket"))
    function = template["Resources"][pseudonymized.logical_id("Etl", "Etl")]["Properties"]
    replacing = ["s3:DeleteObject", "s3:PutObject"]
    full_access = [
        statement for statement in policy_statements(dev.template("Etl"), dev.logical_id("Etl", "EtlRole"))
        if sorted(statement["Action"]) != replacing
    ]

    assert function["Environment"]["Variables"]["PSEUDONYM_KEY_ARN"] == key
    assert function["Environment"]["Variables"]["PSEUDONYMIZED_TEXT"] == "drop"
    assert normalized(policy_statements(template, pseudonymized.logical_id("Etl", "EtlRole"))) == normalized([
        *full_access,
        {
            "Effect": "Allow",
            "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
            "Resource": key,
        },
        {
            "Effect": "Allow",
            "Action": replacing,
            "Resource": [
                {"Fn::Join": ["", [enriched, "/telegram/*"]]},
                {"Fn::Join": ["", [enriched, "/telegram_pseudonymized/*"]]},
            ],
        },
    ])


def test_compacted_days_of_both_tables_expire_and_old_versions_go_as_configured(dev, pseudonymized):
    kept = dev.template("Etl")["Resources"][dev.logical_id("Etl", "EnrichedBucket")]["Properties"]
    expiring = pseudonymized.template("Etl")["Resources"][pseudonymized.logical_id("Etl", "EnrichedBucket")]["Properties"]
    rules = {rule["Id"]: rule for rule in expiring["LifecycleConfiguration"]["Rules"]}

    assert not [rule for rule in kept["LifecycleConfiguration"]["Rules"] if rule.get("Prefix") in ("telegram/",)]
    assert rules["ExpireCompactedDays"] == {
        "Id": "ExpireCompactedDays", "Status": "Enabled", "Prefix": "telegram/", "ExpirationInDays": 400,
    }
    assert rules["ExpirePseudonymizedDays"] == {
        "Id": "ExpirePseudonymizedDays", "Status": "Enabled", "Prefix": "telegram_pseudonymized/",
        "ExpirationInDays": 400,
    }
    assert rules["ExpireOldVersions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 3}
    raw = pseudonymized.template("Ingestion")["Resources"][pseudonymized.logical_id("Ingestion", "RawBucket")]
    raw_rules = {rule["Id"]: rule for rule in raw["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert raw_rules["ExpireOldVersions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 3}

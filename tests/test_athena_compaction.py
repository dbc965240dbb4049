"""The Athena compaction engine's infrastructure (Presentation stack, `etl_engine: athena`): the state machine's
data flow between the plan and publish steps and Athena, its retries and dead letters, its schedule and alarms,
and the exact permissions of its roles. A stage on the Lambda engine has none of it."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timezone
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from analytics import athena_compaction_templates
from lambdas.etl import athena_engine
from lambdas.etl.day import SCHEDULED_TIME_KEY
from lambdas.etl.handler import EtlSettings
from stacks import outputs
from stacks.config import RAW_TABLE
from tests.cdk_support import arn, normalized, policy_statements, ref, resources, stage_fixture, the_resource
from tests.test_presentation_stack import account_arn, allow, bucket_arn, enriched_bucket, joined, raw_bucket

dev = stage_fixture("dev")  # cdk.json's dev compacts on Athena
prod = stage_fixture("prod")  # ... and prod with the Lambda

# Step Functions' limit on a state's input or output (and so on a Lambda step's payload).
STATE_DATA_LIMIT = 256 * 1024
VIA_ATHENA = {"ForAnyValue:StringEquals": {"aws:CalledVia": ["athena.amazonaws.com"]}}


@pytest.fixture(scope="module")
def template(dev):
    return dev.template("Presentation")


def logical_id(dev, *path: str) -> str:
    return dev.logical_id("Presentation", "AthenaCompaction", *path)


def failed_runs_arn(config) -> dict:
    return {"Fn::ImportValue": f"{config.stack_name('Etl')}-{outputs.FAILED_RUNS_QUEUE_ARN}"}


@pytest.fixture(scope="module")
def definition(dev, template) -> dict[str, Any]:
    """The state machine's definition as JSON: a value that is one CloudFormation intrinsic comes back as that
    intrinsic; one embedded in text as `${Name}` (`${AWS::Partition}`, `${Logical.Arn}`, `${?}` for others)."""
    machine = template["Resources"][logical_id(dev, "StateMachine")]["Properties"]
    tokens: list[dict] = []
    text = ""
    for part in machine["DefinitionString"]["Fn::Join"][1]:
        if isinstance(part, str):
            text += part
        else:
            tokens.append(part)
            text += f"@@{len(tokens) - 1}@@"

    def token_text(token: dict) -> str:
        if "Ref" in token:
            return "${%s}" % token["Ref"]
        if "Fn::GetAtt" in token:
            return "${%s}" % ".".join(token["Fn::GetAtt"])
        return "${?}"

    def restore(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: restore(value) for key, value in node.items()}
        if isinstance(node, list):
            return [restore(value) for value in node]
        if isinstance(node, str):
            whole = re.fullmatch(r"@@(\d+)@@", node)
            if whole:
                return tokens[int(whole[1])]
            return re.sub(r"@@(\d+)@@", lambda found: token_text(tokens[int(found[1])]), node)
        return node

    return restore(json.loads(text))


# A small interpreter of the JSONPath features the definition uses: enough to follow its data from state to state.


def at(path: str, data: Any, context: dict) -> Any:
    """`$`, `$.a.b`, `$[1].a` in the state's data; `$$.Execution.Id` in the context object."""
    node, rest = (context, path[2:]) if path.startswith("$$") else (data, path[1:])
    steps = re.findall(r"\.(\w+)|\[(\d+)\]", rest)
    assert "".join(f".{name}" if name else f"[{index}]" for name, index in steps) == rest, path
    for name, index in steps:
        node = node[name] if name else node[int(index)]
    return node


def filled(template: Any, data: Any, context: dict) -> Any:
    """Parameters, ResultSelector or a payload with every `"key.$": path` replaced by the value at the path."""
    if isinstance(template, dict):
        return {
            key.removesuffix(".$"): at(value, data, context) if key.endswith(".$") else filled(value, data, context)
            for key, value in template.items()
        }
    if isinstance(template, list):
        return [filled(value, data, context) for value in template]
    return template


def output(state: dict, state_input: Any, result: Any, context: dict) -> Any:
    """ResultSelector, then ResultPath (`$`, `$.key` or null), then OutputPath, as Step Functions applies them."""
    if "ResultSelector" in state:
        result = filled(state["ResultSelector"], result, context)
    result_path = state.get("ResultPath", "$")
    if result_path is None:
        combined = state_input
    elif result_path == "$":
        combined = result
    else:
        combined = {**state_input, result_path.removeprefix("$."): result}
    return at(state.get("OutputPath", "$"), combined, context)


def steps_settings(config) -> EtlSettings:
    return EtlSettings("raw", "enriched", config.timezone, 4, date.fromisoformat(config.analytics_start_date))


def test_a_stage_on_the_lambda_engine_has_no_state_machine_nor_its_function_schedule_or_alarms(prod):
    template = prod.template("Presentation")

    assert not prod.config.etl_engine_is_athena
    for resource_type in (
        "AWS::StepFunctions::StateMachine", "AWS::Lambda::Function", "AWS::Scheduler::Schedule",
        "AWS::CloudWatch::Alarm", "AWS::IAM::Role",
    ):
        assert not resources(template, resource_type), resource_type
    assert outputs.COMPACTION_STATE_MACHINE_ARN not in template["Outputs"]


def test_steps_function_runs_the_athena_engine_from_the_etl_package_with_room_to_merge_a_day(dev, template):
    function = template["Resources"][logical_id(dev, "Steps")]["Properties"]

    assert function["Handler"] == "lambdas.etl.athena_engine.handler"
    assert (function["Runtime"], function["Architectures"]) == ("python3.14", ["arm64"])
    assert (function["MemorySize"], function["Timeout"]) == (2048, 900)
    assert function["EphemeralStorage"] == {"Size": 10240}
    assert function["TracingConfig"] == {"Mode": "Active"}
    # Both layers are built in this stack: `check-layers` measures a function with the layers its stack builds.
    layers = [layer["Ref"] for layer in function["Layers"]]
    assert sorted(layers) == sorted([logical_id(dev, "RuntimeLayer"), logical_id(dev, "PyarrowLayer")])
    assert all(template["Resources"][layer]["Type"] == "AWS::Lambda::LayerVersion" for layer in layers)
    log_group = template["Resources"][logical_id(dev, "StepsLogs")]["Properties"]
    assert log_group["RetentionInDays"] == dev.config.log_retention_days


def test_steps_environment_is_the_etls_plus_nothing(dev, template):
    """The same variables as the ETL function: EtlSettings reads them in both engines."""
    function = template["Resources"][logical_id(dev, "Steps")]["Properties"]

    assert function["Environment"]["Variables"] == {
        "RAW_BUCKET": raw_bucket(dev.config),
        "ENRICHED_BUCKET": enriched_bucket(dev.config),
        "TIMEZONE": dev.config.timezone,
        "READ_CONCURRENCY": str(dev.config.etl_read_concurrency),
        "ANALYTICS_START_DATE": dev.config.analytics_start_date,
        "POWERTOOLS_METRICS_NAMESPACE": dev.config.metrics_namespace,
    }


def test_state_machine_is_standard_traced_logged_with_the_stage_retention_and_bounded_in_time(dev, template):
    machine = template["Resources"][logical_id(dev, "StateMachine")]["Properties"]
    log_group = logical_id(dev, "Logs")

    assert machine["StateMachineType"] == "STANDARD"
    assert machine["TracingConfiguration"] == {"Enabled": True}
    assert machine["LoggingConfiguration"] == {
        "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": arn(log_group)}}],
        "IncludeExecutionData": True,
        "Level": "ALL",
    }
    assert template["Resources"][log_group]["Properties"]["RetentionInDays"] == dev.config.log_retention_days


def test_state_machine_logs_under_the_vended_logs_prefix_one_group_per_stage(dev, template):
    """Outside `/aws/vendedlogs/`, log delivery grows the account's CloudWatch Logs resource policy, whose size
    limit busy accounts reach (the deploy then fails)."""
    group = template["Resources"][logical_id(dev, "Logs")]["Properties"]

    assert group["LogGroupName"] == f"/aws/vendedlogs/states/TelegramLake-{dev.config.stage}-Compaction"


def test_each_attempt_plans_anew_and_is_retried_twice_then_dead_lettered_and_failed(definition):
    """The retry is on the whole attempt: a retried UNLOAD alone would find its staging folder non-empty."""
    compact = definition["States"]["Compact"]

    assert definition["StartAt"] == "Compact"
    assert definition["TimeoutSeconds"] == 6 * 3600
    assert compact["Type"] == "Parallel" and len(compact["Branches"]) == 1
    assert compact["Branches"][0]["StartAt"] == "Plan"
    assert compact["Retry"] == [
        {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 60, "MaxAttempts": 2, "BackoffRate": 2}
    ]
    assert compact["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$", "Next": "SendToFailedRuns"}]
    assert definition["States"]["SendToFailedRuns"]["Next"] == "Failed"
    assert definition["States"]["Failed"]["Type"] == "Fail"


def test_the_lambda_steps_are_retried_with_the_same_input_on_lambda_service_errors(definition):
    """Step Functions resends a Lambda step's input when the Lambda service fails the call, even after the function
    ran: a repeated publish must change nothing (tests/test_athena_engine.py proves that it returns the first's
    summary, never deletes the day, and publishes no metric twice)."""
    branch = definition["States"]["Compact"]["Branches"][0]["States"]

    for step in ("Plan", "Publish"):
        assert branch[step]["Retry"] == [
            {
                "ErrorEquals": [
                    "Lambda.ClientExecutionTimeoutException", "Lambda.ServiceException", "Lambda.AWSLambdaException",
                    "Lambda.SdkClientException",
                ],
                "IntervalSeconds": 2, "MaxAttempts": 6, "BackoffRate": 2,
            }
        ]


def test_queries_run_on_athena_with_the_sync_integration_in_the_stages_workgroup_and_database(dev, definition):
    branch = definition["States"]["Compact"]["Branches"][0]["States"]
    queries = branch["Queries"]

    assert (branch["Plan"]["Next"], queries["Next"], branch["Publish"].get("End")) == ("Queries", "Publish", True)
    assert queries["Type"] == "Parallel"
    assert [b["StartAt"] for b in queries["Branches"]] == ["Unload", "Report"]
    for query in (b["States"][b["StartAt"]] for b in queries["Branches"]):
        assert query["Resource"] == "arn:${AWS::Partition}:states:::athena:startQueryExecution.sync"
        assert query["Parameters"]["WorkGroup"] == ref(dev.logical_id("Presentation", "Workgroup"))
        assert query["Parameters"]["QueryExecutionContext"] == {
            "Database": ref(dev.logical_id("Presentation", "Database"))
        }
        assert "Retry" not in query and "Catch" not in query  # the attempt retries, with a new staging folder


def test_data_flows_from_the_event_through_plan_athena_and_publish_to_the_days_summary(dev, definition):
    """Follow a backfill event through the definition with the real plan step: each Athena query receives the
    plan's statement, publish receives the plan and the report's query id, and the run ends with the summary."""
    branch = definition["States"]["Compact"]["Branches"][0]["States"]
    event = {"date": "2026-11-20"}
    context = {"Execution": {"Input": event, "Id": "arn:aws:states:us-east-1:123456789012:execution:m:run"}}

    plan_payload = filled(branch["Plan"]["Parameters"]["Payload"], event, context)
    assert plan_payload == {
        "step": "plan", "event": event, "templates": athena_compaction_templates(dev.config.glue_database)
    }
    plan = athena_engine.plan(
        plan_payload["event"], plan_payload["templates"], steps_settings(dev.config),
        now=datetime(2026, 11, 22, 12, tzinfo=timezone.utc),
    )
    state = output(branch["Plan"], event, {"Payload": plan, "StatusCode": 200}, context)

    started = {}
    query_results = []
    for query_branch in branch["Queries"]["Branches"]:
        name = query_branch["StartAt"]
        query = query_branch["States"][name]
        started[name] = filled(query["Parameters"], state, context)["QueryString"]
        athena_answer = {"QueryExecution": {"QueryExecutionId": f"id-{name}", "Status": {"State": "SUCCEEDED"}}}
        query_results.append(output(query, state, athena_answer, context))
    assert started == {"Unload": plan["unload"], "Report": plan["report"]}
    assert started["Unload"].startswith("UNLOAD (") and plan["staging_url"] in started["Unload"]
    assert "{{" not in started["Unload"] + started["Report"]
    state = output(branch["Queries"], state, query_results, context)

    publish = branch["Publish"]
    assert filled(publish["Parameters"]["Payload"], state, context) == {
        "step": "publish", "plan": plan, "report_execution_id": "id-Report"
    }
    summary = {"day": "2026-11-20", "rows_written": 3}
    branch_output = output(publish, state, {"Payload": summary, "StatusCode": 200}, context)
    assert output(definition["States"]["Compact"], event, [branch_output], context) == summary


def test_a_run_that_fails_after_its_retries_sends_its_event_and_error_to_the_dead_letter_queue_then_fails(
    dev, definition
):
    """The message holds what re-running the day needs; the execution fails with the attempt's own error."""
    states = definition["States"]
    event = {SCHEDULED_TIME_KEY: "2026-11-21T04:00:00Z"}
    context = {"Execution": {"Input": event, "Id": "arn:aws:states:us-east-1:123456789012:execution:m:run"}}
    error = {"Error": "Athena.QueryFailed", "Cause": "HIVE_BAD_DATA: ..."}

    state = output(states["Compact"]["Catch"][0], event, error, context)
    send = states["SendToFailedRuns"]
    assert send["Resource"] == "arn:${AWS::Partition}:states:::sqs:sendMessage"
    assert filled(send["Parameters"]["MessageBody"], state, context) == {
        "event": event, "error": error, "execution": context["Execution"]["Id"]
    }
    state = output(send, state, {"MessageId": "m-1"}, context)
    failed = states["Failed"]
    assert (at(failed["ErrorPath"], state, context), at(failed["CausePath"], state, context)) == (
        "Athena.QueryFailed", "HIVE_BAD_DATA: ...",
    )


def test_plan_and_publish_payloads_fit_step_functions_state_size_limit(dev, definition):
    """The statements travel in the execution's data: the plan (with its SQL) must fit a state's 256 KiB."""
    branch = definition["States"]["Compact"]["Branches"][0]["States"]
    plan = athena_engine.plan(
        {"date": "2026-11-20"}, athena_compaction_templates(dev.config.glue_database), steps_settings(dev.config),
        now=datetime(2026, 11, 22, tzinfo=timezone.utc),
    )

    for data in (branch["Plan"]["Parameters"]["Payload"], {"plan": plan, "queries": {"report_execution_id": "x"}}):
        assert len(json.dumps(data).encode()) < STATE_DATA_LIMIT / 2  # with room for the templates to grow


@pytest.mark.parametrize("statement", ["rows", "report"])
def test_the_statements_read_the_raw_table_alone_which_is_all_the_role_may_read_in_glue(dev, statement):
    """The state machine's Glue and S3 rights cover the raw table only: a statement reading another table would
    fail on Athena with AccessDenied. This catches it before a deploy."""
    sql = athena_compaction_templates(dev.config.glue_database)[statement].replace("{{day}}", "2026-11-20")
    tree = sqlglot.parse_one(sql, read="athena")
    common_tables = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}

    read = {(table.db, table.name) for table in tree.find_all(exp.Table) if table.db or table.name not in common_tables}
    assert read == {(dev.config.glue_database, RAW_TABLE)}


def test_schedule_starts_the_state_machine_as_the_etls_schedule_starts_the_function(dev, template):
    """Same local time and zone, same event (the scheduled time), same retries, same dead-letter queue."""
    schedule = the_resource(template, "AWS::Scheduler::Schedule")["Properties"]
    target = schedule["Target"]

    assert schedule["ScheduleExpression"] == "cron(0 1 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == dev.config.timezone
    assert target["Arn"] == ref(logical_id(dev, "StateMachine"))
    assert json.loads(target["Input"]) == {SCHEDULED_TIME_KEY: "<aws.scheduler.scheduled-time>"}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 6 * 3600}
    assert target["DeadLetterConfig"] == {"Arn": failed_runs_arn(dev.config)}
    assert target["RoleArn"] == arn(logical_id(dev, "ScheduleRole"))


def test_schedule_role_may_only_start_the_state_machine_and_feed_the_dead_letter_queue(dev, template):
    role_id = logical_id(dev, "ScheduleRole")
    trust = template["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]

    assert normalized(policy_statements(template, role_id)) == normalized(
        [
            allow(["states:StartExecution"], ref(logical_id(dev, "StateMachine"))),
            allow(["sqs:SendMessage"], failed_runs_arn(dev.config)),
        ]
    )
    assert normalized(trust) == normalized(
        [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"Service": "scheduler.amazonaws.com"},
                "Condition": {
                    "StringEquals": {
                        "aws:SourceAccount": ref("AWS::AccountId"),
                        "aws:SourceArn": account_arn("scheduler", "schedule-group/default"),
                    }
                },
            }
        ]
    )


def test_state_machine_role_runs_queries_in_the_workgroup_and_reaches_s3_only_through_athena(dev, template):
    """Start, follow and stop queries in the stage's workgroup; read the raw table's definition; through Athena
    only (`aws:CalledVia`): list and read raw `telegram/`, write `athena-staging/`, write the query results;
    invoke its steps function; dead-letter a run. The CDK's logging and tracing statements (no resource-level
    permissions) complete it."""
    role_id = logical_id(dev, "StateMachine", "Role")
    raw, enriched = bucket_arn(raw_bucket(dev.config)), bucket_arn(enriched_bucket(dev.config))
    results = arn(dev.logical_id("Presentation", "ResultsBucket"))
    database = ref(dev.logical_id("Presentation", "Database"))
    steps = arn(logical_id(dev, "Steps"))
    workgroup = account_arn("athena", "workgroup/", ref(dev.logical_id("Presentation", "Workgroup")))
    trust = template["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]

    assert normalized(policy_statements(template, role_id)) == normalized(
        [
            allow(["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:StopQueryExecution"], workgroup),
            allow(
                ["glue:GetDatabase", "glue:GetTable", "glue:GetPartition", "glue:GetPartitions"],
                [
                    account_arn("glue", "catalog"),
                    account_arn("glue", "database/", database),
                    account_arn("glue", "table/", database, "/telegram_raw"),
                ],
            ),
            allow(["s3:GetBucketLocation"], [raw, enriched], VIA_ATHENA),
            allow(["s3:ListBucket"], raw, {"StringLike": {"s3:prefix": ["telegram/*"]}, **VIA_ATHENA}),
            allow(["s3:ListBucket"], enriched, {"StringLike": {"s3:prefix": ["athena-staging/*"]}, **VIA_ATHENA}),
            allow(["s3:GetObject"], bucket_arn(raw_bucket(dev.config), "/telegram/*"), VIA_ATHENA),
            allow(
                ["s3:PutObject", "s3:AbortMultipartUpload"],
                bucket_arn(enriched_bucket(dev.config), "/athena-staging/*"),
                VIA_ATHENA,
            ),
            allow(["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"], results, VIA_ATHENA),
            allow(
                ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                joined(results, "/*"),
                VIA_ATHENA,
            ),
            allow(["lambda:InvokeFunction"], [steps, joined(steps, ":*")]),
            allow(["sqs:SendMessage"], failed_runs_arn(dev.config)),
            allow(
                [
                    "logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups",
                    "logs:DescribeResourcePolicies", "logs:GetLogDelivery", "logs:ListLogDeliveries",
                    "logs:PutResourcePolicy", "logs:UpdateLogDelivery", "xray:GetSamplingRules",
                    "xray:GetSamplingTargets", "xray:PutTelemetryRecords", "xray:PutTraceSegments",
                ],
                "*",
            ),
        ]
    )
    # Only Step Functions, for a state machine of this account and region (confused deputy).
    assert normalized(trust) == normalized(
        [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"Service": "states.amazonaws.com"},
                "Condition": {
                    "ArnLike": {"aws:SourceArn": account_arn("states", "stateMachine:*")},
                    "StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")},
                },
            }
        ]
    )


def test_steps_role_handles_staged_files_replaces_the_day_and_reads_query_results_only(dev, template):
    """Publish lists, reads and removes staged files and leaves its run's summary there; puts or deletes the day's
    file and rejects report; reads the report query's results. It never reads raw data, never lists `telegram/`,
    never touches a version."""
    role_id = logical_id(dev, "StepsRole")
    enriched = enriched_bucket(dev.config)
    results = arn(dev.logical_id("Presentation", "ResultsBucket"))

    assert normalized(policy_statements(template, role_id)) == normalized(
        [
            allow(["s3:ListBucket"], bucket_arn(enriched), {"StringLike": {"s3:prefix": ["athena-staging/*"]}}),
            allow(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], bucket_arn(enriched, "/athena-staging/*")),
            allow(["s3:PutObject", "s3:DeleteObject"], bucket_arn(enriched, "/telegram/*")),
            allow(
                ["athena:GetQueryResults"],
                account_arn("athena", "workgroup/", ref(dev.logical_id("Presentation", "Workgroup"))),
            ),
            allow(["s3:GetObject"], joined(results, "/*")),
            allow(["logs:CreateLogStream", "logs:PutLogEvents"], arn(logical_id(dev, "StepsLogs"))),
            allow(["xray:PutTelemetryRecords", "xray:PutTraceSegments"], "*"),
        ]
    )


def test_alarms_on_failed_and_timed_out_runs_notify_the_stages_topic(dev, template):
    alarms = {
        alarm["Properties"]["AlarmName"]: alarm["Properties"]
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values()
    }
    topic = {"Fn::ImportValue": f"{dev.config.stack_name('Ingestion')}-{outputs.ALARM_TOPIC_ARN}"}

    assert {name: alarm["MetricName"] for name, alarm in alarms.items()} == {
        "TelegramLake-dev-CompactionRunsFailed": "ExecutionsFailed",
        "TelegramLake-dev-CompactionRunsTimedOut": "ExecutionsTimedOut",
    }
    for alarm in alarms.values():
        assert alarm["Namespace"] == "AWS/States"
        assert alarm["Dimensions"] == [{"Name": "StateMachineArn", "Value": ref(logical_id(dev, "StateMachine"))}]
        assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Sum", 300, 1)
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        assert (alarm["AlarmActions"], alarm["OKActions"]) == ([topic], [topic])


def test_the_state_machine_arn_is_an_output_for_the_tools(dev, template):
    declared = template["Outputs"][outputs.COMPACTION_STATE_MACHINE_ARN]

    assert declared["Value"] == ref(logical_id(dev, "StateMachine"))
    assert "Export" not in declared  # read by `python -m tools etl run`, imported by no stack

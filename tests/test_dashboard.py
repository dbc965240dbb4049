"""The stage's CloudWatch dashboard (in the Etl stack): every alarm of the stage, the webhook, the ingest's
outcomes, the raw delivery stream and the ETL, read by the names (and the API's id) the stacks really use."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_cloudwatch as cloudwatch

import lambdas.etl.metrics as etl_metrics
import lambdas.ingest.metrics as ingest_metrics
from stacks import outputs
from stacks.athena_compaction import RUN_TIMEOUT
from stacks.dashboard import StageDashboard, dashboard_name
from tests.cdk_support import PARTS, build, resources, stage_fixture, the_resource
from tests.stage_settings import stages_with
from stacks.config import load_stage

dev = stage_fixture("dev")
prod = stage_fixture("prod")
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012"}


def body(stage_app) -> dict[str, Any]:
    """The dashboard's JSON body, with the pseudo parameters filled in and each other reference named."""
    joined = the_resource(stage_app.template("Etl"), "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"]
    parts = joined["Fn::Join"][1] if isinstance(joined, dict) else [joined]
    return json.loads("".join(map(reference, parts)))


def reference(part: str | dict[str, Any]) -> str:
    """A piece of the body: text as it is, a pseudo parameter's example value, `ref:Id`, `getatt:Id.Attr` or
    `import:ExportName`."""
    if isinstance(part, str):
        return part
    if "Ref" in part:
        return PSEUDO.get(part["Ref"], f"ref:{part['Ref']}")
    if "Fn::ImportValue" in part:
        return f"import:{part['Fn::ImportValue']}"
    return "getatt:" + ".".join(part["Fn::GetAtt"])


def widgets(stage_app, kind: str) -> list[dict[str, Any]]:
    return [widget for widget in body(stage_app)["widgets"] if widget["type"] == kind]


def graph(stage_app, title: str) -> list[list[Any]]:
    [found] = [widget for widget in widgets(stage_app, "metric") if widget["properties"]["title"] == title]
    return found["properties"]["metrics"]


def alarm_names(stage_app) -> list[str]:
    return sorted(
        alarm["Properties"]["AlarmName"]
        for part in PARTS
        for alarm in resources(stage_app.template(part), "AWS::CloudWatch::Alarm").values()
    )


@pytest.mark.parametrize("stage_app", ["dev", "prod"])
def test_the_alarm_widget_shows_every_alarm_of_the_stage_by_arn(stage_app, request):
    stage_app = request.getfixturevalue(stage_app)
    [widget] = widgets(stage_app, "alarm")
    names = alarm_names(stage_app)

    assert len(names) >= 7
    arn = "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:"
    assert widget["properties"]["alarms"] == [f"{arn}{name}" for name in names]
    assert widget["width"] == 24


def test_prod_shows_its_silence_alarm_which_dev_does_not_have(dev, prod):
    assert "TelegramLake-prod-NoUpdatesStored" in alarm_names(prod)
    assert not [name for name in alarm_names(dev) if name.endswith("NoUpdatesStored")]


def test_an_alarm_added_later_to_any_stack_of_the_stage_appears_and_another_stages_does_not():
    config = load_stage(stages_with("dev"), "dev")
    app, stacks = build("dev")
    presentation = stacks[-1]
    metric = cloudwatch.Metric(namespace="Test", metric_name="Late")
    for construct_id, name in (("Late", f"TelegramLake-{config.stage}-Late"), ("Other", "TelegramLake-prod-Other")):
        metric.create_alarm(presentation, construct_id, alarm_name=name, threshold=1, evaluation_periods=1)

    template = app.synth().get_stack_by_name(stacks[1].stack_name).template
    dashboard = json.dumps(the_resource(template, "AWS::CloudWatch::Dashboard"))
    assert ":alarm:TelegramLake-dev-Late" in dashboard
    assert "TelegramLake-prod-Other" not in dashboard


def test_webhook_graphs_read_the_http_api_by_its_exported_id_and_stage(dev):
    """An HTTP API's metrics are dimensioned by its id: the one value the dashboard imports from Ingestion."""
    stage = the_resource(dev.template("Ingestion"), "AWS::ApiGatewayV2::Stage")["Properties"]["StageName"]
    export = dev.template("Ingestion")["Outputs"][outputs.WEBHOOK_API_ID]["Export"]["Name"]
    metrics = [
        *graph(dev, "Webhook requests per hour"), *graph(dev, "Webhook 4xx and 5xx per hour"),
        *graph(dev, "Webhook latency (ms)"),
    ]
    api_metrics = [metric for metric in metrics if metric[0] == "AWS/ApiGateway"]

    assert {tuple(metric[:2]) for metric in api_metrics} == {
        ("AWS/ApiGateway", name) for name in ("Count", "4xx", "5xx", "Latency", "IntegrationLatency")
    }
    assert all(metric[2:6] == ["ApiId", f"import:{export}", "Stage", stage] for metric in api_metrics)
    # Beside the 4xx: the requests refused for their token, counted from the access log (RejectedTokens).
    [refused] = [metric for metric in metrics if metric[0] != "AWS/ApiGateway"]
    assert refused[:2] == [dev.config.metrics_namespace, "RefusedTokens"]


def test_the_raw_delivery_graphs_read_the_stream_by_its_name_against_the_alarms_limit(dev):
    stream = the_resource(dev.template("Ingestion"), "AWS::KinesisFirehose::DeliveryStream")["Properties"]
    metrics = [
        *graph(dev, "Raw delivery: records per hour"), *graph(dev, "Raw delivery: oldest undelivered record (s)"),
        *graph(dev, "Raw delivery: S3 write success (1 = all)"),
    ]
    [freshness] = [
        widget["properties"] for widget in widgets(dev, "metric")
        if widget["properties"]["title"] == "Raw delivery: oldest undelivered record (s)"
    ]
    [late] = [
        alarm["Properties"] for alarm in resources(dev.template("Ingestion"), "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["AlarmName"] == "TelegramLake-dev-RawDeliveryLate"
    ]

    assert [(metric[1], metric[4]["stat"]) for metric in metrics] == [
        ("IncomingRecords", "Sum"), ("DeliveryToS3.Records", "Sum"), ("DeliveryToS3.DataFreshness", "Maximum"),
        ("DeliveryToS3.Success", "Minimum"),
    ]
    assert all(metric[0] == "AWS/Firehose" and metric[2:4] == ["DeliveryStreamName", stream["DeliveryStreamName"]]
               for metric in metrics)
    assert freshness["annotations"]["horizontal"][0]["value"] == late["Threshold"]


def test_every_ingest_metric_is_charted_in_the_stage_namespace(dev):
    metrics = [*graph(dev, "Ingest outcomes per hour"), *graph(dev, "Ingest signals per hour")]
    emitted = {
        value for name, value in vars(ingest_metrics).items()
        if name.isupper() and isinstance(value, str) and name not in ("SERVICE", "DEFAULT_NAMESPACE")
    }
    assert {metric[1] for metric in metrics} == emitted
    assert all(metric[0] == dev.config.metrics_namespace and metric[2:4] == ["service", "ingest"] for metric in metrics)
    assert all(metric[4]["stat"] == "Sum" for metric in metrics)


def test_the_ingest_functions_concurrency_and_throttles_are_charted_by_its_name(dev):
    """Against the connections Telegram may open at once: a new account's concurrency quota can be lower."""
    [widget] = [
        widget["properties"] for widget in widgets(dev, "metric")
        if widget["properties"]["title"] == "Ingest concurrency and throttles per hour"
    ]
    function = dev.template("Ingestion")["Resources"][dev.logical_id("Ingestion", "Ingest")]["Properties"]["FunctionName"]

    assert function == "TelegramLake-dev-Ingest"
    assert [metric[:4] + [metric[4]["stat"]] for metric in widget["metrics"]] == [
        ["AWS/Lambda", "ConcurrentExecutions", "FunctionName", function, "Maximum"],
        ["AWS/Lambda", "Throttles", "FunctionName", function, "Sum"],
    ]
    assert widget["metrics"][1][4]["yAxis"] == "right"
    assert widget["annotations"]["horizontal"] == [
        {"value": dev.config.webhook_max_connections, "label": "Telegram's max_connections", "yAxis": "left"}
    ]


def test_the_etl_graphs_chart_its_summary_metrics_and_its_dead_letter_queue(dev, prod):
    for stage_app in (dev, prod):
        [queue] = resources(stage_app.template("Etl"), "AWS::SQS::Queue")
        summary = [*graph(stage_app, "Rows written per day"), *graph(stage_app, "Left out per day")]
        assert {metric[1] for metric in summary} == set(etl_metrics.COUNTS.values())
        namespace = stage_app.config.metrics_namespace
        assert all(metric[0] == namespace and metric[2:4] == ["service", "etl"] for metric in summary)
        assert all(metric[4]["period"] == 86400 for metric in summary)
        [waiting] = graph(stage_app, "Failed runs in the dead-letter queue")
        assert waiting[:2] == ["AWS/SQS", "ApproximateNumberOfMessagesVisible"]
        assert waiting[3] == f"getatt:{queue}.QueueName"


def runs_and_timeout(stage_app) -> tuple[list[list[Any]], float]:
    [duration] = [
        widget["properties"] for widget in widgets(stage_app, "metric")
        if widget["properties"]["title"] == "ETL duration (ms)"
    ]
    [timeout] = duration["annotations"]["horizontal"]
    return graph(stage_app, "ETL runs and errors per day") + duration["metrics"], timeout["value"]


def test_on_the_lambda_engine_the_etl_runs_are_the_functions(prod):
    assert not prod.config.etl_engine_is_athena
    [function] = [key for key in resources(prod.template("Etl"), "AWS::Lambda::Function") if key.startswith("Etl")]
    runs, timeout = runs_and_timeout(prod)
    assert {metric[1] for metric in runs} == {"Invocations", "Errors", "Duration"}
    assert all(metric[:4] == ["AWS/Lambda", metric[1], "FunctionName", f"ref:{function}"] for metric in runs)
    assert timeout == prod.config.etl_timeout_minutes * 60_000


def test_on_the_athena_engine_the_etl_runs_are_the_state_machines_executions(dev):
    """Charted by the name the Presentation stack gives its state machine: no reference to that stack."""
    assert dev.config.etl_engine_is_athena
    [machine] = resources(dev.template("Presentation"), "AWS::StepFunctions::StateMachine").values()
    name = machine["Properties"]["StateMachineName"]
    arn = f"arn:aws:states:eu-west-1:123456789012:stateMachine:{name}"
    runs, timeout = runs_and_timeout(dev)
    assert [metric[1] for metric in runs] == [
        "ExecutionsStarted", "ExecutionsFailed", "ExecutionsTimedOut", "ExecutionTime"
    ]
    assert all(metric[0] == "AWS/States" and metric[2:4] == ["StateMachineArn", arn] for metric in runs)
    assert timeout == RUN_TIMEOUT.to_milliseconds()
    assert name == f"TelegramLake-{dev.config.stage}-Compaction"


def test_the_etl_function_publishes_in_the_stage_namespace(dev, prod):
    for stage_app in (dev, prod):
        [function] = [
            value for key, value in resources(stage_app.template("Etl"), "AWS::Lambda::Function").items()
            if key.startswith("Etl")
        ]
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == stage_app.config.metrics_namespace


def test_the_dashboard_is_named_after_the_stage_and_its_url_is_an_output(dev, prod):
    for stage_app in (dev, prod):
        template = stage_app.template("Etl")
        name = the_resource(template, "AWS::CloudWatch::Dashboard")["Properties"]["DashboardName"]
        assert name == dashboard_name(stage_app.config) == f"TelegramLake-{stage_app.config.stage}"
        url = template["Outputs"][outputs.DASHBOARD_URL]["Value"]["Fn::Join"][1]
        assert url[-1].endswith(f"#dashboards/dashboard/{name}") and {"Ref": "AWS::Region"} in url
    assert body(dev)["start"] == "-P7D"


def test_the_dashboard_refers_to_its_own_resources_and_imports_only_the_webhooks_api_id(dev):
    template = dev.template("Etl")
    parts = the_resource(template, "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"]["Fn::Join"][1]
    references = [part for part in parts if not isinstance(part, str)]
    imported = {part["Fn::ImportValue"] for part in references if "Fn::ImportValue" in part}
    own = [part for part in references if "Fn::ImportValue" not in part]
    assert imported == {"TelegramLake-dev-Ingestion-WebhookApiId"}
    assert own and all(set(part) <= {"Ref", "Fn::GetAtt"} for part in own)
    named = {part["Ref"] if "Ref" in part else part["Fn::GetAtt"][0] for part in own}
    assert named - set(PSEUDO) <= set(template["Resources"])


def test_the_construct_builds_into_any_stack():
    """StageDashboard needs only the ETL function and queue: usable without the rest of the stage."""
    config = load_stage(stages_with("dev"), "dev")
    app = cdk.App()
    stack = cdk.Stack(app, "Standalone")
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_sqs as sqs

    function = lambda_.Function(
        stack, "Fn", runtime=lambda_.Runtime.PYTHON_3_12, handler="x.handler", code=lambda_.Code.from_inline("x=1")
    )
    StageDashboard(stack, "Dashboard", config=config, etl_function=function, failed_runs=sqs.Queue(stack, "Queue"))
    template = app.synth().get_stack_by_name("Standalone").template
    body_text = json.dumps(the_resource(template, "AWS::CloudWatch::Dashboard"))
    assert '\\"alarms\\":[]' in body_text  # no alarm in this app: an empty list, not an error

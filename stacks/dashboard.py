"""The stage's CloudWatch dashboard: is the lake healthy, on one page.

Top to bottom: every alarm of the stage and its state; the webhook (requests, 4xx/5xx, refused tokens,
latency) as API Gateway sees it; the ingest's outcomes, and its function's concurrency and throttles; the raw
delivery stream (records in and delivered, the age of the oldest undelivered one, delivery success); the daily
ETL (runs, errors, duration, rows written and what it left out per day) and its dead-letter queue. The runs are
those of the stage's engine: the ETL function's, or on `etl_engine: athena` the compaction state machine's
executions. `python -m tools status` prints the same health in a terminal.

Every metric is read by name (the ingest function's and the delivery stream's names, the stage's namespace and
the handlers' own metric names, the state machine's name), never through a reference to another stack's
resource, so the dashboard follows a replaced resource of the same name. The one exception is the webhook:
an HTTP API's metrics are dimensioned by its generated id, which the dashboard imports from the Ingestion
stack's `WebhookApiId` export, by name (replacing the API is then a two-release change, as for every export
in use).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import aws_cdk as cdk
import jsii
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from lambdas.etl import metrics as etl_metrics
from lambdas.ingest import metrics as ingest_metrics
from stacks import outputs
from stacks.alarms import alarm_name
from stacks.athena_compaction import RUN_TIMEOUT, state_machine_name
from stacks.config import PROJECT, StageConfig
from stacks.ingestion import REFUSED_TOKENS, ingest_function_name, raw_freshness_limit, raw_stream_metric
from stacks.metrics import lake_metric

FULL_WIDTH = 24
GRAPH_HEIGHT = 6
ALARMS_HEIGHT = 4
DEFAULT_INTERVAL = cdk.Duration.days(7)
# The webhook and the ingest are charted hourly (a week's graph holds 168 points), the ETL per daily run.
HOUR = cdk.Duration.hours(1)
DAY = cdk.Duration.days(1)
API_GATEWAY = "AWS/ApiGateway"
LAMBDA = "AWS/Lambda"
STATES = "AWS/States"

INGEST_SIGNALS = (
    ingest_metrics.UNKNOWN_UPDATE_TYPE, ingest_metrics.SKIPPED_FROM_GROUP, ingest_metrics.UNAUTHORIZED,
    ingest_metrics.CHAT_MIGRATED, ingest_metrics.CHAT_RECORD_FAILED,
)
ETL_LEFT_OUT = (etl_metrics.DUPLICATES_DROPPED, etl_metrics.NON_MESSAGE_UPDATES, etl_metrics.OBJECTS_REJECTED)


class EtlRuns(NamedTuple):
    """What the ETL graphs show of the stage's engine."""

    runs: cloudwatch.IMetric
    errors: list[cloudwatch.IMetric]
    duration: cloudwatch.IMetric
    timeout: cdk.Duration


def dashboard_name(config: StageConfig) -> str:
    """`TelegramLake-dev`: one dashboard per stage, in the letters, digits and dashes CloudWatch allows."""
    return f"{PROJECT}-{config.stage}"


def dashboard_url(config: StageConfig) -> str:
    """The dashboard in the CloudWatch console of the region the stack is deployed to."""
    region = cdk.Aws.REGION
    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#dashboards/dashboard/{dashboard_name(config)}"
    )


class StageDashboard(Construct):
    """One dashboard per stage, over the ETL stack's own function and queue plus the metrics the Ingestion
    stack's API and function emit, read by name."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        etl_function: lambda_.IFunction,
        failed_runs: sqs.IQueue,
    ):
        super().__init__(scope, construct_id)
        self.config = config
        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=dashboard_name(config), default_interval=DEFAULT_INTERVAL
        )
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(markdown=self._introduction(), width=FULL_WIDTH, height=2)
        )
        self.dashboard.add_widgets(StageAlarmsWidget(self, config))
        self.dashboard.add_widgets(*self._webhook())
        self.dashboard.add_widgets(*self._ingest())
        self.dashboard.add_widgets(*self._raw_delivery())
        self.dashboard.add_widgets(*self._etl(etl_function, failed_runs))

    def _introduction(self) -> str:
        config = self.config
        return (
            f"# {PROJECT} {config.stage}\n"
            f"Days in {config.timezone}; the ETL compacts the previous day at {config.etl_schedule_local_time}. "
            f"`python -m tools status --stage {config.stage}` prints this health in a terminal; README, "
            "*Operating a stage*, says what each alarm means and what to do."
        )

    def _webhook(self) -> list[cloudwatch.IWidget]:
        """What Telegram sees: every request, the refused (4xx, and of them the refused tokens) and failed (5xx)
        ones, and how long answers take."""
        # Imported by its export's name (references.export_name of the Ingestion stack, which the Etl stack
        # imports from already): the construct needs no other stack to be built.
        api_id = cdk.Fn.import_value(f"{self.config.stack_name('Ingestion')}-{outputs.WEBHOOK_API_ID}")

        def api_metric(name: str, statistic: str, label: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=API_GATEWAY,
                metric_name=name,
                dimensions_map={"ApiId": api_id, "Stage": self.config.stage},
                period=HOUR,
                statistic=statistic,
                label=label,
            )

        refused_tokens = cloudwatch.Metric(
            namespace=self.config.metrics_namespace, metric_name=REFUSED_TOKENS, period=HOUR, statistic="Sum",
            label="refused tokens (401, 403)",
        )
        return [
            _graph("Webhook requests per hour", [api_metric("Count", "Sum", "requests")]),
            _graph(
                "Webhook 4xx and 5xx per hour",
                [
                    api_metric("4xx", "Sum", "4xx (refused)"),
                    refused_tokens,
                    api_metric("5xx", "Sum", "5xx (Telegram retries)"),
                ],
            ),
            _graph(
                "Webhook latency (ms)",
                [
                    api_metric("Latency", "p50", "p50"),
                    api_metric("Latency", "p99", "p99"),
                    api_metric("IntegrationLatency", "p99", "p99 in the ingest function"),
                ],
            ),
        ]

    def _ingest(self) -> list[cloudwatch.IWidget]:
        """Each request's outcome, the signals beside it (new update types, unlisted groups, bad tokens), and
        whether Lambda ran every request."""

        def ingest(name: str) -> cloudwatch.Metric:
            return lake_metric(self.config, ingest_metrics.SERVICE, name, period=HOUR, label=name)

        return [
            _graph("Ingest outcomes per hour", [ingest(name) for name in ingest_metrics.OUTCOMES]),
            _graph("Ingest signals per hour", [ingest(name) for name in INGEST_SIGNALS]),
            self._ingest_concurrency(),
        ]

    def _ingest_concurrency(self) -> cloudwatch.GraphWidget:
        """The ingest function's busiest concurrency against the connections Telegram may open, and its throttles:
        a new account's Lambda concurrency quota can be lower than `webhook_max_connections`."""

        def function_metric(name: str, statistic: str, label: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=LAMBDA,
                metric_name=name,
                dimensions_map={"FunctionName": ingest_function_name(self.config)},
                period=HOUR,
                statistic=statistic,
                label=label,
            )

        return cloudwatch.GraphWidget(
            title="Ingest concurrency and throttles per hour",
            left=[function_metric("ConcurrentExecutions", "Maximum", "most concurrent executions")],
            right=[function_metric("Throttles", "Sum", "throttled (answered 5xx, Telegram retries)")],
            left_annotations=[
                cloudwatch.HorizontalAnnotation(
                    value=self.config.webhook_max_connections, label="Telegram's max_connections"
                )
            ],
            width=8,
            height=GRAPH_HEIGHT,
        )

    def _raw_delivery(self) -> list[cloudwatch.IWidget]:
        """The raw delivery stream (Firehose): the records it took in and delivered, how old the oldest one not yet
        in S3 is (against the RawDeliveryLate alarm's limit), and whether its S3 writes succeed."""
        stream = self.config.raw_stream_name

        def stream_metric(name: str, statistic: str, label: str) -> cloudwatch.Metric:
            return raw_stream_metric(stream, name, statistic, HOUR, label=label)

        return [
            _graph(
                "Raw delivery: records per hour",
                [
                    stream_metric("IncomingRecords", "Sum", "handed over by the ingest"),
                    stream_metric("DeliveryToS3.Records", "Sum", "written to the raw bucket"),
                ],
            ),
            cloudwatch.GraphWidget(
                title="Raw delivery: oldest undelivered record (s)",
                left=[stream_metric("DeliveryToS3.DataFreshness", "Maximum", "age of the oldest")],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(
                        value=raw_freshness_limit(self.config).to_seconds(), label="alarm (RawDeliveryLate)"
                    )
                ],
                width=8,
                height=GRAPH_HEIGHT,
            ),
            _graph(
                "Raw delivery: S3 write success (1 = all)",
                [stream_metric("DeliveryToS3.Success", "Minimum", "lowest success rate")],
            ),
        ]

    def _function_runs(self, function: lambda_.IFunction) -> EtlRuns:
        """The Lambda engine: the ETL function's invocations, errors and longest run, against its timeout."""
        return EtlRuns(
            function.metric_invocations(period=DAY, statistic="Sum", label="attempts"),
            [function.metric_errors(period=DAY, statistic="Sum", label="errors (Lambda retries twice)")],
            function.metric_duration(period=DAY, statistic="Maximum", label="longest run"),
            cdk.Duration.minutes(self.config.etl_timeout_minutes),
        )

    def _compaction_runs(self) -> EtlRuns:
        """The Athena engine: the Presentation stack's state machine, read by its name. An execution is a day's
        run with all its attempts; failed and timed-out ones are the days that were not compacted."""
        arn = cdk.Stack.of(self).format_arn(
            service="states",
            resource="stateMachine",
            resource_name=state_machine_name(self.config),
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )

        def executions(name: str, statistic: str, label: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=STATES,
                metric_name=name,
                dimensions_map={"StateMachineArn": arn},
                period=DAY,
                statistic=statistic,
                label=label,
            )

        return EtlRuns(
            executions("ExecutionsStarted", "Sum", "runs (state machine executions)"),
            [
                executions("ExecutionsFailed", "Sum", "failed runs (after their retries)"),
                executions("ExecutionsTimedOut", "Sum", "timed-out runs"),
            ],
            executions("ExecutionTime", "Maximum", "longest run"),
            RUN_TIMEOUT,
        )

    def _etl(self, function: lambda_.IFunction, failed_runs: sqs.IQueue) -> list[cloudwatch.IWidget]:
        """The daily runs (of the stage's engine): attempts and errors, how long they take against the timeout,
        what each day wrote."""

        def etl(name: str) -> cloudwatch.Metric:
            return lake_metric(self.config, etl_metrics.SERVICE, name, period=DAY, label=name)

        runs, errors, duration, timeout = (
            self._compaction_runs() if self.config.etl_engine_is_athena else self._function_runs(function)
        )
        return [
            _graph("ETL runs and errors per day", [runs, *errors], width=6),
            cloudwatch.GraphWidget(
                title="ETL duration (ms)",
                left=[duration],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=timeout.to_milliseconds(), label="timeout")
                ],
                width=6,
                height=GRAPH_HEIGHT,
            ),
            _graph(
                "Rows written per day",
                [etl(etl_metrics.ROWS_WRITTEN), etl(etl_metrics.OBJECTS_READ)],
                width=6,
            ),
            _graph(
                "Left out per day",
                [etl(name) for name in ETL_LEFT_OUT],
                width=6,
            ),
            _graph(
                "Failed runs in the dead-letter queue",
                [
                    failed_runs.metric_approximate_number_of_messages_visible(
                        period=HOUR, statistic="Maximum", label="failed runs waiting"
                    )
                ],
                width=FULL_WIDTH,
            ),
        ]


def _graph(title: str, metrics: list[cloudwatch.IMetric], *, width: int = 8) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(title=title, left=metrics, width=width, height=GRAPH_HEIGHT)


@jsii.implements(cloudwatch.IWidget)
class StageAlarmsWidget:
    """The state of every alarm of the stage, whichever stack creates it, now or later.

    CloudWatch's alarm widget lists alarms by ARN, with no name filter. The alarms are therefore collected
    when the dashboard's body is synthesized (CDK renders it lazily), from every alarm in the app whose name
    carries the stage's prefix (`TelegramLake-<stage>-`, which stacks/alarms.py gives each one): an alarm
    added to any stack of the stage appears without touching this code. The ARNs are built from the names,
    so the dashboard refers to no other stack.
    """

    def __init__(self, scope: Construct, config: StageConfig):
        self._scope = scope
        self._prefix = alarm_name(config, "")
        self._stage = config.stage
        self._x = 0
        self._y = 0

    @property
    def width(self) -> int:
        return FULL_WIDTH

    @property
    def height(self) -> int:
        return ALARMS_HEIGHT

    @property
    def warnings(self) -> list[str] | None:
        return None

    @property
    def warnings_v2(self) -> dict[str, str] | None:
        return None

    def position(self, x: int, y: int) -> None:
        self._x, self._y = x, y

    def alarm_names(self) -> list[str]:
        """The names of the stage's alarms anywhere in the app, sorted."""
        return sorted(
            construct.alarm_name
            for construct in self._scope.node.root.node.find_all()
            if isinstance(construct, cloudwatch.CfnAlarm)
            and isinstance(construct.alarm_name, str)
            and construct.alarm_name.startswith(self._prefix)
        )

    def to_json(self) -> list[Any]:
        stack = cdk.Stack.of(self._scope)
        arns = [
            stack.format_arn(
                service="cloudwatch", resource="alarm", resource_name=name, arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
            )
            for name in self.alarm_names()
        ]
        return [
            {
                "type": "alarm",
                "width": self.width,
                "height": self.height,
                "x": self._x,
                "y": self._y,
                "properties": {
                    "title": f"Alarms of stage {self._stage}", "alarms": arns, "sortBy": "stateUpdatedTimestamp",
                },
            }
        ]

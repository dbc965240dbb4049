"""ETL: once a day, the previous local day's raw updates become one Parquet file in the enriched bucket."""

from __future__ import annotations

from functools import partial

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from lambdas.common.layout import ATHENA_STAGING_PREFIX, PREFIX
from lambdas.etl import metrics as etl_metrics
from lambdas.etl.pseudonymize import MIN_KEY_BYTES, PSEUDONYMIZED_PREFIX
from stacks import outputs
from stacks.alarms import ALARM_PERIOD, alarm_on_any, alarm_on_silence, alarm_topic_from_output
from stacks.compliance import acknowledge, nag_resource
from stacks.config import StageConfig
from stacks.daily_run import (
    MAX_EVENT_AGE, RETRY_ATTEMPTS, compaction_environment, daily_schedule, grant_pseudonymizing,
)
from stacks.dashboard import StageDashboard, dashboard_url
from stacks.functions import lake_function
from stacks.metrics import lake_metric
from stacks.packaging import pyarrow_layer, runtime_layer
from stacks.references import publish
from stacks.secrets import GeneratedSecret
from stacks.storage import (
    AccessLogBucket, SecureBucket, bucket_from_output, grant_listing, grant_on_objects,
)

# A failed attempt of the Athena engine leaves its staged files behind (a successful one removes them): a day is
# enough for any attempt to end, and versions of a staged file are never worth keeping.
STAGING_EXPIRATION = cdk.Duration.days(1)
# The pseudonym key: letters and digits, twice the bytes HMAC-SHA256 needs at least.
PSEUDONYM_KEY_LENGTH = 2 * MIN_KEY_BYTES
# A day between two daily runs, the extra hour of a DST change, and room for a late run's retries (a run
# slower than that raises its own alarms: the ETL's timeout, or the state machine's 6-hour one).
MISSING_RUN_HOURS = 30


class EtlStack(cdk.Stack):
    """The ETL function, its daily schedule in the stage's time zone, and the alarms that say it failed.

    The alarms notify the stage's alarm topic, which the Ingestion stack creates. With `etl_engine: athena` the
    daily run is the Presentation stack's state machine: this stack keeps the function (for the dashboard and
    a switch back) without a schedule, and shares its enriched bucket and dead-letter queue with that engine.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, ingestion: cdk.Stack, **kwargs):
        super().__init__(scope, construct_id, **kwargs)
        raw_bucket = bucket_from_output(self, "RawBucket", producer=ingestion, output_id=outputs.RAW_BUCKET_NAME)
        access_logs = AccessLogBucket(self, "AccessLogs", config=config)
        enriched_bucket = SecureBucket(
            self,
            "EnrichedBucket",
            config=config,
            access_logs=access_logs,
            lifecycle_rules=[
                *_compacted_days_expiry(config),
                s3.LifecycleRule(
                    id="ExpireAthenaStaging",
                    prefix=ATHENA_STAGING_PREFIX,
                    expiration=STAGING_EXPIRATION,
                    noncurrent_version_expiration=STAGING_EXPIRATION,
                ),
                # What the expiry and the engine's own deletes leave behind once the versions are gone.
                s3.LifecycleRule(
                    id="RemoveAthenaStagingMarkers", prefix=ATHENA_STAGING_PREFIX, expired_object_delete_marker=True
                ),
            ],
        )
        failed_runs = sqs.Queue(
            self,
            "FailedRuns",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        acknowledge(
            failed_runs,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the ETL's schedule and asynchronous invocations.",
        )
        pseudonym_key = PseudonymKey(self, "PseudonymKey", config=config)
        function = lake_function(
            self,
            "Etl",
            config=config,
            package="etl",
            description="Compacts one day of raw Telegram updates into the day's Parquet file",
            memory_mb=config.etl_memory_mb,
            timeout=cdk.Duration.minutes(config.etl_timeout_minutes),
            environment=compaction_environment(config, raw_bucket, enriched_bucket, pseudonym_key),
            layers=[runtime_layer(self, config), pyarrow_layer(self, config)],
            # EventBridge Scheduler invokes Lambda asynchronously: a run that raises is retried by Lambda,
            # and only these settings route it to the dead-letter queue afterwards.
            retry_attempts=RETRY_ATTEMPTS,
            max_event_age=MAX_EVENT_AGE,
            on_failure=destinations.SqsDestination(failed_runs),
        )
        # The ETL lists and reads raw days, and replaces (puts, or deletes when stale) the enriched day's
        # file and rejects report: it never reads the enriched bucket, nor touches an object's versions.
        lake_objects = f"{PREFIX}*"
        grant_listing(raw_bucket, function, PREFIX)
        grant_on_objects(raw_bucket, function, ["s3:GetObject"], lake_objects)
        grant_on_objects(enriched_bucket, function, ["s3:PutObject", "s3:DeleteObject"], lake_objects)
        self._acknowledge_bucket_grants(function.role, raw_bucket, enriched_bucket, lake_objects)
        if config.pseudonymized:
            grant_pseudonymizing(function, enriched_bucket, pseudonym_key)
        if not config.etl_engine_is_athena:
            self._schedule(config, function, failed_runs)
        self._alarms(config, function, failed_runs, alarm_topic_from_output(self, "AlarmTopic", producer=ingestion))
        StageDashboard(self, "Dashboard", config=config, etl_function=function, failed_runs=failed_runs)

        cdk.CfnOutput(
            self, outputs.ETL_FUNCTION_NAME, value=function.function_name, description="Invoke for a backfill"
        )
        publish(self, outputs.ENRICHED_BUCKET_NAME, enriched_bucket.bucket_name, "Daily Parquet files")
        # Exported whichever the engine: an export in use cannot be removed, so one that came and went with the
        # engine would fail this stack's deploy when a stage switches from athena back to lambda.
        publish(self, outputs.FAILED_RUNS_QUEUE_ARN, failed_runs.queue_arn, "Days that could not be compacted")
        # Exported whichever the access: the Athena engine's publish step imports it on a pseudonymized stage.
        publish(
            self, outputs.PSEUDONYM_KEY_ARN, pseudonym_key.secret_arn,
            "The stage's HMAC key: analysts' pseudonyms and the keyed hash in erasure audit records",
        )
        cdk.CfnOutput(
            self, outputs.DASHBOARD_URL, value=dashboard_url(config), description="The stage's health on one page"
        )

    def _acknowledge_bucket_grants(
        self, role: iam.IRole, raw_bucket: s3.IBucket, enriched_bucket: s3.IBucket, objects: str
    ) -> None:
        """The wildcards of the bucket grants: keys under `objects` are named by day, only known at run time."""
        for bucket, access in ((raw_bucket, "reads every update"), (enriched_bucket, "replaces each day's file")):
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::{nag_resource(self, bucket.arn_for_objects(objects))}]",
                f"The ETL {access} under `{objects}`, in keys named by day; no other bucket or prefix is granted.",
            )

    def _schedule(self, config: StageConfig, function: lambda_.IFunction, failed_runs: sqs.IQueue) -> None:
        """The daily run is this function's (`etl_engine: lambda`)."""
        role = daily_schedule(
            self, config=config, target=partial(targets.LambdaInvoke, function), failed_runs=failed_runs
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{nag_resource(self, function.function_arn)}:*]",
            "Granted by LambdaInvoke: invoking this one function, any of its versions or aliases.",
        )

    def _alarms(
        self, config: StageConfig, function: lambda_.IFunction, failed_runs: sqs.IQueue, topic: sns.ITopic
    ) -> None:
        """Any failed attempt, any run given up on, any raw object a day left out, and a day with no run at all
        set an alarm that notifies the topic, whichever engine runs the days (both publish the same summary)."""
        failures = (
            (
                "EtlErrors",
                function.metric_errors(period=ALARM_PERIOD, statistic="Sum"),
                "An ETL run raised an error; Lambda retries it",
            ),
            (
                "FailedRunsWaiting",
                failed_runs.metric_approximate_number_of_messages_visible(period=ALARM_PERIOD, statistic="Maximum"),
                "An ETL run failed after its retries; re-run the day with `python -m tools etl run`",
            ),
            (
                "EtlObjectsRejected",
                lake_metric(config, etl_metrics.SERVICE, etl_metrics.OBJECTS_REJECTED, period=ALARM_PERIOD),
                "A compacted day left raw objects out (they stay in the raw zone): their keys and reasons are in the "
                "day's `_rejects.json` beside its `telegram.parquet`",
            ),
        )
        for construct_id, metric, description in failures:
            alarm_on_any(self, construct_id, metric, config=config, description=description, topic=topic)
        self._missing_run_alarm(config, topic)

    def _missing_run_alarm(self, config: StageConfig, topic: sns.ITopic) -> None:
        """No day compacted for MISSING_RUN_HOURS hours: the schedule did not run (disabled, deleted, or its
        target gone), the one failure that reaches neither the function's errors nor the dead-letter queue.
        Every run, of an empty day too, publishes its summary, so missing data is what this alarm is about."""
        runs = lake_metric(
            config, etl_metrics.SERVICE, etl_metrics.OBJECTS_READ, period=cdk.Duration.hours(1), statistic="SampleCount"
        )
        alarm_on_silence(
            self,
            "NoDayCompacted",
            runs,
            hours=MISSING_RUN_HOURS,
            config=config,
            description=f"No day was compacted in {MISSING_RUN_HOURS} hours. Check the daily schedule "
            "(EventBridge Scheduler) and `python -m tools status`; compact the missing days with "
            "`python -m tools etl run`.",
            topic=topic,
        )


class PseudonymKey(GeneratedSecret):
    """The stage's HMAC key: what the pseudonymized table's user ids are keyed hashes of, and what an erasure's
    audit record names its subject by (tools/operate/erase.py). Only the compacting functions of a pseudonymized
    stage may read it."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig):
        super().__init__(
            scope,
            construct_id,
            config=config,
            description=f"Pseudonym key (HMAC-SHA256) of stage {config.stage}: analysts' user ids, erasure records",
            length=PSEUDONYM_KEY_LENGTH,
            why_not_rotated="Rotating the key would give every person a new pseudonym from that day on, splitting the "
            "analysts' history, and would leave earlier erasure records unverifiable: it is kept for good.",
        )


def _compacted_days_expiry(config: StageConfig) -> list[s3.LifecycleRule]:
    """With `enriched_expiration_days`, each compacted day, of both tables, is deleted that long after it was last
    written (its rejects report with it); by default compacted days are kept."""
    if config.enriched_expiration_days is None:
        return []
    expiration = cdk.Duration.days(config.enriched_expiration_days)
    return [
        s3.LifecycleRule(id=f"Expire{name}", prefix=prefix, expiration=expiration)
        for name, prefix in (("CompactedDays", PREFIX), ("PseudonymizedDays", PSEUDONYMIZED_PREFIX))
    ]

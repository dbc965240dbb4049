"""The daily compaction run, whichever engine does it: its schedule, retries, dead-letter queue and settings.

The ETL Lambda (Etl stack) and the Athena compaction state machine (Presentation stack) are started the same
way: at the stage's local time, with the same event, retried the same number of times, and sent to the same
dead-letter queue when they cannot be started. Only the target differs. Both engines' functions read the same
environment (`compaction_environment`).
"""

from __future__ import annotations

from typing import Callable

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from lambdas.etl.day import SCHEDULED_TIME_KEY
from lambdas.etl.pseudonymize import PSEUDONYMIZED_PREFIX
from stacks import outputs
from stacks.compliance import acknowledge, nag_resource
from stacks.config import PROJECT, StageConfig
from stacks.storage import grant_on_objects

# A failed day is retried twice (both engines are idempotent: a re-run replaces the day's file), then its event
# lands in the dead-letter queue, which keeps it for SQS's maximum of 14 days.
RETRY_ATTEMPTS = 2
MAX_EVENT_AGE = cdk.Duration.hours(6)

# How a schedule target is built: `targets.LambdaInvoke` or `targets.StepFunctionsStartExecution` with the
# compacted resource bound (functools.partial), given the shared input, retries, dead-letter queue and role.
ScheduleTarget = Callable[..., scheduler.IScheduleTarget]


def daily_schedule_name(config: StageConfig) -> str:
    """`TelegramLake-dev-DailyRun-athena`: fixed, so a role can be granted reading this one schedule by its ARN
    (`tools doctor` checks it is enabled). The engine is in the name: a stage switching engines creates the
    other stack's schedule before the first one's stack deletes its own, and two cannot share a name."""
    return f"{PROJECT}-{config.stage}-DailyRun-{config.etl_engine}"


def daily_schedule(
    scope: Construct, *, config: StageConfig, target: ScheduleTarget, failed_runs: sqs.IQueue
) -> iam.Role:
    """Daily at the configured local time in the stage's zone: Scheduler follows daylight saving time. Its name
    is the stack's DailyScheduleName output, whichever stack runs the days.

    Returns the role Scheduler starts the run with: only Scheduler's default group in this account may assume
    it, and the target grants it exactly what starting the run needs.
    """
    stack = cdk.Stack.of(scope)
    role = iam.Role(
        scope,
        "ScheduleRole",
        description="Lets EventBridge Scheduler start the daily ETL run",
        assumed_by=iam.ServicePrincipal(
            "scheduler.amazonaws.com",
            conditions={
                "StringEquals": {
                    "aws:SourceAccount": stack.account,
                    "aws:SourceArn": stack.format_arn(
                        service="scheduler", resource="schedule-group", resource_name="default"
                    ),
                }
            },
        ),
    )
    schedule = scheduler.Schedule(
        scope,
        "Daily",
        schedule_name=daily_schedule_name(config),
        description=f"Compacts the previous day at {config.etl_schedule_local_time} {config.timezone}",
        schedule=scheduler.ScheduleExpression.cron(
            minute=str(config.etl_schedule_minute),
            hour=str(config.etl_schedule_hour),
            time_zone=cdk.TimeZone.of(config.timezone),
        ),
        target=target(
            # The day before the scheduled instant's local date: a retry after midnight still compacts it.
            input=scheduler.ScheduleTargetInput.from_object(
                {SCHEDULED_TIME_KEY: scheduler.ContextAttribute.scheduled_time}
            ),
            retry_attempts=RETRY_ATTEMPTS,
            max_event_age=MAX_EVENT_AGE,
            dead_letter_queue=failed_runs,
            role=role,
        ),
    )
    cdk.CfnOutput(
        stack, outputs.DAILY_SCHEDULE_NAME, value=schedule.schedule_name,
        description="The EventBridge Scheduler schedule (default group) that starts the daily compaction",
    )
    return role


def compaction_environment(
    config: StageConfig, raw_bucket: s3.IBucket, enriched_bucket: s3.IBucket, pseudonym_key: secretsmanager.ISecret
) -> dict[str, str]:
    """What a function compacting days reads (lambdas/etl/handler.EtlSettings), for either engine: on a pseudonymized
    stage, also where its pseudonym key is (the secret's ARN, never its value) and whether that table keeps text."""
    pseudonymized = {"PSEUDONYM_KEY_ARN": pseudonym_key.secret_arn, "PSEUDONYMIZED_TEXT": config.pseudonymized_text}
    return {
        "RAW_BUCKET": raw_bucket.bucket_name,
        "ENRICHED_BUCKET": enriched_bucket.bucket_name,
        "TIMEZONE": config.timezone,
        "READ_CONCURRENCY": str(config.etl_read_concurrency),
        "ANALYTICS_START_DATE": config.analytics_start_date,
        # Powertools' own variable: each day's summary is published in the stage's namespace.
        "POWERTOOLS_METRICS_NAMESPACE": config.metrics_namespace,
        **(pseudonymized if config.pseudonymized else {}),
    }


def grant_pseudonymizing(
    function: lambda_.IFunction, enriched_bucket: s3.IBucket, pseudonym_key: secretsmanager.ISecret
) -> None:
    """On a pseudonymized stage, what writing the analysts' copy of a day takes of a compacting function: reading the
    key, and replacing (putting, or deleting when stale) the day's file under the pseudonymized table's prefix."""
    files = f"{PSEUDONYMIZED_PREFIX}*"
    pseudonym_key.grant_read(function)
    grant_on_objects(enriched_bucket, function, ["s3:PutObject", "s3:DeleteObject"], files)
    acknowledge(
        function.role,
        f"AwsSolutions-IAM5[Resource::{nag_resource(function, enriched_bucket.arn_for_objects(files))}]",
        f"The function replaces each day's pseudonymized file under `{files}`, in keys named by day.",
    )

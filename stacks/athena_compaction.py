"""The Athena compaction engine (stage setting `etl_engine: athena`): a Step Functions state machine that compacts
a day with Athena, started daily by the same schedule, with the same retries and dead-letter queue, as the ETL
Lambda it replaces.

One attempt: `plan` (a Lambda step: the day, a fresh run id, the day's two statements) -> the UNLOAD of the day's
rows into the attempt's own staging folder and the report of what the day's objects became, side by side ->
`publish` (a Lambda step: the staged files become the day's one Parquet file, atomically). A failed attempt is
retried from `plan`, so each attempt has a new, empty staging folder (UNLOAD refuses a folder that holds
anything, and Athena leaves a failed query's files behind: they expire with the staging prefix). After the
retries, the run's event and error go to the dead-letter queue and the execution fails, which raises an alarm.

Step Functions waits for Athena itself (the `.sync` integration): nothing is billed while a query runs, and the
retries, the catch and the wait are declared in the definition, not coded in a polling Lambda that would spend
its 15 minutes waiting.
"""

from __future__ import annotations

from functools import partial

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from analytics import athena_compaction_templates
from lambdas.common.layout import ATHENA_STAGING_PREFIX, PREFIX
from stacks.alarms import ALARM_PERIOD, alarm_on_any
from stacks.athena_access import grant_on_tables, grant_query_results, workgroup_arn
from stacks.compliance import acknowledge, nag_resource
from stacks.config import PROJECT, RAW_TABLE, StageConfig
from stacks.daily_run import RETRY_ATTEMPTS, compaction_environment, daily_schedule, grant_pseudonymizing
from stacks.functions import lake_function, log_group
from stacks.packaging import pyarrow_layer, runtime_layer
from stacks.storage import grant_listing, grant_on_bucket, grant_on_objects

# The plan and publish steps: the ETL's code package, another module (lake_function names `handler.handler`).
STEPS_MODULE = "athena_engine"  # lambdas/etl/athena_engine.py: its `handler` runs the plan and publish steps
# Publish downloads a day's staged Parquet and writes the merged file beside it in /tmp, so a day needs twice its
# Parquet size there: Lambda's maximum, billed per GB-second (under $0.001 for a whole 15-minute run).
STEPS_MEMORY_MB = 2048
STEPS_EPHEMERAL_STORAGE = cdk.Size.gibibytes(10)
STEPS_TIMEOUT = cdk.Duration.minutes(15)
# The first retry a minute after a failure, the second two minutes after that: as Lambda retries the ETL.
RETRY_INTERVAL = cdk.Duration.minutes(1)
RETRY_BACKOFF = 2
# Three attempts, each bounded by Athena's DML query timeout (30 minutes by default) and a 15-minute publish,
# fit with room: an execution still running then is stuck, and its timeout alarm says so.
RUN_TIMEOUT = cdk.Duration.hours(6)
# Athena calls S3 with the caller's credentials and names itself in `aws:CalledVia`: the state machine's S3
# rights serve its queries only, never a direct call.
VIA_ATHENA = {"ForAnyValue:StringEquals": {"aws:CalledVia": ["athena.amazonaws.com"]}}
# Step Functions writes a state machine's logs through CloudWatch Logs' log delivery, which otherwise adds the log
# group to the account's one CloudWatch Logs resource policy (at most 5,120 characters, and busy accounts reach it:
# the deploy then fails). Log groups under this prefix need no entry there.
VENDED_LOGS_PREFIX = "/aws/vendedlogs/states/"
# What Athena reads of the raw table's definition as the caller (its database, columns, projection, partitions).
GLUE_READ_ACTIONS = ("glue:GetDatabase", "glue:GetTable", "glue:GetPartition", "glue:GetPartitions")
# The state machine starts, follows (`.sync` polls GetQueryExecution) and, when the execution stops, stops queries.
QUERY_ACTIONS = ("athena:StartQueryExecution", "athena:GetQueryExecution", "athena:StopQueryExecution")


def state_machine_name(config: StageConfig) -> str:
    """The stage's state machine, by a name the Etl stack's dashboard can chart without a reference to this stack."""
    return f"{PROJECT}-{config.stage}-Compaction"


class AthenaCompaction(Construct):
    """The state machine, its two Lambda steps, its daily schedule and its alarms (Presentation stack).

    `failed_runs` and `alarm_topic` are the stage's, shared with the ETL Lambda: a day that could not be
    compacted waits in the same queue and raises alarms on the same topic, whichever engine ran it.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        workgroup: athena.CfnWorkGroup,
        database: glue.CfnDatabase,
        raw_bucket: s3.IBucket,
        enriched_bucket: s3.IBucket,
        results: s3.IBucket,
        failed_runs: sqs.IQueue,
        alarm_topic: sns.ITopic,
        pseudonym_key: secretsmanager.ISecret,
    ):
        super().__init__(scope, construct_id)
        self.workgroup_arn = workgroup_arn(workgroup)
        self.steps = self._steps_function(config, raw_bucket, enriched_bucket, results, pseudonym_key)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=state_machine_name(config),
            comment=f"Compacts one day of stage {config.stage} with Athena: plan, UNLOAD and report, publish",
            definition_body=sfn.DefinitionBody.from_chainable(
                self._definition(config, workgroup=workgroup, database=database, failed_runs=failed_runs)
            ),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=RUN_TIMEOUT,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=log_group(
                    self, "Logs", config=config, name=f"{VENDED_LOGS_PREFIX}{state_machine_name(config)}"
                ),
                level=sfn.LogLevel.ALL,
                include_execution_data=True,
            ),
        )
        self._grant_queries(database, raw_bucket, enriched_bucket, results)
        daily_schedule(
            self,
            config=config,
            target=partial(targets.StepFunctionsStartExecution, self.state_machine),
            failed_runs=failed_runs,
        )
        self._alarms(config, alarm_topic)
        self._acknowledge(raw_bucket, enriched_bucket, results)

    def _steps_function(
        self, config: StageConfig, raw_bucket: s3.IBucket, enriched_bucket: s3.IBucket, results: s3.IBucket,
        pseudonym_key: secretsmanager.ISecret,
    ) -> lambda_.Function:
        """The plan and publish steps: the ETL's code and layers, built again in this stack (a function's layers
        are measured against Lambda's size limit with the stack that builds them)."""
        function = lake_function(
            self,
            "Steps",
            config=config,
            package="etl",
            module=STEPS_MODULE,
            description="Plans an Athena compaction run of a day, then publishes its staged Parquet as the day's file",
            memory_mb=STEPS_MEMORY_MB,
            timeout=STEPS_TIMEOUT,
            ephemeral_storage_size=STEPS_EPHEMERAL_STORAGE,
            environment=compaction_environment(config, raw_bucket, enriched_bucket, pseudonym_key),
            layers=[runtime_layer(self, config), pyarrow_layer(self, config)],
        )
        if config.pseudonymized:  # publish writes the analysts' copy of the day too, in Python: the key never in SQL
            grant_pseudonymizing(function, enriched_bucket, pseudonym_key)
        # Publish lists, downloads and deletes the attempt's staged files and leaves the run's summary beside them,
        # replaces (puts, or deletes when stale) the day's Parquet file and rejects report, and reads the report
        # query's results. Never raw data.
        grant_listing(enriched_bucket, function, ATHENA_STAGING_PREFIX)
        grant_on_objects(
            enriched_bucket, function, ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], f"{ATHENA_STAGING_PREFIX}*"
        )
        grant_on_objects(enriched_bucket, function, ["s3:PutObject", "s3:DeleteObject"], f"{PREFIX}*")
        iam.Grant.add_to_principal(
            grantee=function, actions=["athena:GetQueryResults"], resource_arns=[self.workgroup_arn]
        )
        # GetQueryResults reads the result object with the caller's rights.
        grant_on_objects(results, function, ["s3:GetObject"], "*")
        return function

    def _definition(
        self,
        config: StageConfig,
        *,
        workgroup: athena.CfnWorkGroup,
        database: glue.CfnDatabase,
        failed_runs: sqs.IQueue,
    ) -> sfn.IChainable:
        """Attempt (retried as a whole: plan -> queries -> publish) or, after the retries, dead-letter and fail."""
        plan = tasks.LambdaInvoke(
            self,
            "Plan",
            lambda_function=self.steps,
            payload=sfn.TaskInput.from_object(
                {
                    "step": "plan",
                    "event": sfn.JsonPath.entire_payload,  # the schedule's or a backfill's event, as the ETL's
                    "templates": athena_compaction_templates(config.glue_database),
                }
            ),
            result_selector={"plan": sfn.JsonPath.object_at("$.Payload")},
        )
        queries = sfn.Parallel(
            self,
            "Queries",
            comment="The day's rows UNLOADed as Parquet into the attempt's staging folder, and its report",
            # Branch results come in branch order: the report's is the second.
            result_selector={"report_execution_id": sfn.JsonPath.string_at("$[1].QueryExecutionId")},
            result_path="$.queries",
        )
        queries.branch(self._query("Unload", "$.plan.unload", workgroup, database))
        queries.branch(self._query("Report", "$.plan.report", workgroup, database))
        publish = tasks.LambdaInvoke(
            self,
            "Publish",
            lambda_function=self.steps,
            payload=sfn.TaskInput.from_object(
                {
                    "step": "publish",
                    "plan": sfn.JsonPath.object_at("$.plan"),
                    "report_execution_id": sfn.JsonPath.string_at("$.queries.report_execution_id"),
                }
            ),
            output_path="$.Payload",  # the day's summary
        )
        attempt = sfn.Parallel(
            self,
            "Compact",
            comment="One attempt; a retry plans again, with a new run id and an empty staging folder",
            output_path="$[0]",  # the branch's output: publish's summary of the day
        )
        attempt.branch(plan.next(queries).next(publish))
        attempt.add_retry(
            errors=[sfn.Errors.ALL], max_attempts=RETRY_ATTEMPTS, interval=RETRY_INTERVAL, backoff_rate=RETRY_BACKOFF
        )
        dead_letter = tasks.SqsSendMessage(
            self,
            "SendToFailedRuns",
            queue=failed_runs,
            message_body=sfn.TaskInput.from_object(
                {
                    "event": sfn.JsonPath.object_at("$$.Execution.Input"),  # what re-running the day needs
                    "error": sfn.JsonPath.entire_payload,
                    "execution": sfn.JsonPath.execution_id,
                }
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        attempt.add_catch(dead_letter, errors=[sfn.Errors.ALL], result_path="$")
        dead_letter.next(sfn.Fail(self, "Failed", error_path="$.Error", cause_path="$.Cause"))
        return attempt

    def _query(
        self, construct_id: str, statement_path: str, workgroup: athena.CfnWorkGroup, database: glue.CfnDatabase
    ) -> sfn.CustomState:
        """Athena's `.sync` integration: Step Functions starts the query and waits until it ends, failing the
        state when the query fails. A custom state, because the CDK's AthenaStartQueryExecution grants the role
        s3:CreateBucket and any S3 object, and Glue's create and delete actions, to whatever it runs on."""
        return sfn.CustomState(
            self,
            construct_id,
            state_json={
                "Type": "Task",
                "Resource": f"arn:{cdk.Aws.PARTITION}:states:::athena:startQueryExecution.sync",
                "Parameters": {
                    "QueryString.$": statement_path,
                    "WorkGroup": workgroup.ref,
                    "QueryExecutionContext": {"Database": database.ref},
                },
                "ResultSelector": {"QueryExecutionId.$": "$.QueryExecution.QueryExecutionId"},
            },
        )

    def _grant_queries(
        self, database: glue.CfnDatabase, raw_bucket: s3.IBucket, enriched_bucket: s3.IBucket, results: s3.IBucket
    ) -> None:
        """What the queries need, as the state machine's role (Athena's rights are the caller's): run in the
        workgroup; read the raw table's definition and its `telegram/` objects; write the staging folders;
        write the workgroup's results. S3 only through Athena (`aws:CalledVia`)."""
        machine = self.state_machine
        iam.Grant.add_to_principal(grantee=machine, actions=list(QUERY_ACTIONS), resource_arns=[self.workgroup_arn])
        grant_on_tables(machine, GLUE_READ_ACTIONS, database, RAW_TABLE)
        for bucket, prefix in ((raw_bucket, PREFIX), (enriched_bucket, ATHENA_STAGING_PREFIX)):
            grant_on_bucket(bucket, machine, ["s3:GetBucketLocation"], VIA_ATHENA)
            grant_listing(bucket, machine, prefix, conditions=VIA_ATHENA)
        grant_on_objects(raw_bucket, machine, ["s3:GetObject"], f"{PREFIX}*", conditions=VIA_ATHENA)
        grant_on_objects(
            enriched_bucket, machine, ["s3:PutObject", "s3:AbortMultipartUpload"], f"{ATHENA_STAGING_PREFIX}*",
            conditions=VIA_ATHENA,
        )
        grant_query_results(results, machine, VIA_ATHENA)

    def _alarms(self, config: StageConfig, topic: sns.ITopic) -> None:
        """A run that failed after its retries (its event is in the dead-letter queue), or that ran out of time."""
        failures = (
            (
                "CompactionRunsFailed",
                self.state_machine.metric_failed(period=ALARM_PERIOD, statistic="Sum"),
                "An Athena compaction run failed after its retries; its event and error are in the ETL's dead-letter "
                "queue: re-run the day with `python -m tools etl run`",
            ),
            (
                "CompactionRunsTimedOut",
                self.state_machine.metric_timed_out(period=ALARM_PERIOD, statistic="Sum"),
                f"An Athena compaction run took more than {RUN_TIMEOUT.to_hours()} hours and was stopped; re-run the "
                "day with `python -m tools etl run`",
            ),
        )
        for construct_id, metric, description in failures:
            alarm_on_any(self, construct_id, metric, config=config, description=description, topic=topic)

    def _acknowledge(self, raw_bucket: s3.IBucket, enriched_bucket: s3.IBucket, results: s3.IBucket) -> None:
        """The wildcards of the grants above, each for a reason (keys named by day, run or query id)."""
        stack = cdk.Stack.of(self)
        staged = enriched_bucket.arn_for_objects(f"{ATHENA_STAGING_PREFIX}*")
        query_results = results.arn_for_objects("*")
        wildcards = {
            self.steps.role: {
                staged: "Publish reads and removes the staged files of a run, and leaves the run's summary, in a "
                "folder named by day and run id.",
                enriched_bucket.arn_for_objects(f"{PREFIX}*"): "Publish replaces each day's file and rejects report, "
                "in keys named by day; no other prefix of the enriched bucket is granted.",
                query_results: "GetQueryResults reads the report query's result, a key named by its query id; the "
                "bucket holds nothing but this workgroup's results.",
            },
            self.state_machine.role: {
                raw_bucket.arn_for_objects(f"{PREFIX}*"): "Athena reads, as the state machine, the raw objects of the "
                "day and the day before, in keys named by day and update; only through Athena.",
                staged: "Athena UNLOADs, as the state machine, into a staging folder named by day and run id; only "
                "through Athena.",
                query_results: "Athena writes each query's results under a key named by its query id; the bucket "
                "holds nothing but this workgroup's results; only through Athena.",
                f"{self.steps.function_arn}:*": "Granted by LambdaInvoke: invoking the plan and publish function, any "
                "of its versions or aliases.",
                "*": "Granted by the CDK for the state machine's logging and tracing: CloudWatch Logs' log delivery "
                "and X-Ray's segment and sampling calls support no resource-level permissions.",
            },
        }
        for role, reasons in wildcards.items():
            for resource, reason in reasons.items():
                acknowledge(role, f"AwsSolutions-IAM5[Resource::{nag_resource(stack, resource)}]", reason)

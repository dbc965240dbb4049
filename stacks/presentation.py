"""Presentation: the Glue tables over both zones, an Athena workgroup, the saved analytics and the analysts' policy,
and, with `etl_engine: athena`, the Athena compaction engine (stacks/athena_compaction.py), which runs its
queries in this stack's workgroup over its raw table.

Partition projection computes every day's location from the date itself, so a new day is queryable the
moment its first object is written (a raw update, or the ETL's Parquet file): no crawler, no
`MSCK REPAIR TABLE`, no partitions to load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from analytics import SavedQuery, analyst_queries, stage_queries
from lambdas.common.layout import PARTITION_KEY, PREFIX
from lambdas.etl import pseudonymize, schema
from stacks import outputs
from stacks.alarms import alarm_topic_from_output
from stacks.athena_access import grant_on_tables, grant_query_results, workgroup_arn
from stacks.athena_compaction import AthenaCompaction
from stacks.compliance import acknowledge, nag_resource
from stacks.config import PSEUDONYMIZED_TABLE, RAW_TABLE, TABLE, StageConfig
from stacks.grantees import PolicyGrantee
from stacks.references import publish, stack_output
from stacks.storage import (
    AccessLogBucket, SecureBucket, bucket_from_output, grant_listing, grant_on_bucket, grant_on_objects,
)

ATHENA_ENGINE = "Athena engine version 3"
# Partition projection evaluates its range in UTC when a query runs. In a stage east of UTC the local day
# begins while UTC is still on the day before: without one more day, "today" would be invisible then.
PROJECTION_END = "NOW+1DAYS"
# The raw table's single column: a line of a batch (an envelope: the arrival day and instant, and the update as
# Telegram sent it), or a single-update object's one line (written before batching). Gzip batches are read as text.
RAW_LINE_COLUMN = "line"
# The raw table's field delimiter, U+0001: JSON escapes every control character inside its strings and
# allows none outside them, so a line of JSON never contains it and is never split into fields.
NO_FIELD_SPLIT = "\u0001"

# Athena on the stage's workgroup: run, follow, stop and read queries (the `query` command and the
# console), list and open the saved queries, and the console's recent-queries list.
ANALYST_ATHENA_ACTIONS = (
    "athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults", "athena:StopQueryExecution",
    "athena:GetWorkGroup", "athena:ListNamedQueries", "athena:GetNamedQuery", "athena:BatchGetNamedQuery",
    "athena:ListQueryExecutions", "athena:BatchGetQueryExecution",
)
# Where the analysts' workgroup of a pseudonymized stage writes its results: apart from the operators' (whose
# answers come from the full tables), under a prefix their policy alone reaches.
ANALYST_RESULTS_PREFIX = "analysts/"
# Glue: what Athena reads of a table's definition (its database, columns, projection) as the caller.
ANALYST_GLUE_ACTIONS = (
    "glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartition", "glue:GetPartitions",
)


@dataclass(frozen=True)
class StorageFormat:
    """How a table's files are read: Hadoop input/output formats, SerDe and the parameters they need."""

    input_format: str
    output_format: str
    serde: str
    serde_parameters: Mapping[str, str]
    table_parameters: Mapping[str, str] = field(default_factory=dict)


PARQUET = StorageFormat(
    input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    serde="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
    serde_parameters={"serialization.format": "1"},
    table_parameters={"classification": "parquet"},
)
# Text, one row per line, the whole line in one column: the SQL parses the JSON by the ETL's rules, so a body
# that is not one line of valid JSON spoils only its own rows. A JSON SerDe would apply rules of its own
# (Hive's fails the query on a malformed line) and need a typed column for every field of every update type.
WHOLE_LINES = StorageFormat(
    input_format="org.apache.hadoop.mapred.TextInputFormat",
    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    serde="org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
    serde_parameters={"field.delim": NO_FIELD_SPLIT, "serialization.format": NO_FIELD_SPLIT},
)


class PresentationStack(cdk.Stack):
    """What an analyst touches: database, tables, workgroup (with its results bucket), named queries, and the
    managed policy that lets an analyst use them."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        ingestion: cdk.Stack,
        etl: cdk.Stack,
        **kwargs,
    ):
        super().__init__(scope, construct_id, **kwargs)
        raw_bucket = bucket_from_output(self, "RawBucket", producer=ingestion, output_id=outputs.RAW_BUCKET_NAME)
        enriched_bucket = bucket_from_output(
            self, "EnrichedBucket", producer=etl, output_id=outputs.ENRICHED_BUCKET_NAME
        )
        database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=self.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=config.glue_database, description=f"Telegram data lake, stage {config.stage}"
            ),
        )
        _glue_table(
            self,
            "Table",
            database,
            _table_input(
                config,
                name=TABLE,
                description="Telegram messages, one row per message-like update, one Parquet file per day",
                bucket=enriched_bucket,
                columns=[_column(**column) for column in schema.glue_columns()],
                storage=PARQUET,
            ),
        )
        _glue_table(
            self,
            "RawTable",
            database,
            _table_input(
                config,
                name=RAW_TABLE,
                description=(
                    "Every Telegram update as the webhook stored it, of every type, read in place from the raw "
                    "zone (no copy): one row per line of each stored object. A batch's line is an envelope, "
                    '{"context_date": ..., "received_at": <ms>, "update": <the update as Telegram sent it>}; '
                    "an older single-update object (<update_id>.json) is the update itself. Parse "
                    f"`{RAW_LINE_COLUMN}` with Athena's JSON functions; a line that is not JSON spoils only its "
                    "own row; redeliveries are several lines (the saved queries keep each update's first "
                    f"arrival). Raw JSON is read whole: filter on {PARTITION_KEY} so a query reads only the days "
                    "it needs."
                ),
                bucket=raw_bucket,
                columns=[
                    _column(
                        RAW_LINE_COLUMN,
                        "string",
                        "one stored copy of an update: an envelope line of a batch (its `update` as Telegram sent "
                        "it), or an older single-update object's line; parsed by the query (json_parse, ...)",
                    )
                ],
                storage=WHOLE_LINES,
            ),
        )

        if config.pseudonymized:
            _glue_table(
                self,
                "PseudonymizedTable",
                database,
                _table_input(
                    config,
                    name=PSEUDONYMIZED_TABLE,
                    description=(
                        "The analysts' copy of `telegram`: the same rows and columns, each user id (and a private chat's "
                        "id) a keyed pseudonym, names null"
                        + ("" if config.pseudonymized_text == "keep" else ", text and captions null")
                        + "; one Parquet file per day, written by the ETL beside the full table's"
                    ),
                    bucket=enriched_bucket,
                    columns=[_column(**column) for column in pseudonymize.glue_columns(config.pseudonymized_text == "keep")],
                    storage=PARQUET,
                    prefix=pseudonymize.PSEUDONYMIZED_PREFIX,
                ),
            )

        access_logs = AccessLogBucket(self, "AccessLogs", config=config)
        results = SecureBucket(
            self,
            "ResultsBucket",
            config=config,
            access_logs=access_logs,
            # Results hold message text: once expired they must be gone, not kept as noncurrent versions.
            versioned=False,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireQueryResults",
                    expiration=cdk.Duration.days(config.athena_results_expiration_days),
                )
            ],
        )
        workgroup = _workgroup(
            self, "Workgroup", config, name=config.athena_workgroup, results=results,
            description=f"Telegram data lake analytics, stage {config.stage}",
        )
        _named_queries(self, "Query", stage_queries(config), database=database, workgroup=workgroup)
        analysts_workgroup = workgroup
        if config.pseudonymized:
            analysts_workgroup = _workgroup(
                self, "AnalystWorkgroup", config, name=config.analyst_workgroup, results=results,
                results_prefix=ANALYST_RESULTS_PREFIX,
                description=f"Telegram data lake analytics for analysts, pseudonymized, stage {config.stage}",
            )
            _named_queries(self, "AnalystQuery", analyst_queries(config), database=database, workgroup=analysts_workgroup)
        analyst_policy = self._analyst_policy(
            config, workgroup=analysts_workgroup, database=database, zones=(raw_bucket, enriched_bucket),
            results=results,
        )
        if config.etl_engine_is_athena:
            compaction = AthenaCompaction(
                self,
                "AthenaCompaction",
                config=config,
                workgroup=workgroup,
                database=database,
                raw_bucket=raw_bucket,
                enriched_bucket=enriched_bucket,
                results=results,
                failed_runs=sqs.Queue.from_queue_arn(
                    self, "FailedRuns", stack_output(self, producer=etl, output_id=outputs.FAILED_RUNS_QUEUE_ARN)
                ),
                alarm_topic=alarm_topic_from_output(self, "AlarmTopic", producer=ingestion),
                pseudonym_key=secretsmanager.Secret.from_secret_complete_arn(
                    self, "PseudonymKey", stack_output(self, producer=etl, output_id=outputs.PSEUDONYM_KEY_ARN)
                ),
            )
            cdk.CfnOutput(
                self,
                outputs.COMPACTION_STATE_MACHINE_ARN,
                value=compaction.state_machine.state_machine_arn,
                description="Compacts a day with Athena: `python -m tools etl run` starts it (the schedule does daily)",
            )

        cdk.CfnOutput(
            self, outputs.WORKGROUP_NAME, value=workgroup.ref, description="Athena workgroup (enforced settings)"
        )
        cdk.CfnOutput(self, outputs.DATABASE_NAME, value=database.ref, description="Glue database")
        cdk.CfnOutput(
            self, outputs.TABLE_NAME, value=TABLE, description="Enriched table, partitioned by context_date"
        )
        cdk.CfnOutput(
            self,
            outputs.RAW_TABLE_NAME,
            value=RAW_TABLE,
            description="Raw table: every stored copy of an update, one line of JSON per row, partitioned by context_date",
        )
        if config.pseudonymized:
            cdk.CfnOutput(
                self, outputs.ANALYST_WORKGROUP_NAME, value=analysts_workgroup.ref,
                description="The analysts' Athena workgroup: the pseudonymized table, their own results",
            )
            cdk.CfnOutput(
                self, outputs.PSEUDONYMIZED_TABLE_NAME, value=PSEUDONYMIZED_TABLE,
                description="The analysts' table: user ids as keyed pseudonyms, no names",
            )
        publish(self, outputs.RESULTS_BUCKET_NAME, results.bucket_name, "Athena query results")
        cdk.CfnOutput(
            self,
            outputs.ANALYST_POLICY_ARN,
            value=analyst_policy.managed_policy_arn,
            description=(
                "Managed policy to query this stage with Athena: attach it to an analyst's role, group or user with "
                "aws iam attach-role-policy --role-name NAME --policy-arn THIS_ARN "
                "(or attach-group-policy --group-name, attach-user-policy --user-name)"
            ),
        )

    def _analyst_policy(
        self,
        config: StageConfig,
        *,
        workgroup: athena.CfnWorkGroup,
        database: glue.CfnDatabase,
        zones: Sequence[s3.IBucket],
        results: s3.IBucket,
    ) -> iam.ManagedPolicy:
        """Everything a query in the analysts' workgroup needs, as grants to a policy an administrator attaches.

        Athena reads the catalog and S3, and writes its results, with the caller's own permissions: without
        this an analyst with Athena access alone is refused at the first table. Not more: only this workgroup,
        and with full access this database's tables and the `telegram/` prefix of both zones (not the ingest's
        state); on a pseudonymized stage the pseudonymized table and its prefix alone (no raw zone, no full table,
        no operator's results), in the analysts' own workgroup.
        """
        policy = iam.ManagedPolicy(
            self,
            "AnalystPolicy",
            description=f"Query the Telegram lake of stage {config.stage} in its Athena workgroup {workgroup.name}",
        )
        analysts = PolicyGrantee(policy)
        iam.Grant.add_to_principal(
            grantee=analysts, actions=list(ANALYST_ATHENA_ACTIONS), resource_arns=[workgroup_arn(workgroup)]
        )
        raw_bucket, enriched_bucket = zones
        if config.pseudonymized:
            tables = grant_on_tables(analysts, ANALYST_GLUE_ACTIONS, database, PSEUDONYMIZED_TABLE)
            readable = ((enriched_bucket, pseudonymize.PSEUDONYMIZED_PREFIX),)
            results_prefix = ANALYST_RESULTS_PREFIX
            tables_reason = f"The pseudonymized table `{PSEUDONYMIZED_TABLE}` alone."
        else:
            tables = grant_on_tables(analysts, ANALYST_GLUE_ACTIONS, database, "*")
            readable = ((raw_bucket, PREFIX), (enriched_bucket, PREFIX))
            results_prefix = ""
            tables_reason = (
                f"Every table and view of the stage's database `{config.glue_database}` and no other database: an "
                "analyst reads whichever the saved queries join."
            )
        for bucket, prefix in readable:
            grant_on_bucket(bucket, analysts, ["s3:GetBucketLocation"])
            grant_listing(bucket, analysts, prefix)
            grant_on_objects(bucket, analysts, ["s3:GetObject"], f"{prefix}*")
        grant_query_results(results, analysts, prefix=results_prefix)

        wildcards = {
            tables: tables_reason,
            results.arn_for_objects(f"{results_prefix}*"): "Athena writes each query's results under a key named by "
            "its query id, only known when the query runs; nothing but this workgroup's results are there.",
        }
        for bucket, prefix in readable:
            wildcards[bucket.arn_for_objects(f"{prefix}*")] = (
                f"Athena reads every object of the days a query selects, under `{prefix}*` only: keys are named "
                "by day and update (raw) or day (enriched), only known at run time."
            )
        for resource, reason in wildcards.items():
            acknowledge(policy, f"AwsSolutions-IAM5[Resource::{nag_resource(self, resource)}]", reason)
        return policy


def _glue_table(
    scope: Construct, construct_id: str, database: glue.CfnDatabase, table_input: glue.CfnTable.TableInputProperty
) -> glue.CfnTable:
    return glue.CfnTable(
        scope, construct_id, catalog_id=cdk.Stack.of(scope).account, database_name=database.ref, table_input=table_input
    )


def _workgroup(
    scope: Construct, construct_id: str, config: StageConfig, *, name: str, description: str, results: s3.IBucket,
    results_prefix: str = "",
) -> athena.CfnWorkGroup:
    """A workgroup whose settings its users cannot override: engine, results location (encrypted), scan cutoff."""
    return athena.CfnWorkGroup(
        scope,
        construct_id,
        name=name,
        description=description,
        state="ENABLED",
        # Deleting the workgroup also deletes queries analysts saved in it: only where data is not kept.
        recursive_delete_option=not config.retain_data,
        work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
            # Pinned, not AUTO: the saved SQL is written and tested for Trino's semantics (engine 3).
            engine_version=athena.CfnWorkGroup.EngineVersionProperty(selected_engine_version=ATHENA_ENGINE),
            enforce_work_group_configuration=True,
            publish_cloud_watch_metrics_enabled=True,
            bytes_scanned_cutoff_per_query=config.athena_bytes_scanned_cutoff,
            result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                output_location=f"s3://{results.bucket_name}/{results_prefix}",
                encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                    encryption_option="SSE_S3"
                ),
            ),
        ),
    )


def _named_queries(
    scope: Construct, prefix: str, queries: Sequence[SavedQuery], *, database: glue.CfnDatabase,
    workgroup: athena.CfnWorkGroup,
) -> None:
    for query in queries:
        athena.CfnNamedQuery(
            scope,
            f"{prefix}-{query.name}",
            name=query.name,
            description=query.question,
            query_string=query.sql,
            database=database.ref,
            work_group=workgroup.ref,
        )


def _table_input(
    config: StageConfig,
    *,
    name: str,
    description: str,
    bucket: s3.IBucket,
    columns: list[glue.CfnTable.ColumnProperty],
    storage: StorageFormat,
    prefix: str = PREFIX,
) -> glue.CfnTable.TableInputProperty:
    """An external table over a zone's `telegram/` prefix (or another), partitioned (and projected) by day like every
    zone."""
    location = f"s3://{bucket.bucket_name}/{prefix}"
    partition = schema.PARTITION
    return glue.CfnTable.TableInputProperty(
        name=name,
        description=description,
        table_type="EXTERNAL_TABLE",
        parameters={"EXTERNAL": "TRUE", **storage.table_parameters, **_day_projection(config, location)},
        partition_keys=[_column(partition.name, partition.sql_type, partition.comment)],
        storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
            columns=columns,
            location=location,
            input_format=storage.input_format,
            output_format=storage.output_format,
            serde_info=glue.CfnTable.SerdeInfoProperty(
                serialization_library=storage.serde, parameters=dict(storage.serde_parameters)
            ),
        ),
    )


def _day_projection(config: StageConfig, location: str) -> dict[str, str]:
    """Partition projection of `context_date`: every day from the stage's analytics start to tomorrow (UTC),
    each at `<location>context_date=YYYY-MM-DD/`, the folder both zones write."""
    key = schema.PARTITION.name
    return {
        "projection.enabled": "true",
        f"projection.{key}.type": "date",
        f"projection.{key}.format": "yyyy-MM-dd",
        f"projection.{key}.range": f"{config.analytics_start_date},{PROJECTION_END}",
        f"projection.{key}.interval": "1",
        f"projection.{key}.interval.unit": "DAYS",
        "storage.location.template": f"{location}{PARTITION_KEY}=${{{key}}}/",
    }


def _column(name: str, type: str, comment: str) -> glue.CfnTable.ColumnProperty:
    return glue.CfnTable.ColumnProperty(name=name, type=type, comment=comment)

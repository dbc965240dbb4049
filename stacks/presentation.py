"""Presentation: the Glue table over the enriched Parquet, an Athena workgroup and the saved analytics.

Partition projection computes every day's location from the date itself, so a new day is queryable the
moment the ETL writes it: no crawler, no `MSCK REPAIR TABLE`, no partitions to load.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

from analytics import load_queries
from lambdas.common.layout import PARTITION_KEY, PREFIX
from lambdas.etl import schema
from stacks import outputs
from stacks.config import TABLE, StageConfig
from stacks.storage import AccessLogBucket, SecureBucket, bucket_from_output

PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
ATHENA_ENGINE = "Athena engine version 3"


class PresentationStack(cdk.Stack):
    """What an analyst touches: database, table, workgroup (with its results bucket) and named queries."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, etl: cdk.Stack, **kwargs):
        super().__init__(scope, construct_id, **kwargs)
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
        glue.CfnTable(
            self,
            "Table",
            catalog_id=self.account,
            database_name=database.ref,
            table_input=_table_input(config, f"s3://{enriched_bucket.bucket_name}/{PREFIX}"),
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
        workgroup = athena.CfnWorkGroup(
            self,
            "Workgroup",
            name=config.athena_workgroup,
            description=f"Telegram data lake analytics, stage {config.stage}",
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
                    output_location=f"s3://{results.bucket_name}/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                ),
            ),
        )
        for query in load_queries(config.timezone):
            athena.CfnNamedQuery(
                self,
                f"Query-{query.name}",
                name=query.name,
                description=query.question,
                query_string=query.sql,
                database=database.ref,
                work_group=workgroup.ref,
            )

        cdk.CfnOutput(
            self, outputs.WORKGROUP_NAME, value=workgroup.ref, description="Athena workgroup (enforced settings)"
        )
        cdk.CfnOutput(self, outputs.DATABASE_NAME, value=database.ref, description="Glue database")
        cdk.CfnOutput(
            self, outputs.TABLE_NAME, value=TABLE, description="Enriched table, partitioned by context_date"
        )
        cdk.CfnOutput(
            self, outputs.RESULTS_BUCKET_NAME, value=results.bucket_name, description="Athena query results"
        )


def _table_input(config: StageConfig, location: str) -> glue.CfnTable.TableInputProperty:
    """External Parquet table; columns from the ETL's schema module, the single source of truth."""
    partition = schema.PARTITION
    return glue.CfnTable.TableInputProperty(
        name=TABLE,
        description="Telegram messages, one row per message-like update, one Parquet file per day",
        table_type="EXTERNAL_TABLE",
        parameters={
            "classification": "parquet",
            "EXTERNAL": "TRUE",
            "projection.enabled": "true",
            f"projection.{partition.name}.type": "date",
            f"projection.{partition.name}.format": "yyyy-MM-dd",
            f"projection.{partition.name}.range": f"{config.analytics_start_date},NOW",
            f"projection.{partition.name}.interval": "1",
            f"projection.{partition.name}.interval.unit": "DAYS",
            "storage.location.template": f"{location}{PARTITION_KEY}=${{{partition.name}}}/",
        },
        partition_keys=[_column(partition.name, partition.sql_type, partition.comment)],
        storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
            columns=[_column(**column) for column in schema.glue_columns()],
            location=location,
            input_format=PARQUET_INPUT_FORMAT,
            output_format=PARQUET_OUTPUT_FORMAT,
            serde_info=glue.CfnTable.SerdeInfoProperty(
                serialization_library=PARQUET_SERDE, parameters={"serialization.format": "1"}
            ),
        ),
    )


def _column(name: str, type: str, comment: str) -> glue.CfnTable.ColumnProperty:
    return glue.CfnTable.ColumnProperty(name=name, type=type, comment=comment)

"""Presentation stack template: Glue table (schema agreement, projection), Athena workgroup, named queries."""

from __future__ import annotations

from datetime import date

import pyarrow.parquet as pq
import pytest

from analytics import QUERY_DIR, load_queries
from lambdas.common.layout import day_prefix
from lambdas.etl import schema
from lambdas.etl.compact import write_parquet
from stacks import outputs
from tests.cdk_support import ref, resources, stage_fixture, the_resource

ARROW_TO_GLUE = {"int64": "bigint", "bool": "boolean", "string": "string"}

dev = stage_fixture("dev")
prod = stage_fixture("prod")


@pytest.fixture(scope="module")
def template(dev):
    return dev.template("Presentation")


@pytest.fixture(scope="module")
def table(template):
    return the_resource(template, "AWS::Glue::Table")["Properties"]


def enriched_bucket(config) -> dict:
    """The enriched bucket's name as the presentation stack imports it from the ETL stack's exported output."""
    return {"Fn::ImportValue": f"{config.stack_name('Etl')}-{outputs.ENRICHED_BUCKET_NAME}"}


def test_database_is_the_stages(dev, template):
    database = the_resource(template, "AWS::Glue::Database")["Properties"]

    assert database["DatabaseInput"]["Name"] == dev.config.glue_database == "telegram_lake_dev"
    assert database["CatalogId"] == {"Ref": "AWS::AccountId"}


def test_table_columns_are_exactly_the_parquet_schema_the_etl_writes(table, tmp_path):
    """The schema-agreement test: names, order and types of the Glue columns equal the Arrow schema, and
    the schema of a Parquet file written by the ETL's own writer, as a reader finds it in the file."""
    columns = [(column["Name"], column["Type"]) for column in table["TableInput"]["StorageDescriptor"]["Columns"]]
    declared = [(field.name, ARROW_TO_GLUE[str(field.type)]) for field in schema.arrow_schema()]
    path = tmp_path / "telegram.parquet"
    assert write_parquet(path, [{"update_id": 1}], batch_rows=1) == 1
    written = [(field.name, ARROW_TO_GLUE[str(field.type)]) for field in pq.ParquetFile(path).schema_arrow]

    assert columns == declared == written
    comments = [column["Comment"] for column in table["TableInput"]["StorageDescriptor"]["Columns"]]
    assert comments == [column.comment for column in schema.COLUMNS]


def test_table_is_an_external_parquet_table_partitioned_by_date(dev, table):
    table_input = table["TableInput"]
    storage = table_input["StorageDescriptor"]

    assert table["DatabaseName"] == ref(dev.logical_id("Presentation", "Database"))
    assert table_input["Name"] == "telegram"
    assert table_input["TableType"] == "EXTERNAL_TABLE"
    assert table_input["PartitionKeys"] == [{"Name": "context_date", "Type": "date", "Comment": schema.PARTITION.comment}]
    assert storage["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    assert storage["OutputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
    assert storage["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert storage["Location"] == {"Fn::Join": ["", ["s3://", enriched_bucket(dev.config), "/telegram/"]]}


def test_partition_projection_covers_every_day_from_the_start_date_to_now(dev, table):
    parameters = table["TableInput"]["Parameters"]

    assert {key: value for key, value in parameters.items() if key.startswith("projection.")} == {
        "projection.enabled": "true",
        "projection.context_date.type": "date",
        "projection.context_date.format": "yyyy-MM-dd",
        "projection.context_date.range": f"{dev.config.analytics_start_date},NOW",
        "projection.context_date.interval": "1",
        "projection.context_date.interval.unit": "DAYS",
    }


def test_projected_location_of_a_day_is_the_folder_the_etl_writes(dev, table):
    prefix, bucket, suffix = table["TableInput"]["Parameters"]["storage.location.template"]["Fn::Join"][1]
    day = date(2026, 3, 8)

    assert (prefix, bucket) == ("s3://", enriched_bucket(dev.config))
    assert suffix.replace("${context_date}", day.isoformat()) == f"/{day_prefix(day)}"


def test_workgroup_enforces_its_encrypted_results_location_and_the_scan_cutoff(dev, template):
    workgroup = the_resource(template, "AWS::Athena::WorkGroup")["Properties"]
    configuration = workgroup["WorkGroupConfiguration"]

    assert workgroup["Name"] == dev.config.athena_workgroup == "telegram-lake-dev"
    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert configuration["EngineVersion"] == {"SelectedEngineVersion": "Athena engine version 3"}
    assert configuration["PublishCloudWatchMetricsEnabled"] is True
    assert configuration["BytesScannedCutoffPerQuery"] == dev.config.athena_bytes_scanned_cutoff
    assert configuration["ResultConfiguration"] == {
        "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
        "OutputLocation": {"Fn::Join": ["", ["s3://", ref(dev.logical_id("Presentation", "ResultsBucket")), "/"]]},
    }


def test_prod_workgroup_keeps_saved_queries_and_uses_its_own_cutoff(prod):
    workgroup = the_resource(prod.template("Presentation"), "AWS::Athena::WorkGroup")["Properties"]

    assert workgroup["RecursiveDeleteOption"] is False
    assert workgroup["WorkGroupConfiguration"]["BytesScannedCutoffPerQuery"] == prod.config.athena_bytes_scanned_cutoff


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_query_results_are_gone_after_the_configured_days(stage, dev, prod):
    """Unversioned: in a versioned bucket, expiry would only add a delete marker and keep the results
    (message text) as a noncurrent version."""
    stage_app = {"dev": dev, "prod": prod}[stage]
    results = stage_app.template("Presentation")["Resources"][stage_app.logical_id("Presentation", "ResultsBucket")]
    rules = {rule["Id"]: rule for rule in results["Properties"]["LifecycleConfiguration"]["Rules"]}

    assert "VersioningConfiguration" not in results["Properties"]
    assert rules == {
        "AbortIncompleteUploads": {
            "Id": "AbortIncompleteUploads", "Status": "Enabled",
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        },
        "ExpireQueryResults": {
            "Id": "ExpireQueryResults", "Status": "Enabled",
            "ExpirationInDays": stage_app.config.athena_results_expiration_days,
        },
    }
    access_logs = ref(stage_app.logical_id("Presentation", "AccessLogs"))
    assert results["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == access_logs


def test_one_named_query_per_sql_file_bound_to_the_workgroup_and_database(dev, template):
    named = [query["Properties"] for query in resources(template, "AWS::Athena::NamedQuery").values()]
    expected = load_queries(dev.config.timezone)

    assert len(named) == len(expected) == len(list(QUERY_DIR.glob("*.sql"))) > 0
    assert [(q["Name"], q["Description"], q["QueryString"]) for q in named] == [
        (query.name, query.question, query.sql) for query in expected
    ]
    for query in named:
        assert query["WorkGroup"] == ref(dev.logical_id("Presentation", "Workgroup"))
        assert query["Database"] == ref(dev.logical_id("Presentation", "Database"))
        assert "{{timezone}}" not in query["QueryString"]


def test_no_permissions_are_created_analysts_use_their_own(template):
    assert not [r for r in template["Resources"].values() if r["Type"].startswith("AWS::IAM::")]


def test_outputs_name_the_workgroup_database_table_and_results_bucket(dev, template):
    declared = template["Outputs"]

    assert declared.keys() == {
        outputs.WORKGROUP_NAME, outputs.DATABASE_NAME, outputs.TABLE_NAME, outputs.RESULTS_BUCKET_NAME
    }
    assert declared[outputs.WORKGROUP_NAME]["Value"] == ref(dev.logical_id("Presentation", "Workgroup"))
    assert declared[outputs.DATABASE_NAME]["Value"] == ref(dev.logical_id("Presentation", "Database"))
    assert declared[outputs.TABLE_NAME]["Value"] == "telegram"
    assert declared[outputs.RESULTS_BUCKET_NAME]["Value"] == ref(dev.logical_id("Presentation", "ResultsBucket"))
    assert dev.stacks["Etl"] in dev.stacks["Presentation"].dependencies

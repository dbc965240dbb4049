"""Presentation stack template: Glue tables over both zones (schema agreement, storage, projection), Athena
workgroup, named queries and the analysts' managed policy."""

from __future__ import annotations

import json
import re
from datetime import date

import pyarrow.parquet as pq
import pytest

from analytics import QUERY_DIR, stage_queries
from lambdas.common.layout import day_prefix, raw_key
from lambdas.etl import schema
from lambdas.etl.compact import write_parquet
from lambdas.etl.day import enriched_key
from stacks import outputs
from tests.cdk_support import arn, normalized, ref, resources, stage_fixture, the_resource

ARROW_TO_GLUE = {"int64": "bigint", "bool": "boolean", "string": "string"}
# What the analysts may do in their workgroup and read of the catalog, whichever their access.
ANALYST_ATHENA_ACTIONS = [
    "athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults", "athena:StopQueryExecution",
    "athena:GetWorkGroup", "athena:ListNamedQueries", "athena:GetNamedQuery", "athena:BatchGetNamedQuery",
    "athena:ListQueryExecutions", "athena:BatchGetQueryExecution",
]
ANALYST_GLUE_ACTIONS = ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartition", "glue:GetPartitions"]

dev = stage_fixture("dev")
prod = stage_fixture("prod")
wide_window = stage_fixture("dev", name="wide_window", raw_window_days=9)


@pytest.fixture(scope="module")
def template(dev):
    return dev.template("Presentation")


@pytest.fixture(scope="module")
def table(dev, template):
    return template["Resources"][dev.logical_id("Presentation", "Table")]["Properties"]


@pytest.fixture(scope="module")
def raw_table(dev, template):
    return template["Resources"][dev.logical_id("Presentation", "RawTable")]["Properties"]


def enriched_bucket(config) -> dict:
    """The enriched bucket's name as the presentation stack imports it from the ETL stack's exported output."""
    return {"Fn::ImportValue": f"{config.stack_name('Etl')}-{outputs.ENRICHED_BUCKET_NAME}"}


def raw_bucket(config) -> dict:
    """The raw bucket's name as the presentation stack imports it from the Ingestion stack's exported output."""
    return {"Fn::ImportValue": f"{config.stack_name('Ingestion')}-{outputs.RAW_BUCKET_NAME}"}


def joined(*parts) -> dict:
    return {"Fn::Join": ["", list(parts)]}


def account_arn(service: str, resource: str, *rest) -> dict:
    """`arn:<partition>:<service>:<region>:<account>:<resource><rest>` as CDK's format_arn writes it."""
    return joined(
        "arn:", ref("AWS::Partition"), f":{service}:", ref("AWS::Region"), ":", ref("AWS::AccountId"), f":{resource}",
        *rest,
    )


def bucket_arn(bucket: dict, *key_pattern: str) -> dict:
    """The ARN of an imported bucket (or of its keys matching `key_pattern`)."""
    return joined("arn:", ref("AWS::Partition"), ":s3:::", bucket, *key_pattern)


def allow(actions: list[str], resources: list, condition: dict | None = None) -> dict:
    statement = {"Effect": "Allow", "Action": actions, "Resource": resources}
    return {**statement, "Condition": condition} if condition else statement


def analysts_catalog(database: dict, tables: str) -> dict:
    """Reading the definitions of the database's `tables` (a name, or `*`): Glue authorizes catalog, database and
    tables alike."""
    return allow(
        ANALYST_GLUE_ACTIONS,
        [
            account_arn("glue", "catalog"),
            account_arn("glue", "database/", database),
            account_arn("glue", "table/", database, f"/{tables}"),
        ],
    )


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


def test_raw_table_reads_each_stored_copy_whole_as_one_line_of_text(dev, raw_table):
    """Text, one row per line (Athena gunzips a batch by its `.gz` name), the whole line in one string column: the
    SQL parses the JSON, so a line that is not JSON spoils its own row only; no crawler-made schema, no second copy
    of the data."""
    table_input = raw_table["TableInput"]
    storage = table_input["StorageDescriptor"]

    assert raw_table["DatabaseName"] == ref(dev.logical_id("Presentation", "Database"))
    assert table_input["Name"] == "telegram_raw"
    assert table_input["TableType"] == "EXTERNAL_TABLE"
    assert "envelope" in table_input["Description"] and "single-update object" in table_input["Description"]
    assert table_input["PartitionKeys"] == [
        {"Name": "context_date", "Type": "date", "Comment": schema.PARTITION.comment}
    ]
    assert [(column["Name"], column["Type"]) for column in storage["Columns"]] == [("line", "string")]
    assert "envelope line of a batch" in storage["Columns"][0]["Comment"]
    assert storage["InputFormat"] == "org.apache.hadoop.mapred.TextInputFormat"
    assert storage["OutputFormat"] == "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
    assert storage["SerdeInfo"] == {
        "SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
        "Parameters": {"field.delim": "\x01", "serialization.format": "\x01"},
    }
    assert storage["Location"] == joined("s3://", raw_bucket(dev.config), "/telegram/")
    parameters = table_input["Parameters"]
    assert {k: v for k, v in parameters.items() if not k.startswith(("projection.", "storage."))} == {
        "EXTERNAL": "TRUE"
    }


def test_the_field_delimiter_cannot_occur_in_valid_json_so_a_line_is_never_split():
    """U+0001 inside a string is escaped by every JSON writer and refused raw by a strict JSON reader."""
    update = {"update_id": 1, "message": {"text": "a\x01b\nc"}}

    assert "\x01" not in json.dumps(update, ensure_ascii=False, separators=(",", ":"))
    with pytest.raises(json.JSONDecodeError, match="control character"):
        json.loads('{"update_id":1,"message":{"text":"a\x01b"}}')


@pytest.mark.parametrize("part", ["Table", "RawTable"])
def test_partition_projection_covers_every_day_from_the_start_date_to_tomorrow_in_utc(dev, template, part):
    """Projection evaluates `NOW` in UTC at query time: east of UTC, the local today is UTC's tomorrow for part
    of the day, and `NOW` alone would hide it until UTC's midnight."""
    parameters = template["Resources"][dev.logical_id("Presentation", part)]["Properties"]["TableInput"]["Parameters"]

    assert {key: value for key, value in parameters.items() if key.startswith("projection.")} == {
        "projection.enabled": "true",
        "projection.context_date.type": "date",
        "projection.context_date.format": "yyyy-MM-dd",
        "projection.context_date.range": f"{dev.config.analytics_start_date},NOW+1DAYS",
        "projection.context_date.interval": "1",
        "projection.context_date.interval.unit": "DAYS",
    }


def test_prod_projection_starts_at_its_own_start_date(prod):
    for part in ("Table", "RawTable"):
        table = prod.template("Presentation")["Resources"][prod.logical_id("Presentation", part)]["Properties"]
        start, end = table["TableInput"]["Parameters"]["projection.context_date.range"].split(",")
        assert (start, end) == (prod.config.analytics_start_date, "NOW+1DAYS")


@pytest.mark.parametrize(
    ("part", "bucket", "written_key"),
    [
        ("Table", enriched_bucket, enriched_key),  # the ETL's Parquet file
        ("RawTable", raw_bucket, lambda day: raw_key(day, 123456789)),  # an update the ingest stored
    ],
)
def test_projected_location_of_a_day_is_the_folder_its_zone_is_written_to(dev, template, part, bucket, written_key):
    table = template["Resources"][dev.logical_id("Presentation", part)]["Properties"]
    prefix, bucket_name, suffix = table["TableInput"]["Parameters"]["storage.location.template"]["Fn::Join"][1]
    day = date(2026, 3, 8)
    folder = suffix.replace("${context_date}", day.isoformat())

    assert (prefix, bucket_name) == ("s3://", bucket(dev.config))
    assert folder == f"/{day_prefix(day)}" == f"/{written_key(day).rpartition('/')[0]}/"


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
    expected = stage_queries(dev.config)

    assert len(named) == len(expected) == len(list(QUERY_DIR.glob("*.sql"))) > 0
    assert [(q["Name"], q["Description"], q["QueryString"]) for q in named] == [
        (query.name, query.question, query.sql) for query in expected
    ]
    for query in named:
        assert query["WorkGroup"] == ref(dev.logical_id("Presentation", "Workgroup"))
        assert query["Database"] == ref(dev.logical_id("Presentation", "Database"))
        assert "{{timezone}}" not in query["QueryString"]


def test_the_saved_queries_read_the_raw_days_of_the_stages_window(wide_window):
    named = resources(wide_window.template("Presentation"), "AWS::Athena::NamedQuery").values()
    reading_telegram = [query["Properties"]["QueryString"] for query in named
                        if re.search(r"\bFROM telegram\b", query["Properties"]["QueryString"])]

    assert reading_telegram
    for sql in reading_telegram:
        assert "current_date - INTERVAL '9' DAY" in sql and "INTERVAL '3' DAY" not in sql


def test_analyst_policy_is_exactly_what_a_query_in_the_workgroup_needs(dev, template):
    """Athena runs with the caller's permissions: this workgroup, the stage's database and its tables, the
    `telegram/` prefix of both zones (not the ingest's state), and the results bucket. Nothing else."""
    policy = template["Resources"][dev.logical_id("Presentation", "AnalystPolicy")]["Properties"]
    raw, enriched = raw_bucket(dev.config), enriched_bucket(dev.config)
    database = ref(dev.logical_id("Presentation", "Database"))
    results = arn(dev.logical_id("Presentation", "ResultsBucket"))
    workgroup = account_arn("athena", "workgroup/", ref(dev.logical_id("Presentation", "Workgroup")))
    expected = [
        allow(ANALYST_ATHENA_ACTIONS, workgroup),
        analysts_catalog(database, "*"),
        allow(["s3:GetBucketLocation"], [bucket_arn(raw), bucket_arn(enriched)]),
        allow(
            ["s3:ListBucket"], [bucket_arn(raw), bucket_arn(enriched)], {"StringLike": {"s3:prefix": ["telegram/*"]}}
        ),
        allow(["s3:GetObject"], [bucket_arn(raw, "/telegram/*"), bucket_arn(enriched, "/telegram/*")]),
        allow(["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"], results),
        allow(
            ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            joined(results, "/*"),
        ),
    ]

    assert normalized(policy["PolicyDocument"]["Statement"]) == normalized(expected)


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_analyst_policy_is_attached_to_no_one_and_no_grant_opens_a_bucket_policy(stage, request):
    """The app creates no analyst identity: an administrator attaches the policy to their own roles, groups or
    users. On the Lambda engine it is the stack's only IAM resource (the Athena engine's roles are tested in
    test_athena_compaction.py). Grants leave the buckets' resource policies alone (they only refuse plain HTTP)."""
    stage_app = request.getfixturevalue(stage)
    template = stage_app.template("Presentation")
    policies = resources(template, "AWS::IAM::ManagedPolicy")
    bucket_statements = [
        statement
        for policy in resources(template, "AWS::S3::BucketPolicy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]

    assert list(policies) == [stage_app.logical_id("Presentation", "AnalystPolicy")]
    assert not {"Roles", "Groups", "Users", "ManagedPolicyName"} & next(iter(policies.values()))["Properties"].keys()
    if not stage_app.config.etl_engine_is_athena:
        assert [r["Type"] for r in template["Resources"].values() if r["Type"].startswith("AWS::IAM::")] == [
            "AWS::IAM::ManagedPolicy"
        ]
    assert [s["Principal"] for s in bucket_statements if s["Effect"] == "Allow"] == [
        {"Service": "logging.s3.amazonaws.com"}
    ]


def test_outputs_name_the_workgroup_database_tables_results_bucket_and_analyst_policy(dev, prod, template):
    """And, on the Athena engine only (dev), its state machine and the schedule that starts it."""
    declared = template["Outputs"]
    common = {
        outputs.WORKGROUP_NAME, outputs.DATABASE_NAME, outputs.TABLE_NAME, outputs.RAW_TABLE_NAME,
        outputs.RESULTS_BUCKET_NAME, outputs.ANALYST_POLICY_ARN,
    }

    assert declared.keys() == common | {outputs.COMPACTION_STATE_MACHINE_ARN, outputs.DAILY_SCHEDULE_NAME}
    assert prod.template("Presentation")["Outputs"].keys() == common
    assert declared[outputs.WORKGROUP_NAME]["Value"] == ref(dev.logical_id("Presentation", "Workgroup"))
    assert declared[outputs.DATABASE_NAME]["Value"] == ref(dev.logical_id("Presentation", "Database"))
    assert declared[outputs.TABLE_NAME]["Value"] == "telegram"
    assert declared[outputs.RAW_TABLE_NAME]["Value"] == "telegram_raw"
    assert declared[outputs.RESULTS_BUCKET_NAME]["Value"] == ref(dev.logical_id("Presentation", "ResultsBucket"))
    # Imported by the GitHub deploy role's reads for `tools doctor` (stacks/github.py): kept fixed while in use.
    assert declared[outputs.RESULTS_BUCKET_NAME]["Export"] == {"Name": "TelegramLake-dev-Presentation-ResultsBucketName"}
    assert declared[outputs.ANALYST_POLICY_ARN]["Value"] == ref(dev.logical_id("Presentation", "AnalystPolicy"))
    for command in ("attach-role-policy", "attach-group-policy", "attach-user-policy"):
        assert command in declared[outputs.ANALYST_POLICY_ARN]["Description"]
    assert {dev.stacks["Ingestion"], dev.stacks["Etl"]} <= set(dev.stacks["Presentation"].dependencies)


# cdk.json's dev (Athena engine) with pseudonymized analysts who keep the text.
pseudonymized = stage_fixture("dev", name="pseudonymized", analyst_access="pseudonymized")


def etl_output(config, output_id: str) -> dict:
    return {"Fn::ImportValue": f"{config.stack_name('Etl')}-{output_id}"}


def test_a_full_access_stage_has_neither_a_pseudonymized_table_nor_an_analysts_workgroup(dev, template):
    tables = [table["Properties"]["TableInput"]["Name"] for table in resources(template, "AWS::Glue::Table").values()]

    assert sorted(tables) == ["telegram", "telegram_raw"]
    assert len(resources(template, "AWS::Athena::WorkGroup")) == 1
    assert not {outputs.ANALYST_WORKGROUP_NAME, outputs.PSEUDONYMIZED_TABLE_NAME} & template["Outputs"].keys()


def test_the_pseudonymized_table_has_the_schemas_columns_saying_what_changed_in_its_own_location(pseudonymized):
    from lambdas.etl.pseudonymize import glue_columns, pseudonymized_key

    template = pseudonymized.template("Presentation")
    table = template["Resources"][pseudonymized.logical_id("Presentation", "PseudonymizedTable")]["Properties"]
    table_input = table["TableInput"]
    storage = table_input["StorageDescriptor"]
    enriched = enriched_bucket(pseudonymized.config)
    day = date(2026, 3, 8)
    _, bucket, folder = table_input["Parameters"]["storage.location.template"]["Fn::Join"][1]

    assert table_input["Name"] == "telegram_pseudonymized"
    assert [(c["Name"], c["Type"], c["Comment"]) for c in storage["Columns"]] == [
        (c["name"], c["type"], c["comment"]) for c in glue_columns(keep_text=True)
    ]
    assert [c["Name"] for c in storage["Columns"]] == list(schema.COLUMN_NAMES)
    assert "pseudonym" in storage["Columns"][1]["Comment"] and "names are dropped" in storage["Columns"][3]["Comment"]
    assert storage["Location"] == joined("s3://", enriched, "/telegram_pseudonymized/")
    assert storage["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert bucket == enriched
    assert folder.replace("${context_date}", day.isoformat()) == f"/{pseudonymized_key(day).rpartition('/')[0]}/"
    assert template["Outputs"][outputs.PSEUDONYMIZED_TABLE_NAME]["Value"] == "telegram_pseudonymized"


def test_analysts_have_a_workgroup_of_their_own_with_their_saved_queries_and_results_apart(pseudonymized):
    """Their query history and results are theirs: in the operators' workgroup, ListQueryExecutions and
    GetQueryResults would hand them the answers operators got from the full tables."""
    from analytics import analyst_queries

    template = pseudonymized.template("Presentation")
    workgroups = {w["Properties"]["Name"]: w["Properties"] for w in resources(template, "AWS::Athena::WorkGroup").values()}
    analysts = workgroups["telegram-lake-dev-analysts"]["WorkGroupConfiguration"]
    results = ref(pseudonymized.logical_id("Presentation", "ResultsBucket"))
    analyst_workgroup = ref(pseudonymized.logical_id("Presentation", "AnalystWorkgroup"))
    named = [q["Properties"] for q in resources(template, "AWS::Athena::NamedQuery").values()]

    assert workgroups.keys() == {"telegram-lake-dev", "telegram-lake-dev-analysts"}
    assert analysts["EnforceWorkGroupConfiguration"] is True
    assert analysts["BytesScannedCutoffPerQuery"] == pseudonymized.config.athena_bytes_scanned_cutoff
    assert analysts["ResultConfiguration"]["OutputLocation"] == {"Fn::Join": ["", ["s3://", results, "/analysts/"]]}
    assert [(q["Name"], q["QueryString"]) for q in named if q["WorkGroup"] == analyst_workgroup] == [
        (query.name, query.sql) for query in analyst_queries(pseudonymized.config)
    ]
    assert len([q for q in named if q["WorkGroup"] != analyst_workgroup]) == len(stage_queries(pseudonymized.config))
    assert template["Outputs"][outputs.ANALYST_WORKGROUP_NAME]["Value"] == analyst_workgroup


def test_on_a_pseudonymized_stage_the_analyst_policy_grants_the_pseudonymized_table_and_its_own_results_only(
    pseudonymized,
):
    """Not the raw zone (every identity is in it), not `telegram` (names), not the operators' workgroup or results."""
    template = pseudonymized.template("Presentation")
    policy = template["Resources"][pseudonymized.logical_id("Presentation", "AnalystPolicy")]["Properties"]
    enriched = enriched_bucket(pseudonymized.config)
    database = ref(pseudonymized.logical_id("Presentation", "Database"))
    results = arn(pseudonymized.logical_id("Presentation", "ResultsBucket"))
    workgroup = account_arn("athena", "workgroup/", ref(pseudonymized.logical_id("Presentation", "AnalystWorkgroup")))
    expected = [
        allow(ANALYST_ATHENA_ACTIONS, workgroup),
        analysts_catalog(database, "telegram_pseudonymized"),
        allow(["s3:GetBucketLocation"], [bucket_arn(enriched), results]),
        allow(["s3:ListBucket"], bucket_arn(enriched), {"StringLike": {"s3:prefix": ["telegram_pseudonymized/*"]}}),
        allow(["s3:GetObject"], bucket_arn(enriched, "/telegram_pseudonymized/*")),
        allow(
            ["s3:ListBucket", "s3:ListBucketMultipartUploads"], results,
            {"StringLike": {"s3:prefix": ["analysts/*"]}},
        ),
        allow(
            ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            joined(results, "/analysts/*"),
        ),
    ]

    assert normalized(policy["PolicyDocument"]["Statement"]) == normalized(expected)


def test_on_a_pseudonymized_athena_stage_publish_writes_the_analysts_copy_with_the_imported_key(pseudonymized):
    """The key's ARN comes from the Etl stack's export; publish reads it and writes under its prefix only."""
    template = pseudonymized.template("Presentation")
    function = the_resource(template, "AWS::Lambda::Function")["Properties"]
    key = etl_output(pseudonymized.config, outputs.PSEUDONYM_KEY_ARN)
    statements = [
        statement for policy in resources(template, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]

    assert function["Environment"]["Variables"]["PSEUDONYM_KEY_ARN"] == key
    assert function["Environment"]["Variables"]["PSEUDONYMIZED_TEXT"] == "keep"
    assert normalized([s for s in statements if "secretsmanager" in json.dumps(s)]) == normalized(
        [allow(["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], key)]
    )
    pseudonymized_files = bucket_arn(enriched_bucket(pseudonymized.config), "/telegram_pseudonymized/*")
    assert any(pseudonymized_files in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
               and sorted(s["Action"]) == ["s3:DeleteObject", "s3:PutObject"] for s in statements)

"""The Athena compaction engine: the same rows as the Lambda engine, cell by cell, and a day published whole.

The corpus is the one-flattening test's (tests/test_flatten_sql.py): a synthetic chat over several days with
redeliveries across midnight, and every edge case of the ETL (every update type, poison bodies, keys that name
no update), plus keys that are not paths (`..`, `//`, folder markers, a name longer than a file's). Both engines
compact every day against moto; the local Athena engine runs the very statements the state machine sends to
Athena, on DuckDB. Then the deployed publish step is run on staged files as UNLOAD leaves them: once, twice
(the state machine resends a Lambda step's input after a service error), failing half way, for another folder.
"""

from __future__ import annotations

import io
import json
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from analytics import athena_compaction_templates
from lambdas.common.layout import ATHENA_STAGING_PREFIX, day_prefix, raw_key
from lambdas.etl import athena_engine
from lambdas.etl.compact import PARQUET_CONTENT_TYPE, compact_day
from lambdas.etl.day import enriched_key, rejects_key
from lambdas.etl.handler import EtlSettings
from lambdas.etl.schema import arrow_schema
from tests.test_flatten_sql import DAYS, FIRST_DAY, chat_objects, compact_json, edge_cases, message
from tools.local.athena_engine import compact_day_on_duckdb

DATABASE = "telegram_lake_test"
ZONE = "America/Sao_Paulo"
RAW, BY_LAMBDA, BY_ATHENA = "lake-raw", "enriched-by-lambda", "enriched-by-athena"
EDGE_DAY = FIRST_DAY + timedelta(days=1)
# Keys that are names, not paths: S3 keeps `..` and `//` as they are, and a key ending in `/` is a folder marker.
# A path made of them would leave the local engine's scratch folder, merge `//` into `/`, or be a folder.
NOT_PATHS = {
    f"{day_prefix(EDGE_DAY)}../900001.json": compact_json(message(900001)),
    f"{day_prefix(EDGE_DAY)}../../../../escaped.json": compact_json(message(900002)),
    f"{day_prefix(EDGE_DAY)}/900003.json": compact_json(message(900003)),
    day_prefix(EDGE_DAY): b"",
    f"{day_prefix(EDGE_DAY)}folder/": b"",
}
# A name longer than a file name may be (255 bytes): a key may have 1024. Athena reads it, and rejects it by name.
LONG_NAME = f"{day_prefix(EDGE_DAY)}{'9' * 300}.json"
# Objects Athena's text table never sees, so only the Lambda engine reports them: an empty object has no line,
# and Athena skips hidden files (`_...`) and does not look into sub-folders (`nested/`, `../`, the empty name of
# `//`, a folder marker's).
UNSEEN_BY_ATHENA = {f"{day_prefix(EDGE_DAY)}_3.json", f"{day_prefix(EDGE_DAY)}nested/4.json", *NOT_PATHS}


def settings(enriched: str) -> EtlSettings:
    return EtlSettings(RAW, enriched, ZONE, 4)


def parquet_rows(s3, bucket: str, day: date) -> list[dict[str, Any]]:
    try:
        body = s3.get_object(Bucket=bucket, Key=enriched_key(day))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return []
    return pq.read_table(io.BytesIO(body)).to_pylist()


def rejected_keys(s3, bucket: str, day: date) -> set[str]:
    try:
        report = json.loads(s3.get_object(Bucket=bucket, Key=rejects_key(day))["Body"].read())
    except s3.exceptions.NoSuchKey:
        return set()
    return {entry["key"] for entry in report["objects"]}


@pytest.fixture(scope="module")
def scratch_parent(tmp_path_factory):
    """The folder the local engine's scratch folder is made in (the system's temporary folder, for the module)."""
    folder = tmp_path_factory.mktemp("system-tmp")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(folder))
        yield folder


@pytest.fixture(scope="module")
def both_engines(scratch_parent):
    """Every day of the corpus compacted by each engine; yields the S3 client and both summaries by day."""
    objects = chat_objects() + edge_cases(EDGE_DAY) + [*NOT_PATHS.items(), (LONG_NAME, compact_json(message(900004)))]
    days = [FIRST_DAY + timedelta(days=offset) for offset in range(DAYS + 1)]
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (RAW, BY_LAMBDA, BY_ATHENA):
            s3.create_bucket(Bucket=bucket)
        for key, body in objects:
            s3.put_object(Bucket=RAW, Key=key, Body=body)
        summaries = {}
        for day in days:
            by_lambda = compact_day(s3, raw_bucket=RAW, enriched_bucket=BY_LAMBDA, day=day, concurrency=4).as_dict()
            by_athena = compact_day_on_duckdb(settings(BY_ATHENA), DATABASE, day)
            summaries[day] = (by_lambda, by_athena)
        yield s3, summaries, objects


def test_both_engines_write_the_same_rows_cell_by_cell_and_the_same_file_layout(both_engines):
    s3, summaries, _ = both_engines
    compared = 0
    for day in summaries:
        by_lambda, by_athena = parquet_rows(s3, BY_LAMBDA, day), parquet_rows(s3, BY_ATHENA, day)
        assert by_athena == by_lambda, f"{day} differs"
        compared += len(by_lambda)
        if by_lambda:
            file = pq.ParquetFile(io.BytesIO(s3.get_object(Bucket=BY_ATHENA, Key=enriched_key(day))["Body"].read()))
            assert file.schema_arrow == arrow_schema()
            assert file.metadata.row_group(0).column(0).compression == "ZSTD"
            for bucket in (BY_LAMBDA, BY_ATHENA):
                assert s3.head_object(Bucket=bucket, Key=enriched_key(day))["ContentType"] == PARQUET_CONTENT_TYPE
    assert compared > 400


def test_keys_are_names_not_paths_and_the_local_engine_writes_nothing_outside_its_scratch_folder(
    both_engines, scratch_parent
):
    """`..`, `//` and folder markers are rows of neither engine (the Lambda engine rejects them by name, Athena
    never reads them), a name too long for a file is rejected by both, and no file outlives the runs."""
    s3, summaries, _ = both_engines
    rows = {row["update_id"] for row in parquet_rows(s3, BY_ATHENA, EDGE_DAY)}

    assert not rows & {900001, 900002, 900003, 900004}
    assert set(NOT_PATHS) | {LONG_NAME} <= rejected_keys(s3, BY_LAMBDA, EDGE_DAY)
    assert LONG_NAME in rejected_keys(s3, BY_ATHENA, EDGE_DAY)
    assert list(scratch_parent.iterdir()) == []


def test_both_engines_count_and_report_the_same_objects(both_engines):
    s3, summaries, objects = both_engines
    for day, (by_lambda, by_athena) in summaries.items():
        unseen = {key for key in UNSEEN_BY_ATHENA if key.startswith(day_prefix(day))}
        empty = {key for key, body in objects if not body and key.startswith(day_prefix(day))}
        assert rejected_keys(s3, BY_LAMBDA, day) - rejected_keys(s3, BY_ATHENA, day) == unseen | empty
        assert rejected_keys(s3, BY_ATHENA, day) <= rejected_keys(s3, BY_LAMBDA, day)
        for count in ("rows_written", "duplicates", "skipped"):
            assert by_athena[count] == by_lambda[count], (day, count)
        assert by_athena["rejected"] == by_lambda["rejected"] - len(unseen | empty)
        # Objects neither engine reads: the empty ones (refused from the Lambda engine's listing by their size, so
        # they claim no update_id: Athena never sees them), and the hidden and nested keys (refused by their names).
        assert by_athena["objects_read"] == by_lambda["objects_read"]
        assert (by_athena["output_key"] is None) == (by_lambda["output_key"] is None)
    assert any(by_lambda["duplicates"] for by_lambda, _ in summaries.values())  # redeliveries across midnight


def test_a_rerun_replaces_the_day_with_the_same_rows(both_engines):
    s3, _, _ = both_engines
    day = FIRST_DAY + timedelta(days=2)
    before = parquet_rows(s3, BY_ATHENA, day)

    assert compact_day_on_duckdb(settings(BY_ATHENA), DATABASE, day)["rows_written"] == len(before)
    assert parquet_rows(s3, BY_ATHENA, day) == before
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=BY_ATHENA, Prefix=day_prefix(day))["Contents"]}
    assert enriched_key(day) in keys and keys <= {enriched_key(day), rejects_key(day)}  # one file, not a second


# ---- the deployed steps: plan, and publish of what UNLOAD leaves in the staging folder


def test_plan_names_the_day_a_fresh_staging_folder_and_unloads_the_rows_as_zstd_parquet():
    templates = athena_compaction_templates(DATABASE)
    first = athena_engine.plan({"date": "2026-11-21"}, templates, settings(BY_ATHENA))
    second = athena_engine.plan({"date": "2026-11-21"}, templates, settings(BY_ATHENA))

    assert first["day"] == "2026-11-21" and first["run"] != second["run"]
    assert first["staging_url"] == f"s3://{BY_ATHENA}/{ATHENA_STAGING_PREFIX}2026-11-21/{first['run']}/"
    assert first["unload"] == (
        f"UNLOAD (\n{first['rows']}\n) TO '{first['staging_url']}' WITH (format = 'PARQUET', compression = 'ZSTD')"
    )
    assert "DATE '2026-11-21'" in first["rows"] and "{{day}}" not in first["rows"] + first["report"]


def test_plan_takes_the_lambda_engines_events_and_refuses_what_it_refuses():
    templates = athena_compaction_templates(DATABASE)
    scheduled = athena_engine.plan({"scheduled_time": "2026-11-21T04:00:00Z"}, templates, settings(BY_ATHENA))
    assert scheduled["day"] == "2026-11-20"  # the day before the scheduled instant's date in the stage's zone
    with pytest.raises(ValueError, match="before the stage's analytics_start_date"):
        athena_engine.plan({"date": "2026-11-21"}, templates, EtlSettings(RAW, BY_ATHENA, ZONE, 4, date(2026, 11, 22)))
    with pytest.raises(ValueError, match="without \\{\\{day\\}\\}"):
        athena_engine.plan({"date": "2026-11-21"}, {"rows": "SELECT 1", "report": "SELECT 1"}, settings(BY_ATHENA))


class FakeAthena:
    """GetQueryResults of a finished report query, in pages, as Athena answers it (text values)."""

    def __init__(self, rows: list[list[str | None]]):
        header = ["outcome", "carries_message", "rejected_path", "reason", "objects"]
        pages = [[header, *rows[:2]], rows[2:]]
        self.pages = [{"ResultSet": {"Rows": [{"Data": [{} if value is None else {"VarCharValue": value}
                                                          for value in row]} for row in page]}} for page in pages]

    def get_paginator(self, name: str):
        assert name == "get_query_results"
        return self

    def paginate(self, QueryExecutionId: str):
        assert QueryExecutionId == "report-1"
        return iter(self.pages)


def test_publish_makes_the_staged_files_one_day_file_and_cleans_the_staging_folder(monkeypatch, capsys):
    day = date(2026, 11, 21)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "TelegramLake/test")
    rows = [athena_row(update_id) for update_id in (5, 6, 7)]
    report = [
        ["update", "true", None, None, "3"], ["update", "false", None, None, "2"], ["duplicate", "false", None, None, "1"],
        ["rejected", None, f"s3://{RAW}/{raw_key(day, 9)}", "not valid JSON", "1"],
        ["rejected", None, f"s3://{RAW}/{day_prefix(day)}notes.txt", athena_engine.KEY_REJECT_REASON, "1"],
    ]
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BY_ATHENA)
        s3.put_object(Bucket=BY_ATHENA, Key=enriched_key(day), Body=b"yesterday's run")
        run = athena_engine.plan({"date": day.isoformat()}, athena_compaction_templates(DATABASE), settings(BY_ATHENA))
        staging = run["staging_url"].removeprefix(f"s3://{BY_ATHENA}/")
        for name, part in (("b-part", rows[2:]), ("a-part", rows[:2])):  # UNLOAD's file names, in any order
            buffer = io.BytesIO()
            pq.write_table(pa.Table.from_pylist(part, schema=nullable(arrow_schema())), buffer, compression="zstd")
            s3.put_object(Bucket=BY_ATHENA, Key=f"{staging}{name}", Body=buffer.getvalue())
        monkeypatch.setattr(boto3, "client", lambda service, **_: FakeAthena(report) if service == "athena" else s3)

        summary = athena_engine.publish(run, "report-1", settings(BY_ATHENA))

        assert [row["update_id"] for row in parquet_rows(s3, BY_ATHENA, day)] == [5, 6, 7]
        assert s3.list_objects_v2(Bucket=BY_ATHENA, Prefix=ATHENA_STAGING_PREFIX)["KeyCount"] == 0
        assert rejected_keys(s3, BY_ATHENA, day) == {raw_key(day, 9), f"{day_prefix(day)}notes.txt"}
    assert {key: summary[key] for key in ("rows_written", "objects_read", "duplicates", "skipped", "rejected")} == {
        "rows_written": 3, "objects_read": 6, "duplicates": 1, "skipped": 2, "rejected": 2,
    }
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert [(document["RowsWritten"], document["day"]) for document in emf] == [([3.0], day.isoformat())]


def test_publish_refuses_a_staging_folder_outside_its_prefix():
    run = {"day": "2026-11-21", "staging_url": f"s3://{BY_ATHENA}/telegram/context_date=2026-11-21/"}
    with pytest.raises(ValueError, match="staging folder"):
        athena_engine.publish(run, "report-1", settings(BY_ATHENA))


def athena_row(update_id: int) -> dict[str, Any]:
    return {name: None for name in arrow_schema().names} | {"update_id": update_id, "text": f"row {update_id}"}


def nullable(schema: pa.Schema) -> pa.Schema:
    """What UNLOAD writes: every column nullable."""
    return pa.schema([field.with_nullable(True) for field in schema])


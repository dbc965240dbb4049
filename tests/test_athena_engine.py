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
from datetime import date, timedelta
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from analytics import athena_compaction_templates
from lambdas.common.layout import ATHENA_STAGING_PREFIX, day_prefix, raw_key
from lambdas.etl import athena_engine
from lambdas.etl.compact import compact_day
from lambdas.etl.day import enriched_key, rejects_key
from lambdas.etl.handler import EtlSettings
from lambdas.etl.schema import arrow_schema
from tests.test_flatten_sql import DAYS, FIRST_DAY, chat_objects, compact_json, edge_cases, message
from tools.local.athena_engine import compact_day_on_duckdb

DATABASE = "telegram_lake_test"
ZONE = "America/Sao_Paulo"
RAW, BY_LAMBDA, BY_ATHENA = "lake-raw", "enriched-by-lambda", "enriched-by-athena"
PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"  # the day's file's ContentType, as IANA registers Parquet
EDGE_DAY = FIRST_DAY + timedelta(days=1)
# Keys that are names, not paths: S3 keeps `..` and `//` as they are, and a key ending in `/` is a folder marker.
# A path made of them would leave the local engine's scratch folder (`../../../../` from a day's folder under
# `<scratch>/raw/telegram/` lands beside it), merge `//` into `/`, or be a folder.
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
                assert s3.head_object(Bucket=bucket, Key=enriched_key(day))["ContentType"] == PARQUET_MEDIA_TYPE
    assert compared > 400


def test_keys_are_names_not_paths_and_the_local_engine_writes_nothing_outside_its_scratch_folder(
    both_engines, scratch_parent
):
    """`..`, `//` and folder markers are rows of neither engine (the Lambda engine rejects them by name, Athena
    never reads them), a name too long for a file is rejected by both, and no file outlives the runs."""
    s3, _, _ = both_engines
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


DAY = date(2026, 11, 21)
# The report of a day of 3 rows (5, 6, 7), staged by UNLOAD as two files, with 2 skipped updates, 1 duplicate and
# 2 rejected objects.
REPORT = [
    ["update", "true", None, None, "3"], ["update", "false", None, None, "2"], ["duplicate", "false", None, None, "1"],
    ["rejected", None, f"s3://{RAW}/{raw_key(DAY, 9)}", "not valid JSON", "1"],
    ["rejected", None, f"s3://{RAW}/{day_prefix(DAY)}notes.txt", athena_engine.KEY_REJECT_REASON, "1"],
]
STAGED = {"b-part": [7], "a-part": [5, 6]}  # UNLOAD's file names, in any order
PREVIOUS = {enriched_key(DAY): b"yesterday's run", rejects_key(DAY): b"yesterday's rejects"}


@pytest.fixture
def lake(monkeypatch):
    """The enriched bucket with the day as an earlier run left it; yields the S3 client and a staging function:
    a planned run of the day with UNLOAD's files in its staging folder and Athena answering its report."""
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "TelegramLake/test")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BY_ATHENA)
        for key, body in PREVIOUS.items():
            s3.put_object(Bucket=BY_ATHENA, Key=key, Body=body)

        def stage(report: list[list[str | None]], files: dict[str, list[int]]) -> dict[str, Any]:
            templates = athena_compaction_templates(DATABASE)
            run = athena_engine.plan({"date": DAY.isoformat()}, templates, settings(BY_ATHENA))
            staging = run["staging_url"].removeprefix(f"s3://{BY_ATHENA}/")
            for name, update_ids in files.items():
                buffer = io.BytesIO()
                part = [athena_row(update_id) for update_id in update_ids]
                pq.write_table(pa.Table.from_pylist(part, schema=nullable(arrow_schema())), buffer, compression="zstd")
                s3.put_object(Bucket=BY_ATHENA, Key=f"{staging}{name}", Body=buffer.getvalue())
            monkeypatch.setattr(boto3, "client", lambda service, **_: FakeAthena(report) if service == "athena" else s3)
            return run

        yield s3, stage


def staged_keys(s3, run: dict[str, Any]) -> list[str]:
    listed = s3.list_objects_v2(Bucket=BY_ATHENA, Prefix=run["staging_url"].removeprefix(f"s3://{BY_ATHENA}/"))
    return sorted(item["Key"].rpartition("/")[2] for item in listed.get("Contents", []))


def day_objects(s3) -> dict[str, bytes]:
    return {key: s3.get_object(Bucket=BY_ATHENA, Key=key)["Body"].read() for key in PREVIOUS}


def emf_documents(capsys) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]


def test_publish_makes_the_staged_files_one_day_file_and_leaves_only_its_summary_in_the_staging_folder(lake, capsys):
    s3, stage = lake
    run = stage(REPORT, STAGED)

    summary = athena_engine.publish(run, "report-1", settings(BY_ATHENA))

    assert [row["update_id"] for row in parquet_rows(s3, BY_ATHENA, DAY)] == [5, 6, 7]
    assert s3.head_object(Bucket=BY_ATHENA, Key=enriched_key(DAY))["ContentType"] == PARQUET_MEDIA_TYPE
    assert rejected_keys(s3, BY_ATHENA, DAY) == {raw_key(DAY, 9), f"{day_prefix(DAY)}notes.txt"}
    assert {key: summary[key] for key in ("rows_written", "objects_read", "duplicates", "skipped", "rejected")} == {
        "rows_written": 3, "objects_read": 6, "duplicates": 1, "skipped": 2, "rejected": 2,
    }
    assert staged_keys(s3, run) == [athena_engine.PUBLISHED_NAME]
    assert [(document["RowsWritten"], document["day"]) for document in emf_documents(capsys)] == [
        ([3.0], DAY.isoformat())
    ]


def test_a_repeated_publish_returns_the_same_summary_and_changes_nothing(lake, capsys):
    """The state machine resends a Lambda step's input after a Lambda service error: the repeat finds its staged
    files gone, and must neither delete the day nor count it twice in the metrics."""
    s3, stage = lake
    run = stage(REPORT, STAGED)
    first = athena_engine.publish(run, "report-1", settings(BY_ATHENA))
    published, _ = day_objects(s3), emf_documents(capsys)

    assert athena_engine.publish(run, "report-1", settings(BY_ATHENA)) == first
    assert day_objects(s3) == published
    assert emf_documents(capsys) == []


@pytest.mark.parametrize("removed", [["a-part", "b-part", athena_engine.PUBLISHED_NAME], ["b-part"]])
def test_publish_never_publishes_fewer_rows_than_the_report_counts(lake, capsys, removed):
    """Staged files gone (expired, or removed by a publish whose summary has expired too), or some of them: the
    day is left as it was, and the run fails."""
    s3, stage = lake
    run = stage(REPORT, STAGED)
    for name in removed:
        s3.delete_object(Bucket=BY_ATHENA, Key=f"{run['staging_url'].removeprefix(f's3://{BY_ATHENA}/')}{name}")
    held = 3 - sum(len(STAGED.get(name, [])) for name in removed)

    with pytest.raises(RuntimeError, match=f"report counts 3 rows, its staged files hold {held}"):
        athena_engine.publish(run, "report-1", settings(BY_ATHENA))
    assert day_objects(s3) == PREVIOUS
    assert emf_documents(capsys) == []


class UnreadableSecondFile:
    """The second staged file, in the order publish merges them, fails: its download, or its rows' reading (a
    damaged page behind an intact footer, so the failure comes while the day's file is being written)."""

    @staticmethod
    def download(s3, monkeypatch, run) -> None:
        download, calls = s3.download_file, []

        def failing_second(bucket: str, key: str, filename: str) -> None:
            calls.append(key)
            if len(calls) == 2:
                raise ClientError({"Error": {"Code": "SlowDown", "Message": "Reduce your request rate."}}, "GetObject")
            download(bucket, key, filename)

        monkeypatch.setattr(s3, "download_file", failing_second)
        monkeypatch.setattr(athena_engine, "s3_client", lambda concurrency: s3)

    @staticmethod
    def read(s3, monkeypatch, run) -> None:
        key = f"{run['staging_url'].removeprefix(f's3://{BY_ATHENA}/')}b-part"
        damaged = bytearray(s3.get_object(Bucket=BY_ATHENA, Key=key)["Body"].read())
        damaged[4:40] = bytes(byte ^ 0xFF for byte in damaged[4:40])  # the first page's header, after `PAR1`
        assert pq.ParquetFile(io.BytesIO(bytes(damaged))).metadata.num_rows == 1
        s3.put_object(Bucket=BY_ATHENA, Key=key, Body=bytes(damaged))


@pytest.mark.parametrize("failure, error", [
    (UnreadableSecondFile.download, ClientError), (UnreadableSecondFile.read, OSError),
])
def test_publish_failing_on_its_second_staged_file_leaves_the_day_as_it_was_and_raises(
    lake, capsys, monkeypatch, failure, error
):
    s3, stage = lake
    run = stage(REPORT, STAGED)
    failure(s3, monkeypatch, run)

    with pytest.raises(error):
        athena_engine.publish(run, "report-1", settings(BY_ATHENA))
    assert day_objects(s3) == PREVIOUS
    assert staged_keys(s3, run) == ["a-part", "b-part"]  # nothing removed, no summary: a retry plans anew
    assert emf_documents(capsys) == []


def test_publish_of_a_day_without_raw_objects_keeps_its_file(lake, capsys):
    """A backfill after the raw zone expired: Athena reads no object, UNLOAD stages nothing, the report is empty."""
    s3, stage = lake
    run = stage([], {})

    summary = athena_engine.publish(run, "report-1", settings(BY_ATHENA))

    assert day_objects(s3) == PREVIOUS
    assert (summary["objects_read"], summary["rows_written"], summary["output_key"]) == (0, 0, None)
    assert [document["RowsWritten"] for document in emf_documents(capsys)] == [[0.0]]


def test_the_local_engine_keeps_a_day_without_raw_objects(both_engines):
    """The same backfill on the local engine: no object on the day but some the day before (the statements run,
    the report is empty), and none on either day."""
    s3, _, _ = both_engines
    for day in (FIRST_DAY + timedelta(days=DAYS + 1), FIRST_DAY + timedelta(days=DAYS + 3)):
        s3.put_object(Bucket=BY_ATHENA, Key=enriched_key(day), Body=b"compacted while the raw day existed")

        summary = compact_day_on_duckdb(settings(BY_ATHENA), DATABASE, day)

        assert s3.get_object(Bucket=BY_ATHENA, Key=enriched_key(day))["Body"].read() == (
            b"compacted while the raw day existed"
        )
        assert (summary["objects_read"], summary["rows_written"]) == (0, 0)
    assert s3.list_objects_v2(Bucket=RAW, Prefix=day_prefix(FIRST_DAY + timedelta(days=DAYS)))["KeyCount"]


@pytest.mark.parametrize("hand_made", [
    pytest.param(lambda run: {"staging_url": f"s3://{BY_ATHENA}/{ATHENA_STAGING_PREFIX}"}, id="every-run"),
    pytest.param(lambda run: {"staging_url": f"s3://{BY_ATHENA}/{ATHENA_STAGING_PREFIX}{run['day']}/"}, id="day"),
    pytest.param(lambda run: {"staging_url": run["staging_url"].replace(run["day"], "2026-11-20")}, id="other-day"),
    pytest.param(lambda run: {"staging_url": run["staging_url"].replace(run["run"][-12:], "0" * 12)}, id="other-run"),
    pytest.param(lambda run: {"staging_url": f"{run['staging_url']}part/"}, id="sub-folder"),
    pytest.param(lambda run: {"staging_url": run["staging_url"].replace(BY_ATHENA, BY_LAMBDA)}, id="other-bucket"),
    pytest.param(
        lambda run: {"staging_url": f"s3://{BY_ATHENA}/telegram/context_date={run['day']}/"}, id="outside-staging"
    ),
    pytest.param(lambda run: {"day": "2026-11-20"}, id="day-of-another-folder"),
    pytest.param(
        lambda run: {"run": "../2026-11-20", "staging_url": f"s3://{BY_ATHENA}/{ATHENA_STAGING_PREFIX}2026-11-20/"},
        id="run-id-as-a-path",
    ),
    pytest.param(lambda run: {"day": "20261121"}, id="day-not-iso"),
    pytest.param(lambda run: {"run": None}, id="no-run-id"),
])
def test_publish_merges_only_the_runs_own_staging_folder_into_the_runs_day(lake, hand_made):
    s3, stage = lake
    run = stage(REPORT, STAGED)

    with pytest.raises(ValueError, match="run's (staging folder|id|day)"):
        athena_engine.publish({**run, **hand_made(run)}, "report-1", settings(BY_ATHENA))
    assert day_objects(s3) == PREVIOUS
    assert staged_keys(s3, run) == ["a-part", "b-part"]


def athena_row(update_id: int) -> dict[str, Any]:
    return {name: None for name in arrow_schema().names} | {"update_id": update_id, "text": f"row {update_id}"}


def nullable(schema: pa.Schema) -> pa.Schema:
    """What UNLOAD writes: every column nullable."""
    return pa.schema([field.with_nullable(True) for field in schema])


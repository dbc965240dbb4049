"""`python -m tools query`: Athena's start/poll/read flow on moto, and `--local` over a folder and over S3."""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import boto3
import pytest
import requests
from moto import mock_aws
from moto.athena.models import athena_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_api import state_manager
from moto.server import ThreadedMotoServer

import tools.__main__
import tools.operate.query
from analytics import load_queries, load_query
from stacks.config import load_from_cdk_json
from tests.analytics_dataset import Scenario, generate, write_lake
from tools.cli import CommandError
from tools.local.sql import DayWindow, run_local
from tools.operate.query import FIRST_POLL_SECONDS, run_athena

CONFIG = load_from_cdk_json("dev")
REGION = "us-east-1"
ATHENA_EXECUTION = "athena::execution"
RESULTS_API = "http://motoapi.amazonaws.com/moto-api/static/athena/query-results"


def query_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Through the real `python -m tools` entry point."""
    code = tools.__main__.main(["query", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def athena():
    with mock_aws():
        client = boto3.client("athena", region_name=REGION)
        client.create_work_group(Name=CONFIG.athena_workgroup)
        yield client
    state_manager.unset_transition(ATHENA_EXECUTION)


def _executions() -> list:
    return list(athena_backends[DEFAULT_ACCOUNT_ID][REGION].executions.values())


def _register_results(columns: list[tuple[str, str]], rows: list[list[str | None]]) -> None:
    """Queue what moto's Athena answers next; like Athena, the first row repeats the column labels."""
    header = {"Data": [{"VarCharValue": name} for name, _ in columns]}
    data = [{"Data": [{} if value is None else {"VarCharValue": value} for value in row]} for row in rows]
    column_info = [{"Name": name, "Type": kind} for name, kind in columns]
    response = requests.post(
        RESULTS_API, json={"region": REGION, "results": [{"rows": [header, *data], "column_info": column_info}]}
    )
    assert response.status_code == 201


# --- Athena -----------------------------------------------------------------------------------------------


def test_athena_run_sends_the_saved_sql_to_the_stage_workgroup_and_polls_with_backoff(athena):
    state_manager.set_transition(ATHENA_EXECUTION, {"progression": "manual", "times": 2})  # 2 polls per state
    query = load_query("daily_message_count", CONFIG.timezone, CONFIG.glue_database)
    sleeps: list[float] = []

    answer = run_athena(query, CONFIG, client=athena, sleep=sleeps.append)

    [execution] = _executions()
    assert execution.query == query.sql
    assert execution.workgroup.name == CONFIG.athena_workgroup
    assert execution.context == {"Database": CONFIG.glue_database}
    assert sleeps == [FIRST_POLL_SECONDS, 2 * FIRST_POLL_SECONDS, 4 * FIRST_POLL_SECONDS]  # QUEUED, RUNNING x2
    assert answer.execution_id == execution.id and answer.rows == []


def test_athena_results_are_printed_typed_with_the_bytes_scanned(athena, capsys):
    _register_results(
        [("context_date", "date"), ("message_amount", "bigint")],
        [["2026-11-27", "42"], ["2026-11-26", "7"]],
    )
    code, out, err = query_cli(capsys, "daily_message_count", "--format", "json")
    assert code == 0
    assert json.loads(out) == [
        {"context_date": "2026-11-27", "message_amount": 42},
        {"context_date": "2026-11-26", "message_amount": 7},
    ]
    assert "2 rows, 0 B scanned" in err and CONFIG.athena_workgroup in err


def test_athena_results_as_a_table_show_nulls(athena, capsys):
    _register_results([("command", "varchar"), ("uses", "bigint")], [["/start", "12"], [None, "3"]])
    code, out, _ = query_cli(capsys, "top_commands")
    assert code == 0
    assert out.splitlines() == ["command  uses", "-------  ----", "/start     12", "NULL        3"]


HOSTILE_TEXT = "[/r/python] \x1b[2J\x1b]0;owned\x07\u202egnp.exe\nline"  # markup, escapes, bidi, a line break


@pytest.mark.parametrize(("output_format", "shown"), [
    ("table", "[/r/python] \\u001b[2J\\u001b]0;owned\\u0007\\u202egnp.exe\\nline           12"),
    ("json", '    "question": "[/r/python] \\u001b[2J\\u001b]0;owned\\u0007\\u202egnp.exe\\nline",'),
])
def test_text_in_results_is_printed_as_plain_text(athena, capsys, output_format, shown):
    """A result's text is what users wrote: in a table or JSON nothing of it acts on the terminal, and the JSON
    still reads back as the exact text."""
    _register_results([("question", "varchar"), ("times_asked", "bigint")], [[HOSTILE_TEXT, "12"]])
    code, out, _ = query_cli(capsys, "top_questions", "--format", output_format)
    assert code == 0
    assert shown in out.splitlines()
    assert not set(out) & set("\x1b\x07\u202e")
    if output_format == "json":
        assert json.loads(out) == [{"question": HOSTILE_TEXT, "times_asked": 12}]


def test_a_failed_athena_query_exits_non_zero_with_athena_reason(athena, capsys, monkeypatch):
    reason = "COLUMN_NOT_FOUND: line 3:5: Column 'nope' cannot be resolved"

    def fail(parsed, **_):
        parsed["QueryExecution"]["Status"].update(State="FAILED", StateChangeReason=reason)

    session = boto3.session.Session(region_name=REGION)
    session.events.register("after-call.athena.GetQueryExecution", fail)
    monkeypatch.setattr(tools.operate.query, "aws_session", lambda config: session)

    code, out, err = query_cli(capsys, "daily_active_users")
    assert code == 1 and out == ""
    assert "FAILED" in err and reason in err


def test_an_athena_query_still_running_at_the_timeout_is_cancelled(athena):
    state_manager.set_transition(ATHENA_EXECUTION, {"progression": "manual", "times": 1000})
    with pytest.raises(CommandError, match="still QUEUED after 0 s: cancelled it"):
        run_athena(load_query("top_questions", CONFIG.timezone, CONFIG.glue_database), CONFIG, client=athena, timeout=0, sleep=lambda _: None)
    [execution] = _executions()
    assert execution.status == "CANCELLED"


def test_an_unknown_query_name_lists_the_saved_ones(capsys):
    code, _, err = query_cli(capsys, "busiest_hour")
    assert code == 1 and "no saved query 'busiest_hour'" in err and "daily_message_count" in err


@pytest.mark.parametrize("timeout", ["nan", "inf", "-inf", "-1", "0", "soon"])
def test_a_timeout_that_could_never_cancel_is_refused(timeout, capsys):
    with pytest.raises(SystemExit) as refused:
        tools.__main__.main(["query", "daily_message_count", f"--timeout={timeout}"])
    assert refused.value.code == 2
    assert f"--timeout: must be a positive, finite number of seconds, got {timeout!r}" in capsys.readouterr().err


def test_no_query_name_is_an_error(capsys):
    code, _, err = query_cli(capsys)
    assert code == 1 and "--list" in err


def test_list_shows_every_saved_query_with_its_question(capsys):
    code, out, _ = query_cli(capsys, "--list", "--format", "csv")
    listed = [(row["name"], row["question"]) for row in csv.DictReader(io.StringIO(out))]
    assert code == 0
    assert listed == [(query.name, query.question) for query in load_queries(CONFIG.timezone, CONFIG.glue_database)]
    assert ("daily_message_count", "How many messages do users send per day?") in listed


# --- --local ----------------------------------------------------------------------------------------------


TODAY_UTC = datetime.now(timezone.utc).date()


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    """Nine recent days: inside the stage's window (analytics_start_date to today in UTC)."""
    first_day = TODAY_UTC - timedelta(days=12)
    return write_lake(generate(Scenario(CONFIG.timezone, first_day)), tmp_path_factory.mktemp("enriched"))


def copy_of(lake: Path, destination: Path) -> Path:
    """A lake a test may change: the module's one, copied."""
    return Path(shutil.copytree(lake, destination))


def add_day(lake: Path, folder_name: str) -> None:
    """Another partition folder (`context_date=...`) holding a copy of one of the lake's days."""
    source = next((lake / "telegram").glob("context_date=*/*.parquet"))
    target = lake / "telegram" / folder_name / source.name
    target.parent.mkdir()
    shutil.copyfile(source, target)


def one_day_file(lake: Path) -> Path:
    return sorted((lake / "telegram").glob("context_date=*/*.parquet"))[0]


def corrupt_data_pages(path: Path) -> None:
    """Garbage where the column chunks are, the footer intact: DuckDB opens the file and fails reading it."""
    data = path.read_bytes()
    footer_length = int.from_bytes(data[-8:-4], "little")
    data_end = len(data) - 8 - footer_length
    path.write_bytes(data[:4] + b"\xa5" * (data_end - 4) + data[data_end:])


def _json_values(row: tuple) -> list:
    return [value.isoformat() if isinstance(value, date) else value for value in row]


def test_local_json_is_the_duckdb_answer(lake, capsys):
    columns, rows = run_local(load_query("top_questions", CONFIG.timezone, CONFIG.glue_database), str(lake))
    code, out, err = query_cli(capsys, "top_questions", "--local", str(lake), "--format", "json")
    assert code == 0 and rows
    assert json.loads(out) == [dict(zip(columns, _json_values(row))) for row in rows]
    assert f"{len(rows)} rows from DuckDB" in err


def test_local_csv_is_the_duckdb_answer(lake, capsys):
    columns, rows = run_local(load_query("repeated_questions", CONFIG.timezone, CONFIG.glue_database), str(lake))
    code, out, _ = query_cli(capsys, "repeated_questions", "--local", str(lake), "--format", "csv")
    assert code == 0 and rows
    assert list(csv.reader(io.StringIO(out))) == [columns, *([str(value) for value in row] for row in rows)]


def test_the_local_window_is_the_stage_start_to_tomorrow_in_utc():
    """NOW+1DAYS, as both tables' projection: a zone east of UTC may already be in tomorrow's UTC date."""
    late_evening_in_sao_paulo = datetime(2026, 12, 3, 22, 0, tzinfo=ZoneInfo("America/Sao_Paulo"))  # 01:00Z Dec 4
    window = DayWindow.for_stage(CONFIG, now=late_evening_in_sao_paulo)
    assert window == DayWindow(date.fromisoformat(CONFIG.analytics_start_date), date(2026, 12, 5))


def test_local_reads_only_the_days_athena_shows_and_says_how_many_it_left_out(lake, tmp_path, capsys):
    start = date.fromisoformat(CONFIG.analytics_start_date)
    widened = copy_of(lake, tmp_path / "lake")
    for outside in (start - timedelta(days=1), TODAY_UTC + timedelta(days=2)):  # the day after the window
        add_day(widened, f"context_date={outside.isoformat()}")
    for never_projected in (start.strftime("%Y%m%d"), "2026-02-30"):  # not a yyyy-MM-dd day
        add_day(widened, f"context_date={never_projected}")
    for inside in (start, TODAY_UTC + timedelta(days=1)):  # the window's first and last days
        add_day(widened, f"context_date={inside.isoformat()}")

    _, expected, _ = query_cli(capsys, "daily_message_count", "--local", str(lake), "--format", "json")
    code, out, err = query_cli(capsys, "daily_message_count", "--local", str(widened), "--format", "json")

    days = sorted(row["context_date"] for row in json.loads(out))
    last = TODAY_UTC + timedelta(days=1)
    in_window = [start.isoformat(), *(row["context_date"] for row in json.loads(expected)), last.isoformat()]
    assert code == 0 and days == sorted(in_window)
    assert err.splitlines()[-1] == (
        f"days outside stage dev's window {start.isoformat()} to {last.isoformat()}, not read "
        "(Athena's partition projection does not show them either): 4"
    )


def test_local_over_days_all_outside_the_window_is_a_clear_error(lake, tmp_path, capsys):
    only_old = tmp_path / "old"
    (only_old / "telegram" / "context_date=2025-12-31").mkdir(parents=True)
    shutil.copyfile(one_day_file(lake), only_old / "telegram" / "context_date=2025-12-31" / "telegram.parquet")
    code, out, err = query_cli(capsys, "daily_message_count", "--local", str(only_old))
    assert (code, out) == (1, "")
    assert err == (
        f"error: no enriched Parquet or raw objects in {only_old}/telegram (expected context_date=YYYY-MM-DD/ "
        f"folders); days outside 2026-01-01 to {(TODAY_UTC + timedelta(days=1)).isoformat()}, not read: 1\n"
    )


def test_local_over_a_file_that_is_not_parquet_is_a_one_line_error_naming_it(lake, tmp_path, capsys):
    broken = one_day_file(copy_of(lake, tmp_path / "lake"))
    broken.write_bytes(b"not parquet at all")
    code, out, err = query_cli(capsys, "daily_message_count", "--local", str(tmp_path / "lake"))
    assert (code, out) == (1, "")
    assert err.startswith(f"error: cannot open the Parquet in {tmp_path / 'lake' / 'telegram'}: ")
    assert str(broken) in err and len(err.splitlines()) == 1


def test_local_over_a_file_with_corrupt_data_is_a_one_line_error_naming_it(lake, tmp_path, capsys):
    broken = one_day_file(copy_of(lake, tmp_path / "lake"))
    corrupt_data_pages(broken)
    code, out, err = query_cli(capsys, "daily_message_count", "--local", str(tmp_path / "lake"))
    assert (code, out) == (1, "")
    assert err.startswith("error: query daily_message_count failed on DuckDB: ")
    assert str(broken) in err and len(err.splitlines()) == 1


def test_local_table_aligns_text_left_and_numbers_right(lake, capsys):
    columns, rows = run_local(load_query("top_commands", CONFIG.timezone, CONFIG.glue_database), str(lake))
    code, out, _ = query_cli(capsys, "top_commands", "--local", str(lake))
    header, rule, *lines = out.splitlines()
    assert code == 0 and header.split() == columns == ["command", "uses", "users"]
    assert [line.split() for line in lines] == [[str(value) for value in row] for row in rows]
    command_width, uses_width, _ = (len(dashes) for dashes in rule.split())
    for line, (command, uses, _) in zip(lines, rows):
        assert line[:command_width] == command.ljust(command_width)
        assert line[command_width + 2 : command_width + 2 + uses_width] == str(uses).rjust(uses_width)


@pytest.fixture(scope="module")
def s3_endpoint(lake):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
    s3.create_bucket(Bucket="enriched")
    for path in lake.rglob("*.parquet"):
        s3.upload_file(str(path), "enriched", path.relative_to(lake).as_posix())
    s3.put_object(Bucket="enriched", Key="telegram/context_date=2026-11-20/_rejects.json", Body=b"[]")
    yield endpoint
    server.stop()


@pytest.mark.parametrize("url", ["s3://enriched", "s3://enriched/telegram/"])
def test_local_over_s3_answers_as_over_the_folder(lake, s3_endpoint, url, capsys, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    _, from_folder, _ = query_cli(capsys, "daily_active_users", "--local", str(lake), "--format", "json")
    code, from_s3, _ = query_cli(capsys, "daily_active_users", "--local", url, "--format", "json")
    assert code == 0 and json.loads(from_s3) == json.loads(from_folder) != []


def test_local_over_a_missing_bucket_is_a_clear_error(s3_endpoint, capsys, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    code, _, err = query_cli(capsys, "daily_active_users", "--local", "s3://no-such-bucket")
    assert code == 1 and "cannot read s3://no-such-bucket" in err and "NoSuchBucket" in err


def test_local_over_s3_names_a_corrupt_object_by_its_url(s3_endpoint, capsys, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket="corrupt")
    key = f"telegram/context_date={TODAY_UTC.isoformat()}/telegram.parquet"
    s3.put_object(Bucket="corrupt", Key=key, Body=b"not parquet at all")
    code, _, err = query_cli(capsys, "daily_message_count", "--local", "s3://corrupt")
    assert code == 1 and len(err.splitlines()) == 1
    assert err.startswith("error: cannot open the Parquet in s3://corrupt/telegram: ") and f"s3://corrupt/{key}" in err


@pytest.mark.parametrize(
    ("bucket", "prefix", "key"),
    [
        ("parent", "", "../escaped/context_date=2026-11-20/telegram.parquet"),
        ("deep", "", "telegram/context_date=2026-11-20/../../../escaped/context_date=2026-11-20/x.parquet"),
        ("absolute", "/telegram", "telegram/{root}/escaped/context_date=2026-11-20/telegram.parquet"),  # "//" in it
    ],
)
def test_local_over_s3_refuses_a_key_that_leads_outside_its_scratch_folder(
    lake, s3_endpoint, tmp_path, bucket, prefix, key, capsys, monkeypatch
):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "scratch"))  # where the scratch folder is made
    (tmp_path / "scratch").mkdir()
    key = key.format(root=tmp_path.as_posix())
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket=bucket)
    s3.upload_file(str(one_day_file(lake)), bucket, key)

    code, out, err = query_cli(capsys, "daily_message_count", "--local", f"s3://{bucket}{prefix}")

    assert (code, out) == (1, "")
    assert err.startswith(f"error: refusing to copy s3://{bucket}/{key}: its key leads outside ")
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "scratch" / "escaped").exists()


# --- --pseudonymized ----------------------------------------------------------------------------------------


PSEUDONYMIZED = replace(CONFIG, analyst_access="pseudonymized")
KEY = b"k" * 32


def pseudonymized_lake(lake: Path, destination: Path) -> Path:
    """The lake with the pseudonymized table beside the full one, as the ETL writes it on a pseudonymized stage."""
    from lambdas.etl.compact import write_batches
    from lambdas.etl.pseudonymize import Pseudonymizer

    copy = copy_of(lake, destination)
    for source in (copy / "telegram").glob("context_date=*/*.parquet"):
        target = copy / "telegram_pseudonymized" / source.parent.name / source.name
        target.parent.mkdir(parents=True)
        write_batches(target, Pseudonymizer(KEY).batches(source, 1000))
    return copy


def test_the_analysts_queries_are_refused_on_a_stage_without_a_pseudonymized_table(capsys):
    code, _, err = query_cli(capsys, "daily_message_count", "--pseudonymized")
    assert code == 1 and "stage dev has no pseudonymized table: its analyst_access is full" in err


def test_the_analysts_queries_run_in_their_workgroup_over_the_pseudonymized_table(athena, capsys, monkeypatch):
    from analytics import analyst_queries

    athena.create_work_group(Name=PSEUDONYMIZED.analyst_workgroup)
    monkeypatch.setattr(tools.operate.query, "stage_config", lambda args: PSEUDONYMIZED)

    code, _, err = query_cli(capsys, "messages_per_user_per_day", "--pseudonymized")

    [execution] = _executions()
    assert code == 0 and PSEUDONYMIZED.analyst_workgroup in err
    assert execution.workgroup.name == "telegram-lake-dev-analysts"
    assert execution.query == next(q.sql for q in analyst_queries(PSEUDONYMIZED) if q.name == "messages_per_user_per_day")
    assert "telegram_pseudonymized" in execution.query and "telegram_raw" not in execution.query


def test_the_analysts_queries_list_no_raw_zone_question(capsys, monkeypatch):
    monkeypatch.setattr(tools.operate.query, "stage_config", lambda args: PSEUDONYMIZED)
    code, out, _ = query_cli(capsys, "--list", "--pseudonymized", "--format", "csv")
    listed = [row["name"] for row in csv.DictReader(io.StringIO(out))]
    assert code == 0 and "daily_message_count" in listed
    assert not {"member_changes_per_day", "reactions_per_day", "most_reacted_messages"} & set(listed)


def test_local_analysts_queries_answer_with_pseudonyms_and_no_names(lake, tmp_path, capsys, monkeypatch):
    from lambdas.etl.pseudonymize import pseudonym

    both = pseudonymized_lake(lake, tmp_path / "lake")
    monkeypatch.setattr(tools.operate.query, "stage_config", lambda args: PSEUDONYMIZED)
    _, full, _ = query_cli(capsys, "messages_per_user_per_day", "--local", str(both), "--format", "json")
    code, out, _ = query_cli(
        capsys, "messages_per_user_per_day", "--pseudonymized", "--local", str(both), "--format", "json"
    )

    expected = [{**row, "user_id": pseudonym(KEY, row["user_id"]), "user_first_name": None} for row in json.loads(full)]

    def by_day_and_user(row: dict) -> tuple:
        return row["context_date"], row["user_id"]

    assert code == 0 and expected
    assert sorted(json.loads(out), key=by_day_and_user) == sorted(expected, key=by_day_and_user)

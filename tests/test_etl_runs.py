"""`python -m tools etl run`: one synchronous invocation per day, failures reported, and `--local` for real."""

from __future__ import annotations

import argparse
import io
import json
import re
from collections import defaultdict
from dataclasses import replace
from datetime import date, timedelta
from typing import Any
from urllib.request import Request, urlopen

import boto3
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.server import ThreadedMotoServer

import tools.operate.etl_runs as etl_runs
from lambdas.common.layout import local_day, raw_key, today
from lambdas.common.updates import carries_message
from lambdas.etl.day import enriched_key
from stacks import outputs
from stacks.config import load_from_cdk_json
from tools.cli import CommandError
from tools.operate.etl_runs import (
    MAX_UNCONFIRMED_DAYS, DayOutcome, days_between, lambda_runner, register, run_days, summary_table,
)
from tools.local.synthetic import synthetic_chat

CONFIG = load_from_cdk_json("dev")
FUNCTION = "TelegramLake-dev-Etl-EtlFunction-ABC123"


def summary_of(day: str) -> dict[str, Any]:
    return {"day": day, "objects_read": 3, "rows_written": 2, "duplicates": 0, "skipped": 1, "rejected": 0,
            "seconds": 0.5, "output_key": f"telegram/context_date={day}/telegram.parquet", "rejects_key": None}


class FakeLambda:
    """Records `invoke` calls and answers like Lambda: a summary, or a FunctionError payload for failing days."""

    def __init__(self, failures: dict[str, Any] | None = None):
        self.failures = failures or {}
        self.calls: list[dict[str, Any]] = []

    def invoke(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        day = json.loads(request["Payload"])["date"]
        failure = self.failures.get(day)
        if isinstance(failure, Exception):
            raise failure
        if failure is not None:
            payload = io.BytesIO(json.dumps(failure).encode())
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": payload}
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(summary_of(day)).encode())}


def etl_run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["etl", "run", *argv])
    return args.func(args)


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps tables to the terminal width


@pytest.fixture(autouse=True)
def engine(monkeypatch):
    """The stage's engine for a test: `lambda` unless the test sets another (cdk.json's dev runs Athena)."""

    def use(name: str) -> None:
        monkeypatch.setattr(etl_runs, "stage_config", lambda args: replace(CONFIG, etl_engine=name))

    use("lambda")
    return use


def test_each_day_is_one_synchronous_invocation_with_its_date():
    client = FakeLambda()

    outcomes = run_days(days_between(date(2026, 11, 30), date(2026, 12, 2)), lambda_runner(client, FUNCTION))

    days = ("2026-11-30", "2026-12-01", "2026-12-02")
    assert client.calls == [
        {"FunctionName": FUNCTION, "InvocationType": "RequestResponse", "Payload": f'{{"date": "{day}"}}'.encode()}
        for day in days
    ]
    assert [outcome.summary for outcome in outcomes] == [summary_of(day) for day in days]
    assert all(outcome.ok for outcome in outcomes)


def test_a_failing_day_is_reported_and_the_next_days_still_run():
    client = FakeLambda({
        "2026-11-02": {"errorType": "ClientError", "errorMessage": "An error occurred (AccessDenied)"},
        "2026-11-03": {"errorMessage": "2026-11-03T04:15:00Z Task timed out after 900.00 seconds"},
        "2026-11-04": ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "Slow down"}}, "Invoke"),
    })

    outcomes = run_days(days_between(date(2026, 11, 1), date(2026, 11, 5)), lambda_runner(client, FUNCTION))

    assert len(client.calls) == 5
    assert [outcome.error for outcome in outcomes] == [
        None,
        "EtlDayFailed: ClientError: An error occurred (AccessDenied)",
        "EtlDayFailed: 2026-11-03T04:15:00Z Task timed out after 900.00 seconds",
        "ClientError: An error occurred (TooManyRequestsException) when calling the Invoke operation: Slow down",
        None,
    ]
    assert outcomes[4].summary == summary_of("2026-11-05")


def test_what_the_etl_answered_is_printed_as_plain_text():
    """An error or a key is the ETL's text, which quotes what it read: markup in it is not rich's, and an
    escape sequence does nothing to the terminal (`[/red]` used to crash the table)."""
    from rich.console import Console

    outcomes = [
        DayOutcome(
            date(2026, 11, 1), summary={**summary_of("2026-11-01"), "output_key": "k[bold]\x07", "seconds": "[/]"}
        ),
        DayOutcome(date(2026, 11, 2), error="ValueError: bad [/red] key \x1b[2J\u202e"),
    ]
    console = Console(file=io.StringIO(), width=200, color_system=None)

    console.print(summary_table(outcomes))

    printed = console.file.getvalue()
    assert "ValueError: bad [/red] key \\u001b[2J\\u202e" in printed
    assert "k[bold]\\u0007" in printed and " [/] " in printed
    assert not set(printed) & set("\x1b\x07\u202e")


def test_etl_run_invokes_the_function_named_by_the_etl_stack(monkeypatch, capsys):
    client = FakeLambda({"2026-11-02": {"errorType": "ValueError", "errorMessage": "bad day"}})
    monkeypatch.setattr(etl_runs, "lambda_client", lambda config: client)
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            outputs.ETL_FUNCTION_NAME: {"Value": FUNCTION}, outputs.ENRICHED_BUCKET_NAME: {"Value": "enriched"}
        },
    }
    with mock_aws():
        boto3.client("cloudformation").create_stack(StackName="TelegramLake-dev-Etl", TemplateBody=json.dumps(template))

        code = etl_run("--stage", "dev", "--from", "2026-11-01", "--to", "2026-11-03")

    assert code == 1
    assert [(call["FunctionName"], json.loads(call["Payload"])) for call in client.calls] == [
        (FUNCTION, {"date": day}) for day in ("2026-11-01", "2026-11-02", "2026-11-03")
    ]
    printed = capsys.readouterr().out
    assert "ValueError: bad day" in printed
    assert "telegram/context_date=2026-11-03/telegram.parquet" in printed
    assert "1 of 3 days failed: 2026-11-02" in printed


@pytest.fixture
def deployed(monkeypatch):
    """The stage's ETL stack on moto, its function answered by a FakeLambda."""
    client = FakeLambda()
    monkeypatch.setattr(etl_runs, "lambda_client", lambda config: client)
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}, "Outputs": {outputs.ETL_FUNCTION_NAME: {"Value": FUNCTION}}
    }
    with mock_aws():
        boto3.client("cloudformation").create_stack(StackName="TelegramLake-dev-Etl", TemplateBody=json.dumps(template))
        yield client


class Terminal(io.StringIO):
    """stdin as an operator's terminal, with their answer typed in."""

    def isatty(self) -> bool:
        return True


def invoked_days(client: FakeLambda) -> list[str]:
    return [json.loads(call["Payload"])["date"] for call in client.calls]


START = date.fromisoformat(CONFIG.analytics_start_date)


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        (START - timedelta(days=1), START, f"--from {START - timedelta(days=1)} is before stage dev's "
                                           f"analytics_start_date {START}"),
        (date(1, 1, 1), date(9999, 12, 31), "is before stage dev's analytics_start_date"),
        (START, today(CONFIG.timezone),
         f"--to day {today(CONFIG.timezone)} has not ended in {CONFIG.timezone} (the latest day that has is "
         f"{today(CONFIG.timezone) - timedelta(days=1)})"),
        (START, today(CONFIG.timezone) + timedelta(days=1), "has not ended"),
        (START, date(9999, 12, 31), "--to day 9999-12-31 has not ended"),
    ],
)
def test_days_outside_the_stage_window_are_refused_before_anything_runs(deployed, first, last, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        etl_run("--from", first.isoformat(), "--to", last.isoformat(), "--yes")
    assert deployed.calls == []


def test_the_window_s_own_ends_run(deployed):
    """The first day Athena shows, and yesterday in the stage's zone: the latest day that has ended."""
    assert etl_run("--from", START.isoformat(), "--to", START.isoformat()) == 0
    latest = today(CONFIG.timezone) - timedelta(days=1)
    assert etl_run("--from", latest.isoformat()) == 0

    assert invoked_days(deployed) == [START.isoformat(), latest.isoformat()]


def long_range(days: int) -> tuple[str, ...]:
    first = START
    return ("--from", first.isoformat(), "--to", (first + timedelta(days=days - 1)).isoformat())


def test_a_month_runs_without_asking(deployed):
    assert etl_run(*long_range(MAX_UNCONFIRMED_DAYS)) == 0
    assert len(deployed.calls) == MAX_UNCONFIRMED_DAYS == 31


def test_a_longer_range_without_a_terminal_is_refused_and_says_to_add_yes(deployed, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # piped input is no confirmation

    with pytest.raises(CommandError, match=r"would compact 32 days .* more than 31: add --yes to confirm"):
        etl_run(*long_range(32))
    assert deployed.calls == []


def test_a_longer_range_runs_with_yes(deployed):
    assert etl_run(*long_range(32), "--yes") == 0
    assert len(deployed.calls) == 32


@pytest.mark.parametrize(
    ("answer", "runs"), [("y\n", True), ("YES\n", True), ("\n", False), ("n\n", False), ("", False)]
)
def test_a_longer_range_on_a_terminal_asks_first(deployed, monkeypatch, capsys, answer, runs):
    monkeypatch.setattr("sys.stdin", Terminal(answer))

    if runs:
        assert etl_run(*long_range(40)) == 0
    else:
        with pytest.raises(CommandError, match="cancelled: no day was run"):
            etl_run(*long_range(40))

    assert f"Compact 40 days ({START} to {START + timedelta(days=39)}), more than 31" in capsys.readouterr().out
    assert len(deployed.calls) == (40 if runs else 0)


def test_local_runs_with_the_stage_s_analytics_start_date(monkeypatch):
    captured = []

    def runner(settings):
        captured.append(settings)
        return lambda day: summary_of(day.isoformat())

    monkeypatch.setattr(etl_runs, "local_runner", runner)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")

    assert etl_run("--local", "--from", START.isoformat(), "--raw-bucket", "r", "--enriched-bucket", "e") == 0
    assert [settings.analytics_start_date for settings in captured] == [START]
    assert (captured[0].raw_bucket, captured[0].enriched_bucket, captured[0].timezone) == ("r", "e", CONFIG.timezone)


def test_local_runs_on_a_pseudonymized_stage_need_its_key_and_pass_it_with_the_text_setting(monkeypatch):
    captured = []

    def runner(settings):
        captured.append(settings)
        return lambda day: summary_of(day.isoformat())

    pseudonymized = replace(CONFIG, etl_engine="lambda", analyst_access="pseudonymized", pseudonymized_text="drop")
    monkeypatch.setattr(etl_runs, "local_runner", runner)
    monkeypatch.setattr(etl_runs, "stage_config", lambda args: pseudonymized)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.delenv("PSEUDONYM_KEY_ARN", raising=False)
    argv = ("--local", "--from", START.isoformat(), "--raw-bucket", "r", "--enriched-bucket", "e")

    with pytest.raises(CommandError, match="writes the pseudonymized table: --local needs PSEUDONYM_KEY_ARN"):
        etl_run(*argv)
    monkeypatch.setenv("PSEUDONYM_KEY_ARN", "arn:local-key")
    assert etl_run(*argv) == 0
    assert [(s.pseudonym_key_arn, s.pseudonymized_text) for s in captured] == [("arn:local-key", "drop")]


def test_etl_run_without_a_deployed_stack_says_so():
    with mock_aws(), pytest.raises(CommandError, match="TelegramLake-dev-Etl is not deployed"):
        etl_run("--from", "2026-11-01")


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--from", "2026-11-02", "--to", "2026-11-01"], {}, "--to 2026-11-01 is before --from 2026-11-02"),
        (["--from", "2026-11-01", "--raw-bucket", "raw"], {}, "only apply with --local"),
        (["--from", "2026-11-01", "--engine", "athena"], {}, "only apply with --local"),
        (["--from", "2026-11-01", "--local", "--raw-bucket", "r", "--enriched-bucket", "e"], {}, "AWS_ENDPOINT_URL"),
        (["--from", "2026-11-01", "--local", "--raw-bucket", "r"], {"AWS_ENDPOINT_URL": "http://127.0.0.1:1"},
         "--enriched-bucket"),
    ],
)
def test_unusable_arguments_are_clear_errors(monkeypatch, argv, environ, message):
    for name in ("RAW_BUCKET", "ENRICHED_BUCKET"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(CommandError, match=message):
        etl_run(*argv)


def test_a_date_that_is_not_a_date_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        etl_run("--from", "yesterday")
    assert "not a date YYYY-MM-DD: 'yesterday'" in capsys.readouterr().err


@pytest.fixture
def local_s3(monkeypatch):
    """A moto server on 127.0.0.1, as `python -m tools local up` provides, named by AWS_ENDPOINT_URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    try:
        yield boto3.client("s3")
    finally:
        urlopen(Request(f"{endpoint}/moto-api/reset", method="POST"))  # moto's state outlives the server
        server.stop()


@pytest.mark.parametrize("engine", ["lambda", "athena"])
def test_local_runs_either_engine_in_process_against_the_endpoint(local_s3, monkeypatch, capsys, engine):
    """The Lambda's handler, or the Athena engine's statements on DuckDB: the same days, the same rows."""
    for bucket in ("local-raw", "local-enriched"):
        local_s3.create_bucket(Bucket=bucket)
    chat = synthetic_chat(date(2026, 11, 1), 3, 25, chat_id=-100, other_chat_id=None, zone=CONFIG.timezone)
    expected: dict[date, list[int]] = defaultdict(list)
    for item in chat:
        day, update_id = local_day(item.arrival, CONFIG.timezone), item.update["update_id"]
        local_s3.put_object(Bucket="local-raw", Key=raw_key(day, update_id), Body=json.dumps(item.update).encode())
        if carries_message(item.update):
            expected[day].append(update_id)
    monkeypatch.setenv("ENRICHED_BUCKET", "local-enriched")

    code = etl_run("--local", "--engine", engine, "--from", "2026-11-01", "--to", "2026-11-03", "--raw-bucket", "local-raw")

    assert code == 0
    printed = capsys.readouterr().out
    for day in days_between(date(2026, 11, 1), date(2026, 11, 3)):
        body = local_s3.get_object(Bucket="local-enriched", Key=enriched_key(day))["Body"].read()
        assert pq.read_table(io.BytesIO(body)).column("update_id").to_pylist() == expected[day]
        assert enriched_key(day) in printed
    assert "failed" not in printed


def test_local_reports_a_failing_day_and_exits_non_zero(local_s3, monkeypatch, capsys):
    local_s3.create_bucket(Bucket="local-raw")  # no enriched bucket: writing fails
    local_s3.put_object(Bucket="local-raw", Key=raw_key(date(2026, 11, 2), 1), Body=b'{"update_id": 1, "message": {}}')
    monkeypatch.setenv("RAW_BUCKET", "local-raw")
    monkeypatch.setenv("ENRICHED_BUCKET", "missing-enriched")

    code = etl_run("--local", "--from", "2026-11-01", "--to", "2026-11-03")

    assert code == 1
    printed = capsys.readouterr().out
    assert "NoSuchBucket" in printed and "1 of 3 days failed: 2026-11-02" in printed


class FakeStepFunctions:
    """Step Functions as the compaction state machine answers: RUNNING a few times, then how it ended."""

    def __init__(self, ending: dict[str, Any], polls_running: int = 2):
        self.ending = ending
        self.polls_running = polls_running
        self.started: list[dict[str, Any]] = []

    def start_execution(self, **request: Any) -> dict[str, Any]:
        self.started.append(request)
        return {"executionArn": f"arn:aws:states:us-east-1:123456789012:execution:compaction:{request['name']}"}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        if self.polls_running:
            self.polls_running -= 1
            return {"status": "RUNNING"}
        return self.ending


def test_the_athena_engine_is_one_state_machine_execution_per_day_followed_until_it_succeeds():
    summary = summary_of("2026-11-02")
    client = FakeStepFunctions({"status": "SUCCEEDED", "output": json.dumps([summary])})
    waits: list[float] = []

    assert etl_runs.state_machine_runner(client, "arn:machine", sleep=waits.append)(date(2026, 11, 2)) == summary
    [started] = client.started
    assert (started["stateMachineArn"], json.loads(started["input"])) == ("arn:machine", {"date": "2026-11-02"})
    assert started["name"].startswith("etl-run-2026-11-02-")
    assert waits == [etl_runs.FIRST_POLL_SECONDS, 2 * etl_runs.FIRST_POLL_SECONDS]  # backs off


@pytest.mark.parametrize("status", ["FAILED", "TIMED_OUT", "ABORTED"])
def test_a_compaction_that_does_not_succeed_is_a_failed_day_with_its_error_and_cause(status):
    client = FakeStepFunctions({"status": status, "error": "Athena.AthenaException", "cause": "bytes scanned limit"})

    with pytest.raises(etl_runs.EtlDayFailed, match=f"^{status}: Athena.AthenaException: bytes scanned limit"):
        etl_runs.state_machine_runner(client, "arn:machine", sleep=lambda _: None)(date(2026, 11, 2))


@pytest.mark.parametrize(
    "output",
    [summary_of("2026-11-02"), [summary_of("2026-11-02")], [{"Payload": summary_of("2026-11-02")}]],
    ids=["summary", "branch list", "lambda envelope"],
)
def test_the_summary_is_found_in_the_state_machine_s_output(output):
    assert etl_runs.compaction_summary(output) == summary_of("2026-11-02")


def test_an_output_without_a_summary_is_a_failed_day():
    with pytest.raises(etl_runs.EtlDayFailed, match="without a day's summary"):
        etl_runs.compaction_summary([{"day": "2026-11-02"}, {}])


def test_a_stage_on_the_athena_engine_runs_its_compaction_state_machine(engine, monkeypatch, capsys):
    engine("athena")
    client = FakeStepFunctions({"status": "SUCCEEDED", "output": json.dumps([summary_of("2026-11-02")])}, 0)
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:compaction"
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {outputs.COMPACTION_STATE_MACHINE_ARN: {"Value": arn}},
    }
    with mock_aws():
        boto3.client("cloudformation").create_stack(
            StackName="TelegramLake-dev-Presentation", TemplateBody=json.dumps(template)
        )
        monkeypatch.setattr(etl_runs, "state_machine_client", lambda config: client)

        assert etl_run("--from", "2026-11-02") == 0

    assert [(call["stateMachineArn"], json.loads(call["input"])) for call in client.started] == [
        (arn, {"date": "2026-11-02"})
    ]
    assert "telegram/context_date=2026-11-02/telegram.parquet" in capsys.readouterr().out

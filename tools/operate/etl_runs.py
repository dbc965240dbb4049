"""`python -m tools etl run`: compact a range of days with the ETL, deployed or in this process (`--local`).

Each day runs on its own, with the stage's engine: `lambda`, one synchronous invocation of the ETL function
with `{"date": "YYYY-MM-DD"}`; `athena`, one execution of the compaction state machine, followed until it
ends. A failing day is reported and the other days still run; any failure makes the exit code non-zero.
`--local` runs either engine in this process against AWS_ENDPOINT_URL (`--engine`, default the stage's):
the Lambda's handler, or the Athena engine's very SQL on DuckDB (tools/local/athena_engine.py).
`run_days` is the loop itself, for the local demo.

The range is bounded: from the stage's `analytics_start_date` (Athena shows no earlier day) to yesterday in
its zone (a day is compacted once it has ended: until then its answers come from the raw zone), and more than `MAX_UNCONFIRMED_DAYS` days are run only once confirmed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from lambdas.etl.day import refuse_unfinished
from stacks import outputs
from stacks.config import ETL_ENGINES
from tools.cli import CommandError, add_stage_argument, aws_session, plain, require_output, stack_outputs, stage_config

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from lambdas.etl.handler import EtlSettings
    from stacks.config import StageConfig

# Runs one day and returns the ETL's summary (see lambdas.etl.compact.DaySummary); raises when the day fails.
DayRunner = Callable[[date], Mapping[str, Any]]

# A month of days runs without asking; a longer range (a typo, or a whole year's backfill) asks first.
MAX_UNCONFIRMED_DAYS = 31
# How a state machine execution is followed: polls back off from the first to the longest wait.
FIRST_POLL_SECONDS = 2.0
MAX_POLL_SECONDS = 15.0


class EtlDayFailed(Exception):
    """The deployed ETL reported an error for a day (a FunctionError response)."""


@dataclass(frozen=True)
class DayOutcome:
    day: date
    summary: Mapping[str, Any] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def register(subparsers: argparse._SubParsersAction) -> None:
    etl = subparsers.add_parser("etl", help="run the ETL (JSON -> Parquet compaction) for a range of days")
    commands = etl.add_subparsers(dest="etl_command", required=True)
    run = commands.add_parser(
        "run",
        help="compact every day from --from to --to (inclusive)",
        description="Compact each day with the stage's deployed engine (the ETL Lambda, or on `etl_engine: "
        "athena` the compaction state machine, followed to its end), or with --local run an engine in this "
        "process against the S3 endpoint in AWS_ENDPOINT_URL.",
    )
    add_stage_argument(run)
    run.add_argument("--from", dest="first", type=_iso_date, required=True, metavar="YYYY-MM-DD", help="first day")
    run.add_argument("--to", dest="last", type=_iso_date, metavar="YYYY-MM-DD", help="last day (default: --from)")
    run.add_argument("--local", action="store_true", help="run the engine in-process against AWS_ENDPOINT_URL")
    run.add_argument(
        "--engine", choices=ETL_ENGINES, help="with --local: the engine to run (default: the stage's etl_engine)"
    )
    run.add_argument("--raw-bucket", help="with --local: raw bucket (default: env RAW_BUCKET)")
    run.add_argument("--enriched-bucket", help="with --local: enriched bucket (default: env ENRICHED_BUCKET)")
    run.add_argument(
        "--yes", action="store_true", help=f"run a range of more than {MAX_UNCONFIRMED_DAYS} days without asking"
    )
    run.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    config = stage_config(args)
    days = stage_days(config, args.first, args.last or args.first)
    if args.local:
        run_day = local_engine_runner(_local_settings(args, config), config, args.engine)
    elif args.raw_bucket or args.enriched_bucket or args.engine:
        raise CommandError("--raw-bucket, --enriched-bucket and --engine only apply with --local")
    else:
        run_day = deployed_runner(config)
    if len(days) > MAX_UNCONFIRMED_DAYS and not args.yes:
        confirm_long_range(days)
    console = Console()
    outcomes = run_days(days, run_day, console)
    console.print(summary_table(outcomes))
    failed = [outcome.day.isoformat() for outcome in outcomes if not outcome.ok]
    if failed:
        console.print(f"[bold red]{len(failed)} of {len(days)} days failed:[/] {', '.join(failed)}")
        return 1
    return 0


def deployed_runner(config: StageConfig) -> DayRunner:
    """The stage's deployed engine for one day: the compaction state machine on `etl_engine: athena`, else the ETL
    function (both found through the stacks' outputs)."""
    if config.etl_engine == "athena":
        stack = config.stack_name("Presentation")
        arn = require_output(stack_outputs(config, "Presentation"), outputs.COMPACTION_STATE_MACHINE_ARN, stack)
        return state_machine_runner(state_machine_client(config), arn)
    stack = config.stack_name("Etl")
    function_name = require_output(stack_outputs(config, "Etl"), outputs.ETL_FUNCTION_NAME, stack)
    return lambda_runner(lambda_client(config), function_name)


def days_between(first: date, last: date) -> list[date]:
    if last < first:
        raise CommandError(f"--to {last} is before --from {first}")
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def stage_days(config: StageConfig, first: date, last: date) -> list[date]:
    """The days from `first` to `last`, refused unless they lie between the stage's analytics_start_date
    and yesterday in its zone, the last day that has ended (checked before the list is built: a typo's range can
    hold millions of days)."""
    start = _analytics_start(config)
    if first < start:
        raise CommandError(
            f"--from {first} is before stage {config.stage}'s analytics_start_date {start}: "
            "Athena shows no earlier day, so the ETL refuses it"
        )
    try:
        refuse_unfinished(last, config.timezone)
    except ValueError as error:
        raise CommandError(f"--to {error}") from None
    return days_between(first, last)


def confirm_long_range(days: Sequence[date]) -> None:
    """Ask on a terminal before a long run; without one, refuse and say how to confirm."""
    what = f"{len(days)} days ({days[0]} to {days[-1]}), more than {MAX_UNCONFIRMED_DAYS}"
    if not sys.stdin.isatty():
        raise CommandError(f"etl run would compact {what}: add --yes to confirm")
    try:
        answer = input(f"Compact {what}, one ETL run each? [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        raise CommandError("cancelled: no day was run")


def run_days(days: Sequence[date], run_day: DayRunner, console: Console | None = None) -> list[DayOutcome]:
    """Run each day in turn behind a progress bar; a day that raises is recorded and the loop goes on."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    outcomes = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("ETL", total=len(days))
        for day in days:
            progress.update(task, description=f"ETL {day.isoformat()}")
            try:
                outcomes.append(DayOutcome(day, summary=run_day(day)))
            except Exception as error:  # reported in the table and the exit code; the next day still runs
                outcomes.append(DayOutcome(day, error=f"{type(error).__name__}: {error}"))
            progress.advance(task)
    return outcomes


def summary_table(outcomes: Sequence[DayOutcome]) -> Table:
    """One row a day; what the ETL answered (its error, keys and counts) as plain text."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="ETL runs")
    table.add_column("day")
    table.add_column("status")
    for heading in ("objects", "rows", "duplicates", "skipped", "rejected", "seconds"):
        table.add_column(heading, justify="right")
    table.add_column("output / error", overflow="fold")
    for outcome in outcomes:
        if not outcome.ok:
            table.add_row(outcome.day.isoformat(), Text("failed", "red"), *[""] * 6, Text(plain(outcome.error), "red"))
            continue
        summary = outcome.summary or {}
        counts = ("objects_read", "rows_written", "duplicates", "skipped", "rejected", "seconds")
        where = summary.get("output_key") or "nothing written (no rows)"
        if summary.get("rejects_key"):
            where += f"\nrejects: {summary['rejects_key']}"
        table.add_row(
            outcome.day.isoformat(), Text("ok", "green"), *[Text(plain(summary.get(name, ""))) for name in counts],
            Text(plain(where)),
        )
    return table


def lambda_runner(client: Any, function_name: str) -> DayRunner:
    """Invoke the deployed ETL synchronously for one day; a FunctionError response raises EtlDayFailed."""

    def run(day: date) -> Mapping[str, Any]:
        response = client.invoke(
            FunctionName=function_name,
            InvocationType="RequestResponse",
            Payload=json.dumps({"date": day.isoformat()}).encode("utf-8"),
        )
        raw = response["Payload"].read()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode("utf-8", "replace")
        if response.get("FunctionError"):
            raise EtlDayFailed(_function_error(payload))
        if not isinstance(payload, dict):
            raise EtlDayFailed(f"unexpected response from {function_name}: {payload!r}")
        return payload

    return run


def _function_error(payload: Any) -> str:
    """`ValueError: ...` from Lambda's error payload `{"errorType", "errorMessage", ...}`."""
    if isinstance(payload, dict) and "errorMessage" in payload:
        kind = payload.get("errorType")
        return f"{kind}: {payload['errorMessage']}" if kind else str(payload["errorMessage"])
    return f"function error: {payload!r}"


def lambda_client(config: StageConfig) -> Any:
    """A Lambda client that waits as long as the function may run (botocore's default read timeout is 60 s)."""
    from botocore.config import Config

    waits = Config(connect_timeout=10, read_timeout=config.etl_timeout_minutes * 60 + 30, retries={"mode": "standard"})
    return aws_session(config).client("lambda", config=waits)


def state_machine_runner(client: Any, arn: str, sleep: Callable[[float], None] = time.sleep) -> DayRunner:
    """Start the compaction state machine for one day and follow it until it ends; a run that does not
    succeed raises EtlDayFailed with Step Functions' error and cause. (Athena does the work: following it
    costs this process nothing but polls.)"""

    def run(day: date) -> Mapping[str, Any]:
        name = f"etl-run-{day.isoformat()}-{uuid.uuid4().hex[:8]}"
        execution = client.start_execution(stateMachineArn=arn, name=name, input=json.dumps({"date": day.isoformat()}))
        delay = FIRST_POLL_SECONDS
        while True:
            described = client.describe_execution(executionArn=execution["executionArn"])
            if described["status"] != "RUNNING":
                break
            sleep(delay)
            delay = min(delay * 2, MAX_POLL_SECONDS)
        if described["status"] != "SUCCEEDED":
            reason = ": ".join(filter(None, (described.get("error"), described.get("cause"))))
            raise EtlDayFailed(f"{described['status']}: {reason or 'no error given'} ({execution['executionArn']})")
        return compaction_summary(json.loads(described.get("output") or "null"))

    return run


def state_machine_client(config: StageConfig) -> Any:
    return aws_session(config).client("stepfunctions")


def compaction_summary(output: Any) -> Mapping[str, Any]:
    """The day's summary in a state machine's output: the publish step's result, which the definition may
    have left inside its Parallel branch list or Lambda's `Payload` envelope."""
    while isinstance(output, list) and len(output) == 1:
        output = output[0]
    if isinstance(output, dict) and isinstance(output.get("Payload"), dict):
        output = output["Payload"]
    if not isinstance(output, dict) or "rows_written" not in output:
        raise EtlDayFailed(f"the compaction ended without a day's summary: {output!r}")
    return output


def local_engine_runner(settings: EtlSettings, config: StageConfig, engine: str | None = None) -> DayRunner:
    """`engine` (default: the stage's) in this process: the Lambda's handler, or the Athena engine's
    statements on DuckDB and its publish step's own code."""
    if (engine or config.etl_engine) == "lambda":
        return local_runner(settings)
    from tools.local.athena_engine import compact_day_on_duckdb

    return lambda day: compact_day_on_duckdb(settings, config.glue_database, day)


def local_runner(settings: EtlSettings) -> DayRunner:
    """Run the ETL handler's own code path in this process (the local demo's S3 is a moto server)."""
    from lambdas.etl.handler import process

    return lambda day: process({"date": day.isoformat()}, settings)


def _local_settings(args: argparse.Namespace, config: StageConfig) -> EtlSettings:
    from lambdas.etl.handler import EtlSettings

    if not os.environ.get("AWS_ENDPOINT_URL"):
        raise CommandError(
            "--local needs AWS_ENDPOINT_URL, the local S3 endpoint (`python -m tools local up` prints it)"
        )
    raw_bucket = args.raw_bucket or os.environ.get("RAW_BUCKET")
    enriched_bucket = args.enriched_bucket or os.environ.get("ENRICHED_BUCKET")
    if not raw_bucket or not enriched_bucket:
        raise CommandError("--local needs --raw-bucket and --enriched-bucket (or env RAW_BUCKET and ENRICHED_BUCKET)")
    key_arn = os.environ.get("PSEUDONYM_KEY_ARN") or None
    if config.pseudonymized and key_arn is None:
        raise CommandError(
            f"stage {config.stage} writes the pseudonymized table: --local needs PSEUDONYM_KEY_ARN, the ARN of the "
            "pseudonym key's secret in the local Secrets Manager"
        )
    return EtlSettings(
        raw_bucket, enriched_bucket, config.timezone, config.etl_read_concurrency,
        analytics_start_date=_analytics_start(config),
        pseudonym_key_arn=key_arn if config.pseudonymized else None, pseudonymized_text=config.pseudonymized_text,
    )


def _analytics_start(config: StageConfig) -> date:
    return date.fromisoformat(config.analytics_start_date)


def _iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {value!r}") from None

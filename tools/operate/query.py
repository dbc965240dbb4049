"""`python -m tools query NAME`: run a saved analytics query on Athena, or `--local` on DuckDB.

On Athena the query runs in the stage's workgroup (which enforces the results bucket and the bytes-scanned
cutoff) against the stage's Glue database; the SQL is the file's, so it is exactly the saved named query.
`--local` runs the same file on DuckDB over the enriched Parquet (see tools/local/sql.py). `--pseudonymized` runs
the analysts' version of the query on a pseudonymized stage: over the pseudonymized table, in their workgroup.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from analytics import SavedQuery, analyst_queries, find_query, stage_queries
from stacks.config import StageConfig
from tools.cli import CommandError, add_stage_argument, aws_session, plain, plain_json, stage_config

FORMATS = ("table", "csv", "json")
TERMINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")
FIRST_POLL_SECONDS = 0.25
MAX_POLL_SECONDS = 5.0
DEFAULT_TIMEOUT_SECONDS = 600
# Athena result types whose text is turned back into numbers/booleans, so every --format is typed alike.
_INTEGER_TYPES = ("tinyint", "smallint", "integer", "bigint")
_FLOAT_TYPES = ("real", "float", "double")


@dataclass(frozen=True)
class AthenaAnswer:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    execution_id: str
    bytes_scanned: int


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "query",
        help="run a saved analytics query on Athena, or --local on DuckDB",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", nargs="?", help="saved query name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the saved queries and the question each answers")
    add_stage_argument(parser)
    parser.add_argument(
        "--local",
        metavar="PATH_OR_S3_URL",
        help="run on DuckDB over the enriched Parquet in a folder or s3://bucket[/prefix] (AWS_ENDPOINT_URL applies)",
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    add_pseudonymized_argument(parser)
    add_timeout_argument(parser, "the query")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = stage_config(args)
    queries = saved_queries(config, args.pseudonymized)
    if args.list:
        print(render(["name", "question"], [(query.name, query.question) for query in queries], args.format))
        return 0
    if not args.name:
        raise CommandError("name a saved query, or use --list to see them")
    try:
        query = find_query(queries, args.name)
    except KeyError as error:
        raise CommandError(error.args[0]) from None
    if args.local:
        from tools.local.sql import DayWindow, open_lake

        window = DayWindow.for_stage(config)
        with open_lake(args.local, window) as lake:
            columns, rows = lake.run(query)
        print(render(columns, rows, args.format))
        print(f"{len(rows)} rows from DuckDB over {args.local}", file=sys.stderr)
        if lake.days_outside_window:
            print(
                f"days outside stage {config.stage}'s window {window}, not read "
                f"(Athena's partition projection does not show them either): {lake.days_outside_window}",
                file=sys.stderr,
            )
        return 0
    workgroup = query_workgroup(config, args.pseudonymized)
    answer = run_athena(query, config, timeout=args.timeout, workgroup=workgroup)
    print(render(answer.columns, answer.rows, args.format))
    print(
        f"{len(answer.rows)} rows, {format_bytes(answer.bytes_scanned)} scanned "
        f"(query {answer.execution_id}, workgroup {workgroup})",
        file=sys.stderr,
    )
    return 0


def add_pseudonymized_argument(parser: argparse.ArgumentParser) -> None:
    """`--pseudonymized` of the commands that run saved queries: the analysts' queries, as they run them."""
    parser.add_argument(
        "--pseudonymized",
        action="store_true",
        help="the analysts' queries over the pseudonymized table, in their workgroup (analyst_access: pseudonymized)",
    )


def saved_queries(config: StageConfig, pseudonymized: bool) -> list[SavedQuery]:
    """The stage's saved queries, or with `pseudonymized` its analysts' (refused on a stage that has none)."""
    if not pseudonymized:
        return stage_queries(config)
    if not config.pseudonymized:
        raise CommandError(
            f"stage {config.stage} has no pseudonymized table: its analyst_access is {config.analyst_access}"
        )
    return analyst_queries(config)


def query_workgroup(config: StageConfig, pseudonymized: bool) -> str:
    """Where the queries run on Athena: the analysts' workgroup for their queries, else the stage's."""
    return config.analyst_workgroup if pseudonymized else config.athena_workgroup


def run_athena(
    query: SavedQuery,
    config: StageConfig,
    *,
    client: Any = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    workgroup: str | None = None,
) -> AthenaAnswer:
    """Start the query in the workgroup (the stage's by default) and the stage's database, wait for it, and read
    every result page."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = client or aws_session(config).client("athena")
    workgroup = workgroup or config.athena_workgroup
    try:
        execution_id = client.start_query_execution(
            QueryString=query.sql,
            WorkGroup=workgroup,
            QueryExecutionContext={"Database": config.glue_database},
        )["QueryExecutionId"]
        execution = wait_for_query(client, execution_id, timeout=timeout, sleep=sleep)
        columns, rows = _read_results(client, execution_id)
    except (BotoCoreError, ClientError) as error:
        raise CommandError(f"Athena could not run {query.name} in workgroup {workgroup}: {error}") from None
    return AthenaAnswer(columns, rows, execution_id, execution.get("Statistics", {}).get("DataScannedInBytes", 0))


def wait_for_query(client: Any, execution_id: str, *, timeout: float, sleep: Callable[[float], None]) -> dict[str, Any]:
    """Poll with exponential backoff until the query ends; a query that did not succeed is a CommandError."""
    deadline = time.monotonic() + timeout
    delay = FIRST_POLL_SECONDS
    while True:
        execution = client.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
        status = execution["Status"]
        if status["State"] == "SUCCEEDED":
            return execution
        if status["State"] in TERMINAL_STATES:
            error = status.get("AthenaError", {}).get("ErrorMessage")
            reason = status.get("StateChangeReason") or error or "no reason given"
            raise CommandError(f"Athena query {execution_id} {status['State']}: {reason}")
        if time.monotonic() + delay > deadline:
            client.stop_query_execution(QueryExecutionId=execution_id)
            raise CommandError(f"Athena query {execution_id} still {status['State']} after {timeout:g} s: cancelled it")
        sleep(delay)
        delay = min(delay * 2, MAX_POLL_SECONDS)


def _read_results(client: Any, execution_id: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Every page of results, typed by the result metadata."""
    columns: list[str] = []
    types: list[str] = []
    rows: list[tuple[Any, ...]] = []
    pages = client.get_paginator("get_query_results").paginate(QueryExecutionId=execution_id)
    for number, page in enumerate(pages):
        result = page["ResultSet"]
        page_rows = result["Rows"]
        if number == 0:
            info = result["ResultSetMetadata"]["ColumnInfo"]
            columns = [column["Name"] for column in info]
            types = [column["Type"].lower() for column in info]
            page_rows = page_rows[1:]  # a SELECT's first row repeats the column labels
        for row in page_rows:
            rows.append(tuple(_typed(cell.get("VarCharValue"), kind) for cell, kind in zip(row["Data"], types)))
    return columns, rows


def _typed(text: str | None, kind: str) -> Any:
    if text is None:
        return None
    if kind in _INTEGER_TYPES:
        return int(text)
    if kind in _FLOAT_TYPES:
        return float(text)
    if kind == "boolean":
        return text == "true"
    return text


def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], output_format: str) -> str:
    """Rows as an aligned text table, CSV (empty = null) or a JSON array of objects (dates as ISO text). The
    table and the JSON show text as plain text (`tools.cli.plain`; the JSON's values stay exact); CSV carries
    every value exactly, for a file or a program."""
    if output_format == "json":
        return plain_json([dict(zip(columns, row)) for row in rows])
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(["" if value is None else value for value in row] for row in rows)
        return buffer.getvalue().rstrip("\n")
    return _table(columns, rows)


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Numbers right-aligned, text left-aligned, nulls shown as NULL."""
    headings = [plain(column) for column in columns]
    cells = [["NULL" if value is None else plain(value) for value in row] for row in rows]
    widths = [max([len(heading), *(len(row[index]) for row in cells)]) for index, heading in enumerate(headings)]
    numeric = [
        bool(rows) and all(isinstance(row[index], (int, float)) or row[index] is None for row in rows)
        for index in range(len(columns))
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            value.rjust(width) if right else value.ljust(width) for value, width, right in zip(values, widths, numeric)
        ).rstrip()

    return "\n".join([line(headings), line(["-" * width for width in widths]), *(line(row) for row in cells)])


def add_timeout_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """`--timeout` of the commands that wait for Athena (`what` it cancels when the time is up)."""
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=DEFAULT_TIMEOUT_SECONDS,
        help=f"seconds to wait for Athena before cancelling {what} (default {DEFAULT_TIMEOUT_SECONDS})",
    )


def _positive_seconds(text: str) -> float:
    """A timeout that means something: with NaN or infinity the query is never cancelled, with zero or
    less it is cancelled before it could run."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive, finite number of seconds, got {text!r}")
    return value


def format_bytes(count: int) -> str:
    """`12.3 MB (12897484 bytes)`: readable, with the exact figure Athena bills by."""
    if count < 1024:
        return f"{count} B"
    size = float(count)
    for unit in ("KB", "MB", "GB", "TB"):
        size /= 1024
        if size < 1024:
            break
    return f"{size:.1f} {unit} ({count} bytes)"

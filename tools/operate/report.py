"""`python -m tools report`: the saved analytics as one HTML page that people open instead of SQL.

Runs the saved queries the report shows (tools/operate/report_html.py SECTIONS: activity by hour and weekday,
messages and active users per day, writers per week and month with stickiness, whether newcomers stay, who
writes most, what kinds of message people send, the chats compared, top questions and commands, the
repeat-question trend, and member changes, reactions and "today so far" where the stage's analytics have
them) on the stage's Athena
workgroup, or with `--local` on DuckDB as `query --local` does, and writes one self-contained HTML file:
inline SVG charts and CSS, no script, no font, no request, readable on a phone.

`--pseudonymized` runs the analysts' queries on a pseudonymized stage (over the pseudonymized table, in their
workgroup): the sections that read the raw zone are left out, and no name is shown.

`--days N` limits every query to the last N days in the stage's time zone, today included (on Athena,
partition pruning makes that cheaper too); by default the range is every day the stage shows, from its
`analytics_start_date`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from analytics import RELATION_NOTES, SavedQuery, stage_queries
from lambdas.common.layout import PARTITION_KEY, today
from stacks.config import StageConfig
from tools.cli import CommandError, add_stage_argument, aws_session, count_argument, stage_config
from tools.operate.query import (
    add_pseudonymized_argument, add_timeout_argument, format_bytes, query_workgroup, run_athena, saved_queries,
)
from tools.operate.report_html import SECTION_QUERIES, Answer, ReportContext, render_report

DEFAULT_OUT = "report.html"
# Athena runs a workgroup's queries concurrently; a few at a time keep the report quick and polite.
ATHENA_PARALLEL_QUERIES = 4


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write the analytics report: one self-contained HTML file with charts (Athena, or --local on DuckDB)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stage_argument(parser)
    parser.add_argument(
        "--local",
        metavar="PATH_OR_S3_URL",
        help="run on DuckDB over a local lake, as `query --local` does (e.g. demo-output/lake)",
    )
    parser.add_argument(
        "--days", type=count_argument(),
        help="only the last N days, today included (default: every day the stage shows)",
    )
    parser.add_argument("--out", type=Path, default=Path(DEFAULT_OUT), help=f"the HTML file (default {DEFAULT_OUT})")
    add_pseudonymized_argument(parser)
    add_timeout_argument(parser, "each query")
    parser.set_defaults(func=report_command)


def report_command(args: argparse.Namespace) -> int:
    config = stage_config(args)
    first, last = report_days(config, args.days)
    queries = report_queries(config, saved_queries(config, args.pseudonymized))
    limited = [_limited(query, first, last) for query in queries]
    if args.local:
        answers = local_answers(limited, config, args.local)
        source = f"DuckDB over {args.local}"
    else:
        workgroup = query_workgroup(config, args.pseudonymized)
        answers, scanned = athena_answers(limited, config, timeout=args.timeout, workgroup=workgroup)
        source = f"Athena workgroup {workgroup}"
        print(f"{len(limited)} queries, {format_bytes(scanned)} scanned", file=sys.stderr)
    context = ReportContext(
        stage=config.stage, zone=config.timezone, first_day=first, last_day=last, source=source,
        generated_at=datetime.now(timezone.utc),
    )
    print(write_report(args.out, answers, queries, context))
    return 0


def report_days(config: StageConfig, days: int | None, now: datetime | None = None) -> tuple[date, date]:
    """The first and last day of the report: the last `days` days in the stage's zone, today included, never
    before the stage's `analytics_start_date` (Athena shows no earlier day); all of them without `days`, or
    when `days` reaches back that far (compared as a count: a date millions of days back does not exist)."""
    last = today(config.timezone, now)
    start = date.fromisoformat(config.analytics_start_date)
    if days is None or days > (last - start).days:
        return start, last
    return last - timedelta(days=days - 1), last


def report_queries(config: StageConfig, queries: Iterable[SavedQuery] | None = None) -> list[SavedQuery]:
    """The stage's saved queries that the report shows, in the report's order (from `queries` when the caller
    has loaded them already)."""
    loaded = stage_queries(config) if queries is None else queries
    by_name = {query.name: query for query in loaded}
    return [by_name[name] for name in SECTION_QUERIES if name in by_name]


def limited_to_days(sql: str, first: date, last: date) -> str:
    """`sql` reading only the days `first` to `last` (by `context_date`) of the lake's relations.

    A saved query reads the lake through relations the loader defines in front of it as common table
    expressions (`telegram`, up to the minute; `telegram_updates`, every recent update: analytics/__init__.py
    RELATION_NOTES). Each definition is wrapped in the filter, so every row the query sees is in the range,
    and Athena prunes the partitions outside it. The rest of the text is left exactly as it was
    (regenerating the SQL would not be: sqlglot rewrites some Athena functions); a query that defines none
    of them is returned unchanged.
    """
    from sqlglot.dialects import Dialect
    from sqlglot.tokens import TokenType

    tokens = Dialect.get_or_raise("athena").tokenize(sql)
    condition = f"{PARTITION_KEY} BETWEEN DATE '{first.isoformat()}' AND DATE '{last.isoformat()}'"
    bodies = []
    for index in range(1, len(tokens) - 2):
        before, name, keyword, opening = tokens[index - 1 : index + 3]
        if (
            before.token_type in (TokenType.WITH, TokenType.COMMA)
            and name.token_type in (TokenType.VAR, TokenType.IDENTIFIER)
            and name.text.lower() in RELATION_NOTES
            and keyword.token_type == TokenType.ALIAS
            and opening.token_type == TokenType.L_PAREN
        ):
            closing = tokens[_closing_parenthesis(tokens, index + 2)]
            bodies.append((name.text, opening.end + 1, closing.start))
    for relation, start, end in reversed(bodies):
        sql = f"{sql[:start]}\nSELECT * FROM ({sql[start:end]}\n) AS {relation} WHERE {condition}\n{sql[end:]}"
    return sql


def _limited(query: SavedQuery, first: date, last: date) -> SavedQuery:
    """`query` reading only the days `first` to `last`; a saved query whose SQL cannot be read is a
    CommandError naming it (Athena would refuse it too)."""
    from sqlglot.errors import SqlglotError

    try:
        return replace(query, sql=limited_to_days(query.sql, first, last))
    except (SqlglotError, ValueError) as error:
        raise CommandError(f"saved query {query.name}: cannot read its SQL to limit it to the days: {error}") from None


def _closing_parenthesis(tokens: Sequence, opening: int) -> int:
    """The index of the token closing the parenthesis opened at `opening`."""
    from sqlglot.tokens import TokenType

    depth = 0
    for index in range(opening, len(tokens)):
        depth += {TokenType.L_PAREN: 1, TokenType.R_PAREN: -1}.get(tokens[index].token_type, 0)
        if depth == 0:
            return index
    raise ValueError("unbalanced parentheses in a saved query")


def local_answers(queries: Sequence[SavedQuery], config: StageConfig, source: str) -> dict[str, Answer]:
    """Each query on DuckDB over the lake at `source`, reading the days Athena would show (`query --local`)."""
    from tools.local.sql import DayWindow, open_lake

    with open_lake(source, DayWindow.for_stage(config)) as lake:
        return {query.name: lake.run(query) for query in queries}


def athena_answers(
    queries: Sequence[SavedQuery], config: StageConfig, *, timeout: float, client: object = None,
    workgroup: str | None = None,
) -> tuple[dict[str, Answer], int]:
    """Each query in the workgroup (the stage's by default), a few at a time; the answers and the bytes scanned in
    all. The first query that fails ends the report with its error (a report missing a section would mislead)."""
    client = client or aws_session(config).client("athena")
    with ThreadPoolExecutor(max_workers=ATHENA_PARALLEL_QUERIES, thread_name_prefix="athena") as pool:
        results = list(pool.map(
            lambda query: run_athena(query, config, client=client, timeout=timeout, workgroup=workgroup), queries
        ))
    answers = {query.name: (result.columns, result.rows) for query, result in zip(queries, results)}
    return answers, sum(result.bytes_scanned for result in results)


def write_report(
    path: Path, answers: Mapping[str, Answer], queries: Sequence[SavedQuery], context: ReportContext
) -> Path:
    """Render the page and write it to `path` (its folder created); the path written."""
    page = render_report(answers, {query.name: query for query in queries}, context)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
    except OSError as error:
        raise CommandError(f"cannot write the report to {path}: {error.strerror or error}") from None
    return path


def write_demo_report(
    answers: Mapping[str, Answer], queries: Iterable[SavedQuery], config: StageConfig, path: Path, *, first: date,
    last: date,
) -> Path:
    """The demo's report, from the saved queries the demo ran over its local lake and their answers."""
    context = ReportContext(
        stage=config.stage, zone=config.timezone, first_day=first, last_day=last,
        source="DuckDB over the demo's local lake", generated_at=datetime.now(timezone.utc),
    )
    return write_report(path, answers, report_queries(config, queries), context)

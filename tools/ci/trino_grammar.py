"""Trino's grammar over every statement the project sends Athena: what passes here is what Athena can parse.

Athena engine 3 runs Trino but does not say which release, and the local engines are laxer than Trino: DuckDB
and sqlglot's `athena` reader accept `x IS TRUE`, which Trino's grammar has only since 482 (2026-06), so
queries that passed every local test failed to parse on Athena. This parses each statement with Trino's own
grammar: npm dt-sql-parser's `TrinoSQL` (an ANTLR build of Trino's SqlBase.g4), bundled for Node with esbuild
(dt-sql-parser's ESM build cannot be imported by Node directly) into a scratch folder, and run over all the
statements in ONE Node process (tools/ci/trino_grammar.mjs).

The statements, as Athena receives them, for each stage:
- every saved query as composed: the named query's text, which `tools query` sends too;
- the Athena compaction's two statements as its plan step writes them: the SELECT inside the UNLOAD (UNLOAD is
  Athena's own statement, which Trino's grammar does not have) and the day's report;
- every query of `tools report`, narrowed to the days of `--days N` for several N, and without `--days`.

Before its answers are trusted, the grammar must refuse a control statement (`IS TRUE`) and pass its
equivalent; a check that cannot fail proves nothing.

    python -m tools.ci.trino_grammar    # every stage of cdk.json; exit 1 naming each statement that fails
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Iterable, Sequence

from analytics import SavedQuery, athena_compaction_templates, stage_queries
from lambdas.etl.athena_engine import plan
from lambdas.etl.handler import EtlSettings
from stacks.config import PROJECT_ROOT, ConfigError, StageConfig, load_stage, read_stages
from tools.cli import CommandError
from tools.operate.report import limited_to_days, report_days, report_queries

ENTRY = Path(__file__).with_name("trino_grammar.mjs")
NODE_BIN = PROJECT_ROOT / "node_modules" / ".bin"
# `tools report --days N` for these N (None: without --days, every day the stage shows).
REPORT_DAYS = (None, 1, 7, 31)
# The control pair: Trino before 482 refuses the first; the second is how the project writes it.
REFUSED_CONTROL = "SELECT (1 > 0) IS TRUE AS control"
ACCEPTED_CONTROL = "SELECT COALESCE(1 > 0, false) AS control"
# How the plan step writes the UNLOAD around the day's SELECT (lambdas/etl/athena_engine.py `plan`).
_UNLOAD = re.compile(r"\AUNLOAD \(\n(?P<select>.+)\n\) TO 's3://[^']+/' WITH \([^()]*\)\Z", re.DOTALL)


@dataclass(frozen=True)
class Statement:
    sender: str  # what sends it to Athena, for which stage
    sql: str


@dataclass(frozen=True)
class GrammarError:
    line: int  # 1-based, in the statement
    column: int  # 1-based
    message: str


@dataclass(frozen=True)
class Failure:
    statement: Statement
    errors: tuple[GrammarError, ...]

    def __str__(self) -> str:
        lines = self.statement.sql.splitlines()
        described = [self.statement.sender]
        for error in self.errors:
            text = lines[error.line - 1].strip() if 0 < error.line <= len(lines) else ""
            described.append(f"  line {error.line}, column {error.column}: {error.message}: {text}")
        return "\n".join(described)


class TrinoGrammar:
    """The bundled grammar in a folder of its own (`build`), asked about many statements at once (`errors`)."""

    def __init__(self, bundle: Path):
        self.bundle = bundle

    @classmethod
    def build(cls, folder: Path) -> TrinoGrammar:
        """Bundle tools/ci/trino_grammar.mjs and dt-sql-parser into `folder` with the pinned esbuild (~1 s)."""
        bundle = folder / "trino_grammar.cjs"
        _node_tool(
            "esbuild", str(ENTRY), "--bundle", "--platform=node", "--format=cjs", "--log-level=warning",
            f"--outfile={bundle}",
        )
        return cls(bundle)

    def errors(self, statements: Sequence[str]) -> list[tuple[GrammarError, ...]]:
        """Each statement's syntax errors (none when Trino's grammar parses it as exactly one statement)."""
        answers = json.loads(_node_tool("node", str(self.bundle), input=json.dumps(list(statements))))
        return [_errors(answer) for answer in answers]


def check(grammar: TrinoGrammar, statements: Iterable[Statement]) -> list[Failure]:
    """The statements Trino's grammar refuses, each with its errors, once the controls show it can refuse.
    Each distinct text is parsed once."""
    statements = list(statements)
    texts = list(dict.fromkeys([REFUSED_CONTROL, ACCEPTED_CONTROL, *(statement.sql for statement in statements)]))
    errors = dict(zip(texts, grammar.errors(texts)))
    if not errors[REFUSED_CONTROL] or errors[ACCEPTED_CONTROL]:
        raise CommandError(
            f"the Trino grammar check cannot be trusted: it should refuse {REFUSED_CONTROL!r} and pass "
            f"{ACCEPTED_CONTROL!r}, but answered {errors[REFUSED_CONTROL]} and {errors[ACCEPTED_CONTROL]}"
        )
    return [Failure(statement, errors[statement.sql]) for statement in statements if errors[statement.sql]]


def athena_statements(config: StageConfig, now: datetime | None = None) -> list[Statement]:
    """Every statement the stage sends Athena, as it sends it (see the module's docstring)."""
    queries = stage_queries(config)
    stage = f"stage {config.stage}"
    return [
        *(Statement(f"{stage}: saved query {query.name} (named query, `tools query`)", query.sql) for query in queries),
        *compaction_statements(config),
        *report_statements(config, queries, now),
    ]


def compaction_statements(config: StageConfig) -> list[Statement]:
    """The Athena compaction's statements for a day of the stage, as its plan step writes them."""
    templates = athena_compaction_templates(config.glue_database)
    start = date.fromisoformat(config.analytics_start_date)
    # Stand-ins for the buckets the stack names: they appear in the UNLOAD's destination only, not in the SQL.
    settings = EtlSettings("raw-bucket", "enriched-bucket", config.timezone, analytics_start_date=start)
    planned = plan({"date": start.isoformat()}, templates, settings)
    stage = f"stage {config.stage}"
    return [
        Statement(f"{stage}: Athena compaction, the SELECT its UNLOAD writes", unload_select(planned["unload"])),
        Statement(f"{stage}: Athena compaction, the day's report", planned["report"]),
    ]


def report_statements(
    config: StageConfig, queries: Sequence[SavedQuery], now: datetime | None = None
) -> list[Statement]:
    """`tools report`'s queries as each `--days` of REPORT_DAYS narrows them."""
    statements = []
    for days in REPORT_DAYS:
        first, last = report_days(config, days, now)
        flag = "" if days is None else f" --days {days}"
        for query in report_queries(config, queries):
            sender = f"stage {config.stage}: `tools report{flag}`, query {query.name}"
            statements.append(Statement(sender, limited_to_days(query.sql, first, last)))
    return statements


def unload_select(unload: str) -> str:
    """The SELECT of an UNLOAD as the plan step writes it; ValueError for any other shape."""
    found = _UNLOAD.match(unload)
    if not found:
        raise ValueError(f"not an UNLOAD as the Athena compaction's plan writes it: {unload[:80]!r}...")
    return found.group("select")


def _errors(answer: dict) -> tuple[GrammarError, ...]:
    errors = tuple(GrammarError(**error) for error in answer["errors"])
    if not errors and answer["statements"] != 1:
        return (GrammarError(1, 1, f"Athena runs one statement per query; this text holds {answer['statements']}"),)
    return errors


def _node_tool(tool: str, *arguments: str, input: str | None = None) -> str:
    """Run a tool of node_modules/.bin (esbuild's launcher starts `node`, so that folder leads PATH too)."""
    executable = NODE_BIN / tool
    if not executable.exists():
        raise CommandError(f"{executable} is missing: run `make setup` (npm ci installs the pinned {tool})")
    environment = {**os.environ, "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [str(executable), *arguments], input=input, capture_output=True, text=True, env=environment, check=False
    )
    if result.returncode != 0:
        message = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
        raise CommandError(f"{tool} {Path(arguments[0]).name} failed (exit {result.returncode}): {message}")
    return result.stdout


def main() -> int:
    try:
        stages = read_stages()
        configs = [load_stage(stages, name) for name in stages]
        statements = [statement for config in configs for statement in athena_statements(config)]
        with tempfile.TemporaryDirectory(prefix="trino-grammar-") as folder:
            failures = check(TrinoGrammar.build(Path(folder)), statements)
    except (ConfigError, CommandError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for failure in failures:
        print(failure)
    print(f"Trino grammar: {len(failures)} of {len(statements)} statements refused ({len(configs)} stages)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

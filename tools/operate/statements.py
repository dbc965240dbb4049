"""Every statement a stage sends Athena, as it sends it: what the Trino grammar check (tools/ci/trino_grammar.py)
parses offline and what `tools doctor` has Athena itself analyse (EXPLAIN) on a deployed stage.

- every saved query as composed: the named query's text, which `tools query` sends too;
- the Athena compaction's two statements as its plan step writes them: the SELECT inside the UNLOAD (UNLOAD is
  Athena's own statement, which Trino's grammar does not have) and the day's report;
- every query of `tools report`, narrowed to the days of `--days N` for several N, and without `--days`;
- on a pseudonymized stage, the analysts' saved queries and `tools report --pseudonymized`'s, likewise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Sequence

from analytics import SavedQuery, analyst_queries, athena_compaction_templates, stage_queries
from lambdas.etl.athena_engine import plan
from lambdas.etl.handler import EtlSettings
from stacks.config import StageConfig
from tools.operate.report import limited_to_days, report_days, report_queries

# `tools report --days N` for these N (None: without --days, every day the stage shows).
REPORT_DAYS = (None, 1, 7, 31)
# How the plan step writes the UNLOAD around the day's SELECT (lambdas/etl/athena_engine.py `plan`).
_UNLOAD = re.compile(r"\AUNLOAD \(\n(?P<select>.+)\n\) TO 's3://[^']+/' WITH \([^()]*\)\Z", re.DOTALL)


@dataclass(frozen=True)
class Statement:
    sender: str  # what sends it to Athena, for which stage
    sql: str



def athena_statements(config: StageConfig, now: datetime | None = None) -> list[Statement]:
    """Every statement the stage sends Athena, as it sends it (see the module's docstring)."""
    queries = stage_queries(config)
    stage = f"stage {config.stage}"
    statements = [
        *(Statement(f"{stage}: saved query {query.name} (named query, `tools query`)", query.sql) for query in queries),
        *compaction_statements(config),
        *report_statements(config, queries, now),
    ]
    if config.pseudonymized:
        analysts = analyst_queries(config)
        statements += [
            Statement(f"{stage}: analysts' saved query {query.name} (`tools query --pseudonymized`)", query.sql)
            for query in analysts
        ]
        statements += report_statements(config, analysts, now, flags=" --pseudonymized")
    return statements


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
    config: StageConfig, queries: Sequence[SavedQuery], now: datetime | None = None, flags: str = ""
) -> list[Statement]:
    """`tools report`'s queries (`queries`: those of `tools report{flags}`) as each `--days` of REPORT_DAYS narrows
    them."""
    statements = []
    for days in REPORT_DAYS:
        first, last = report_days(config, days, now)
        flag = flags if days is None else f"{flags} --days {days}"
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

"""Trino's grammar over every statement Athena receives (tools/ci/trino_grammar.py): the local engines are laxer
than Athena, so a statement that runs on DuckDB must also parse on Athena's Trino.

The grammar first proves it can fail (the controls), then every stage's statements must parse: the stages of
cdk.json and the settings the tests run the queries with.
"""

from __future__ import annotations

import pytest

from analytics import analyst_queries, athena_compaction_templates, load_query, stage_queries
from lambdas.etl.athena_engine import plan
from lambdas.etl.handler import EtlSettings
from stacks.config import load_stage
from tests.stage_settings import STAGES, stages_with
from tools.cli import CommandError
from tools.ci import trino_grammar
from tools.ci.trino_grammar import ACCEPTED_CONTROL, REFUSED_CONTROL, TrinoGrammar, check
from tools.operate.statements import REPORT_DAYS, Statement, athena_statements, unload_select
from tools.operate.report import report_queries

# Every stage of cdk.json, and the settings the tests use: their database (`telegram_lake_test`, a stage named
# `test`) and zones other than cdk.json's, one of them half an hour off UTC.
CONFIGS = [
    *(load_stage(STAGES, name) for name in STAGES),
    load_stage({"test": {**STAGES["dev"], "timezone": "Asia/Kolkata"}}, "test"),
    load_stage(stages_with("prod", timezone="UTC", etl_engine="athena", raw_window_days=31), "prod"),
    load_stage(stages_with("dev", analyst_access="pseudonymized"), "dev"),  # its analysts' queries too
]
IS_COMMAND = "COALESCE(length(marked_command) > 1 AND substr(marked_command, 1, 1) = '/', false) AS is_command"


@pytest.fixture(scope="module")
def grammar(tmp_path_factory) -> TrinoGrammar:
    return TrinoGrammar.build(tmp_path_factory.mktemp("trino-grammar"))


def test_the_grammar_refuses_what_trino_refuses_and_passes_what_it_has(grammar):
    refused = {
        REFUSED_CONTROL: "'TRUE'",
        "SELECT x IS FALSE FROM t": "'FALSE'",
        "SELECT x IS NOT UNKNOWN FROM t": "'UNKNOWN'",
        "UNLOAD (SELECT 1) TO 's3://bucket/folder/' WITH (format = 'PARQUET')": "'UNLOAD'",
    }
    accepted = [
        ACCEPTED_CONTROL,
        "SELECT x IS NOT NULL, x IS DISTINCT FROM y, TRY(CAST(j AS MAP(VARCHAR, JSON))) FROM t",
        "SELECT filter(ARRAY[1, 2], v -> v > 1), from_unixtime(0) AT TIME ZONE 'Asia/Kolkata'",
    ]

    errors = grammar.errors([*refused, *accepted])

    for (sql, word), found in zip(refused.items(), errors):
        assert found and word in found[0].message, (sql, found)
    assert errors[len(refused):] == [()] * len(accepted)


def test_a_text_of_two_statements_is_refused_as_athena_refuses_it(grammar):
    [errors] = grammar.errors(["SELECT 1;\n-- a comment; with a semicolon\nSELECT 2"])

    assert [error.message for error in errors] == ["Athena runs one statement per query; this text holds 2"]


def test_the_check_trusts_no_grammar_that_cannot_refuse():
    class PassesEverything:
        def errors(self, statements):
            return [()] * len(statements)

    with pytest.raises(CommandError, match="cannot be trusted"):
        check(PassesEverything(), [Statement("anything", "SELECT 1")])


def test_every_statement_athena_receives_parses_with_trinos_grammar(grammar):
    statements = [statement for config in CONFIGS for statement in athena_statements(config)]

    failures = check(grammar, statements)

    assert not failures, "\n".join(map(str, failures))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda config: f"{config.stage}-{config.timezone}")
def test_the_statements_are_what_each_sender_sends(config):
    queries = stage_queries(config)
    settings = EtlSettings("raw-bucket", "enriched-bucket", config.timezone)
    planned = plan({"date": config.analytics_start_date}, athena_compaction_templates(config.glue_database), settings)

    statements = athena_statements(config)

    texts = [statement.sql for statement in statements]
    assert texts[: len(queries)] == [query.sql for query in queries]  # the named queries, and `tools query`
    assert texts[len(queries) : len(queries) + 2] == [planned["rows"], planned["report"]]
    analysts = analyst_queries(config) if config.pseudonymized else []
    assert len(texts) == len(queries) + 2 + len(REPORT_DAYS) * len(report_queries(config, queries)) + len(analysts) + (
        len(REPORT_DAYS) * len(report_queries(config, analysts))
    )
    if analysts:
        assert texts[-len(analysts) - len(REPORT_DAYS) * len(report_queries(config, analysts)):][: len(analysts)] == [
            query.sql for query in analysts
        ]
    assert all(f"stage {config.stage}:" in statement.sender for statement in statements)


def test_a_statement_trino_refuses_is_named_with_the_grammars_message(grammar):
    query = load_query("daily_message_count", "UTC", "telegram_lake_test")
    assert IS_COMMAND in query.sql
    with_is_true = query.sql.replace(IS_COMMAND, "(length(marked_command) > 1) IS TRUE AS is_command")

    [failure] = check(grammar, [Statement("saved query daily_message_count", with_is_true), Statement("ok", query.sql)])

    assert str(failure).startswith("saved query daily_message_count\n  line ")
    assert "'TRUE' is not valid at this position: (length(marked_command) > 1) IS TRUE AS is_command" in str(failure)


def test_the_unload_is_checked_by_its_select_and_only_in_the_plan_steps_shape():
    assert unload_select("UNLOAD (\nSELECT 1\n) TO 's3://b/staging/' WITH (format = 'PARQUET')") == "SELECT 1"
    with pytest.raises(ValueError, match="not an UNLOAD as the Athena compaction's plan writes it"):
        unload_select("UNLOAD (SELECT 1) TO 's3://b/staging/'")


def test_the_command_names_each_refused_statement_and_fails(monkeypatch, capsys):
    refused = Statement("stage dev: saved query broken", "SELECT\n    x IS TRUE\nFROM t")
    monkeypatch.setattr(trino_grammar, "athena_statements", lambda config: [refused, Statement("fine", "SELECT 1")])

    assert trino_grammar.main() == 1

    output = capsys.readouterr().out
    assert "stage dev: saved query broken\n  line 2, column 10: 'TRUE' is not valid at this position: x IS TRUE" in output
    assert f"Trino grammar: {len(STAGES)} of {2 * len(STAGES)} statements refused ({len(STAGES)} stages)" in output

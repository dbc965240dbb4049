"""The ETL publishes each compacted day's summary as CloudWatch metrics (EMF on standard output), which the
stage's dashboard charts: one document per run, in the stage's namespace, with the day as metadata."""

from __future__ import annotations

import json

import pytest

import lambdas.etl.metrics as etl_metrics
import lambdas.ingest.metrics as ingest_metrics
from tests.test_etl_handler import DAY, message, put_raw, run, s3  # noqa: F401 - s3 is a fixture

NAMESPACE = "TelegramLake/test"


def documents(output: str) -> list[dict]:
    """The EMF documents among the function's output lines (Powertools' log lines are JSON too)."""
    return [line for line in map(json.loads, filter(None, output.splitlines())) if "_aws" in line]


def test_a_compacted_day_publishes_its_summary_once_in_the_stage_namespace(s3, capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE)
    put_raw(s3, DAY, message(1))
    put_raw(s3, DAY, message(2))
    put_raw(s3, DAY, {"update_id": 3, "callback_query": {"id": "x"}})  # not a message: skipped
    put_raw(s3, DAY, b"not json", key=f"telegram/context_date={DAY.isoformat()}/4.json")  # rejected

    summary = run()

    [document] = documents(capsys.readouterr().out)
    [definition] = document["_aws"]["CloudWatchMetrics"]
    assert definition["Namespace"] == NAMESPACE and definition["Dimensions"] == [["service"]]
    assert document["service"] == etl_metrics.SERVICE and document["day"] == DAY.isoformat()
    units = {metric["Name"]: metric["Unit"] for metric in definition["Metrics"]}
    assert units == {**dict.fromkeys(etl_metrics.COUNTS.values(), "Count"), etl_metrics.COMPACTION_SECONDS: "Seconds"}
    published = {name: document[name] for name in units}
    assert published == {
        etl_metrics.ROWS_WRITTEN: [2.0], etl_metrics.OBJECTS_READ: [summary["objects_read"]],
        etl_metrics.DUPLICATES_DROPPED: [0.0], etl_metrics.NON_MESSAGE_UPDATES: [1.0],
        etl_metrics.OBJECTS_REJECTED: [1.0], etl_metrics.COMPACTION_SECONDS: [summary["seconds"]],
    }


def test_an_empty_day_publishes_zero_rows_and_each_run_only_its_own_numbers(s3, capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE)
    put_raw(s3, DAY, message(1))
    run()
    run(DAY.replace(day=DAY.day - 1))  # nothing stored that day

    first, second = documents(capsys.readouterr().out)
    assert first[etl_metrics.ROWS_WRITTEN] == [1.0]
    assert second[etl_metrics.ROWS_WRITTEN] == [0.0] and second["day"] != first["day"]


def test_a_failed_run_publishes_nothing(s3, capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE)
    monkeypatch.setenv("RAW_BUCKET", "no-such-bucket")

    with pytest.raises(Exception):
        run()

    assert documents(capsys.readouterr().out) == []


def test_without_the_variable_the_etl_publishes_where_the_ingest_does(s3, capsys, monkeypatch):
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    put_raw(s3, DAY, message(1))
    run()

    [document] = documents(capsys.readouterr().out)
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == ingest_metrics.DEFAULT_NAMESPACE
    assert etl_metrics.DEFAULT_NAMESPACE == ingest_metrics.DEFAULT_NAMESPACE

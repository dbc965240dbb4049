"""The cost model's and the ETL model's arithmetic (bench/cost.py, bench/etl_model.py): figures, not timings."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bench import cost, etl_model
from bench.cost import Inputs, Line, authorizer_calls, batched, per_million, per_month, today, verdict, xray_traces
from bench.etl_model import MEASURED, athena_day, batched_day, batched_objects, lambda_day, single_object_day
from stacks.config import DEFAULT_RAW_BATCH_SECONDS, MAX_RAW_BATCH_SECONDS

INPUTS = Inputs(MEASURED, handler_log_bytes=500)
VOLUMES = [1_000 * 3**power for power in range(12)]  # 1k to 177M updates a day


def line(lines: list[Line], start: str) -> Line:
    [found] = [line for line in lines if line.name.startswith(start)]
    return found


@pytest.mark.parametrize("updates", [10_000, 1_000_000])
def test_the_lines_billed_per_request_cost_their_list_price_per_million(updates):
    def cost_per_million(lines: list[Line], start: str) -> float:
        return line(lines, start).per_day(updates) / updates * 1e6

    assert cost_per_million(today(INPUTS), "API Gateway REST") == pytest.approx(3.50)
    assert cost_per_million(batched(INPUTS), "API Gateway HTTP") == pytest.approx(1.00)
    assert cost_per_million(today(INPUTS), "S3 PUT of each update") == pytest.approx(5.00)
    assert cost_per_million(today(INPUTS), "S3 PUT of its chats-seen") == pytest.approx(5.00)
    # $0.20 a million requests, 40 ms at 256 MB arm64: 1e6 x 0.04 s x 0.25 GB x $0.0000133334
    ingest = [cost_per_million(batched(INPUTS), f"Ingest Lambda {part}") for part in ("requests", "duration")]
    assert sum(ingest) == pytest.approx(0.20 + 0.133334)
    # A 509-byte line is billed as 5 KB: a million of them are 4.77 GiB at $0.029
    assert cost_per_million(batched(INPUTS), "Firehose Direct PUT") == pytest.approx(5 * 1024 * 1e6 / 2**30 * 0.029)


def test_today_matches_the_issues_own_model_at_a_million_updates_a_day():
    """$3.50 + $0.33 + $10.00 + $0.57 + $0.42 (Lambda engine) or $1.63 (Athena engine), X-Ray aside."""
    for engine, compaction in (("lambda", 0.42), ("athena", 1.63)):
        lines = today(replace(INPUTS, engine=engine))
        untraced = [line for line in lines if not line.name.startswith(cost.XRAY)]
        assert per_million([line(lines, "Compaction")], 1_000_000) == pytest.approx(compaction, abs=0.01)
        assert per_million(untraced, 1_000_000) == pytest.approx(3.50 + 0.33 + 10.00 + 0.56 + compaction, abs=0.03)


@pytest.mark.parametrize("design", [today, batched])
@pytest.mark.parametrize("engine", ["lambda", "athena"])
def test_a_million_updates_cost_no_more_at_a_larger_volume_and_a_month_costs_more(design, engine):
    lines = design(replace(INPUTS, engine=engine))
    millions = [per_million(lines, updates) for updates in VOLUMES]
    months = [per_month(lines, updates) for updates in VOLUMES]

    assert all(later <= earlier + 1e-9 for earlier, later in zip(millions, millions[1:]))
    assert all(later > earlier for earlier, later in zip(months, months[1:]))
    assert per_month(lines, 1_000_000) == pytest.approx(per_million(lines, 1_000_000) * 30)


def test_the_batched_design_costs_a_sixth_of_todays_at_a_million_a_day():
    assert per_million(batched(INPUTS), 1_000_000) < per_million(today(INPUTS), 1_000_000) / 5


def test_x_ray_samples_every_rare_request_and_five_percent_of_a_flood():
    assert xray_traces(0) == 0
    assert xray_traces(100) == pytest.approx(100, rel=0.01)  # a request alone in its second is the second's first
    assert xray_traces(10**11) / 10**11 == pytest.approx(0.05, rel=0.01)
    shares = [xray_traces(updates) / updates for updates in VOLUMES]
    assert all(later < earlier for earlier, later in zip(shares, shares[1:]))


def test_the_authorizer_runs_once_per_cached_answer_at_most():
    assert authorizer_calls(0) == 0 and authorizer_calls(10) == 10
    assert authorizer_calls(10**9) == 86_400 / 300


def test_the_verdict_says_plainly_whether_the_target_is_met():
    cheap = [Line("HTTP API", "$1.00 per million", lambda updates: updates * 1e-6)]
    traced = [*cheap, Line(cost.XRAY, "$5.00 per million", lambda updates: 2.0 + updates * 1e-6)]

    assert verdict(cheap).endswith("met.")
    said = verdict(traced)
    assert said.startswith("Batched design: NOT within $2.50") and "a few dollars a month" in said


def test_the_handler_log_lines_are_the_ingest_handlers_own():
    written = cost.handler_log_lines().splitlines()

    request, metrics = (json.loads(written_line) for written_line in written)
    assert (request["message"], request["outcome"], request["chat_type"]) == ("webhook request", "stored", "supergroup")
    assert request["xray_trace_id"].startswith("1-")
    assert metrics["Stored"] == [1.0] and "_aws" in metrics


def test_a_days_raw_objects_are_about_one_a_minute_whatever_the_volume():
    objects = [batched_objects(MEASURED, updates) for updates in VOLUMES]

    assert all(later >= earlier for earlier, later in zip(objects, objects[1:]))
    assert batched_objects(MEASURED, 10) == pytest.approx(10 * MEASURED.lines_per_update, rel=0.02)  # a batch each
    assert 1_400 < batched_objects(MEASURED, 1_000_000) <= 1_440 < batched_objects(MEASURED, 10**9)
    assert batched_objects(MEASURED, 50_000_000) <= 1_440
    assert batched_objects(MEASURED, 1_000_000, MAX_RAW_BATCH_SECONDS) <= 24 * 3600 / MAX_RAW_BATCH_SECONDS
    # 15-minute batches of a busy hour pass 64 MiB: Firehose closes them early
    assert batched_objects(MEASURED, 10_000_000, MAX_RAW_BATCH_SECONDS) > 24 * 3600 / MAX_RAW_BATCH_SECONDS
    assert etl_model.BATCH_SECONDS == DEFAULT_RAW_BATCH_SECONDS


def test_the_engines_read_what_each_design_stores():
    batches, singles = batched_day(MEASURED, 1_000_000), single_object_day(1_000_000)
    measured = replace(MEASURED, lambda_cpu_ms_per_update=0.1, lambda_cpu_ms_per_request=1.0, rtt_ms=20)

    on_lambda = lambda_day(measured, batches, memory_mb=1_769, concurrency=32)
    assert on_lambda.gets == 2 * batches.objects  # the day's batches and the day before's
    assert on_lambda.cpu_seconds == pytest.approx(0.1e-3 * 1e6 + 1e-3 * on_lambda.gets)
    assert lambda_day(measured, singles, memory_mb=1_769, concurrency=32).gets == 1_000_000
    on_athena = athena_day(measured, batches)
    assert on_athena.scanned_bytes_per_statement == 2 * 1_000_000 * MEASURED.gzip_bytes_per_update
    assert on_athena.gets == 4 * batches.objects and athena_day(measured, singles).gets == 4_000_000


def test_the_models_stage_figures_are_the_stacks():
    from stacks import ingestion

    assert cost.AUTHORIZER_MEMORY_MB == ingestion.AUTHORIZER_MEMORY_MB
    assert cost.AUTHORIZER_CACHE_SECONDS == ingestion.AUTHORIZER_CACHE.to_seconds()
    assert set(json.loads(cost.HTTP_API_ACCESS_LINE)) == set(ingestion.ACCESS_LOG_FIELDS)

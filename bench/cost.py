"""What the lake costs per million updates, today (one S3 object per update) and batched (Firehose), us-east-1.

    python -m bench.cost                   # per million updates and per month, 10k to 10M updates a day
    python -m bench.cost --engine athena   # with the Athena compaction engine (the stage default is lambda)

Each line is a count a day of N updates makes times a list price (on demand, us-east-1, no free tier: the free
tiers of API Gateway and Lambda last 12 months, X-Ray's 100,000 traces a month are always free). Counts come from
the stage's defaults (stacks/config.py, stacks/ingestion.py), the chat's daily rhythm (tools/local/synthetic.py)
and bench.etl's measurements (bench/etl_model.py MEASURED): the bytes of an envelope line and of its share of a
gzip batch, the raw objects a day fills, the compaction engines' cost a day. What is assumed, not measured, says
so on its line. Not counted: what does not grow with updates (the secret, alarms, the dashboard, custom metrics),
queries people run, storage (the raw zone per month kept: 483 bytes per update today, the gzip bytes batched).

Today's figures check the issue's independent model: API Gateway REST $3.50, ingest Lambda $0.33, S3 PUTs of the
update and its chats-seen record $10.00, CloudWatch Logs $0.57, compaction $0.42 (Lambda) / $1.63 (Athena) per
million at 1M updates a day.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import time
from contextlib import redirect_stdout
from dataclasses import dataclass, replace
from typing import Callable
from unittest.mock import patch

from bench.etl_model import (
    BATCH_SECONDS, MEASURED, SINGLE_OBJECT_CPU_MS, Measured, RawDay, athena_day, batched_day, hourly_rates, lambda_day,
    most_updates, single_object_day,
)
from lambdas.ingest.budget import INGEST_MEMORY_MB

VOLUMES = (10_000, 100_000, 1_000_000, 10_000_000)  # updates a day
DAYS_PER_MONTH = 30
TARGET_PER_MILLION = 2.50  # the target for the batched design
GB = 2**30  # AWS bills GB of data as 2^30 bytes (Firehose's examples: 1,048,576 KB per GB)

# Prices, us-east-1, on demand (AWS's pricing pages; each line below names its own).
REST_API_PER_REQUEST = 3.50 / 1e6  # API Gateway REST API, first 333M requests a month
HTTP_API_PER_REQUEST = 1.00 / 1e6  # API Gateway HTTP API, first 300M requests a month (per 512 KB)
LAMBDA_PER_REQUEST = 0.20 / 1e6
LAMBDA_ARM_PER_GB_SECOND = 0.0000133334  # first 6 billion GB-seconds a month
S3_PER_PUT = 0.005 / 1_000  # S3 Standard PUT, COPY, POST, LIST
FIREHOSE_PER_GB = 0.029  # Direct PUT ingestion, first 500 TB a month, each record rounded up to 5 KB
FIREHOSE_RECORD_ROUNDING = 5 * 1024
PARTITIONING_PER_GB = 0.020  # dynamic partitioning, per GB processed (the records' own bytes)
PARTITIONING_PER_OBJECT = 0.005 / 1_000  # dynamic partitioning, per object delivered to S3
JQ_PER_HOUR = 0.07  # dynamic partitioning's inline JQ parsing, per processing hour
LOGS_PER_GB = 0.50  # CloudWatch Logs ingestion (Standard, and Lambda's first 10 TB a month)
XRAY_PER_TRACE = 5.00 / 1e6  # X-Ray traces recorded

# The stage (stacks/ingestion.py): both functions arm64 (stacks/config.py's default) at 256 MB, the authorizer
# traced (the ingest is not: its traces would cost more than the rest of its path); the authorizer's answer cached
# per header value for AUTHORIZER_CACHE.
AUTHORIZER_MEMORY_MB = 256  # stacks/ingestion.py AUTHORIZER_MEMORY_MB (tests/test_cost_model.py holds them equal)
AUTHORIZER_CACHE_SECONDS = 300  # stacks/ingestion.py AUTHORIZER_CACHE (likewise)
# Assumed, not measured here (no AWS account): a warm ingest request's billed duration, today's two PutObjects
# or one PutRecord (the figure, kept for both); an authorizer call (one Secrets Manager read at most).
INGEST_SECONDS = 0.040
AUTHORIZER_SECONDS = 0.050
JQ_SECONDS_PER_RECORD = 100e-6  # JQ 1.6 extracting one field of a small JSON record
# X-Ray's default sampling rule, which API Gateway (today) and Lambda (batched) apply: the first request each
# second, and 5% of the others.
XRAY_RESERVOIR_PER_SECOND, XRAY_RATE = 1, 0.05
XRAY = "X-Ray traces"
# Batched, the ingest writes a chat's chats-seen record at its first update of the day, then at most once a minute
# per container; the containers a steady rate keeps warm: rate x duration, plus one. The synthetic chat has two chats.
CHATS = 2
CHATS_SEEN_SECONDS = 60
# CloudWatch Logs meters each event's bytes plus 26 bytes (PutLogEvents' own accounting, counted here too).
LOG_EVENT_OVERHEAD = 26
# Lambda's own lines per invocation (text format, as documented), the REPORT line of a sampled request with X-Ray's.
LAMBDA_PLATFORM_LINES = (
    "START RequestId: 8f5a2c1e-4b7d-4e9a-9c3f-2d1e0b7a6c5d Version: $LATEST\n",
    "END RequestId: 8f5a2c1e-4b7d-4e9a-9c3f-2d1e0b7a6c5d\n",
    "REPORT RequestId: 8f5a2c1e-4b7d-4e9a-9c3f-2d1e0b7a6c5d\tDuration: 38.61 ms\tBilled Duration: 39 ms\t"
    "Memory Size: 256 MB\tMax Memory Used: 96 MB\t\n",
)
XRAY_REPORT_SUFFIX = "XRAY TraceId: 1-6756f0a4-2f8b1c2d3e4f5a6b7c8d9e0f\tSegmentId: 1a2b3c4d5e6f7a8b\tSampled: true\t\n"
# One access log line per request: today the REST stage's standard JSON fields, batched the HTTP API's
# ACCESS_LOG_FIELDS (stacks/ingestion.py), each as API Gateway fills them in for a stored update.
REST_ACCESS_LINE = (
    '{"requestId":"c6af9ac6-7b61-11e6-9a41-93e8deadbeef","ip":"91.108.6.64","user":"-","caller":"-",'
    '"requestTime":"07/Dec/2026:15:38:38 +0000","httpMethod":"POST","resourcePath":"/webhook","status":"200",'
    '"protocol":"HTTP/1.1","responseLength":"0"}'
)
HTTP_API_ACCESS_LINE = (
    '{"requestId":"Ab1CdEfGhIjKlMn=","ip":"91.108.6.64","caller":"-","user":"-",'
    '"requestTime":"07/Dec/2026:15:38:38 +0000","httpMethod":"POST","routeKey":"POST /webhook","status":"200",'
    '"protocol":"HTTP/1.1","responseLength":"0","authorizerError":"-","integrationError":"-"}'
)


@dataclass(frozen=True)
class Inputs:
    measured: Measured  # bench.etl's: line and gzip bytes per update, the raw objects, the engines' work
    handler_log_bytes: int  # the ingest handler's own lines for one stored update (`handler_log_lines`)
    engine: str = "lambda"  # the compaction engine (stage setting `etl_engine`, default lambda)
    batch_seconds: int = BATCH_SECONDS  # stage setting `raw_batch_seconds`


@dataclass(frozen=True)
class Line:
    """One cost: what it is, the price it is billed at, and its dollars for a day of N updates."""

    name: str
    price: str
    per_day: Callable[[int], float]


def today(inputs: Inputs) -> list[Line]:
    """The design before batching: REST API, one S3 object per update and a chats-seen record per update."""
    return [
        Line("API Gateway REST API requests", "$3.50 per million", lambda n: n * REST_API_PER_REQUEST),
        *_ingest(),
        Line("S3 PUT of each update's object", "$0.005 per 1,000 PUT", lambda n: n * S3_PER_PUT),
        Line("S3 PUT of its chats-seen record", "$0.005 per 1,000 PUT", lambda n: n * S3_PER_PUT),
        Line("CloudWatch Logs: ingest and access log", "$0.50 per GB ingested",
             lambda n: n * request_log_bytes(inputs, REST_ACCESS_LINE, n, traced=True) / GB * LOGS_PER_GB),
        Line(f"{XRAY} (API Gateway samples)", "$5.00 per million traces", lambda n: xray_traces(n) * XRAY_PER_TRACE),
        _compaction(inputs, single_object_day, cpu_ms_per_update=SINGLE_OBJECT_CPU_MS),
    ]


def batched(inputs: Inputs) -> list[Line]:
    """The batched design: HTTP API with a cached Lambda authorizer, one Firehose record per update."""
    measured = inputs.measured
    line_bytes = measured.line_bytes_per_update / measured.lines_per_update

    def objects(n: int) -> float:
        return batched_day(measured, n, inputs.batch_seconds).objects

    return [
        Line("API Gateway HTTP API requests", "$1.00 per million", lambda n: n * HTTP_API_PER_REQUEST),
        Line("Lambda authorizer (answer cached 5 min)", "$0.20 per million + GB-s",
             lambda n: authorizer_calls(n) * _invocation(AUTHORIZER_MEMORY_MB, AUTHORIZER_SECONDS)),
        *_ingest(),
        Line("Firehose Direct PUT ingestion", "$0.029 per GB, records rounded up to 5 KB",
             lambda n: n * _rounded(line_bytes) / GB * FIREHOSE_PER_GB),
        Line("Firehose dynamic partitioning: bytes", "$0.020 per GB",
             lambda n: n * line_bytes / GB * PARTITIONING_PER_GB),
        Line("Firehose dynamic partitioning: objects", "$0.005 per 1,000 objects",
             lambda n: objects(n) * PARTITIONING_PER_OBJECT),
        Line("Firehose JQ parsing (assumed 0.1 ms a record)", "$0.07 per hour",
             lambda n: n * JQ_SECONDS_PER_RECORD / 3600 * JQ_PER_HOUR),
        Line("S3 PUT of the batches", "$0.005 per 1,000 PUT", lambda n: objects(n) * S3_PER_PUT),
        Line("S3 PUT of chats-seen records (once a minute)", "$0.005 per 1,000 PUT",
             lambda n: chats_seen_puts(n) * S3_PER_PUT),
        Line("CloudWatch Logs: ingest, authorizer, access log", "$0.50 per GB ingested",
             lambda n: (n * request_log_bytes(inputs, HTTP_API_ACCESS_LINE, n, traced=False)
                        + authorizer_calls(n) * _platform_bytes(sampled=True)) / GB * LOGS_PER_GB),
        Line(f"{XRAY} (the authorizer's calls; the ingest is not traced)", "$5.00 per million traces",
             lambda n: authorizer_calls(n) * XRAY_PER_TRACE),
        _compaction(inputs, lambda n: batched_day(measured, n, inputs.batch_seconds)),
    ]


def _ingest() -> list[Line]:
    return [
        Line("Ingest Lambda requests", "$0.20 per million", lambda n: n * LAMBDA_PER_REQUEST),
        Line("Ingest Lambda duration (assumed 40 ms, 256 MB arm64)", "$0.0000133334 per GB-second",
             lambda n: n * INGEST_SECONDS * INGEST_MEMORY_MB / 1024 * LAMBDA_ARM_PER_GB_SECOND),
    ]


def _compaction(inputs: Inputs, raw_day: Callable[[int], RawDay], cpu_ms_per_update: float | None = None) -> Line:
    """The day's compaction by the stage's engine (bench/etl_model.py), at the stage default's 1,024 MB."""
    measured = inputs.measured
    if cpu_ms_per_update is not None:  # before batching: the measured CPU per object, requests included
        measured = replace(measured, lambda_cpu_ms_per_update=cpu_ms_per_update, lambda_cpu_ms_per_request=0.0)
    if inputs.engine == "athena":
        return Line("Compaction, Athena engine (bench/etl_model.py)", "$5 per TB scanned, S3 GET/LIST, Step Functions",
                    lambda n: athena_day(measured, raw_day(n)).cost)
    return Line("Compaction, Lambda engine (bench/etl_model.py)", "S3 GET/LIST, Lambda GB-seconds",
                lambda n: lambda_day(measured, raw_day(n), memory_mb=1_024, concurrency=32).cost)


def _invocation(memory_mb: int, seconds: float) -> float:
    return LAMBDA_PER_REQUEST + seconds * memory_mb / 1024 * LAMBDA_ARM_PER_GB_SECOND


def _rounded(record_bytes: float) -> float:
    return math.ceil(record_bytes / FIREHOSE_RECORD_ROUNDING) * FIREHOSE_RECORD_ROUNDING


def authorizer_calls(updates: int) -> float:
    """The authorizer runs once per cached answer (one header value), at most once per request."""
    return min(updates, 86_400 / AUTHORIZER_CACHE_SECONDS) if updates else 0.0


def xray_traces(updates: int) -> float:
    """The requests X-Ray's default rule samples in a day: per second, the first (when one arrives: 1 - e^-r for r
    requests a second) and 5% of the rest, hour by hour of the chat's rhythm."""
    traces = 0.0
    for rate in hourly_rates(updates):
        first = XRAY_RESERVOIR_PER_SECOND * (1 - math.exp(-rate / XRAY_RESERVOIR_PER_SECOND))
        traces += 3600 * (first + XRAY_RATE * (rate - first))
    return traces


def chats_seen_puts(updates: int) -> float:
    """The batched ingest's chats-seen records: per chat and warm container, at most one a minute (never more than
    one per update)."""
    puts = 0.0
    for rate in hourly_rates(updates):
        containers = rate * INGEST_SECONDS + 1
        puts += min(rate * 3600, containers * CHATS * 3600 / CHATS_SEEN_SECONDS)
    return puts


def request_log_bytes(inputs: Inputs, access_line: str, updates: int, *, traced: bool) -> float:
    """What one request writes to CloudWatch Logs, on average: the handler's lines, Lambda's own (the REPORT line
    longer when X-Ray samples the request, if the function is `traced`), and the stage's access log line."""
    sampled = xray_traces(updates) / updates if updates and traced else 0.0
    return (
        inputs.handler_log_bytes + 2 * LOG_EVENT_OVERHEAD
        + sampled * _platform_bytes(sampled=True) + (1 - sampled) * _platform_bytes(sampled=False)
        + len(access_line) + LOG_EVENT_OVERHEAD
    )


def _platform_bytes(sampled: bool) -> int:
    lines = "".join(LAMBDA_PLATFORM_LINES) + (XRAY_REPORT_SUFFIX if sampled else "")
    return len(lines.encode()) + len(LAMBDA_PLATFORM_LINES) * LOG_EVENT_OVERHEAD


def handler_log_lines() -> str:
    """The ingest handler's own log lines for one stored update: its request line and its EMF metrics, as its code
    writes them (`_answer` and the metrics flush), with Lambda's trace id in the environment."""
    from lambdas.ingest import handler as ingest

    written = io.StringIO()
    trace = "Root=1-6756f0a4-2f8b1c2d3e4f5a6b7c8d9e0f;Parent=1a2b3c4d5e6f7a8b;Sampled=0"
    log_handler = ingest.logger.registered_handler
    stream = log_handler.stream
    log_handler.setStream(written)
    try:
        with patch.dict(os.environ, {"_X_AMZN_TRACE_ID": trace}), redirect_stdout(written):
            ingest._answer(  # the handler's own request line, as it writes it
                time.perf_counter(), "stored", 200, "", ingest.logger.info,
                update_id=873_412_345, update_type="message", chat_id=-1001234567890, chat_type="supergroup",
            )
            ingest.metrics.flush_metrics()
    finally:
        log_handler.setStream(stream)
    return written.getvalue()


def per_million(lines: list[Line], updates: int) -> float:
    return sum(line.per_day(updates) for line in lines) / updates * 1e6


def per_month(lines: list[Line], updates: int) -> float:
    return sum(line.per_day(updates) for line in lines) * DAYS_PER_MONTH


def render(inputs: Inputs) -> str:
    """Both designs line by line, per million updates at each volume, then per month, then the verdict."""
    designs = (("today", today(inputs)), ("batched", batched(inputs)))
    header = " | ".join(f"{_count(volume)}/day" for volume in VOLUMES)
    out = [
        f"Per million updates, us-east-1 list prices, compaction by the {inputs.engine} engine, "
        f"raw_batch_seconds {inputs.batch_seconds}:",
    ]
    for name, lines in designs:
        out += ["", f"| {name} | price | {header} |", "|---|---|" + "---|" * len(VOLUMES)]
        for line in lines:
            cells = " | ".join(f"${line.per_day(volume) / volume * 1e6:,.3f}" for volume in VOLUMES)
            out.append(f"| {line.name} | {line.price} | {cells} |")
        totals = " | ".join(f"**${per_million(lines, volume):,.2f}**" for volume in VOLUMES)
        out.append(f"| total | | {totals} |")
    out += ["", f"Per month ({DAYS_PER_MONTH} days):", "", "| updates/day | today | batched |", "|---|---|---|"]
    for volume in VOLUMES:
        out.append(" | ".join([f"| {volume:,}", *(f"${per_month(lines, volume):,.2f}" for _, lines in designs)]) + " |")
    out += ["", verdict(designs[1][1])]
    return "\n".join(out)


def verdict(lines: list[Line]) -> str:
    """Whether the batched design meets the issue's target, plainly, and what keeps it over where it does not."""
    over = [volume for volume in VOLUMES if per_million(lines, volume) > TARGET_PER_MILLION]
    if not over:
        return f"Batched design: at most ${TARGET_PER_MILLION:.2f} per million updates at every volume: met."
    met_from = most_updates(lambda updates: per_million(lines, updates) > TARGET_PER_MILLION) + 1
    figures = "; ".join(
        f"{_count(volume)}/day ${per_million(lines, volume):,.2f} (${per_month(lines, volume):,.2f} a month)"
        for volume in over
    )
    return (
        f"Batched design: NOT within ${TARGET_PER_MILLION:.2f} per million updates below about {_count(met_from)} "
        f"updates a day: {figures}. There the costs per minute (a batch, a chats-seen record) and per cached "
        "answer (the authorizer) weigh most, though they add up to a few dollars a month."
    )


def _count(updates: int) -> str:
    return f"{updates // 1_000_000:,}M" if updates >= 1_000_000 else f"{updates // 1_000:,}k"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cost", description=__doc__.split("\n")[0])
    parser.add_argument("--engine", choices=("lambda", "athena"), default="lambda", help="the compaction engine")
    parser.add_argument("--batch-seconds", type=int, default=BATCH_SECONDS, help="the stage's raw_batch_seconds")
    args = parser.parse_args()
    print(render(Inputs(MEASURED, len(handler_log_lines().encode()), args.engine, args.batch_seconds)))


if __name__ == "__main__":
    main()

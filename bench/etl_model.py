"""The raw zone and the two ETL engines at scale: bench.etl's measurements put through AWS's limits and prices.

    python -m bench.etl_model                       # with the inputs last measured (MEASURED)
    python -m bench.etl_model --lambda-cpu-ms 0.2   # with another CPU cost per update
                                                    # (`python -m bench.etl` prints it with what it has just measured)

The raw zone (stacks/ingestion.py): the stage's Firehose stream opens a batch per day's folder at a line's arrival
and closes it `raw_batch_seconds` later (T, 60 s by default), or at 64 MiB of lines before gzip. With lines arriving
at r a second, a batch and the wait for the next line last T + 1/r, so an hour of the chat's rhythm
(tools/local/synthetic.py HOURLY_WEIGHTS) gives 3,600 / (T + 1/r) batches, each split again per 64 MiB:

    objects per day = sum over the day's hours of 3,600 / (T + 1/r) x ceil(r x T x bytes per line / 64 MiB)

about 1,440 at any volume below ~100M updates a day (1/r vanishes, no batch reaches 64 MiB); before batching, one
object per update.

Lambda engine, one function run per day, 15 minutes at most:

    time = max((CPU per update x N + CPU per request x GETs) / vCPU share, GETs x RTT / READ_CONCURRENCY,
               both days' gzip bytes / network)

GETs: the day's objects and the day before's batches (read for which updates that day already holds; a single-update
object only when it is one of the day's updates). Its CPU
work is one Python thread (the GETs wait in threads, parsing and flattening hold the interpreter lock), so a function
gets at most one vCPU's worth of it: memory / 1,769 MB, capped at 1. The CPU figures are this machine's, fitted
over the measured sizes (bench.etl `cpu_fit`); a Lambda vCPU may be slower (the `CompactionSeconds` metric says).
Memory: the ETL's peak at
the largest measured size plus its growth per update beyond it (the day's copies as Arrow columns, the index arrays
that sort them, one row group being written), a linear extrapolation.

Athena engine, Step Functions: plan, the UNLOAD and the report side by side, publish:

    bytes scanned per statement = (the day + the day before) x gzip bytes per update x N

Athena bills the bytes it reads from S3, the gzip bytes. A text table is read whole, so each statement GETs every
raw object of both days once: with batches a few thousand GETs, not 4 x N, so S3's 5,500 GETs per second per prefix
no longer bound the queries. What does is Athena's work itself, against its DML timeout (30 minutes by default, at
most 240): a gzip object is one split, read by one worker, so a run's work spreads over at most 2 x the day's objects
workers. The model takes the local engine's "lines" and "SQL" time per update (DuckDB on this machine, bench.etl) as
the work, and says how many workers must run at once to finish within the timeout (Athena does not publish how many
it runs). The stage's `athena_bytes_scanned_cutoff` must stay above the bytes each statement scans. The publish
Lambda merges the day's rows (N x rows per update) at the measured merge rate.

Prices: us-east-1, on demand: Athena $5 per TB scanned (10 MB minimum per statement), S3 Standard $0.0004 per
1,000 GETs and $0.005 per 1,000 LISTs, Step Functions Standard $0.025 per 1,000 state transitions (about 8 a run),
Lambda arm64 $0.0000133334 per GB-second.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, replace

from lambdas.common.layout import BATCH_MAX_MIB
from stacks.config import DEFAULT_RAW_BATCH_SECONDS
from tools.local.synthetic import HOURLY_WEIGHTS

LAMBDA_LIMIT_SECONDS = 15 * 60
FULL_VCPU_MB = 1_769  # the memory at which a function has the equivalent of one vCPU
MAX_LAMBDA_MEMORY_MB = 10_240
S3_GETS_PER_SECOND = 5_500  # per partitioned prefix; Athena's reads share it
KEYS_PER_LIST = 1_000
# What a function reads from S3 per second, all connections together: an assumption (AWS publishes no figure);
# even at 10M updates a day the two days' gzip bytes take under a minute at this rate.
LAMBDA_NETWORK_BYTES_PER_SECOND = 50e6
ATHENA_DML_TIMEOUT_SECONDS = 30 * 60  # the default quota
ATHENA_DML_TIMEOUT_MAX_SECONDS = 240 * 60  # the most a quota increase gives
STATEMENTS = 2  # the UNLOAD and the report, each over the day and the day before
DAYS_READ = 2
MIN_SCAN_BYTES = 10 * 2**20
TB = 2**40
PRICE_PER_TB_SCANNED = 5.0
PRICE_PER_GET = 0.0004 / 1_000
PRICE_PER_LIST = 0.005 / 1_000
PRICE_PER_TRANSITION = 0.025 / 1_000
TRANSITIONS_PER_RUN = 8
PRICE_PER_GB_SECOND = 0.0000133334
PUBLISH_MEMORY_MB = 2_048  # stacks/athena_compaction.py STEPS_MEMORY_MB
# The raw delivery stream (stacks/ingestion.py): a batch per day folder every `raw_batch_seconds`, or at BATCH_MAX_MIB.
BATCH_SECONDS = DEFAULT_RAW_BATCH_SECONDS
BATCH_BYTES = BATCH_MAX_MIB * 2**20
OBJECTS_TARGET = 1_500  # the bound on a day's raw objects
# How many of a statement's splits Athena reads at once: an assumption (Athena publishes no figure; a statement over
# two days of batches offers about 2,880). The "which engine" table takes it; the Athena table says what each day needs.
ATHENA_WORKERS = 32
UPDATES_PER_DAY = (1_000_000, 5_000_000, 10_000_000, 50_000_000)
# (memory MB, READ_CONCURRENCY): the stage default, prod's settings in cdk.json, and more memory for larger days.
LAMBDA_SETTINGS = ((1_024, 32), (2_048, 64), (4_096, 64), (MAX_LAMBDA_MEMORY_MB, 64))


@dataclass(frozen=True)
class Measured:
    """What bench.etl measures that the model takes (per update: per distinct update of the day)."""

    lambda_cpu_ms_per_update: float  # the Lambda engine's own CPU ("ETL CPU s") per update, beside
    lambda_cpu_ms_per_request: float  # its CPU per S3 request (botocore's handling, whatever the object holds)
    lambda_peak_mb: float  # its "ETL peak MB" at `at_updates`
    lambda_mb_per_1k_updates: float  # its "ETL +MB" growth per 1,000 more updates (the two largest sizes)
    at_updates: int
    lines_per_update: float  # every copy: redeliveries and Firehose's duplicates
    line_bytes_per_update: float  # the day's lines, gunzipped
    gzip_bytes_per_update: float  # the day's batches, as stored and scanned
    rows_per_update: float
    parquet_bytes_per_row: float
    merge_rows_per_second: float  # the publish step's merge (staged_batches into write_batches)
    athena_work_ms_per_update: float  # the local Athena engine's "lines" + "SQL" seconds (both days' lines)
    rtt_ms: float


# bench.etl on this project's 2-core machine, 1k, 10k and 100k updates, 20 ms RTT, 2026-12-07 16:17 UTC, shared with
# other engineers' test runs (load about 4 on 2 cores): `make bench` (docs/performance.md).
MEASURED = Measured(
    lambda_cpu_ms_per_update=0.066,
    lambda_cpu_ms_per_request=1.09,
    lambda_peak_mb=199,
    lambda_mb_per_1k_updates=0.43,
    at_updates=100_000,
    lines_per_update=1.046,
    line_bytes_per_update=533,
    gzip_bytes_per_update=65,
    rows_per_update=0.913,
    parquet_bytes_per_row=16,
    merge_rows_per_second=939_026,
    athena_work_ms_per_update=0.137,
    rtt_ms=20,
)
# Before batching (bench.etl on single-update objects, 2026-11-28 and 2026-12-03): one object per update, its
# body as received; the Lambda engine's CPU per update on a good day, most of it per-object request handling.
SINGLE_OBJECT_BYTES = 483
SINGLE_OBJECT_CPU_MS = 0.52


@dataclass(frozen=True)
class RawDay:
    """A day of the raw zone as the engines read it: N updates in `objects` objects of `scanned_bytes` in all, and
    how many objects of the day before the Lambda engine fetches for the updates that day already holds."""

    updates: int
    objects: float
    scanned_bytes: float
    claim_objects: float


def batched_day(measured: Measured, updates: int, batch_seconds: int = BATCH_SECONDS) -> RawDay:
    """A day of batches; of the day before (about as many), every batch may hold a copy of one of the day's updates."""
    objects = batched_objects(measured, updates, batch_seconds)
    return RawDay(updates, objects, updates * measured.gzip_bytes_per_update, claim_objects=objects)


def single_object_day(updates: int) -> RawDay:
    """The raw zone before batching: one object per update; of the day before, the Lambda engine fetches only an
    update the day holds again (lambdas/etl/day.py `may_claim`: a few redeliveries, counted as none)."""
    return RawDay(updates, updates, updates * SINGLE_OBJECT_BYTES, claim_objects=0)


def batched_objects(measured: Measured, updates: int, batch_seconds: int = BATCH_SECONDS) -> float:
    """The batches a day of `updates` fills (the module's formula), hour by hour of the chat's rhythm."""
    line_bytes = measured.line_bytes_per_update / measured.lines_per_update
    objects = 0.0
    for rate in hourly_rates(updates * measured.lines_per_update):  # lines a second
        if rate:
            splits = math.ceil(rate * batch_seconds * line_bytes / BATCH_BYTES)
            objects += 3600 / (batch_seconds + 1 / rate) * splits
    return objects


def hourly_rates(per_day: float) -> list[float]:
    """How many a second arrive in each hour of a day of `per_day`, by the synthetic chat's daily rhythm."""
    return [per_day * weight / sum(HOURLY_WEIGHTS) / 3600 for weight in HOURLY_WEIGHTS]


def most_updates(fits, upper: int = 10**10) -> int:
    """The largest number of updates a day for which `fits(updates)` holds (it holds for fewer, not for more)."""
    low, high = 0, upper
    while high - low > max(1, low // 1000):
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


@dataclass(frozen=True)
class LambdaDay:
    updates: int
    memory_mb: int
    concurrency: int
    gets: float
    cpu_seconds: float
    round_trip_seconds: float
    transfer_seconds: float
    peak_mb: float
    cost: float

    @property
    def seconds(self) -> float:
        return max(self.cpu_seconds, self.round_trip_seconds, self.transfer_seconds)

    @property
    def fits(self) -> bool:
        return self.seconds <= LAMBDA_LIMIT_SECONDS and self.peak_mb <= self.memory_mb


def lambda_day(measured: Measured, day: RawDay, memory_mb: int, concurrency: int) -> LambdaDay:
    """One day on the Lambda engine: its time, memory and cost (both days' GETs and listings, the run)."""
    gets = day.objects + day.claim_objects
    cpu_ms = measured.lambda_cpu_ms_per_update * day.updates + measured.lambda_cpu_ms_per_request * gets
    lists = DAYS_READ * math.ceil(day.objects / KEYS_PER_LIST)
    result = LambdaDay(
        updates=day.updates,
        memory_mb=memory_mb,
        concurrency=concurrency,
        gets=gets,
        cpu_seconds=cpu_ms / 1000 / min(1.0, memory_mb / FULL_VCPU_MB),
        round_trip_seconds=max(gets * measured.rtt_ms / 1000 / concurrency, gets / S3_GETS_PER_SECOND),
        transfer_seconds=DAYS_READ * day.scanned_bytes / LAMBDA_NETWORK_BYTES_PER_SECOND,
        peak_mb=measured.lambda_peak_mb
        + measured.lambda_mb_per_1k_updates * (day.updates - measured.at_updates) / 1000,
        cost=0.0,
    )
    run = min(result.seconds, LAMBDA_LIMIT_SECONDS) * memory_mb / 1024 * PRICE_PER_GB_SECOND
    return replace(result, cost=gets * PRICE_PER_GET + lists * PRICE_PER_LIST + run)


@dataclass(frozen=True)
class AthenaDay:
    updates: int
    scanned_bytes_per_statement: float
    gets: float
    get_rate_seconds: float
    work_seconds: float  # the statements' work, as on this machine
    splits: float  # the gzip objects a statement reads: at most this many workers at once
    publish_seconds: float
    parquet_bytes: float
    scan_cost: float
    request_cost: float
    steps_cost: float

    @property
    def cost(self) -> float:
        return self.scan_cost + self.request_cost + self.steps_cost

    @property
    def workers_needed(self) -> float:
        """How many workers must run at once for the statements to end within the default DML timeout."""
        return self.work_seconds / ATHENA_DML_TIMEOUT_SECONDS

    @property
    def fits(self) -> bool:
        return (
            self.publish_seconds <= LAMBDA_LIMIT_SECONDS
            and self.get_rate_seconds <= ATHENA_DML_TIMEOUT_SECONDS
            and self.workers_needed <= self.splits
        )


def athena_day(measured: Measured, day: RawDay) -> AthenaDay:
    """One day on the Athena engine: bytes scanned, GETs, the work against the timeout, publish, cost."""
    per_statement = DAYS_READ * day.scanned_bytes  # the day before holds about as many updates as the day
    gets = STATEMENTS * DAYS_READ * day.objects
    rows = day.updates * measured.rows_per_update
    publish = rows / measured.merge_rows_per_second
    lists = STATEMENTS * DAYS_READ * math.ceil(day.objects / KEYS_PER_LIST)
    return AthenaDay(
        updates=day.updates,
        scanned_bytes_per_statement=per_statement,
        gets=gets,
        get_rate_seconds=gets / S3_GETS_PER_SECOND,
        work_seconds=day.updates * measured.athena_work_ms_per_update / 1000,
        splits=DAYS_READ * day.objects,
        publish_seconds=publish,
        parquet_bytes=rows * measured.parquet_bytes_per_row,
        scan_cost=STATEMENTS * max(per_statement, MIN_SCAN_BYTES) / TB * PRICE_PER_TB_SCANNED,
        request_cost=gets * PRICE_PER_GET + lists * PRICE_PER_LIST,
        steps_cost=TRANSITIONS_PER_RUN * PRICE_PER_TRANSITION
        + publish * PUBLISH_MEMORY_MB / 1024 * PRICE_PER_GB_SECOND,
    )


def lambda_limit(measured: Measured, memory_mb: int, concurrency: int) -> int:
    """The most updates a day one Lambda-engine run compacts with these settings."""
    return most_updates(
        lambda updates: lambda_day(measured, batched_day(measured, updates), memory_mb, concurrency).fits
    )


def athena_limit(measured: Measured, workers: int) -> int:
    """The most updates a day the Athena engine compacts within the default DML timeout with `workers` at once."""

    def fits(updates: int) -> bool:
        day = athena_day(measured, batched_day(measured, updates))
        return day.fits and day.workers_needed <= workers

    return most_updates(fits)


def render(measured: Measured) -> str:
    """The model as Markdown: its inputs, the raw objects, each engine at scale, which engine for which volume."""
    return "\n".join([
        _inputs(measured), "", *_objects_table(measured), "", *_lambda_table(measured), "", *_athena_table(measured),
        "", *which_engine(measured),
    ])


def _inputs(measured: Measured) -> str:
    ratio = measured.line_bytes_per_update / measured.gzip_bytes_per_update
    return (
        f"Inputs: Lambda-engine CPU {measured.lambda_cpu_ms_per_update:.3f} ms per update "
        f"+ {measured.lambda_cpu_ms_per_request:.2f} ms per S3 request; per update {measured.lines_per_update:.3f} "
        f"lines, {measured.line_bytes_per_update:.0f} bytes ({measured.gzip_bytes_per_update:.0f} gzip: {ratio:.1f}x), "
        f"{measured.rows_per_update:.2f} rows; {measured.parquet_bytes_per_row:.0f} Parquet bytes per row; merge "
        f"{measured.merge_rows_per_second:,.0f} rows/s; local Athena work {measured.athena_work_ms_per_update:.2f} ms "
        f"per update; ETL peak {measured.lambda_peak_mb:.0f} MB at {measured.at_updates:,} updates "
        f"+ {measured.lambda_mb_per_1k_updates:.2f} MB per 1,000 more; {measured.rtt_ms:g} ms per S3 request."
    )


def _objects_table(measured: Measured) -> list[str]:
    volumes = (1_000, 10_000, 100_000, *UPDATES_PER_DAY)
    beyond = most_updates(lambda updates: batched_objects(measured, updates) <= OBJECTS_TARGET)
    return [
        f"Raw objects per day (one batch per day folder every {BATCH_SECONDS} s, or per 64 MiB):",
        "",
        "| updates/day | " + " | ".join(f"{updates:,}" for updates in volumes) + " |",
        "|---|" + "---|" * len(volumes),
        "| objects | " + " | ".join(f"{batched_objects(measured, updates):,.0f}" for updates in volumes) + " |",
        "",
        f"More than {OBJECTS_TARGET:,} a day from {_count(beyond)} updates a day (a peak minute's lines then pass "
        "64 MiB). An up-to-the-minute query over today opens as many.",
    ]


def _lambda_table(measured: Measured) -> list[str]:
    rows = [
        "Lambda engine (limits: 15 minutes, the function's memory):",
        "",
        "| updates/day | function | GETs | CPU | round trips | estimate | memory peak | cost/day | fits |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for updates in UPDATES_PER_DAY:
        for memory_mb, concurrency in LAMBDA_SETTINGS:
            day = lambda_day(measured, batched_day(measured, updates), memory_mb, concurrency)
            rows.append(
                f"| {updates:,} | {memory_mb:,} MB, {concurrency} reads | {day.gets:,.0f} "
                f"| {_duration(day.cpu_seconds)} | {_duration(day.round_trip_seconds)} | **{_duration(day.seconds)}** "
                f"| {day.peak_mb:,.0f} MB | ${day.cost:.3f} | {'yes' if day.fits else 'no: ' + _why_not(day)} |"
            )
    return rows


def _athena_table(measured: Measured) -> list[str]:
    rows = [
        "Athena engine (limits: the DML timeout, 30 min by default; the stage's bytes-scanned cutoff per statement; "
        "15 minutes of publish):",
        "",
        "| updates/day | scanned per statement (x2): the cutoff must exceed it | S3 GETs | work (this machine) "
        "| workers needed within 30 min | splits | publish (merge) | Parquet | scan cost | S3 requests "
        "| Step Functions + Lambda | cost/day |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for updates in UPDATES_PER_DAY:
        day = athena_day(measured, batched_day(measured, updates))
        rows.append(
            f"| {updates:,} | {_size(day.scanned_bytes_per_statement)} | {day.gets:,.0f} "
            f"| {_duration(day.work_seconds)} | {day.workers_needed:,.1f} | {day.splits:,.0f} "
            f"| {_duration(day.publish_seconds)} | {_size(day.parquet_bytes)} | ${day.scan_cost:.3f} "
            f"| ${day.request_cost:.4f} | ${day.steps_cost:.4f} | **${day.cost:.2f}** |"
        )
    return rows


def which_engine(measured: Measured) -> list[str]:
    """The Markdown table an operator picks an engine from, with the limits the model gives."""
    limits = [(memory_mb, concurrency, lambda_limit(measured, memory_mb, concurrency))
              for memory_mb, concurrency in LAMBDA_SETTINGS]
    athena = athena_limit(measured, workers=ATHENA_WORKERS)
    rows = ["| updates per day | engine and settings |", "|---|---|"]
    floor = 0
    for memory_mb, concurrency, limit in limits:
        if limit > floor:
            rows.append(
                f"| {_count(floor)} – {_count(limit)} | `lambda`, `etl_memory_mb: {memory_mb}`, "
                f"`etl_read_concurrency: {concurrency}` |"
            )
            floor = limit
    rows.append(
        f"| {_count(floor)} – {_count(athena)} | `athena`: its statements' work fits the default 30-min DML timeout "
        f"with {ATHENA_WORKERS} workers at once; set `athena_bytes_scanned_cutoff` above the bytes each statement "
        f"scans ({_size(DAYS_READ * measured.gzip_bytes_per_update * 1e6)} per million updates a day) |"
    )
    return rows


def _why_not(day: LambdaDay) -> str:
    reasons = [f"{_duration(day.seconds)} > 15 min"] if day.seconds > LAMBDA_LIMIT_SECONDS else []
    reasons += [f"{day.peak_mb:,.0f} MB > {day.memory_mb:,} MB"] if day.peak_mb > day.memory_mb else []
    return ", ".join(reasons)


def _duration(seconds: float) -> str:
    return f"{seconds:,.0f} s" if seconds < 120 else f"{seconds / 60:,.1f} min"


def _size(size: float) -> str:
    return f"{size / 1e6:,.0f} MB" if size < 1e9 else f"{size / 1e9:,.1f} GB"


def _count(updates: int) -> str:
    return f"{updates / 1e6:,.1f}M" if updates >= 1e6 else f"{updates / 1e3:,.0f}k"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.etl_model", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--lambda-cpu-ms",
        type=float,
        default=MEASURED.lambda_cpu_ms_per_update,
        help=f"the Lambda engine's CPU per update (default: as measured, {MEASURED.lambda_cpu_ms_per_update} ms)",
    )
    args = parser.parse_args()
    print(render(replace(MEASURED, lambda_cpu_ms_per_update=args.lambda_cpu_ms)))


if __name__ == "__main__":
    main()

"""The two ETL engines at 1M and 10M updates a day: bench.etl's measurements put through AWS's limits and prices.

    python -m bench.etl_model                       # with the inputs last measured (MEASURED)
    python -m bench.etl_model --lambda-cpu-ms 0.52  # with another CPU cost per update
                                                    # (`python -m bench.etl` prints it with what it has just measured)

Lambda engine, one function run per day, 15 minutes at most:

    time = max(own CPU per update x N / vCPU share, N x RTT / READ_CONCURRENCY, N / S3's GET rate)

Its CPU work is one Python thread (the GETs wait in threads, parsing and flattening hold the interpreter lock), so
a function gets at most one vCPU's worth of it: memory / 1,769 MB, capped at 1. The CPU per update is this
machine's; a Lambda vCPU may be slower (the run's `seconds` metric says). Memory: the ETL's peak at the largest
measured size plus its growth per update beyond it (the day's key plan), so a rough linear extrapolation.

Athena engine, Step Functions: plan, the UNLOAD and the report side by side, publish:

    bytes scanned = 2 statements x (the day + the day before) x raw bytes per update x N

A text table is read whole, so each statement GETs every raw object of both days: 4 x N GETs a run, which both
statements share with S3's 5,500 GET/s per partitioned prefix (Athena's documented limit for millions of small
objects). That bounds the queries' time from below until S3 splits the prefix, and Athena's DML timeout (30
minutes by default) bounds it from above. Each statement scans 2 x N x raw bytes: the stage's
`athena_bytes_scanned_cutoff` must stay above it. The publish Lambda merges the day's rows (N x rows per update):
rows / merge rows/s, plus the transfer of a few MB of Parquet.

Prices: us-east-1, on demand: Athena $5 per TB scanned (10 MB minimum per statement), S3 Standard $0.0004 per
1,000 GETs and $0.005 per 1,000 LISTs, Step Functions Standard $0.025 per 1,000 state transitions (about 8 a run),
Lambda arm64 $0.0000133334 per GB-second.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace

LAMBDA_LIMIT_SECONDS = 15 * 60
FULL_VCPU_MB = 1_769  # the memory at which a function has the equivalent of one vCPU
S3_GETS_PER_SECOND = 5_500  # per partitioned prefix; Athena's reads share it
KEYS_PER_LIST = 1_000
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
UPDATES_PER_DAY = (1_000_000, 10_000_000)
# (memory MB, READ_CONCURRENCY): the stage default and prod's settings in cdk.json.
LAMBDA_SETTINGS = ((1_024, 32), (2_048, 64))


@dataclass(frozen=True)
class Measured:
    """What bench.etl measures that the model takes."""

    lambda_cpu_ms_per_update: float  # the Lambda engine's own CPU ("ETL CPU s") per raw object
    lambda_peak_mb: float  # its "ETL peak MB" at `at_updates`
    lambda_mb_per_1k_updates: float  # its "ETL +MB" growth per 1,000 more updates (the two largest sizes)
    at_updates: int
    raw_bytes_per_update: float
    rows_per_update: float
    parquet_bytes_per_row: float
    merge_rows_per_second: float  # the publish step's merge (staged_batches into write_batches)
    rtt_ms: float


# bench.etl on this project's 2-core machine, 10k and 100k updates, 20 ms RTT, 2026-12-03 (see the README's
# Performance). That day the machine ran the previous release's ETL 3.9x slower than on 2026-11-28, when the
# same code needed 0.52 ms of CPU per update: `--lambda-cpu-ms 0.52` models the faster day.
MEASURED = Measured(
    lambda_cpu_ms_per_update=1.95,
    lambda_peak_mb=201,
    lambda_mb_per_1k_updates=0.47,
    at_updates=100_000,
    raw_bytes_per_update=483,
    rows_per_update=0.91,
    parquet_bytes_per_row=15,
    merge_rows_per_second=436_856,
    rtt_ms=20,
)


@dataclass(frozen=True)
class LambdaDay:
    updates: int
    memory_mb: int
    concurrency: int
    cpu_seconds: float
    round_trip_seconds: float
    get_rate_seconds: float
    peak_mb: float
    cost: float

    @property
    def seconds(self) -> float:
        return max(self.cpu_seconds, self.round_trip_seconds, self.get_rate_seconds)

    @property
    def fits(self) -> bool:
        return self.seconds <= LAMBDA_LIMIT_SECONDS and self.peak_mb <= self.memory_mb


@dataclass(frozen=True)
class AthenaDay:
    updates: int
    raw_bytes_per_day: float
    scanned_bytes_per_statement: float
    gets: int
    get_rate_seconds: float
    publish_seconds: float
    parquet_bytes: float
    scan_cost: float
    request_cost: float
    steps_cost: float

    @property
    def cost(self) -> float:
        return self.scan_cost + self.request_cost + self.steps_cost

    @property
    def verdict(self) -> str:
        """Whether a run fits Athena's DML timeout (as given, or raised by a quota increase) and the publish's 15 min."""
        if self.publish_seconds > LAMBDA_LIMIT_SECONDS or self.get_rate_seconds > ATHENA_DML_TIMEOUT_MAX_SECONDS:
            return "no"
        if self.get_rate_seconds > ATHENA_DML_TIMEOUT_SECONDS:
            return f"with the DML timeout quota raised above {_duration(self.get_rate_seconds)} (at most 240 min)"
        return "yes"


def lambda_day(measured: Measured, updates: int, memory_mb: int, concurrency: int) -> LambdaDay:
    """One day on the Lambda engine: its time, memory and cost (the day's GETs, both days' listings, the run)."""
    vcpu_share = min(1.0, memory_mb / FULL_VCPU_MB)
    cpu = measured.lambda_cpu_ms_per_update / 1000 * updates / vcpu_share
    round_trips = updates * measured.rtt_ms / 1000 / concurrency
    peak = measured.lambda_peak_mb + measured.lambda_mb_per_1k_updates * (updates - measured.at_updates) / 1000
    day = LambdaDay(updates, memory_mb, concurrency, cpu, round_trips, updates / S3_GETS_PER_SECOND, peak, cost=0.0)
    requests = updates * PRICE_PER_GET + DAYS_READ * updates / KEYS_PER_LIST * PRICE_PER_LIST
    run = min(day.seconds, LAMBDA_LIMIT_SECONDS) * memory_mb / 1024 * PRICE_PER_GB_SECOND
    return replace(day, cost=requests + run)


def athena_day(measured: Measured, updates: int) -> AthenaDay:
    """One day on the Athena engine: bytes scanned, GETs and their floor on the queries' time, publish, cost."""
    raw = updates * measured.raw_bytes_per_update
    per_statement = DAYS_READ * raw  # the day before holds about as many updates as the day
    gets = STATEMENTS * DAYS_READ * updates
    rows = updates * measured.rows_per_update
    publish = rows / measured.merge_rows_per_second
    lists = STATEMENTS * DAYS_READ * updates / KEYS_PER_LIST
    return AthenaDay(
        updates=updates,
        raw_bytes_per_day=raw,
        scanned_bytes_per_statement=per_statement,
        gets=gets,
        get_rate_seconds=gets / S3_GETS_PER_SECOND,
        publish_seconds=publish,
        parquet_bytes=rows * measured.parquet_bytes_per_row,
        scan_cost=STATEMENTS * max(per_statement, MIN_SCAN_BYTES) / TB * PRICE_PER_TB_SCANNED,
        request_cost=gets * PRICE_PER_GET + lists * PRICE_PER_LIST,
        steps_cost=TRANSITIONS_PER_RUN * PRICE_PER_TRANSITION
        + publish * PUBLISH_MEMORY_MB / 1024 * PRICE_PER_GB_SECOND,
    )


def render(measured: Measured) -> str:
    """The model as two Markdown tables, one per engine, for the README."""
    lines = [
        f"Inputs: {measured.lambda_cpu_ms_per_update:.2f} ms of Lambda-engine CPU per update, "
        f"{measured.raw_bytes_per_update:.0f} raw bytes per update, {measured.rows_per_update:.2f} rows per update, "
        f"{measured.parquet_bytes_per_row:.0f} Parquet bytes per row, merge {measured.merge_rows_per_second:,.0f} rows/s, "
        f"ETL peak {measured.lambda_peak_mb:.0f} MB at {measured.at_updates:,} updates "
        f"+ {measured.lambda_mb_per_1k_updates:.2f} MB per 1,000 more, {measured.rtt_ms:g} ms per S3 request.",
        "",
        "Lambda engine (limit: 15 minutes, the function's memory):",
        "",
        "| updates/day | function | CPU | round trips | S3 GET rate | estimate | memory peak | cost/day | fits |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for updates in UPDATES_PER_DAY:
        for memory_mb, concurrency in LAMBDA_SETTINGS:
            day = lambda_day(measured, updates, memory_mb, concurrency)
            lines.append(
                f"| {updates:,} | {memory_mb:,} MB, {concurrency} reads | {_duration(day.cpu_seconds)} "
                f"| {_duration(day.round_trip_seconds)} | {_duration(day.get_rate_seconds)} "
                f"| **{_duration(day.seconds)}** | {day.peak_mb:,.0f} MB | ${day.cost:.2f} "
                f"| {'yes' if day.fits else 'no: ' + _why_not(day)} |"
            )
    lines += [
        "",
        "Athena engine (limits: Athena's 30-minute DML timeout, the workgroup's bytes-scanned cutoff per statement, "
        "15 minutes of publish):",
        "",
        "| updates/day | raw/day | scanned per statement (x2): the cutoff must exceed it | S3 GETs "
        "| GET-rate floor of the queries | publish (merge) | Parquet | scan cost | S3 requests "
        "| Step Functions + Lambda | cost/day | fits |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for updates in UPDATES_PER_DAY:
        day = athena_day(measured, updates)
        lines.append(
            f"| {updates:,} | {_size(day.raw_bytes_per_day)} | {_size(day.scanned_bytes_per_statement)} "
            f"| {day.gets / 1e6:,.0f}M | {_duration(day.get_rate_seconds)} | {_duration(day.publish_seconds)} "
            f"| {_size(day.parquet_bytes)} | ${day.scan_cost:.3f} | ${day.request_cost:.2f} | ${day.steps_cost:.4f} "
            f"| **${day.cost:.2f}** | {day.verdict} |"
        )
    return "\n".join(lines)


def _why_not(day: LambdaDay) -> str:
    reasons = [f"{_duration(day.seconds)} > 15 min"] if day.seconds > LAMBDA_LIMIT_SECONDS else []
    reasons += [f"{day.peak_mb:,.0f} MB > {day.memory_mb:,} MB"] if day.peak_mb > day.memory_mb else []
    return ", ".join(reasons)


def _duration(seconds: float) -> str:
    return f"{seconds:,.0f} s" if seconds < 120 else f"{seconds / 60:,.1f} min"


def _size(size: float) -> str:
    return f"{size / 1e6:,.0f} MB" if size < 1e9 else f"{size / 1e9:,.1f} GB"


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

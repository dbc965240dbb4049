"""ETL benchmark: a day of N realistic updates as Firehose writes them, in in-process moto, compacted by each engine.

    python -m bench.etl                                   # both engines, N = 1k, 10k, 100k, 20 ms per S3 request
    python -m bench.etl --engine lambda --sizes 1000 10000  # one engine, small sizes
    python -m bench.etl --sizes 1000 10000 --rtt-ms 20 --concurrency 32

The raw zone is seeded as the stage's Firehose stream writes it (`firehose_days`, through the local Firehose): the
day and the day before, a gzip batch of envelope lines per day folder and minute of arrivals, with Telegram's
redeliveries (a few percent, a later copy, some across midnight into the day) and Firehose's own duplicates (a line
again in its batch, a batch written twice). Each run must keep each of the day's updates once: rows written plus
skipped equal the day's distinct updates, duplicates equal the other copies in its folder.

The engines (stage setting `etl_engine`), on the same corpus (same seed and sizes), each run in a fresh process:
- lambda: the ETL Lambda's `process` (lambdas/etl/handler.py).
- athena: the Athena engine as `etl run --local --engine athena` runs it (tools/local/athena_engine.py): the raw
  objects of the day and the day before downloaded from S3, the statements the state machine sends to Athena run
  on DuckDB, the day finished by the deployed publish step's `finish_day`. On AWS Athena reads S3 and runs the
  SQL: locally those parts show what they cost on this machine. Its time is split into "download" (the rest:
  listing and GETs, as the local engine does them), "lines" (the objects as the raw table's lines,
  tools/local/sql.py), "SQL" (the two statements on DuckDB) and "publish" (`finish_day`: Parquet write and puts).
  "merge rows/s" re-enacts the deployed publish step's merge of UNLOAD's files (`staged_batches` into
  `write_batches`) on the day's Parquet, without S3. Both engines must write the same number of rows.

On AWS the ETL waits on S3 round trips, which in-process moto does not have: every request either engine makes
sleeps `--rtt-ms` first (a botocore `before-send` hook on the client each builds for itself), so the thread
pool's concurrency is measured as it matters on AWS. Seeding the raw bucket bypasses the delay. moto runs in
this process, so its CPU time (emulating S3: shown as "moto CPU s") competes with the ETL for the same
interpreter lock; the ETL's own CPU is "CPU s" minus that ("ETL CPU s", and per update "ETL ms/upd"; DuckDB's
threads count in it). Costs of the simulator that S3 does not have are removed during the run, none changing a
response (see `_s3_simulator_shortcuts`). moto in a separate server process was slower here: its server closes
the connection after every response, so each request adds a TCP connect.

"updates" are the day's distinct updates, "copies" the lines of its folder, "objects" its batches, "B/upd" and
"gz B/upd" the folder's bytes per update gunzipped and as stored. "rows/s" is Parquet rows written per second of
the run (skipped updates, e.g. from other chats, are read but not counted). "peak RSS MB" is the whole process,
moto's in-memory copy of the raw and enriched buckets included (more than the Lambda needs); "ETL +MB" is its
resident set sampled during the run minus the one just before: what the engine itself needed (for the Lambda
engine, the function's memory use on top of the runtime and its imports); "ETL peak MB" adds that growth to the
process's size before any object was stored (every module imported, moto's included): the peak the ETL would
reach without the simulator's copy of the data, the figure to hold against the function's memory. The inputs of
bench/etl_model.py are printed last, and the model with them.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import resource
import tempfile
import threading
import time
from bisect import bisect_left, bisect_right
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping
from unittest.mock import patch
from zoneinfo import ZoneInfo

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # one summary line per size, not the handler's logs
# moto only: dummy credentials, so nothing here can reach real AWS.
os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
os.environ.pop("AWS_ENDPOINT_URL", None)

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402
from moto import backend_index  # noqa: E402
from moto.core.botocore_stubber import BotocoreStubber  # noqa: E402
from moto.core.models import DEFAULT_ACCOUNT_ID  # noqa: E402
from moto.s3.models import S3Backend, s3_backends  # noqa: E402

from bench.etl_model import Measured, render  # noqa: E402
from lambdas.common.envelope import envelope_line  # noqa: E402
from lambdas.common.layout import BATCH_EXTENSION, day_prefix, local_day  # noqa: E402
from lambdas.etl.athena_engine import staged_batches  # noqa: E402
from lambdas.etl.compact import write_batches  # noqa: E402
from lambdas.etl.day import enriched_key  # noqa: E402
from lambdas.etl import handler as etl_handler  # noqa: E402
from lambdas.etl import store as etl_store  # noqa: E402
from lambdas.etl.handler import EtlSettings, process  # noqa: E402
from tools.local import athena_engine as local_athena  # noqa: E402
from tools.local.sql import LocalLake  # noqa: E402
from tools.local.firehose import DeliveryStreams  # noqa: E402
from tools.local.stack import telegram_json  # noqa: E402
from tools.local.synthetic import synthetic_chat  # noqa: E402

DAY = date(2026, 11, 24)  # a Tuesday
ZONE = "America/Sao_Paulo"
CHAT_ID, OTHER_CHAT_ID = -1001234567890, -1009876543210
RAW_BUCKET, ENRICHED_BUCKET = "bench-raw", "bench-enriched"
DATABASE = "telegram_lake_bench"  # the Glue database the Athena engine's statements name
STREAM = "TelegramLake-bench-Raw"
# How often an update comes twice: Telegram resends one whose answer it lost (a later request, usually in a later
# batch), Firehose delivers at least once (a line again in its batch, or a whole batch again). A few percent, and rarer.
REDELIVERED_SHARE = 0.03
REDELIVERY_SECONDS = (5.0, 120.0)
RECORD_AGAIN_SHARE = 0.005
BATCH_AGAIN_SHARE = 0.01
MIDNIGHT_REDELIVERIES = 5
PAGE = os.sysconf("SC_PAGE_SIZE")  # /proc/self/statm counts pages
# The Athena engine's parts, in the order they run; "download" is the rest of its time.
ATHENA_PHASES = ("download", "lines", "SQL", "publish")


@dataclass
class Result:
    engine: str
    updates: int  # the day's distinct updates (each kept once)
    copies: int  # the lines of the day's folder
    objects: int  # the day's batches
    objects_read: int  # as the engine counted them
    seed_seconds: float
    seconds: float
    cpu_seconds: float
    moto_cpu_seconds: float
    requests: int
    rows: int
    gzip_bytes: int  # the day's batches as stored
    line_bytes: int  # the day's lines, gunzipped
    parquet_bytes: int
    rss_base_mb: float
    rss_before_mb: float
    rss_peak_mb: float
    process_peak_mb: float
    phases: dict[str, float] = field(default_factory=dict)  # the Athena engine's, by ATHENA_PHASES
    merge_seconds: float = 0.0  # the Athena engine's publish merge, re-enacted on the day's Parquet

    @property
    def etl_cpu_seconds(self) -> float:
        return self.cpu_seconds - self.moto_cpu_seconds

    @property
    def etl_cpu_ms_per_update(self) -> float:
        return self.etl_cpu_seconds / self.updates * 1000

    @property
    def etl_growth_mb(self) -> float:
        return self.rss_peak_mb - self.rss_before_mb

    @property
    def etl_peak_mb(self) -> float:
        """The process's peak without the simulator's stored objects: imports plus what the ETL grew by."""
        return self.rss_base_mb + self.etl_growth_mb

    HEADER = (
        f"{'engine':<7} {'updates':>8} {'copies':>8} {'objects':>7} {'rows':>8} {'seconds':>8} {'rows/s':>7} "
        f"{'CPU s':>7} {'ETL CPU s':>9} {'ETL ms/upd':>10} {'moto CPU s':>10} {'requests':>8} {'peak RSS MB':>11} "
        f"{'ETL +MB':>8} {'ETL peak MB':>11} {'B/upd':>6} {'gz B/upd':>8} {'parquet MB':>10} {'seeding s':>9}"
    )

    def line(self) -> str:
        return (
            f"{self.engine:<7} {self.updates:>8,} {self.copies:>8,} {self.objects:>7,} {self.rows:>8,} "
            f"{self.seconds:>8.1f} {self.rows / self.seconds:>7,.0f} {self.cpu_seconds:>7.1f} "
            f"{self.etl_cpu_seconds:>9.2f} {self.etl_cpu_ms_per_update:>10.3f} {self.moto_cpu_seconds:>10.2f} "
            f"{self.requests:>8,} {self.process_peak_mb:>11.0f} {self.etl_growth_mb:>8.0f} {self.etl_peak_mb:>11.0f} "
            f"{self.line_bytes / self.updates:>6.0f} {self.gzip_bytes / self.updates:>8.0f} "
            f"{self.parquet_bytes / 1e6:>10.2f} {self.seed_seconds:>9.0f}"
        )

    PHASES_HEADER = (
        f"{'updates':>8} {'seconds':>8} "
        + " ".join(f"{phase + ' s':>10}" for phase in ATHENA_PHASES)
        + f" {'rows/s without download':>23} {'merge rows/s':>12}"
    )

    def phases_line(self) -> str:
        """Where the Athena engine's time went, and its rows/s without the local-only download."""
        return (
            f"{self.updates:>8,} {self.seconds:>8.1f} "
            + " ".join(f"{self.phases[phase]:>10.1f}" for phase in ATHENA_PHASES)
            + f" {self.rows / (self.seconds - self.phases['download']):>23,.0f}"
            + f" {self.rows / self.merge_seconds:>12,.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.etl", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000], help="updates per run")
    parser.add_argument("--engine", choices=(*ENGINES, "both"), default="both", help="the engine(s) to run")
    parser.add_argument("--rtt-ms", type=float, default=20.0, help="modeled S3 round trip per request (ms)")
    parser.add_argument("--concurrency", type=int, default=32, help="READ_CONCURRENCY (the stage default is 32)")
    args = parser.parse_args()
    engines = list(ENGINES) if args.engine == "both" else [args.engine]
    print(f"ETL benchmark: one day, {args.rtt_ms:g} ms per S3 request, READ_CONCURRENCY={args.concurrency}, "
          f"{os.cpu_count()} CPUs, engines: {', '.join(engines)} (athena: locally, on DuckDB)")
    print(Result.HEADER)
    results: list[Result] = []
    for size in args.sizes:
        for engine in engines:
            # A fresh process per run: no memory freed by an earlier run is there to be reused.
            with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                results.append(pool.submit(run, engine, size, args.rtt_ms / 1000, args.concurrency).result())
            print(results[-1].line(), flush=True)
        check_same_rows([result for result in results if result.updates == size])
    athena = [result for result in results if result.engine == "athena"]
    if athena:
        print("\nAthena engine (local), where its time goes:")
        print(Result.PHASES_HEADER)
        for result in athena:
            print(result.phases_line())
    if set(ENGINES) <= {result.engine for result in results}:
        print("\nModel (bench/etl_model.py) with these measurements:\n")
        print(render(measured(results, args.rtt_ms)))


def check_same_rows(results: list[Result]) -> None:
    """Both engines compacted the same corpus: the same number of rows, or the benchmark is void."""
    if len({result.rows for result in results}) > 1:
        written = ", ".join(f"{result.engine}: {result.rows:,}" for result in results)
        raise SystemExit(f"the engines wrote different numbers of rows for {results[0].updates:,} updates ({written})")


def measured(results: list[Result], rtt_ms: float) -> Measured:
    """The model's inputs: the Lambda engine's CPU per update and per S3 request (`cpu_fit`), its memory (growth per
    update between its two largest sizes), the corpus's lines, bytes and rows per update at the largest size, the
    Athena engine's work and merge rate there."""
    lambda_runs = sorted((result for result in results if result.engine == "lambda"), key=lambda result: result.updates)
    largest = lambda_runs[-1]
    athena = max((result for result in results if result.engine == "athena"), key=lambda result: result.updates)
    smaller = lambda_runs[-2] if len(lambda_runs) > 1 else None
    growth = (
        (largest.etl_growth_mb - smaller.etl_growth_mb) / (largest.updates - smaller.updates) * 1000 if smaller else 0.0
    )
    per_request, per_update = cpu_fit(lambda_runs)
    return Measured(
        lambda_cpu_ms_per_update=per_update,
        lambda_cpu_ms_per_request=per_request,
        lambda_peak_mb=largest.etl_peak_mb,
        lambda_mb_per_1k_updates=growth,
        at_updates=largest.updates,
        lines_per_update=largest.copies / largest.updates,
        line_bytes_per_update=largest.line_bytes / largest.updates,
        gzip_bytes_per_update=largest.gzip_bytes / largest.updates,
        rows_per_update=largest.rows / largest.updates,
        parquet_bytes_per_row=largest.parquet_bytes / largest.rows,
        merge_rows_per_second=athena.rows / athena.merge_seconds,
        athena_work_ms_per_update=(athena.phases["lines"] + athena.phases["SQL"]) / athena.updates * 1000,
        rtt_ms=rtt_ms,
    )


def cpu_fit(runs: list[Result]) -> tuple[float, float]:
    """(ms per S3 request, ms per update) of the Lambda engine's own CPU, least squares over its runs: each request
    costs botocore's handling whatever the object holds, each update its decoding. Without two sizes to tell them
    apart (or should noise make either negative), all of it per update at the largest size."""
    requests = [run.requests for run in runs]
    updates = [run.updates for run in runs]
    cpu_ms = [run.etl_cpu_seconds * 1000 for run in runs]
    rr, uu, ru = _dot(requests, requests), _dot(updates, updates), _dot(requests, updates)
    determinant = rr * uu - ru * ru
    if len(runs) > 1 and determinant:
        per_request = (_dot(requests, cpu_ms) * uu - _dot(updates, cpu_ms) * ru) / determinant
        per_update = (_dot(updates, cpu_ms) * rr - _dot(requests, cpu_ms) * ru) / determinant
        if per_request >= 0 and per_update >= 0:
            return per_request, per_update
    return 0.0, runs[-1].etl_cpu_ms_per_update


def _dot(left: list[float], right: list[float]) -> float:
    return sum(a * b for a, b in zip(left, right, strict=True))


def run(engine: str, size: int, rtt: float, concurrency: int) -> Result:
    base_mb = _rss_mb()  # every module imported, no object stored yet
    started = time.monotonic()
    # Built in a child process, so its hundreds of thousands of small objects never live here: the memory the
    # ETL run then gains is the ETL's, not reused garbage of the corpus.
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as child:
        corpus = child.submit(firehose_days, size).result()
    with mock_aws():
        seeder = boto3.session.Session().client("s3")  # its own session: no modeled latency while seeding
        for bucket in (RAW_BUCKET, ENRICHED_BUCKET):
            seeder.create_bucket(Bucket=bucket)
        seed(seeder, corpus)
        corpus = replace(corpus, objects=[])  # moto holds the bodies now
        seed_seconds = time.monotonic() - started

        requests = _RoundTrips(rtt)
        settings = EtlSettings(RAW_BUCKET, ENRICHED_BUCKET, ZONE, concurrency)
        phases = _Phases()
        moto_cpu = _MotoCpu()
        with _modeled_round_trips(requests), _s3_simulator_shortcuts(), moto_cpu, _PeakRss() as rss:
            started, cpu_started = time.monotonic(), time.process_time()
            summary = ENGINES[engine](settings, phases)
            seconds, cpu_seconds = time.monotonic() - started, time.process_time() - cpu_started
        expected = (corpus.updates, corpus.copies - corpus.updates, 0)
        if (summary["rows_written"] + summary["skipped"], summary["duplicates"], summary["rejected"]) != expected:
            raise SystemExit(f"the {engine} engine did not keep each of the {corpus.updates:,} updates once: {summary}")
        if phases.seconds:
            phases.seconds["download"] = seconds - sum(phases.seconds.values())
        process_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        with tempfile.TemporaryDirectory(prefix="bench-etl-day-") as workdir:
            day_file = Path(workdir) / "day.parquet"
            seeder.download_file(ENRICHED_BUCKET, enriched_key(DAY), str(day_file))
            parquet_bytes = day_file.stat().st_size
            merge_seconds = _merge_seconds(day_file, Path(workdir) / "merged.parquet") if engine == "athena" else 0.0
        return Result(
            engine, corpus.updates, corpus.copies, corpus.day_objects, summary["objects_read"], seed_seconds,
            seconds, cpu_seconds, moto_cpu.seconds, requests.count, summary["rows_written"], corpus.gzip_bytes,
            corpus.line_bytes, parquet_bytes, base_mb, rss.before_mb, rss.peak_mb, process_peak_mb,
            dict(phases.seconds), merge_seconds,
        )


def _merge_seconds(day_file: Path, merged: Path) -> float:
    """The deployed publish step's merge of UNLOAD's files, on the day's Parquet (S3 transfer not included)."""
    started = time.monotonic()
    write_batches(merged, staged_batches([day_file]))
    return time.monotonic() - started


def _lambda_engine(settings: EtlSettings, _: "_Phases") -> Mapping[str, Any]:
    return process({"date": DAY.isoformat()}, settings)


def _athena_engine(settings: EtlSettings, phases: "_Phases") -> Mapping[str, Any]:
    with ExitStack() as timed:
        timed.enter_context(phases.timing(LocalLake, "__init__", "lines"))
        for query in ("arrow", "execute"):
            timed.enter_context(phases.timing(LocalLake, query, "SQL"))
        timed.enter_context(phases.timing(local_athena, "finish_day", "publish"))
        return local_athena.compact_day_on_duckdb(settings, DATABASE, DAY)


ENGINES: dict[str, Callable[[EtlSettings, "_Phases"], Mapping[str, Any]]] = {
    "lambda": _lambda_engine,
    "athena": _athena_engine,
}


class _Phases:
    """Wall seconds spent inside chosen functions during a run, by phase."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)

    @contextmanager
    def timing(self, owner: Any, name: str, phase: str) -> Iterator[None]:
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[phase] += time.monotonic() - started

        with patch.object(owner, name, timed):
            yield


@contextmanager
def _modeled_round_trips(requests: "_RoundTrips") -> Iterator[None]:
    """Every request of the client an engine builds for itself waits one modeled round trip first."""

    def client_with_latency(concurrency: int) -> Any:
        client = etl_store.s3_client(concurrency)
        client.meta.events.register_first("before-send.s3", requests.wait)
        return client

    with patch.object(etl_handler, "s3_client", client_with_latency), patch.object(
        local_athena, "s3_client", client_with_latency
    ):
        yield


def seed(s3: Any, corpus: "Corpus") -> None:
    """Store both days' batches in the raw bucket (no modeled latency: seeding is not the ETL's time)."""
    for key, body in corpus.objects:
        s3.put_object(Bucket=RAW_BUCKET, Key=key, Body=body)


@dataclass(frozen=True)
class Corpus:
    """The raw zone of the day and the day before, as the stage's Firehose stream writes it, and what the day holds."""

    objects: list[tuple[str, bytes]]  # (key, gzip batch) of both days
    updates: int  # the day's distinct updates whose first copy is in its folder: what a compaction keeps
    copies: int  # the lines in the day's folder: every copy, redeliveries and duplicates included
    day_objects: int  # the batches in the day's folder
    gzip_bytes: int  # of the day's batches, as stored (and as Athena scans them)
    line_bytes: int  # of the day's lines, gunzipped


def firehose_days(size: int) -> Corpus:
    """A realistic day of `size` updates and the day before, delivered as the webhook and Firehose deliver them.

    Every update arrives once; REDELIVERED_SHARE of them again REDELIVERY_SECONDS later (Telegram resends an
    update whose answer it lost), and the day before's last MIDNIGHT_REDELIVERIES after midnight, in the day's
    folder (the day before keeps them). Each copy is an envelope line (lambdas/common/envelope.py), batched in its
    arrival day's folder by the local Firehose (tools/local/firehose.py, as the stage's stream batches). Firehose
    delivers at least once: RECORD_AGAIN_SHARE of the records are put twice (the ingest retrying a PutRecord whose
    answer it lost: the same batch) and BATCH_AGAIN_SHARE of the batches are written twice (a delivery retried).
    The same size gives the same lines.
    """
    rng = random.Random(size)
    chat = synthetic_chat(DAY - timedelta(days=1), 2, size, chat_id=CHAT_ID, other_chat_id=OTHER_CHAT_ID, zone=ZONE)
    deliveries = []  # (arrival, webhook body): every request the ingest hands to Firehose
    for item in chat:
        body = telegram_json(item.update)
        deliveries.append((item.arrival, body))
        if rng.random() < REDELIVERED_SHARE:
            deliveries.append((item.arrival + timedelta(seconds=rng.uniform(*REDELIVERY_SECONDS)), body))
    midnight = datetime.combine(DAY, datetime.min.time(), tzinfo=ZoneInfo(ZONE))
    day_before = [item for item in chat if item.arrival < midnight]
    for item in day_before[-MIDNIGHT_REDELIVERIES:]:
        deliveries.append((midnight + timedelta(seconds=rng.uniform(*REDELIVERY_SECONDS)), telegram_json(item.update)))
    objects: list[tuple[str, bytes]] = []

    def write(_: str, key: str, body: bytes) -> None:
        objects.append((key, body))
        if rng.random() < BATCH_AGAIN_SHARE:  # a delivery Firehose retried: the batch again, under another name
            objects.append((key.removesuffix(BATCH_EXTENSION) + "-again" + BATCH_EXTENSION, body))

    stream = DeliveryStreams({STREAM: RAW_BUCKET}, write)
    for arrival, body in sorted(deliveries, key=lambda delivery: delivery[0]):
        day = local_day(arrival, ZONE)
        if day <= DAY:  # a copy that arrives the day after goes to its folder, which no run of the day reads
            line = envelope_line(day, int(arrival.timestamp() * 1000), body)
            stream.put(STREAM, [line, line] if rng.random() < RECORD_AGAIN_SHARE else [line])
    stream.flush()
    day_objects = [body for key, body in objects if key.startswith(day_prefix(DAY))]
    day_lines = [line for body in day_objects for line in gzip.decompress(body).splitlines(keepends=True)]
    return Corpus(
        objects=objects,
        updates=len(chat) - len(day_before),
        copies=len(day_lines),
        day_objects=len(day_objects),
        gzip_bytes=sum(map(len, day_objects)),
        line_bytes=sum(map(len, day_lines)),
    )


class _RoundTrips:
    """A botocore `before-send` hook: each request first waits one modeled round trip (the GIL is released)."""

    def __init__(self, rtt: float):
        self.rtt = rtt
        self.count = 0
        self._lock = threading.Lock()

    def wait(self, **_: Any) -> None:
        with self._lock:
            self.count += 1
        time.sleep(self.rtt)


@contextmanager
def _s3_simulator_shortcuts() -> Iterator[None]:
    """Removes, for the run, three costs of in-process moto that S3 does not have; responses are unchanged.

    - Routing: for every request moto tries ~180 services' URL patterns in turn (S3's come after 140
      others), then rebuilds S3's URL table, reloading `moto.s3.urls` twice. The run only talks to S3:
      only S3's patterns are tried, and its table is built once.
    - Listing: moto answers each ListObjectsV2 page by scanning and sorting the whole bucket, O(N) per
      page: a 100k-object day costs minutes. Pages come from a sorted key index instead (see below).
    """
    s3_patterns = [(service, url) for service, url in backend_index.backend_url_patterns if service == "s3"]
    s3_routes = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].urls
    with (
        patch.object(backend_index, "backend_url_patterns", s3_patterns),
        patch.object(S3Backend, "urls", property(lambda _: s3_routes)),
        _indexed_moto_listing(),
    ):
        yield


@contextmanager
def _indexed_moto_listing() -> Iterator[None]:
    """Pages come from a sorted index of the (unchanging) raw bucket: same keys, same continuation tokens,
    O(log N + page) instead of O(N)."""
    original = S3Backend.list_objects_v2
    sorted_names: dict[str, list[str]] = {}

    def list_objects_v2(
        backend: S3Backend, bucket: Any, prefix: str | None, delimiter: str | None,
        continuation_token: str | None, start_after: str | None, max_keys: int,
    ) -> Any:
        if delimiter:
            return original(backend, bucket, prefix, delimiter, continuation_token, start_after, max_keys)
        names = sorted_names.get(bucket.name)
        if names is None or len(names) != len(bucket.keys):
            names = sorted_names[bucket.name] = sorted(bucket.keys)
        prefix = prefix or ""
        after = backend._pagination_tokens.get(continuation_token) if continuation_token else start_after
        position = max(bisect_left(names, prefix), bisect_right(names, after) if after else 0)
        page = []
        while position < len(names) and len(page) <= max_keys and names[position].startswith(prefix):
            page.append(bucket.keys[names[position]])
            position += 1
        return backend._truncate_result(page, max_keys)  # one key beyond the page marks it truncated

    with patch.object(S3Backend, "list_objects_v2", list_objects_v2):
        yield


class _MotoCpu:
    """Adds up the CPU time threads spend inside moto (the simulated S3 service, not the ETL)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()

    def __enter__(self) -> "_MotoCpu":
        original = BotocoreStubber.__call__

        def timed(stubber: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return original(stubber, *args, **kwargs)
            finally:
                with self._lock:
                    self.seconds += time.thread_time() - started

        self._patch = patch.object(BotocoreStubber, "__call__", timed)
        self._patch.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._patch.stop()


class _PeakRss:
    """Samples the resident set size every 10 ms while the block runs."""

    def __enter__(self) -> "_PeakRss":
        self.before_mb = self.peak_mb = _rss_mb()
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._done.set()
        self._sampler.join()
        self.peak_mb = max(self.peak_mb, _rss_mb())

    def _sample(self) -> None:
        while not self._done.wait(0.01):
            self.peak_mb = max(self.peak_mb, _rss_mb())


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 2**20


if __name__ == "__main__":
    main()

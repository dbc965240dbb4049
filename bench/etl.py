"""ETL benchmark: one day of N realistic updates in in-process moto, compacted by the real handler code.

    python -m bench.etl                      # N = 1k, 10k, 100k at 20 ms modeled S3 round trip
    python -m bench.etl --sizes 1000 10000 --rtt-ms 20 --concurrency 32

On AWS the ETL waits on S3 round trips, which in-process moto does not have: every request the ETL makes
sleeps `--rtt-ms` first (a botocore `before-send` hook), so the thread pool's concurrency is measured as
it matters on AWS. Seeding the raw bucket bypasses the delay. moto runs in this process, so its CPU time
(emulating S3: shown as "moto CPU s") competes with the ETL for the same interpreter lock; the ETL's own
CPU is "CPU s" minus that ("ETL CPU s"). Costs of the simulator that S3 does not have are removed during
the run, none changing a response (see `_s3_simulator_shortcuts`). moto in a separate server process was
slower here: its server closes the connection after every response, so each request adds a TCP connect.

Each size runs in a fresh process. "rows/s" is Parquet rows written per second of the ETL run (skipped
updates, e.g. from other chats, are read but not counted). "peak RSS MB" is that whole process, moto's
in-memory copy of the raw and enriched buckets included (more than the Lambda needs); "ETL +MB" is its
resident set sampled during the ETL run minus the one just before: what the ETL itself needed (the
Lambda's memory use, on top of the runtime and its imports); "ETL peak MB" adds that growth to the
process's size before any object was stored (every module imported, moto's included): the peak the ETL
would reach without the simulator's copy of the data, the figure to hold against the 512 MB target.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import threading
import time
from bisect import bisect_left, bisect_right
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterator
from unittest.mock import patch

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

from lambdas.common.layout import local_day, raw_key  # noqa: E402
from lambdas.etl.day import enriched_key  # noqa: E402
from lambdas.etl import handler as etl_handler  # noqa: E402
from lambdas.etl import store as etl_store  # noqa: E402
from lambdas.etl.handler import EtlSettings, process  # noqa: E402
from tools.local.synthetic import synthetic_chat  # noqa: E402

DAY = date(2026, 11, 24)  # a Tuesday
ZONE = "America/Sao_Paulo"
CHAT_ID, OTHER_CHAT_ID = -1001234567890, -1009876543210
RAW_BUCKET, ENRICHED_BUCKET = "bench-raw", "bench-enriched"
PAGE = os.sysconf("SC_PAGE_SIZE")  # /proc/self/statm counts pages


@dataclass
class Result:
    updates: int
    seed_seconds: float
    seconds: float
    cpu_seconds: float
    moto_cpu_seconds: float
    requests: int
    rows: int
    raw_bytes: int
    parquet_bytes: int
    rss_base_mb: float
    rss_before_mb: float
    rss_peak_mb: float
    process_peak_mb: float

    @property
    def etl_peak_mb(self) -> float:
        """The process's peak without the simulator's stored objects: imports plus what the ETL grew by."""
        return self.rss_base_mb + self.rss_peak_mb - self.rss_before_mb

    HEADER = (
        f"{'updates':>8} {'rows':>8} {'seconds':>8} {'rows/s':>7} {'CPU s':>7} {'ETL CPU s':>9} {'moto CPU s':>10} "
        f"{'requests':>9} "
        f"{'peak RSS MB':>11} {'ETL +MB':>8} {'ETL peak MB':>11} {'raw MB':>7} {'parquet MB':>10} {'ratio':>6} {'seeding s':>9}"
    )

    def line(self) -> str:
        return (
            f"{self.updates:>8,} {self.rows:>8,} {self.seconds:>8.1f} {self.rows / self.seconds:>7,.0f} "
            f"{self.cpu_seconds:>7.1f} {self.cpu_seconds - self.moto_cpu_seconds:>9.1f} "
            f"{self.moto_cpu_seconds:>10.1f} {self.requests:>9,} "
            f"{self.process_peak_mb:>11.0f} {self.rss_peak_mb - self.rss_before_mb:>8.0f} {self.etl_peak_mb:>11.0f} "
            f"{self.raw_bytes / 1e6:>7.2f} {self.parquet_bytes / 1e6:>10.2f} "
            f"{self.raw_bytes / self.parquet_bytes:>5.1f}x {self.seed_seconds:>9.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.etl", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000], help="updates per run")
    parser.add_argument("--rtt-ms", type=float, default=20.0, help="modeled S3 round trip per request (ms)")
    parser.add_argument("--concurrency", type=int, default=32, help="READ_CONCURRENCY (the stage default is 32)")
    args = parser.parse_args()
    print(f"ETL benchmark: one day, {args.rtt_ms:g} ms per S3 request, READ_CONCURRENCY={args.concurrency}, "
          f"{os.cpu_count()} CPUs")
    print(Result.HEADER)
    for size in args.sizes:
        # A fresh process per size: no memory freed by an earlier run is there to be reused.
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as process:
            print(process.submit(run, size, args.rtt_ms / 1000, args.concurrency).result().line(), flush=True)


def run(size: int, rtt: float, concurrency: int) -> Result:
    base_mb = _rss_mb()  # every module imported, no object stored yet
    with mock_aws():
        seeder = boto3.session.Session().client("s3")  # its own session: no modeled latency while seeding
        for bucket in (RAW_BUCKET, ENRICHED_BUCKET):
            seeder.create_bucket(Bucket=bucket)
        started = time.monotonic()
        raw_bytes = seed(seeder, size)
        seed_seconds = time.monotonic() - started

        requests = _RoundTrips(rtt)
        settings = EtlSettings(RAW_BUCKET, ENRICHED_BUCKET, ZONE, concurrency)
        moto_cpu = _MotoCpu()
        with _modeled_round_trips(requests), _s3_simulator_shortcuts(), moto_cpu, _PeakRss() as rss:
            started, cpu_started = time.monotonic(), time.process_time()
            summary = process({"date": DAY.isoformat()}, settings)
            seconds, cpu_seconds = time.monotonic() - started, time.process_time() - cpu_started
        if (summary["rows_written"] + summary["skipped"], summary["rejected"]) != (size, 0):
            raise SystemExit(f"benchmark run lost updates: {summary}")
        parquet_bytes = seeder.head_object(Bucket=ENRICHED_BUCKET, Key=enriched_key(DAY))["ContentLength"]
        process_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return Result(size, seed_seconds, seconds, cpu_seconds, moto_cpu.seconds, requests.count,
                      summary["rows_written"], raw_bytes, parquet_bytes, base_mb, rss.before_mb, rss.peak_mb,
                      process_peak_mb)


@contextmanager
def _modeled_round_trips(requests: "_RoundTrips") -> Iterator[None]:
    """Every request of the client the ETL builds for itself waits one modeled round trip first."""

    def client_with_latency(concurrency: int) -> Any:
        client = etl_store.s3_client(concurrency)
        client.meta.events.register_first("before-send.s3", requests.wait)
        return client

    with patch.object(etl_handler, "s3_client", client_with_latency):
        yield


def seed(s3: Any, size: int) -> int:
    """Store a realistic day exactly as the ingest does (one object per update, the body as received).

    The chat is generated in a child process and streamed in from a file, so its millions of small
    objects never live here: the memory the ETL run then gains is the ETL's, not reused seeding garbage.
    """
    with tempfile.TemporaryDirectory(prefix="bench-etl-") as workdir:
        lines = Path(workdir) / "updates.tsv"
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as child:
            child.submit(write_chat, lines, size).result()
        raw_bytes = 0
        with lines.open("rb") as stream:
            for line in stream:
                key, body = line.rstrip(b"\n").split(b"\t", 1)
                s3.put_object(Bucket=RAW_BUCKET, Key=key.decode(), Body=body)
                raw_bytes += len(body)
    return raw_bytes


def write_chat(path: Path, size: int) -> None:
    """One `key<TAB>body` line per update of the synthetic day (JSON never contains a raw newline or tab)."""
    with path.open("wb") as out:
        for item in synthetic_chat(DAY, 1, size, chat_id=CHAT_ID, other_chat_id=OTHER_CHAT_ID, zone=ZONE):
            key = raw_key(local_day(item.arrival, ZONE), item.update["update_id"])
            out.write(key.encode() + b"\t" + json.dumps(item.update).encode() + b"\n")


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

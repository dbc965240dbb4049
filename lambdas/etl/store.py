"""The ETL's S3 reads: paginated listing and parallel GETs delivered in order.

On AWS, a day's compaction is dominated by GET round trips, not CPU: the GETs run in a bounded thread
pool over one shared client whose connection pool matches the pool's size. Every S3 error propagates.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Iterable, Iterator

# Parallel GETs when the stage sets none: enough round trips in flight to hide S3's latency on one vCPU.
DEFAULT_READ_CONCURRENCY = 32
# GETs queued ahead of the consumer, per thread: enough to keep every thread busy while the consumer
# flattens, few enough that memory holds only a handful of bodies per thread.
_QUEUED_PER_THREAD = 2


def s3_client(concurrency: int) -> Any:
    """One client shared by every thread (boto3 clients are thread-safe), with one connection per thread.

    The ETL never reads S3's timestamps (`LastModified` of every listed key, `Last-Modified` of every GET),
    so its session leaves them as the strings S3 sent: date parsing is the costliest step of botocore's
    response parsing, and there are two per object.
    """
    import boto3
    import botocore.session
    from botocore.config import Config

    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_unparsed)
    return boto3.session.Session(botocore_session=core).client(
        "s3", config=Config(max_pool_connections=concurrency, retries={"mode": "standard", "max_attempts": 5})
    )


def _unparsed(timestamp: str) -> str:
    return timestamp


def list_keys(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    """Every key under the prefix, page after page (S3 returns at most 1000 per page)."""
    return (key for key, _ in list_sizes(s3, bucket, prefix))


def list_sizes(s3: Any, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
    """Every key under the prefix with its object's size in bytes, page after page."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", ()):
            yield item["Key"], item["Size"]


def read_in_order(s3: Any, bucket: str, keys: Iterable[str], concurrency: int) -> Iterator[bytes]:
    """The bodies of `keys`, in the order of `keys`, with up to `concurrency` GETs in flight.

    At most `concurrency * _QUEUED_PER_THREAD` bodies wait in memory. A failed GET raises here, and
    the GETs not yet started are cancelled.
    """
    window = concurrency * _QUEUED_PER_THREAD
    pending: deque[Future[bytes]] = deque()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="s3-get") as pool:
        try:
            for key in keys:
                pending.append(pool.submit(_get, s3, bucket, key))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def _get(s3: Any, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()

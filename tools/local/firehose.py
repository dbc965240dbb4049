"""A local Amazon Data Firehose: the stage's raw delivery stream on 127.0.0.1, batching into the local S3 as on AWS.

moto accepts a Firehose stream but writes one object per record, and ignores dynamic partitioning and compression.
This emulation serves the same interface the ingest uses on AWS, Firehose's JSON 1.1 protocol (`X-Amz-Target:
Firehose_20150804.PutRecord` and `.PutRecordBatch`, answered in AWS's documented shapes), so botocore reaches it
through `AWS_ENDPOINT_URL_FIREHOSE` and the ingest's code is the same here and on AWS. It does what the stage's
Direct PUT stream does with each record:

- partitions it by its `context_date`, as the stream's JQ query `{context_date: .context_date}` extracts it (a
  record that is not a JSON object with a non-empty string there is written under RAW_ERRORS_PREFIX, outside
  `telegram/`, as an error document, as Firehose writes what fails partitioning to its error prefix);
- buffers it per stream and partition, and writes each buffer as one gzip object of the records as sent (the
  ingest's lines end with their own line break), `telegram/context_date=D/<stream>-1-YYYY-MM-DD-HH-MM-SS-<id>
  .jsonl.gz` (the time: the oldest record's arrival, UTC), when the stream's clock is `interval` past the buffer's
  first arrival, when the buffer reaches `size_bytes`, or on `flush()`. So a batch never spans `interval`: a record
  that arrives out of order, that far from its partition's buffer, closes it and starts the next.

A record's arrival is its envelope's `received_at` (the instant API Gateway received the update; Firehose's own is
milliseconds later), and a stream's clock is the latest arrival it saw, so a replayed week (the demo) batches as it
would have live. With `wall_clock`, the clock also moves with real time (`python -m tools local up`), so a quiet
partition's batch is written `interval` after its first record. A record without an arrival of its own (one that
also fails partitioning) arrives at the wall clock's time and moves no clock.

As on AWS, an accepted record is not yet delivered: a batch S3 does not take is kept, said on stderr, and tried
again at the next record or tick; `flush()` raises when anything is still unwritten. Thread-safe: the local webhook
server is threaded.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lambdas.common.envelope import CONTEXT_DATE, RECEIVED_AT
from lambdas.common.layout import BATCH_EXTENSION, BATCH_MAX_MIB, PARTITION_KEY, PREFIX, RAW_ERRORS_PREFIX
from lambdas.ingest.webhook import EPOCH, epoch_milliseconds
from stacks.config import DEFAULT_RAW_BATCH_SECONDS

HOST = "127.0.0.1"
TARGET_PREFIX = "Firehose_20150804."
CONTENT_TYPE = "application/x-amz-json-1.1"
ACCOUNT = "123456789012"  # moto's account: the one named in "not found" answers
# The stage's stream (stacks/ingestion.py): a batch per day's folder every `raw_batch_seconds` (a minute by
# default), or at the smallest size Firehose allows with dynamic partitioning.
BUFFER_INTERVAL = timedelta(seconds=DEFAULT_RAW_BATCH_SECONDS)
BUFFER_SIZE_BYTES = BATCH_MAX_MIB * 1024 * 1024
# Firehose's limits on what one call may carry (before base64).
RECORD_MAX_BYTES = 1000 * 1024
BATCH_MAX_RECORDS = 500
BATCH_MAX_BYTES = 4 * 1024 * 1024
STREAM_VERSION = 1
# Where records that fail partitioning go: outside `telegram/`, so no reader of the lake ever sees them, as
# `<prefix><error output type>/<UTC day>/`. The type Firehose names a failed metadata extraction is assumed to be
# that of a failed processor, `processing-failed` (not checked against AWS).
ERROR_OUTPUT_TYPE = "processing-failed"
PARTITIONING_FAILED = "DynamicPartitioning.MetadataExtractionFailed"
TICK_SECONDS = 0.5  # how often the wall clock moves, with `wall_clock`


class FirehoseError(Exception):
    """An answer Firehose gives instead of a result: its error code (`__type`), message and HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class DeliveryFailed(Exception):
    """Batches the local S3 did not take; they are kept and tried again."""


@dataclass
class _Buffer:
    opened_ms: int  # the oldest record's arrival
    latest_ms: int  # the newest record's
    records: list[bytes] = field(default_factory=list)
    size: int = 0

    def spans(self, arrived_ms: int) -> int:
        """How long the batch would span with a record that arrived at `arrived_ms`."""
        return max(self.latest_ms, arrived_ms) - min(self.opened_ms, arrived_ms)


@dataclass(frozen=True)
class _Batch:
    key: str
    body: bytes
    records: int


@dataclass
class _Stream:
    bucket: str
    clock_ms: int = 0  # the latest arrival (or wall clock tick) seen
    buffers: dict[str | None, _Buffer] = field(default_factory=dict)  # by partition; None: failed partitioning
    unwritten: list[_Batch] = field(default_factory=list)  # closed batches S3 has not taken yet, oldest first


def envelope_facts(data: bytes) -> tuple[str | None, int | None]:
    """A record's partition key, as the stream's JQ query `.context_date` extracts it, and its `received_at` (ms);
    each None when the record yields none."""
    try:
        record = json.loads(data)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(record, dict):
        return None, None
    partition, received_at = record.get(CONTEXT_DATE), record.get(RECEIVED_AT)
    return (
        partition if isinstance(partition, str) and partition else None,
        received_at if isinstance(received_at, int) and not isinstance(received_at, bool) and received_at >= 0
        else None,
    )


def batch_key(partition: str, stream: str, oldest_ms: int) -> str:
    """Where Firehose writes a partition's batch: `<prefix><stream>-<version>-<UTC time>-<random id><extension>`."""
    return f"{PREFIX}{PARTITION_KEY}={partition}/{_object_name(stream, oldest_ms)}{BATCH_EXTENSION}"


def _object_name(stream: str, oldest_ms: int) -> str:
    moment = EPOCH + timedelta(milliseconds=oldest_ms)
    return f"{stream}-{STREAM_VERSION}-{moment:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}"


def error_document(data: bytes, arrived_ms: int, now_ms: int) -> bytes:
    """What Firehose writes under its error prefix for a record it could not partition: one JSON line."""
    return json.dumps({
        "attemptsMade": 1, "arrivalTimestamp": arrived_ms, "errorCode": PARTITIONING_FAILED,
        "errorMessage": f"the query .{CONTEXT_DATE} yields no partition key (not a JSON object with a string there)",
        "attemptEndingTimestamp": now_ms, "rawData": base64.b64encode(data).decode("ascii"),
    }).encode() + b"\n"


class DeliveryStreams:
    """The streams' buffers and their batching rules; `write(bucket, key, body)` stores a batch."""

    def __init__(
        self,
        streams: Mapping[str, str],
        write: Callable[[str, str, bytes], None],
        *,
        interval: timedelta = BUFFER_INTERVAL,
        size_bytes: int = BUFFER_SIZE_BYTES,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ):
        self._streams = {name: _Stream(bucket) for name, bucket in streams.items()}
        self._write = write
        self._interval_ms = interval // timedelta(milliseconds=1)
        self._size_bytes = size_bytes
        self._clock = clock
        self._lock = threading.Lock()

    def put(self, stream: str, records: Iterable[bytes]) -> list[str]:
        """Accept one call's records; their record ids."""
        with self._lock:
            target = self._stream(stream)
            wall_ms = epoch_milliseconds(self._clock())
            ids = [self._add(target, stream, data, wall_ms) for data in records]
            self._deliver(stream, target, due_only=True)
        return ids

    def advance(self, now: datetime) -> None:
        """Move every stream's clock to `now` (the wall clock's tick) and write the batches that are due."""
        with self._lock:
            for name, stream in self._streams.items():
                stream.clock_ms = max(stream.clock_ms, epoch_milliseconds(now))
                self._deliver(name, stream, due_only=True)

    def flush(self) -> None:
        """Write every buffered record now; DeliveryFailed when S3 did not take everything (it stays buffered)."""
        with self._lock:
            unwritten = sum(self._deliver(name, stream, due_only=False) for name, stream in self._streams.items())
        if unwritten:
            raise DeliveryFailed(f"{unwritten} batch(es) of the local Firehose were not written (see stderr)")

    def _stream(self, name: str) -> _Stream:
        if not isinstance(name, str) or name not in self._streams:
            raise FirehoseError("ResourceNotFoundException", f"Firehose {name} under account {ACCOUNT} not found.")
        return self._streams[name]

    def _add(self, stream: _Stream, name: str, data: bytes, wall_ms: int) -> str:
        partition, received_at = envelope_facts(data)
        if received_at is None:  # no instant of its own: it arrives now, and moves no replayed clock
            arrived = wall_ms
        else:
            arrived = received_at
            stream.clock_ms = max(stream.clock_ms, arrived)
            self._deliver(name, stream, due_only=True)  # what this arrival closes first: it opens the next batch
        line = data if partition is not None else error_document(data, arrived, wall_ms)
        buffer = stream.buffers.get(partition)
        if buffer is not None and buffer.spans(arrived) >= self._interval_ms:  # arrived out of order, far from it
            stream.unwritten.append(_close(name, partition, stream.buffers.pop(partition)))
            buffer = None
        if buffer is None:
            buffer = stream.buffers[partition] = _Buffer(opened_ms=arrived, latest_ms=arrived)
        buffer.opened_ms, buffer.latest_ms = min(buffer.opened_ms, arrived), max(buffer.latest_ms, arrived)
        buffer.records.append(line)
        buffer.size += len(line)
        return uuid.uuid4().hex + uuid.uuid4().hex

    def _deliver(self, name: str, stream: _Stream, *, due_only: bool) -> int:
        """Close the stream's due (or all) buffers into batches and write every batch not written yet; how many
        are still unwritten."""
        for partition, buffer in list(stream.buffers.items()):
            due = buffer.size >= self._size_bytes or stream.clock_ms >= buffer.opened_ms + self._interval_ms
            if due or not due_only:
                stream.unwritten.append(_close(name, partition, stream.buffers.pop(partition)))
        for batch in list(stream.unwritten):
            try:
                self._write(stream.bucket, batch.key, batch.body)
            except Exception as error:  # S3 refused or is gone: keep the batch, as Firehose retries delivery
                print(f"local firehose: {batch.records} record(s) of {name} not written to "
                      f"s3://{stream.bucket}/{batch.key}, kept for the next try: {error}", file=sys.stderr)
            else:
                stream.unwritten.remove(batch)
        return len(stream.unwritten)


def _close(stream: str, partition: str | None, buffer: _Buffer) -> _Batch:
    """A buffer as the object Firehose writes: a gzip batch in its partition's folder, or error documents."""
    body = b"".join(buffer.records)
    if partition is None:
        day = EPOCH + timedelta(milliseconds=buffer.opened_ms)
        key = f"{RAW_ERRORS_PREFIX}{ERROR_OUTPUT_TYPE}/{day:%Y-%m-%d}/{_object_name(stream, buffer.opened_ms)}"
        return _Batch(key, body, len(buffer.records))
    return _Batch(batch_key(partition, stream, buffer.opened_ms), gzip.compress(body), len(buffer.records))


# ---- the wire: Firehose's JSON 1.1 protocol


def put_record(streams: DeliveryStreams, request: Mapping[str, Any]) -> dict[str, Any]:
    (record_id,) = streams.put(request.get("DeliveryStreamName"), [_data(request.get("Record"))])
    return {"RecordId": record_id, "Encrypted": False}


def put_record_batch(streams: DeliveryStreams, request: Mapping[str, Any]) -> dict[str, Any]:
    records = request.get("Records")
    if not isinstance(records, list) or not 1 <= len(records) <= BATCH_MAX_RECORDS:
        raise FirehoseError("InvalidArgumentException", f"Records must hold 1 to {BATCH_MAX_RECORDS} records")
    datas = [_data(record) for record in records]
    if sum(map(len, datas)) > BATCH_MAX_BYTES:
        raise FirehoseError("InvalidArgumentException", f"a batch holds at most {BATCH_MAX_BYTES} bytes")
    ids = streams.put(request.get("DeliveryStreamName"), datas)
    return {"FailedPutCount": 0, "Encrypted": False, "RequestResponses": [{"RecordId": each} for each in ids]}


OPERATIONS: dict[str, Callable[[DeliveryStreams, Mapping[str, Any]], dict[str, Any]]] = {
    "PutRecord": put_record,
    "PutRecordBatch": put_record_batch,
}


def _data(record: Any) -> bytes:
    data = record.get("Data") if isinstance(record, dict) else None
    if not isinstance(data, str):
        raise FirehoseError("InvalidArgumentException", "a record needs Data (base64)")
    try:
        decoded = base64.b64decode(data, validate=True)
    except binascii.Error:
        raise FirehoseError("SerializationException", "a record's Data is not base64") from None
    if len(decoded) > RECORD_MAX_BYTES:
        raise FirehoseError("InvalidArgumentException", f"a record holds at most {RECORD_MAX_BYTES} bytes")
    return decoded


def answer(streams: DeliveryStreams, target: str | None, body: bytes) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON answer to one request."""
    target = target or ""
    operation = OPERATIONS.get(target.removeprefix(TARGET_PREFIX)) if target.startswith(TARGET_PREFIX) else None
    try:
        if operation is None:
            raise FirehoseError(
                "UnknownOperationException", f"the local Firehose serves {', '.join(OPERATIONS)} only, not {target!r}"
            )
        try:
            request = json.loads(body)
        except ValueError:
            raise FirehoseError("SerializationException", "the request body is not JSON") from None
        if not isinstance(request, dict):
            raise FirehoseError("SerializationException", "the request body is not a JSON object")
        return 200, operation(streams, request)
    except FirehoseError as error:
        return error.status, {"__type": error.code, "message": error.message}


class LocalFirehose:
    """The streams behind an HTTP server on a free port of 127.0.0.1 (`endpoint_url`, for AWS_ENDPOINT_URL_FIREHOSE).

    A context manager: `__exit__` stops the server and the wall clock's thread, then writes what is still buffered
    into S3 (so it must close before S3 does).
    """

    def __init__(
        self,
        s3: Any,
        streams: Mapping[str, str],
        *,
        interval: timedelta = BUFFER_INTERVAL,
        wall_clock: bool = False,
    ):
        self.streams = DeliveryStreams(
            streams, lambda bucket, key, body: s3.put_object(Bucket=bucket, Key=key, Body=body), interval=interval
        )
        self._server = _FirehoseServer(self.streams)
        self._threads = [threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                          name="local-firehose")]
        self._stopping = threading.Event()
        if wall_clock:
            self._threads.append(threading.Thread(target=self._tick, name="local-firehose-clock"))

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}"

    def flush(self) -> None:
        self.streams.flush()

    def __enter__(self) -> LocalFirehose:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._stopping.set()
            self._server.shutdown()
            self._server.server_close()
            for thread in self._threads:
                thread.join()
        finally:
            self.flush()

    def _tick(self) -> None:
        while not self._stopping.wait(TICK_SECONDS):
            self.streams.advance(datetime.now(timezone.utc))


class _FirehoseServer(ThreadingHTTPServer):
    daemon_threads = False  # joined on close: no request is cut off

    def __init__(self, streams: DeliveryStreams):
        super().__init__((HOST, 0), _FirehoseRequestHandler)
        self.streams = streams


class _FirehoseRequestHandler(BaseHTTPRequestHandler):
    server: _FirehoseServer

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length") or "0"
        body = self.rfile.read(int(length) if length.isdigit() else 0)
        status, payload = answer(self.server.streams, self.headers.get("X-Amz-Target"), body)
        encoded = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the ingest logs every request already."""

"""The local Firehose (tools/local/firehose.py): the batching rules of the stage's raw delivery stream, and the
JSON 1.1 interface botocore reaches through AWS_ENDPOINT_URL_FIREHOSE, as the ingest does on AWS."""

from __future__ import annotations

import base64
import gzip
import json
import re
import threading
import urllib.request
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from lambdas.common.envelope import envelope_line, update_bytes
from lambdas.common.layout import RAW_ERRORS_PREFIX, day_prefix, raw_object_kind
from lambdas.etl.day import object_lines
from lambdas.ingest.webhook import epoch_milliseconds
from stacks.config import DEFAULT_RAW_BATCH_SECONDS, load_from_cdk_json
from tools.local.firehose import (
    BATCH_MAX_RECORDS, BUFFER_INTERVAL, BUFFER_SIZE_BYTES, ERROR_OUTPUT_TYPE, PARTITIONING_FAILED, RECORD_MAX_BYTES,
    DeliveryFailed, DeliveryStreams, LocalFirehose,
)
from tools.local.stack import LocalStack

STREAM = "TelegramLake-test-Raw"
BUCKET = "raw"
ZONE = ZoneInfo("America/Sao_Paulo")
DAY = date(2026, 11, 20)
NOON = datetime(2026, 11, 20, 12, tzinfo=ZONE)
WALL = datetime(2026, 12, 7, 9, tzinfo=timezone.utc)  # the real clock, long after the replayed days
BATCH_NAME = re.compile(
    rf"{STREAM}-1-(\d{{4}}-\d\d-\d\d-\d\d-\d\d-\d\d)-[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-"
    r"[0-9a-f]{12}\.jsonl\.gz"
)


def line(update_id: int, arrival: datetime) -> bytes:
    """The ingest's record for an update that arrived at `arrival`: its day is the arrival's date in ZONE."""
    body = b'{"update_id":%d,"message":{"text":"hi"}}' % update_id
    return envelope_line(arrival.astimezone(ZONE).date(), epoch_milliseconds(arrival), body)


class Bucket:
    """What the streams wrote, by key; `refusing` makes every write fail, as a missing bucket would."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.refusing = False

    def write(self, bucket: str, key: str, body: bytes) -> None:
        assert bucket == BUCKET
        if self.refusing:
            raise ClientError({"Error": {"Code": "NoSuchBucket", "Message": "gone"}}, "PutObject")
        assert key not in self.objects
        self.objects[key] = body

    def batches(self, day: date = DAY) -> list[list[bytes]]:
        """The day's batches (in the order written), each as its lines."""
        return [object_lines(key, body) for key, body in self.objects.items() if key.startswith(day_prefix(day))]

    def update_ids(self, day: date = DAY) -> list[list[int]]:
        return [[json.loads(update_bytes(each))["update_id"] for each in batch] for batch in self.batches(day)]


@pytest.fixture
def bucket() -> Bucket:
    return Bucket()


def streams(bucket: Bucket, **options) -> DeliveryStreams:
    return DeliveryStreams({STREAM: BUCKET}, bucket.write, clock=lambda: WALL, **options)


def put(target: DeliveryStreams, *lines: bytes) -> None:
    for each in lines:
        target.put(STREAM, [each])


def test_the_emulation_is_the_stages_stream():
    """What the local Firehose and the local stack take from the stage's stream, which stacks/ingestion.py defines
    from the same constants (it imports the CDK, which the local path does not)."""
    from stacks import ingestion

    config = load_from_cdk_json("dev")
    assert LocalStack(config).delivery_stream == config.raw_stream_name == "TelegramLake-dev-Raw"
    assert BUFFER_INTERVAL == timedelta(seconds=DEFAULT_RAW_BATCH_SECONDS)
    assert BUFFER_SIZE_BYTES == 64 * 1024 * 1024
    assert ingestion.RAW_ERROR_OBJECTS == f"{RAW_ERRORS_PREFIX}!{{firehose:error-output-type}}/!{{timestamp:yyyy-MM-dd}}/"
    assert ingestion.RAW_BATCH_OBJECTS == "telegram/context_date=!{partitionKeyFromQuery:context_date}/"
    assert ingestion.PARTITION_QUERY == "{context_date: .context_date}"  # what envelope_facts does


# ---- the batching rules


def test_a_partitions_records_within_the_interval_are_one_gzip_batch_named_as_firehose_names_it(bucket):
    target = streams(bucket)
    sent = [line(number, NOON + timedelta(seconds=number * 10)) for number in range(6)]  # 0 .. 50 s
    put(target, *sent)
    assert bucket.objects == {}  # still buffered
    target.flush()

    ((key, body),) = bucket.objects.items()
    assert key.startswith(day_prefix(DAY)) and raw_object_kind(key, DAY) == "batch"
    assert BATCH_NAME.fullmatch(key.removeprefix(day_prefix(DAY))).group(1) == "2026-11-20-15-00-00"  # oldest, UTC
    assert gzip.decompress(body) == b"".join(sent)  # the records as sent, one line each, in arrival order


def test_a_record_an_interval_after_the_batchs_first_opens_the_next_batch(bucket):
    target = streams(bucket, interval=timedelta(seconds=60))
    put(target, line(1, NOON), line(2, NOON + timedelta(seconds=59.999)))
    assert bucket.objects == {}
    put(target, line(3, NOON + timedelta(seconds=60)), line(4, NOON + timedelta(seconds=119.999)))
    assert bucket.update_ids() == [[1, 2]]  # written when the 60th second arrived
    put(target, line(5, NOON + timedelta(seconds=120)))
    target.flush()
    assert bucket.update_ids() == [[1, 2], [3, 4], [5]]


def test_a_record_out_of_order_by_the_interval_or_more_never_joins_a_batch(bucket):
    """Parallel deliveries reach the stream a little out of order: a batch still holds at most `interval` of
    arrivals."""
    target = streams(bucket, interval=timedelta(seconds=60))
    put(target, line(1, NOON + timedelta(seconds=30)), line(2, NOON + timedelta(seconds=5)),  # joins: 25 s apart
        line(3, NOON - timedelta(seconds=31)))  # 61 s before the newest: a batch of its own
    target.flush()
    assert sorted(bucket.update_ids()) == [[1, 2], [3]]


def test_each_day_is_its_own_partition_and_a_line_keeps_its_day_however_late_its_batch(bucket):
    target = streams(bucket)
    midnight = datetime(2026, 11, 21, tzinfo=ZONE)
    put(target, line(1, midnight - timedelta(milliseconds=100)), line(2, midnight + timedelta(milliseconds=100)))
    target.flush()

    assert bucket.update_ids(DAY) == [[1]]
    assert bucket.update_ids(DAY + timedelta(days=1)) == [[2]]


def test_the_clock_is_the_records_so_a_replayed_quiet_days_batch_is_written_when_the_stream_moves_on(bucket):
    target = streams(bucket)
    put(target, line(1, NOON))
    put(target, line(2, NOON + timedelta(days=1)))  # the next day's first update, a day later
    assert bucket.update_ids(DAY) == [[1]]  # written: the stream's records are past its minute
    assert bucket.update_ids(DAY + timedelta(days=1)) == []


def test_a_buffer_that_reaches_the_size_limit_is_written_at_once(bucket):
    sent = [line(number, NOON) for number in range(5)]
    target = streams(bucket, size_bytes=2 * len(sent[0]))
    put(target, *sent)
    assert bucket.update_ids() == [[0, 1], [2, 3]]
    target.flush()
    assert bucket.update_ids() == [[0, 1], [2, 3], [4]]


def test_flush_writes_every_buffer_once(bucket):
    target = streams(bucket)
    put(target, line(1, NOON), line(2, NOON + timedelta(days=2)))  # day 1's batch is written, day 3's is buffered
    target.flush()
    target.flush()
    assert len(bucket.objects) == 2


@pytest.mark.parametrize("data", [
    b"not json", b"[1, 2]\n", b'{"update": {}}\n', b'{"context_date": null}\n', b'{"context_date": 20261120}\n',
    b'{"context_date": ""}\n',
], ids=["not-json", "array", "no-key", "null", "number", "empty"])
def test_a_record_that_yields_no_partition_goes_to_the_error_prefix_outside_the_lake(bucket, data):
    target = streams(bucket)
    put(target, data, line(1, NOON))
    target.flush()

    errors = {key: body for key, body in bucket.objects.items() if key.startswith(RAW_ERRORS_PREFIX)}
    ((key, body),) = errors.items()
    assert key.startswith(f"{RAW_ERRORS_PREFIX}{ERROR_OUTPUT_TYPE}/2026-12-07/{STREAM}-1-2026-12-07-09-00-00-")
    (document,) = [json.loads(each) for each in body.splitlines()]
    assert document["errorCode"] == PARTITIONING_FAILED
    assert base64.b64decode(document["rawData"]) == data
    assert document["arrivalTimestamp"] == epoch_milliseconds(WALL)
    assert bucket.update_ids() == [[1]]  # the good record is not held back by the bad one


def test_a_batch_s3_refuses_is_kept_said_and_written_later_so_nothing_is_lost(bucket, capsys):
    target = streams(bucket)
    bucket.refusing = True
    put(target, line(1, NOON), line(2, NOON + timedelta(minutes=1)))  # accepted: delivery is Firehose's business
    with pytest.raises(DeliveryFailed, match=r"2 batch\(es\) of the local Firehose were not written"):
        target.flush()
    assert "not written to s3://raw/telegram/context_date=2026-11-20/" in capsys.readouterr().err

    bucket.refusing = False
    target.flush()
    assert sorted(bucket.update_ids()) == [[1], [2]]


def test_the_wall_clock_writes_a_quiet_partitions_batch_after_the_interval(bucket):
    target = streams(bucket)
    put(target, line(1, WALL))
    target.advance(WALL + timedelta(seconds=59))
    assert bucket.objects == {}
    target.advance(WALL + timedelta(seconds=60))
    assert bucket.update_ids(WALL.astimezone(ZONE).date()) == [[1]]


def test_concurrent_puts_lose_nothing_and_write_nothing_twice(bucket):
    target = streams(bucket, interval=timedelta(seconds=5))

    def send(worker: int) -> None:
        for number in range(50):
            update_id = worker * 100 + number
            put(target, line(update_id, NOON + timedelta(seconds=number)))

    workers = [threading.Thread(target=send, args=(worker,)) for worker in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    target.flush()

    written = [update_id for batch in bucket.update_ids() for update_id in batch]
    assert sorted(written) == sorted(worker * 100 + number for worker in range(8) for number in range(50))
    assert 1 < len(bucket.objects) < 400


# ---- the interface: Firehose's JSON 1.1 protocol, through botocore


@pytest.fixture
def firehose(monkeypatch):
    """The local Firehose over moto's in-process S3, and a botocore client that reaches it as the ingest's does."""
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        with LocalFirehose(s3, {STREAM: BUCKET}) as local:
            monkeypatch.setenv("AWS_ENDPOINT_URL_FIREHOSE", local.endpoint_url)
            client = boto3.client("firehose")
            yield local, client, s3
            client.close()


def raw_keys(s3) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_botocore_reaches_it_through_the_service_endpoint_variable_and_gets_firehoses_answers(firehose):
    local, client, s3 = firehose
    assert client.meta.endpoint_url == local.endpoint_url

    one = client.put_record(DeliveryStreamName=STREAM, Record={"Data": line(1, NOON)})
    many = client.put_record_batch(DeliveryStreamName=STREAM, Records=[{"Data": line(n, NOON)} for n in (2, 3)])

    assert set(one) - {"ResponseMetadata"} == {"RecordId", "Encrypted"} and one["Encrypted"] is False
    assert (many["FailedPutCount"], many["Encrypted"], len(many["RequestResponses"])) == (0, False, 2)
    assert all(set(response) == {"RecordId"} for response in many["RequestResponses"])
    assert raw_keys(s3) == []
    local.flush()
    (key,) = raw_keys(s3)
    lines = object_lines(key, s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert [json.loads(update_bytes(each))["update_id"] for each in lines] == [1, 2, 3]


@pytest.mark.parametrize("call, code", [
    (lambda client: client.put_record(DeliveryStreamName="elsewhere", Record={"Data": b"x"}),
     "ResourceNotFoundException"),
    (lambda client: client.put_record(DeliveryStreamName=STREAM, Record={"Data": b"x" * (RECORD_MAX_BYTES + 1)}),
     "InvalidArgumentException"),
    (lambda client: client.put_record_batch(
        DeliveryStreamName=STREAM, Records=[{"Data": b"x"}] * (BATCH_MAX_RECORDS + 1)), "InvalidArgumentException"),
    (lambda client: client.describe_delivery_stream(DeliveryStreamName=STREAM), "UnknownOperationException"),
], ids=["unknown-stream", "record-too-large", "too-many-records", "not-emulated"])
def test_what_firehose_refuses_is_its_error_and_stores_nothing(firehose, call, code):
    local, client, s3 = firehose
    with pytest.raises(ClientError) as refused:
        call(client)
    assert refused.value.response["Error"]["Code"] == code
    local.flush()
    assert raw_keys(s3) == []


def test_a_request_that_is_not_firehoses_json_is_a_serialization_error(firehose):
    local, _, _ = firehose
    for body in (b"{", json.dumps({"DeliveryStreamName": STREAM, "Record": {"Data": "not base64!"}}).encode()):
        request = urllib.request.Request(local.endpoint_url, data=body, method="POST", headers={
            "X-Amz-Target": "Firehose_20150804.PutRecord", "Content-Type": "application/x-amz-json-1.1"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=10)
        with refused.value:
            assert refused.value.code == 400
            assert json.loads(refused.value.read())["__type"] == "SerializationException"


def test_with_the_wall_clock_a_batch_is_written_without_a_flush_and_leaving_flushes_the_rest():
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        now = datetime.now(timezone.utc)
        with LocalFirehose(s3, {STREAM: BUCKET}, interval=timedelta(seconds=0.2), wall_clock=True) as local:
            local.streams.put(STREAM, [line(1, now)])
            deadline = datetime.now(timezone.utc) + timedelta(seconds=30)  # a hang guard, not a speed target
            while not raw_keys(s3) and datetime.now(timezone.utc) < deadline:
                threading.Event().wait(0.05)
            assert len(raw_keys(s3)) == 1
            local.streams.put(STREAM, [line(2, datetime.now(timezone.utc) + timedelta(hours=1))])
        assert len(raw_keys(s3)) == 2

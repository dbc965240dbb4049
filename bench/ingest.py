"""Warm-path cost of the ingest Lambda: in-process handler latency with the Firehose call faked, and cold import
time.

    python -m bench.ingest [--requests 2000] [--imports 5]

Latency is measured around `handler(event, context)` (an HTTP API payload 2.0 event) in a warm container
(settings, clients and secret cached), including logging and the EMF flush. The stored path's PutRecord is
serialized by botocore as for AWS and answered in-process (Firehose's answer, no network); S3 and Secrets
Manager are moto's `mock_aws`, in-process. So the figures are the handler's own cost plus botocore's, and
moto's emulation where a request writes to S3.

Requests arrive at the same instant, as a burst does: a chat's chats-seen record is written at its first update
only (then at most once a minute), so `stored` and `skipped-*` measure the common path with no S3 write.
`stored+record` spaces its requests a minute apart, so each one also writes its chat's record (one PutObject to
moto). An update from a supergroup outside the allowlist also lists the chat links (it may be an allowlisted
group's upgrade). Import time is `import lambdas.ingest.handler` in a fresh interpreter (boto3 and Powertools
included), the part of a Lambda cold start this code controls. Target (issue 17): p99 <= 5 ms on the stored path.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import boto3
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from lambdas.ingest import handler as ingest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TARGET_P99_MS = 5.0
BUCKET = "bench-raw"
STREAM = "bench-raw-stream"
SECRET = "bench-secret-token-0123456789abcdef"
CHAT = -1001
HEADER = "x-telegram-bot-api-secret-token"  # payload 2.0 lower-cases header names
ARRIVAL_MS = 1_779_030_000_000
MINUTE_MS = 60_000


def webhook_event(
    update_id: int, chat_id: int, token: str = SECRET, chat_type: str = "supergroup", arrival_ms: int = ARRIVAL_MS
) -> dict:
    """A realistic API Gateway HTTP API event (payload 2.0) carrying a text message of typical size."""
    update = {
        "update_id": update_id,
        "message": {
            "message_id": update_id, "date": 1779030000,
            "from": {"id": 99, "is_bot": False, "first_name": "Ana", "language_code": "pt-br"},
            "chat": {"id": chat_id, "title": "Bench group", "type": chat_type},
            "text": "Bom dia! " * 20,
        },
    }
    return {
        "version": "2.0", "routeKey": "POST /webhook", "rawPath": "/webhook", "rawQueryString": "",
        "headers": {HEADER: token, "content-type": "application/json"},
        "requestContext": {"http": {"method": "POST", "path": "/webhook"}, "timeEpoch": arrival_ms},
        "body": json.dumps(update, ensure_ascii=False, separators=(",", ":")), "isBase64Encoded": False,
    }


def firehose_answer(params: dict, **_: object) -> tuple[AWSResponse, dict]:
    """PutRecord as Firehose answers it, in-process: the request is serialized, nothing is sent."""
    return AWSResponse(params["url"], 200, {}, None), {"RecordId": "bench", "Encrypted": False}


def percentile(sorted_ms: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, round(fraction * len(sorted_ms)))
    return sorted_ms[rank - 1]


def time_requests(handler, events: list[dict]) -> list[float]:
    latencies = []
    for event in events:
        started = time.perf_counter()
        response = handler(event, None)
        latencies.append((time.perf_counter() - started) * 1000)
        if response["statusCode"] >= 500:
            raise RuntimeError(f"benchmark request failed: {response}")
    return sorted(latencies)


def warm_latencies(requests: int) -> dict[str, list[float]]:
    """Per outcome, the latencies of `requests` warm invocations (stdout, i.e. logs and EMF, to /dev/null)."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.pop("AWS_ENDPOINT_URL", None)  # in-process moto, never a server or real AWS
    with mock_aws(), open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        arn = boto3.client("secretsmanager").create_secret(Name="bench-webhook", SecretString=SECRET)["ARN"]
        os.environ.update(RAW_BUCKET=BUCKET, DELIVERY_STREAM=STREAM, WEBHOOK_SECRET_ARN=arn,
                          ALLOWED_CHAT_IDS=str(CHAT), TIMEZONE="America/Sao_Paulo")
        boto3.setup_default_session()
        boto3.DEFAULT_SESSION.events.register("before-call.firehose.PutRecord", firehose_answer)
        ingest.logger.registered_handler.setStream(sink)
        ingest.reset_container()
        ingest.handler(webhook_event(0, CHAT), None)  # the cold request: settings, clients, secret, record
        spaced = [webhook_event(update_id, CHAT, arrival_ms=ARRIVAL_MS + update_id * MINUTE_MS)
                  for update_id in range(1, requests + 1)]
        return {
            "stored": time_requests(ingest.handler, [webhook_event(i, CHAT) for i in range(1, requests + 1)]),
            "stored+record": time_requests(ingest.handler, spaced),
            "skipped-group": time_requests(ingest.handler, [webhook_event(i, CHAT + 1) for i in range(requests)]),
            "skipped-private": time_requests(
                ingest.handler, [webhook_event(i, 99, chat_type="private") for i in range(requests)]
            ),
            "rejected": time_requests(ingest.handler, [webhook_event(i, CHAT, "wrong") for i in range(requests)]),
        }


def cold_import_ms(runs: int) -> list[float]:
    """`import lambdas.ingest.handler` timed inside fresh interpreters (interpreter start-up excluded)."""
    probe = (
        "import time; started = time.perf_counter(); import lambdas.ingest.handler; "
        "print((time.perf_counter() - started) * 1000)"
    )
    return sorted(
        float(subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, check=True,
                             capture_output=True, text=True).stdout)
        for _ in range(runs)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="warm requests per outcome (default 2000)")
    parser.add_argument("--imports", type=int, default=5, help="fresh-interpreter imports (default 5)")
    args = parser.parse_args(argv)

    imports = cold_import_ms(args.imports)
    latencies = warm_latencies(args.requests)

    print(f"ingest handler, warm, in-process (Firehose answered in place, S3 moto mock_aws): {args.requests} "
          "requests per outcome")
    print(f"{'outcome':<15} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for outcome, sorted_ms in latencies.items():
        figures = [percentile(sorted_ms, f) for f in (0.50, 0.90, 0.99)] + [sorted_ms[-1]]
        print(f"{outcome:<15} " + " ".join(f"{figure:>8.2f}" for figure in figures))
    print(f"cold import of lambdas.ingest.handler: median {statistics.median(imports):.0f} ms "
          f"(min {imports[0]:.0f}, max {imports[-1]:.0f}, {args.imports} fresh interpreters)")
    stored_p99 = percentile(latencies["stored"], 0.99)
    verdict = "met" if stored_p99 <= TARGET_P99_MS else "NOT met"
    print(f"target p99 <= {TARGET_P99_MS:.0f} ms on the stored path: {verdict} ({stored_p99:.2f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

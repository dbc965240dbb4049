"""Warm-path cost of the ingest Lambda: in-process handler latency under moto, and cold import time.

    python -m bench.ingest [--requests 2000] [--imports 5]

Latency is measured around `handler(event, context)` in a warm container (settings, clients and secret
cached), including logging and the EMF flush, with S3 and Secrets Manager served in-process by moto's
`mock_aws`: no network, so the figures are the handler's own cost plus moto's emulation of the S3 calls.
Every update with a chat costs one more PutObject (the chat's chats-seen record); an update from a
supergroup outside the allowlist also lists the chat links (it may be an allowlisted group's upgrade).
Import time is `import lambdas.ingest.handler` in a fresh interpreter (boto3 and Powertools included), the
part of a Lambda cold start this code controls. Target (issue 2): p99 <= 10 ms on the stored path.
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
from moto import mock_aws

from lambdas.ingest import handler as ingest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TARGET_P99_MS = 10.0
BUCKET = "bench-raw"
SECRET = "bench-secret-token-0123456789abcdef"
CHAT = -1001
HEADER = "X-Telegram-Bot-Api-Secret-Token"


def webhook_event(update_id: int, chat_id: int, token: str = SECRET, chat_type: str = "supergroup") -> dict:
    """A realistic API Gateway REST proxy event carrying a text message of typical size."""
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
        "resource": "/webhook", "path": "/webhook", "httpMethod": "POST",
        "headers": {HEADER: token, "Content-Type": "application/json"}, "multiValueHeaders": None,
        "body": json.dumps(update, ensure_ascii=False), "isBase64Encoded": False,
    }


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
        os.environ.update(RAW_BUCKET=BUCKET, WEBHOOK_SECRET_ARN=arn, ALLOWED_CHAT_IDS=str(CHAT),
                          TIMEZONE="America/Sao_Paulo")
        ingest.logger.registered_handler.setStream(sink)
        ingest.reset_container()
        ingest.handler(webhook_event(0, CHAT), None)  # the cold request: settings, clients, secret
        new = [webhook_event(update_id, CHAT) for update_id in range(1, requests + 1)]
        return {
            "stored": time_requests(ingest.handler, new),
            "duplicate": time_requests(ingest.handler, new),
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

    print(f"ingest handler, warm, in-process under moto mock_aws: {args.requests} requests per outcome")
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

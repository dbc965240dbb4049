"""ETL Lambda: compact one day of raw Telegram updates into the enriched bucket's Parquet file.

Event `{"scheduled_time": "<aws.scheduler.scheduled-time>"}` (the daily schedule) compacts the day before
that instant's date in TIMEZONE, on every retry; `{"date": "YYYY-MM-DD"}` compacts that day (backfills,
`python -m tools etl run`); `{}` compacts yesterday at run time. A day that has not ended in TIMEZONE, a day
before ANALYTICS_START_DATE (when set), any other event, a bad setting or any S3 error raises, so the Lambda's retries, dead-letter queue and
error alarm see it. The summary is logged, published as metrics (lambdas/etl/metrics.py) and returned.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Mapping

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from lambdas.common.layout import is_time_zone
from lambdas.etl import metrics as metric_names
from lambdas.etl.compact import compact_day
from lambdas.etl.day import iso_date, refuse_unfinished, requested_day
from lambdas.etl.pseudonymize import Pseudonymizer, read_key
from lambdas.etl.store import DEFAULT_READ_CONCURRENCY, s3_client

logger = Logger(service="etl")


@dataclass(frozen=True)
class EtlSettings:
    raw_bucket: str
    enriched_bucket: str
    timezone: str
    read_concurrency: int = DEFAULT_READ_CONCURRENCY
    # The stage's first day on Athena (its partition projection's range starts there); None: no lower bound.
    analytics_start_date: date | None = None
    # On a pseudonymized stage: the secret holding the pseudonym key, and whether that table keeps text.
    pseudonym_key_arn: str | None = None
    pseudonymized_text: str = "keep"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "EtlSettings":
        """The function's environment, validated up front so a misconfiguration fails with its name."""

        def required(name: str) -> str:
            value = environ.get(name, "").strip()
            if not value:
                raise ValueError(f"environment variable {name} is not set")
            return value

        zone = required("TIMEZONE")
        if not is_time_zone(zone):
            raise ValueError(f"environment variable TIMEZONE: unknown IANA time zone {zone!r}")
        concurrency = environ.get("READ_CONCURRENCY", "").strip() or str(DEFAULT_READ_CONCURRENCY)
        if not (concurrency.isascii() and concurrency.isdigit()) or int(concurrency) < 1:
            raise ValueError(f"environment variable READ_CONCURRENCY must be a positive integer, got {concurrency!r}")
        start = environ.get("ANALYTICS_START_DATE")  # exactly YYYY-MM-DD when set, as in cdk.json
        try:
            analytics_start_date = iso_date(start) if start else None
        except ValueError as error:
            raise ValueError(f"environment variable ANALYTICS_START_DATE {error}") from None
        text = environ.get("PSEUDONYMIZED_TEXT", "").strip() or "keep"
        if text not in ("keep", "drop"):
            raise ValueError(f"environment variable PSEUDONYMIZED_TEXT must be keep or drop, got {text!r}")
        return cls(
            required("RAW_BUCKET"), required("ENRICHED_BUCKET"), zone, int(concurrency), analytics_start_date,
            pseudonym_key_arn=environ.get("PSEUDONYM_KEY_ARN", "").strip() or None, pseudonymized_text=text,
        )


    def pseudonymizer(self) -> Pseudonymizer | None:
        """The stage's pseudonymizer when it writes the analysts' pseudonymized table (its key read now), else None."""
        if self.pseudonym_key_arn is None:
            return None
        import boto3

        key = read_key(boto3.client("secretsmanager"), self.pseudonym_key_arn)
        return Pseudonymizer(key, keep_text=self.pseudonymized_text == "keep")


def checked_day(event: Any, settings: EtlSettings, now: datetime | None = None) -> date:
    """The day an event asks for (see `day.requested_day`), refused when it has not ended in the stage's zone or
    when Athena could never show it."""
    day = requested_day(event, settings.timezone, now)
    refuse_unfinished(day, settings.timezone, now)
    start = settings.analytics_start_date
    if start is not None and day < start:
        raise ValueError(
            f"ETL day {day} is before the stage's analytics_start_date {start}: Athena's partition projection "
            "never shows it, so it is not compacted (move analytics_start_date back to include it)"
        )
    return day


def process(event: Any, settings: EtlSettings, now: datetime | None = None) -> dict[str, Any]:
    """The handler without the Lambda runtime: `etl run --local` calls it with the stage's settings."""
    day = checked_day(event, settings, now)
    summary = compact_day(
        s3_client(settings.read_concurrency),
        raw_bucket=settings.raw_bucket,
        enriched_bucket=settings.enriched_bucket,
        day=day,
        concurrency=settings.read_concurrency,
        pseudonymizer=settings.pseudonymizer(),
    ).as_dict()
    logger.info("day compacted", extra=summary)
    return summary


def publish_summary(summary: Mapping[str, Any], namespace: str) -> None:
    """The day's summary as one EMF document on standard output, which CloudWatch turns into the metrics the
    stage's dashboard charts. A failed run publishes none: Lambda's own Errors metric counts it.

    EphemeralMetrics, not Metrics: nothing is shared between invocations, so no document can carry another
    day's numbers.
    """
    metrics = EphemeralMetrics(namespace=namespace, service=metric_names.SERVICE)
    for field, name in metric_names.COUNTS.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=summary[field])
    for field, name in metric_names.SECONDS.items():
        metrics.add_metric(name=name, unit=MetricUnit.Seconds, value=summary[field])
    metrics.add_metadata(key="day", value=summary["day"])
    metrics.flush_metrics()


def metrics_namespace(environ: Mapping[str, str]) -> str:
    """The stage's namespace (POWERTOOLS_METRICS_NAMESPACE), the ingest's default otherwise."""
    return environ.get("POWERTOOLS_METRICS_NAMESPACE", "").strip() or metric_names.DEFAULT_NAMESPACE


@logger.inject_lambda_context
def handler(event: Any, context: Any) -> dict[str, Any]:
    summary = process(event, EtlSettings.from_environ(os.environ))
    publish_summary(summary, metrics_namespace(os.environ))
    return summary

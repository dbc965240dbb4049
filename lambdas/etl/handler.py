"""ETL Lambda: compact one day of raw Telegram updates into the enriched bucket's Parquet file.

Event `{}` (the daily schedule) compacts yesterday in TIMEZONE; `{"date": "YYYY-MM-DD"}` compacts that
day (backfills, `python -m tools etl run`). Any other event, a bad setting or any S3 error raises, so the
Lambda's retries, dead-letter queue and error alarm see it. The summary is logged and returned.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from aws_lambda_powertools import Logger

from lambdas.common.layout import is_time_zone
from lambdas.etl.compact import compact_day
from lambdas.etl.day import requested_day
from lambdas.etl.store import DEFAULT_READ_CONCURRENCY, s3_client

logger = Logger(service="etl")


@dataclass(frozen=True)
class EtlSettings:
    raw_bucket: str
    enriched_bucket: str
    timezone: str
    read_concurrency: int = DEFAULT_READ_CONCURRENCY

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
        return cls(required("RAW_BUCKET"), required("ENRICHED_BUCKET"), zone, int(concurrency))


def process(event: Any, settings: EtlSettings, now: datetime | None = None) -> dict[str, Any]:
    """The handler without the Lambda runtime: `etl run --local` calls it with the stage's settings."""
    day = requested_day(event, settings.timezone, now)
    summary = compact_day(
        s3_client(settings.read_concurrency),
        raw_bucket=settings.raw_bucket,
        enriched_bucket=settings.enriched_bucket,
        day=day,
        concurrency=settings.read_concurrency,
    ).as_dict()
    logger.info("day compacted", extra=summary)
    return summary


@logger.inject_lambda_context
def handler(event: Any, context: Any) -> dict[str, Any]:
    return process(event, EtlSettings.from_environ(os.environ))

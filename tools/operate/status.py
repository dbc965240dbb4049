"""`python -m tools status --stage S`: is the stage healthy? The dashboard's story in a terminal.

Prints the stage's alarms that are not OK (every alarm is named `TelegramLake-<stage>-...`), the last day
the ETL compacted with its rows (the newest daily Parquet file in the enriched bucket, read from its
footer), what the ingest did in the last hour (its outcome metrics) and the dashboard's URL. Exits 1
when an alarm is in ALARM, so a script or a cron job can act on it.
"""

from __future__ import annotations

import argparse
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from lambdas.common.layout import PARTITION_KEY, PREFIX, today
from lambdas.etl.day import OUTPUT_NAME
from lambdas.ingest import metrics as ingest_metrics
from stacks import outputs
from stacks.config import PROJECT, StageConfig
from tools.cli import CommandError, add_stage_argument, aws_session, plain, require_output, stack_outputs, stage_config

LAST_HOUR = timedelta(hours=1)
METRIC_PERIOD_SECONDS = 300  # five-minute sums, added up: the hour's total whatever its alignment
UNHEALTHY = 1
_DAY_FILE = re.compile(rf"{re.escape(PREFIX)}{PARTITION_KEY}=(\d{{4}}-\d{{2}}-\d{{2}})/{re.escape(OUTPUT_NAME)}")


@dataclass(frozen=True)
class AlarmState:
    name: str
    state: str  # OK, ALARM or INSUFFICIENT_DATA
    reason: str
    since: datetime


@dataclass(frozen=True)
class CompactedDay:
    day: date
    rows: int
    written: datetime


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status",
        help="the stage's health: alarms not OK, the last compacted day, updates stored in the last hour",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stage_argument(parser)
    parser.set_defaults(func=status_command)


def status_command(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    config = stage_config(args)
    session = aws_session(config)
    etl_stack = config.stack_name("Etl")
    etl_outputs = stack_outputs(config, "Etl", session)
    bucket = require_output(etl_outputs, outputs.ENRICHED_BUCKET_NAME, etl_stack)
    now = datetime.now(timezone.utc)
    cloudwatch = session.client("cloudwatch")
    try:
        alarms = stage_alarms(cloudwatch, config)
        last_hour = ingest_last_hour(cloudwatch, config, now)
        last_day = last_compacted_day(session.client("s3"), bucket)
    except (BotoCoreError, ClientError) as error:
        raise CommandError(f"cannot read the health of stage {config.stage}: {error}") from None
    print(
        "\n".join(
            status_lines(
                config, alarms, last_day, last_hour, now=now, dashboard=etl_outputs.get(outputs.DASHBOARD_URL)
            )
        )
    )
    return UNHEALTHY if any(alarm.state == "ALARM" for alarm in alarms) else 0


def alarm_prefix(config: StageConfig) -> str:
    """`TelegramLake-dev-`: what stacks/alarms.py puts before every alarm's name (kept equal by a test; that
    module imports the CDK, which a command does not load)."""
    return f"{PROJECT}-{config.stage}-"


def stage_alarms(cloudwatch: Any, config: StageConfig) -> list[AlarmState]:
    """Every metric alarm of the stage, by the name prefix every one of them carries."""
    found = []
    pages = cloudwatch.get_paginator("describe_alarms").paginate(
        AlarmNamePrefix=alarm_prefix(config), AlarmTypes=["MetricAlarm"]
    )
    for page in pages:
        for alarm in page.get("MetricAlarms", []):
            found.append(
                AlarmState(
                    alarm["AlarmName"], alarm["StateValue"], alarm.get("StateReason", ""),
                    alarm["StateUpdatedTimestamp"],
                )
            )
    return sorted(found, key=lambda alarm: alarm.name)


def ingest_last_hour(cloudwatch: Any, config: StageConfig, now: datetime) -> dict[str, int]:
    """How many requests ended in each outcome (Stored, Duplicate, ...) in the hour before `now`."""
    queries = [
        {
            "Id": f"m{index}",
            "MetricStat": {
                "Metric": {
                    "Namespace": config.metrics_namespace,
                    "MetricName": name,
                    "Dimensions": [{"Name": "service", "Value": ingest_metrics.SERVICE}],
                },
                "Period": METRIC_PERIOD_SECONDS,
                "Stat": "Sum",
            },
        }
        for index, name in enumerate(ingest_metrics.OUTCOMES)
    ]
    totals = dict.fromkeys(ingest_metrics.OUTCOMES, 0)
    pages = cloudwatch.get_paginator("get_metric_data").paginate(
        MetricDataQueries=queries, StartTime=now - LAST_HOUR, EndTime=now
    )
    for page in pages:
        for result in page["MetricDataResults"]:
            name = ingest_metrics.OUTCOMES[int(result["Id"][1:])]
            totals[name] += round(sum(result.get("Values", [])))
    return totals


def last_compacted_day(s3: Any, bucket: str) -> CompactedDay | None:
    """The newest day with a Parquet file in the enriched bucket: its day, rows (from the file's footer, exact)
    and when the ETL wrote it; None before the first run."""
    newest = newest_day_file(s3, bucket)
    if newest is None:
        return None
    day, written, key = newest
    return CompactedDay(day, parquet_rows(s3.get_object(Bucket=bucket, Key=key)["Body"].read(), key), written)


def newest_day_file(s3: Any, bucket: str) -> tuple[date, datetime, str] | None:
    """The newest day's Parquet file in the enriched bucket (its day, when it was written, its key), found by
    listing alone: `tools doctor` needs no read of the data."""
    newest: tuple[date, datetime, str] | None = None
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX):
        for item in page.get("Contents", []):
            matched = _DAY_FILE.fullmatch(item["Key"])
            if matched:
                day = date.fromisoformat(matched.group(1))
                if newest is None or day > newest[0]:
                    newest = (day, item["LastModified"], item["Key"])
    return newest


def parquet_rows(body: bytes, key: str) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(io.BytesIO(body)).metadata.num_rows
    except (pa.ArrowException, OSError) as error:
        raise CommandError(f"the enriched file {key} is not readable Parquet: {error}") from None


def status_lines(
    config: StageConfig,
    alarms: Sequence[AlarmState],
    last_day: CompactedDay | None,
    last_hour: dict[str, int],
    *,
    now: datetime,
    dashboard: str | None,
) -> list[str]:
    """The report, one fact per line; the alarms that are not OK one per line, with why and since when (as
    plain text: CloudWatch's reason quotes what the alarm saw)."""
    lines = [f"stage {config.stage} at {_utc(now)}"]
    states = {state: sum(1 for alarm in alarms if alarm.state == state) for state in ("ALARM", "INSUFFICIENT_DATA")}
    if not alarms:
        lines.append(f"alarms: none named {alarm_prefix(config)}* (is the stage deployed in this region?)")
    else:
        lines.append(
            f"alarms: {len(alarms)}, {states['ALARM']} in ALARM, {states['INSUFFICIENT_DATA']} without data yet"
        )
    for alarm in alarms:
        if alarm.state != "OK":
            lines.append(
                f"  {plain(alarm.state):<17} {plain(alarm.name)} since {_utc(alarm.since)}: {plain(alarm.reason)}"
            )
    lines.append(f"last compacted day: {_compacted(last_day, today(config.timezone, now), config.timezone)}")
    lines.append(
        "ingest in the last hour: " + ", ".join(f"{count:,} {name.lower()}" for name, count in last_hour.items())
    )
    lines.append(f"dashboard: {dashboard or 'not deployed yet (redeploy the Etl stack with this version)'}")
    return lines


def _compacted(last_day: CompactedDay | None, local_today: date, zone: str) -> str:
    if last_day is None:
        return "none yet (the ETL has written no day)"
    age = (local_today - last_day.day).days
    ago = {0: "today", 1: "yesterday"}.get(age, f"{age} days ago")
    return (
        f"{last_day.day.isoformat()} ({ago} in {zone}), {last_day.rows:,} rows, written {_utc(last_day.written)}"
        + ("; a day without messages has no file" if age > 1 else "")
    )


def _utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

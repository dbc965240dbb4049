"""The lake's own metrics (EMF, emitted by the handlers) as CloudWatch metric objects, for alarms and the dashboard.

Each handler publishes in the stage's namespace with Powertools' `service` dimension (`ingest`, `etl`); the
names come from the handlers' own modules (lambdas/ingest/metrics.py, lambdas/etl/metrics.py).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch

from stacks.config import StageConfig


def lake_metric(
    config: StageConfig,
    service: str,
    name: str,
    *,
    period: cdk.Duration,
    statistic: str = "Sum",
    label: str | None = None,
) -> cloudwatch.Metric:
    """The metric `name` that the `service` handler emits in the stage's namespace."""
    return cloudwatch.Metric(
        namespace=config.metrics_namespace,
        metric_name=name,
        dimensions_map={"service": service},
        period=period,
        statistic=statistic,
        label=label,
    )

"""The lake's Lambda functions: one recipe for runtime, architecture, code, logs, tracing and role.

Each function gets its own role that can write only to its own log group (plus X-Ray, which the CDK
adds for active tracing, for every function but one that answers every webhook request: see `traced`). The AWS managed `AWSLambdaBasicExecutionRole` is not used: it allows
creating and writing any log group in the account. Everything else a function may do is granted by
its stack through construct relationships (`bucket.grant_put(fn, ...)`).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.compliance import acknowledge
from stacks.config import StageConfig
from stacks.packaging import RUNTIME, architecture, function_code
from stacks.storage import removal_policy


def log_group(
    scope: Construct, construct_id: str, *, config: StageConfig, name: str | None = None
) -> logs.LogGroup:
    """A log group keeping the stage's retention (named `name`, when a service writes to a fixed name).

    The days are set on the L1 resource: in Python, `RetentionDays` is an enum of names, and the config
    already validated the day count against the values CloudWatch accepts."""
    group = logs.LogGroup(scope, construct_id, log_group_name=name, removal_policy=removal_policy(config))
    group.node.default_child.retention_in_days = config.log_retention_days
    return group


def lake_function(
    scope: Construct,
    construct_id: str,
    *,
    config: StageConfig,
    package: str,
    description: str,
    memory_mb: int,
    timeout: cdk.Duration,
    environment: Mapping[str, str],
    layers: Sequence[lambda_.ILayerVersion],
    module: str = "handler",
    traced: bool = True,
    **options,
) -> lambda_.Function:
    """`lambdas/<package>/<module>.py:handler` on the current Python runtime, logging to its own group, traced by
    X-Ray unless `traced` is False (a function that runs once per webhook request, where traces would cost more
    than the rest of its path: bench/cost.py).

    `options` are further `lambda_.Function` properties (e.g. asynchronous retries).
    """
    logs_group = log_group(scope, f"{construct_id}Logs", config=config)
    role = iam.Role(
        scope,
        f"{construct_id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"{construct_id} function, stage {config.stage}: its own logs and traces plus its stack's grants",
    )
    logs_group.grant_write(role)
    function = lambda_.Function(
        scope,
        construct_id,
        description=description,
        runtime=RUNTIME,
        architecture=architecture(config),
        handler=f"lambdas.{package}.{module}.handler",
        code=function_code(package),
        memory_size=memory_mb,
        timeout=timeout,
        environment=dict(environment),
        layers=list(layers),
        role=role,
        log_group=logs_group,
        tracing=lambda_.Tracing.ACTIVE if traced else lambda_.Tracing.DISABLED,
        **options,
    )
    if traced:
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray's PutTraceSegments and PutTelemetryRecords support no resource-level permissions; the CDK "
            "adds exactly these two actions for active tracing.",
        )
    return function

"""Buckets with the lake's secure defaults: the raw, enriched and query-results buckets and their access logs.

Every bucket: SSE-S3 encryption, all public access blocked, a TLS-only bucket policy, owner-enforced
object ownership (no ACLs), and the stage's removal policy. Data buckets write server access logs to the
stack's access-log bucket and are versioned (bounded by a noncurrent-version expiry) unless their content
must be gone when it expires, like Athena's query results.

`removal_policy="destroy"` removes a bucket only once it is empty: there is deliberately no
`auto_delete_objects`, whose custom-resource Lambda could empty a data bucket by accident, and which
would add a function, a role and a provider to every stack for a dev convenience.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.config import StageConfig
from stacks.references import stack_output

# IAM condition blocks by operator, e.g. {"StringLike": {"s3:prefix": [...]}}.
Conditions = Mapping[str, Mapping[str, Any]]
INCOMPLETE_UPLOAD_DAYS = 7


def removal_policy(config: StageConfig) -> cdk.RemovalPolicy:
    """prod (and any stage configured so) keeps its data when a stack or resource is deleted."""
    return cdk.RemovalPolicy.RETAIN if config.retain_data else cdk.RemovalPolicy.DESTROY


def _secure_defaults(config: StageConfig) -> dict:
    return {
        "encryption": s3.BucketEncryption.S3_MANAGED,
        "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
        "enforce_ssl": True,
        "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        "removal_policy": removal_policy(config),
    }


class AccessLogBucket(s3.Bucket):
    """Receives the server access logs of a stack's buckets; logs expire with the stage's log retention."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig):
        super().__init__(
            scope,
            construct_id,
            **_secure_defaults(config),
            lifecycle_rules=[
                s3.LifecycleRule(id="ExpireAccessLogs", expiration=cdk.Duration.days(config.log_retention_days))
            ],
        )


class SecureBucket(s3.Bucket):
    """A data bucket with the secure defaults, logging its access to `access_logs`.

    Versioned by default, so an overwritten, deleted or expired object stays recoverable for the stage's
    `noncurrent_version_days` (and no longer: that copy holds what people wrote too).
    `versioned=False` is for content that must really disappear when a lifecycle rule expires it: in a
    versioned bucket, an expiry only adds a delete marker and the data lingers as a noncurrent version.
    `lifecycle_rules` come on top of the rule every data bucket has: abandoned multipart uploads are
    aborted after INCOMPLETE_UPLOAD_DAYS (and, when versioned, noncurrent versions expire).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        access_logs: s3.IBucket,
        versioned: bool = True,
        lifecycle_rules: Sequence[s3.LifecycleRule] = (),
    ):
        super().__init__(
            scope,
            construct_id,
            **_secure_defaults(config),
            versioned=versioned,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=f"{construct_id}/",
            lifecycle_rules=[_housekeeping_rule(config, versioned), *lifecycle_rules],
        )


def _housekeeping_rule(config: StageConfig, versioned: bool) -> s3.LifecycleRule:
    """Abandoned multipart uploads cost storage until aborted; noncurrent versions until they expire."""
    abort_uploads = cdk.Duration.days(INCOMPLETE_UPLOAD_DAYS)
    if not versioned:
        return s3.LifecycleRule(id="AbortIncompleteUploads", abort_incomplete_multipart_upload_after=abort_uploads)
    return s3.LifecycleRule(
        id="ExpireOldVersions",
        noncurrent_version_expiration=cdk.Duration.days(config.noncurrent_version_days),
        abort_incomplete_multipart_upload_after=abort_uploads,
    )


def bucket_from_output(consumer: cdk.Stack, construct_id: str, *, producer: cdk.Stack, output_id: str) -> s3.IBucket:
    """Another stack's bucket, found through the bucket-name output it publishes for the tools.

    The consumer's IAM statements name a resource that is known before synthesis, so cdk-nag
    acknowledgments can name it exactly.
    """
    name = stack_output(consumer, producer=producer, output_id=output_id)
    return s3.Bucket.from_bucket_name(consumer, construct_id, name)


def grant_on_objects(
    bucket: s3.IBucket, grantee: iam.IGrantable, actions: Sequence[str], *key_patterns: str,
    conditions: Conditions | None = None,
) -> iam.Grant:
    """Exactly `actions` on the keys matching `key_patterns` (under `conditions`, if any), as a construct
    relationship.

    Narrower than `grant_read` / `grant_put` / `grant_delete`, which add action groups no code path needs
    (`s3:DeleteObject*` deletes versions and defeats versioning; legal holds, retention, tagging, aborts).
    """
    return iam.Grant.add_to_principal(
        grantee=grantee,
        actions=list(actions),
        resource_arns=[bucket.arn_for_objects(p) for p in key_patterns],
        conditions=dict(conditions) if conditions else None,
    )


def grant_listing(
    bucket: s3.IBucket, grantee: iam.IGrantable, prefix: str, *, conditions: Conditions | None = None
) -> iam.Grant:
    """`ListObjectsV2` of the keys under `prefix` only (the `s3:prefix` condition, beside any `conditions`), not
    the whole bucket."""
    return iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["s3:ListBucket"],
        resource_arns=[bucket.bucket_arn],
        conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}, **(conditions or {})},
    )


def grant_on_bucket(
    bucket: s3.IBucket, grantee: iam.IGrantable, actions: Sequence[str], conditions: Conditions | None = None
) -> iam.Grant:
    """Exactly `actions` on the bucket itself (not its objects)."""
    return iam.Grant.add_to_principal(
        grantee=grantee,
        actions=list(actions),
        resource_arns=[bucket.bucket_arn],
        conditions=dict(conditions) if conditions else None,
    )

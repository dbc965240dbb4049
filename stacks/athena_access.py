"""What a principal needs to run queries in the stage's Athena workgroup, shared by the analysts' policy and the
compaction state machine's role.

Athena reads the Glue catalog and S3, and writes its results, with the caller's own permissions: whoever starts
a query needs rights on the query's tables, data and results location, not only on Athena.
"""

from __future__ import annotations

from typing import Sequence

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from stacks.storage import Conditions, grant_on_bucket, grant_on_objects

# Athena writes a query's results, and reads them back, with the caller's permissions: what its own managed
# policy grants on a results bucket, without creating or configuring buckets.
RESULTS_BUCKET_ACTIONS = ("s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads")
RESULTS_OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")

def workgroup_arn(workgroup: athena.CfnWorkGroup) -> str:
    """The resource Athena authorizes query actions on: queries run, and are read, in their workgroup."""
    return cdk.Stack.of(workgroup).format_arn(service="athena", resource="workgroup", resource_name=workgroup.ref)


def grant_on_tables(
    grantee: iam.IGrantable, actions: Sequence[str], database: glue.CfnDatabase, tables: str
) -> str:
    """Exactly `actions` on the catalog, the database and its `tables` (a table's name, or `*` for all): Glue
    authorizes reading a table's definition on all three. Returns the tables' ARN."""
    stack = cdk.Stack.of(database)
    tables_arn = stack.format_arn(service="glue", resource="table", resource_name=f"{database.ref}/{tables}")
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=list(actions),
        resource_arns=[
            stack.format_arn(service="glue", resource="catalog"),
            stack.format_arn(service="glue", resource="database", resource_name=database.ref),
            tables_arn,
        ],
    )
    return tables_arn


def grant_query_results(
    results: s3.IBucket, grantee: iam.IGrantable, conditions: Conditions | None = None, *, prefix: str = ""
) -> None:
    """Writing and reading the workgroup's results, on a bucket that holds nothing else; with a `prefix`, under it
    alone (the analysts' workgroup of a pseudonymized stage: the bucket also holds the operators' results)."""
    if not prefix:
        grant_on_bucket(results, grantee, RESULTS_BUCKET_ACTIONS, conditions)
    else:
        grant_on_bucket(results, grantee, ["s3:GetBucketLocation"], conditions)
        listing = {"StringLike": {"s3:prefix": [f"{prefix}*"]}, **(conditions or {})}
        grant_on_bucket(results, grantee, ["s3:ListBucket", "s3:ListBucketMultipartUploads"], listing)
    grant_on_objects(results, grantee, RESULTS_OBJECT_ACTIONS, f"{prefix}*", conditions=conditions)

"""How one stack reads another's values: CloudFormation exports, so a stale value can never go unnoticed.

A weak reference (`Fn::GetStackOutput`) is read only when the consumer stack deploys, and `cdk deploy
--all` skips a consumer whose template did not change: replacing the raw bucket would leave the ETL
reading the old one, in silence. An export in use cannot change: CloudFormation refuses to update the
producer ("Export ... cannot be updated as it is in use by ...") until its consumers stop using it, so the
same change fails loudly at deploy time instead. The way out is two releases (docs/operating.md, "A deploy
fails on an export in use"): the first keeps the old export published (`keep_retired`) while the consumers move
to a new one; the second removes it.
"""

from __future__ import annotations

import aws_cdk as cdk


def export_name(producer: cdk.Stack, output_id: str) -> str:
    """`TelegramLake-dev-Ingestion-RawBucketName`: unique per stage, region and account, readable in the console."""
    return f"{producer.stack_name}-{output_id}"


def publish(producer: cdk.Stack, output_id: str, value: str, description: str) -> cdk.CfnOutput:
    """An output the tools read (by `output_id`) that other stacks of the stage may import."""
    return cdk.CfnOutput(
        producer, output_id, value=value, description=description, export_name=export_name(producer, output_id)
    )


def keep_retired(producer: cdk.Stack, output_id: str, value: str) -> cdk.CfnOutput:
    """An export the deployed consumers still import, kept as it is (its old output id, its current `value`) for
    one release while they move to its successor: CloudFormation refuses to remove or change it before. Delete
    the call in the next release, once every stage has deployed this one."""
    return publish(producer, output_id, value, "Retired: still imported by a deployed stack until its next deploy")


def stack_output(consumer: cdk.Stack, *, producer: cdk.Stack, output_id: str) -> str:
    """The value of `producer`'s exported output `output_id`, for a resource of `consumer`.

    The producer is deployed first; while the consumer imports the value, CloudFormation keeps it fixed.
    """
    consumer.add_stack_dependency(producer, f"imports its {output_id} output")
    return cdk.Fn.import_value(export_name(producer, output_id))

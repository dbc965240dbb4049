"""How one stack reads another's values: through the outputs the producer publishes for the tools."""

from __future__ import annotations

import aws_cdk as cdk


def stack_output(consumer: cdk.Stack, *, producer: cdk.Stack, output_id: str) -> str:
    """The value of `producer`'s output `output_id`, resolved by CloudFormation when `consumer` deploys.

    Stacks depend on each other only through those documented outputs (`Fn::GetStackOutput`, no
    export to block the producer's updates), and the producer is deployed first.
    """
    consumer.add_stack_dependency(producer, f"reads its {output_id} output")
    return cdk.Fn.get_stack_output(stack_name=producer.stack_name, output_name=output_id)

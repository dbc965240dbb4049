"""cdk-nag acknowledgments: each recorded on the construct it concerns, with the reason it is accepted."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Accept one finding on `construct` and its children; `AwsSolutions-IAM5[...]` names a single finding."""
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))


def nag_resource(scope: IConstruct, value: str) -> str:
    """`value` (e.g. an ARN token) as cdk-nag writes it in a finding id: `<RawBucket0C3EE094.Arn>/telegram/*`.

    An IAM5 acknowledgment must name the exact resource, so it is computed from the same token the grant
    used, never copied from a report. Mirrors cdk-nag 3's `flattenCfnReference` for the intrinsics our
    policies contain; anything else is JSON, as cdk-nag renders it.
    """
    return _flatten(cdk.Stack.of(scope).resolve(value))


def _flatten(node: Any) -> str:
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if not isinstance(node, dict):
        return json.dumps(node, separators=(",", ":"))
    if "Fn::Join" in node:
        delimiter, items = node["Fn::Join"]
        return delimiter.join(_flatten(item) for item in items)
    if "Fn::GetAtt" in node:
        resource, attribute = node["Fn::GetAtt"]
        return f"<{_flatten(resource)}.{_flatten(attribute)}>"
    if "Fn::ImportValue" in node:
        return _flatten(node["Fn::ImportValue"])
    if "Ref" in node:
        return f"<{_flatten(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))

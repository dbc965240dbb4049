"""Build the CDK app of a stage for template tests: bundling skipped (no pip), once per test module.

jsii starts Node once per process (about 2 s), later apps cost a fraction of a second: test modules
build each app they need in a module-scoped fixture and share it between tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from stacks.app import build_app
from stacks.config import StageConfig, load_stage
from tests.stage_settings import CDK_CONTEXT, STAGES, stages_with

# The stacks of a stage's app, in deploy order, each named and tagged after the stage.
PARTS = ("Ingestion", "Etl", "Presentation")


@dataclass(frozen=True)
class StageApp:
    """One synthesized stage: its config, its stacks and their templates, by part name."""

    config: StageConfig
    app: cdk.App
    stacks: dict[str, cdk.Stack]
    templates: dict[str, Template]

    def template(self, part: str) -> dict[str, Any]:
        return self.templates[part].to_json()

    def logical_id(self, part: str, *path: str) -> str:
        """The logical id of the CloudFormation resource at `path` (construct ids) in the part's stack."""
        construct = self.stacks[part]
        for construct_id in path:
            construct = construct.node.find_child(construct_id)
        if isinstance(construct.node.default_child, cdk.CfnResource):
            construct = construct.node.default_child
        return self.stacks[part].resolve(construct.logical_id)


def build(
    stage: str,
    *,
    stages: Mapping[str, Any] | None = None,
    nag: bool = False,
    outdir: Path | None = None,
    context: Mapping[str, Any] | None = None,
):
    """The app of `stage` with cdk.json's context (feature flags included, plus `context`), bundling skipped."""
    context = {
        **CDK_CONTEXT,
        **(context or {}),
        "stages": dict(stages or STAGES),
        "stage": stage,
        "aws:cdk:bundling-stacks": [],
    }
    app = cdk.App(context=context, outdir=str(outdir) if outdir else None)
    return app, build_app(app, nag=nag)


def synthesize(stage: str, *, stages: Mapping[str, Any] | None = None) -> StageApp:
    """Build the stage without cdk-nag (its plugin makes `Template.from_stack` raise) and synthesize it."""
    app, stacks = build(stage, stages=stages)
    by_part = dict(zip(PARTS, stacks))
    return StageApp(
        config=load_stage(stages or STAGES, stage),
        app=app,
        stacks=by_part,
        templates={part: Template.from_stack(stack) for part, stack in by_part.items()},
    )


def stage_fixture(stage: str, *, name: str | None = None, **settings: Any):
    """A module-scoped fixture (named after the stage unless `name` says otherwise) synthesizing `stage`,
    with some settings changed if given, once per test module."""

    @pytest.fixture(scope="module", name=name or stage)
    def synthesized() -> StageApp:
        return synthesize(stage, stages=stages_with(stage, **settings) if settings else None)

    return synthesized


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def arn(logical_id: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {key: value for key, value in template["Resources"].items() if value["Type"] == resource_type}


def the_resource(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    """The only resource of a type in a template (fails when there are none or several)."""
    found = list(resources(template, resource_type).values())
    assert len(found) == 1, f"expected exactly one {resource_type}, found {len(found)}"
    return found[0]


def policy_statements(template: dict[str, Any], role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement of every policy attached to a role: inline, managed (must be none) and separate."""
    role = template["Resources"][role_logical_id]["Properties"]
    assert not role.get("ManagedPolicyArns"), "the role has managed policies"
    statements = [s for policy in role.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def normalized(statements: list[dict[str, Any]]) -> list[tuple]:
    """Statements as comparable tuples: effect, sorted actions, sorted resources, principal and condition
    (as JSON), so a test of a policy fails when a condition or a principal changes, not only an action."""

    def as_list(value: Any) -> list:
        return value if isinstance(value, list) else [value]

    return sorted(
        (
            statement["Effect"],
            tuple(sorted(as_list(statement["Action"]))),
            tuple(sorted(json.dumps(resource, sort_keys=True) for resource in as_list(statement.get("Resource", [])))),
            json.dumps(statement.get("Principal"), sort_keys=True),
            json.dumps(statement.get("Condition"), sort_keys=True),
        )
        for statement in statements
    )

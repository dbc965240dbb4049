"""`python -m tools check-layers cdk.out/*`: measure the bundled Lambda code and layers against their budgets.

For every function of every stack in each cloud assembly, the code and layer assets are found through
the assembly's own manifests (stack template -> S3 key -> asset manifest -> bundled folder), never by
guessing folder names. Sizes are the unzipped bytes Lambda counts. Fails when a layer exceeds the budget
recorded on its resource, or a function with all its layers exceeds Lambda's 250 MB.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacks.limits import LAMBDA_UNZIPPED_LIMIT_BYTES, LAYER_BUDGET_METADATA, MIB
from tools.cli import CommandError

FUNCTION_TYPE = "AWS::Lambda::Function"
LAYER_TYPE = "AWS::Lambda::LayerVersion"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check-layers", help="fail if a bundled Lambda layer or function outgrows its size budget", description=__doc__
    )
    parser.add_argument("assemblies", nargs="+", type=Path, metavar="CLOUD_ASSEMBLY", help="a `cdk synth -o` folder")
    parser.set_defaults(func=check_layers)


@dataclass(frozen=True)
class Bundle:
    """One bundled asset: a function's code or a layer, with its unzipped size."""

    name: str  # construct path, e.g. TelegramLake-dev-Etl/PyarrowLayer
    size: int
    budget: int | None = None

    @property
    def over_budget(self) -> bool:
        return self.budget is not None and self.size > self.budget


@dataclass(frozen=True)
class FunctionBundle:
    code: Bundle
    layers: tuple[Bundle, ...]

    @property
    def total(self) -> int:
        return self.code.size + sum(layer.size for layer in self.layers)


def check_layers(args: argparse.Namespace) -> int:
    violations: list[str] = []
    for assembly in args.assemblies:
        print(assembly)
        for function in measure_assembly(assembly):
            print(f"  {function.code.name}: {_mb(function.total)} of {_mb(LAMBDA_UNZIPPED_LIMIT_BYTES)}")
            for bundle in (function.code, *function.layers):
                budget = f" (budget {_mb(bundle.budget)})" if bundle.budget is not None else ""
                print(f"    {bundle.name:<50} {_mb(bundle.size):>10}{budget}")
                if bundle.over_budget:
                    violations.append(f"{bundle.name} is {_mb(bundle.size)}, over its budget of {_mb(bundle.budget)}")
            if function.total > LAMBDA_UNZIPPED_LIMIT_BYTES:
                violations.append(
                    f"{function.code.name} with its layers is {_mb(function.total)}, over Lambda's "
                    f"{_mb(LAMBDA_UNZIPPED_LIMIT_BYTES)} unzipped limit"
                )
    for violation in dict.fromkeys(violations):  # a layer shared by two functions is reported once
        print(f"error: {violation}")
    return 1 if violations else 0


def measure_assembly(assembly: Path) -> list[FunctionBundle]:
    """Every Lambda function of every stack in the cloud assembly, with its code and layers measured."""
    manifest = _read_json(assembly / "manifest.json")
    artifacts = manifest.get("artifacts", {})
    functions = []
    for name, artifact in artifacts.items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        template = _read_json(assembly / artifact["properties"]["templateFile"])
        assets = _asset_folders(assembly, artifacts, artifact)
        functions += _measure_stack(name, template.get("Resources", {}), assets)
    return functions


def _asset_folders(assembly: Path, artifacts: dict[str, Any], stack: dict[str, Any]) -> dict[str, Path]:
    """S3 object key -> bundled folder, from the stack's asset manifest(s)."""
    folders = {}
    for dependency in stack.get("dependencies", []):
        artifact = artifacts.get(dependency, {})
        if artifact.get("type") != "cdk:asset-manifest":
            continue
        for asset in _read_json(assembly / artifact["properties"]["file"]).get("files", {}).values():
            for destination in asset["destinations"].values():
                folders[destination["objectKey"]] = assembly / asset["source"]["path"]
    return folders


def _measure_stack(stack: str, resources: dict[str, Any], assets: dict[str, Path]) -> list[FunctionBundle]:
    def bundle(logical_id: str, property_name: str) -> Bundle:
        resource = resources[logical_id]
        name = resource.get("Metadata", {}).get("aws:cdk:path", f"{stack}/{logical_id}").removesuffix("/Resource")
        key = resource["Properties"].get(property_name, {}).get("S3Key")
        if not isinstance(key, str) or key not in assets:
            raise CommandError(f"{name}: its {property_name} is not an asset of this cloud assembly; cannot measure it")
        return Bundle(name, _unzipped_size(assets[key]), resource.get("Metadata", {}).get(LAYER_BUDGET_METADATA))

    functions = []
    for logical_id, resource in resources.items():
        if resource["Type"] != FUNCTION_TYPE:
            continue
        layers = []
        for layer in resource["Properties"].get("Layers", []):
            built_here = isinstance(layer, dict) and resources.get(layer.get("Ref"), {}).get("Type") == LAYER_TYPE
            if not built_here:
                raise CommandError(f"{stack}/{logical_id}: layer {layer!r} is not built in this stack; cannot measure it")
            layers.append(bundle(layer["Ref"], "Content"))
        functions.append(FunctionBundle(bundle(logical_id, "Code"), tuple(layers)))
    return functions


def _unzipped_size(folder: Path) -> int:
    """The bytes Lambda counts: every regular file of the bundled folder (zipped at publish time)."""
    if not folder.is_dir():
        raise CommandError(f"{folder} is not a bundled asset folder (synthesize with bundling)")
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CommandError(f"{path} not found: is {path.parent} a cloud assembly (`cdk synth -o DIR`)?") from None


def _mb(size: int) -> str:
    return f"{size / MIB:.2f} MB"

"""`python -m tools check-layers`: finds each function's code and layers through a real cloud assembly's
manifests and fails on a layer over its budget or a function over Lambda's 250 MB.

The assembly is the dev app synthesized with bundling skipped; each test points its assets at folders
holding sparse files of chosen sizes (instant to create, measured like real ones).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import pytest

from stacks.limits import MIB
from tests.cdk_support import build
from tools.cli import CommandError
from tools.ci.layers import check_layers, measure_assembly


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory) -> Path:
    outdir = tmp_path_factory.mktemp("assembly")
    app, _ = build("dev", outdir=outdir, context={"aws:cdk:enable-path-metadata": True})  # as the CLI does
    app.synth()
    return outdir


def assembly_with_sizes(synthesized: Path, tmp_path: Path, sizes: dict[str, int]) -> Path:
    """A copy of the assembly whose asset named `display name` (e.g. `PyarrowLayer/Code`, in whichever construct)
    weighs `sizes[name]`."""
    assembly = tmp_path / "cdk.out"
    shutil.copytree(synthesized, assembly)
    for manifest_path in assembly.glob("*.assets.json"):
        manifest = json.loads(manifest_path.read_text())
        for asset_hash, asset in manifest["files"].items():
            folder = assembly / f"asset.{asset_hash}"
            folder.mkdir(exist_ok=True)
            with open(folder / "content.bin", "wb") as content:
                name = "/".join(asset.get("displayName", "").split("/")[-2:])
                os.truncate(content.fileno(), sizes.get(name, 1024))
            asset["source"]["path"] = folder.name
        manifest_path.write_text(json.dumps(manifest))
    return assembly


def run(assembly: Path) -> int:
    return check_layers(argparse.Namespace(assemblies=[assembly]))


def test_each_function_is_measured_with_its_own_layers(synthesized, tmp_path):
    assembly = assembly_with_sizes(synthesized, tmp_path, {"PyarrowLayer/Code": 90 * MIB, "RuntimeLayer/Code": 5 * MIB})

    measured = {function.code.name: function for function in measure_assembly(assembly)}

    steps = "TelegramLake-dev-Presentation/AthenaCompaction/Steps"  # dev compacts on Athena
    ingestion = ("TelegramLake-dev-Ingestion/Ingest", "TelegramLake-dev-Ingestion/Authorizer")
    assert measured.keys() == {*ingestion, "TelegramLake-dev-Etl/Etl", steps}
    for function, stack_layers in (("TelegramLake-dev-Etl/Etl", "TelegramLake-dev-Etl"),
                                   (steps, "TelegramLake-dev-Presentation/AthenaCompaction")):
        assert {layer.name: (layer.size, layer.budget) for layer in measured[function].layers} == {
            f"{stack_layers}/PyarrowLayer": (90 * MIB, 110 * MIB),
            f"{stack_layers}/RuntimeLayer": (5 * MIB, None),
        }
        assert measured[function].total == 95 * MIB + 1024
    for function in ingestion:
        assert [layer.name for layer in measured[function].layers] == ["TelegramLake-dev-Ingestion/RuntimeLayer"]


def test_layers_within_budget_pass_and_are_printed(synthesized, tmp_path, capsys):
    assembly = assembly_with_sizes(synthesized, tmp_path, {"PyarrowLayer/Code": 109 * MIB})

    assert run(assembly) == 0
    assert "TelegramLake-dev-Etl/PyarrowLayer" in capsys.readouterr().out


def test_a_pyarrow_layer_over_110_mb_fails(synthesized, tmp_path, capsys):
    assembly = assembly_with_sizes(synthesized, tmp_path, {"PyarrowLayer/Code": 111 * MIB})

    assert run(assembly) == 1
    assert "error: TelegramLake-dev-Etl/PyarrowLayer is 111.00 MB, over its budget of 110.00 MB" in capsys.readouterr().out


def test_a_function_whose_layers_exceed_250_mb_fails(synthesized, tmp_path, capsys):
    sizes = {"PyarrowLayer/Code": 100 * MIB, "RuntimeLayer/Code": 150 * MIB}
    assembly = assembly_with_sizes(synthesized, tmp_path, sizes)

    assert run(assembly) == 1
    output = capsys.readouterr().out
    assert "error: TelegramLake-dev-Etl/Etl with its layers is 250.00 MB, over Lambda's 250.00 MB" in output
    assert "Ingest with its layers" not in output  # 150 MB + its code: within the limit


def test_a_missing_asset_folder_or_a_folder_that_is_no_assembly_is_an_error(synthesized, tmp_path):
    assembly = assembly_with_sizes(synthesized, tmp_path, {})
    for folder in assembly.glob("asset.*"):
        shutil.rmtree(folder)

    with pytest.raises(CommandError, match="is not a bundled asset folder"):
        run(assembly)
    with pytest.raises(CommandError, match="manifest.json not found"):
        run(tmp_path)

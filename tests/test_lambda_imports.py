"""The Lambdas' modules import one another without a cycle (issue 16, section 7: the ingest's secret and
webhook rules imported each other for ConfigurationError). Read from the source, so an import behind
`if TYPE_CHECKING:` counts too: it is a cycle the day it becomes a real import."""

from __future__ import annotations

import ast
from pathlib import Path

LAMBDAS = Path(__file__).resolve().parent.parent / "lambdas"


def module_name(path: Path, root: Path) -> str:
    return ".".join(path.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The project modules `path` imports: `from lambdas.x import y` counts `lambdas.x`, and `lambdas.x.y` when
    that is a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found & modules


def import_cycles(root: Path = LAMBDAS) -> list[list[str]]:
    """Each cycle once per module on it, as the modules from that one round to it again."""
    paths = {module_name(path, root): path for path in root.rglob("*.py")}
    graph = {name: imported_modules(path, set(paths)) - {name} for name, path in paths.items()}
    cycles = []
    for start in sorted(graph):
        paths_to_follow = [[start]]
        while paths_to_follow:
            path = paths_to_follow.pop()
            for imported in sorted(graph[path[-1]]):
                if imported == start:
                    cycles.append(path)
                elif imported not in path:
                    paths_to_follow.append([*path, imported])
    return cycles


def test_no_lambda_module_imports_one_that_imports_it_back():
    assert import_cycles() == []


def test_the_cycle_check_sees_an_import_behind_type_checking(tmp_path):
    """The control: two modules importing each other, one of them only for type annotations."""
    package = tmp_path / "lambdas" / "demo"
    package.mkdir(parents=True)
    (package / "a.py").write_text("from lambdas.demo.b import B\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lambdas.demo import a\n"
    )

    assert import_cycles(tmp_path / "lambdas") == [
        ["lambdas.demo.a", "lambdas.demo.b"], ["lambdas.demo.b", "lambdas.demo.a"]
    ]

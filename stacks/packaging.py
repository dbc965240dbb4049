"""Lambda assets built without Docker: the function code and pip-installed layers.

Both bundle locally (`ILocalBundling`) with the Python that runs the CDK app. A bundler either produces
the asset or raises: it never returns False, which would make the CDK fall back to Docker (absent here)
with a far less helpful error. Asset hashes are computed from exactly what goes into the asset, so an
unrelated edit does not publish a new layer or function version.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Sequence

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks.config import PROJECT_ROOT, StageConfig
from stacks.limits import LAYER_BUDGET_METADATA, PYARROW_LAYER_BUDGET_BYTES

RUNTIME = lambda_.Runtime.PYTHON_3_14
PYTHON_VERSION = RUNTIME.name.removeprefix("python")  # pip selects the wheels' ABI with it
LAMBDAS_DIR = PROJECT_ROOT / "lambdas"
# Shared by every function: the package marker and the modules all handlers import.
SHARED_CODE = ("__init__.py", "common")
NOT_SHIPPED = ("__pycache__", "*.pyc", "requirements*.txt", "requirements*.in")

# What the ETL never imports from pyarrow (see ../shared/TOOLCHAIN.md, checked: parquet write/read, hive
# datasets, compute and json still work): Cython sources and headers, the C++ test suite, Flight, Arrow's
# own cloud filesystems (the ETL reads S3 with boto3), ORC, and the two extra copies of libarrow_python
# (only the versioned soname `libarrow_python.so.NNNN` is linked).
PYARROW_STRIP = (
    "pyarrow/**/*.pyx", "pyarrow/**/*.pxd", "pyarrow/**/*.pxi",
    "pyarrow/include", "pyarrow/src", "pyarrow/tests", "pyarrow/_pyarrow_cpp_tests*",
    "pyarrow/libarrow_flight.so*", "pyarrow/*python_flight*", "pyarrow/_flight*",
    "pyarrow/libarrow_s3.so*", "pyarrow/_s3fs*", "pyarrow/_gcsfs*", "pyarrow/_azurefs*", "pyarrow/_hdfs*",
    "pyarrow/_orc*", "pyarrow/_dataset_orc*",
    "pyarrow/libarrow_python.so", "pyarrow/libarrow_python.so.*.*",
)
# pip writes console scripts for the Python that ran it: useless in Lambda.
SCRIPTS = ("bin",)


def architecture(config: StageConfig) -> lambda_.Architecture:
    return lambda_.Architecture.ARM_64 if config.lambda_architecture == "arm64" else lambda_.Architecture.X86_64


def pip_platforms(config: StageConfig) -> tuple[str, ...]:
    """The manylinux tags of Lambda's Amazon Linux 2023 for the stage's architecture, newest first."""
    machine = "aarch64" if config.lambda_architecture == "arm64" else "x86_64"
    return (f"manylinux_2_28_{machine}", f"manylinux2014_{machine}")


def function_code(function_package: str) -> lambda_.Code:
    """The `lambdas` package trimmed to what one function imports: `lambdas/{__init__,common,<function>}`.

    The handler string is then `lambdas.<function>.handler.handler`, the same import path as in tests.
    When a test skips bundling, the CDK points at the whole source folder instead, which is fine.
    """
    bundler = FunctionCodeBundler(function_package)
    return lambda_.Code.from_asset(
        str(LAMBDAS_DIR),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=bundler.fingerprint(),
        bundling=cdk.BundlingOptions(image=RUNTIME.bundling_image, local=bundler),
    )


@jsii.implements(cdk.ILocalBundling)
class FunctionCodeBundler:
    """Copies the shared modules and one function's folder into `<output>/lambdas/`."""

    def __init__(self, function_package: str):
        if not (LAMBDAS_DIR / function_package).is_dir():
            raise ValueError(f"no Lambda package lambdas/{function_package}/")
        self.sources = [LAMBDAS_DIR / name for name in (*SHARED_CODE, function_package)]

    def files(self) -> list[Path]:
        """Every file the asset will contain, in a stable order."""
        found: list[Path] = []
        for source in self.sources:
            candidates = sorted(source.rglob("*")) if source.is_dir() else [source]
            found += [path for path in candidates if path.is_file() and _shipped(path)]
        return found

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for path in self.files():
            digest.update(str(path.relative_to(LAMBDAS_DIR)).encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()

    def try_bundle(self, output_dir: str, *, image: Any = None, **_options: Any) -> bool:
        target = Path(output_dir) / "lambdas"
        for source in self.sources:
            if source.is_dir():
                shutil.copytree(source, target / source.name, ignore=shutil.ignore_patterns(*NOT_SHIPPED))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / source.name)
        return True


def _shipped(path: Path) -> bool:
    """The same rule as the copy's `ignore_patterns`, applied to every part of the path."""
    return not any(fnmatch(part, pattern) for part in path.relative_to(LAMBDAS_DIR).parts for pattern in NOT_SHIPPED)


class PipLayer(lambda_.LayerVersion):
    """A layer of the packages in one lock file (every distribution pinned, with hashes), installed by pip for
    Lambda's platform.

    `strip` lists glob patterns (relative to the layer's `python/` folder) deleted after installing.
    `budget_bytes`, when set, is recorded on the resource for `python -m tools check-layers`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        requirements: Path,
        description: str,
        strip: Sequence[str] = (),
        budget_bytes: int | None = None,
    ):
        bundler = PipLayerBundler(requirements, pip_platforms(config), tuple(strip))
        super().__init__(
            scope,
            construct_id,
            description=description,
            code=lambda_.Code.from_asset(
                str(requirements.parent),
                asset_hash_type=cdk.AssetHashType.CUSTOM,
                asset_hash=bundler.fingerprint(),
                bundling=cdk.BundlingOptions(image=RUNTIME.bundling_image, local=bundler),
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[architecture(config)],
        )
        if budget_bytes is not None:
            self.node.default_child.add_metadata(LAYER_BUDGET_METADATA, budget_bytes)


@jsii.implements(cdk.ILocalBundling)
class PipLayerBundler:
    """`pip install --require-hashes --platform ... --only-binary=:all:` into `<output>/python`, then delete `strip`
    globs.

    Binary wheels only, for Lambda's platform and Python, so what is installed is what Lambda loads,
    whatever machine synthesizes; every one of them pinned in the lock and checked against its hash, so a
    release published after the lock never slips in. `--no-compile`: bytecode compiled here would be for this Python, not
    the runtime's. A failing pip raises with its output.
    """

    def __init__(self, requirements: Path, platforms: tuple[str, ...], strip: tuple[str, ...]):
        self.requirements = requirements
        self.platforms = platforms
        self.strip = strip

    def pip_options(self) -> list[str]:
        platform_options = [option for tag in self.platforms for option in ("--platform", tag)]
        return [
            "--quiet", "--disable-pip-version-check", "--no-compile", "--require-hashes", *platform_options,
            "--implementation", "cp", "--python-version", PYTHON_VERSION, "--only-binary=:all:",
        ]

    def fingerprint(self) -> str:
        """Changes with the lock, pip's options (platform, Python) and the strip list."""
        recipe = [self.requirements.read_text(encoding="utf-8"), *self.pip_options(), *self.strip]
        return hashlib.sha256("\0".join(recipe).encode()).hexdigest()

    def try_bundle(self, output_dir: str, *, image: Any = None, **_options: Any) -> bool:
        site = Path(output_dir) / "python"
        command = [sys.executable, "-m", "pip", "install", *self.pip_options(), "--target", str(site),
                   "-r", str(self.requirements)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"pip could not build the layer from {self.requirements} "
                f"(exit {result.returncode}):\n{result.stdout}{result.stderr}"
            )
        for pattern in self.strip:
            for path in list(site.glob(pattern)):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
        return True


def runtime_layer(scope: Construct, config: StageConfig) -> PipLayer:
    """Powertools and tzdata: what every function imports besides boto3 (which the runtime provides)."""
    return PipLayer(
        scope,
        "RuntimeLayer",
        config=config,
        requirements=LAMBDAS_DIR / "requirements.txt",
        description="aws-lambda-powertools and tzdata for every Telegram lake function",
        strip=SCRIPTS,
    )


def pyarrow_layer(scope: Construct, config: StageConfig) -> PipLayer:
    """pyarrow without what the ETL never loads, to stay within Lambda's 250 MB with the other layer."""
    return PipLayer(
        scope,
        "PyarrowLayer",
        config=config,
        requirements=LAMBDAS_DIR / "etl" / "requirements.txt",
        description="pyarrow (stripped: no Flight, ORC, Arrow cloud filesystems, headers or tests)",
        strip=PYARROW_STRIP,
        budget_bytes=PYARROW_LAYER_BUDGET_BYTES,
    )

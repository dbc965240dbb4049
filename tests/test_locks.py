"""The locks: every Python distribution the venv and the Lambda layers install is pinned, with hashes, and they
agree with each other, so a fresh clone next month installs what these tests ran with.

`make lock` writes them with pip-compile from the `*.in` files (direct dependencies only); these tests check what
pip-compile cannot: that nothing is installed unpinned, and that the deployed locks took the dev lock's versions.
"""

from __future__ import annotations

import re
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

from stacks.config import PROJECT_ROOT

DEV_LOCK = PROJECT_ROOT / "requirements-dev.txt"
# The locks of what is deployed: the CDK app (synth) and the two Lambda layers.
DEPLOYED_LOCKS = (
    PROJECT_ROOT / "requirements.txt",
    PROJECT_ROOT / "lambdas" / "requirements.txt",
    PROJECT_ROOT / "lambdas" / "etl" / "requirements.txt",
)
LOCKS = (DEV_LOCK, *DEPLOYED_LOCKS)
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def canonical(name: str) -> str:
    """PEP 503's normalized name: `Typing_Extensions` and `typing-extensions` are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(path: Path) -> list[str]:
    """The file's requirements, one string each, with their continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    return [line.split(" #")[0].strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def pins(path: Path) -> dict[str, str]:
    found = {}
    for requirement in requirements(path):
        match = _PIN.match(requirement)
        if match:
            found[canonical(match[1])] = match[2]
    return found


@pytest.mark.parametrize("lock", LOCKS, ids=lambda path: str(path.relative_to(PROJECT_ROOT)))
def test_every_requirement_of_a_lock_is_an_exact_pin_with_hashes(lock):
    entries = requirements(lock)

    assert entries, f"{lock} is empty"
    for entry in entries:
        assert _PIN.match(entry), f"{lock.name}: not an exact `name==version` pin: {entry!r}"
        assert _HASH.search(entry), f"{lock.name}: no sha256 hash for {entry.split()[0]}"
        assert not re.search(r"--(index-url|extra-index-url|find-links)|\s-e\s|://", entry), entry


@pytest.mark.parametrize("lock", LOCKS, ids=lambda path: str(path.relative_to(PROJECT_ROOT)))
def test_each_lock_holds_its_direct_pins_at_their_versions(lock):
    direct = pins(lock.with_suffix(".in"))
    locked = pins(lock)

    assert direct, f"{lock.with_suffix('.in')} pins nothing"
    assert {name: locked.get(name) for name in direct} == direct


def test_the_deployed_locks_take_the_dev_locks_versions():
    dev = pins(DEV_LOCK)
    for lock in DEPLOYED_LOCKS:
        differing = {name: (version, dev.get(name)) for name, version in pins(lock).items() if dev.get(name) != version}
        assert not differing, f"{lock.name} differs from requirements-dev.txt (lock, dev): {differing}"


def test_the_venv_holds_exactly_the_dev_lock():
    """What `make setup` installed is the lock: no distribution more, none at another version."""
    installed = {canonical(dist.metadata["Name"]): dist.version for dist in metadata.distributions()}

    assert installed == pins(DEV_LOCK)


def test_setup_installs_the_dev_lock_only_and_checks_its_hashes():
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", ".venv/.installed"], cwd=PROJECT_ROOT, capture_output=True,
        text=True, check=False,
    )

    assert result.returncode == 0, result.stderr
    installs = [line for line in result.stdout.splitlines() if "pip install" in line]
    assert len(installs) == 1
    assert "--require-hashes -r requirements-dev.txt" in installs[0]

"""`python -m tools ...`: the project's own commands (webhook, etl, query, local, demo, check-layers, chats)."""

from __future__ import annotations

import argparse
import importlib
import sys

from tools.cli import CommandError

# Each module exposes `register(subparsers)`, adding its command with `set_defaults(func=...)`;
# `func(args)` returns the process exit code.
COMMAND_MODULES = (
    "tools.webhook", "tools.etl_runs", "tools.query", "tools.local", "tools.demo", "tools.layers", "tools.chats",
    "tools.target",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CommandError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

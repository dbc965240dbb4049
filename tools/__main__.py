"""`python -m tools ...`: the project's own commands.

Laid out by what they are for: tools/operate/ operates a deployed stage (webhook, chats, target, etl run,
import-history, query, report, status, doctor, erase; most also run `--local`), tools/local/ emulates AWS on this
machine (local up, demo), tools/ci/ checks the build (check-layers; the browser check and the workflow linters run
from make).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from analytics import QueryLoadError
from tools.cli import CommandError, aws_configuration_problem, plain

# Each module exposes `register(subparsers)`, adding its command with `set_defaults(func=...)`;
# `func(args)` returns the process exit code. In the order `--help` lists them.
COMMAND_MODULES = (
    "tools.operate.webhook", "tools.operate.chats", "tools.operate.target", "tools.operate.etl_runs",
    "tools.operate.import_history", "tools.operate.query", "tools.operate.report", "tools.operate.status",
    "tools.operate.doctor", "tools.operate.erase",
    "tools.local.stack", "tools.local.demo",
    "tools.ci.layers",
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
        message = str(error)
    except QueryLoadError as error:  # every command that reads the saved queries: query, report, webhook set, ...
        message = f"the saved queries in analytics/ cannot be loaded: {error}"
    except Exception as error:  # botocore refusing the operator's AWS configuration, wherever a client was made
        message = aws_configuration_problem(error)
        if message is None:
            raise
    print(f"error: {plain(message)}", file=sys.stderr)  # it may quote Telegram, AWS or a stored name
    return 1


if __name__ == "__main__":
    sys.exit(main())

"""The cdk-nag (AwsSolutions) result of every synthesized stage as Markdown, for the checks' job summary.

`make synth-all` writes `cdk.out/<stage>/validation-report.json` for each stage: the findings that failed the
synth (none when every one is fixed or acknowledged), and the stacks' own warnings, which did not. Runs with
the system Python (stdlib only), after a failed `make test` too.

    python3 -m tools.ci.nag_report cdk.out >> "$GITHUB_STEP_SUMMARY"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from stacks.config import ConfigError, read_stages, stage_names

REPORT = "validation-report.json"
# The CDK's own report of the stacks' annotations (with `@aws-cdk/core:annotationsInValidationReport`): their
# warnings, e.g. a stage whose alarms nobody hears. They never fail the synth.
ANNOTATIONS = "Construct Annotations"


def findings(report: dict[str, Any], *, annotations: bool = False) -> list[tuple[str, str, str]]:
    """(rule, construct path, description) of every cdk-nag violation in a validation report (which fail the
    synth), or with `annotations` of every warning the stacks themselves gave (which do not)."""
    return [
        (violation["ruleName"], construct["constructPath"], violation.get("description", ""))
        for plugin in report.get("pluginReports", [])
        if (plugin.get("pluginName") == ANNOTATIONS) == annotations
        for violation in plugin.get("violations", [])
        for construct in violation.get("violatingConstructs", [])
    ]


def summary(reports: dict[str, dict[str, Any] | None]) -> str:
    """Markdown: one line per stage (None: no report, the synth did not get there), then each finding and
    warning."""
    lines = ["## cdk-nag (AwsSolutions)", "", "| stage | result |", "|---|---|"]
    details: list[str] = []
    for stage, report in reports.items():
        if report is None:
            lines.append(f"| {stage} | not synthesized: no `{REPORT}` (see the log) |")
            continue
        found, warned = findings(report), findings(report, annotations=True)
        result = f"{len(found)} finding(s)" if found else "no unacknowledged finding"
        lines.append(f"| {stage} | {result}{f', {len(warned)} warning(s)' if warned else ''} |")
        if found or warned:
            details += ["", f"### {stage}", "", "| rule | construct | what |", "|---|---|---|"]
            details += [
                f"| {_code(rule)} | {_code(path)} | {prefix}{_cell(what)} |"
                for prefix, listed in (("", found), ("warning: ", warned))
                for rule, path, what in sorted(listed)
            ]
    return "\n".join(lines + details) + "\n"


def _code(text: str) -> str:
    """A table cell in backticks: cdk-nag's `<AWS::Region>` would otherwise read as an HTML tag."""
    return f"`{_cell(text).replace('`', '')}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def read_reports(out_dir: Path, stages: list[str]) -> dict[str, dict[str, Any] | None]:
    reports: dict[str, dict[str, Any] | None] = {}
    for stage in stages:
        path = out_dir / stage / REPORT
        try:
            reports[stage] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            reports[stage] = None
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tools.ci.nag_report", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="the cloud assemblies' parent folder (cdk.out)")
    args = parser.parse_args(argv)
    try:
        stages = stage_names(read_stages())
        print(summary(read_reports(args.out_dir, stages)), end="")
    except (ConfigError, ValueError) as error:  # ValueError: a report that is not JSON
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

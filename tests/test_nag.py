"""cdk-nag AwsSolutions: no unacknowledged finding in any stage, and every acknowledgment still earns its place.

Each test builds its own app with the checks enabled (they make `Template.from_stack` raise) and
bundling skipped; a finding makes `app.synth()` raise and write `validation-report.json`.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

from tests.cdk_support import build
from tests.stage_settings import stages_with


def findings(outdir: Path) -> set[tuple[str, str]]:
    """(rule, construct path) of every cdk-nag violation in the validation report. The report also lists the
    stacks' own warnings (e.g. a stage whose alarms nobody hears), under "Construct Annotations": not findings."""
    report = json.loads((outdir / "validation-report.json").read_text(encoding="utf-8"))
    return {
        (violation["ruleName"], construct["constructPath"])
        for plugin in report["pluginReports"]
        if plugin["pluginName"] != "Construct Annotations"
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
    }


@pytest.mark.parametrize(
    ("stage", "settings"),
    [
        ("dev", {}),
        ("prod", {}),
        # Pseudonymized for analysts, on either engine: the pseudonym key's readers and the analysts' workgroup.
        ("dev", {"analyst_access": "pseudonymized"}),
        ("prod", {"analyst_access": "pseudonymized", "pseudonymized_text": "drop", "enriched_expiration_days": 400}),
    ],
)
def test_stage_synthesizes_with_no_unacknowledged_finding(stage, settings, tmp_path):
    app, _ = build(stage, stages=stages_with(stage, **settings) if settings else None, nag=True, outdir=tmp_path)
    try:
        app.synth()
    except RuntimeError:
        pytest.fail(f"cdk-nag findings in {stage}: {sorted(findings(tmp_path))}")

    assert findings(tmp_path) == set()


def test_the_checks_run_a_non_compliant_resource_fails_the_synth(tmp_path):
    app, stacks = build("dev", nag=True, outdir=tmp_path)
    s3.CfnBucket(stacks[0], "Unsafe")

    with pytest.raises(RuntimeError, match="^ValidationFailed"):
        app.synth()
    assert ("AwsSolutions-S1", "TelegramLake-dev-Ingestion/Unsafe") in findings(tmp_path)


def test_every_acknowledgment_suppresses_a_real_finding_and_gives_a_reason(tmp_path, monkeypatch):
    """Without the acknowledgments, each one's rule is reported on the construct it was recorded on."""
    real_validations = cdk.Validations
    acknowledged: list[tuple[str, str, str]] = []

    class RecordingValidations:
        @staticmethod
        def of(scope):
            def record(*rules: cdk.Acknowledgment) -> None:
                acknowledged.extend((rule.id, scope.node.path, rule.reason) for rule in rules)

            return SimpleNamespace(add_plugins=real_validations.of(scope).add_plugins, acknowledge=record)

    monkeypatch.setattr(cdk, "Validations", RecordingValidations)
    app, _ = build("dev", nag=True, outdir=tmp_path)
    with pytest.raises(RuntimeError, match="^ValidationFailed"):
        app.synth()
    reported = findings(tmp_path)

    assert acknowledged
    for rule, path, reason in acknowledged:
        assert any(found == rule and (where + "/").startswith(path + "/") for found, where in reported), (rule, path)
        assert len(reason) >= 40, f"{rule} on {path}: say why it is accepted"

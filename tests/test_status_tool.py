"""`python -m tools status`: the stage's health in a terminal, against moto (CloudFormation, CloudWatch, S3)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

import tools.__main__
from lambdas.common.layout import today
from lambdas.etl.day import enriched_key, rejects_key
from lambdas.ingest import metrics as ingest_metrics
from stacks.config import PROJECT_ROOT, load_from_cdk_json
from stacks import outputs
from tools.operate.status import alarm_prefix

DEV = load_from_cdk_json("dev")
BUCKET = "telegram-lake-dev-enriched"
DASHBOARD = "https://example.console/cloudwatch/home?region=us-east-1#dashboards/dashboard/TelegramLake-dev"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    with mock_aws():
        yield


def deploy(dashboard: bool = True) -> None:
    """The Etl stack's outputs in moto, and its enriched bucket."""
    stack_outputs = {outputs.ENRICHED_BUCKET_NAME: {"Value": BUCKET}}
    if dashboard:
        stack_outputs[outputs.DASHBOARD_URL] = {"Value": DASHBOARD}
    template = {"Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}}, "Outputs": stack_outputs}
    boto3.client("cloudformation").create_stack(StackName=DEV.stack_name("Etl"), TemplateBody=json.dumps(template))
    boto3.client("s3").create_bucket(Bucket=BUCKET)


def alarm(name: str, state: str = "OK", reason: str = "Threshold Crossed: 1 datapoint") -> None:
    cloudwatch = boto3.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=name, MetricName="Failed", Namespace=DEV.metrics_namespace, Statistic="Sum", Period=300,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    if state != "OK":
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)
    else:
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="fine")


def compacted(day: date, rows: int) -> None:
    table = pa.table({"update_id": list(range(rows))})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    boto3.client("s3").put_object(Bucket=BUCKET, Key=enriched_key(day), Body=buffer.getvalue())


def stored(count: int, minutes_ago: int, name: str = ingest_metrics.STORED) -> None:
    boto3.client("cloudwatch").put_metric_data(
        Namespace=DEV.metrics_namespace,
        MetricData=[{
            "MetricName": name, "Value": count, "Unit": "Count",
            "Dimensions": [{"Name": "service", "Value": ingest_metrics.SERVICE}],
            "Timestamp": datetime.now(timezone.utc) - timedelta(minutes=minutes_ago),
        }],
    )


def status(capsys) -> tuple[int, str, str]:
    code = tools.__main__.main(["status", "--stage", "dev"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out, captured.err


def test_a_healthy_stage_prints_its_last_day_its_last_hour_and_its_dashboard(aws, capsys):
    deploy()
    alarm("TelegramLake-dev-UpdatesNotStored")
    alarm("TelegramLake-dev-EtlErrors")
    local_today = today(DEV.timezone)
    compacted(local_today - timedelta(days=3), 5)
    compacted(local_today - timedelta(days=1), 1234)  # the newest: listed after an older day on purpose
    boto3.client("s3").put_object(Bucket=BUCKET, Key=rejects_key(local_today), Body=b"{}")  # not a day's file
    stored(7, minutes_ago=10)
    stored(5, minutes_ago=40)
    stored(100, minutes_ago=90)  # before the last hour
    stored(2, minutes_ago=5, name=ingest_metrics.SKIPPED)

    code, out, _ = status(capsys)

    assert code == 0
    assert "alarms: 2, 0 in ALARM" in out
    yesterday = (local_today - timedelta(days=1)).isoformat()
    assert f"last compacted day: {yesterday} (yesterday in {DEV.timezone}), 1,234 rows" in out
    assert "ingest in the last hour: 12 stored, 2 skipped, 0 rejected, 0 failed" in out
    assert f"dashboard: {DASHBOARD}" in out


def test_an_alarm_in_alarm_is_listed_with_its_reason_and_the_exit_code_says_unhealthy(aws, capsys):
    deploy()
    alarm("TelegramLake-dev-UpdatesNotStored", "ALARM", "Threshold Crossed: 3 datapoints were >= 1")
    alarm("TelegramLake-dev-EtlErrors")
    alarm("TelegramLake-prod-UpdatesNotStored", "ALARM")  # another stage's: not this one's business

    code, out, _ = status(capsys)

    assert code == 1
    assert "alarms: 2, 1 in ALARM" in out
    [line] = [line for line in out.splitlines() if "UpdatesNotStored" in line]
    assert line.split()[0] == "ALARM" and "TelegramLake-dev-UpdatesNotStored" in line
    assert line.endswith("Threshold Crossed: 3 datapoints were >= 1")
    assert "prod" not in out


def test_an_alarm_reason_is_printed_as_plain_text(aws, capsys):
    """CloudWatch's reason quotes what the alarm saw; whatever it holds, it stays on its line and does nothing
    to the terminal."""
    deploy()
    alarm("TelegramLake-dev-UpdatesNotStored", "ALARM", "[bold]Crossed[/] \x1b[2J\x1b]0;owned\x07\u202e\nforged: line")

    code, out, _ = status(capsys)

    assert code == 1
    [line] = [line for line in out.splitlines() if "UpdatesNotStored" in line]
    assert line.endswith("[bold]Crossed[/] \\u001b[2J\\u001b]0;owned\\u0007\\u202e\\nforged: line")
    assert not set(out) & set("\x1b\x07\u202e")


def test_a_fresh_stage_says_what_it_has_not_done_yet(aws, capsys):
    deploy(dashboard=False)

    code, out, _ = status(capsys)

    assert code == 0
    assert "alarms: none named TelegramLake-dev-*" in out
    assert "last compacted day: none yet" in out
    assert "0 stored" in out and "dashboard: not deployed yet" in out


def test_an_undeployed_stage_or_an_unreadable_day_file_is_one_line(aws, capsys):
    code, _, err = status(capsys)
    assert code == 1
    assert err.strip() == "error: stack TelegramLake-dev-Etl is not deployed (run `make deploy STAGE=dev`)"

    deploy()
    boto3.client("s3").put_object(Bucket=BUCKET, Key=enriched_key(today(DEV.timezone)), Body=b"not parquet")
    code, _, err = status(capsys)
    assert code == 1 and err.startswith("error: the enriched file ") and len(err.strip().splitlines()) == 1


def test_the_alarm_prefix_is_the_one_the_stacks_name_alarms_with():
    from stacks.alarms import alarm_name

    assert alarm_prefix(DEV) + "X" == alarm_name(DEV, "X")


def test_the_command_does_not_load_the_cdk():
    """jsii costs seconds and starts Node: the commands stay clear of it."""
    probe = (
        "import sys, tools.operate.status, tools.operate.report, tools.ci.browser; "
        "print(sorted(m for m in sys.modules if m.startswith(('aws_cdk', 'jsii'))))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

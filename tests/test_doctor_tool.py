"""`python -m tools doctor`: each check against moto where moto serves the call (CloudFormation, S3, SNS, Glue,
Scheduler, Step Functions' describe, Athena's query lifecycle), the webhook probe against the local stack (the
real ingest handler behind HTTP) or a fake webhook, getWebhookInfo against the fake Bot API, and fakes for
what moto lacks: ValidateStateMachineDefinition (one botocore call answered in place), Athena refusing SQL.

Each check is shown to pass on a healthy stage and to fail, with its one-line reason, on a broken one; the
whole command's exit code follows.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from moto import mock_aws

import tools.__main__
import tools.operate.doctor as doctor
from lambdas.common.layout import PREFIX, raw_key, today
from lambdas.etl.day import enriched_key
from stacks import outputs
from stacks.config import MAX_CHAT_ID_MAGNITUDE, RAW_TABLE, TABLE, load_from_cdk_json
from tests.fake_bot_api import FakeBotApi
from tools.operate.statements import athena_statements
from tools.local.stack import LocalStack
from lambdas.ingest.chats import Chat, ChatsSeen
from tools.operate.chats import read_records
from tools.operate.doctor import FAIL, OK, PARTS, SKIPPED, Verdict, Visit
from tools.telegram import TOKEN_ENV

DEV = load_from_cdk_json("dev")  # compacts on Athena
PROD = load_from_cdk_json("prod")  # compacts with the Lambda
REGION = "us-east-1"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)  # 09:00 in São Paulo: yesterday (11-20) is due
RAW, ENRICHED = "telegram-lake-dev-raw", "telegram-lake-dev-enriched"
TOKEN = "123456789:AAH-doctor_test_token"
ALARM_MAIL = "ops@example.com"
DOCTOR_LINE = re.compile(r"^(ok|FAIL|skipped) +(\S+(?: \S+)?) {2,}(.*)$")


# ---- moto: a deployed stage, as far as the doctor reads it


def deploy(
    client: Callable[[str], Any], config=DEV, *, enriched: str = ENRICHED, **ingestion: str
) -> dict[str, dict[str, str]]:
    """The stage's resources the doctor checks, healthy, and each stack's outputs (as CloudFormation stacks with
    those outputs). `ingestion` overrides Ingestion outputs another stand-in provides (the local stack's webhook)."""
    sns = client("sns")
    topic = sns.create_topic(Name="TelegramLake-dev-alarms")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=ALARM_MAIL)  # moto confirms it at once
    client("athena").create_work_group(Name=config.athena_workgroup)
    glue = client("glue")
    glue.create_database(DatabaseInput={"Name": config.glue_database})
    for table in (TABLE, RAW_TABLE):
        glue.create_table(DatabaseName=config.glue_database, TableInput={"Name": table})
    role = client("iam").create_role(RoleName="runs", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    deployed = {
        "Ingestion": {
            outputs.WEBHOOK_URL: "https://abc123.execute-api.us-east-1.amazonaws.com/prod/webhook",
            outputs.RAW_BUCKET_NAME: RAW, outputs.ALARM_TOPIC_ARN: topic, **ingestion,
        },
        "Etl": {outputs.ENRICHED_BUCKET_NAME: enriched},
        "Presentation": {outputs.WORKGROUP_NAME: config.athena_workgroup},
    }
    target = client("sqs").create_queue(QueueName="target")["QueueUrl"]
    if config.etl_engine_is_athena:
        machine = client("stepfunctions").create_state_machine(
            name="TelegramLake-dev-Compaction", definition=json.dumps(PASS_MACHINE), roleArn=role
        )["stateMachineArn"]
        deployed["Presentation"][outputs.COMPACTION_STATE_MACHINE_ARN] = machine
    name = f"TelegramLake-{config.stage}-DailyRun-{config.etl_engine}"
    client("scheduler").create_schedule(
        Name=name, ScheduleExpression="cron(0 1 * * ? *)", ScheduleExpressionTimezone=config.timezone,
        FlexibleTimeWindow={"Mode": "OFF"}, Target={"Arn": target, "RoleArn": role},
    )
    deployed["Presentation" if config.etl_engine_is_athena else "Etl"][outputs.DAILY_SCHEDULE_NAME] = name
    for part, values in deployed.items():
        template = {
            "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
            "Outputs": {key: {"Value": value} for key, value in values.items()},
        }
        client("cloudformation").create_stack(StackName=config.stack_name(part), TemplateBody=json.dumps(template))
    return deployed


def local_stage(stack: LocalStack) -> dict[str, dict[str, str]]:
    """The stage deployed in the local stack's moto, its Ingestion outputs naming the local webhook."""
    return deploy(
        stack.client, enriched=stack.enriched_bucket, **{
            outputs.WEBHOOK_URL: stack.webhook_url, outputs.WEBHOOK_SECRET_ARN: stack.secret_arn,
            outputs.RAW_BUCKET_NAME: stack.raw_bucket,
        },
    )


PASS_MACHINE = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}


class Validation:
    """ValidateStateMachineDefinition, which moto lacks, answered in place of the call: what it was asked, and
    the answer to give (Step Functions' shape)."""

    def __init__(self, result: str = "OK", diagnostics: tuple[dict[str, str], ...] = ()):
        self.answer = {"result": result, "diagnostics": list(diagnostics)}
        self.asked: list[dict[str, Any]] = []

    def install(self, session: Any) -> Any:
        session.events.register("before-call.sfn.ValidateStateMachineDefinition", self._answer)
        return session

    def _answer(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        self.asked.append(json.loads(params["body"]))  # the request as botocore serialized it
        return AWSResponse(None, 200, {}, None), self.answer


@pytest.fixture
def aws(monkeypatch) -> Iterator[Any]:
    """In-process moto; the session the checks use."""
    monkeypatch.setenv("AWS_REGION", REGION)
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        for bucket in (RAW, ENRICHED):
            session.client("s3").create_bucket(Bucket=bucket)
        yield session


def visit(session: Any, deployed: dict[str, dict[str, str]] | None = None, config=DEV, **options: Any) -> Visit:
    return Visit(config, session, deployed or {part: {} for part in PARTS}, now=options.pop("now", NOW), **options)


def only(verdicts: list[Verdict]) -> Verdict:
    [verdict] = verdicts
    return verdict


# ---- the pure rules


def test_the_probe_chat_is_one_past_what_cdk_json_accepts_so_no_stage_can_allowlist_it():
    update = doctor.probe_update(2**62, NOW)

    assert doctor.PROBE_CHAT_ID == MAX_CHAT_ID_MAGNITUDE + 1
    assert update["message"]["chat"] == {
        "id": doctor.PROBE_CHAT_ID, "type": "private", "title": "telegram-lake doctor probe",
        "username": "telegram_lake_doctor_probe",
    }
    assert update["message"]["date"] == int(NOW.timestamp())
    assert (doctor.PROBE_UPDATE_IDS[0], doctor.PROBE_UPDATE_IDS[-1]) == (2**62, 2**63 - 1)


@pytest.mark.parametrize(
    "utc_time, due",
    [
        ("2026-11-21T03:30", "2026-11-19"),  # 00:30 in São Paulo: today's run (01:00) has not come
        ("2026-11-21T04:30", "2026-11-19"),  # 01:30: the run's time has come, its grace hour has not passed
        ("2026-11-21T05:00", "2026-11-20"),  # 02:00: yesterday must be there
        ("2026-11-22T02:59", "2026-11-20"),  # 23:59: still yesterday's day
    ],
)
def test_the_day_due_is_yesterday_in_the_stages_zone_once_the_run_and_its_grace_hour_passed(utc_time, due):
    now = datetime.fromisoformat(utc_time).replace(tzinfo=timezone.utc)

    assert doctor.due_day(DEV, now) == date.fromisoformat(due)


def test_a_reason_is_one_line_whatever_athena_or_telegram_put_in_it():
    assert doctor.one_line("SYNTAX_ERROR: line 3:5:\n  mismatched input\r\n'x'\t ok") == (
        "SYNTAX_ERROR: line 3:5: mismatched input 'x' ok"
    )
    assert doctor.one_line("bell\x07 and \x1b[31mred") == "bell\\u0007 and \\u001b[31mred"


def test_subscriptions_reach_someone_only_when_confirmed():
    topic = "arn:aws:sns:us-east-1:123456789012:alarms"
    confirmed = {"SubscriptionArn": f"{topic}:1", "Protocol": "email", "Endpoint": ALARM_MAIL}
    pending = {"SubscriptionArn": doctor.PENDING, "Protocol": "email", "Endpoint": ALARM_MAIL}

    assert doctor.subscription_verdict([confirmed, pending], topic) == Verdict(
        OK, "1 confirmed subscription to the alarm topic (email)"
    )
    waiting = doctor.subscription_verdict([pending], topic)
    assert waiting.status == FAIL
    assert waiting.reason.startswith(f"the alarms reach nobody: confirm the subscription mail sent to {ALARM_MAIL}")
    assert f"aws sns subscribe --topic-arn {topic} --protocol email" in waiting.reason
    nobody = doctor.subscription_verdict([], topic)
    assert nobody.status == FAIL and nobody.reason.startswith(f"the alarms reach nobody: no subscription to {topic}")
    assert "alarm_email" in nobody.reason


def test_a_definition_fails_on_its_result_naming_its_first_error_and_passes_with_warnings():
    error = {"severity": "ERROR", "code": "SCHEMA_VALIDATION_FAILED", "message": "The field 'Next' is required",
             "location": "/States/Publish"}
    warning = {"severity": "WARNING", "code": "NO_DOLLAR", "message": "unused", "location": "/States/Plan"}

    assert doctor.definition_verdict("M", {"result": "OK", "diagnostics": [warning]}) == Verdict(
        OK, "M's deployed definition validates (1 warning)"
    )
    assert doctor.definition_verdict("M", {"result": "FAIL", "diagnostics": [warning, error, error]}) == Verdict(
        FAIL, "M's deployed definition does not validate: SCHEMA_VALIDATION_FAILED at /States/Publish: The field "
        "'Next' is required (and 1 more)",
    )


def test_webhook_info_fails_on_another_url_or_a_delivery_error_of_the_last_24_hours():
    url = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/webhook"
    recent = int((NOW - timedelta(hours=23)).timestamp())
    old = int((NOW - timedelta(hours=25)).timestamp())

    def problems(**info: Any) -> list[str]:
        return doctor.webhook_info_problems({"url": url, **info}, url, DEV, NOW)

    assert problems(last_error_date=old, last_error_message="Connection timed out") == []
    assert problems(last_error_date="soon") == []
    assert problems(last_error_date=recent, last_error_message="Wrong response from the webhook: 500") == [
        f"Telegram's last delivery to the webhook failed: {datetime.fromtimestamp(recent, timezone.utc).isoformat()} "
        "Wrong response from the webhook: 500"
    ]
    assert problems(url="") == [
        f"the bot's webhook is none (no webhook set: the bot can poll getUpdates), not this stage's {url}: run "
        "`python -m tools webhook set --stage dev`, or, when the bot's own backend forwards every update to this "
        "stage, set `webhook_forwarded: true`"
    ]


def test_on_a_forwarded_stage_the_bots_webhook_is_its_backends_and_never_the_stages():
    """Beside an existing bot (docs/operating.md): the backend keeps Telegram's webhook and forwards to the stage."""
    url = "https://abc123.execute-api.us-east-1.amazonaws.com/dev/webhook"
    forwarded = replace(DEV, webhook_forwarded=True)

    assert doctor.webhook_info_problems({"url": "https://bot.example.org/telegram"}, url, forwarded, NOW) == []
    assert doctor.webhook_info_problems({"url": url}, url, forwarded, NOW) == [
        f"the bot's webhook is this stage's {url}, but the stage says its updates are forwarded by the bot's own "
        "backend (webhook_forwarded): set it false, or point the webhook back at the backend"
    ]


# ---- athena sql


def test_every_statement_is_explained_in_the_stages_workgroup_and_database(aws):
    deploy(aws.client)

    verdict = only(doctor.athena_analysis(visit(aws)))

    statements = athena_statements(DEV, NOW)  # the Trino grammar check's: saved, compaction, report queries
    count = len(statements)
    assert verdict == Verdict(
        OK, f"{count} statements pass Athena's analysis (EXPLAIN in workgroup telegram-lake-dev, 0 B scanned)"
    )
    athena = aws.client("athena")
    executions = [
        athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
        for execution_id in athena.list_query_executions(WorkGroup=DEV.athena_workgroup)["QueryExecutionIds"]
    ]
    assert len(executions) == count
    assert all(execution["Query"].startswith("EXPLAIN\n") for execution in executions)
    assert {execution["QueryExecutionContext"]["Database"] for execution in executions} == {DEV.glue_database}
    explained = {execution["Query"].removeprefix("EXPLAIN\n") for execution in executions}
    assert explained == {statement.sql for statement in statements}
    assert any("daily_message_count" in statement.sender for statement in statements)
    assert any("compaction" in statement.sender for statement in statements)


class FakeAthena:
    """Athena's query lifecycle for EXPLAINs: refuses a statement containing `refused`, keeps one containing
    `stuck` running; records the most queries in flight. The first `together` polls wait for each other, so a
    doctor that explained one statement at a time could never pass them."""

    def __init__(self, refused: str = "\0", stuck: str = "\0", together: int = 1):
        self.refused, self.stuck = refused, stuck
        self.queries: dict[str, str] = {}
        self.running: set[str] = set()
        self.stopped: list[str] = []
        self.most_in_flight = 0
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._meeting = threading.Barrier(together, timeout=10)
        self._waiting = together

    def start_query_execution(self, QueryString: str, WorkGroup: str, QueryExecutionContext: dict) -> dict:
        with self._lock:
            execution_id = f"q{next(self._ids)}"
            self.queries[execution_id] = QueryString
            self.running.add(execution_id)
            self.most_in_flight = max(self.most_in_flight, len(self.running))
        return {"QueryExecutionId": execution_id}

    def get_query_execution(self, QueryExecutionId: str) -> dict:
        with self._lock:
            meet, self._waiting = self._waiting > 0, self._waiting - 1
        if meet:
            self._meeting.wait()
        sql = self.queries[QueryExecutionId]
        if self.stuck in sql:
            return {"QueryExecution": {"Status": {"State": "RUNNING"}}}
        with self._lock:
            self.running.discard(QueryExecutionId)
        if self.refused in sql:
            error = {"ErrorMessage": "SYNTAX_ERROR: line 12:8:\nColumn 'x' cannot be resolved"}
            return {"QueryExecution": {"Status": {"State": "FAILED", "AthenaError": error}}}
        return {"QueryExecution": {"Status": {"State": "SUCCEEDED"}, "Statistics": {"DataScannedInBytes": 0}}}

    def stop_query_execution(self, QueryExecutionId: str) -> None:
        with self._lock:
            self.stopped.append(QueryExecutionId)
            self.running.discard(QueryExecutionId)


class FakeAthenaSession:
    def __init__(self, athena: FakeAthena):
        self.athena = athena

    def client(self, service: str) -> Any:
        assert service == "athena"
        return self.athena


def test_explains_run_a_few_at_a_time_never_more(aws):
    athena = FakeAthena(together=doctor.EXPLAIN_CONCURRENCY)

    assert only(doctor.athena_analysis(visit(FakeAthenaSession(athena)))).status == OK
    assert athena.most_in_flight == doctor.EXPLAIN_CONCURRENCY
    assert len(athena.queries) == len(athena_statements(DEV, NOW))


def test_each_statement_athena_refuses_is_one_line_naming_it_and_athenas_reason():
    marker = "-- What do users ask most: the 20 most frequent questions?"  # the saved query top_questions
    athena = FakeAthena(refused=marker)

    verdicts = doctor.athena_analysis(visit(FakeAthenaSession(athena)))

    refused = [statement.sender for statement in athena_statements(DEV, NOW) if marker in statement.sql]
    assert refused and [verdict.reason.split(": Athena query")[0] for verdict in verdicts] == refused
    assert all(verdict.status == FAIL for verdict in verdicts)
    line = doctor.Finding("athena sql", verdicts[0]).line()
    assert re.fullmatch(
        r"FAIL    athena sql     stage dev: saved query top_questions \(named query, `tools query`\): Athena query "
        r"q\d+ FAILED: SYNTAX_ERROR: line 12:8: Column 'x' cannot be resolved",
        line,
    ), line


def test_an_explain_that_outlives_the_timeout_is_cancelled_and_fails():
    marker = "-- How many messages do users send per day?"  # the header of the saved query daily_message_count
    athena = FakeAthena(stuck=marker)

    verdicts = doctor.athena_analysis(visit(FakeAthenaSession(athena), timeout=0.3))

    stuck = [statement.sender for statement in athena_statements(DEV, NOW) if marker in statement.sql]
    assert stuck and [verdict.reason.split(": Athena query")[0] for verdict in verdicts] == stuck
    assert all(verdict.status == FAIL and "still RUNNING after 0.3 s: cancelled it" in verdict.reason
               for verdict in verdicts)
    assert len(athena.stopped) == len(stuck)


# ---- alarm topic, state machine, schedule, glue tables, compaction (moto)


def test_alarm_topic_passes_with_a_confirmed_subscription_and_fails_without_one(aws):
    deployed = deploy(aws.client)
    topic = deployed["Ingestion"][outputs.ALARM_TOPIC_ARN]

    assert only(doctor.alarm_topic(visit(aws, deployed))) == Verdict(
        OK, "1 confirmed subscription to the alarm topic (email)"
    )
    sns = aws.client("sns")
    for subscription in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]:
        sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
    unheard = only(doctor.alarm_topic(visit(aws, deployed)))
    assert unheard.status == FAIL and unheard.reason.startswith("the alarms reach nobody: no subscription to")


def test_state_machine_validates_its_deployed_definition_or_fails_naming_the_error(aws):
    deployed = deploy(aws.client)
    valid = Validation()

    assert only(doctor.state_machine(visit(valid.install(aws), deployed))) == Verdict(
        OK, "TelegramLake-dev-Compaction's deployed definition validates"
    )
    assert valid.asked == [{"definition": json.dumps(PASS_MACHINE), "type": "STANDARD"}]

    invalid = Validation("FAIL", ({"severity": "ERROR", "code": "SCHEMA_VALIDATION_FAILED",
                                   "message": "Value is not a valid resource ARN", "location": "/States/Unload"},))
    session = invalid.install(boto3.session.Session(region_name=REGION))
    assert only(doctor.state_machine(visit(session, deployed))) == Verdict(
        FAIL, "TelegramLake-dev-Compaction's deployed definition does not validate: SCHEMA_VALIDATION_FAILED at "
        "/States/Unload: Value is not a valid resource ARN",
    )


def test_a_missing_state_machine_fails_and_a_lambda_engine_stage_skips_the_check(aws):
    deployed = deploy(aws.client)
    arn = deployed["Presentation"][outputs.COMPACTION_STATE_MACHINE_ARN]
    aws.client("stepfunctions").delete_state_machine(stateMachineArn=arn)

    assert only(doctor.state_machine(visit(aws, deployed))) == Verdict(
        FAIL, f"the state machine {arn} does not exist: redeploy the stage"
    )
    assert only(doctor.state_machine(visit(aws, deployed, config=PROD))) == Verdict(
        SKIPPED, "etl_engine is lambda: no state machine runs the days"
    )


@pytest.mark.parametrize("config", [DEV, PROD], ids=["athena", "lambda"])
def test_schedule_passes_when_enabled_in_whichever_stack_runs_the_days(aws, config):
    deployed = deploy(aws.client, config)
    name = f"TelegramLake-{config.stage}-DailyRun-{config.etl_engine}"

    assert only(doctor.schedule(visit(aws, deployed, config=config))) == Verdict(
        OK, f"the schedule {name} is enabled: cron(0 1 * * ? *) in America/Sao_Paulo"
    )


def test_schedule_fails_disabled_missing_or_unnamed(aws):
    deployed = deploy(aws.client)
    scheduler = aws.client("scheduler")
    name = deployed["Presentation"][outputs.DAILY_SCHEDULE_NAME]
    found = scheduler.get_schedule(Name=name)
    scheduler.update_schedule(
        Name=name, ScheduleExpression=found["ScheduleExpression"], FlexibleTimeWindow=found["FlexibleTimeWindow"],
        Target=found["Target"], State="DISABLED",
    )

    disabled = only(doctor.schedule(visit(aws, deployed)))
    assert disabled.status == FAIL
    assert disabled.reason.startswith(f"the schedule {name} is DISABLED: no day is compacted")
    scheduler.delete_schedule(Name=name)
    assert only(doctor.schedule(visit(aws, deployed))) == Verdict(
        FAIL, f"the schedule {name} does not exist: no day is compacted; redeploy the stage"
    )
    del deployed["Presentation"][outputs.DAILY_SCHEDULE_NAME]
    assert only(doctor.schedule(visit(aws, deployed))) == Verdict(
        FAIL, "no stack of stage dev has the output DailyScheduleName: redeploy it with this version of the project"
    )


def test_glue_tables_resolve_or_each_missing_one_fails(aws):
    deploy(aws.client)

    assert only(doctor.glue_tables(visit(aws))) == Verdict(
        OK, "the tables telegram_lake_dev.telegram, telegram_lake_dev.telegram_raw resolve"
    )
    pseudonymized = replace(DEV, analyst_access="pseudonymized")
    missing = only(doctor.glue_tables(visit(aws, config=pseudonymized)))  # the analysts' table is not there
    assert missing.status == FAIL
    assert missing.reason.startswith("the table telegram_lake_dev.telegram_pseudonymized does not resolve")
    aws.client("glue").delete_table(DatabaseName=DEV.glue_database, Name=RAW_TABLE)
    missing = only(doctor.glue_tables(visit(aws)))
    assert missing.status == FAIL
    assert missing.reason.startswith("the table telegram_lake_dev.telegram_raw does not resolve")


def put(session: Any, bucket: str, key: str) -> None:
    session.client("s3").put_object(Bucket=bucket, Key=key, Body=b"x")


def test_compaction_passes_when_the_due_day_is_compacted(aws):
    deployed = deploy(aws.client)
    put(aws, ENRICHED, enriched_key(date(2026, 11, 19)))
    put(aws, ENRICHED, enriched_key(date(2026, 11, 20)))

    assert only(doctor.compaction(visit(aws, deployed))) == Verdict(
        OK, "the last compacted day is 2026-11-20 (2026-11-20 was due in America/Sao_Paulo)"
    )


def test_compaction_fails_when_the_due_day_has_updates_but_no_file(aws):
    deployed = deploy(aws.client)
    put(aws, ENRICHED, enriched_key(date(2026, 11, 18)))
    put(aws, RAW, raw_key(date(2026, 11, 20), 7))

    assert only(doctor.compaction(visit(aws, deployed))) == Verdict(
        FAIL, "the last compacted day is 2026-11-18, but 2026-11-20 has raw updates and was due after 01:00 "
        "America/Sao_Paulo: see `python -m tools status --stage dev`, then `python -m tools etl run --stage dev "
        "--from 2026-11-20`",
    )


def test_compaction_passes_when_no_update_arrived_on_the_due_day(aws):
    deployed = deploy(aws.client)
    put(aws, RAW, raw_key(date(2026, 11, 19), 7))  # another day's update

    assert only(doctor.compaction(visit(aws, deployed))) == Verdict(
        OK, "no update arrived on 2026-11-20, so no day was due (last compacted day: none)"
    )


# ---- one check's error fails that check only; the command's exit code


def test_an_aws_error_fails_its_check_in_one_line_and_the_others_still_run(capsys):
    def refused(visit: Visit) -> list[Verdict]:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not\nallowed"}}, "GetSchedule")

    findings = doctor.examine(visit(None), [("schedule", refused), ("glue tables", lambda _: [Verdict(OK, "fine")])])

    assert [(finding.check, finding.verdict.status) for finding in findings] == [
        ("schedule", FAIL), ("glue tables", OK)
    ]
    assert capsys.readouterr().out.splitlines() == [
        "FAIL    schedule       An error occurred (AccessDenied) when calling the GetSchedule operation: not allowed",
        "ok      glue tables    fine",
    ]


def test_a_stage_that_is_not_deployed_is_one_error_line(aws, capsys):
    assert tools.__main__.main(["doctor", "--stage", "dev"]) == 1
    captured = capsys.readouterr()
    assert captured.err == "error: stack TelegramLake-dev-Ingestion is not deployed (run `make deploy STAGE=dev`)\n"


# ---- the webhook probe and the whole command against the local stack (the real ingest handler over HTTP)


def doctor_lines(output: str) -> dict[str, list[tuple[str, str]]]:
    """The doctor's check lines by check name (the local ingest logs on the same stdout)."""
    lines: dict[str, list[tuple[str, str]]] = {}
    for line in output.splitlines():
        matched = DOCTOR_LINE.match(line)
        if matched:
            lines.setdefault(matched[2], []).append((matched[1], matched[3]))
    return lines


@pytest.fixture(scope="class")
def stack() -> Iterator[LocalStack]:
    with LocalStack(DEV) as local:
        yield local


@pytest.fixture(scope="class")
def deployed(stack: LocalStack) -> dict[str, dict[str, str]]:
    return local_stage(stack)


class TestAgainstTheLocalStack:
    @pytest.fixture
    def validated(self, monkeypatch, stack: LocalStack) -> Validation:
        """The command's session (the local stack's endpoint, from the environment) with the validation answered."""
        validation = Validation()
        monkeypatch.setattr(doctor, "aws_session", lambda config: validation.install(boto3.session.Session()))
        return validation

    def test_the_webhook_refuses_no_secret_and_answers_the_probe_storing_nothing_but_its_chat_record(
        self, stack, deployed
    ):
        verdict = only(doctor.webhook_probe(visit(boto3.session.Session(), deployed)))

        assert verdict.status == OK, verdict
        assert re.fullmatch(
            r"refuses a request without the secret token \(401\); answers 200 and stores nothing for chat "
            r'4503599627370496 \("telegram-lake doctor probe", update \d+\)',
            verdict.reason,
        )
        stack.firehose.flush()
        s3 = stack.client("s3")
        assert s3.list_objects_v2(Bucket=stack.raw_bucket, Prefix=PREFIX)["KeyCount"] == 0
        [record] = read_records(s3, stack.raw_bucket, today(DEV.timezone))
        assert (record.chat_id, record.title, record.allowlisted) == (doctor.PROBE_CHAT_ID, doctor.PROBE_NAME, False)
        assert record.counts == {"stored": 0, "skipped": 1}

    def test_a_healthy_stage_passes_every_check_and_exits_0(self, stack, deployed, validated, capsys):
        put(stack, stack.enriched_bucket, enriched_key(doctor.due_day(DEV, datetime.now(timezone.utc))))

        code = tools.__main__.main(["doctor", "--stage", "dev", "--timeout", "30"])

        output = capsys.readouterr().out
        lines = doctor_lines(output)
        assert code == 0, output
        assert list(lines) == [name for name, _ in doctor.CHECKS]
        assert lines["telegram"] == [(SKIPPED, f"{TOKEN_ENV} is not set: getWebhookInfo was not asked")]
        assert all(status == OK for name, found in lines.items() if name != "telegram" for status, _ in found), lines
        assert output.splitlines()[0] == f"doctor: stage dev in {REGION}"
        assert output.rstrip().endswith("all 8 checks passed")
        assert validated.asked and validated.asked[0]["type"] == "STANDARD"

    def test_getwebhookinfo_naming_another_url_fails_and_the_command_exits_1(
        self, stack, deployed, validated, monkeypatch, capsys
    ):
        monkeypatch.setenv(TOKEN_ENV, TOKEN)
        with FakeBotApi(token=TOKEN) as telegram:
            telegram.reply("getWebhookInfo", lambda path: _webhook_info("https://elsewhere.example/webhook"))
            code = tools.__main__.main(["doctor", "--stage", "dev", "--api-base", telegram.base_url])
            good = telegram.calls("getWebhookInfo")

        output = capsys.readouterr().out
        assert code == 1
        assert good == [{}]
        assert doctor_lines(output)["telegram"] == [(
            FAIL, f"the bot's webhook is https://elsewhere.example/webhook, not this stage's {stack.webhook_url}: run "
            "`python -m tools webhook set --stage dev`, or, when the bot's own backend forwards every update to this "
            "stage, set `webhook_forwarded: true`",
        )]
        assert output.rstrip().endswith("1 of 8 checks failed")
        assert TOKEN not in output

    def test_getwebhookinfo_with_this_stages_url_passes(self, stack, deployed, monkeypatch):
        monkeypatch.setenv(TOKEN_ENV, TOKEN)
        with FakeBotApi(token=TOKEN) as telegram:
            telegram.reply("getWebhookInfo", lambda path: _webhook_info(stack.webhook_url))
            verdict = only(doctor.telegram_webhook(visit(None, deployed, api_base=telegram.base_url)))

        assert verdict == Verdict(
            OK, f"getWebhookInfo: the bot delivers to {stack.webhook_url}, no delivery error in 24 hours"
        )


def _webhook_info(url: str):
    from tests.fake_bot_api import Reply

    return Reply.ok({"url": url, "has_custom_certificate": False, "pending_update_count": 0})


def test_a_webhook_that_stores_the_probe_fails_at_once_naming_the_record_that_says_so():
    """The ingest's allowlist is the one rule the probe leans on: here it lets the probe's chat in. The update waits
    in the local Firehose's buffer for its batch; the chat's record, written at once, already tells."""
    with LocalStack(DEV, allowed_chat_ids=[doctor.PROBE_CHAT_ID]) as stack:
        deployed = local_stage(stack)
        [verdict] = doctor.webhook_probe(visit(boto3.session.Session(), deployed))
        assert stack.client("s3").list_objects_v2(Bucket=stack.raw_bucket, Prefix=PREFIX)["KeyCount"] == 0

    assert verdict.status == FAIL
    assert re.fullmatch(
        rf"stored updates of chat 4503599627370496, outside the allowlist: s3://{stack.raw_bucket}/ingest-state/"
        r"chats-seen/\d{4}-\d\d-\d\d/4503599627370496/[0-9a-f]{32}\.json counts 1 stored and allowlists it",
        verdict.reason,
    ), verdict.reason


class FakeWebhook(ThreadingHTTPServer):
    """A webhook that answers every POST alike, whatever its secret token (or, with `anonymous`, that status to a
    POST without one), and records the tokens. It never records a chat."""

    def __init__(self, status: int, body: bytes = b"", anonymous: int | None = None):
        super().__init__(("127.0.0.1", 0), _FakeWebhookHandler)
        self.status, self.body, self.anonymous, self.tokens = status, body, anonymous, []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/webhook"

    def __enter__(self) -> FakeWebhook:
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
        self.server_close()


class _FakeWebhookHandler(BaseHTTPRequestHandler):
    server: FakeWebhook

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        token = self.headers.get("X-Telegram-Bot-Api-Secret-Token")
        self.server.tokens.append(token)
        if token is None and self.server.anonymous is not None:
            self.send_response(self.server.anonymous)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(self.server.status)
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def fake_ingestion(aws):
    """The Ingestion stack's outputs and secret in moto, for a webhook served by a test."""

    def deployed(url: str) -> dict[str, dict[str, str]]:
        arn = aws.client("secretsmanager").create_secret(Name="secret", SecretString="s3cr3t_token")["ARN"]
        return deploy(aws.client, **{outputs.WEBHOOK_URL: url, outputs.WEBHOOK_SECRET_ARN: arn})

    return deployed


def test_a_webhook_that_takes_requests_without_the_secret_or_answers_with_a_body_fails(fake_ingestion):
    with FakeWebhook(200, b'{"method": "sendMessage"}') as webhook:
        verdicts = doctor.webhook_probe(visit(None, fake_ingestion(webhook.url)))

    assert webhook.tokens == [None, "s3cr3t_token"]
    assert verdicts[:2] == [
        Verdict(FAIL, 'answered 200 "{\\"method\\": \\"sendMessage\\"}" to a request without the secret token, not '
                "401: anyone may post updates"),
        Verdict(FAIL, 'answered 200 "{\\"method\\": \\"sendMessage\\"}" to an update from chat 4503599627370496, '
                "outside the allowlist, not 2xx with an empty body (Telegram redelivers what is not 2xx, and executes "
                "a JSON body)"),
    ]
    assert len(verdicts) == 3 and verdicts[2].reason.startswith("no chats-seen record of chat 4503599627370496")


def probe_record(session: Any, *, stored: int = 0, skipped: int = 0) -> None:
    """A record of the probe's chat for today, as an ingest container writes it."""
    records, record = ChatsSeen("c0ffee"), None
    probe = Chat(doctor.PROBE_CHAT_ID, "private", doctor.PROBE_NAME, None)
    for outcome, count in (("stored", stored), ("skipped", skipped)):
        for _ in range(count):
            record = records.observe(today(DEV.timezone), probe, "message", outcome, stored > 0, NOW)
    session.client("s3").put_object(Bucket=RAW, Key=record.key, Body=record.to_json())


def test_a_webhook_that_answers_the_probe_without_recording_its_chat_fails(fake_ingestion):
    """Without the ingest's record nothing shows, before the next batch, that the probe was not stored."""
    with FakeWebhook(200, anonymous=401) as webhook:
        [verdict] = doctor.webhook_probe(visit(None, fake_ingestion(webhook.url)))

    assert verdict.status == FAIL
    assert re.fullmatch(
        r"no chats-seen record of chat 4503599627370496 for \d{4}-\d\d-\d\d( or \d{4}-\d\d-\d\d)? under "
        rf"s3://{RAW}/ingest-state/chats-seen/\d{{4}}-\d\d-\d\d/: the ingest answered update \d+ without recording "
        r"its chat \(see its ChatRecordFailed metric\), so nothing shows that it was not stored",
        verdict.reason,
    ), verdict.reason


@pytest.mark.parametrize("stored, status", [(0, OK), (2, FAIL)], ids=["skipped", "stored-before"])
def test_the_probe_chats_records_decide_whether_it_was_stored(aws, fake_ingestion, stored, status):
    probe_record(aws, stored=stored, skipped=1)
    with FakeWebhook(200, anonymous=403) as webhook:
        [verdict] = doctor.webhook_probe(visit(None, fake_ingestion(webhook.url)))

    assert verdict.status == status, verdict
    if status == FAIL:
        assert verdict.reason.startswith(f"stored updates of chat {doctor.PROBE_CHAT_ID}, outside the allowlist: ")
        assert verdict.reason.endswith("/c0ffee.json counts 2 stored and allowlists it")


def test_a_webhook_that_does_not_answer_fails_the_check_in_one_line(fake_ingestion, capsys):
    with FakeWebhook(200) as webhook:
        url = webhook.url
    deployed = fake_ingestion(url)

    [finding] = doctor.examine(visit(None, deployed), [("webhook", doctor.webhook_probe)])

    assert finding.verdict.status == FAIL
    assert finding.verdict.reason.startswith(f"the webhook {url} does not answer: ")

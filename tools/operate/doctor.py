"""`python -m tools doctor --stage S`: check a deployed stage on AWS itself, where the emulators are laxer.

The tests run on moto and DuckDB, which accept what AWS may refuse: SQL that Trino rejects, a state machine
definition Step Functions would not take, an alarm topic nobody confirmed. The doctor asks AWS itself, at no
measurable cost, and prints one line per check, `ok`, `FAIL` or `skipped` with the reason; any failure makes
the exit code 1. `make deploy` ends with it.

  athena sql     every statement the stage sends Athena (saved queries, the Athena compaction's SELECT and report,
                 `tools report`'s queries: the Trino grammar check's list) passes Athena's own analysis: EXPLAIN
                 in the stage's workgroup plans a statement without running it, so no data is scanned
  webhook        a request without the secret token is refused (401 or 403); an update from a chat no stage can
                 allowlist is answered 2xx with an empty body and nothing is stored: the ingest's record of the
                 chat, written at once (no batch to wait for), says skipped, never stored (`tools chats` lists the
                 private chat "telegram-lake doctor probe")
  telegram       with TELEGRAM_BOT_TOKEN set, getWebhookInfo shows this stage's URL and no error in 24 hours
  alarm topic    the alarms' topic has a confirmed subscription
  state machine  with `etl_engine: athena`, the deployed definition validates (ValidateStateMachineDefinition)
  schedule       the daily run's schedule is enabled
  glue tables    both tables resolve in the stage's database
  compaction     the newest compacted day is the one the schedule should have written by now
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from lambdas.common.layout import chats_seen_prefix, day_prefix, local_day
from lambdas.ingest.webhook import SECRET_TOKEN_HEADER, UPDATE_ID_MAX
from stacks import outputs
from stacks.config import DOCTOR_PROBE_CHAT_ID, PSEUDONYMIZED_TABLE, RAW_TABLE, TABLE, StageConfig
from tools.cli import (
    CommandError, add_stage_argument, aws_session, plain, require_output, stack_outputs, stage_config,
)
from tools.operate.chats import read_records
from tools.operate.query import DEFAULT_TIMEOUT_SECONDS, add_timeout_argument, format_bytes, wait_for_query
from tools.operate.status import newest_day_file
from tools.operate.webhook import deployed_webhook, describe_webhook_info
from tools.telegram import TOKEN_ENV, TelegramError, add_api_base_argument, bot_api_from_env

OK, FAIL, SKIPPED = "ok", "FAIL", "skipped"
PARTS = ("Ingestion", "Etl", "Presentation")  # the stacks the doctor reads the outputs of
# EXPLAINs in flight at once: well under Athena's default quota of concurrent queries per account, which
# analysts and the compaction share.
EXPLAIN_CONCURRENCY = 4
# The synthetic update: a private chat one past the largest id cdk.json accepts in allowed_chat_ids, so no
# stage can ever store it, named so an operator recognises it in `tools chats`; an update id from the top half
# of Telegram's range, far beyond any real one.
PROBE_CHAT_ID = DOCTOR_PROBE_CHAT_ID
PROBE_NAME = "telegram-lake doctor probe"
PROBE_UPDATE_IDS = range(2**62, UPDATE_ID_MAX + 1)
PROBE_TIMEOUT_SECONDS = 30
# A delivery error older than this is history; a newer one says Telegram cannot deliver now.
RECENT_DELIVERY_ERROR = timedelta(hours=24)
# Time the daily run has after its scheduled time before its day must be there (a run takes minutes; its
# retries come 1 and 2 minutes after a failure).
RUN_GRACE = timedelta(hours=1)
PENDING = "PendingConfirmation"  # the SubscriptionArn SNS lists for a subscription nobody confirmed


@dataclass(frozen=True)
class Verdict:
    status: str  # OK, FAIL or SKIPPED
    reason: str


@dataclass(frozen=True)
class Finding:
    check: str
    verdict: Verdict

    @property
    def failed(self) -> bool:
        return self.verdict.status == FAIL

    def line(self) -> str:
        return f"{self.verdict.status:<7} {self.check:<14} {one_line(self.verdict.reason)}"


@dataclass(frozen=True)
class Visit:
    """What every check reads: the stage, its stacks' outputs (by part), the session, the clock, the options."""

    config: StageConfig
    session: Any  # boto3 session in the stage's region
    outputs: Mapping[str, Mapping[str, str]]
    now: datetime
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    api_base: str | None = None
    sleep: Callable[[float], None] = time.sleep

    def output(self, part: str, key: str) -> str:
        return require_output(dict(self.outputs[part]), key, self.config.stack_name(part))

    def client(self, service: str) -> Any:
        return self.session.client(service)


Check = Callable[[Visit], Sequence[Verdict]]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check a deployed stage on AWS itself: SQL, webhook, alarm topic, schedule, tables, last day",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stage_argument(parser)
    add_timeout_argument(parser, "an EXPLAIN")
    add_api_base_argument(parser)
    parser.set_defaults(func=doctor_command)


def doctor_command(args: argparse.Namespace) -> int:
    config = stage_config(args)
    session = aws_session(config)
    deployed = {part: stack_outputs(config, part, session) for part in PARTS}
    visit = Visit(
        config, session, deployed, now=datetime.now(timezone.utc), timeout=args.timeout, api_base=args.api_base
    )
    print(f"doctor: stage {config.stage} in {session.region_name}", flush=True)
    findings = examine(visit)
    failed = sum(finding.failed for finding in findings)
    print(f"{failed} of {len(findings)} checks failed" if failed else f"all {len(findings)} checks passed")
    return 1 if failed else 0


def examine(visit: Visit, checks: Sequence[tuple[str, Check]] | None = None) -> list[Finding]:
    """Run each check, printing its lines as they come; an AWS or Telegram error fails that check only."""
    from botocore.exceptions import BotoCoreError, ClientError

    findings = []
    for name, check in CHECKS if checks is None else checks:
        try:
            verdicts = check(visit)
        except (BotoCoreError, ClientError, CommandError, TelegramError) as error:
            verdicts = [Verdict(FAIL, str(error))]
        for verdict in verdicts:
            findings.append(Finding(name, verdict))
            print(findings[-1].line(), flush=True)
    return findings


# ---- athena sql


def athena_analysis(visit: Visit) -> list[Verdict]:
    """EXPLAIN every statement the stage sends Athena (the list the Trino grammar check parses: saved queries, the
    compaction's SELECT and report, `tools report`'s queries) in the stage's workgroup, a few at a time; one line
    per statement Athena refuses, naming what sends it."""
    from tools.operate.statements import athena_statements

    config = visit.config
    statements = athena_statements(config, visit.now)
    athena = visit.client("athena")
    with ThreadPoolExecutor(max_workers=EXPLAIN_CONCURRENCY) as pool:
        answers = list(pool.map(lambda statement: explain(athena, visit, statement.sql), statements))
    refused = [
        Verdict(FAIL, f"{statement.sender}: {reason}") for statement, (reason, _) in zip(statements, answers) if reason
    ]
    scanned = format_bytes(sum(scanned for _, scanned in answers))
    return refused or [
        Verdict(
            OK, f"{len(statements)} statements pass Athena's analysis (EXPLAIN in workgroup {config.athena_workgroup}, "
            f"{scanned} scanned)",
        )
    ]


def explain(athena: Any, visit: Visit, sql: str) -> tuple[str | None, int]:
    """Athena's reason for refusing `sql` (None when it plans it), and the bytes its EXPLAIN scanned."""
    execution_id = athena.start_query_execution(
        QueryString=f"EXPLAIN\n{sql}",
        WorkGroup=visit.config.athena_workgroup,
        QueryExecutionContext={"Database": visit.config.glue_database},
    )["QueryExecutionId"]
    try:
        execution = wait_for_query(athena, execution_id, timeout=visit.timeout, sleep=visit.sleep)
    except CommandError as refused:
        return str(refused), 0
    return None, execution.get("Statistics", {}).get("DataScannedInBytes", 0)


# ---- webhook


@dataclass(frozen=True)
class Answer:
    status: int
    body: str


def probe_update(update_id: int, now: datetime) -> dict[str, Any]:
    """A message from the probe's private chat, which no stage can allowlist."""
    chat = {"id": PROBE_CHAT_ID, "type": "private", "title": PROBE_NAME, "username": "telegram_lake_doctor_probe"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "from": {"id": PROBE_CHAT_ID, "is_bot": True, "first_name": PROBE_NAME},
            "chat": chat,
            "date": int(now.timestamp()),
            "text": "A check by `python -m tools doctor`: never stored",
        },
    }


def webhook_probe(visit: Visit) -> list[Verdict]:
    """The webhook as Telegram meets it: one request without the secret token, one with it from the probe's chat."""
    config = visit.config
    deployed = deployed_webhook(config)
    update_id = PROBE_UPDATE_IDS[secrets.randbelow(len(PROBE_UPDATE_IDS))]
    body = json.dumps(probe_update(update_id, visit.now)).encode("utf-8")
    problems = []
    anonymous = post_update(deployed.url, body, secret_token=None)
    if anonymous.status not in (401, 403):
        problems.append(
            f"answered {_answer(anonymous)} to a request without the secret token, not 401: anyone may post updates"
        )
    sent = datetime.now(timezone.utc)
    probed = post_update(deployed.url, body, secret_token=deployed.secret_token)
    arrival_days = sorted({local_day(moment, config.timezone) for moment in (sent, datetime.now(timezone.utc))})
    if not 200 <= probed.status < 300 or probed.body:
        problems.append(
            f"answered {_answer(probed)} to an update from chat {PROBE_CHAT_ID}, outside the allowlist, not 2xx with "
            "an empty body (Telegram redelivers what is not 2xx, and executes a JSON body)"
        )
    problems += probe_outcome(deployed.session.client("s3"), deployed.raw_bucket, update_id, arrival_days)
    return [Verdict(FAIL, problem) for problem in problems] or [
        Verdict(
            OK, f"refuses a request without the secret token ({anonymous.status}); answers {probed.status} and stores "
            f'nothing for chat {PROBE_CHAT_ID} ("{PROBE_NAME}", update {update_id})',
        )
    ]


def post_update(url: str, body: bytes, *, secret_token: str | None) -> Answer:
    """One POST as Telegram sends it; the answer whatever its status. CommandError when nothing answers."""
    headers = {"Content-Type": "application/json"}
    if secret_token is not None:
        headers[SECRET_TOKEN_HEADER] = secret_token
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_SECONDS) as response:
            return Answer(response.status, response.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as refusal:
        with refusal:
            return Answer(refusal.code, refusal.read().decode("utf-8", "replace"))
    except (OSError, http.client.HTTPException) as error:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        raise CommandError(f"the webhook {url} does not answer: {reason}") from None


def probe_outcome(s3: Any, raw_bucket: str, update_id: int, days: Sequence[date]) -> list[str]:
    """What is wrong in the ingest's handling of the probe's update (which arrived on one of `days`), told by its
    records of the probe's chat, without waiting for the raw zone's next batch: a container writes a chat's record
    at once for the chat's first update of the day and whenever its allowlisting changes, so a record exists, and
    one that says stored (or allowlisted) is there before the webhook's answer. The one place to change when the
    ingest's records or the raw layout change."""
    records = [record for day in days for record in read_records(s3, raw_bucket, day, chat_id=PROBE_CHAT_ID)]
    if not records:
        return [
            f"no chats-seen record of chat {PROBE_CHAT_ID} for {' or '.join(map(str, days))} under "
            f"s3://{raw_bucket}/{chats_seen_prefix(days[0])}: the ingest answered update {update_id} without "
            "recording its chat (see its ChatRecordFailed metric), so nothing shows that it was not stored"
        ]
    return [
        f"stored updates of chat {PROBE_CHAT_ID}, outside the allowlist: s3://{raw_bucket}/{record.key} counts "
        f"{record.counts['stored']} stored{' and allowlists it' if record.allowlisted else ''}"
        for record in records if record.counts["stored"] or record.allowlisted
    ]


def _answer(answer: Answer) -> str:
    return f"{answer.status} {json.dumps(answer.body[:80])}" if answer.body else f"{answer.status}"


# ---- telegram


def telegram_webhook(visit: Visit) -> list[Verdict]:
    """getWebhookInfo, when the operator's environment holds the bot's token."""
    if not os.environ.get(TOKEN_ENV, "").strip():
        return [Verdict(SKIPPED, f"{TOKEN_ENV} is not set: getWebhookInfo was not asked")]
    info = bot_api_from_env(visit.api_base).get_webhook_info()
    url = visit.output("Ingestion", outputs.WEBHOOK_URL)
    if not isinstance(info, dict):
        return [Verdict(FAIL, f"getWebhookInfo answered {json.dumps(info)[:80]} instead of a WebhookInfo object")]
    problems = webhook_info_problems(info, url, visit.config, visit.now)
    delivered_to = plain(info.get("url")) if visit.config.webhook_forwarded else url
    forwarded = ", which forwards to this stage" if visit.config.webhook_forwarded else ""
    return [Verdict(FAIL, problem) for problem in problems] or [
        Verdict(OK, f"getWebhookInfo: the bot delivers to {delivered_to}{forwarded}, no delivery error in 24 hours")
    ]


def webhook_info_problems(info: Mapping[str, Any], url: str, config: StageConfig, now: datetime) -> list[str]:
    """What is wrong in a WebhookInfo for a stage whose webhook is `url`: another URL (unless the stage's updates are
    forwarded by the bot's own backend, whose URL it is then; but not this stage's, which would mean no backend
    gets them), or a recent delivery error."""
    shown = dict(describe_webhook_info(dict(info)))
    problems = []
    if config.webhook_forwarded and info.get("url") == url:
        problems.append(
            f"the bot's webhook is this stage's {url}, but the stage says its updates are forwarded by the bot's own "
            "backend (webhook_forwarded): set it false, or point the webhook back at the backend"
        )
    elif not config.webhook_forwarded and info.get("url") != url:
        problems.append(
            f"the bot's webhook is {shown['url']}, not this stage's {url}: run `python -m tools webhook set --stage "
            f"{config.stage}`, or, when the bot's own backend forwards every update to this stage, set "
            "`webhook_forwarded: true`"
        )
    failed_at = info.get("last_error_date")
    if isinstance(failed_at, int) and not isinstance(failed_at, bool) and failed_at >= 0:
        if now - datetime.fromtimestamp(failed_at, timezone.utc) <= RECENT_DELIVERY_ERROR:
            problems.append(f"Telegram's last delivery to the webhook failed: {shown['last error']}")
    return problems


# ---- alarm topic


def alarm_topic(visit: Visit) -> list[Verdict]:
    topic = visit.output("Ingestion", outputs.ALARM_TOPIC_ARN)
    pages = visit.client("sns").get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
    return [subscription_verdict([item for page in pages for item in page.get("Subscriptions", [])], topic)]


def subscription_verdict(subscriptions: Sequence[Mapping[str, str]], topic: str) -> Verdict:
    """Alarms reach someone only through a confirmed subscription (SNS lists one nobody confirmed by the ARN
    `PendingConfirmation`)."""
    confirmed = [item for item in subscriptions if item.get("SubscriptionArn", "").startswith("arn:")]
    if confirmed:
        protocols = ", ".join(sorted({item.get("Protocol", "?") for item in confirmed}))
        return Verdict(OK, f"{counted(len(confirmed), 'confirmed subscription')} to the alarm topic ({protocols})")
    subscribe = f"aws sns subscribe --topic-arn {topic} --protocol email --notification-endpoint YOU@EXAMPLE.COM"
    pending = [item.get("Endpoint", "?") for item in subscriptions if item.get("SubscriptionArn") == PENDING]
    if pending:
        return Verdict(
            FAIL, f"the alarms reach nobody: confirm the subscription mail sent to {', '.join(pending)}, or "
            f"subscribe another address: {subscribe}",
        )
    return Verdict(
        FAIL, f"the alarms reach nobody: no subscription to {topic}; set `alarm_email` in cdk.json and redeploy, or "
        f"subscribe: {subscribe}",
    )


# ---- state machine, schedule, glue tables


def state_machine(visit: Visit) -> list[Verdict]:
    if not visit.config.etl_engine_is_athena:
        return [Verdict(SKIPPED, f"etl_engine is {visit.config.etl_engine}: no state machine runs the days")]
    arn = visit.output("Presentation", outputs.COMPACTION_STATE_MACHINE_ARN)
    stepfunctions = visit.client("stepfunctions")
    try:
        machine = stepfunctions.describe_state_machine(stateMachineArn=arn)
    except stepfunctions.exceptions.StateMachineDoesNotExist:
        return [Verdict(FAIL, f"the state machine {arn} does not exist: redeploy the stage")]
    answer = stepfunctions.validate_state_machine_definition(definition=machine["definition"], type=machine["type"])
    return [definition_verdict(machine["name"], answer)]


def definition_verdict(name: str, answer: Mapping[str, Any]) -> Verdict:
    """ValidateStateMachineDefinition's answer: `result` decides; its first error says why (warnings pass)."""
    diagnostics = answer.get("diagnostics", [])
    if answer.get("result") == "OK":
        warnings = f" ({counted(len(diagnostics), 'warning')})" if diagnostics else ""
        return Verdict(OK, f"{name}'s deployed definition validates{warnings}")
    errors = [item for item in diagnostics if item.get("severity") == "ERROR"] or diagnostics
    if not errors:
        return Verdict(FAIL, f"{name}'s deployed definition does not validate ({answer.get('result')}, no diagnostic)")
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return Verdict(
        FAIL, f"{name}'s deployed definition does not validate: {first.get('code')} at {first.get('location')}: "
        f"{first.get('message')}{more}",
    )


def schedule(visit: Visit) -> list[Verdict]:
    """The daily run's schedule, named by the DailyScheduleName output of the stack that runs the days."""
    key = outputs.DAILY_SCHEDULE_NAME
    named = [deployed[key] for deployed in visit.outputs.values() if key in deployed]
    if not named:
        return [
            Verdict(
                FAIL, f"no stack of stage {visit.config.stage} has the output {key}: redeploy "
                "it with this version of the project",
            )
        ]
    scheduler = visit.client("scheduler")
    try:
        found = scheduler.get_schedule(Name=named[0])
    except scheduler.exceptions.ResourceNotFoundException:
        return [Verdict(FAIL, f"the schedule {named[0]} does not exist: no day is compacted; redeploy the stage")]
    if found.get("State") != "ENABLED":
        return [
            Verdict(
                FAIL, f"the schedule {named[0]} is {found.get('State')}: no day is compacted until it is enabled "
                "again (EventBridge Scheduler console)",
            )
        ]
    return [
        Verdict(
            OK, f"the schedule {named[0]} is enabled: {found.get('ScheduleExpression')} in "
            f"{found.get('ScheduleExpressionTimezone', 'UTC')}",
        )
    ]


def glue_tables(visit: Visit) -> list[Verdict]:
    """The stage's tables: the compacted and the raw zone's, and on a pseudonymized stage the analysts' too."""
    glue = visit.client("glue")
    database = visit.config.glue_database
    tables = (TABLE, RAW_TABLE, *((PSEUDONYMIZED_TABLE,) if visit.config.pseudonymized else ()))
    missing = []
    for table in tables:
        try:
            glue.get_table(DatabaseName=database, Name=table)
        except glue.exceptions.EntityNotFoundException as error:
            missing.append(Verdict(FAIL, f"the table {database}.{table} does not resolve: {error}"))
    named = ", ".join(f"{database}.{table}" for table in tables)
    return missing or [Verdict(OK, f"the tables {named} resolve")]


# ---- compaction


def due_day(config: StageConfig, now: datetime) -> date:
    """The newest day the daily run should have compacted by `now`: yesterday in the stage's zone once today's
    run had its scheduled time and RUN_GRACE, the day before otherwise."""
    local = now.astimezone(ZoneInfo(config.timezone))
    run = local.replace(hour=config.etl_schedule_hour, minute=config.etl_schedule_minute, second=0, microsecond=0)
    yesterday = local.date() - timedelta(days=1)
    return yesterday if local >= run + RUN_GRACE else yesterday - timedelta(days=1)


def compaction(visit: Visit) -> list[Verdict]:
    """The newest compacted day against the one due. A day without a file is fine when no update arrived that
    day (the ETL writes no file for a day without rows), so the raw zone is asked before failing."""
    config = visit.config
    due = due_day(config, visit.now)
    s3 = visit.client("s3")
    newest = newest_day_file(s3, visit.output("Etl", outputs.ENRICHED_BUCKET_NAME))
    last = newest[0] if newest else None
    if last is not None and last >= due:
        return [Verdict(OK, f"the last compacted day is {last} ({due} was due in {config.timezone})")]
    if due < date.fromisoformat(config.analytics_start_date) or not raw_day_has_updates(
        s3, visit.output("Ingestion", outputs.RAW_BUCKET_NAME), due
    ):
        return [Verdict(OK, f"no update arrived on {due}, so no day was due (last compacted day: {last or 'none'})")]
    return [
        Verdict(
            FAIL, f"the last compacted day is {last or 'none'}, but {due} has raw updates and was due after "
            f"{config.etl_schedule_local_time} {config.timezone}: see `python -m tools status --stage {config.stage}`, "
            f"then `python -m tools etl run --stage {config.stage} --from {due}`",
        )
    ]


def raw_day_has_updates(s3: Any, raw_bucket: str, day: date) -> bool:
    return bool(s3.list_objects_v2(Bucket=raw_bucket, Prefix=day_prefix(day), MaxKeys=1).get("KeyCount"))


def counted(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def one_line(text: str) -> str:
    """A reason on one line: every run of whitespace (line breaks too) one space, what is left shown as plain text."""
    return plain(" ".join(text.split()))


CHECKS: tuple[tuple[str, Check], ...] = (
    ("athena sql", athena_analysis),
    ("webhook", webhook_probe),
    ("telegram", telegram_webhook),
    ("alarm topic", alarm_topic),
    ("state machine", state_machine),
    ("schedule", schedule),
    ("glue tables", glue_tables),
    ("compaction", compaction),
)

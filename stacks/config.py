"""Stage configuration: one typed, frozen object parsed once from `cdk.json` context.

Every stack, the Lambdas' environment and the `tools` commands read their settings from here, so a
setting has exactly one home. Whatever synth accepts, AWS accepts: every value is checked against what the
service that receives it allows. This module imports nothing from the CDK: the command-line tools use it
without paying jsii's start-up cost. Nor anything outside the standard library: the Makefile runs
`python3 -m stacks.config stages` (see `main`) before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import re
import sys
import unicodedata
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any, Mapping

from lambdas.common.updates import CHATLESS_UPDATE_TYPES, UPDATE_TYPES
from lambdas.etl.store import DEFAULT_READ_CONCURRENCY
from lambdas.ingest.metrics import namespace
from stacks import time_zones

PROJECT = "TelegramLake"
# The project's own top-level CDK context keys: the stages' settings, the stage to build (`-c stage=NAME`), and
# the account-wide switch for GitHub's OIDC provider (stacks/github_access.py).
STAGES_KEY, STAGE_KEY, CREATE_PROVIDER_KEY = "stages", "stage", "create_github_oidc_provider"
CONTEXT_KEYS = (STAGES_KEY, STAGE_KEY, CREATE_PROVIDER_KEY)
TABLE = "telegram"  # the enriched table: the original design's name, so its analytics run unchanged
RAW_TABLE = "telegram_raw"  # the raw zone: one row per line of each stored update (one line: Telegram's compact JSON)
# The analysts' table on a pseudonymized stage (lambdas/etl/pseudonymize.py), in its own location.
PSEUDONYMIZED_TABLE = "telegram_pseudonymized"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = PROJECT_ROOT / "cdk.json"
DEFAULT_STAGE = "dev"

# The values CloudWatch Logs accepts for a log group's retention.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)
ARCHITECTURES = ("arm64", "x86_64")
REMOVAL_POLICIES = ("retain", "destroy")
# What the analysts' managed policy gives: every table (the raw zone and the enriched table, names and text
# included), or only the pseudonymized table (user ids as keyed hashes, no names), which the ETL writes beside.
ANALYST_ACCESS = ("full", "pseudonymized")
# Whether the pseudonymized table keeps the messages' text and captions.
PSEUDONYMIZED_TEXT = ("keep", "drop")
# What compacts each day: the ETL Lambda (one machine, today's default) or Athena (distributed, for the days
# that outgrow one Lambda's 15 minutes), orchestrated by a Step Functions state machine.
ETL_ENGINES = ("lambda", "athena")
# Upper bounds of the numeric settings, each what the receiving service takes (or a sane ceiling below it).
MAX_DAYS = 36_500  # S3 lifecycle days: 100 years (CloudFormation would take up to 2**31 - 1)
MAX_API_RATE = 10_000  # API Gateway's default account-wide throttle per region, requests per second
MAX_API_BURST = 5_000  # ... and its default account-wide burst
MAX_WEBHOOK_CONNECTIONS = 100  # Telegram's setWebhook max_connections: 1-100
MIN_LAMBDA_MEMORY_MB, MAX_LAMBDA_MEMORY_MB = 128, 10_240
MAX_LAMBDA_TIMEOUT_MINUTES = 15
MAX_READ_CONCURRENCY = 256  # parallel S3 GETs of one ETL run (threads in one Lambda)
MIN_BYTES_SCANNED_CUTOFF = 10_485_760  # Athena's BytesScannedCutoffPerQuery: at least 10 MB ...
MAX_BYTES_SCANNED_CUTOFF = 2**63 - 1  # ... and a Java long
MAX_NO_UPDATES_ALARM_HOURS = 168  # CloudWatch evaluates a 1-hour-period alarm over at most 7 days
# How long the raw delivery stream (Firehose) buffers updates before it writes a day's batch: with dynamic
# partitioning Firehose takes 60-900 s (no zero buffering).
DEFAULT_RAW_BATCH_SECONDS, MIN_RAW_BATCH_SECONDS, MAX_RAW_BATCH_SECONDS = 60, 60, 900
# How many days back the saved queries read raw days that are not compacted yet (today, a failed or late run):
# each is raw JSON every query scans, so a month at most.
DEFAULT_RAW_WINDOW_DAYS, MAX_RAW_WINDOW_DAYS = 3, 31
# Raw days that must outlive their arrival: the up-to-the-minute relation reads `raw_window_days` days back plus
# three (today, the day before the window for its keys, tomorrow in UTC: analytics/__init__.py), and the
# compaction of a day reads it and the day before, the morning after; so a raw retention shorter than the window
# and these three would lose days from answers and compactions.
RAW_DAYS_BEYOND_WINDOW = 3
# How long an overwritten, deleted or expired object stays recoverable as a noncurrent version (raw and enriched
# buckets): a week to notice and undo a mistake, and no longer, because that copy holds what people wrote too.
DEFAULT_NONCURRENT_VERSION_DAYS = 7
# Athena's query results hold answers (message text included): a week, then they are gone.
DEFAULT_ATHENA_RESULTS_EXPIRATION_DAYS = 7
# Telegram: a chat id "has at most 52 significant bits".
MAX_CHAT_ID_MAGNITUDE = 2**52 - 1
# The private chat `tools doctor` probes the webhook with: one past the largest id a stage may allowlist, so no
# stage ever stores it (the deploy role may read its chats-seen records: stacks/github.py).
DOCTOR_PROBE_CHAT_ID = MAX_CHAT_ID_MAGNITUDE + 1
# How far ahead the schedule's local time must exist every day (from the start of this year, in UTC).
SCHEDULE_YEARS_AHEAD = 20

_STAGE_NAME = re.compile(r"[a-z][a-z0-9-]{0,19}")
_LOCAL_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ACCOUNT = re.compile(r"[0-9]{12}")
# us-east-1, ap-southeast-2, us-gov-west-1, cn-northwest-1, us-isob-east-1, eusc-de-east-1, ...
_REGION = re.compile(r"[a-z]{2,4}(-[a-z]{2,5})?-((north|south)(east|west)?|east|west|central)-[1-9][0-9]?")
# Plausible, not RFC 5322: one @, no spaces, a dotted domain. SNS sends a confirmation mail anyway.
_EMAIL = re.compile(r"[^@\s]+@([^@\s.]+\.)+[^@\s.]+")
# GitHub's rules: an owner has 1-39 letters, digits and single inner hyphens; a repository name 1-100
# letters, digits, `.`, `_` and `-`, but is not `.` or `..`. No `:`: it separates the fields of the OIDC `sub` claim.
_GITHUB_REPOSITORY = re.compile(
    r"(?=[A-Za-z0-9-]{1,39}/)[A-Za-z0-9]+(-[A-Za-z0-9]+)*/(?!\.{1,2}\Z)[A-Za-z0-9._-]{1,100}"
)
# Every pattern above is used with `fullmatch`: `$` would accept a trailing newline.
# A top-level context key written as the project writes its own (lower-case words joined by `_`). The CDK's
# keys never are: they are namespaced (`@aws-cdk/core:...`, `aws:cdk:...`, lookups `name:account=...`) or
# joined by `-` (`cli-telemetry`, `acknowledged-issue-numbers`).
_PROJECT_KEY_FORM = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
# Characters nobody can see or type back: controls, format characters (zero-width, bidi), line separators.
_HIDDEN_CATEGORIES = ("Cc", "Cf", "Zl", "Zp")


class ConfigError(ValueError):
    """A stage's settings are unusable; the message names the stage and the key."""


@dataclass(frozen=True)
class StageConfig:
    """Settings of one deployment stage (dev, prod, ...)."""

    stage: str
    account: str | None
    region: str | None
    allowed_chat_ids: tuple[int, ...]
    timezone: str
    raw_transition_days: int
    raw_expiration_days: int | None
    raw_batch_seconds: int  # the raw delivery stream's buffering interval: about one batch object per interval
    removal_policy: str
    lambda_architecture: str
    log_retention_days: int
    api_throttle_rate: float
    api_throttle_burst: int
    allowed_updates: tuple[str, ...]
    webhook_max_connections: int
    etl_schedule_local_time: str
    etl_memory_mb: int
    etl_timeout_minutes: int
    etl_read_concurrency: int
    etl_engine: str  # one of ETL_ENGINES
    alarm_email: str | None  # subscribed to the ETL alarms' topic when set
    analytics_start_date: str
    athena_results_expiration_days: int
    athena_bytes_scanned_cutoff: int
    no_updates_alarm_hours: int  # the ingest's alarm fires after this many hours with nothing stored; 0 = off
    raw_window_days: int  # days back the up-to-the-minute relation reads raw days not compacted yet
    github_repository: str | None  # `owner/name` whose workflows may review and deploy the stage; None = none
    show_member_names: bool  # saved queries and the report name members; False = user ids only
    # The bot's own backend keeps Telegram's webhook and forwards every update to the stage's URL (docs/operating.md,
    # "Beside an existing bot"): the doctor then expects another webhook URL on the bot.
    webhook_forwarded: bool
    enriched_expiration_days: int | None  # compacted days (both tables) are deleted this long after written; None = kept
    noncurrent_version_days: int  # how long the raw and enriched buckets keep an object's older versions
    analyst_access: str  # one of ANALYST_ACCESS: what the analysts' managed policy grants
    pseudonymized_text: str  # one of PSEUDONYMIZED_TEXT: whether the pseudonymized table keeps text and captions

    @property
    def retain_data(self) -> bool:
        return self.removal_policy == "retain"

    def stack_name(self, part: str) -> str:
        """`TelegramLake-dev-Ingestion`: the stage is part of every stack's name."""
        return f"{PROJECT}-{self.stage}-{part}"

    @property
    def raw_stream_name(self) -> str:
        """`TelegramLake-dev-Raw`: the raw delivery stream (Firehose), by which its metrics are read."""
        return self.stack_name("Raw")

    @property
    def glue_database(self) -> str:
        """Glue database names allow only lower case, digits and underscores."""
        return f"telegram_lake_{self.stage}".lower().replace("-", "_")

    @property
    def athena_workgroup(self) -> str:
        return f"telegram-lake-{self.stage}"

    @property
    def metrics_namespace(self) -> str:
        """Where the stage's custom metrics live: its own, so one stage never raises another's alarms."""
        return namespace(PROJECT, self.stage)

    @property
    def etl_engine_is_athena(self) -> bool:
        """The daily run is Athena's (a state machine in the Presentation stack), not the ETL Lambda's."""
        return self.etl_engine == "athena"

    @property
    def pseudonymized(self) -> bool:
        """Analysts get the pseudonymized table only (the ETL writes it beside the full one)."""
        return self.analyst_access == "pseudonymized"

    @property
    def analyst_workgroup(self) -> str:
        """The analysts' own workgroup on a pseudonymized stage: its query history and results are theirs alone,
        so nobody reads an operator's answers over the full table through it."""
        return f"{self.athena_workgroup}-analysts"

    @property
    def etl_schedule_hour(self) -> int:
        return int(self.etl_schedule_local_time.split(":")[0])

    @property
    def etl_schedule_minute(self) -> int:
        return int(self.etl_schedule_local_time.split(":")[1])


# What a stage's settings in cdk.json may hold.
_STAGE_SETTINGS = {setting.name for setting in fields(StageConfig)} - {"stage"}


def load_stage(stages: Mapping[str, Any], stage: str | None) -> StageConfig:
    """Parse and validate one stage from the `stages` context; raise ConfigError naming stage and key.

    No stage (None) means dev; an empty name is an error, so `make deploy STAGE=` never deploys dev.
    """
    name = DEFAULT_STAGE if stage is None else stage
    stage_names(stages)
    _check_stage_name(name)
    if name not in stages:
        raise ConfigError(f"unknown stage {name!r}; configured stages: {', '.join(sorted(stages)) or 'none'}")
    raw = stages[name]
    if not isinstance(raw, Mapping):
        raise ConfigError(f"stage {name!r}: settings must be an object")
    return _Parser(name, raw).parse()


def load_from_cdk_json(stage: str | None = None, path: Path | None = None) -> StageConfig:
    """What the command-line tools use: the same `stages` context the CDK app reads."""
    return load_stage(read_stages(path), stage)


def read_stages(path: Path | None = None) -> Mapping[str, Any]:
    """cdk.json's `stages` context; a broken file is a ConfigError saying what is wrong, never a traceback."""
    path = path or CDK_JSON
    try:
        # NaN and Infinity are not JSON (the CDK CLI refuses them), though Python's json module reads them.
        document = json.loads(path.read_text(encoding="utf-8"), parse_constant=_not_json)
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}") from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, _not_json
        raise ConfigError(f"{path.name} is not valid JSON: {error}") from None
    context = document.get("context") if isinstance(document, dict) else None
    if not isinstance(context, dict) or STAGES_KEY not in context:
        raise ConfigError(f"{path.name} has no `context.stages` object: it must map stage names to their settings")
    check_context_keys(context)
    stages = context[STAGES_KEY]
    stage_names(stages)
    return stages


def check_context_keys(context: Mapping[str, Any]) -> None:
    """Refuse a top-level context key that looks like one of the project's but is none of them (a typo the
    CDK would otherwise ignore in silence, e.g. `create_github_oidc_providr`): any key in the project's form
    (snake_case), and any spelling of a project key in another case or with `-` (`Stage`,
    `create-github-oidc-provider`). The CDK's own keys (feature flags, `aws:cdk:...`, lookups) pass."""
    for key in context:
        if key in CONTEXT_KEYS:
            continue
        folded = _folded(key)
        respelled = [known for known in CONTEXT_KEYS if _folded(known) == folded]
        if respelled or _PROJECT_KEY_FORM.fullmatch(key):
            near = respelled or difflib.get_close_matches(key, CONTEXT_KEYS, n=1)
            if key in _STAGE_SETTINGS:
                hint = f" (a stage setting: it goes in `{STAGES_KEY}.<stage>`)"
            else:
                hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(
                f"unknown key {key!r} in the CDK context{hint}: the project reads only {', '.join(CONTEXT_KEYS)} "
                "at the top of cdk.json's `context` (or from `-c`), and would ignore it"
            )


def _folded(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def stage_names(stages: Any) -> list[str]:
    """The configured stage names, in cdk.json's order; ConfigError unless `stages` maps valid names."""
    if not isinstance(stages, Mapping) or not stages:
        raise ConfigError("`stages` in the CDK context (cdk.json) must be an object mapping stage names to settings")
    for name in stages:
        _check_stage_name(name)
    return list(stages)


def _check_stage_name(name: object) -> None:
    if not isinstance(name, str) or not _STAGE_NAME.fullmatch(name):
        raise ConfigError(
            f"stage name {name!r} must be 1-20 lower-case letters, digits and dashes, starting with a letter "
            "(it is part of resource names)"
        )


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not a JSON number")


def is_region_name(text: str) -> bool:
    """An AWS region's name as cdk.json's `region` must be one (the tools hold the operator's to it too)."""
    return bool(_REGION.fullmatch(text))


def _is_hidden(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) in _HIDDEN_CATEGORIES


def _utc_today() -> date:
    """Partition projection evaluates its date range in UTC."""
    return datetime.now(timezone.utc).date()


class _Parser:
    def __init__(self, stage: str, raw: Mapping[str, Any]):
        self.stage = stage
        self.raw = raw

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"stage {self.stage!r}, key {key!r}: {problem}")

    def get(self, key: str, default: Any = ...) -> Any:
        if key in self.raw:
            return self.raw[key]
        if default is ...:
            raise self.fail(key, "missing")
        return default

    def integer(self, key: str, default: Any = ..., *, minimum: int, maximum: int) -> int:
        """A JSON integer within bounds (every numeric setting has both: AWS refuses what CloudFormation passes)."""
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, got {value!r}")
        if value < minimum:
            raise self.fail(key, f"must be >= {minimum}, got {value}")
        if value > maximum:
            raise self.fail(key, f"must be <= {maximum}, got {value}")
        return value

    def number(self, key: str, default: Any = ..., *, maximum: int) -> float:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise self.fail(key, f"must be a positive number, got {value!r}")
        if value > maximum:
            raise self.fail(key, f"must be <= {maximum}, got {value}")
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        """JSON `true` or `false`: a string or a number would read as true in Python whatever it says."""
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {value!r}")
        return value

    def choice(self, key: str, options: tuple[str, ...], default: Any = ...) -> str:
        value = self.get(key, default)
        if value not in options:
            raise self.fail(key, f"must be one of {', '.join(options)}, got {value!r}")
        return value

    def email(self, key: str) -> str | None:
        """An address SNS can send to: no control, invisible or space character (one pasted from a chat or a
        document would make the confirmation mail go nowhere, with nothing visibly wrong in cdk.json)."""
        value = self.get(key, None)
        hidden = sorted({f"U+{ord(char):04X}" for char in value if _is_hidden(char)}) if isinstance(value, str) else []
        if hidden:
            raise self.fail(key, f"holds invisible or space characters ({', '.join(hidden)}), got {value!r}")
        return self.optional_string(key, _EMAIL, "an email address")

    def github_repository(self, key: str) -> str | None:
        value = self.optional_string(key, _GITHUB_REPOSITORY, "a GitHub repository 'owner/name', spelled as on GitHub")
        if value is not None and value.lower().endswith(".git"):
            raise self.fail(
                key,
                f"must name the repository without `.git` ({value[:-4]!r}): GitHub's OIDC tokens name it so, and "
                f"a role trusting {value!r} would trust no workflow",
            )
        return value

    def optional_string(self, key: str, pattern: re.Pattern[str], meaning: str) -> str | None:
        value = self.get(key, None)
        if value is not None and (not isinstance(value, str) or not value):
            raise self.fail(key, f"must be a non-empty string when set, got {value!r}")
        if value is not None and not pattern.fullmatch(value):
            raise self.fail(key, f"must be {meaning} when set, got {value!r}")
        return value

    def chat_ids(self) -> tuple[int, ...]:
        value = self.get("allowed_chat_ids")
        if not isinstance(value, list) or not value:
            raise self.fail("allowed_chat_ids", "must be a non-empty list of integer chat ids")
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int):
                raise self.fail("allowed_chat_ids", f"every chat id must be an integer, got {item!r}")
            if not 0 < abs(item) <= MAX_CHAT_ID_MAGNITUDE:
                raise self.fail("allowed_chat_ids", f"{item} is not a Telegram chat id (non-zero, at most 52 bits)")
        return tuple(value)

    def timezone(self) -> str:
        value = self.get("timezone", "America/Sao_Paulo")
        if not time_zones.is_accepted_zone(value):
            raise self.fail("timezone", time_zones.unknown_zone_message(value))
        return value

    def update_types(self) -> tuple[str, ...]:
        key = "allowed_updates"
        value = self.get(key, ["message", "edited_message", "channel_post", "edited_channel_post"])
        if not isinstance(value, list) or not value:
            raise self.fail(key, "must be a non-empty list of update types")
        unknown = [item for item in value if item not in UPDATE_TYPES]
        if unknown:
            raise self.fail(key, f"unknown update types {unknown}")
        repeated = sorted({item for item in value if value.count(item) > 1})
        if repeated:
            raise self.fail(key, f"lists {repeated} more than once")
        if all(item in CHATLESS_UPDATE_TYPES for item in value):
            raise self.fail(
                key,
                f"{value} are all chat-less update types: none names a chat, so none can pass the chat allowlist "
                "and nothing would ever be stored; add a type that has a chat, such as 'message'",
            )
        return tuple(value)

    def schedule_time(self, key: str, default: str, zone: str) -> str:
        """A local HH:MM that exists every day: EventBridge Scheduler skips a run whose time the
        spring-forward day lacks (in the fall overlap it runs once, which is fine)."""
        value = self.get(key, default)
        match = _LOCAL_TIME.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise self.fail(key, f"must be a 24-hour local time HH:MM, got {value!r}")
        this_year = _utc_today().year
        gaps = time_zones.skipped_local_times(zone, this_year, this_year + SCHEDULE_YEARS_AHEAD)
        if time_zones.is_skipped(time(int(match[1]), int(match[2])), gaps):
            raise self.fail(
                key,
                f"{value} does not exist every day in {zone}, so EventBridge Scheduler would skip that day's run: "
                f"{time_zones.describe(gaps)} is skipped on the spring-forward day in {zone}; pick a time outside it",
            )
        return value

    def start_date(self, key: str, default: str) -> str:
        """A day in partition projection's format (`yyyy-MM-dd`, exactly) that is not in the future (in UTC)."""
        value = self.get(key, default)
        try:
            if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
                raise ValueError
            day = date.fromisoformat(value)
        except ValueError:
            raise self.fail(key, f"must be a date YYYY-MM-DD, got {value!r}") from None
        today = _utc_today()
        if day > today:
            raise self.fail(key, f"{value} is after today ({today}, UTC): Athena would show no day until then")
        return value

    def removal_policy(self) -> str:
        value = self.choice("removal_policy", REMOVAL_POLICIES, "retain")
        if self.stage == "prod" and value != "retain":
            raise self.fail("removal_policy", "prod always retains data; only 'retain' is allowed")
        return value

    def log_retention(self) -> int:
        value = self.integer("log_retention_days", 30, minimum=1, maximum=LOG_RETENTION_DAYS[-1])
        if value not in LOG_RETENTION_DAYS:
            raise self.fail("log_retention_days", f"must be one of CloudWatch's values {LOG_RETENTION_DAYS}, got {value}")
        return value

    def optional_days(self, key: str) -> int | None:
        """A number of lifecycle days, or None (the key absent or null): kept for good."""
        return None if self.get(key, None) is None else self.integer(key, minimum=1, maximum=MAX_DAYS)

    def raw_expiration(self, transition: int, window: int) -> int | None:
        """Raw updates expire after this many days, or never (None); never before the compaction and the
        up-to-the-minute window are done with them (RAW_DAYS_BEYOND_WINDOW), nor before their transition."""
        key = "raw_expiration_days"
        expiration = self.optional_days(key)
        if expiration is None:
            return None
        needed = window + RAW_DAYS_BEYOND_WINDOW
        if expiration < needed:
            raise self.fail(
                key,
                f"{expiration} days is shorter than what the compaction and the up-to-the-minute window need: "
                f"raw_window_days ({window}) + {RAW_DAYS_BEYOND_WINDOW} (today, the day before the window, tomorrow "
                f"in UTC) = {needed} days; set at least {needed}",
            )
        if expiration <= transition:
            raise self.fail(key, f"must be after raw_transition_days ({transition})")
        return expiration

    def pseudonymized_text(self, access: str) -> str:
        key = "pseudonymized_text"
        if key in self.raw and access != "pseudonymized":
            raise self.fail(key, "applies only with analyst_access 'pseudonymized': remove it, or set that")
        return self.choice(key, PSEUDONYMIZED_TEXT, "keep")

    def parse(self) -> StageConfig:
        unknown = sorted(set(self.raw) - _STAGE_SETTINGS)
        if unknown:
            raise ConfigError(f"stage {self.stage!r}: unknown keys {unknown}")
        transition = self.integer("raw_transition_days", 30, minimum=0, maximum=MAX_DAYS)
        window = self.integer("raw_window_days", DEFAULT_RAW_WINDOW_DAYS, minimum=1, maximum=MAX_RAW_WINDOW_DAYS)
        expiration = self.raw_expiration(transition, window)
        access = self.choice("analyst_access", ANALYST_ACCESS, "full")
        zone = self.timezone()
        return StageConfig(
            stage=self.stage,
            account=self.optional_string("account", _ACCOUNT, "a 12-digit AWS account id"),
            region=self.optional_string("region", _REGION, "an AWS region name such as us-east-1"),
            allowed_chat_ids=self.chat_ids(),
            timezone=zone,
            raw_transition_days=transition,
            raw_expiration_days=expiration,
            raw_batch_seconds=self.integer(
                "raw_batch_seconds", DEFAULT_RAW_BATCH_SECONDS,
                minimum=MIN_RAW_BATCH_SECONDS, maximum=MAX_RAW_BATCH_SECONDS,
            ),
            removal_policy=self.removal_policy(),
            lambda_architecture=self.choice("lambda_architecture", ARCHITECTURES, "arm64"),
            log_retention_days=self.log_retention(),
            api_throttle_rate=self.number("api_throttle_rate", 50, maximum=MAX_API_RATE),
            api_throttle_burst=self.integer("api_throttle_burst", 100, minimum=1, maximum=MAX_API_BURST),
            allowed_updates=self.update_types(),
            webhook_max_connections=self.integer(
                "webhook_max_connections", 40, minimum=1, maximum=MAX_WEBHOOK_CONNECTIONS
            ),
            etl_schedule_local_time=self.schedule_time("etl_schedule_local_time", "01:00", zone),
            etl_memory_mb=self.integer(
                "etl_memory_mb", 1024, minimum=MIN_LAMBDA_MEMORY_MB, maximum=MAX_LAMBDA_MEMORY_MB
            ),
            etl_timeout_minutes=self.integer("etl_timeout_minutes", 15, minimum=1, maximum=MAX_LAMBDA_TIMEOUT_MINUTES),
            etl_read_concurrency=self.integer(
                "etl_read_concurrency", DEFAULT_READ_CONCURRENCY, minimum=1, maximum=MAX_READ_CONCURRENCY
            ),
            etl_engine=self.choice("etl_engine", ETL_ENGINES, "lambda"),
            alarm_email=self.email("alarm_email"),
            analytics_start_date=self.start_date("analytics_start_date", "2026-01-01"),
            athena_results_expiration_days=self.integer(
                "athena_results_expiration_days", DEFAULT_ATHENA_RESULTS_EXPIRATION_DAYS, minimum=1, maximum=MAX_DAYS
            ),
            athena_bytes_scanned_cutoff=self.integer(
                "athena_bytes_scanned_cutoff", 1_073_741_824,
                minimum=MIN_BYTES_SCANNED_CUTOFF, maximum=MAX_BYTES_SCANNED_CUTOFF,
            ),
            no_updates_alarm_hours=self.integer(
                "no_updates_alarm_hours", 24, minimum=0, maximum=MAX_NO_UPDATES_ALARM_HOURS
            ),
            raw_window_days=window,
            github_repository=self.github_repository("github_repository"),
            show_member_names=self.boolean("show_member_names", True),
            webhook_forwarded=self.boolean("webhook_forwarded", False),
            enriched_expiration_days=self.optional_days("enriched_expiration_days"),
            noncurrent_version_days=self.integer(
                "noncurrent_version_days", DEFAULT_NONCURRENT_VERSION_DAYS, minimum=1, maximum=MAX_DAYS
            ),
            analyst_access=access,
            pseudonymized_text=self.pseudonymized_text(access),
        )


def main(argv: list[str] | None = None) -> int:
    """`python3 -m stacks.config stages`: the configured stage names, one a line, for the Makefile.

    Runs with the system python3 before the virtualenv exists; a broken cdk.json exits 1 with a one-line error.
    """
    parser = argparse.ArgumentParser(prog="python3 -m stacks.config", description="Read cdk.json's stages.")
    parser.add_argument("command", choices=["stages"], help="print the configured stage names, one per line")
    parser.parse_args(argv)
    try:
        names = stage_names(read_stages())
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("\n".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())

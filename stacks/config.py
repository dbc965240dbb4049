"""Stage configuration: one typed, frozen object parsed once from `cdk.json` context.

Every stack, the Lambdas' environment and the `tools` commands read their settings from here, so a
setting has exactly one home. This module imports nothing from the CDK: the command-line tools use it
without paying jsii's start-up cost.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any, Mapping

from lambdas.common.layout import is_time_zone
from lambdas.common.updates import UPDATE_TYPES
from lambdas.etl.store import DEFAULT_READ_CONCURRENCY

PROJECT = "TelegramLake"
TABLE = "telegram"  # the enriched table: the original design's name, so its analytics run unchanged
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STAGE = "dev"

# The values CloudWatch Logs accepts for a log group's retention.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)
ARCHITECTURES = ("arm64", "x86_64")
REMOVAL_POLICIES = ("retain", "destroy")
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_LOCAL_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# Plausible, not RFC 5322: one @, no spaces, a dotted domain. SNS sends a confirmation mail anyway.
_EMAIL = re.compile(r"[^@\s]+@([^@\s.]+\.)+[^@\s.]+")


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
    alarm_email: str | None  # subscribed to the ETL alarms' topic when set
    analytics_start_date: str
    athena_results_expiration_days: int
    athena_bytes_scanned_cutoff: int

    @property
    def retain_data(self) -> bool:
        return self.removal_policy == "retain"

    def stack_name(self, part: str) -> str:
        """`TelegramLake-dev-Ingestion`: the stage is part of every stack's name."""
        return f"{PROJECT}-{self.stage}-{part}"

    @property
    def glue_database(self) -> str:
        """Glue database names allow only lower case, digits and underscores."""
        return f"telegram_lake_{self.stage}".lower().replace("-", "_")

    @property
    def athena_workgroup(self) -> str:
        return f"telegram-lake-{self.stage}"

    @property
    def etl_schedule_hour(self) -> int:
        return int(self.etl_schedule_local_time.split(":")[0])

    @property
    def etl_schedule_minute(self) -> int:
        return int(self.etl_schedule_local_time.split(":")[1])


def load_stage(stages: Mapping[str, Any], stage: str | None) -> StageConfig:
    """Parse and validate one stage from the `stages` context; raise ConfigError naming stage and key."""
    name = stage or DEFAULT_STAGE
    if not _STAGE_NAME.match(name):
        raise ConfigError(f"stage name {name!r} must be lower-case letters, digits and dashes (it is part of resource names)")
    if name not in stages:
        raise ConfigError(f"unknown stage {name!r}; configured stages: {', '.join(sorted(stages)) or 'none'}")
    raw = stages[name]
    if not isinstance(raw, Mapping):
        raise ConfigError(f"stage {name!r}: settings must be an object")
    return _Parser(name, raw).parse()


def load_from_cdk_json(stage: str | None = None, path: Path = PROJECT_ROOT / "cdk.json") -> StageConfig:
    """What the command-line tools use: the same `stages` context the CDK app reads."""
    context = json.loads(path.read_text(encoding="utf-8"))["context"]
    return load_stage(context["stages"], stage)


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

    def integer(self, key: str, default: Any = ..., minimum: int = 0, maximum: int | None = None) -> int:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, got {value!r}")
        if value < minimum:
            raise self.fail(key, f"must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.fail(key, f"must be <= {maximum}, got {value}")
        return value

    def number(self, key: str, default: Any = ...) -> float:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise self.fail(key, f"must be a positive number, got {value!r}")
        return float(value)

    def choice(self, key: str, options: tuple[str, ...], default: Any = ...) -> str:
        value = self.get(key, default)
        if value not in options:
            raise self.fail(key, f"must be one of {', '.join(options)}, got {value!r}")
        return value

    def optional_string(self, key: str) -> str | None:
        value = self.get(key, None)
        if value is not None and (not isinstance(value, str) or not value):
            raise self.fail(key, f"must be a non-empty string when set, got {value!r}")
        return value

    def optional_email(self, key: str) -> str | None:
        value = self.optional_string(key)
        if value is not None and not _EMAIL.fullmatch(value):
            raise self.fail(key, f"must be an email address when set, got {value!r}")
        return value

    def chat_ids(self) -> tuple[int, ...]:
        value = self.get("allowed_chat_ids")
        if not isinstance(value, list) or not value:
            raise self.fail("allowed_chat_ids", "must be a non-empty list of integer chat ids")
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int):
                raise self.fail("allowed_chat_ids", f"every chat id must be an integer, got {item!r}")
        return tuple(value)

    def timezone(self) -> str:
        value = self.get("timezone", "America/Sao_Paulo")
        if not is_time_zone(value):
            raise self.fail("timezone", f"unknown IANA time zone {value!r}")
        return value

    def update_types(self) -> tuple[str, ...]:
        value = self.get("allowed_updates", ["message", "edited_message", "channel_post", "edited_channel_post"])
        if not isinstance(value, list) or not value:
            raise self.fail("allowed_updates", "must be a non-empty list of update types")
        unknown = [item for item in value if item not in UPDATE_TYPES]
        if unknown:
            raise self.fail("allowed_updates", f"unknown update types {unknown}")
        return tuple(value)

    def local_time(self, key: str, default: str) -> str:
        value = self.get(key, default)
        if not isinstance(value, str) or not _LOCAL_TIME.match(value):
            raise self.fail(key, f"must be a 24-hour local time HH:MM, got {value!r}")
        return value

    def iso_date(self, key: str, default: str) -> str:
        value = self.get(key, default)
        try:
            date.fromisoformat(value)
        except (TypeError, ValueError):
            raise self.fail(key, f"must be a date YYYY-MM-DD, got {value!r}") from None
        return value

    def removal_policy(self) -> str:
        value = self.choice("removal_policy", REMOVAL_POLICIES, "retain")
        if self.stage == "prod" and value != "retain":
            raise self.fail("removal_policy", "prod always retains data; only 'retain' is allowed")
        return value

    def log_retention(self) -> int:
        value = self.integer("log_retention_days", 30, minimum=1)
        if value not in LOG_RETENTION_DAYS:
            raise self.fail("log_retention_days", f"must be one of CloudWatch's values {LOG_RETENTION_DAYS}, got {value}")
        return value

    def parse(self) -> StageConfig:
        known = {f.name for f in fields(StageConfig)} - {"stage"}
        unknown = sorted(set(self.raw) - known)
        if unknown:
            raise ConfigError(f"stage {self.stage!r}: unknown keys {unknown}")
        transition = self.integer("raw_transition_days", 30)
        expiration = self.get("raw_expiration_days", None)
        if expiration is not None:
            expiration = self.integer("raw_expiration_days", minimum=1)
            if expiration <= transition:
                raise self.fail("raw_expiration_days", f"must be after raw_transition_days ({transition})")
        return StageConfig(
            stage=self.stage,
            account=self.optional_string("account"),
            region=self.optional_string("region"),
            allowed_chat_ids=self.chat_ids(),
            timezone=self.timezone(),
            raw_transition_days=transition,
            raw_expiration_days=expiration,
            removal_policy=self.removal_policy(),
            lambda_architecture=self.choice("lambda_architecture", ARCHITECTURES, "arm64"),
            log_retention_days=self.log_retention(),
            api_throttle_rate=self.number("api_throttle_rate", 50),
            api_throttle_burst=self.integer("api_throttle_burst", 100, minimum=1),
            allowed_updates=self.update_types(),
            webhook_max_connections=self.integer("webhook_max_connections", 40, minimum=1, maximum=100),
            etl_schedule_local_time=self.local_time("etl_schedule_local_time", "01:00"),
            etl_memory_mb=self.integer("etl_memory_mb", 1024, minimum=128, maximum=10240),
            etl_timeout_minutes=self.integer("etl_timeout_minutes", 15, minimum=1, maximum=15),
            etl_read_concurrency=self.integer("etl_read_concurrency", DEFAULT_READ_CONCURRENCY, minimum=1, maximum=256),
            alarm_email=self.optional_email("alarm_email"),
            analytics_start_date=self.iso_date("analytics_start_date", "2026-01-01"),
            athena_results_expiration_days=self.integer("athena_results_expiration_days", 30, minimum=1),
            athena_bytes_scanned_cutoff=self.integer("athena_bytes_scanned_cutoff", 1_073_741_824, minimum=10_485_760),
        )

"""Stage configuration: cdk.json's stages parse, and every unusable setting fails naming the stage and the key."""

from __future__ import annotations

import pytest

from stacks.config import ConfigError, StageConfig, load_from_cdk_json, load_stage
from tests.stage_settings import STAGES, stages_with


def test_configured_stages_parse_into_typed_frozen_configs():
    dev = load_stage(STAGES, "dev")
    prod = load_stage(STAGES, "prod")

    assert dev.stage == "dev" and prod.stage == "prod"
    assert dev.allowed_chat_ids == tuple(STAGES["dev"]["allowed_chat_ids"])
    assert dev.stack_name("Ingestion") == "TelegramLake-dev-Ingestion"
    assert prod.glue_database == "telegram_lake_prod" and prod.athena_workgroup == "telegram-lake-prod"
    assert prod.retain_data and not dev.retain_data
    assert (dev.account, dev.region) == (None, None)  # env-agnostic unless configured
    with pytest.raises(AttributeError):
        dev.timezone = "UTC"


def test_no_stage_means_dev_and_the_tools_read_the_same_cdk_json():
    assert load_stage(STAGES, None) == load_stage(STAGES, "dev")
    assert load_from_cdk_json("prod") == load_stage(STAGES, "prod")


def test_only_the_chat_allowlist_is_required_everything_else_has_safe_defaults():
    config = load_stage({"qa": {"allowed_chat_ids": [42]}}, "qa")

    assert config == StageConfig(
        stage="qa", account=None, region=None, allowed_chat_ids=(42,), timezone="America/Sao_Paulo",
        raw_transition_days=30, raw_expiration_days=None, removal_policy="retain", lambda_architecture="arm64",
        log_retention_days=30, api_throttle_rate=50.0, api_throttle_burst=100,
        allowed_updates=("message", "edited_message", "channel_post", "edited_channel_post"),
        webhook_max_connections=40, etl_schedule_local_time="01:00", etl_memory_mb=1024, etl_timeout_minutes=15,
        etl_read_concurrency=32, alarm_email=None, analytics_start_date="2026-01-01",
        athena_results_expiration_days=30, athena_bytes_scanned_cutoff=1_073_741_824,
    )
    assert (config.etl_schedule_hour, config.etl_schedule_minute) == (1, 0)


def test_an_unknown_stage_names_it_and_the_configured_ones():
    with pytest.raises(ConfigError, match=r"unknown stage 'staging'; configured stages: dev, prod"):
        load_stage(STAGES, "staging")


@pytest.mark.parametrize(
    ("stage", "overrides", "key", "problem"),
    [
        ("dev", {"allowed_chat_ids": None}, "allowed_chat_ids", "missing"),
        ("dev", {"allowed_chat_ids": []}, "allowed_chat_ids", "non-empty list"),
        ("dev", {"allowed_chat_ids": -100123}, "allowed_chat_ids", "non-empty list"),
        ("dev", {"allowed_chat_ids": [-100123, "-100456"]}, "allowed_chat_ids", "must be an integer"),
        ("dev", {"allowed_chat_ids": [True]}, "allowed_chat_ids", "must be an integer"),
        ("dev", {"timezone": "America/Sao_Paolo"}, "timezone", "unknown IANA time zone"),
        ("dev", {"timezone": "UTC-3"}, "timezone", "unknown IANA time zone"),
        ("dev", {"raw_transition_days": -1}, "raw_transition_days", "must be >= 0"),
        ("dev", {"raw_transition_days": "30"}, "raw_transition_days", "must be an integer"),
        ("dev", {"raw_expiration_days": -5}, "raw_expiration_days", "must be >= 1"),
        ("dev", {"raw_expiration_days": 30}, "raw_expiration_days", "after raw_transition_days"),
        ("dev", {"athena_results_expiration_days": 0}, "athena_results_expiration_days", "must be >= 1"),
        ("dev", {"lambda_architecture": "aarch64"}, "lambda_architecture", "must be one of arm64, x86_64"),
        ("dev", {"removal_policy": "snapshot"}, "removal_policy", "must be one of retain, destroy"),
        ("prod", {"removal_policy": "destroy"}, "removal_policy", "prod always retains data"),
        ("dev", {"log_retention_days": 10}, "log_retention_days", "CloudWatch's values"),
        ("dev", {"api_throttle_rate": 0}, "api_throttle_rate", "positive number"),
        ("dev", {"api_throttle_burst": 0}, "api_throttle_burst", "must be >= 1"),
        ("dev", {"allowed_updates": ["message", "story"]}, "allowed_updates", "unknown update types ['story']"),
        ("dev", {"etl_schedule_local_time": "25:00"}, "etl_schedule_local_time", "24-hour local time"),
        ("dev", {"etl_timeout_minutes": 16}, "etl_timeout_minutes", "must be <= 15"),
        ("dev", {"analytics_start_date": "2026-13-01"}, "analytics_start_date", "date YYYY-MM-DD"),
        ("dev", {"account": ""}, "account", "non-empty string"),
        ("dev", {"alarm_email": ""}, "alarm_email", "non-empty string"),
        ("dev", {"alarm_email": ["ops@example.com"]}, "alarm_email", "non-empty string"),
        ("dev", {"alarm_email": "ops.example.com"}, "alarm_email", "must be an email address"),
        ("dev", {"alarm_email": "ops@example"}, "alarm_email", "must be an email address"),
        ("dev", {"alarm_email": "ops team@example.com"}, "alarm_email", "must be an email address"),
        ("dev", {"alarm_email": "ops@@example.com"}, "alarm_email", "must be an email address"),
        ("dev", {"alarm_email": "ops@example..com"}, "alarm_email", "must be an email address"),
        ("dev", {"alarm_email": "ops@example.com\n"}, "alarm_email", "must be an email address"),
    ],
)
def test_an_invalid_setting_fails_naming_the_stage_and_the_key(stage, overrides, key, problem):
    with pytest.raises(ConfigError) as error:
        load_stage(stages_with(stage, **overrides), stage)

    message = str(error.value)
    assert f"stage {stage!r}" in message
    assert f"key {key!r}" in message
    assert problem in message


@pytest.mark.parametrize("address", ["ops@example.com", "first.last+etl@mail.example.co.uk"])
def test_an_alarm_email_is_optional_and_kept_as_given(address):
    assert load_stage(STAGES, "dev").alarm_email is None
    assert load_stage(stages_with("dev", alarm_email=address), "dev").alarm_email == address


def test_a_misspelled_key_is_rejected_not_ignored():
    with pytest.raises(ConfigError, match=r"stage 'dev': unknown keys \['log_retention'\]"):
        load_stage(stages_with("dev", log_retention=14), "dev")


def test_a_stage_that_is_not_an_object_is_rejected():
    with pytest.raises(ConfigError, match=r"stage 'dev': settings must be an object"):
        load_stage({"dev": ["allowed_chat_ids"]}, "dev")

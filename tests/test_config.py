"""Stage configuration: cdk.json's stages parse, and every unusable setting fails naming the stage and the key."""

from __future__ import annotations

import json
import subprocess
import sys
from argparse import Namespace
from datetime import date, datetime, timedelta, timezone

import pytest

import stacks.config
from lambdas.ingest.metrics import namespace
from stacks.config import (
    LOG_RETENTION_DAYS, PROJECT, PROJECT_ROOT, ConfigError, StageConfig, load_from_cdk_json, load_stage, main,
    read_stages, stage_names,
)
from tests.stage_settings import CDK_CONTEXT, STAGES, stages_with
from tools.cli import CommandError, stage_config

UTC_TODAY = datetime.now(timezone.utc).date()


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
        raw_transition_days=30, raw_expiration_days=None, raw_batch_seconds=60, removal_policy="retain",
        lambda_architecture="arm64",
        log_retention_days=30, api_throttle_rate=50.0, api_throttle_burst=100,
        allowed_updates=("message", "edited_message", "channel_post", "edited_channel_post"),
        webhook_max_connections=40, etl_schedule_local_time="01:00", etl_memory_mb=1024, etl_timeout_minutes=15,
        etl_read_concurrency=32, etl_engine="lambda", alarm_email=None, analytics_start_date="2026-01-01",
        athena_results_expiration_days=7, athena_bytes_scanned_cutoff=1_073_741_824, no_updates_alarm_hours=24,
        raw_window_days=3, github_repository=None, show_member_names=True, webhook_forwarded=False,
        enriched_expiration_days=None, noncurrent_version_days=7, analyst_access="full", pseudonymized_text="keep",
    )
    assert (config.etl_schedule_hour, config.etl_schedule_minute) == (1, 0)
    assert not config.etl_engine_is_athena
    assert config.metrics_namespace == namespace(PROJECT, "qa") == "TelegramLake/qa"


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
        ("dev", {"timezone": "America/Sao_Paolo"}, "timezone", "(did you mean 'America/Sao_Paulo'?)"),
        ("dev", {"timezone": "UTC-3"}, "timezone", "unknown IANA time zone"),
        # Python's zoneinfo knows all of these; Athena, EventBridge Scheduler or the Lambdas' tzdata do not.
        ("dev", {"timezone": "EST"}, "timezone", "unknown IANA time zone 'EST'"),
        ("dev", {"timezone": "MST"}, "timezone", "unknown IANA time zone"),
        ("dev", {"timezone": "HST"}, "timezone", "unknown IANA time zone"),
        ("dev", {"timezone": "ROC"}, "timezone", "unknown IANA time zone"),
        ("dev", {"timezone": "Factory"}, "timezone", "unknown IANA time zone"),
        ("dev", {"timezone": "localtime"}, "timezone", "unknown IANA time zone"),
        ("dev", {"timezone": "right/America/Sao_Paulo"}, "timezone", "unknown IANA time zone"),
        ("dev", {"timezone": "posix/America/Sao_Paulo"}, "timezone", "unknown IANA time zone"),
        ("dev", {"timezone": "Europe/Kyiv"}, "timezone", "unknown IANA time zone"),
        ("dev", {"timezone": "America/Ciudad_Juarez"}, "timezone", "unknown IANA time zone"),
        ("dev", {"timezone": "america/sao_paulo"}, "timezone", "(did you mean 'America/Sao_Paulo'?)"),
        ("dev", {"timezone": "America/Sao_Paulo\n"}, "timezone", "unknown IANA time zone"),
        ("dev", {"timezone": ["America/Sao_Paulo"]}, "timezone", "unknown IANA time zone"),
        ("dev", {"raw_transition_days": -1}, "raw_transition_days", "must be >= 0"),
        ("dev", {"raw_transition_days": "30"}, "raw_transition_days", "must be an integer"),
        ("dev", {"raw_expiration_days": -5}, "raw_expiration_days", "must be >= 1"),
        ("dev", {"raw_expiration_days": 30}, "raw_expiration_days", "after raw_transition_days"),
        ("dev", {"raw_expiration_days": "365"}, "raw_expiration_days", "must be an integer"),
        ("dev", {"enriched_expiration_days": 0}, "enriched_expiration_days", "must be >= 1"),
        ("dev", {"enriched_expiration_days": "never"}, "enriched_expiration_days", "must be an integer"),
        ("dev", {"noncurrent_version_days": 0}, "noncurrent_version_days", "must be >= 1"),
        ("dev", {"analyst_access": "anonymous"}, "analyst_access", "must be one of full, pseudonymized"),
        ("dev", {"analyst_access": "pseudonymized", "pseudonymized_text": "hash"}, "pseudonymized_text",
         "must be one of keep, drop"),
        ("dev", {"pseudonymized_text": "drop"}, "pseudonymized_text", "applies only with analyst_access 'pseudonymized'"),
        ("dev", {"athena_results_expiration_days": 0}, "athena_results_expiration_days", "must be >= 1"),
        ("dev", {"lambda_architecture": "aarch64"}, "lambda_architecture", "must be one of arm64, x86_64"),
        ("dev", {"removal_policy": "snapshot"}, "removal_policy", "must be one of retain, destroy"),
        ("dev", {"etl_engine": "glue"}, "etl_engine", "must be one of lambda, athena, got 'glue'"),
        ("dev", {"etl_engine": "Athena"}, "etl_engine", "must be one of lambda, athena"),
        ("dev", {"etl_engine": ["athena"]}, "etl_engine", "must be one of lambda, athena"),
        ("prod", {"removal_policy": "destroy"}, "removal_policy", "prod always retains data"),
        ("dev", {"log_retention_days": 10}, "log_retention_days", "CloudWatch's values"),
        ("dev", {"api_throttle_rate": 0}, "api_throttle_rate", "positive number"),
        ("dev", {"api_throttle_rate": float("nan")}, "api_throttle_rate", "positive number"),
        ("dev", {"api_throttle_rate": float("inf")}, "api_throttle_rate", "positive number"),
        ("dev", {"api_throttle_rate": True}, "api_throttle_rate", "positive number"),
        ("dev", {"api_throttle_rate": "20"}, "api_throttle_rate", "positive number"),
        ("dev", {"api_throttle_burst": 0}, "api_throttle_burst", "must be >= 1"),
        ("dev", {"api_throttle_burst": True}, "api_throttle_burst", "must be an integer"),
        ("dev", {"api_throttle_burst": 40.0}, "api_throttle_burst", "must be an integer"),
        ("dev", {"etl_memory_mb": float("inf")}, "etl_memory_mb", "must be an integer"),
        ("dev", {"no_updates_alarm_hours": False}, "no_updates_alarm_hours", "must be an integer"),
        ("dev", {"allowed_chat_ids": [0]}, "allowed_chat_ids", "0 is not a Telegram chat id"),
        ("dev", {"allowed_chat_ids": [-(2**52)]}, "allowed_chat_ids", "at most 52 bits"),
        ("dev", {"allowed_chat_ids": [2**52]}, "allowed_chat_ids", "at most 52 bits"),
        ("dev", {"allowed_updates": ["message", "story"]}, "allowed_updates", "unknown update types ['story']"),
        ("dev", {"allowed_updates": "message"}, "allowed_updates", "non-empty list"),
        ("dev", {"allowed_updates": ["message", "poll", "message"]}, "allowed_updates", "['message'] more than once"),
        ("dev", {"allowed_updates": ["poll", "inline_query"]}, "allowed_updates", "all chat-less update types"),
        ("dev", {"allowed_updates": ["poll_answer"]}, "allowed_updates", "nothing would ever be stored"),
        ("dev", {"etl_schedule_local_time": "25:00"}, "etl_schedule_local_time", "24-hour local time"),
        ("dev", {"etl_schedule_local_time": "01:00\n"}, "etl_schedule_local_time", "24-hour local time"),
        ("dev", {"etl_schedule_local_time": "1:00"}, "etl_schedule_local_time", "24-hour local time"),
        ("dev", {"etl_schedule_local_time": "01:00:00"}, "etl_schedule_local_time", "24-hour local time"),
        ("dev", {"etl_schedule_local_time": 100}, "etl_schedule_local_time", "24-hour local time"),
        ("dev", {"etl_timeout_minutes": 16}, "etl_timeout_minutes", "must be <= 15"),
        ("dev", {"analytics_start_date": "2026-13-01"}, "analytics_start_date", "date YYYY-MM-DD"),
        # date.fromisoformat accepts the next three; Athena's partition projection (yyyy-MM-dd) does not.
        ("dev", {"analytics_start_date": "20260101"}, "analytics_start_date", "date YYYY-MM-DD"),
        ("dev", {"analytics_start_date": "2026-W01-1"}, "analytics_start_date", "date YYYY-MM-DD"),
        ("dev", {"analytics_start_date": "2026-1-5"}, "analytics_start_date", "date YYYY-MM-DD"),
        ("dev", {"analytics_start_date": "2026-01-01\n"}, "analytics_start_date", "date YYYY-MM-DD"),
        ("dev", {"analytics_start_date": 20260101}, "analytics_start_date", "date YYYY-MM-DD"),
        ("dev", {"analytics_start_date": str(UTC_TODAY + timedelta(days=1))}, "analytics_start_date", "is after today"),
        ("dev", {"account": ""}, "account", "non-empty string"),
        ("dev", {"account": 123456789012}, "account", "non-empty string"),
        ("dev", {"account": "12345678901"}, "account", "12-digit AWS account id"),
        ("dev", {"account": "1234567890123"}, "account", "12-digit AWS account id"),
        ("dev", {"account": "12345678901a"}, "account", "12-digit AWS account id"),
        ("dev", {"account": "123456789012\n"}, "account", "12-digit AWS account id"),
        ("dev", {"account": "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662"}, "account", "12-"),
        ("dev", {"region": "us-east"}, "region", "AWS region name"),
        ("dev", {"region": "US-EAST-1"}, "region", "AWS region name"),
        ("dev", {"region": "useast1"}, "region", "AWS region name"),
        ("dev", {"region": "us-east-1\n"}, "region", "AWS region name"),
        ("dev", {"region": " us-east-1"}, "region", "AWS region name"),
        ("dev", {"region": "us-middle-1"}, "region", "AWS region name"),
        ("dev", {"region": "us--1"}, "region", "AWS region name"),
        ("dev", {"region": "us-east-0"}, "region", "AWS region name"),
        ("dev", {"region": "us-east-1a"}, "region", "AWS region name"),
        ("dev", {"alarm_email": ""}, "alarm_email", "non-empty string"),
        ("dev", {"alarm_email": ["ops@example.com"]}, "alarm_email", "non-empty string"),
        ("dev", {"alarm_email": "ops.example.com"}, "alarm_email", "must be an email address"),
        ("dev", {"alarm_email": "ops@example"}, "alarm_email", "must be an email address"),
        ("dev", {"alarm_email": "ops@@example.com"}, "alarm_email", "must be an email address"),
        ("dev", {"alarm_email": "ops@example..com"}, "alarm_email", "must be an email address"),
        # Characters nobody sees in cdk.json, each named: space, controls, zero-width and bidi marks, separators.
        ("dev", {"alarm_email": "ops team@example.com"}, "alarm_email", "invisible or space characters (U+0020)"),
        ("dev", {"alarm_email": "ops@example.com\n"}, "alarm_email", "invisible or space characters (U+000A)"),
        ("dev", {"alarm_email": "ops@exa\x00mple.com"}, "alarm_email", "(U+0000)"),
        ("dev", {"alarm_email": "ops\x85@example.com"}, "alarm_email", "(U+0085)"),
        ("dev", {"alarm_email": "ops@example.com\u200b"}, "alarm_email", "(U+200B)"),
        ("dev", {"alarm_email": "\ufeffops@example.com"}, "alarm_email", "(U+FEFF)"),
        ("dev", {"alarm_email": "ops\u202e@example.com"}, "alarm_email", "(U+202E)"),
        ("dev", {"alarm_email": "ops@example\u2028.com"}, "alarm_email", "(U+2028)"),
        ("dev", {"alarm_email": "ops@example\u2029.com"}, "alarm_email", "(U+2029)"),
        ("dev", {"alarm_email": "ops\u00a0@example.com"}, "alarm_email", "(U+00A0)"),
        ("dev", {"alarm_email": "o\u2060ps@ex\u200dample.com"}, "alarm_email", "(U+200D, U+2060)"),
        ("dev", {"github_repository": ""}, "github_repository", "non-empty string"),
        ("dev", {"github_repository": ["octo-org/lake"]}, "github_repository", "non-empty string"),
        ("dev", {"github_repository": "octo-org"}, "github_repository", "GitHub repository 'owner/name'"),
        ("dev", {"github_repository": "https://github.com/octo-org/lake"}, "github_repository", "'owner/name'"),
        ("dev", {"github_repository": "octo-org/lake/sub"}, "github_repository", "'owner/name'"),
        # `:` would let the setting change which field of the OIDC `sub` claim the role trusts.
        ("dev", {"github_repository": "octo-org/lake:environment:prod"}, "github_repository", "'owner/name'"),
        ("dev", {"github_repository": "octo-org/lake*"}, "github_repository", "'owner/name'"),
        ("dev", {"github_repository": "octo-org/lake\n"}, "github_repository", "'owner/name'"),
        ("dev", {"github_repository": "-octo/lake"}, "github_repository", "'owner/name'"),
        ("dev", {"github_repository": "octo--org/lake"}, "github_repository", "'owner/name'"),
        ("dev", {"github_repository": "o" * 40 + "/lake"}, "github_repository", "'owner/name'"),
        ("dev", {"github_repository": "octo-org/" + "r" * 101}, "github_repository", "'owner/name'"),
        ("dev", {"github_repository": "octo-org/.."}, "github_repository", "'owner/name'"),
        # A clone URL's suffix: no OIDC token ever names the repository so.
        ("dev", {"github_repository": "octo-org/lake.git"}, "github_repository", "without `.git` ('octo-org/lake')"),
        ("dev", {"github_repository": "octo-org/lake.GIT"}, "github_repository", "without `.git`"),
        # Only JSON's booleans: Python would read any non-empty string, and any number but 0, as true.
        ("dev", {"show_member_names": "false"}, "show_member_names", "must be true or false, got 'false'"),
        ("dev", {"show_member_names": 0}, "show_member_names", "must be true or false, got 0"),
        ("dev", {"show_member_names": [True]}, "show_member_names", "must be true or false, got [True]"),
        ("dev", {"webhook_forwarded": "yes"}, "webhook_forwarded", "must be true or false, got 'yes'"),
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


@pytest.mark.parametrize(
    "repository",
    ["octo-org/telegram-lake", "Octo/lake.data_v2", "o" * 39 + "/" + "r" * 100, "octo/git", "octo/lake.gitx"],
)
def test_a_github_repository_is_optional_and_kept_as_given(repository):
    assert load_stage(STAGES, "dev").github_repository is None
    assert load_stage(stages_with("dev", github_repository=repository), "dev").github_repository == repository


@pytest.mark.parametrize("shown", [True, False])
def test_member_names_are_shown_unless_the_stage_says_false(shown):
    assert load_stage(STAGES, "dev").show_member_names is True
    assert load_stage(stages_with("dev", show_member_names=shown), "dev").show_member_names is shown


def test_the_etl_engine_is_chosen_per_stage_dev_shows_athena_and_prod_keeps_the_lambda():
    dev, prod = load_stage(STAGES, "dev"), load_stage(STAGES, "prod")

    assert (dev.etl_engine, dev.etl_engine_is_athena) == ("athena", True)
    assert (prod.etl_engine, prod.etl_engine_is_athena) == ("lambda", False)
    assert not load_stage(stages_with("dev", etl_engine="lambda"), "dev").etl_engine_is_athena


def test_a_misspelled_key_is_rejected_not_ignored():
    with pytest.raises(ConfigError, match=r"stage 'dev': unknown keys \['log_retention'\]"):
        load_stage(stages_with("dev", log_retention=14), "dev")


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("create_github_oidc_providr", " (did you mean 'create_github_oidc_provider'?)"),
        ("create_github_oidc", " (did you mean 'create_github_oidc_provider'?)"),
        ("create-github-oidc-provider", " (did you mean 'create_github_oidc_provider'?)"),
        ("createGithubOidcProvider", " (did you mean 'create_github_oidc_provider'?)"),
        ("Stages", " (did you mean 'stages'?)"),
        ("STAGE", " (did you mean 'stage'?)"),
        ("allowed_chat_ids", " (a stage setting: it goes in `stages.<stage>`)"),
        ("alarm_mail", ""),
    ],
)
def test_a_top_level_context_key_that_looks_like_the_projects_is_refused_not_ignored(monkeypatch, tmp_path, key, hint):
    monkeypatch.setattr(
        stacks.config, "CDK_JSON", write_cdk_json(tmp_path, json.dumps({"context": {**CDK_CONTEXT, key: True}}))
    )
    expected = f"unknown key {key!r} in the CDK context{hint}: the project reads only stages, stage, "

    with pytest.raises(ConfigError) as error:
        load_from_cdk_json("dev")
    assert str(error.value).startswith(expected)
    with pytest.raises(CommandError, match="^unknown key"):
        stage_config(Namespace(stage="dev"))


@pytest.mark.parametrize("key", [
    "@aws-cdk/core:newStyleStackSynthesis", "aws:cdk:bundling-stacks", "aws:cdk:toolkit:default-region",
    "cli-telemetry", "acknowledged-issue-numbers", "availability-zones:account=123456789012:region=us-east-1",
])
def test_the_cdks_own_context_keys_pass(key):
    assert stacks.config.check_context_keys({**CDK_CONTEXT, key: True}) is None


def test_a_stage_that_is_not_an_object_is_rejected():
    with pytest.raises(ConfigError, match=r"stage 'dev': settings must be an object"):
        load_stage({"dev": ["allowed_chat_ids"]}, "dev")


@pytest.mark.parametrize("region", [
    "us-east-1", "sa-east-1", "us-gov-west-1", "ap-southeast-2", "eu-central-2", "cn-north-1", "cn-northwest-1",
    "il-central-1", "mx-central-1", "ca-west-1", "us-isob-east-1",
])
def test_well_formed_regions_and_a_12_digit_account_are_accepted(region):
    config = load_stage(stages_with("dev", account="123456789012", region=region), "dev")

    assert (config.account, config.region) == ("123456789012", region)


# Every numeric setting with its lowest and highest accepted value (other settings changed so that only the
# bound under test can refuse): dropping or loosening any bound fails a test.
BOUNDS = [
    ("raw_transition_days", 0, 36_500, {"raw_expiration_days": None}),
    ("enriched_expiration_days", 1, 36_500, {}),
    ("noncurrent_version_days", 1, 36_500, {}),
    ("log_retention_days", 1, 3653, {}),
    ("api_throttle_burst", 1, 5_000, {}),
    ("webhook_max_connections", 1, 100, {}),
    ("etl_memory_mb", 128, 10_240, {}),
    ("etl_timeout_minutes", 1, 15, {}),
    ("etl_read_concurrency", 1, 256, {}),
    ("athena_results_expiration_days", 1, 36_500, {}),
    ("athena_bytes_scanned_cutoff", 10_485_760, 2**63 - 1, {}),
    ("no_updates_alarm_hours", 0, 168, {}),
    ("raw_window_days", 1, 31, {}),
    ("raw_batch_seconds", 60, 900, {}),  # Firehose's buffering interval with dynamic partitioning
]


@pytest.mark.parametrize(("key", "lowest", "highest", "others"), BOUNDS, ids=[bound[0] for bound in BOUNDS])
def test_every_integer_setting_accepts_exactly_its_range(key, lowest, highest, others):
    for value in (lowest, highest):
        assert getattr(load_stage(stages_with("dev", **others, **{key: value}), "dev"), key) == value
    with pytest.raises(ConfigError, match=rf"stage 'dev', key '{key}': must be >= {lowest}, got {lowest - 1}$"):
        load_stage(stages_with("dev", **others, **{key: lowest - 1}), "dev")
    with pytest.raises(ConfigError, match=rf"stage 'dev', key '{key}': must be <= {highest}, got {highest + 1}$"):
        load_stage(stages_with("dev", **others, **{key: highest + 1}), "dev")


def test_raw_updates_outlive_what_the_compaction_and_the_up_to_the_minute_window_read():
    """The window reads raw_window_days days back, the day before them and tomorrow in UTC; the compaction of a
    day reads it and the day before, the morning after: a shorter raw retention is a synth error saying so."""
    for window, shortest in ((1, 4), (3, 6), (31, 34)):
        settings = {"raw_transition_days": 0, "raw_window_days": window}
        assert load_stage(stages_with("dev", **settings, raw_expiration_days=shortest), "dev").raw_expiration_days == (
            shortest
        )
        with pytest.raises(
            ConfigError,
            match=rf"key 'raw_expiration_days': {shortest - 1} days is shorter than what the compaction and the "
            rf"up-to-the-minute window need: raw_window_days \({window}\) \+ 3 .* = {shortest} days; set at least "
            rf"{shortest}$",
        ):
            load_stage(stages_with("dev", **settings, raw_expiration_days=shortest - 1), "dev")
    assert load_stage(stages_with("dev", raw_expiration_days=36_500), "dev").raw_expiration_days == 36_500
    with pytest.raises(ConfigError, match=r"key 'raw_expiration_days': must be <= 36500, got 36501$"):
        load_stage(stages_with("dev", raw_expiration_days=36_501), "dev")


def test_retention_defaults_keep_the_data_and_shorten_what_lingers():
    """Raw updates and compacted days are kept until a stage says otherwise; older versions and query results,
    copies of the same text, go after a week; a null is the default."""
    config = load_stage(stages_with("dev", raw_expiration_days=None, athena_results_expiration_days=None), "dev")

    assert (config.raw_expiration_days, config.enriched_expiration_days) == (None, None)
    assert (config.noncurrent_version_days, config.athena_results_expiration_days) == (7, 7)
    assert load_stage(stages_with("dev", enriched_expiration_days=400), "dev").enriched_expiration_days == 400


def test_analysts_get_the_full_tables_unless_the_stage_pseudonymizes_and_text_is_kept_unless_dropped():
    full = load_stage(STAGES, "dev")
    pseudonymized = load_stage(stages_with("dev", analyst_access="pseudonymized"), "dev")
    without_text = load_stage(stages_with("dev", analyst_access="pseudonymized", pseudonymized_text="drop"), "dev")

    assert (full.analyst_access, full.pseudonymized) == ("full", False)
    assert (pseudonymized.pseudonymized, pseudonymized.pseudonymized_text) == (True, "keep")
    assert without_text.pseudonymized_text == "drop"
    assert pseudonymized.analyst_workgroup == "telegram-lake-dev-analysts"


def test_api_throttle_rate_is_a_positive_finite_number_up_to_the_account_quota():
    for value in (0.5, 10_000):
        assert load_stage(stages_with("dev", api_throttle_rate=value), "dev").api_throttle_rate == value
    with pytest.raises(ConfigError, match=r"key 'api_throttle_rate': must be <= 10000, got 10000.5$"):
        load_stage(stages_with("dev", api_throttle_rate=10_000.5), "dev")
    with pytest.raises(ConfigError, match=r"key 'api_throttle_rate': must be a positive number, got -1"):
        load_stage(stages_with("dev", api_throttle_rate=-1), "dev")


def test_log_retention_must_be_one_of_cloudwatchs_values():
    for days in range(1, LOG_RETENTION_DAYS[-1] + 1):
        if days in LOG_RETENTION_DAYS:
            assert load_stage(stages_with("dev", log_retention_days=days), "dev").log_retention_days == days
        else:
            with pytest.raises(ConfigError, match=r"key 'log_retention_days': must be one of CloudWatch's values"):
                load_stage(stages_with("dev", log_retention_days=days), "dev")


def test_the_no_updates_alarm_defaults_to_a_day_and_0_turns_it_off():
    assert load_stage(stages_with("dev", no_updates_alarm_hours=None), "dev").no_updates_alarm_hours == 24
    assert load_stage(stages_with("dev", no_updates_alarm_hours=0), "dev").no_updates_alarm_hours == 0


def test_allowed_updates_may_mix_chat_less_types_with_types_that_have_a_chat():
    config = load_stage(stages_with("dev", allowed_updates=["poll", "message", "callback_query"]), "dev")

    assert config.allowed_updates == ("poll", "message", "callback_query")


def test_analytics_can_start_today_but_not_tomorrow_in_utc(monkeypatch):
    """Partition projection evaluates its range in UTC: a start after UTC's today shows nothing."""
    monkeypatch.setattr(stacks.config, "_utc_today", lambda: date(2026, 3, 1))

    assert load_stage(stages_with("dev", analytics_start_date="2026-03-01"), "dev").analytics_start_date == "2026-03-01"
    with pytest.raises(ConfigError, match=r"key 'analytics_start_date': 2026-03-02 is after today \(2026-03-01, UTC\)"):
        load_stage(stages_with("dev", analytics_start_date="2026-03-02"), "dev")


@pytest.mark.parametrize(
    ("zone", "local_time", "skipped"),
    [
        ("Europe/London", "01:30", "01:00-01:59"),
        ("America/New_York", "02:15", "02:00-02:59"),
        ("America/New_York", "02:00", "02:00-02:59"),
        ("America/New_York", "02:59", "02:00-02:59"),
        ("America/Santiago", "00:30", "00:00-00:59"),  # clocks jump at midnight there
        ("Australia/Lord_Howe", "02:15", "02:00-02:29"),  # a half-hour daylight-saving shift
    ],
)
def test_a_schedule_time_the_spring_forward_day_skips_is_refused_saying_which_times_are_safe(zone, local_time, skipped):
    """EventBridge Scheduler skips a run whose local time does not exist that day: the day is never compacted."""
    with pytest.raises(ConfigError) as error:
        load_stage(stages_with("dev", timezone=zone, etl_schedule_local_time=local_time), "dev")

    assert str(error.value) == (
        f"stage 'dev', key 'etl_schedule_local_time': {local_time} does not exist every day in {zone}, so "
        f"EventBridge Scheduler would skip that day's run: {skipped} is skipped on the spring-forward day in "
        f"{zone}; pick a time outside it"
    )


@pytest.mark.parametrize(
    ("zone", "local_time"),
    [
        ("America/Sao_Paulo", "01:00"),  # no daylight saving since 2019
        ("America/Sao_Paulo", "00:30"),
        ("America/New_York", "03:00"),
        ("America/New_York", "01:59"),
        ("America/New_York", "01:30"),  # the fall overlap: Scheduler runs once
        ("Europe/London", "02:00"),
        ("Europe/Berlin", "23:45"),
        ("UTC", "02:30"),
    ],
)
def test_a_schedule_time_that_exists_every_day_is_accepted(zone, local_time):
    config = load_stage(stages_with("dev", timezone=zone, etl_schedule_local_time=local_time), "dev")

    assert (config.timezone, config.etl_schedule_local_time) == (zone, local_time)


@pytest.mark.parametrize(
    ("zone", "local_time", "today", "gap"),
    [
        # Brazil's last spring-forward day, 2018-11-04, is still ahead; from 2019 on São Paulo never skips again.
        ("America/Sao_Paulo", "00:30", date(2018, 6, 1), "00:00-00:59"),
        ("America/Sao_Paulo", "00:30", date(2019, 6, 1), None),
        # Indianapolis kept no daylight saving from 1971 to 2005, then sprang forward at 02:00 from 2006:
        # 20 years ahead of 1986 reaches it, 20 years ahead of 1985 does not.
        ("America/Indiana/Indianapolis", "02:30", date(1986, 6, 1), "02:00-02:59"),
        ("America/Indiana/Indianapolis", "02:30", date(1985, 6, 1), None),
    ],
)
def test_the_schedule_must_exist_every_day_from_this_year_to_20_years_ahead(monkeypatch, zone, local_time, today, gap):
    monkeypatch.setattr(stacks.config, "_utc_today", lambda: today)
    stages = stages_with("dev", timezone=zone, etl_schedule_local_time=local_time,
                         analytics_start_date=f"{today.year}-01-01")

    if gap:
        with pytest.raises(ConfigError, match=rf"{gap} is skipped on the spring-forward day in {zone}"):
            load_stage(stages, "dev")
    else:
        assert load_stage(stages, "dev").etl_schedule_local_time == local_time


def test_an_empty_stage_name_is_an_error_not_dev():
    """`--stage ''` and `make deploy STAGE=` (`-c stage=`) must not silently mean dev; no stage does."""
    assert load_stage(STAGES, None).stage == "dev"
    with pytest.raises(ConfigError, match=r"^stage name '' must be 1-20 lower-case letters"):
        load_stage(STAGES, "")
    with pytest.raises(CommandError, match=r"^stage name '' must be"):
        stage_config(Namespace(stage=""))


@pytest.mark.parametrize("name", ["dev\n", "Dev", "1dev", "dev_1", "a" * 21])
def test_a_malformed_stage_name_is_refused_whether_asked_for_or_configured(name):
    with pytest.raises(ConfigError, match=r"stage name .* must be 1-20 lower-case letters"):
        load_stage(STAGES, name)
    with pytest.raises(ConfigError, match=r"stage name .* must be 1-20 lower-case letters"):
        load_stage({**STAGES, name: STAGES["dev"]}, "dev")


def write_cdk_json(tmp_path, text: str):
    path = tmp_path / "cdk.json"
    path.write_text(text, encoding="utf-8")
    return path


def cdk_json_with_stages(stages) -> str:
    return json.dumps({"app": "python3 app.py", "context": {**CDK_CONTEXT, "stages": stages}})


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"context": {"stages": {"dev": ', r"^cdk.json is not valid JSON: Expecting value: line 1 column 32 \(char 31\)"),
        ("", r"^cdk.json is not valid JSON"),
        ('{"context": {"stages": {"dev": {"allowed_chat_ids": [1], "api_throttle_rate": NaN}}}}',
         r"^cdk.json is not valid JSON: NaN is not a JSON number"),
        ('{"context": {"stages": {"dev": {"allowed_chat_ids": [1], "api_throttle_rate": Infinity}}}}',
         r"^cdk.json is not valid JSON: Infinity is not a JSON number"),
        ("[]", r"^cdk.json has no `context.stages` object"),
        ('{"app": "python3 app.py"}', r"^cdk.json has no `context.stages` object"),
        ('{"context": []}', r"^cdk.json has no `context.stages` object"),
        ('{"context": {"cli-telemetry": false}}', r"^cdk.json has no `context.stages` object"),
        ('{"context": {"stages": ["dev"]}}', r"^`stages` in the CDK context \(cdk.json\) must be an object"),
        ('{"context": {"stages": {}}}', r"^`stages` in the CDK context \(cdk.json\) must be an object"),
        ('{"context": {"stages": {"Dev": {}}}}', r"^stage name 'Dev' must be"),
    ],
)
def test_a_broken_cdk_json_is_a_config_error_in_every_tool_never_a_traceback(monkeypatch, tmp_path, text, problem):
    path = write_cdk_json(tmp_path, text)
    monkeypatch.setattr(stacks.config, "CDK_JSON", path)

    with pytest.raises(ConfigError, match=problem):
        load_from_cdk_json("dev")
    with pytest.raises(CommandError, match=problem):
        stage_config(Namespace(stage="dev"))


def test_a_missing_or_undecodable_cdk_json_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"^cannot read .*cdk.json: No such file or directory$"):
        read_stages(tmp_path / "cdk.json")
    path = tmp_path / "cdk.json"
    path.write_bytes(b'{"context": {"stages": {"dev": "\xff"}}}')
    with pytest.raises(ConfigError, match=r"^cdk.json is not valid JSON: 'utf-8' codec can't decode"):
        read_stages(path)


def test_stage_names_are_listed_in_cdk_json_order():
    assert read_stages() == STAGES
    assert stage_names(STAGES) == ["dev", "prod"]


def test_the_makefile_lists_stages_with_the_system_python_and_no_third_party_package():
    """`python3 -m stacks.config stages` runs before the virtualenv exists: `-S` leaves site-packages out."""
    result = subprocess.run(
        [sys.executable, "-S", "-m", "stacks.config", "stages"], cwd=PROJECT_ROOT, capture_output=True, text=True,
        check=False,
    )

    assert (result.returncode, result.stdout, result.stderr) == (0, "dev\nprod\n", "")


def test_listing_the_stages_of_a_broken_cdk_json_exits_1_with_a_one_line_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(stacks.config, "CDK_JSON", write_cdk_json(tmp_path, '{"context": {"stages": {"qa": 1,'))

    assert main(["stages"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "error: cdk.json is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 33 (char 32)\n"
    )


def test_listing_the_stages_prints_one_name_a_line(monkeypatch, tmp_path, capsys):
    stages = {"qa": STAGES["dev"], "dev": STAGES["dev"], "prod-eu": STAGES["prod"]}
    monkeypatch.setattr(stacks.config, "CDK_JSON", write_cdk_json(tmp_path, cdk_json_with_stages(stages)))

    assert main(["stages"]) == 0
    assert capsys.readouterr().out == "qa\ndev\nprod-eu\n"

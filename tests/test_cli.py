"""What every command shares (tools/cli.py, tools/__main__.py): text from elsewhere printed as plain text, and
one `error:` line for what a command cannot use."""

from __future__ import annotations

import json
import unicodedata

import pytest
from moto import mock_aws

import analytics
import tools.__main__
from tools.cli import aws_configuration_problem, plain, plain_json
from tools.telegram import TOKEN_ENV

UNSHOWN = ("Cc", "Cf", "Cs", "Zl", "Zp")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Lake ☕ group", "Lake ☕ group"),
        ("[/r/python] group :smile:", "[/r/python] group :smile:"),  # markup and emoji codes are rich's business
        # A joiner inside an emoji draws it: it stays.
        ("Grupo dos 👩\u200d💻 e 🏳️\u200d🌈", "Grupo dos 👩\u200d💻 e 🏳️\u200d🌈"),
        ("\x1b[31mred\x1b[0m", "\\u001b[31mred\\u001b[0m"),  # ANSI colour
        ("\x1b]0;window title\x07", "\\u001b]0;window title\\u0007"),  # OSC: retitles the terminal
        ("a\x9b2Jb", "a\\u009b2Jb"),  # C1 CSI: clears the screen on terminals that read 8-bit controls
        ("del\x7f\x00", "del\\u007f\\u0000"),
        ("line\nnext\rover\ttab", "line\\nnext\\rover\\ttab"),
        ("invoice\u202egnp.exe", "invoice\\u202egnp.exe"),  # right-to-left override
        ("\u2066isolated\u2069 \u200fmark", "\\u2066isolated\\u2069 \\u200fmark"),
        ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
        ("a\u200db", "a\\u200db"),  # a joiner between letters hides nothing it joins: escaped
        ("para\u2028graph\u2029", "para\\u2028graph\\u2029"),
        ("lone \ud800", "lone \\ud800"),  # cannot be written in UTF-8 at all
        ("tag \U000e0041", "tag \\udb40\\udc41"),  # beyond the BMP: JSON's surrogate pair
    ],
)
def test_plain_escapes_what_would_act_on_the_terminal_and_leaves_the_rest(text, shown):
    assert plain(text) == shown
    assert json.loads(f'"{shown}"') == text  # each escape is JSON's: it reads back as the character


def test_every_control_format_separator_and_surrogate_character_is_escaped_on_its_own():
    unshown = [chr(code) for code in range(0x110000) if unicodedata.category(chr(code)) in UNSHOWN]
    assert len(unshown) > 2000
    escaped = [plain(char) for char in unshown]
    assert all(text.isascii() and text.isprintable() and text.startswith("\\") for text in escaped)


def test_plain_takes_any_value():
    assert plain(None) == "None" and plain(12.5) == "12.5"


def test_plain_json_reads_back_exactly_and_holds_nothing_a_terminal_acts_on():
    value = {"title": "\x1b[2J\u202eevil\u2028", "rows": [{"text": "olá 👩\u200d💻\nbye", "n": 1}], "none": None}

    shown = plain_json(value)

    assert json.loads(shown) == value
    assert "olá 👩\u200d💻" in shown  # not ASCII-escaped
    assert not any(unicodedata.category(char) in UNSHOWN for char in shown.replace("\n", "").replace("\u200d", ""))


# ---- every command: a saved query the loader refuses is one `error:` line


@pytest.mark.parametrize("argv", [
    ["query", "--list"],
    ["query", "daily_message_count"],
    ["report", "--local", "lake-that-is-never-read"],
    ["webhook", "set"],
    ["demo", "--days", "1", "--per-day", "1"],
    ["local", "up", "--poll"],
], ids=lambda argv: " ".join(argv[:2]))
def test_a_saved_query_the_loader_refuses_is_one_error_line_in_every_command_that_loads_them(
    argv, tmp_path, monkeypatch, capsys
):
    (tmp_path / "01_broken.sql").write_text("SELECT 1\n", encoding="utf-8")  # no question on its first line
    monkeypatch.setattr(analytics, "QUERY_DIR", tmp_path)
    monkeypatch.setenv(TOKEN_ENV, "123456789:AAH-never-used")
    monkeypatch.chdir(tmp_path)  # the demo's output folder

    code = tools.__main__.main(argv)

    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert err == (
        "error: the saved queries in analytics/ cannot be loaded: 01_broken.sql: the first line must be a `--` "
        "comment saying the question it answers\n"
    )


# ---- every command: the operator's AWS configuration, in one line


@pytest.fixture
def mistyped_profile(monkeypatch, tmp_path):
    """AWS_PROFILE names a profile the config file lacks. Under moto: a regression calls no real AWS."""
    config = tmp_path / "aws-config"
    config.write_text("[default]\nregion = us-east-1\n\n[profile prod]\nregion = eu-west-1\n", encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "prdo")
    monkeypatch.setenv(TOKEN_ENV, "123456789:AAH-never-used")
    with mock_aws():
        yield


PROFILE_NOT_FOUND = (
    "error: AWS profile 'prdo' not found in your AWS config (AWS_PROFILE); profiles there: default, prod\n"
)


@pytest.mark.parametrize("argv", [
    ["target"], ["status"], ["chats"], ["query", "daily_message_count"], ["report"], ["webhook", "set"],
    ["etl", "run", "--from", "2026-11-01"],
], ids=lambda argv: " ".join(argv[:2]))
def test_a_mistyped_aws_profile_is_one_error_line_in_every_command_that_reaches_aws(mistyped_profile, argv, capsys):
    assert tools.__main__.main([*argv, "--stage", "dev"]) == 1
    assert capsys.readouterr() == ("", PROFILE_NOT_FOUND)


@pytest.mark.parametrize("argv", [
    ["chats", "--local", "--raw-bucket", "raw"],
    ["query", "daily_message_count", "--local", "s3://enriched"],
], ids=lambda argv: " ".join(argv[:2]))
def test_a_client_made_outside_aws_session_is_guarded_by_the_entry_point(mistyped_profile, monkeypatch, argv, capsys):
    """`python -m tools` itself turns botocore's refusal of the configuration into one line, wherever the
    client was made (here the local modes', which need no account but read the same configuration)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # never reached: the session fails first
    assert tools.__main__.main(argv) == 1
    assert capsys.readouterr() == ("", PROFILE_NOT_FOUND)


def test_only_botocores_refusals_of_the_configuration_are_turned_into_a_line():
    from botocore.exceptions import ClientError, NoCredentialsError, ParamValidationError, ProfileNotFound

    assert aws_configuration_problem(ProfileNotFound(profile="x")).startswith("AWS profile 'x' not found")
    assert aws_configuration_problem(NoCredentialsError()).startswith("no AWS credentials")
    for other in (ValueError("x"), ParamValidationError(report="x"), ClientError({"Error": {}}, "GetObject")):
        assert aws_configuration_problem(other) is None  # a bug or a service's answer stays loud

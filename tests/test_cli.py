"""What every command shares (tools/cli.py): text from elsewhere printed as plain text."""

from __future__ import annotations

import json
import unicodedata

import pytest

from tools.cli import plain, plain_json

UNSHOWN = ("Cc", "Cf", "Cs", "Zl", "Zp")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Lake ☕ group", "Lake ☕ group"),
        ("[/r/python] group :smile:", "[/r/python] group :smile:"),  # markup and emoji codes are rich's business
        ("Grupo dos 👩\u200d💻 e 🏳️\u200d🌈", "Grupo dos 👩\u200d💻 e 🏳️\u200d🌈"),  # a joiner inside an emoji stays
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

"""The browser check's verdicts (tools/ci/browser.py), without a browser: what it calls a broken report.

The check itself runs in headless Chromium with `make check-report`, which CI runs after `make test`.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

import tools.ci.browser
from tools.ci.browser import HOSTILE_TEXTS, PageFacts, hostile_report, problems
from tests.test_report import Page

CHART = {"width": 900.0, "height": 350.0, "marks": 7}
GOOD = PageFacts(
    console=[],
    sections=[
        {"id": "daily_message_count", "charts": [CHART], "figures": 0, "empty": False},
        {"id": "messages_last_24_hours", "charts": [], "figures": 2, "empty": False},
        {"id": "reactions_per_day", "charts": [], "figures": 0, "empty": True},
    ],
    text="Telegram lake: stage dev " * 20,
    content="Telegram lake: stage dev " * 40,
    scripts=0,
    handlers=0,
    pwned=None,
    width=390,
    viewport=390,
)


def test_a_good_page_has_no_problem():
    assert problems(GOOD, required=["daily_message_count"]) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"console": ["file:///r.html - Refused to load the image"]}, "console error: file:///r.html"),
        ({"text": "   ", "content": ""}, "blank page"),
        ({"sections": []}, "no section"),
        (
            {"sections": [{"id": "top_commands", "charts": [], "figures": 0, "empty": False}]},
            "section top_commands: no chart",
        ),
        (
            {"sections": [{"id": "top_commands", "charts": [{**CHART, "height": 0.0}], "figures": 0, "empty": False}]},
            "section top_commands: a chart is not drawn",
        ),
        (
            {"sections": [{"id": "x", "charts": [{**CHART, "marks": 0}], "figures": 0, "empty": False}]},
            "a chart is not drawn",
        ),
        ({"scripts": 1}, "active content"),
        ({"handlers": 2}, "active content"),
        ({"pwned": "1"}, "active content"),
        ({"width": 640}, "wider than the window"),
    ],
)
def test_each_kind_of_broken_page_is_a_problem(change, expected):
    found = problems(replace(GOOD, **change))
    assert any(problem.startswith(expected) or expected in problem for problem in found), found


def test_a_required_section_that_is_missing_is_a_problem():
    assert problems(GOOD, required=["top_questions"]) == ["section top_questions: missing"]


def test_the_hostile_report_carries_every_hostile_text_as_text():
    page = Page(hostile_report())
    assert all(text in page.text for text in HOSTILE_TEXTS)
    assert not page.tags("script") and not page.tags("img") and not page.tags("style")[1:]
    assert not [attributes for _, attributes in page.elements if any(name.startswith("on") for name in attributes)]


def test_without_chromium_the_check_fails_and_says_what_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("CHROMIUM", str(tmp_path / "no-chromium"))
    code = tools.ci.browser.main(["check", str(tmp_path / "report.html")])
    err = capsys.readouterr().err
    assert code == 1 and "apt-get install -y chromium chromium-driver" in err

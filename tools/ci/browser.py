"""The analytics report in a real browser: Debian's headless Chromium, driven by Selenium and ChromeDriver.

    python -m tools.ci.browser check REPORT.html [--require SECTION ...]   # what `make check-report` runs
    python -m tools.ci.browser screenshot REPORT.html docs/report.png      # the README's picture

`check` fails (exit 1, one line per problem) on a console error (the page's Content-Security-Policy logs
every blocked script or request as one), a blank page, a section without its chart, a chart drawn at no
size, a page wider than a phone, or active content (a script element, an event-handler attribute). Before
the reports it is given, it proves that it can fail: a page with a blocked request must be caught, and a
report rendered from hostile rows (message text that is HTML and JavaScript) must show that text as text
and run none of it. Nothing here skips: without Chromium it says what to install and fails.

Chromium and ChromeDriver come from Debian (`apt-get install chromium chromium-driver`; `.ci/run` installs
them); a browser downloaded by a test tool does not run on these machines. CHROMIUM and CHROMEDRIVER
override the paths.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from tools.cli import CommandError

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Headless, and quiet on a machine whose only network is the package registries: no background requests.
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
)
DESKTOP = (1200, 1000)
PHONE = (390, 844)
SCREENSHOT = (1100, 1500)
MIN_TEXT = 200  # characters of visible text below which a page counts as blank
INSTALL = "install Debian's chromium and chromium-driver (as root: apt-get install -y chromium chromium-driver)"
# A marker the hostile rows try to set; a page that ran any of them has it.
PWNED = "__reportPwned"
HOSTILE_TEXTS = (
    f"<script>window.{PWNED}=1</script>?",
    f'<img src=x onerror="window.{PWNED}=2">?',
    f'"><svg onload="window.{PWNED}=3"><a href="javascript:alert(1)">x</a>?',
    "</title></text></svg><style>body{display:none}</style>?",
)

# The facts `problems` judges, read from the page as the browser laid it out.
FACTS_SCRIPT = """
const sections = [...document.querySelectorAll('main section')].map(section => ({
  id: section.id,
  charts: [...section.querySelectorAll('svg.chart')].map(svg => {
    const box = svg.getBoundingClientRect();
    return {width: box.width, height: box.height, marks: svg.querySelectorAll('rect').length};
  }),
  figures: section.querySelectorAll('.figures .figure').length,
  empty: section.querySelector('.empty') !== null,
}));
const handlers = [...document.querySelectorAll('*')].filter(
  element => [...element.attributes].some(attribute => attribute.name.toLowerCase().startsWith('on'))).length;
return {
  sections: sections,
  text: document.body ? document.body.innerText : '',
  content: document.body ? document.body.textContent : '',
  scripts: document.scripts.length,
  handlers: handlers,
  pwned: window.__reportPwned === undefined ? null : String(window.__reportPwned),
  width: document.documentElement.scrollWidth,
  viewport: window.innerWidth,
};
"""


@dataclass(frozen=True)
class PageFacts:
    console: list[str]  # the browser's log entries at SEVERE level
    sections: list[dict[str, Any]]  # id, charts (width, height, marks), figures, empty
    text: str  # the page's visible text
    content: str  # all its text, folded tables and tooltips included
    scripts: int
    handlers: int  # elements with an on... attribute
    pwned: str | None
    width: int  # the page's laid-out width
    viewport: int


def problems(facts: PageFacts, *, required: Sequence[str] = ()) -> list[str]:
    """Everything wrong with a rendered report, one line each; [] for a good page."""
    found = [f"console error: {message}" for message in facts.console]
    if len(facts.text.strip()) < MIN_TEXT:
        found.append(f"blank page: {len(facts.text.strip())} characters of visible text")
    if not facts.sections:
        found.append("no section: the report shows no saved query")
    for section in facts.sections:
        if not (section["charts"] or section["figures"] or section["empty"]):
            found.append(f"section {section['id']}: no chart")
        for chart in section["charts"]:
            if chart["width"] < 1 or chart["height"] < 1 or chart["marks"] < 1:
                found.append(f"section {section['id']}: a chart is not drawn ({chart})")
    shown = {section["id"] for section in facts.sections}
    found += [f"section {name}: missing" for name in required if name not in shown]
    if facts.scripts or facts.handlers or facts.pwned is not None:
        found.append(
            f"active content: {facts.scripts} script element(s), {facts.handlers} event-handler attribute(s), "
            f"marker {facts.pwned!r}"
        )
    if facts.width > facts.viewport + 1:
        found.append(f"wider than the window: {facts.width} px laid out in {facts.viewport} px")
    return found


class Browser:
    """One headless Chromium session for several pages."""

    def __init__(self, driver: Any):
        self.driver = driver

    def facts(self, page: Path, size: tuple[int, int]) -> PageFacts:
        self.driver.set_window_size(*size)
        self.driver.get_log("browser")  # forget the previous page's entries
        self.driver.get(page.resolve().as_uri())
        read = self.driver.execute_script(FACTS_SCRIPT)
        console = [entry["message"] for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]
        return PageFacts(console=console, **read)

    def screenshot(self, page: Path, out: Path, size: tuple[int, int]) -> Path:
        self.driver.set_window_size(*size)
        self.driver.get(page.resolve().as_uri())
        out.parent.mkdir(parents=True, exist_ok=True)
        if not self.driver.save_screenshot(str(out)):
            raise CommandError(f"Chromium could not write the screenshot {out}")
        return out


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium with a fresh profile, through Debian's ChromeDriver; CommandError when missing."""
    binary = os.environ.get("CHROMIUM", CHROMIUM)
    driver_path = os.environ.get("CHROMEDRIVER", CHROMEDRIVER)
    for path in (binary, driver_path):
        if not Path(path).is_file():
            raise CommandError(f"{path} not found: {INSTALL}")
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise CommandError("selenium is not installed: run `make setup` (requirements-dev.txt)") from None
    with tempfile.TemporaryDirectory(prefix="report-browser-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        try:
            driver = webdriver.Chrome(options=options, service=Service(driver_path))
        except WebDriverException as error:
            raise CommandError(f"Chromium did not start: {error.msg}") from None
        try:
            yield Browser(driver)
        finally:
            driver.quit()


def check(reports: Sequence[Path], required: Sequence[str]) -> dict[str, list[str]]:
    """The problems found by each check, by name: the self-test's, then each report's at desktop and phone
    widths. A check passed when its list is empty."""
    with chromium() as browser, tempfile.TemporaryDirectory(prefix="report-check-") as scratch:
        results = _self_test(browser, Path(scratch))
        for report in reports:
            for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
                name = f"{report} ({label})"
                results[name] = (
                    problems(browser.facts(report, size), required=required) if report.is_file() else ["no such file"]
                )
    return results


def _self_test(browser: Browser, scratch: Path) -> dict[str, list[str]]:
    """The check must catch a broken page, and a hostile report must render as text and run nothing."""
    broken = scratch / "broken.html"
    broken.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src \'none\'">'
        '</head><body><img src="https://example.invalid/chart.png" alt=""></body></html>',
        encoding="utf-8",
    )
    caught = problems(browser.facts(broken, DESKTOP))
    seen = any(problem.startswith("console error") for problem in caught)
    hostile = scratch / "hostile.html"
    hostile.write_text(hostile_report(), encoding="utf-8")
    facts = browser.facts(hostile, DESKTOP)
    return {
        "self-test: a blocked request is a console error": [] if seen else [f"not seen (saw {caught})"],
        "self-test: a hostile report shows its rows as text and runs nothing": problems(facts) + [
            f"{text!r} is not in the page as text" for text in HOSTILE_TEXTS if text not in facts.content
        ],
    }


def hostile_report() -> str:
    """A report whose rows are HTML and JavaScript, as a user could write them in a message."""
    from tools.operate.report_html import ReportContext, render_report

    hostile = HOSTILE_TEXTS
    answers = {
        "top_questions": (
            ["question", "times_asked", "users_asking"], [(text, 9 - rank, 1) for rank, text in enumerate(hostile)]
        ),
        "top_commands": (["command", "uses", "users"], [(f"/x{hostile[0]}", 3, 2)]),
        "daily_message_count": (["context_date", "message_amount"], [(date(2026, 11, 27), 4), (date(2026, 11, 28), 7)]),
        "most_reacted_messages": (["message_id", "text", "reactions"], [(1, hostile[1], 5), (2, hostile[2], 3)]),
    }
    context = ReportContext(
        stage="<b>dev</b>", zone="America/Sao_Paulo", first_day=date(2026, 11, 27), last_day=date(2026, 11, 28),
        source="hostile rows <script>", generated_at=datetime.now(timezone.utc),
    )
    return render_report(answers, {}, context)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ci.browser", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    checking = commands.add_parser("check", help="render reports in headless Chromium and fail on any problem")
    checking.add_argument("reports", nargs="+", type=Path)
    checking.add_argument("--require", nargs="*", default=[], metavar="SECTION",
                          help="saved queries whose sections every report must show")
    shooting = commands.add_parser("screenshot", help="a PNG of the top of a report, as a desktop browser shows it")
    shooting.add_argument("report", type=Path)
    shooting.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "screenshot":
            with chromium() as browser:
                print(browser.screenshot(args.report, args.out, SCREENSHOT))
            return 0
        results = check(args.reports, args.require)
    except CommandError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for name, found in results.items():
        print(f"{'FAIL' if found else 'ok  '} {name}")
        for problem in found:
            print(f"       {problem}")
    failed = sum(1 for found in results.values() if found)
    # The closing line in the form CI reads as a test run's result.
    print(f"check-report: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main())

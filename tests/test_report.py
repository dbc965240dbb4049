"""`python -m tools report`: one self-contained HTML page from the saved queries' answers.

The page is parsed back with the standard library's HTML parser, as a browser would tokenize it, so the
tests see the elements and text a browser would build: hostile message text stays text, every chart names
its saved query, zone and range, and nothing in the page reaches outside the file. The SQL range filter is
checked on DuckDB against a lake that holds only the range's days.
"""

from __future__ import annotations

import math
import re
import shutil
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.athena.models import athena_backends
from moto.core import DEFAULT_ACCOUNT_ID

import analytics
import tools.__main__
import tools.operate.report
from analytics import load_queries
from lambdas.common.layout import today
from stacks.config import load_from_cdk_json
from tests.analytics_dataset import Scenario, generate, write_lake
from tools.operate import svg
from tools.local.sql import open_lake
from tools.operate.report import limited_to_days, report_days, report_queries
from tools.operate.report_html import SECTION_QUERIES, ReportContext, column_kinds, render_report

CONFIG = load_from_cdk_json("dev")
CONTEXT = ReportContext(
    stage="dev", zone="America/Sao_Paulo", first_day=date(2026, 11, 20), last_day=date(2026, 11, 26),
    source="DuckDB over a test lake", generated_at=datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc),
)
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>"\'&?'
SCENARIO = Scenario("America/Sao_Paulo", date(2025, 12, 26))
DATABASE = "telegram_lake_test"


class Page(HTMLParser):
    """The elements (tag, attributes) and the text of a page, as an HTML tokenizer reads them."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[str] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.texts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.texts)

    def tags(self, name: str) -> list[dict[str, str | None]]:
        return [attributes for tag, attributes in self.elements if tag == name]


def render(answers, queries=None, context=CONTEXT) -> str:
    return render_report(answers, queries or {}, context)


def sections(markup: str) -> list[str]:
    return [attributes["id"] for attributes in Page(markup).tags("section")]


# --- the page ---------------------------------------------------------------------------------------------------


def test_hostile_text_from_the_data_and_the_context_is_text_never_markup():
    answers = {
        "top_questions": (["question", "times_asked", "users_asking"], [(HOSTILE, 3, 2), ("plain?", 1, 1)]),
        "most_reacted_messages": (["message_id", "text", "reactions"], [(7, HOSTILE, 4)]),
        "daily_message_count": (["context_date", HOSTILE], [(date(2026, 11, 20), 5)]),
    }
    context = replace(CONTEXT, stage="<b>dev</b>", source="a <script> folder")

    page = Page(render(answers, context=context))

    tags = {tag for tag, _ in page.elements}
    assert tags <= {
        "html", "head", "meta", "title", "style", "body", "header", "h1", "p", "nav", "a", "main", "section", "h2",
        "figure", "figcaption", "code", "details", "summary", "div", "table", "thead", "tbody", "tr", "th", "td",
        "svg", "rect", "text", "line", "footer", "span",
    }, tags
    assert not [attrs for _, attrs in page.elements if any(name.startswith("on") for name in attrs)]
    assert HOSTILE in page.text  # shown, whole, as the user wrote it (in the tables and tooltips)
    assert "<b>dev</b>" in page.text and "a <script> folder" in page.text


def test_the_page_allows_no_script_and_no_request_and_links_only_to_itself():
    answers = {"top_commands": (["command", "uses", "users"], [("/help", 3, 2)])}
    page = Page(render(answers))

    [policy] = [attrs["content"] for attrs in page.tags("meta") if attrs.get("http-equiv") == "Content-Security-Policy"]
    assert policy.startswith("default-src 'none'") and "script-src" not in policy
    assert [attrs["href"] for attrs in page.tags("a")] == ["#top_commands"]
    assert not [attrs for _, attrs in page.elements if {"src", "srcset", "action", "formaction"} & set(attrs)]
    assert not page.tags("link") and not page.tags("script") and not page.tags("img")


def test_every_chart_names_its_saved_query_time_zone_and_range_with_its_numbers_written():
    answers = {
        "daily_message_count": (
            ["context_date", "message_amount"], [(date(2026, 11, 21), 1234), (date(2026, 11, 20), 7)]
        ),
        "top_commands": (["command", "uses", "users"], [("/price", 58, 26), ("/help", 43, 28)]),
    }
    markup = render(answers)

    for name in answers:
        section = re.search(rf'<section id="{name}">.*?</section>', markup).group()
        [caption] = re.findall(r"<figcaption>(.*?)</figcaption>", section)
        assert f"<code>{name}</code>" in caption
        assert "America/Sao_Paulo" in caption and "2026-11-20 to 2026-11-26" in caption
    labels = Page(markup)
    assert {"1,234", "7", "58", "43"} <= set(labels.texts)  # written on the bars


def test_sections_follow_the_report_order_unknown_queries_are_skipped_and_absent_ones_named():
    answers = {
        "top_commands": (["command", "uses", "users"], [("/help", 3, 2)]),
        "daily_message_count": (["context_date", "message_amount"], [(date(2026, 11, 20), 5)]),
        "messages_per_user_per_day": (["user_id", "context_date", "message_amount"], [(1, date(2026, 11, 20), 5)]),
        "something_new": (["a"], [(1,)]),
    }
    markup = render(answers)

    assert sections(markup) == ["daily_message_count", "top_commands"]
    footer = Page(re.search(r"<footer>.*</footer>", markup).group()).text
    assert "reactions_per_day" in footer and "member_changes_per_day" in footer and "top_questions" in footer
    assert "something_new" not in markup and "messages_per_user_per_day" not in markup


def charts_of(markup: str, name: str) -> list[str]:
    return re.findall(r"<svg .*?</svg>", re.search(rf'<section id="{name}">.*?</section>', markup).group())


def bar_tooltips(chart: str) -> list[str]:
    return re.findall(r'<rect class="bar"[^>]*><title>([^<]*)</title>', chart)


def test_member_changes_add_up_the_chats_of_a_day_and_a_net_loss_hangs_below_zero():
    answers = {
        "member_changes_per_day": (
            ["context_date", "chat_id", "joins", "leaves", "net_change"],
            [("2026-11-22", -100, 1, 3, -2), ("2026-11-22", -200, 2, 0, 2), ("2026-11-21", -100, 4, 1, 3)],
        ),  # Athena returns days as text
    }
    joins, leaves, net = charts_of(render(answers), "member_changes_per_day")  # the chat id is not charted

    assert bar_tooltips(joins) == ["2026-11-21: 4", "2026-11-22: 3"]  # oldest first, both chats added up
    assert bar_tooltips(leaves) == ["2026-11-21: 1", "2026-11-22: 3"]
    assert bar_tooltips(net) == ["2026-11-21: 3", "2026-11-22: 0"]
    losing = render({"member_changes_per_day": (["context_date", "net_change"], [("2026-11-21", -2)])})
    [chart] = charts_of(losing, "member_changes_per_day")
    assert ">-2<" in chart and re.search(r">-\d+</text>", chart)  # a negative side on the value axis


def test_reactions_per_day_chart_the_day_totals_and_rank_the_reactions_over_the_range():
    columns = ["context_date", "reaction_type", "reaction", "reactions_added", "reactions_removed"]
    rows = [
        (date(2026, 11, 21), "emoji", "👍", 5, 0), (date(2026, 11, 21), "emoji", "🔥", 2, 1),
        (date(2026, 11, 22), "emoji", "🔥", 4, 0), (date(2026, 11, 22), "emoji", HOSTILE, 1, 0),
    ]
    per_day, ranking = charts_of(render({"reactions_per_day": (columns, rows)}), "reactions_per_day")

    assert bar_tooltips(per_day) == ["2026-11-21: 7", "2026-11-22: 5"]
    assert bar_tooltips(ranking) == ["🔥: 6", "👍: 5", f"{svg.text(HOSTILE)}: 1"]


def test_the_most_reacted_messages_are_ranked_by_their_text_even_when_the_bot_never_saw_one():
    columns = ["chat_id", "message_id", "total_reactions", "reacting_users", "text"]
    rows = [(-100, 9, 12, 8, "great news"), (-100, 3, 5, None, None)]
    [chart] = charts_of(render({"most_reacted_messages": (columns, rows)}), "most_reacted_messages")
    assert bar_tooltips(chart) == ["great news: 12", "(no text): 5"]


def test_today_so_far_is_one_bar_per_local_hour_in_the_query_order():
    columns = ["local_date", "hour_of_day", "message_amount", "active_users"]
    rows = [(date(2026, 11, 25), 23, 4, 2), (date(2026, 11, 26), 0, 1, 1), (date(2026, 11, 26), 9, 12, 5)]
    messages, users = charts_of(render({"messages_last_24_hours": (columns, rows)}), "messages_last_24_hours")
    assert bar_tooltips(messages) == ["2026-11-25 23:00: 4", "2026-11-26 00:00: 1", "2026-11-26 09:00: 12"]
    assert bar_tooltips(users) == ["2026-11-25 23:00: 2", "2026-11-26 00:00: 1", "2026-11-26 09:00: 5"]
    assert ">23h<" in messages and ">09h<" in messages


def test_an_answer_of_one_row_of_numbers_is_shown_as_figures_and_one_without_numbers_as_a_table():
    markup = render({
        "messages_last_24_hours": (["messages", "active_users"], [(321, 45)]),
        "top_commands": (["command"], [("/help",)]),
    })
    figures = Page(re.search(r'<section id="messages_last_24_hours">.*?</section>', markup).group())
    assert "321" in figures.texts and "45" in figures.texts and not figures.tags("svg")
    commands = Page(re.search(r'<section id="top_commands">.*?</section>', markup).group())
    assert not commands.tags("svg") and commands.tags("table") and "/help" in commands.texts


def test_the_heatmap_puts_each_count_in_its_weekday_row_and_local_hour_column():
    rows = [(7, 23, 30), (1, 0, 2), (3, 12, 15)]  # Sunday 23:00, Monday 00:00, Wednesday 12:00
    markup = render({"messages_by_local_hour_weekday": (["weekday", "hour_of_day", "message_amount"], rows)})

    cells = dict(re.findall(r"<title>(\w{3} \d\d): (\d+) message_amount</title>", markup))
    assert cells["Sun 23"] == "30" and cells["Mon 00"] == "2" and cells["Wed 12"] == "15"
    assert cells["Tue 05"] == "0" and len(cells) == 7 * 24
    assert "the busiest cell has 30" in markup


RETENTION = ["cohort_week", "weeks_later", "cohort_writers", "writers", "retained_percent"]


def test_newcomer_retention_is_a_heat_map_of_each_cohorts_share_by_weeks_later():
    rows = [
        (date(2026, 11, 2), 0, 8, 8, 100.0), (date(2026, 11, 2), 1, 8, 0, 0.0), (date(2026, 11, 2), 2, 8, 2, 25.0),
        (date(2026, 11, 9), 0, 3, 3, 100.0), (date(2026, 11, 9), 1, 3, 1, 33.3),
        (date(2026, 11, 16), 0, 1, 1, 100.0),
    ]
    [chart] = charts_of(render({"newcomer_retention": (RETENTION, rows)}), "newcomer_retention")

    page = Page(chart)
    assert page.tags("svg")[0]["role"] == "img" and page.texts[0].startswith("Do newcomers stay?")
    cells = re.findall(r'<rect [^>]*fill="([^"]+)"><title>([^<]*)</title>', chart)
    assert [title for _, title in cells] == [
        "wk 02 Nov, 0 weeks later: 8 of 8 wrote (100.0%)", "wk 02 Nov, 1 week later: 0 of 8 wrote (0.0%)",
        "wk 02 Nov, 2 weeks later: 2 of 8 wrote (25.0%)", "wk 09 Nov, 0 weeks later: 3 of 3 wrote (100.0%)",
        "wk 09 Nov, 1 week later: 1 of 3 wrote (33.3%)", "wk 16 Nov, 0 weeks later: 1 of 1 wrote (100.0%)",
    ]  # a week that has not come yet is no cell: 3 + 2 + 1
    fills = [fill for fill, _ in cells]
    assert fills[1] == svg.EMPTY_CELL and fills[0] == fills[3] == svg.heat_colour(1.0)  # one scale for all cohorts
    assert {"wk 02 Nov (8)", "wk 09 Nov (3)", "wk 16 Nov (1)", "0", "1", "2", "0%", "25%", "33%"} <= set(page.texts)


def test_a_long_retention_shows_the_latest_cohorts_and_says_the_table_has_all():
    start = date(2026, 1, 5)
    rows = [
        (start + timedelta(weeks=cohort), later, 2, 1, 50.0)
        for cohort in range(14) for later in range(30 - cohort)
    ]
    markup = render({"newcomer_retention": (RETENTION, rows)})
    [chart] = charts_of(markup, "newcomer_retention")
    assert len(re.findall(r"\(2\)</text>", chart)) == 12  # the latest 12 cohorts
    assert "wk 19 Jan (2)" in chart and "wk 06 Apr (2)" in chart and "wk 12 Jan (2)" not in chart
    assert ">15<" in chart and ">16<" not in chart  # weeks later 0 to 15
    assert "The latest 12 cohorts, up to 15 weeks later: all are in the table." in Page(markup).text


def test_the_message_mix_shows_each_kinds_share_of_each_week():
    columns = ["week_start", "message_type", "messages", "share_percent"]
    rows = [
        ("2026-11-16", "text", 6, 60.0), ("2026-11-16", "photo", 3, 30.0), ("2026-11-16", HOSTILE, 1, 10.0),
        ("2026-11-09", "text", 2, 50.0), ("2026-11-09", "voice", 2, 50.0),
    ]
    [chart] = charts_of(render({"message_types_per_week": (columns, rows)}), "message_types_per_week")

    titles = re.findall(r"<rect [^>]*><title>([^<]*)</title>", chart)
    assert titles == [  # the most sent kind first, oldest week first; a kind absent from a week is 0
        "wk 09 Nov, text: 2 messages (50.0%)", "wk 16 Nov, text: 6 messages (60.0%)",
        "wk 09 Nov, photo: 0 messages (0.0%)", "wk 16 Nov, photo: 3 messages (30.0%)",
        "wk 09 Nov, voice: 2 messages (50.0%)", "wk 16 Nov, voice: 0 messages (0.0%)",
        f"wk 09 Nov, {svg.text(HOSTILE)}: 0 messages (0.0%)", f"wk 16 Nov, {svg.text(HOSTILE)}: 1 messages (10.0%)",
    ]
    assert {"60%", "30%", "50%", "10%", "wk 09 Nov", "wk 16 Nov", HOSTILE} <= set(Page(chart).texts)


def test_many_kinds_slant_the_week_labels_and_only_the_latest_weeks_are_drawn():
    columns = ["week_start", "message_type", "messages"]
    rows = [(date(2026, 1, 5) + timedelta(weeks=week), "sticker", week + 1) for week in range(20)]
    markup = render({"message_types_per_week": (columns, rows)})
    [chart] = charts_of(markup, "message_types_per_week")
    assert len(re.findall("<rect ", chart)) == 16 and "rotate(-40" in chart
    assert "wk 18 May" in chart and "wk 02 Feb" in chart and "wk 26 Jan" not in chart
    assert "The latest 16 of 20: all are in the table." in Page(markup).text


def test_members_are_ranked_by_name_or_by_user_id_when_the_stage_hides_names():
    columns = ["user_id", "member_name", "username", "messages", "active_days", "first_day", "last_day"]
    named = [(7, "Ana Souza", "ana", 40, 9, date(2026, 11, 1), date(2026, 11, 20)),
             (9, None, None, 12, 3, date(2026, 11, 2), date(2026, 11, 3))]
    hidden = [(7, None, None, 40, 9, date(2026, 11, 1), date(2026, 11, 20)),
              (9, None, None, 12, 3, date(2026, 11, 2), date(2026, 11, 3))]

    [chart] = charts_of(render({"top_members": (columns, named)}), "top_members")  # days are no time axis here
    assert bar_tooltips(chart) == ["Ana Souza: 40", "user 9: 12"]
    [chart] = charts_of(render({"top_members": (columns, hidden)}), "top_members")
    assert bar_tooltips(chart) == ["user 7: 40", "user 9: 12"]


def test_chats_are_compared_by_messages_and_by_writers_each_ranked():
    columns = ["chat_id", "chat_title", "chat_type", "messages", "writers", "active_days", "channel_posts"]
    rows = [(-100, "Main", "supergroup", 900, 40, 30, 0), (-200, HOSTILE, "group", 300, 90, 20, 0),
            (55, None, "private", 12, 1, 4, 0)]
    messages, writers = charts_of(render({"messages_per_chat": (columns, rows)}), "messages_per_chat")
    assert bar_tooltips(messages) == ["Main: 900", f"{svg.text(HOSTILE)}: 300", "chat 55: 12"]
    assert bar_tooltips(writers) == [f"{svg.text(HOSTILE)}: 90", "Main: 40", "chat 55: 1"]


def test_weeks_and_months_are_labelled_as_weeks_and_months():
    weekly = render({"weekly_active_writers": (["week_start", "active_writers", "new_writers", "messages"],
                                               [("2026-11-16", 12, 3, 80), ("2026-11-09", 10, 10, 60)])})
    writers, new = charts_of(weekly, "weekly_active_writers")
    assert ">wk 09 Nov<" in writers and ">wk 16 Nov<" in new
    assert bar_tooltips(new) == ["2026-11-09: 10", "2026-11-16: 3"]
    columns = ["month_start", "monthly_active_writers", "average_daily_writers", "days_averaged", "stickiness_percent"]
    monthly = render({"monthly_active_writers": (columns, [(date(2026, 11, 1), 40, 6.5, 26, 16.3)])})
    charts = charts_of(monthly, "monthly_active_writers")
    assert len(charts) == 3 and all(">Nov 2026<" in chart for chart in charts) and ">16.3<" in charts[2]


def test_an_empty_answer_says_so_and_why_a_stage_may_have_none():
    markup = render({"reactions_per_day": (["context_date", "reactions"], [])})
    section = Page(re.search(r'<section id="reactions_per_day">.*?</section>', markup).group())
    assert "No rows in this range." in section.text and "administrator" in section.text
    assert not section.tags("svg") and not section.tags("table")


def test_the_repeat_trend_charts_the_share_and_carries_its_caveat():
    rows = [(date(2026, 11, 21), 10, 2, 20.0), (date(2026, 11, 20), 8, 1, 12.5)]
    columns = ["context_date", "users_asking", "users_repeating", "repeat_percent"]
    markup = render({"repeated_questions": (columns, rows)})
    section = re.search(r'<section id="repeated_questions">.*?</section>', markup).group()
    assert len(re.findall("<svg ", section)) == 1 and "repeat_percent" in section
    assert "A proxy, not a verdict" in Page(section).text
    assert ">12.5<" in section and ">20<" in section


NAN, INF = float("nan"), float("inf")
# Attributes that hold a coordinate, a size or a colour: each must be a finite number (or a colour).
GEOMETRY = ("x", "y", "x1", "x2", "y1", "y2", "width", "height", "viewBox", "transform")


@pytest.mark.parametrize("section, answer, marks", [
    # 0/0 on a day whose only question has no sender id, and a day Athena answered "Infinity" for.
    ("repeated_questions", (["context_date", "users_asking", "users_repeating", "repeat_percent"],
                            [(date(2026, 11, 20), 0, 0, NAN), (date(2026, 11, 21), 4, 1, 25.0),
                             (date(2026, 11, 22), 0, 1, INF)]), {"NaN", "∞"}),
    ("top_questions", (["question", "times_asked"], [("why?", NAN), ("how?", 3), ("when?", -INF)]), {"NaN", "−∞"}),
    ("messages_by_local_hour_weekday", (["weekday", "hour_of_day", "message_amount"], [(1, 5, NAN), (2, 6, 4)]),
     {"NaN"}),
    ("messages_last_24_hours", (["messages", "active_users"], [(NAN, INF)]), {"NaN", "∞"}),
    ("messages_last_24_hours", (["local_date", "hour_of_day", "message_amount"], [(date(2026, 11, 26), 9, NAN)]),
     {"NaN"}),
    ("message_types_per_week", (["week_start", "message_type", "messages"],
                                [(date(2026, 11, 16), "text", NAN), (date(2026, 11, 16), "photo", 3)]), {"NaN"}),
], ids=["over-time", "ranking", "heatmap", "figures", "hourly", "mix"])
def test_a_value_that_is_no_number_is_marked_and_never_breaks_a_chart(section, answer, marks):
    markup = render({section: answer})

    page = Page(markup)
    assert marks <= set(page.texts)  # written where the number would be: on the chart and in the table
    for tag, attributes in page.elements:
        for name in GEOMETRY:
            if name in attributes:
                numbers = re.findall(r"[-+\w.]+", attributes[name].replace("rotate", ""))
                assert all(math.isfinite(float(number)) for number in numbers), (tag, name, attributes[name])
        assert "nan" not in attributes.get("fill", "").lower()


def test_column_kinds_judge_every_row():
    kinds = column_kinds(
        ["context_date", "count", "text", "user_id", "nothing", "mixed"],
        [(date(2026, 1, 1), 1, "a", 5, None, 1), ("2026-01-02 10:00:00.000", 2.5, "b", 6, None, "x")],
    )
    assert kinds == {
        "context_date": "time", "count": "number", "text": "text", "user_id": "id", "nothing": "empty", "mixed": "text",
    }


def test_svg_numbers_and_axes():
    numbers = [svg.number(value) for value in (1234567, 12.5, 3.0, None, 0.125, NAN, INF, -INF)]
    assert numbers == ["1,234,567", "12.5", "3", "–", "0.12", "NaN", "∞", "−∞"]
    assert [svg.nice_ceiling(value) for value in (291, 57, 0.3, 1000, 0)] == pytest.approx([300, 60, 0.3, 1000, 1])
    assert svg.heat_colour(0) == "#fff5cc" and svg.heat_colour(1) == "#800026"
    assert svg.shorten("x" * 50, 10) == "x" * 9 + "…"


# --- the range of days --------------------------------------------------------------------------------------------


def test_the_range_is_the_last_days_in_the_stage_zone_never_before_its_start():
    now = datetime(2026, 11, 27, 2, 0, tzinfo=timezone.utc)  # still the 26th in Sao Paulo
    assert report_days(CONFIG, 7, now) == (date(2026, 11, 20), date(2026, 11, 26))
    assert report_days(CONFIG, None, now) == (date.fromisoformat(CONFIG.analytics_start_date), date(2026, 11, 26))
    start = date.fromisoformat(CONFIG.analytics_start_date)
    days_since_start = (date(2026, 11, 26) - start).days
    assert report_days(CONFIG, days_since_start, now) == (start + timedelta(days=1), date(2026, 11, 26))
    for days in (days_since_start + 1, 10_000, 10**9, 10**30):  # no date is that far back: the stage's start
        assert report_days(CONFIG, days, now) == (start, date(2026, 11, 26))


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    return write_lake(generate(SCENARIO), tmp_path_factory.mktemp("lake"))


def test_a_limited_query_answers_what_the_range_alone_answers(lake, tmp_path):
    """On DuckDB: each report query limited to three days equals the same query over a lake holding only them."""
    days = [SCENARIO.first_day + timedelta(days=offset) for offset in (2, 3, 4)]
    only_range = tmp_path / "range"
    for day in days:
        folder = f"telegram/context_date={day.isoformat()}"
        shutil.copytree(lake / folder, only_range / folder)
    queries = [query for query in load_queries(SCENARIO.zone, DATABASE) if query.name in SECTION_QUERIES]
    assert len(queries) >= 6

    with open_lake(str(lake)) as whole, open_lake(str(only_range)) as part:
        for query in queries:
            answer = whole.run(replace(query, sql=limited_to_days(query.sql, days[0], days[-1])))
            assert answer == part.run(query), query.name
            unlimited = whole.run(query)
            assert answer != unlimited or not unlimited[1], f"{query.name}: the limit changed nothing"


def test_the_limit_leaves_the_rest_of_the_saved_sql_as_it_was():
    query = next(query for query in load_queries(SCENARIO.zone, DATABASE) if query.name == "top_questions")
    limited = limited_to_days(query.sql, date(2026, 1, 1), date(2026, 1, 31))
    condition = "context_date BETWEEN DATE '2026-01-01' AND DATE '2026-01-31'"
    assert limited.count(condition) == 1
    unwrapped = limited.replace("\nSELECT * FROM (", "", 1).replace(f"\n) AS telegram WHERE {condition}\n", "", 1)
    assert unwrapped == query.sql
    assert limited_to_days("SELECT 1 FROM other", date(2026, 1, 1), date(2026, 1, 2)) == "SELECT 1 FROM other"


# --- the command -------------------------------------------------------------------------------------------------


def report_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = tools.__main__.main(["report", *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out, captured.err


def test_local_report_is_written_with_the_stage_sections(lake, tmp_path, capsys):
    out = tmp_path / "nested" / "report.html"
    code, stdout, _ = report_cli(capsys, "--local", str(lake), "--out", str(out))

    assert code == 0 and stdout.strip() == str(out)
    markup = out.read_text(encoding="utf-8")
    assert sections(markup) == [name for name in SECTION_QUERIES if name in {q.name for q in report_queries(CONFIG)}]
    assert f"DuckDB over {lake}" in Page(markup).text
    assert len(re.findall("<svg ", markup)) >= 6


def test_the_pseudonymized_report_shows_the_analysts_sections_from_the_pseudonymized_table(
    lake, tmp_path, capsys, monkeypatch
):
    """The sections of the analysts' queries only (no raw-zone question), answered from `telegram_pseudonymized`
    alone: the lake holds nothing else."""
    from analytics import analyst_queries
    from lambdas.etl.compact import write_batches
    from lambdas.etl.pseudonymize import Pseudonymizer

    pseudonymized_config = replace(CONFIG, analyst_access="pseudonymized")
    monkeypatch.setattr(tools.operate.report, "stage_config", lambda args: pseudonymized_config)
    analysts_only = tmp_path / "lake"
    for source in (lake / "telegram").glob("context_date=*/*.parquet"):
        target = analysts_only / "telegram_pseudonymized" / source.parent.name / source.name
        target.parent.mkdir(parents=True)
        write_batches(target, Pseudonymizer(b"k" * 32).batches(source, 1000))
    out = tmp_path / "report.html"

    code, _, _ = report_cli(capsys, "--local", str(analysts_only), "--pseudonymized", "--out", str(out))

    shown = sections(out.read_text(encoding="utf-8"))
    assert code == 0 and len(shown) >= 5
    assert shown == [name for name in SECTION_QUERIES if name in {q.name for q in analyst_queries(pseudonymized_config)}]
    assert not {"member_changes_per_day", "reactions_per_day", "most_reacted_messages"} & set(shown)


def test_days_must_be_positive_and_a_missing_lake_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        tools.__main__.main(["report", "--days", "0"])
    assert "argument --days: must be a positive integer, got '0'" in capsys.readouterr().err
    code, _, err = report_cli(capsys, "--local", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r.html"))
    assert code == 1 and err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_a_huge_days_reports_from_the_stages_start(lake, tmp_path, capsys):
    code, _, err = report_cli(capsys, "--local", str(lake), "--days", "9" * 40, "--out", str(tmp_path / "r.html"))
    assert (code, err) == (0, "")
    assert f"{CONFIG.analytics_start_date} to " in Page((tmp_path / "r.html").read_text(encoding="utf-8")).text


def test_a_saved_query_whose_sql_cannot_be_read_is_one_line_naming_it(lake, tmp_path, capsys, monkeypatch):
    broken = tmp_path / "queries"
    shutil.copytree(Path(analytics.QUERY_DIR), broken, ignore=shutil.ignore_patterns("lake", "__*"))
    path = next(broken.glob("*_top_questions.sql"))
    path.write_text(path.read_text(encoding="utf-8") + "\nAND question = 'unterminated\n", encoding="utf-8")
    monkeypatch.setattr(analytics, "QUERY_DIR", broken)

    code, _, err = report_cli(capsys, "--local", str(lake), "--out", str(tmp_path / "r.html"))

    assert code == 1 and len(err.splitlines()) == 1
    assert err.startswith("error: saved query top_questions: cannot read its SQL to limit it to the days: ")


def test_on_athena_every_report_query_runs_limited_in_the_stage_workgroup(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    with mock_aws():
        boto3.client("athena").create_work_group(Name=CONFIG.athena_workgroup)
        code, _, err = report_cli(capsys, "--stage", "dev", "--days", "3", "--out", str(tmp_path / "r.html"))
        executions = list(athena_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].executions.values())

    assert code == 0 and "scanned" in err
    last = today(CONFIG.timezone)
    condition = f"context_date BETWEEN DATE '{(last - timedelta(days=2)).isoformat()}' AND DATE '{last.isoformat()}'"
    assert sorted(execution.query for execution in executions) == sorted(
        limited_to_days(query.sql, last - timedelta(days=2), last) for query in report_queries(CONFIG)
    )
    assert all(condition in execution.query for execution in executions)
    assert {execution.workgroup.name for execution in executions} == {CONFIG.athena_workgroup}
    assert "No rows in this range." in (tmp_path / "r.html").read_text(encoding="utf-8")

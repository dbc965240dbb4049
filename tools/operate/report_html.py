"""The analytics report as one self-contained HTML page, drawn from the rows the saved queries answered.

A section per saved query the report knows (`SECTIONS`), in that order, for each one the stage's
analytics hold; the others are named at the end. The drawing is generic over the rows: a column of days
or times with numbers gives bars over time, a column of text with numbers a ranking, a single row of
numbers a few big figures, anything else a table. A section may ask for a kind by name: the hour x weekday
heatmap, bars per local hour, rankings (days then are no time axis), the retention heat map of weekly
cohorts, or a mix (each label's share of each week). So a saved query added later gets its section by
adding one line to `SECTIONS`.

Every chart says which saved query it comes from, the time zone and the range of days, and every number
is readable: written on the bars or cells, and in the table of all rows under each chart. Every string
from the data is escaped (message text is user input), and the page's Content-Security-Policy allows no
script, no request and no external anything: the file opens offline, the same everywhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Mapping

from analytics import SavedQuery, leading_comments
from tools.operate import svg
from tools.operate.svg import Bar, number, text

AUTO = "auto"
HEATMAP = "heatmap"
HOURLY = "hourly"  # bars per local hour, labelled by `local_date` and `hour_of_day`
RANKING = "ranking"  # ranked bars by the label column, one chart per value (time columns are no axis)
RETENTION = "retention"  # cohorts by weeks later: `cohort_week`, `weeks_later`, `cohort_writers`, `writers`
MIX = "mix"  # each label's share of each period (e.g. message kinds per week): label rows, period columns
WEEK, MONTH = "week", "month"  # what a time axis's days stand for
RETENTION_COLUMNS = ("cohort_week", "weeks_later", "cohort_writers", "writers")
MAX_TABLE_ROWS = 1000
MAX_RANKED_BARS = 25
MAX_CHARTS_PER_SECTION = 3
MAX_GRID_ROWS = 12  # the latest cohorts a retention chart shows
MAX_GRID_COLUMNS = 16  # the latest periods a mix shows, the weeks after its first a retention chart shows
NO_TEXT = "(no text)"  # a ranked row whose label is null, e.g. a reacted message the bot never received
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # ISO 1..7, as the saved queries number them
AXIS_COLUMNS = ("weekday", "hour_of_day")  # numbers that place a count (heatmap, hourly bars), never counts
# A day, or a day and a time, as DuckDB and Athena return them (Athena as text).
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?.*)?")
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

ADMIN_UPDATES = (
    "Telegram sends {what} only to a bot that is an administrator of the group, and only when the stage's "
    "allowed_updates (cdk.json) asks for {kinds}."
)


@dataclass(frozen=True)
class Section:
    """How the report shows one saved query's answer."""

    query: str  # the saved query's name
    title: str
    chart: str = AUTO
    values: tuple[str, ...] = ()  # the columns to chart, when present (default: every numeric column)
    label: str | None = None  # the text column naming a ranking's bars (default: the first text column)
    unnamed: str | None = None  # names a bar whose label is null from its row, e.g. "user {user_id}"
    period: str | None = None  # WEEK or MONTH when the time column's days each stand for one
    note: str | None = None  # shown with the chart
    when_empty: str | None = None  # why a stage may have no rows for it


REACTIONS = ADMIN_UPDATES.format(what="reactions", kinds="message_reaction and message_reaction_count")
SECTIONS = (
    Section("messages_last_24_hours", "Today so far", chart=HOURLY, values=("message_amount", "active_users")),
    Section("messages_by_local_hour_weekday", "When do users write?", chart=HEATMAP, values=("message_amount",)),
    Section("daily_message_count", "Messages per day", values=("message_amount",)),
    Section("daily_active_users", "Active users per day", values=("active_users",)),
    Section("weekly_active_writers", "Writers per week", values=("active_writers", "new_writers"), period=WEEK),
    Section(
        "monthly_active_writers",
        "Writers per month, and how sticky",
        values=("monthly_active_writers", "average_daily_writers", "stickiness_percent"),
        period=MONTH,
        note="Stickiness is the writers of an average day over the writers of the month: 100% if everyone who "
        "wrote that month wrote every day. A month the range holds only in part reads higher than it will.",
    ),
    Section(
        "newcomer_retention",
        "Do newcomers stay?",
        chart=RETENTION,
        note="Each row is the people who first wrote in that week; each column a week after it, 0 being the "
        "first. The first row holds everyone who wrote in the range's first week, newcomers or not.",
    ),
    Section("top_members", "Who writes most?", chart=RANKING, values=("messages",), label="member_name",
            unnamed="user {user_id}"),
    Section("message_types_per_week", "What people send", chart=MIX, values=("messages",), label="message_type",
            period=WEEK),
    Section(
        "messages_per_chat", "Chats compared", chart=RANKING, values=("messages", "writers"), label="chat_title",
        unnamed="chat {chat_id}", note="One bar per chat the stage stores (allowed_chat_ids).",
    ),
    Section("top_questions", "What do users ask most?", values=("times_asked",)),
    Section("top_commands", "Most used bot commands", values=("uses",)),
    Section(
        "repeated_questions",
        "Is the bot helping?",
        values=("repeat_percent",),
        note="A proxy, not a verdict: the share of users asking the same question again within 24 hours. A "
        "falling share suggests people get their answers; it cannot tell whether an answer was right or came "
        "from the bot, people who gave up silently look helped, and a rephrased question is not seen as a "
        "repeat. Read it as a trend.",
    ),
    Section(
        "member_changes_per_day",
        "Members joining and leaving",
        values=("joins", "leaves", "net_change"),
        when_empty=ADMIN_UPDATES.format(what="member changes", kinds="chat_member")
        + " Joins and leaves also show as service messages when the bot sees them.",
    ),
    Section(
        "reactions_per_day", "Reactions per day", values=("reactions_added",), label="reaction", when_empty=REACTIONS
    ),
    Section(
        "most_reacted_messages", "Most reacted messages", values=("total_reactions",), label="text",
        when_empty=REACTIONS,
    ),
)
SECTION_QUERIES = tuple(section.query for section in SECTIONS)

# A saved query's answer: column names and rows.
Answer = tuple[Sequence[str], Sequence[Sequence[Any]]]


@dataclass(frozen=True)
class ReportContext:
    stage: str
    zone: str
    first_day: date
    last_day: date
    source: str  # where the queries ran, e.g. "Athena workgroup telegram-lake-dev"
    generated_at: datetime  # aware

    @property
    def days(self) -> str:
        return f"{self.first_day.isoformat()} to {self.last_day.isoformat()}"


def render_report(answers: Mapping[str, Answer], queries: Mapping[str, SavedQuery], context: ReportContext) -> str:
    """The whole page: the sections whose query answered, in `SECTIONS` order, then what the report left out."""
    shown = [section for section in SECTIONS if section.query in answers]
    missing = [section for section in SECTIONS if section.query not in answers]
    title = f"Telegram lake report: stage {context.stage}, {context.days}"
    generated = context.generated_at.strftime("%Y-%m-%d %H:%M %Z")
    navigation = "".join(f'<a href="#{text(section.query)}">{text(section.title)}</a>' for section in shown)
    body = "".join(_section(section, answers[section.query], queries.get(section.query), context) for section in shown)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{text(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>Telegram lake: stage {text(context.stage)}</h1>"
        f'<p class="meta">{text(context.days)} · times in {text(context.zone)} · from {text(context.source)} · '
        f"generated {text(generated)}</p><nav>{navigation}</nav></header>"
        f"<main>{body or '<p>No saved query of this report answered.</p>'}</main>"
        f"{_footer(missing)}</body></html>\n"
    )


def _section(section: Section, answer: Answer, query: SavedQuery | None, context: ReportContext) -> str:
    columns, rows = list(answer[0]), [tuple(row) for row in answer[1]]
    question = f'<p class="question">{text(query.question)}</p>' if query else ""
    caption = (
        f'<p class="source">Saved query <code>{text(section.query)}</code> · times in {text(context.zone)} · '
        f"{text(context.days)} · {len(rows):,} row{'s' if len(rows) != 1 else ''}</p>"
    )
    if rows:
        kinds = column_kinds(columns, rows)
        content, table = _charts(section, columns, rows, kinds), _table(columns, rows, kinds)
    else:
        why = f" {text(section.when_empty)}" if section.when_empty else ""
        content, table = f'<p class="empty">No rows in this range.{why}</p>', ""
    note = f'<p class="note">{text(section.note)}</p>' if section.note else ""
    return (
        f'<section id="{text(section.query)}"><h2>{text(section.title)}</h2>{question}{note}'
        f"<figure>{content}<figcaption>{caption}</figcaption></figure>{table}{_how_counted(query)}</section>"
    )


def _charts(section: Section, columns: list[str], rows: list[tuple], kinds: Mapping[str, str]) -> str:
    """The section's chart(s), chosen by what the columns hold (`kinds`: column_kinds); none when no chart fits
    (the table stays)."""
    values = [name for name in section.values if kinds.get(name) == "number"] or [
        name for name in columns if kinds[name] == "number" and name not in AXIS_COLUMNS
    ]
    if section.chart == HEATMAP and values and {"weekday", "hour_of_day"} <= set(columns):
        return _heatmap(section, columns, rows, values[0])
    if section.chart == HOURLY and {"local_date", "hour_of_day"} <= set(columns):
        return "".join(_hourly(section, columns, rows, value) for value in values[:MAX_CHARTS_PER_SECTION])
    if section.chart == RETENTION and set(RETENTION_COLUMNS) <= set(columns):
        return _retention(section, columns, rows)
    if not values:
        return ""
    axis = next((name for name in columns if kinds[name] == "time"), None)
    named = ("text", "empty") if section.unnamed else ("text",)  # an unnamed bar is named from its row
    label = section.label if kinds.get(section.label or "") in named else None
    label = label or next((name for name in columns if kinds[name] == "text"), None)
    if section.chart == MIX and axis is not None and label is not None:
        return _mix(section, columns, rows, axis, label, values[0])
    if section.chart == RANKING and label is not None:
        return "".join(
            _ranking(section, columns, _ranked_by(columns, rows, value), label, value)
            for value in values[:MAX_CHARTS_PER_SECTION]
        )
    if axis is not None:
        charts = [_over_time(section, columns, rows, axis, value) for value in values[:MAX_CHARTS_PER_SECTION]]
        if label is not None:  # e.g. reactions per day and reaction: which ones, over the whole range
            charts.append(_ranking(section, columns, _totals(columns, rows, label, values[0]), label, values[0]))
        return "".join(charts)
    if label is not None:
        return _ranking(section, columns, rows, label, values[0])
    if len(rows) == 1:
        return _figures(columns, rows[0], values)
    return ""


def column_kinds(columns: Sequence[str], rows: Sequence[tuple]) -> dict[str, str]:
    """Each column as `number`, `time` (days or instants), `text`, `id` (a `..._id` column: neither charted nor a
    label) or `empty` (only nulls), judged from every row."""
    kinds = {}
    for index, name in enumerate(columns):
        present = [row[index] for row in rows if row[index] is not None]
        if name.endswith("_id") or name == "id":
            kinds[name] = "id"
        elif not present:
            kinds[name] = "empty"
        elif all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in present):
            kinds[name] = "number"
        elif all(_is_time(value) for value in present):
            kinds[name] = "time"
        else:
            kinds[name] = "text"
    return kinds


def _is_time(value: Any) -> bool:
    return isinstance(value, (date, datetime)) or (isinstance(value, str) and bool(_ISO_TIME.fullmatch(value)))


def _over_time(section: Section, columns: list[str], rows: list[tuple], axis: str, value: str) -> str:
    """One bar per day (or instant), oldest first, adding up the rows that share it (e.g. one per chat)."""
    at, of = columns.index(axis), columns.index(value)
    totals: dict[str, float] = {}
    for row in rows:
        if row[at] is not None:
            totals[cell(row[at])] = totals.get(cell(row[at]), 0) + (row[of] or 0)
    # ISO text sorts in time order, whether DuckDB returned days and instants or Athena returned text.
    bars = [Bar(time_label(moment, section.period), total, moment) for moment, total in sorted(totals.items())]
    return svg.vertical_bars(bars, title=f"{section.title}: {value} by {axis}", unit=value)


def _hourly(section: Section, columns: list[str], rows: list[tuple], value: str) -> str:
    """One bar per local hour, in the query's order (oldest first)."""
    day, hour, of = columns.index("local_date"), columns.index("hour_of_day"), columns.index(value)
    bars = [Bar(f"{row[hour]:02d}h", row[of] or 0, f"{cell(row[day])} {row[hour]:02d}:00") for row in rows]
    return svg.vertical_bars(bars, title=f"{section.title}: {value} by local hour", unit=value)


def _totals(columns: list[str], rows: list[tuple], label: str, value: str) -> list[tuple]:
    """Rows of (label, total of `value`), most first: a ranking over the whole range."""
    at, of = columns.index(label), columns.index(value)
    totals: dict[Any, float] = {}
    for row in rows:
        totals[row[at]] = totals.get(row[at], 0) + (row[of] or 0)
    ranked = sorted(totals.items(), key=lambda item: (-item[1], cell(item[0])))
    return [tuple(name if column == label else total if column == value else None for column in columns)
            for name, total in ranked]


def _ranked_by(columns: list[str], rows: list[tuple], value: str) -> list[tuple]:
    """`rows`, most `value` first (a value that is no number last); ties keep their order."""
    of = columns.index(value)
    return sorted(rows, key=lambda row: -svg.drawn(row[of]) if isinstance(row[of], (int, float)) else math.inf)


def _ranking(section: Section, columns: list[str], rows: list[tuple], label: str, value: str) -> str:
    at, of = columns.index(label), columns.index(value)
    bars = [Bar(_bar_label(section, columns, row, at), row[of] or 0) for row in rows[:MAX_RANKED_BARS]]
    more = len(rows) - len(bars)
    rest = f'<p class="more">The first {len(bars)} of {len(rows):,}: all are in the table.</p>' if more > 0 else ""
    return svg.horizontal_bars(bars, title=f"{section.title}: {value} by {label}") + rest


def _bar_label(section: Section, columns: list[str], row: tuple, at: int) -> str:
    """A ranked row's label; when it is null, the section's `unnamed` filled from the row, or NO_TEXT."""
    if row[at] is not None:
        return cell(row[at])
    return section.unnamed.format(**dict(zip(columns, row))) if section.unnamed else NO_TEXT


def _retention(section: Section, columns: list[str], rows: list[tuple]) -> str:
    """The latest cohorts down, the weeks after their first across: the share of each cohort writing."""
    cohort, later, size, writers = (columns.index(name) for name in RETENTION_COLUMNS)
    sizes: dict[str, int] = {}
    counts: dict[str, list[int]] = {}
    for row in rows:  # the query's order: oldest cohort first, then by weeks later
        if row[cohort] is not None and row[later] in range(MAX_GRID_COLUMNS):
            name = cell(row[cohort])
            sizes[name] = row[size] or 0
            weeks = counts.setdefault(name, [])
            weeks.extend([0] * (row[later] + 1 - len(weeks)))
            weeks[row[later]] = row[writers] or 0
    shown = sorted(sizes)[-MAX_GRID_ROWS:]
    weeks = max((len(counts[name]) for name in shown), default=0)
    chart = svg.retention(
        [(time_label(name, WEEK), sizes[name]) for name in shown], weeks, [counts[name] for name in shown],
        title=f"{section.title}: the share of each weekly cohort writing, by weeks later",
    )
    left_out = len(shown) < len(sizes) or any(row[later] not in range(MAX_GRID_COLUMNS) for row in rows)
    if not left_out:
        return chart
    return chart + (
        f'<p class="more">The latest {len(shown)} cohorts, up to {weeks - 1} weeks later: all are in the table.</p>'
    )


def _mix(section: Section, columns: list[str], rows: list[tuple], axis: str, label: str, value: str) -> str:
    """Each label's share of each period's `value` (e.g. of a week's messages): a row per label, most first; a
    column per period, the latest MAX_GRID_COLUMNS, oldest first."""
    at, named, of = columns.index(axis), columns.index(label), columns.index(value)
    periods = sorted({cell(row[at]) for row in rows if row[at] is not None})
    shown = periods[-MAX_GRID_COLUMNS:]
    amounts: dict[tuple[str, str], float] = {}
    for row in rows:
        if row[at] is not None and cell(row[at]) in shown:
            key = (cell(row[at]), NO_TEXT if row[named] is None else cell(row[named]))
            amounts[key] = amounts.get(key, 0.0) + svg.drawn(row[of] or 0)
    totals = {period: sum(amount for (when, _), amount in amounts.items() if when == period) for period in shown}
    by_kind: dict[str, float] = {}
    for (_, kind), amount in amounts.items():
        by_kind[kind] = by_kind.get(kind, 0.0) + amount
    kinds = sorted(by_kind, key=lambda kind: (-by_kind[kind], kind))
    labels = {period: time_label(period, section.period) for period in shown}

    def share(period: str, kind: str) -> svg.Cell:
        amount = amounts.get((period, kind), 0.0)
        part = amount / totals[period] if totals[period] else 0.0
        return svg.Cell(
            part, f"{part:.0%}" if amount else "", f"{labels[period]}, {kind}: {number(amount)} {value} ({part:.1%})"
        )

    chart = svg.grid(
        kinds, [labels[period] for period in shown], [[share(period, kind) for period in shown] for kind in kinds],
        title=f"{section.title}: each {label}'s share of the {value} of each {section.period or axis}",
        legend=f"darker = a larger share of the {section.period or 'period'}'s {value}",
    )
    if len(periods) == len(shown):
        return chart
    return chart + f'<p class="more">The latest {len(shown)} of {len(periods):,}: all are in the table.</p>'


def _figures(columns: list[str], row: tuple, values: list[str]) -> str:
    tiles = "".join(
        f'<div class="figure"><span class="number">{text(number(row[columns.index(name)]))}</span>'
        f'<span class="label">{text(name)}</span></div>'
        for name in values
    )
    return f'<div class="figures">{tiles}</div>'


def _heatmap(section: Section, columns: list[str], rows: list[tuple], value: str) -> str:
    """Hours across, ISO weekdays down."""
    weekday, hour, of = columns.index("weekday"), columns.index("hour_of_day"), columns.index(value)
    grid = [[0.0] * 24 for _ in WEEKDAYS]
    for row in rows:
        if row[weekday] in range(1, 8) and row[hour] in range(24):
            grid[row[weekday] - 1][row[hour]] += row[of] or 0
    return svg.heatmap(
        WEEKDAYS, [f"{hour:02d}" for hour in range(24)], grid, title=f"{section.title}: {value} by hour and weekday",
        unit=value,
    )


def _table(columns: list[str], rows: list[tuple], kinds: Mapping[str, str]) -> str:
    shown = rows[:MAX_TABLE_ROWS]
    numeric = [kinds[name] == "number" for name in columns]
    head = "".join(f'<th{_num(right)}>{text(name)}</th>' for name, right in zip(columns, numeric))
    body = "".join(
        "<tr>" + "".join(f"<td{_num(right)}>{text(cell(value))}</td>" for value, right in zip(row, numeric)) + "</tr>"
        for row in shown
    )
    more = f"<p class='more'>{len(rows) - len(shown):,} more rows not shown.</p>" if len(rows) > len(shown) else ""
    return (
        f"<details><summary>The numbers: all {len(rows):,} row{'s' if len(rows) != 1 else ''}</summary>"
        f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{more}</details>'
    )


def _num(right: bool) -> str:
    return ' class="num"' if right else ""


def _how_counted(query: SavedQuery | None) -> str:
    """The saved query's own header comment, after its first line (the question): what it counts, and how."""
    if query is None:
        return ""
    lines = [line.removeprefix("--").strip() for line in leading_comments(query.sql.splitlines())[1:]]
    if not lines:
        return ""
    return f'<details class="counted"><summary>How it is counted</summary><p>{text(" ".join(lines))}</p></details>'


def _footer(missing: Sequence[Section]) -> str:
    left_out = ""
    if missing:
        names = ", ".join(f"{text(section.title.lower())} (<code>{text(section.query)}</code>)" for section in missing)
        left_out = (
            f"<p>Not in this report: {names}. These sections appear when the stage's saved queries in "
            "<code>analytics/</code> include them and the stage collects what they count.</p>"
        )
    return (
        f"<footer>{left_out}<p>Made by <code>python -m tools report</code> from the saved queries in "
        "<code>analytics/</code>. One file: no script, no font, no request; it opens offline.</p></footer>"
    )


def cell(value: Any) -> str:
    """A value as the table shows it: numbers grouped, days and instants in ISO format, nothing as `–`."""
    if isinstance(value, (datetime, date)):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return number(value)


def time_label(value: Any, period: str | None = None) -> str:
    """A short axis label: `Fri 27 Nov` for a day, `27 Nov 14:00` for an instant, `wk 23 Nov` for a week's first
    day, `Nov 2026` for a month's; other text as it is."""
    parsed = _parsed_time(value)
    if isinstance(parsed, datetime):
        return parsed.strftime("%d %b %H:%M")
    if isinstance(parsed, date):
        return parsed.strftime({WEEK: "wk %d %b", MONTH: "%b %Y"}.get(period or "", "%a %d %b"))
    return str(value)


def _parsed_time(value: Any) -> date | datetime | None:
    if isinstance(value, (date, datetime)):
        return value
    text_value = str(value)
    try:
        return date.fromisoformat(text_value) if len(text_value) == 10 else datetime.fromisoformat(text_value)
    except ValueError:
        return None


STYLE = """
:root { --ink: #1d2433; --muted: #5b6475; --line: #d9dde5; --card: #ffffff; --page: #f4f6f9; --bar: #2a7ab9;
  --accent: #2a7ab9; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
  background: var(--page); }
@media (prefers-color-scheme: dark) {
  :root { --ink: #e6e9ef; --muted: #a3acbd; --line: #3a4150; --card: #1f2430; --page: #151922; --bar: #5aa7e0;
    --accent: #7fbef0; }
}
body { margin: 0 auto; max-width: 980px; padding: 16px; line-height: 1.45; }
h1 { font-size: 1.6rem; margin: 0.2em 0; }
h2 { font-size: 1.25rem; margin: 0 0 0.3em; }
.meta, .source, .more, footer { color: var(--muted); font-size: 0.9rem; }
nav { display: flex; flex-wrap: wrap; gap: 6px 14px; margin: 8px 0 4px; }
nav a { color: var(--accent); text-decoration: none; font-size: 0.95rem; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px; margin: 16px 0;
  padding: 14px 16px; overflow: hidden; }
.question { margin: 0 0 8px; font-weight: 600; }
.note { border-left: 3px solid var(--accent); padding-left: 10px; }
figure { margin: 0; overflow-x: auto; }
svg.chart { display: block; width: 100%; min-width: 600px; height: auto; margin: 8px 0; }
svg .bar { fill: var(--bar); }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .axis-label { fill: var(--muted); }
svg .value { fill: var(--ink); font-weight: 600; }
svg .cell { font-size: 12px; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; margin: 8px 0; }
.figure { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; min-width: 120px; }
.figure .number { display: block; font-size: 1.8rem; font-weight: 700; }
.figure .label { color: var(--muted); font-size: 0.9rem; }
details { margin: 6px 0; }
summary { cursor: pointer; color: var(--accent); }
.table { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 6px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 10px; text-align: left; vertical-align: top;
  overflow-wrap: anywhere; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code { font-size: 0.9em; }
footer { margin: 24px 0; }
"""

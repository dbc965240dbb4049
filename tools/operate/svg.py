"""Inline SVG charts for the analytics report: bars over time, ranked bars, and grids of coloured cells (the hour x
weekday heatmap, newcomer retention by weekly cohort, and any other table of shares).

Plain strings, no library: the report must open offline as one file, so every chart is markup drawn
here. Every text that reaches the markup goes through `text()` (HTML-escaped: a label may be a user's
message); colours of the bars and axes come from CSS classes, so the page's style (and dark mode) decides
them. Each chart scales to its container (viewBox, no fixed size) and names itself for screen readers.
A value that is no number (NaN, e.g. 0/0 in a query; or an infinity) is drawn as nothing and written as
its mark (`NOT_A_NUMBER`, `∞`): it never reaches a coordinate, nor the scale of the others.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 720
FONT_SIZE = 14
# Above this many bars, values are left to the table and tooltips, and only some axis labels are drawn.
MAX_LABELLED_BARS = 31
MAX_AXIS_LABELS = 24
RANKED_LABEL_CHARACTERS = 38
# Heatmap colours, from few to many (a light yellow to a deep red), interpolated in RGB.
HEAT_STOPS = ((255, 245, 204), (254, 178, 76), (240, 59, 32), (128, 0, 38))
EMPTY_CELL = "#eeeeee"
CHARACTER_WIDTH = 0.6  # an average character's width in a label, as a share of the font size (an estimate)
SLANT = 40  # degrees: how far column labels too long for their column are turned
# The tops a value axis may have (times a power of ten): its middle gridline stays a round number too.
AXIS_STEPS = (1, 1.2, 1.6, 2, 2.5, 3, 4, 5, 6, 8, 10)
NOT_A_NUMBER = "NaN"


@dataclass(frozen=True)
class Bar:
    label: str  # on the axis (short)
    value: float
    title: str | None = None  # the full label, in the tooltip, when the axis shows a short one


def text(value: object) -> str:
    """Any value as text safe inside markup and attribute values."""
    return html.escape(str(value), quote=True)


def number(value: object) -> str:
    """`1,234`, `12.5`, `–` for nothing: how every number in the report is written."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return NOT_A_NUMBER
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


def drawn(value: float) -> float:
    """What a chart draws for `value`: itself, or nothing (0) for NaN and the infinities."""
    return value if math.isfinite(value) else 0.0


def nice_ceiling(value: float) -> float:
    """The smallest of `AXIS_STEPS` times a power of ten that is at least `value`: the top of a value axis."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in AXIS_STEPS if value <= step * power)


def shorten(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def vertical_bars(bars: Sequence[Bar], *, title: str, unit: str) -> str:
    """Values over time (or any ordered axis), left to right, each bar labelled with its value when they fit;
    negative values (a net change) hang below the zero line. `unit` names the value axis."""
    height, left, right, top, bottom = 280, 56, 12, 30, 64
    plot_width, plot_height = WIDTH - left - right, height - top - bottom
    highest = max((drawn(bar.value) for bar in bars), default=0)
    lowest = min((drawn(bar.value) for bar in bars), default=0)
    top_value = nice_ceiling(highest) if highest > 0 or lowest >= 0 else 0.0
    bottom_value = -nice_ceiling(-lowest) if lowest < 0 else 0.0

    def y(value: float) -> float:
        return top + plot_height * (top_value - value) / (top_value - bottom_value)

    band = plot_width / max(len(bars), 1)
    every = max(1, math.ceil(len(bars) / MAX_AXIS_LABELS))
    # Zero, the ends, and the middle when the axis has no negative side and it is a round number for counts.
    middle = top_value / 2
    whole = all(float(bar.value).is_integer() for bar in bars)
    with_middle = not bottom_value and (middle.is_integer() or not whole)
    ticks = sorted({bottom_value, 0.0, top_value} | ({middle} if with_middle else set()))
    parts = [_open(title, height), f'<text class="axis-label" x="{left}" y="12">{text(unit)}</text>']
    for tick in ticks:
        parts.append(
            f'<line class="grid" x1="{left}" x2="{left + plot_width}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"></line>'
            f'<text class="axis-label" x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">'
            f"{text(number_tick(tick))}</text>"
        )
    for index, bar in enumerate(bars):
        upper, lower = y(max(drawn(bar.value), 0)), y(min(drawn(bar.value), 0))
        x = left + index * band + band * 0.15
        tooltip = f"{bar.title or bar.label}: {number(bar.value)}"
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{upper:.1f}" width="{band * 0.7:.1f}" height="{lower - upper:.1f}">'
            f"<title>{text(tooltip)}</title></rect>"
        )
        centre = left + (index + 0.5) * band
        if len(bars) <= MAX_LABELLED_BARS:
            label_y = upper - 4 if bar.value >= 0 else y(0) - 4  # a negative value is written above its zero line
            parts.append(
                f'<text class="value" x="{centre:.1f}" y="{label_y:.1f}" text-anchor="middle">'
                f"{text(number(bar.value))}</text>"
            )
        if index % every == 0:
            label_y = top + plot_height + 14
            parts.append(
                f'<text class="axis-label" x="{centre:.1f}" y="{label_y}" text-anchor="end" '
                f'transform="rotate(-40 {centre:.1f} {label_y})">{text(bar.label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def horizontal_bars(bars: Sequence[Bar], *, title: str) -> str:
    """A ranking, first on top: label, value, bar, so the numbers stay in view on a narrow screen; long labels
    are shortened here and whole in the tooltip and the table."""
    row, label_end, value_start, bar_start, right, top = 28, 330, 338, 400, 12, 8
    height = top * 2 + row * max(len(bars), 1)
    top_value = max((drawn(bar.value) for bar in bars), default=0) or 1
    plot_width = WIDTH - bar_start - right
    parts = [_open(title, height)]
    for index, bar in enumerate(bars):
        y = top + index * row
        baseline = y + row * 0.68
        width = plot_width * max(drawn(bar.value), 0) / top_value
        tooltip = f"{bar.title or bar.label}: {number(bar.value)}"
        parts.append(
            f'<text class="axis-label" x="{label_end}" y="{baseline:.1f}" text-anchor="end">'
            f"{text(shorten(bar.label, RANKED_LABEL_CHARACTERS))}<title>{text(tooltip)}</title></text>"
            f'<text class="value" x="{value_start}" y="{baseline:.1f}">{text(number(bar.value))}</text>'
            f'<rect class="bar" x="{bar_start}" y="{y + 5}" width="{width:.1f}" height="{row - 10}">'
            f"<title>{text(tooltip)}</title></rect>"
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Cell:
    """One cell of a grid: how dark (`share`, 0..1), what it says, and its tooltip."""

    share: float
    text: str
    title: str


def heatmap(
    row_labels: Sequence[str], column_labels: Sequence[str], values: Sequence[Sequence[float]], *, title: str, unit: str
) -> str:
    """A grid of counts, darker for more, each non-empty cell labelled with its count."""
    most = max((drawn(value) for line in values for value in line), default=0)
    cells = [
        [
            Cell(drawn(value) / most if most else 0, number(value) if value else "",
                 f"{label} {column_labels[column]}: {number(value)} {unit}")
            for column, value in enumerate(line)
        ]
        for label, line in zip(row_labels, values)
    ]
    return grid(
        row_labels, column_labels, cells, title=title,
        legend=f"darker = more {unit}; the busiest cell has {number(most)}",
    )


def retention(
    cohorts: Sequence[tuple[str, int]], weeks: int, writers: Sequence[Sequence[int]], *, title: str
) -> str:
    """Newcomer retention as a heat map: a row per cohort (its label and how many it holds), a column per week
    after the cohort's first (0, 1, ...); each cell the share of the cohort writing that week, in percent, darker
    for more on one scale for all (so cohorts compare), its counts in the tooltip. A cohort's row stops at the
    last week (a week that has not come yet is no cell, unlike a week nobody wrote in, which is 0%)."""
    cells = [
        [
            Cell(share := (count / size if size else 0.0), f"{share * 100:.0f}%",
                 f"{label}, {later} week{'s' if later != 1 else ''} later: {count:,} of {size:,} wrote ({share:.1%})")
            for later, count in enumerate(line)
        ]
        for (label, size), line in zip(cohorts, writers)
    ]
    return grid(
        [f"{label} ({size:,})" for label, size in cohorts], [str(later) for later in range(weeks)], cells,
        title=title, legend="columns: weeks later; darker = more of the cohort writing",
    )


def grid(
    row_labels: Sequence[str], column_labels: Sequence[str], cells: Sequence[Sequence[Cell | None]], *, title: str,
    legend: str,
) -> str:
    """Rows of coloured cells under column labels: each cell's colour from its share (an empty cell grey), its
    text written on it, its title in the tooltip. A row may be shorter than the columns: the rest is not drawn.
    Labels too long for a column are slanted; the row labels' column is as wide as the longest needs."""
    cell_height = 30
    left = max(44, round(max((len(label) for label in row_labels), default=0) * FONT_SIZE * CHARACTER_WIDTH) + 12)
    cell_width = (WIDTH - left - 4) / max(len(column_labels), 1)
    longest = max((len(label) for label in column_labels), default=0) * FONT_SIZE * CHARACTER_WIDTH
    slanted = longest > cell_width - 4
    top = round(longest * math.sin(math.radians(SLANT))) + 16 if slanted else 22
    height = top + cell_height * len(row_labels) + 30
    parts = [_open(title, height)]
    for column, label in enumerate(column_labels):
        x = left + (column + 0.5) * cell_width
        slant = f' transform="rotate(-{SLANT} {x:.1f} {top - 8})"' if slanted else ""
        anchor = "start" if slanted else "middle"
        parts.append(
            f'<text class="axis-label" x="{x:.1f}" y="{top - 8}" text-anchor="{anchor}"{slant}>{text(label)}</text>'
        )
    for row, label in enumerate(row_labels):
        y = top + row * cell_height
        parts.append(
            f'<text class="axis-label" x="{left - 6}" y="{y + cell_height * 0.62:.1f}" text-anchor="end">'
            f"{text(label)}</text>"
        )
        for column, cell in enumerate(cells[row]):
            if cell is None:
                continue
            x = left + column * cell_width
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{cell_width - 1:.1f}" height="{cell_height - 1}" '
                f'fill="{heat_colour(cell.share) if cell.share > 0 else EMPTY_CELL}"><title>{text(cell.title)}</title>'
                "</rect>"
            )
            if cell.text:
                ink = "#ffffff" if cell.share > 0.55 else "#222222"
                parts.append(
                    f'<text class="cell" x="{x + cell_width / 2:.1f}" y="{y + cell_height * 0.62:.1f}" '
                    f'text-anchor="middle" fill="{ink}">{text(cell.text)}</text>'
                )
    legend_y = top + cell_height * len(row_labels) + 20
    parts.append(f'<text class="axis-label" x="{left}" y="{legend_y}">{text(legend)}</text></svg>')
    return "".join(parts)


def heat_colour(share: float) -> str:
    """The colour of a cell holding `share` (0..1) of the busiest cell's count."""
    share = min(max(share, 0.0), 1.0)
    position = share * (len(HEAT_STOPS) - 1)
    low = min(int(position), len(HEAT_STOPS) - 2)
    fraction = position - low
    red, green, blue = (
        round(start + (end - start) * fraction) for start, end in zip(HEAT_STOPS[low], HEAT_STOPS[low + 1])
    )
    return f"#{red:02x}{green:02x}{blue:02x}"


def _open(title: str, height: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'font-size="{FONT_SIZE}"><title>{text(title)}</title>'
    )


def number_tick(value: float) -> str:
    return number(int(value)) if float(value).is_integer() else number(value)

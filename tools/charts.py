"""PNG charts of the saved analytics' answers, drawn with matplotlib's Agg canvas.

The charts take plain rows (what a saved query returns), not a data frame, so they draw exactly what the
SQL answered. They use `Figure` + `FigureCanvasAgg` directly instead of pyplot: no global figure state, no
GUI backend, nothing left open after a chart is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# ISO weekday numbers as Athena's `day_of_week` gives them: Monday = 1 ... Sunday = 7.
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HOURS = range(24)


def hour_weekday_heatmap(counts: Mapping[tuple[int, int], int], zone: str, path: Path) -> Path:
    """Messages by hour of day (columns) and ISO weekday (rows) in the stage's time zone.

    `counts` maps (iso_weekday 1..7, hour 0..23) to a message count; absent cells are zero.
    """
    grid = [[counts.get((weekday, hour), 0) for hour in HOURS] for weekday in range(1, 8)]
    figure = _figure(width=11, height=4.2)
    axes = figure.add_subplot()
    image = axes.imshow(grid, aspect="auto", cmap="YlOrRd", interpolation="nearest")
    axes.set_xticks(list(HOURS), [f"{hour:02d}" for hour in HOURS])
    axes.set_yticks(range(7), WEEKDAYS)
    axes.set_xlabel(f"hour of day ({zone})")
    axes.set_title("When do users write? Messages by hour and weekday")
    figure.colorbar(image, ax=axes, label="messages")
    return _save(figure, path)


def daily_volume(days: Iterable[tuple[date, int]], path: Path) -> Path:
    """Messages per day, oldest first."""
    ordered = sorted(days)
    figure = _figure(width=9, height=4)
    axes = figure.add_subplot()
    labels = [day.strftime("%a %d %b") for day, _ in ordered]
    values = [count for _, count in ordered]
    bars = axes.bar(labels, values, color="#2a7ab9")
    axes.bar_label(bars, padding=2)
    axes.set_ylabel("messages")
    axes.set_title("Daily message volume")
    axes.tick_params(axis="x", labelrotation=30)
    axes.margins(y=0.12)
    return _save(figure, path)


def top_commands(commands: Iterable[tuple[str, int]], path: Path) -> Path:
    """Most used bot commands as horizontal bars, the most used on top."""
    ranked = sorted(commands, key=lambda item: (-item[1], item[0]))
    figure = _figure(width=8, height=max(2.5, 0.45 * len(ranked) + 1.2))
    axes = figure.add_subplot()
    bars = axes.barh([name for name, _ in ranked], [count for _, count in ranked], color="#3b9c5a")
    axes.bar_label(bars, padding=3)
    axes.invert_yaxis()
    axes.set_xlabel("uses")
    axes.set_title("Most used bot commands")
    axes.margins(x=0.12)
    return _save(figure, path)


def _figure(width: float, height: float) -> "Figure":
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: "Figure", path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path

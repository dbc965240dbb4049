"""The saved analytics: one Athena SQL file per question, loaded by the presentation stack and `tools query`.

Each `NN_name.sql` starts with `--` header lines saying the question it answers. The only placeholder is
`{{timezone}}`, replaced by the stage's IANA zone, so "hour of day" means the users' local hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

QUERY_DIR = Path(__file__).resolve().parent
TIMEZONE_PLACEHOLDER = "{{timezone}}"


@dataclass(frozen=True)
class SavedQuery:
    name: str  # file stem without the ordering prefix, e.g. `daily_message_count`
    question: str  # the header comment, one line
    sql: str  # Athena SQL with the stage's time zone filled in


def load_queries(timezone: str) -> list[SavedQuery]:
    """Every saved query, in file order, for a stage whose day and hours are in `timezone`."""
    return [_load(path, timezone) for path in sorted(QUERY_DIR.glob("*.sql"))]


def load_query(name: str, timezone: str) -> SavedQuery:
    queries = {query.name: query for query in load_queries(timezone)}
    if name not in queries:
        raise KeyError(f"no saved query {name!r}; available: {', '.join(queries)}")
    return queries[name]


def _load(path: Path, timezone: str) -> SavedQuery:
    text = path.read_text(encoding="utf-8")
    header = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        header.append(line.removeprefix("--").strip())
    if not header or not header[0]:
        raise ValueError(f"{path.name}: the first line must be a `--` comment saying the question it answers")
    name = path.stem.split("_", 1)[1] if path.stem[:2].isdigit() else path.stem
    return SavedQuery(name=name, question=header[0], sql=text.replace(TIMEZONE_PLACEHOLDER, timezone).strip())

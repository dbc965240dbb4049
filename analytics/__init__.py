"""The saved analytics: one Athena SQL file per question, loaded by the presentation stack and `tools query`.

Each `NN_name.sql` starts with `--` header lines saying the question it answers. The only placeholder is
`{{timezone}}`, replaced by the stage's IANA zone, so "hour of day" means the users' local hour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from stacks.time_zones import is_accepted_zone, unknown_zone_message

QUERY_DIR = Path(__file__).resolve().parent
TIMEZONE_PLACEHOLDER = "{{timezone}}"
_PLACEHOLDER = re.compile(r"\{\{[^}]*\}\}")


@dataclass(frozen=True)
class SavedQuery:
    name: str  # file stem without the ordering prefix, e.g. `daily_message_count`
    question: str  # the header comment, one line
    sql: str  # Athena SQL with the stage's time zone filled in


def load_queries(timezone: str) -> list[SavedQuery]:
    """Every saved query, in file order, for a stage whose day and hours are in `timezone`."""
    _check_zone(timezone)
    queries = [_load(path, timezone) for path in sorted(QUERY_DIR.glob("*.sql"))]
    names = [query.name for query in queries]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"two saved queries share the name {', '.join(repeated)}: names must be unique")
    return queries


def load_query(name: str, timezone: str) -> SavedQuery:
    queries = {query.name: query for query in load_queries(timezone)}
    if name not in queries:
        raise KeyError(f"no saved query {name!r}; available: {', '.join(queries)}")
    return queries[name]


def _check_zone(timezone: str) -> None:
    """A zone Athena does not know fails here rather than as an Athena error, and no stray quote reaches the
    SQL: the same list of zones as the stage config's."""
    if not is_accepted_zone(timezone):
        raise ValueError(unknown_zone_message(timezone))


def _load(path: Path, timezone: str) -> SavedQuery:
    text = path.read_text(encoding="utf-8").replace(TIMEZONE_PLACEHOLDER, timezone)
    unknown = _PLACEHOLDER.search(text)
    if unknown:
        raise ValueError(f"{path.name}: unknown placeholder {unknown.group()}; the only one is {TIMEZONE_PLACEHOLDER}")
    first_line = text.splitlines()[0] if text else ""
    question = first_line.removeprefix("--").strip()
    if not first_line.startswith("--") or not question:
        raise ValueError(f"{path.name}: the first line must be a `--` comment saying the question it answers")
    name = path.stem.split("_", 1)[1] if path.stem[:2].isdigit() else path.stem
    return SavedQuery(name=name, question=question, sql=text.strip())

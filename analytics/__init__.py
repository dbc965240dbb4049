"""The saved analytics: one Athena SQL file per question, loaded by the presentation stack and `tools query`.

Each `NN_name.sql` starts with `--` header lines saying the question it answers. Placeholders:
`{{timezone}}`, the stage's IANA zone (so "hour of day" means the users' local hour), `{{database}}`,
the stage's Glue database (for the raw table, `{{database}}.telegram_raw`), and `{{show_member_names}}`, the
stage's `show_member_names` as an SQL boolean (`true`/`false`): a query that names members shows names only
when it is true, so the named query, `tools query` and the report say the same.

A query that reads `telegram` reads it up to the minute: the loader puts `lake/telegram.sql` in front of it
as a common table expression named `telegram` (the compacted days plus the raw days not compacted yet,
flattened by `lake/raw_rows.sql`). A query that reads `telegram_updates` gets every update type of the
recent raw days (`lake/raw_updates.sql`: members, reactions, ...). The files stay as short as the questions
they answer, each saved query is still one self-contained statement (what an Athena named query must be),
and the exact text Athena runs is the text the DuckDB tests run.

A query that needs update types Telegram sends only on request says so in its header, in one line of a
fixed form: `-- updates: chat_member, message`. `webhook set` asks Telegram for those types too.

On a pseudonymized stage the analysts' saved queries (`analyst_queries`) read `telegram` as the pseudonymized
table's compacted days (`lake/telegram_pseudonymized.sql`); a query that reads anything else (the raw zone's
`telegram_updates`, a table of the database) is not one of theirs.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from lambdas.common.reading import UNIX_SECONDS_MAX
from lambdas.common.updates import MESSAGE_UPDATE_TYPES, UPDATE_TYPES
from lambdas.etl.day import DAY_PLACEHOLDER, KEY_REJECT_REASON
from lambdas.etl.flatten import CONTENT_TYPES, SERVICE_FIELDS
from lambdas.etl.schema import COLUMN_NAMES, PARTITION
from stacks.config import DEFAULT_RAW_WINDOW_DAYS, PSEUDONYMIZED_TABLE, StageConfig
from stacks.time_zones import is_accepted_zone, unknown_zone_message

QUERY_DIR = Path(__file__).resolve().parent
LAKE_DIR = QUERY_DIR / "lake"
TIMEZONE_PLACEHOLDER = "{{timezone}}"
SHOW_MEMBER_NAMES_PLACEHOLDER = "{{show_member_names}}"
# Raw days the member and reaction questions read (every update type is in the raw zone only).
UPDATES_WINDOW_DAYS = 31
TOMORROW = "current_date + INTERVAL '1' DAY"  # the last raw day: a zone east of UTC may already be there
# What a saved query may read besides the tables, each defined in front of the query that reads it.
RELATION_NOTES = {
    "telegram": "up to the minute: compacted days plus recent raw days (analytics/lake/telegram.sql)",
    "telegram_updates": f"every update of the last {UPDATES_WINDOW_DAYS} raw days (analytics/lake/raw_updates.sql)",
}
# What `telegram` is in the analysts' saved queries of a pseudonymized stage.
PSEUDONYMIZED_NOTE = "the pseudonymized table's compacted days (analytics/lake/telegram_pseudonymized.sql)"
_PLACEHOLDER = re.compile(r"\{\{[^}]*\}\}")
_LEADING_WITH = re.compile(r"\AWITH\s+", re.IGNORECASE)
_DATABASE_NAME = re.compile(r"[a-z0-9_]+")
UPDATES_HEADER = "-- updates:"


class QueryLoadError(ValueError):
    """The loader refuses to build the queries: a file in analytics/ is malformed or unreadable (the message
    names it), or the zone or database is unusable. The commands print it as one `error:` line."""


@dataclass(frozen=True)
class SavedQuery:
    name: str  # file stem without the ordering prefix, e.g. `daily_message_count`
    question: str  # the header comment, one line
    sql: str  # Athena SQL: the file's, with the stage's zone and database, reading `telegram` up to the minute
    database: str  # the Glue database it reads (the local DuckDB session names its schema so)
    update_types: tuple[str, ...] = ()  # its `-- updates:` header: the update types it reads from the raw zone


def load_queries(
    timezone: str, database: str, *, raw_window_days: int = DEFAULT_RAW_WINDOW_DAYS, show_member_names: bool = True,
    pseudonymized: bool = False,
) -> list[SavedQuery]:
    """Every saved query, in file order, for a stage whose day and hours are in `timezone`, whose Glue database is
    `database`, whose up-to-the-minute relation reads the raw days of the last `raw_window_days` days, and whose
    answers name members only when `show_member_names`. With `pseudonymized`, the analysts' queries instead: those
    that read `telegram` alone, over the pseudonymized table."""
    _check_zone(timezone)
    _check_database(database)
    if pseudonymized:
        relations = {"telegram": pseudonymized_telegram(database)}
        notes = {"telegram": PSEUDONYMIZED_NOTE}
    else:
        relations = {
            "telegram": up_to_the_minute(database, raw_window_days), "telegram_updates": recent_updates(database)
        }
        notes = RELATION_NOTES
    values = {"timezone": timezone, "database": database, "show_member_names": "true" if show_member_names else "false"}
    queries = [_load(path, values, relations, notes) for path in sorted(QUERY_DIR.glob("*.sql"))]
    if pseudonymized:
        queries = [query for query in queries if _reads_only_telegram(query, database)]
    names = [query.name for query in queries]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise QueryLoadError(f"two saved queries share the name {', '.join(repeated)}: names must be unique")
    return queries


def stage_queries(config: StageConfig) -> list[SavedQuery]:
    """The saved queries exactly as the stage's named queries hold them: its zone, database, raw window and whether
    they name members."""
    return load_queries(
        config.timezone, config.glue_database, raw_window_days=config.raw_window_days,
        show_member_names=config.show_member_names,
    )


def analyst_queries(config: StageConfig) -> list[SavedQuery]:
    """The analysts' saved queries of a pseudonymized stage, as its analysts' workgroup holds them (members by their
    pseudonyms: the table has no names)."""
    return load_queries(config.timezone, config.glue_database, show_member_names=False, pseudonymized=True)


def find_query(queries: Iterable[SavedQuery], name: str) -> SavedQuery:
    by_name = {query.name: query for query in queries}
    if name not in by_name:
        raise KeyError(f"no saved query {name!r}; available: {', '.join(by_name)}")
    return by_name[name]


def load_query(
    name: str, timezone: str, database: str, *, raw_window_days: int = DEFAULT_RAW_WINDOW_DAYS
) -> SavedQuery:
    return find_query(load_queries(timezone, database, raw_window_days=raw_window_days), name)


def raw_objects(database: str, first_day: str, last_day: str) -> str:
    """`lake/raw_objects.sql`: every stored copy of an update in the raw days `first_day` .. `last_day` (SQL date
    expressions) with what the ETL makes of it (the update, a duplicate, a reject and why), its type and payload."""
    _check_database(database)
    return _statement(
        LAKE_DIR / "raw_objects.sql",
        {
            "database": database,
            "first_day": first_day,
            "last_day": last_day,
            "update_types": _sql_strings(UPDATE_TYPES),
            "message_update_types": _sql_strings(MESSAGE_UPDATE_TYPES),
            "key_reject_reason": _sql_strings((KEY_REJECT_REASON,)),
        },
    )


def raw_updates(database: str, first_day: str, last_day: str) -> str:
    """`lake/raw_updates.sql`: every stored update of those raw days, deduplicated as the ETL counts them,
    with its type and payload (JSON)."""
    return _statement(
        LAKE_DIR / "raw_updates.sql", {"raw_objects": _indented(raw_objects(database, first_day, last_day))}
    )


def raw_rows(database: str, first_day: str, last_day: str) -> str:
    """`lake/raw_rows.sql`: the rows the ETL writes for the raw days `first_day` .. `last_day`; also the SQL
    the Athena engine compacts a day with."""
    return _statement(
        LAKE_DIR / "raw_rows.sql",
        {
            "raw_objects": textwrap.indent(raw_objects(database, first_day, last_day), "        "),
            "content_types": _sql_strings(CONTENT_TYPES),
            "service_fields": _sql_strings(SERVICE_FIELDS),
            "unix_seconds_max": str(UNIX_SECONDS_MAX),
        },
    )


def up_to_the_minute(database: str, raw_window_days: int = DEFAULT_RAW_WINDOW_DAYS) -> str:
    """`lake/telegram.sql`: the compacted days, plus the raw days of the last `raw_window_days` days not compacted
    yet (counted back from UTC's current_date, up to tomorrow in UTC, so every zone's "today" is in)."""
    if not (isinstance(raw_window_days, int) and raw_window_days >= 1):
        raise QueryLoadError(f"the raw window is at least 1 day, got {raw_window_days!r}")
    window_start = f"current_date - INTERVAL '{raw_window_days}' DAY"
    return _statement(
        LAKE_DIR / "telegram.sql",
        {
            "database": database,
            "raw_window_days": str(raw_window_days),
            "window_start": window_start,
            "columns": ", ".join(f'"{name}"' for name in (*COLUMN_NAMES, PARTITION.name)),
            "raw_rows": textwrap.indent(raw_rows(database, window_start, TOMORROW), " " * 12),
        },
    )


def pseudonymized_telegram(database: str) -> str:
    """`lake/telegram_pseudonymized.sql`: `telegram` for analysts, the pseudonymized table's compacted days."""
    return _statement(
        LAKE_DIR / "telegram_pseudonymized.sql",
        {
            "database": database,
            "table": PSEUDONYMIZED_TABLE,
            "columns": ", ".join(f'"{name}"' for name in (*COLUMN_NAMES, PARTITION.name)),
        },
    )


def _reads_only_telegram(query: SavedQuery, database: str) -> bool:
    """Whether a query (as loaded) reads nothing but the relation `telegram` defined in front of it: no other
    relation, no table of the database besides the pseudonymized one (which that relation reads)."""
    body = "\n".join(query.sql.splitlines()[len(leading_comments(query.sql.splitlines())):])
    tables = set(re.findall(rf"\b{re.escape(database)}\.(\w+)", body))
    return tables <= {PSEUDONYMIZED_TABLE} and not _reads(body, "telegram_updates")


def recent_updates(database: str) -> str:
    """Every update type of the last UPDATES_WINDOW_DAYS raw days, deduplicated: what the member and reaction
    questions read (the compacted zone keeps messages only)."""
    return raw_updates(database, f"current_date - INTERVAL '{UPDATES_WINDOW_DAYS}' DAY", TOMORROW)


def requested_updates(
    configured: Iterable[str], queries: Iterable[SavedQuery]
) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """The update types to ask Telegram for: the stage's `allowed_updates`, then each type a saved query
    declares that they lack (Telegram sends none of a type it was not asked for, so the query would answer
    nothing). Also which queries asked for each added type."""
    configured = tuple(configured)
    asked_by: dict[str, tuple[str, ...]] = {}
    for query in queries:
        for update_type in query.update_types:
            if update_type not in configured:
                asked_by[update_type] = (*asked_by.get(update_type, ()), query.name)
    added = sorted(asked_by, key=UPDATE_TYPES.index)
    return (*configured, *added), {update_type: asked_by[update_type] for update_type in added}


def athena_compaction_templates(database: str) -> dict[str, str]:
    """What the Athena compaction engine runs for one raw day (`{{day}}`, YYYY-MM-DD, filled in per run):
    `rows`, the enriched table's 21 columns for the day, by `raw_rows.sql` (UNLOADed as the day's Parquet);
    `report`, what the day's objects became (`raw_day_report.sql`: the counts and rejects the ETL reports)."""
    day = f"DATE '{DAY_PLACEHOLDER}'"
    return {
        "rows": _statement(
            LAKE_DIR / "compacted_day.sql",
            {"raw_rows": _indented(raw_rows(database, day, day)), "columns": ", ".join(f'"{name}"' for name in COLUMN_NAMES)},
        ),
        "report": _statement(
            LAKE_DIR / "raw_day_report.sql",
            {
                "raw_objects": textwrap.indent(raw_objects(database, day, day), " " * 8),
                "key_reject_reason": _sql_strings((KEY_REJECT_REASON,)),
            },
        ),
    }


def _check_zone(timezone: str) -> None:
    """A zone Athena does not know fails here rather than as an Athena error, and no stray quote reaches the
    SQL: the same list of zones as the stage config's."""
    if not is_accepted_zone(timezone):
        raise QueryLoadError(unknown_zone_message(timezone))


def _check_database(database: str) -> None:
    """A Glue database name as the stage config derives it: it is pasted into SQL, so nothing else passes."""
    if not _DATABASE_NAME.fullmatch(database):
        raise QueryLoadError(
            f"a Glue database name is lower-case letters, digits and underscores, got {database!r}"
        )


def _load(
    path: Path, values: Mapping[str, str], relations: Mapping[str, str], notes: Mapping[str, str]
) -> SavedQuery:
    text = _fill(path, values)
    lines = text.splitlines()
    first_line = lines[0] if lines else ""
    question = first_line.removeprefix("--").strip()
    if not first_line.startswith("--") or not question:
        raise QueryLoadError(
            f"{path.name}: the first line must be a `--` comment saying the question it answers"
        )
    header = leading_comments(lines)
    body = "\n".join(lines[len(header):]).strip()
    update_types = _declared_update_types(path, header)
    if _reads(body, "telegram_updates") and not update_types:
        raise QueryLoadError(
            f"{path.name}: it reads telegram_updates, so its header must name the update types it reads, "
            f"e.g. `{UPDATES_HEADER} chat_member, message`"
        )
    name = path.stem.split("_", 1)[1] if path.stem[:2].isdigit() else path.stem
    return SavedQuery(
        name=name, question=question, sql="\n".join([*header, _with_relations(body, relations, notes)]),
        database=values["database"],
        update_types=update_types,
    )


def _declared_update_types(path: Path, header: list[str]) -> tuple[str, ...]:
    """The update types of the header's `-- updates:` line (none without one): Bot API names, each once."""
    declarations = [line.removeprefix(UPDATES_HEADER) for line in header if line.startswith(UPDATES_HEADER)]
    if not declarations:
        return ()
    if len(declarations) > 1:
        raise QueryLoadError(f"{path.name}: one `{UPDATES_HEADER}` line at most, found {len(declarations)}")
    names = tuple(name.strip() for name in declarations[0].split(","))
    unknown = [name for name in names if name not in UPDATE_TYPES]
    if unknown:
        raise QueryLoadError(
            f"{path.name}: `{UPDATES_HEADER}` names unknown update types {unknown}; "
            f"the Bot API's are {', '.join(UPDATE_TYPES)}"
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise QueryLoadError(f"{path.name}: `{UPDATES_HEADER}` names {repeated} more than once")
    return names


def leading_comments(lines: list[str]) -> list[str]:
    """A saved query's header: its first lines that are `--` comments (the question first)."""
    header = []
    for line in lines:
        if not line.startswith("--"):
            break
        header.append(line)
    return header


def _with_relations(body: str, relations: Mapping[str, str], notes: Mapping[str, str]) -> str:
    """`body` with the relations it reads defined in front of it, merged into its own WITH clause."""
    used = [name for name in relations if _reads(body, name)]
    if not used:
        return body
    definitions = ",\n".join(
        f"{name} AS (\n    -- {notes[name]}\n{_indented(relations[name])}\n)" for name in used
    )
    leading_with = _LEADING_WITH.match(body)
    if leading_with:
        return f"WITH {definitions},\n{body[leading_with.end():]}"
    return f"WITH {definitions}\n{body}"


def _reads(body: str, relation: str) -> bool:
    return re.search(rf"\b(FROM|JOIN)\s+{relation}\b(?![.])", body, re.IGNORECASE) is not None


def _indented(sql: str) -> str:
    return textwrap.indent(sql, "    ")


def _statement(path: Path, values: Mapping[str, str]) -> str:
    """A lake file's SQL without its header comments (they explain the file, not each query that uses it)."""
    lines = _fill(path, values).splitlines()
    return "\n".join(lines[len(leading_comments(lines)):]).strip()


def _fill(path: Path, values: Mapping[str, str]) -> str:
    """The file's text with its `{{name}}` placeholders replaced; a placeholder not in `values` is an error.
    (A value may itself hold a placeholder for a later step, as the compaction templates' `{{day}}`.)"""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise QueryLoadError(f"{path.name}: cannot read it as UTF-8 text: {error}") from None
    unknown = [found for found in _PLACEHOLDER.findall(text) if found[2:-2] not in values]
    if unknown:
        known = ", ".join("{{" + name + "}}" for name in values)
        raise QueryLoadError(f"{path.name}: unknown placeholder {unknown[0]}; the known ones are {known}")
    return _PLACEHOLDER.sub(lambda found: values[found.group()[2:-2]], text)


def _sql_strings(values: tuple[str, ...]) -> str:
    return ", ".join("'" + value.replace("'", "''") + "'" for value in values)

"""The saved Athena SQL on DuckDB over the enriched Parquet: the same answers without an AWS account.

sqlglot transpiles Athena's dialect (Trino) to DuckDB's, but a plain transpile answers differently where
the two engines disagree (../shared/TOOLCHAIN.md). `to_duckdb` closes those gaps on the syntax tree:

- weekday: Trino's `EXTRACT(dow ...)` is 1..7 with Monday = 1, DuckDB's is 0..6 with Sunday = 0, so it
  becomes ISODOW (and `year_of_week` ISOYEAR, which DuckDB spells differently);
- rounding: Trino casts a double to an integer rounding half away from zero, DuckDB half to even, so such
  a cast gets an explicit ROUND (types come from the table's schema, so integer casts stay untouched);
- integer division: qualifying the query with the schema lets sqlglot keep Trino's truncating `/`.

Where DuckDB runs SQL that Athena refuses, `to_duckdb` refuses it too (`AthenaRefuses`, naming the construct),
so a query that answers locally is one Athena runs: `x IS [NOT] TRUE|FALSE|UNKNOWN` (Trino's grammar has it only
since 482, and Athena engine 3 does not say its Trino base), and a comparison of a string with a date, a
timestamp or a number (`date_col = '2026-01-05'`, `1 = '1'`: Trino converts neither side, DuckDB casts the
string). tools/ci/trino_grammar.py checks every statement sent to Athena against Trino's grammar itself.

`LocalLake` gives them the rest: the session time zone is UTC (Athena's `from_unixtime` is UTC, DuckDB
would use the host's) and `context_date` is read as a DATE, as the Glue table declares it. `AT TIME ZONE`
needs DuckDB's ICU extension, which this DuckDB wheel has built in (no download). Given a stage's
`DayWindow`, it reads only the days Athena's partition projection shows (see `DayWindow`).

The raw table (`telegram_raw`) is read as Athena's text table reads it: one row per line of each object
(Hadoop's line breaks: `\n`, `\r\n`, `\r`), with the object's `$path`. What DuckDB's JSON parser does
differently from Trino's is done first, in Python (`raw_lines`): a line that is not standard
JSON (DuckDB accepts `NaN`, `Infinity` and trailing commas), becomes NULL, an escaped lone surrogate
(`"\ud800"`) becomes `?`, as Athena writes it (DuckDB refuses the whole document), a number past a double's
range becomes the string "Infinity", as Trino re-serializes it, and an object that repeats a key keeps its
last value, as Trino's `json_parse` and Python's `json.loads` do (DuckDB's `->` finds the first, and its cast
to a MAP refuses the document). Bytes are read as Athena reads them: lambdas/common/reading.py.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from analytics import SavedQuery
from lambdas.common.layout import PARTITION_KEY, PREFIX
from lambdas.common.reading import LONE_SURROGATE_AS, refuse_json_constant, trino_double
from lambdas.etl.day import UnreadableObject, object_lines
from lambdas.etl.schema import COLUMNS, PARTITION
from stacks.config import PSEUDONYMIZED_TABLE, RAW_TABLE, TABLE, StageConfig
from tools.cli import CommandError

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from sqlglot import exp

# Trino's EXTRACT fields that DuckDB names or numbers differently; the others mean the same in both.
_EXTRACT_FIELDS = {
    "DOW": "ISODOW",
    "DAY_OF_WEEK": "ISODOW",
    "YOW": "ISOYEAR",
    "YEAR_OF_WEEK": "ISOYEAR",
    "DAY_OF_MONTH": "DAY",
    "DAY_OF_YEAR": "DOY",
}
# What `IS [NOT]` may not test on Athena (see `_refuse_truth_tests`), as sqlglot's token types.
_TRUTH_VALUES = {"TRUE", "FALSE", "UNKNOWN"}
# One day's enriched file, or any object of a day, relative to where the table's partitions start.
_PARTITION_FILE = re.compile(rf"(^|/){PARTITION_KEY}=[^/]+/[^/]+\.parquet$")
_PARTITION_OBJECT = re.compile(rf"(^|/){PARTITION_KEY}=[^/]+/[^/]+$")
# A partition value as Athena's projection formats it (`yyyy-MM-dd`); `date.fromisoformat` accepts more.
_PARTITION_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# The raw table's one column, and Athena's hidden column naming each row's object.
RAW_LINE = "line"
PATH_COLUMN = "$path"
# A local lake folder's zones, each laid out as its bucket; and the bucket name `$path` shows locally.
RAW_FOLDER = "raw"
ENRICHED_FOLDER = "enriched"
LOCAL_RAW_BUCKET = "local-raw-bucket"
# Athena's readers skip the objects of a folder whose name starts with one of these (Hive's hidden files).
_HIDDEN = ("_", ".")
_DUCKDB_TYPES = {"bigint": "BIGINT", "boolean": "BOOLEAN", "string": "VARCHAR", "date": "DATE"}
# A JSON string literal, and inside it one escape: a surrogate pair, a lone surrogate, or any other escape.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_ESCAPE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|(?P<lone>\\u[dD][89a-fA-F][0-9a-fA-F]{2})|\\.",
    re.DOTALL,
)

Rows = list[tuple[Any, ...]]
RawObject = tuple[str, str, bytes]  # a raw object's day (YYYY-MM-DD), `$path` and body


class AthenaRefuses(CommandError):
    """SQL that DuckDB would run but Athena refuses: refused before it runs, so no local answer hides it."""


def table_schema(database: str) -> dict[str, dict[str, dict[str, str]]]:
    """The stage's tables as Glue declares them, for sqlglot: the enriched Parquet columns plus the partition (the
    pseudonymized table's are the same), and the raw zone's lines (with Athena's hidden `$path` column)."""
    partition = {PARTITION.name: PARTITION.sql_type}
    enriched = {**{column.name: column.sql_type for column in COLUMNS}, **partition}
    return {
        database: {
            TABLE: enriched,
            PSEUDONYMIZED_TABLE: enriched,
            RAW_TABLE: {RAW_LINE: "string", PATH_COLUMN: "string", **partition},
        }
    }


def to_duckdb(athena_sql: str, database: str) -> str:
    """The DuckDB SQL that answers exactly what `athena_sql` (reading the tables of `database`) answers on Athena."""
    import sqlglot
    from sqlglot.errors import ErrorLevel
    from sqlglot.optimizer.annotate_types import annotate_types
    from sqlglot.optimizer.qualify import qualify

    _refuse_truth_tests(athena_sql)
    schema = table_schema(database)
    tree = sqlglot.parse_one(athena_sql, read="athena", error_level=ErrorLevel.RAISE)
    tree = annotate_types(qualify(tree, schema=schema, dialect="athena"), schema=schema, dialect="athena")
    _refuse_string_comparisons(tree)
    return tree.transform(_duckdb_semantics).sql(dialect="duckdb")


def _refuse_truth_tests(athena_sql: str) -> None:
    """`IS [NOT] TRUE|FALSE|UNKNOWN`, found in the tokens (sqlglot reads `IS UNKNOWN` as `IS NULL`, so the
    tree no longer shows it; comments and string literals are no tokens of the kind)."""
    from sqlglot.dialects import Dialect
    from sqlglot.tokens import TokenType

    tokens = Dialect.get_or_raise("athena").tokenize(athena_sql)
    for index, token in enumerate(tokens):
        if token.token_type != TokenType.IS:
            continue
        tested = tokens[index + 1 : index + 3]
        tested = tested if tested and tested[0].token_type == TokenType.NOT else tested[:1]
        if tested and tested[-1].token_type.name in _TRUTH_VALUES:
            construct = " ".join(["IS", *(word.text.upper() for word in tested)])
            raise AthenaRefuses(
                f"`{construct}` (line {token.line}) does not parse on Athena: Trino's grammar has IS [NOT] "
                "TRUE/FALSE/UNKNOWN only since Trino 482, and Athena engine 3 does not say its Trino base; "
                "write COALESCE(x, false) for `x IS TRUE`, `x IS NULL` for `x IS UNKNOWN`"
            )


def _refuse_string_comparisons(tree: "exp.Expression") -> None:
    """A comparison of a string with a date, timestamp or number, by the types sqlglot annotated."""
    from sqlglot import exp

    for node in tree.find_all(exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ,
                              exp.Between, exp.In):
        left = node.this
        rights = [node.args.get(side) for side in ("expression", "low", "high")] + list(node.expressions)
        for right in filter(None, rights):
            if _string_against_typed(left, right) or _string_against_typed(right, left):
                types = " with ".join(side.type.sql(dialect="athena") for side in (left, right))
                raise AthenaRefuses(
                    f"`{node.sql(dialect='athena')}` compares {types}: Athena (Trino) refuses it, DuckDB casts the "
                    "string; write a typed literal (DATE '2026-01-05', a number without quotes) or CAST one side"
                )


def _string_against_typed(string: "exp.Expression", other: "exp.Expression") -> bool:
    from sqlglot import exp

    return (
        string.type is not None
        and other.type is not None
        and string.type.is_type(*exp.DataType.TEXT_TYPES)
        and other.type.is_type(*exp.DataType.NUMERIC_TYPES, *exp.DataType.TEMPORAL_TYPES)
    )


def _duckdb_semantics(node: "exp.Expression") -> "exp.Expression":
    from sqlglot import exp

    if isinstance(node, exp.Extract) and node.name.upper() in _EXTRACT_FIELDS:
        node.set("this", exp.var(_EXTRACT_FIELDS[node.name.upper()]))
    elif (
        isinstance(node, (exp.Cast, exp.TryCast))
        and node.to.is_type(*exp.DataType.INTEGER_TYPES)
        and node.this.type is not None
        and node.this.type.is_type(*exp.DataType.REAL_TYPES)
    ):
        node.set("this", exp.Round(this=node.this))
    return node


@dataclass(frozen=True)
class DayWindow:
    """The days a stage's Athena tables show, both included: their partition projection's range, from the
    stage's `analytics_start_date` to `NOW+1DAYS`, which Athena evaluates in UTC (the extra day keeps a zone
    east of UTC's "today" in). Athena silently skips the partitions outside it, so a local query must skip
    them too or its answers differ."""

    first: date
    last: date

    @classmethod
    def for_stage(cls, config: StageConfig, now: datetime | None = None) -> DayWindow:
        today_utc = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).date()
        return cls(date.fromisoformat(config.analytics_start_date), today_utc + timedelta(days=1))

    def __contains__(self, day: date | None) -> bool:
        return day is not None and self.first <= day <= self.last

    def __str__(self) -> str:
        return f"{self.first.isoformat()} to {self.last.isoformat()}"


@dataclass(frozen=True)
class LakeFolders:
    """Where a local lake's two zones are, each laid out as its bucket (`telegram/context_date=D/...`) or as
    the table folder itself; either may be absent. The enriched bucket's `telegram_pseudonymized/`, when it has
    one, is the pseudonymized table."""

    enriched: Path | None
    raw: Path | None
    pseudonymized: Path | None = None

    @classmethod
    def find(cls, folder: Path) -> LakeFolders:
        """`DIR/raw` and `DIR/enriched` when DIR has either; otherwise DIR is the enriched zone alone."""
        raw, enriched = folder / RAW_FOLDER, folder / ENRICHED_FOLDER
        if not (raw.is_dir() or enriched.is_dir()):
            enriched = folder
        pseudonymized = enriched / PSEUDONYMIZED_TABLE
        return cls(
            _table_root(enriched) if enriched.is_dir() else None,
            _table_root(raw) if raw.is_dir() else None,
            pseudonymized if pseudonymized.is_dir() else None,
        )


class LocalLake:
    """A DuckDB session with the stage's tables: `telegram` over the enriched Parquet, `telegram_raw` over the
    raw objects' lines (see the module's docstring), in a schema named after the Glue database each query
    reads (created on first use).

    With a `window`, only the days inside it are read; `days_outside_window` counts the partitions left
    out. `shown_as` names the folders in error messages (an S3 URL rather than a scratch folder).
    `raw_objects` are raw objects read elsewhere, beside the raw folder's files (consumed once): the local Athena
    engine's, read from S3, whose keys are names and never become paths on this machine.
    """

    def __init__(
        self, folders: LakeFolders, window: DayWindow | None = None, *, shown_as: str | None = None,
        raw_objects: Iterable[RawObject] | None = None,
    ):
        import duckdb

        root = folders.enriched or folders.raw
        self._root = str(root) if root else None
        self._shown_as = shown_as or str(root)
        enriched = _partition_files(folders.enriched, "*.parquet")
        raw = _partition_files(folders.raw, "*")
        pseudonymized = _partition_files(folders.pseudonymized, "*.parquet")
        outside = {
            path.parent for path in (*enriched, *raw, *pseudonymized)
            if window is not None and _partition_day(path.parent) not in window
        }
        self.days_outside_window = len({folder.name for folder in outside})
        self._files = [str(path) for path in enriched if path.parent not in outside]
        self._raw_files = [path for path in raw if path.parent not in outside and athena_reads(path.name)]
        self._pseudonymized_files = [str(path) for path in pseudonymized if path.parent not in outside]
        if not self._files and not self._raw_files and not self._pseudonymized_files and raw_objects is None:
            hidden = f"; days outside {window}, not read: {self.days_outside_window}" if outside else ""
            raise CommandError(
                f"no enriched Parquet or raw objects in {self._shown_as} "
                f"(expected {PARTITION_KEY}=YYYY-MM-DD/ folders){hidden}"
            )
        self.connection: duckdb.DuckDBPyConnection = duckdb.connect()
        self.connection.execute("SET TimeZone = 'UTC'")
        self._schemas: set[str] = set()
        self._raw_table = raw_lines_table(chain(
            raw_objects or (),
            ((path.parent.name.partition("=")[2], _raw_path(path), path.read_bytes()) for path in self._raw_files),
        ))

    def run(self, query: SavedQuery) -> tuple[list[str], Rows]:
        """Column names and rows of one saved query."""
        return self.execute(query.sql, query.database, f"query {query.name}")

    def execute(self, athena_sql: str, database: str, what: str) -> tuple[list[str], Rows]:
        """Any Athena SQL over the stage's tables (`database`), translated for DuckDB."""
        import duckdb

        duckdb_sql = self._translated(athena_sql, database, what)
        try:
            cursor = self.connection.execute(duckdb_sql)
            rows = cursor.fetchall()
        except duckdb.Error as error:
            raise CommandError(f"{what} failed on DuckDB: {self._explain(error)}") from None
        return [column[0] for column in cursor.description], rows

    def arrow(self, athena_sql: str, database: str, what: str) -> "pa.Table":
        """Like `execute`, with the answer as an Arrow table (for rows written to Parquet)."""
        import duckdb

        duckdb_sql = self._translated(athena_sql, database, what)
        try:
            return self.connection.sql(duckdb_sql).to_arrow_table()
        except duckdb.Error as error:
            raise CommandError(f"{what} failed on DuckDB: {self._explain(error)}") from None

    def close(self) -> None:
        self.connection.close()

    def _translated(self, athena_sql: str, database: str, what: str) -> str:
        """The DuckDB SQL of `athena_sql`, over the database's tables; what Athena would refuse fails here."""
        self._create_schema(database)
        try:
            return to_duckdb(athena_sql, database)
        except AthenaRefuses as error:
            raise CommandError(f"{what}: {error}") from None

    def _create_schema(self, database: str) -> None:
        """The database's `telegram` and `telegram_raw`, as Glue declares them, whether or not a zone has files."""
        import duckdb

        if database in self._schemas:
            return
        partition = f"{PARTITION.name} {PARTITION.sql_type.upper()}"
        self.connection.execute(f'CREATE SCHEMA "{database}"')
        self.connection.register(f"{database}_raw_lines", self._raw_table)
        self.connection.execute(f'CREATE VIEW "{database}".{RAW_TABLE} AS SELECT * FROM "{database}_raw_lines"')
        for table, files in ((TABLE, self._files), (PSEUDONYMIZED_TABLE, self._pseudonymized_files)):
            if not files:
                columns = ", ".join(f'"{column.name}" {_DUCKDB_TYPES[column.sql_type]}' for column in COLUMNS)
                self.connection.execute(f'CREATE TABLE "{database}".{table} ({columns}, {partition})')
                continue
            # By column name, as Athena reads Parquet: a day written before a column was added reads it as null.
            try:
                self.connection.execute(
                    f'CREATE VIEW "{database}".{table} AS SELECT * FROM read_parquet({_sql_list(files)}, '
                    f"union_by_name = true, hive_partitioning = true, "
                    f"hive_types = {{'{PARTITION.name}': '{PARTITION.sql_type.upper()}'}})"
                )
            except duckdb.Error as error:
                raise CommandError(f"cannot open the Parquet in {self._shown_as}: {self._explain(error)}") from None
        self._schemas.add(database)

    def _explain(self, error: Exception) -> str:
        """DuckDB's message on one line (without the SQL excerpt it appends), naming the file at fault.

        DuckDB names the file for some faults only (a missing footer, a failed decompression): when it names
        none, each file is read in full until one fails, and that file and its reason are the message.
        """
        message = _first_line(error)
        if not any(path in message for path in self._files):
            message = next(filter(None, map(self._unreadable, self._files)), message)
        return message.replace(self._root, self._shown_as) if self._root else message

    def _unreadable(self, path: str) -> str | None:
        """Why DuckDB cannot read every value of one file; None when it can."""
        import duckdb

        try:
            self.connection.execute("SELECT count(COLUMNS(*)) FROM read_parquet(?)", [path]).fetchall()
        except duckdb.Error as error:
            return f"cannot read {path}: {_first_line(error)}"
        return None


def athena_reads(name: str) -> bool:
    """Whether Athena's raw table reads the object `name` of a day's folder (its key after the folder's prefix):
    an object of the folder itself, not hidden. Athena does not look into sub-folders, and a key ending in `/`
    (a folder marker; the empty name before the `/` of a `//`) names a folder."""
    return bool(name) and "/" not in name and not name.startswith(_HIDDEN)


def raw_lines_table(objects: Iterable[RawObject]) -> "pa.Table":
    """The raw table's rows for `(day, $path, body)` objects: one row per line, as Athena reads it."""
    import pyarrow as pa

    days, paths, lines = [], [], []
    for day, path, body in objects:
        for line in raw_lines(body, path):
            days.append(date.fromisoformat(day))
            paths.append(path)
            lines.append(line)
    return pa.table(
        {PARTITION.name: pa.array(days, pa.date32()), PATH_COLUMN: pa.array(paths, pa.string()),
         RAW_LINE: pa.array(lines, pa.string())}
    ).select([RAW_LINE, PATH_COLUMN, PARTITION.name])


def raw_lines(body: bytes, path: str = "") -> list[str | None]:
    """An object's lines as Athena's text table reads them, made readable to DuckDB as Trino reads them.

    The object is split as Athena's reader splits it (lambdas/etl/day.py `object_lines`: gunzipped when `path`
    ends in `.gz`, a byte order mark at its start dropped, Hadoop's line breaks) and each line read as Athena
    reads it (lambdas/common/reading.py: each sequence that is not UTF-8 as U+FFFD). An escaped lone surrogate
    becomes `?` and a line that is not standard JSON is None (see the module's docstring). A `.gz` object that is
    not gzip fails the query, as on Athena.
    """
    try:
        lines = object_lines(path, body)
    except UnreadableObject as error:
        raise CommandError(str(error)) from None
    return [
        _trino_line(_repair_escaped_surrogates(line) if "\\u" in line else line)
        for line in (raw.decode("utf-8", "replace") for raw in lines)
    ]


def _trino_line(line: str) -> str | None:
    """`line` when it is RFC 8259 JSON, as Trino's parser (Jackson's defaults) requires, else None: DuckDB's
    accepts more (`NaN`, `Infinity`, trailing commas), so DuckDB parses nothing from such a line. A line that
    DuckDB would read otherwise than Trino is written again as Trino keeps it: an object that repeats a key
    with each key once, holding its last value, and a number past a double's range as the string "Infinity"
    (DuckDB would read a double). Only such a line: every other one reaches DuckDB byte for byte."""
    rewritten = False

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal rewritten
        value = dict(pairs)
        rewritten = rewritten or len(value) != len(pairs)
        return value

    def double(token: str) -> float | str:
        nonlocal rewritten
        value = trino_double(token)
        rewritten = rewritten or isinstance(value, str)
        return value

    try:
        value = json.loads(line, parse_constant=refuse_json_constant, parse_float=double, object_pairs_hook=unique_keys)
    except (ValueError, RecursionError):
        return None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) if rewritten else line


def _repair_escaped_surrogates(line: str) -> str:
    """Each `\\uD800`-style escape of a lone surrogate inside a JSON string, replaced by what Athena writes for it."""
    return _JSON_STRING.sub(lambda string: _ESCAPE.sub(_repaired_escape, string.group()), line)


def _repaired_escape(escape: re.Match[str]) -> str:
    return LONE_SURROGATE_AS if escape.group("lone") else escape.group()


@contextmanager
def open_lake(source: str, window: DayWindow | None = None) -> Iterator[LocalLake]:
    """The lake at a local folder or an `s3://bucket[/prefix]` URL, open for as many queries as needed.

    A folder holds `raw/` and `enriched/`, each laid out as its bucket, or the enriched zone alone (its
    bucket's layout, `telegram/context_date=.../`, or the table's folder itself); an S3 URL is the enriched
    bucket. S3 is read with boto3 (so `AWS_ENDPOINT_URL` works) into a temporary folder: DuckDB's httpfs
    extension would have to be downloaded, and the enriched data is one small file per day. `window`: see
    `LocalLake`.
    """
    with tempfile.TemporaryDirectory(prefix="telegram-lake-") as scratch:
        folder = Path(source)
        if source.startswith("s3://"):
            folder = Path(scratch)
            download_lake(source, folder)
        if not folder.is_dir():
            raise CommandError(f"{source} is not a folder or an s3:// URL")
        folders = LakeFolders.find(folder)
        shown = folders.enriched or folders.raw
        shown_as = "/".join([source.rstrip("/"), *shown.relative_to(folder).parts]) if shown else source
        lake = LocalLake(folders, window, shown_as=shown_as)
        try:
            yield lake
        finally:
            lake.close()


def run_local(query: SavedQuery, source: str) -> tuple[list[str], Rows]:
    """One saved query on DuckDB over every day of the lake at `source` (see `open_lake`)."""
    with open_lake(source) as lake:
        return lake.run(query)


def _table_root(folder: Path) -> Path:
    table_folder = folder / PREFIX.rstrip("/")
    return table_folder if table_folder.is_dir() else folder


def _partition_files(root: Path | None, pattern: str) -> list[Path]:
    """The files directly inside each `context_date=...` folder of a zone (Athena reads no deeper)."""
    if root is None:
        return []
    return sorted(path for path in root.glob(f"{PARTITION_KEY}=*/{pattern}") if path.is_file())


def _raw_path(path: Path) -> str:
    """An object's `$path` as Athena shows it: `s3://<bucket>/telegram/context_date=D/<name>`."""
    return f"s3://{LOCAL_RAW_BUCKET}/{PREFIX}{path.parent.name}/{path.name}"


def _partition_day(folder: Path) -> date | None:
    """The day a `context_date=YYYY-MM-DD` folder holds; None for a value Athena's projection never produces."""
    value = folder.name.partition("=")[2]
    if not _PARTITION_DAY.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def download_lake(url: str, destination: Path, *, raw: bool = False) -> list[Path]:
    """Copy every day's Parquet (with `raw`, every raw object) under the URL into `destination`, keeping the
    keys' layout; the files written.

    A key is a name, not a path: one that would land outside `destination` (`..`, a leading `/`) is refused.
    """
    wanted = _PARTITION_OBJECT if raw else _PARTITION_FILE
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    root = destination.resolve()
    client = boto3.client("s3")
    written: list[Path] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                relative = item["Key"].removeprefix(prefix)
                if wanted.search(relative):
                    target = (root / relative).resolve()
                    if not target.is_relative_to(root):
                        raise CommandError(
                            f"refusing to copy s3://{bucket}/{item['Key']}: its key leads outside {destination}"
                        )
                    target.parent.mkdir(parents=True, exist_ok=True)
                    client.download_file(bucket, item["Key"], str(target))
                    written.append(target)
    except (BotoCoreError, ClientError) as error:
        raise CommandError(f"cannot read {url}: {error}") from None
    return written


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0]


def _sql_list(values: list[str]) -> str:
    quoted = ", ".join("'" + value.replace("'", "''") + "'" for value in values)
    return f"[{quoted}]"

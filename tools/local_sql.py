"""The saved Athena SQL on DuckDB over the enriched Parquet: the same answers without an AWS account.

sqlglot transpiles Athena's dialect (Trino) to DuckDB's, but a plain transpile answers differently where
the two engines disagree (../shared/TOOLCHAIN.md). `to_duckdb` closes those gaps on the syntax tree:

- weekday: Trino's `EXTRACT(dow ...)` is 1..7 with Monday = 1, DuckDB's is 0..6 with Sunday = 0, so it
  becomes ISODOW (and `year_of_week` ISOYEAR, which DuckDB spells differently);
- rounding: Trino casts a double to an integer rounding half away from zero, DuckDB half to even, so such
  a cast gets an explicit ROUND (types come from the table's schema, so integer casts stay untouched);
- integer division: qualifying the query with the schema lets sqlglot keep Trino's truncating `/`.

`LocalLake` gives them the rest: the session time zone is UTC (Athena's `from_unixtime` is UTC, DuckDB
would use the host's) and `context_date` is read as a DATE, as the Glue table declares it. `AT TIME ZONE`
needs DuckDB's ICU extension, which this DuckDB wheel has built in (no download). Given a stage's
`DayWindow`, it reads only the days Athena's partition projection shows (see `DayWindow`).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analytics import SavedQuery
from lambdas.common.layout import PARTITION_KEY, PREFIX
from lambdas.etl.schema import COLUMNS, PARTITION
from stacks.config import TABLE, StageConfig
from tools.cli import CommandError

if TYPE_CHECKING:
    import duckdb
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
# One day's enriched file, relative to where the table's partitions start.
_PARTITION_FILE = re.compile(rf"(^|/){PARTITION_KEY}=[^/]+/[^/]+\.parquet$")
# A partition value as Athena's projection formats it (`yyyy-MM-dd`); `date.fromisoformat` accepts more.
_PARTITION_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

Rows = list[tuple[Any, ...]]


def table_schema() -> dict[str, dict[str, str]]:
    """The `telegram` table as Glue declares it (Parquet columns plus the partition), for sqlglot."""
    return {TABLE: {column.name: column.sql_type for column in (*COLUMNS, PARTITION)}}


def to_duckdb(athena_sql: str) -> str:
    """The DuckDB SQL that answers exactly what `athena_sql` answers on Athena."""
    import sqlglot
    from sqlglot.errors import ErrorLevel
    from sqlglot.optimizer.annotate_types import annotate_types
    from sqlglot.optimizer.qualify import qualify

    schema = table_schema()
    tree = sqlglot.parse_one(athena_sql, read="athena", error_level=ErrorLevel.RAISE)
    tree = annotate_types(qualify(tree, schema=schema, dialect="athena"), schema=schema, dialect="athena")
    return tree.transform(_duckdb_semantics).sql(dialect="duckdb")


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
    """The days a stage's Athena table shows, both included: its partition projection's range, from the
    stage's `analytics_start_date` to `NOW`, which Athena evaluates as today's date in UTC. Athena silently
    skips the partitions outside it, so a local query must skip them too or its answers differ."""

    first: date
    last: date

    @classmethod
    def for_stage(cls, config: StageConfig, now: datetime | None = None) -> DayWindow:
        today_utc = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).date()
        return cls(date.fromisoformat(config.analytics_start_date), today_utc)

    def __contains__(self, day: date | None) -> bool:
        return day is not None and self.first <= day <= self.last

    def __str__(self) -> str:
        return f"{self.first.isoformat()} to {self.last.isoformat()}"


class LocalLake:
    """A DuckDB session whose `telegram` view reads the enriched Parquet under one folder.

    With a `window`, only the days inside it are read; `days_outside_window` counts the partitions left
    out. `shown_as` names `table_root` in error messages (an S3 URL rather than a scratch folder).
    """

    def __init__(self, table_root: Path, window: DayWindow | None = None, *, shown_as: str | None = None):
        import duckdb

        self._root = str(table_root)
        self._shown_as = shown_as or self._root
        found = sorted(table_root.glob(f"{PARTITION_KEY}=*/*.parquet"))
        outside = {path.parent for path in found if window is not None and _partition_day(path.parent) not in window}
        self.days_outside_window = len(outside)
        self._files = [str(path) for path in found if path.parent not in outside]
        if not self._files:
            hidden = f"; days outside {window}, not read: {len(outside)}" if outside else ""
            raise CommandError(
                f"no enriched Parquet in {self._shown_as} (expected {PARTITION_KEY}=YYYY-MM-DD/*.parquet){hidden}"
            )
        self.connection: duckdb.DuckDBPyConnection = duckdb.connect()
        self.connection.execute("SET TimeZone = 'UTC'")
        # By column name, as Athena reads Parquet: a day written before a column was added reads it as null.
        try:
            self.connection.execute(
                f"CREATE VIEW {TABLE} AS SELECT * FROM read_parquet({_sql_list(self._files)}, union_by_name = true, "
                f"hive_partitioning = true, hive_types = {{'{PARTITION.name}': '{PARTITION.sql_type.upper()}'}})"
            )
        except duckdb.Error as error:
            explained = self._explain(error)
            self.connection.close()
            raise CommandError(f"cannot open the Parquet in {self._shown_as}: {explained}") from None

    def run(self, query: SavedQuery) -> tuple[list[str], Rows]:
        """Column names and rows of one saved query."""
        import duckdb

        try:
            cursor = self.connection.execute(to_duckdb(query.sql))
            rows = cursor.fetchall()
        except duckdb.Error as error:
            raise CommandError(f"query {query.name} failed on DuckDB: {self._explain(error)}") from None
        return [column[0] for column in cursor.description], rows

    def close(self) -> None:
        self.connection.close()

    def _explain(self, error: Exception) -> str:
        """DuckDB's message on one line (without the SQL excerpt it appends), naming the file at fault.

        DuckDB names the file for some faults only (a missing footer, a failed decompression): when it names
        none, each file is read in full until one fails, and that file and its reason are the message.
        """
        message = _first_line(error)
        if not any(path in message for path in self._files):
            message = next(filter(None, map(self._unreadable, self._files)), message)
        return message.replace(self._root, self._shown_as)

    def _unreadable(self, path: str) -> str | None:
        """Why DuckDB cannot read every value of one file; None when it can."""
        import duckdb

        try:
            self.connection.execute("SELECT count(COLUMNS(*)) FROM read_parquet(?)", [path]).fetchall()
        except duckdb.Error as error:
            return f"cannot read {path}: {_first_line(error)}"
        return None


@contextmanager
def open_lake(source: str, window: DayWindow | None = None) -> Iterator[LocalLake]:
    """The lake at a local folder or an `s3://bucket[/prefix]` URL, open for as many queries as needed.

    Either may hold the bucket's layout (`telegram/context_date=.../`) or the table's folder itself. S3 is
    read with boto3 (so `AWS_ENDPOINT_URL` works) into a temporary folder: DuckDB's httpfs extension would
    have to be downloaded, and the enriched data is one small file per day. `window`: see `LocalLake`.
    """
    with tempfile.TemporaryDirectory(prefix="telegram-lake-") as scratch:
        folder = Path(source)
        if source.startswith("s3://"):
            folder = Path(scratch)
            download_lake(source, folder)
        if not folder.is_dir():
            raise CommandError(f"{source} is not a folder or an s3:// URL")
        table_root = _table_root(folder)
        shown_as = "/".join([source.rstrip("/"), *table_root.relative_to(folder).parts])
        lake = LocalLake(table_root, window, shown_as=shown_as)
        try:
            yield lake
        finally:
            lake.close()


def run_local(query: SavedQuery, source: str) -> tuple[list[str], Rows]:
    """One saved query on DuckDB over every day of the enriched Parquet at `source` (see `open_lake`)."""
    with open_lake(source) as lake:
        return lake.run(query)


def _table_root(folder: Path) -> Path:
    table_folder = folder / PREFIX.rstrip("/")
    return table_folder if table_folder.is_dir() else folder


def _partition_day(folder: Path) -> date | None:
    """The day a `context_date=YYYY-MM-DD` folder holds; None for a value Athena's projection never produces."""
    value = folder.name.partition("=")[2]
    if not _PARTITION_DAY.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def download_lake(url: str, destination: Path) -> list[Path]:
    """Copy every day's Parquet under the URL into `destination`, keeping the keys' layout; the files written.

    A key is a name, not a path: one that would land outside `destination` (`..`, a leading `/`) is refused.
    """
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
                if _PARTITION_FILE.search(relative):
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

"""`python -m tools erase --user ID | --chat ID (--stage S | --local DIR) [--yes]`: erase a person, or a whole
chat, from every zone of a stage.

It reads every stored object and every version of it (tools/operate/traces.py says what of each holds them):

- **raw** (`telegram/` of the raw bucket): their updates' lines are removed from each batch (the batch is written
  again under its key, then its older versions deleted), their single-update objects deleted with every version,
  and other people's updates that embed them are scrubbed;
- **compacted** and **pseudonymized** days (`telegram/`, `telegram_pseudonymized/` of the enriched bucket): their
  rows are filtered out of each day's file, every other row exactly as it was (not compacted again: raw updates
  may have expired), then the file's older versions deleted; **athena staging**: staged files holding their rows;
- **ingest state** (`ingest-state/` of the raw bucket): the chats-seen records of their private chat (for a chat:
  its records and its group-upgrade links), every version;
- **query results** (the Athena results bucket): each result holding their id, pseudonym, a name or a text of
  theirs, with its `.metadata`.

It prints what it found (counts per zone and day) and changes nothing without `--yes`. With `--yes` it erases, in
an order that leaves every zone readable and consistent if it stops half way: query results, then raw (so that no
compaction can bring a row back), then the compacted days, the state, and the query results again (those written
meanwhile); every step is judged again on what is stored when it runs, so a second run finishes what a stopped one
began and otherwise finds nothing. Last, an audit record without personal data (`erasures/` of the enriched
bucket: what, when, by whom, the counts, and the subject as its keyed hash) is written.

`--local DIR` erases from a local lake (`DIR/raw/`, `DIR/enriched/`, as the demo leaves them): the same rules on
files, which have no versions.
"""

from __future__ import annotations

import argparse
import getpass
import gzip
import io
import json
import os
import re
import secrets
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from lambdas.common.envelope import UPDATE
from lambdas.common.layout import (
    ATHENA_STAGING_PREFIX, CHAT_LINKS_PREFIX, CHATS_SEEN_PREFIX, PREFIX, STATE_PREFIX, raw_object_kind,
)
from lambdas.etl.pseudonymize import MIN_KEY_BYTES, PSEUDONYMIZED_PREFIX, Pseudonymizer, read_key
from stacks import outputs
from stacks.config import StageConfig
from tools.cli import CommandError, add_stage_argument, aws_session, plain, require_output, stack_outputs, stage_config
from tools.local.sql import ENRICHED_FOLDER, RAW_FOLDER
from tools.operate.traces import Subject, Traces, compact_json

# Where the audit records go, in the enriched bucket: outside every table's prefix, readable by no analyst.
ERASURES_PREFIX = "erasures/"
# Objects read at once while searching (S3 round trips, not CPU, bound a scan), and the S3 connections for them.
SCAN_CONCURRENCY = 16
# The zone whose objects are Athena's answers: each result that holds them goes with its metadata.
QUERY_RESULTS = "query results"
# The key of a local lake's pseudonyms and audit records (a local lake has no Secrets Manager).
LOCAL_KEY_FILE = "pseudonym.key"
# Athena writes beside each result its metadata, named after it.
METADATA_SUFFIX = ".metadata"
PARQUET_MAGIC = b"PAR1"
_DAY = re.compile(r"(?:context_date=|chats-seen/)([0-9]{4}-[0-9]{2}-[0-9]{2})/")
_CHATS_SEEN_KEY = re.compile(rf"{re.escape(CHATS_SEEN_PREFIX)}[^/]+/(-?[0-9]+)/[^/]+")
_CHAT_LINK_KEY = re.compile(rf"{re.escape(CHAT_LINKS_PREFIX)}(-?[0-9]+)/(-?[0-9]+)\.json")
_WHITESPACE = re.compile(r"\s+")
# What erasing does not reach, said every time.
NOT_ERASED = (
    "messages of other people that quote or name them (an @username typed in a text, words copied), and a forward "
    "from an account that hides its id (it goes by a chosen name only)",
    "copies outside the lake: downloaded reports and query answers, exports, screenshots, Telegram itself; a "
    "history export made before the erasure brings them back if imported again (`import-history`): make a new one",
    "CloudWatch logs and S3 server access logs, which may name a private chat's id (= the user's): they expire "
    "after the stage's log_retention_days",
    "Athena's query history (the text of queries run in the workgroups, kept by Athena for 45 days) and records "
    "Firehose could not deliver (firehose-errors/, kept as long as the logs)",
    "updates still on their way: Telegram may send them again, and Firehose writes a batch up to a minute late; "
    "block the person first, or run erase again a few minutes later",
)


# ---- where objects are stored


@dataclass(frozen=True)
class Version:
    """One stored version of an object: its key, version id (None in a folder), whether it is the current one, and
    whether it is a delete marker (no data)."""

    key: str
    version_id: str | None
    latest: bool = True
    marker: bool = False


class Store(Protocol):
    name: str

    def versions(self, prefix: str) -> Iterator[Version]: ...

    def read(self, version: Version) -> bytes: ...

    def put(self, key: str, body: bytes) -> None: ...

    def delete(self, version: Version) -> None: ...


class S3Store:
    """A bucket, every version of every object: deletes name a version, so nothing stays behind as noncurrent."""

    def __init__(self, s3: Any, bucket: str):
        self.s3 = s3
        self.bucket = bucket
        self.name = f"s3://{bucket}"

    def versions(self, prefix: str) -> Iterator[Version]:
        for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Versions", ()):
                yield Version(item["Key"], item["VersionId"], item["IsLatest"])
            for item in page.get("DeleteMarkers", ()):
                yield Version(item["Key"], item["VersionId"], item["IsLatest"], marker=True)

    def read(self, version: Version) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=version.key, VersionId=version.version_id)["Body"].read()

    def put(self, key: str, body: bytes) -> None:
        extra = {"ContentType": "application/vnd.apache.parquet"} if body.startswith(PARQUET_MAGIC) else {}
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)

    def delete(self, version: Version) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=version.key, VersionId=version.version_id)


class FolderStore:
    """A local lake's zone, laid out as its bucket: one version per file."""

    def __init__(self, root: Path):
        self.root = root
        self.name = str(root)

    def versions(self, prefix: str) -> Iterator[Version]:
        folder = self.root / prefix.rpartition("/")[0]  # only the folder the prefix is in is walked
        for path in sorted(folder.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(prefix):
                yield Version(key, None)

    def read(self, version: Version) -> bytes:
        return (self.root / version.key).read_bytes()

    def put(self, key: str, body: bytes) -> None:
        """Written whole beside it, then renamed over it: a reader sees the old file or the new one."""
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.erasing")
        partial.write_bytes(body)
        partial.replace(path)

    def delete(self, version: Version) -> None:
        (self.root / version.key).unlink(missing_ok=True)


# ---- what each zone holds of them


@dataclass
class Verdict:
    """What one version of an object holds of them: nothing, or what is left without them (`body`; None when
    nothing is: the object goes), with counts and the names and texts of theirs it held."""

    holds: bool
    body: bytes | None = None
    counts: Counter[str] = field(default_factory=Counter)
    traces: Traces = field(default_factory=Traces)

    @classmethod
    def nothing(cls) -> Verdict:
        return cls(False)


Judge = Callable[[str, bytes], Verdict]


@dataclass(frozen=True)
class Zone:
    """A part of the stage: where (a store and a prefix), and how one version of an object there is judged."""

    name: str
    store: Store
    prefix: str
    judge: Judge


def raw_judge(subject: Subject) -> Judge:
    """A raw object without their updates and lines, others' updates scrubbed (tools/operate/traces.py)."""
    from lambdas.etl.day import UnreadableObject, object_lines

    def judge(key: str, body: bytes) -> Verdict:
        day = _day_of(key)
        kind = raw_object_kind(key, day) if day else None
        try:
            lines = object_lines(key, body)
        except UnreadableObject:
            lines = [body]
        if kind is None or not any(subject.may_hold(line.decode("utf-8", "replace")) for line in lines):
            return _opaque(subject, body.decode("utf-8", "replace"))
        verdict = Verdict(False)
        kept = []
        for line in lines:
            kept_line = _line_without(subject, line, kind, verdict)
            if kept_line is not None:
                kept.append(kept_line)
        if not verdict.holds:
            return verdict
        if kept:
            joined = kept[0] if kind == "single" else b"".join(line + b"\n" for line in kept)
            verdict.body = gzip.compress(joined, mtime=0) if key.endswith(".gz") else joined
        return verdict

    return judge


def _line_without(subject: Subject, line: bytes, kind: str, verdict: Verdict) -> bytes | None:
    """One line as it stays (None: it goes), counted in `verdict`."""
    text = line.decode("utf-8", "replace")
    if not subject.may_hold(text):
        return line
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        document = None
    update = document.get(UPDATE) if kind == "batch" and isinstance(document, dict) else document
    if not isinstance(update, dict):  # no update to keep: a line that is not one, holding their id
        verdict.holds = True
        verdict.counts["unreadable lines removed"] += 1
        return None
    verdict.traces.update(subject.traces(update))
    if subject.owns(update):
        verdict.holds = True
        verdict.counts["updates removed"] += 1
        return None
    scrubbed, changed = subject.scrubbed(update)
    if not changed:
        return line
    verdict.holds = True
    verdict.counts["updates scrubbed"] += 1
    try:
        return compact_json({**document, UPDATE: scrubbed} if kind == "batch" else scrubbed)
    except ValueError as error:
        raise CommandError(f"cannot write a scrubbed update again ({error}): {text[:120]}") from None


def _opaque(subject: Subject, text: str, needles: Sequence[str] = ()) -> Verdict:
    """An object this module cannot take apart: it goes whole when it holds their id (or one of `needles`)."""
    if subject.may_hold(text) or _holds_needle(text, needles):
        return Verdict(True)
    return Verdict.nothing()


def table_judge(subject: Subject, their_id: int, *, staged: bool = False) -> Judge:
    """A day's Parquet file (of either table) without their rows, every other row as it was: a person's are those
    whose `user_id` or `chat_id` is `their_id` (their id, or in the pseudonymized table their pseudonym; a private
    chat's id is its user's), a chat's those whose `chat_id` is. A staged file (athena staging) goes whole."""
    columns = ("user_id", "chat_id") if subject.kind == "user" else ("chat_id",)

    def judge(key: str, body: bytes) -> Verdict:
        if not body.startswith(PARQUET_MAGIC):
            return Verdict.nothing()
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(body))
        theirs = pa.array([False] * table.num_rows)
        for column in columns:
            theirs = pc.or_(theirs, pc.fill_null(pc.equal(table[column], pa.scalar(their_id, pa.int64())), False))
        removed = pc.sum(theirs).as_py() or 0
        if not removed:
            return Verdict.nothing()
        rows = table.filter(theirs)
        traces = Traces()
        for column, found in (("text", traces.texts), ("caption", traces.texts), ("user_first_name", traces.names),
                              ("user_last_name", traces.names), ("user_username", traces.names)):
            found.update(value for value in rows[column].to_pylist() if value)
        verdict = Verdict(True, counts=Counter({"rows removed": removed}), traces=traces)
        remaining = table.filter(pc.invert(theirs))
        if remaining.num_rows and not staged:
            verdict.body = _parquet(remaining)
        return verdict

    return judge


def _parquet(table: Any) -> bytes:
    """Rows written as the ETL writes a day (lambdas/etl/compact.py): the enriched schema, zstd."""
    from lambdas.etl.compact import BATCH_ROWS, write_batches
    from lambdas.etl.schema import arrow_schema

    table = table.select(arrow_schema().names)
    with tempfile.TemporaryDirectory(prefix="erase-") as folder:
        path = Path(folder) / "day.parquet"
        write_batches(path, table.to_batches(BATCH_ROWS))
        return path.read_bytes()


def state_judge(subject: Subject) -> Judge:
    """An ingest-state record is theirs by its key: the chats-seen records of their chat (a private chat's id is
    its user's), and, for a chat, the links of its group upgrades."""

    def judge(key: str, body: bytes) -> Verdict:
        seen = _CHATS_SEEN_KEY.fullmatch(key)
        link = _CHAT_LINK_KEY.fullmatch(key)
        chats = {int(seen[1])} if seen else {int(link[1]), int(link[2])} if link and subject.kind == "chat" else set()
        if subject.id not in chats:
            return Verdict.nothing()
        traces = Traces()
        record = _json_object(body)  # the names it holds, for the query results; it goes whatever it holds
        traces.names.update(record[name] for name in ("title", "username") if isinstance(record.get(name), str))
        return Verdict(True, counts=Counter({"records": 1}), traces=traces)

    return judge


def _json_object(body: bytes) -> dict[str, Any]:
    """A record's JSON object, or an empty one when it is none."""
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def results_judge(subject: Subject, needles: Sequence[str]) -> Judge:
    """A query result (or anything else in the results bucket) holding their id, pseudonym, a name or a text of
    theirs (`needles`, normalized) goes; its `.metadata` goes with it (see `scan`)."""

    def judge(key: str, body: bytes) -> Verdict:
        if key.endswith(METADATA_SUFFIX):
            return Verdict.nothing()
        return _opaque(subject, body.decode("utf-8", "replace"), needles)

    return judge


def _normalized(text: str) -> str:
    """Text compared as the saved queries may show it: lower-cased, each run of spaces one space, trimmed, and a
    CSV's doubled quote as one."""
    return _WHITESPACE.sub(" ", text.replace('""', '"').lower()).strip()


def _holds_needle(text: str, needles: Sequence[str]) -> bool:
    if not needles:
        return False
    normalized = _normalized(text)
    return any(needle in normalized for needle in needles)


def _day_of(key: str) -> date | None:
    found = _DAY.search(key)
    try:
        return date.fromisoformat(found[1]) if found else None
    except ValueError:
        return None


# ---- finding and erasing


@dataclass
class Finding:
    """One object of a zone that holds them: its versions that do (deleted), whether its current version is written
    again without them first, and the delete markers left once no version is (a key with only markers names them).
    `forced`: every version goes, whatever it holds (a result's `.metadata`, which goes with the result)."""

    zone: Zone
    key: str
    rewrite: bool
    versions: list[Version]
    markers: list[Version]
    counts: Counter[str]
    traces: Traces
    forced: bool = False
    body: bytes | None = None  # what the current version is written again as (judged right before erasing only)

    @property
    def day(self) -> str:
        found = _day_of(self.key)
        return found.isoformat() if found else "-"


def judge_key(zone: Zone, key: str, versions: Sequence[Version], *, keep_body: bool = False) -> Finding | None:
    """What to do with one object: every version is judged (a noncurrent one, kept by versioning, holds them as
    much as the current one). `keep_body`: with what to write again (a scan keeps no bodies in memory)."""
    data = [version for version in versions if not version.marker]
    holding: list[tuple[Version, Verdict]] = []
    for version in data:
        verdict = zone.judge(key, zone.store.read(version))
        if verdict.holds:
            holding.append((version, verdict))
    if not holding:
        return None
    latest = next((verdict for version, verdict in holding if version.latest), None)
    rewrite = latest is not None and latest.body is not None
    traces = Traces()
    for _, verdict in holding:
        traces.update(verdict.traces)
    everything = len(holding) == len(data) and not rewrite
    markers = [version for version in versions if version.marker] if everything else []
    counts = (latest or holding[0][1]).counts.copy()
    body = latest.body if rewrite and keep_body and latest is not None else None
    return Finding(zone, key, rewrite, [version for version, _ in holding], markers, counts, traces, body=body)


def forced(zone: Zone, key: str, versions: Sequence[Version]) -> Finding:
    """Every version of an object, and its delete markers."""
    data = [version for version in versions if not version.marker]
    markers = [version for version in versions if version.marker]
    return Finding(zone, key, False, data, markers, Counter(), Traces(), forced=True)


def scan(zone: Zone) -> Iterator[Finding]:
    """Every object of the zone that holds them (and the `.metadata` of each query result that does), read
    SCAN_CONCURRENCY objects at a time: a stage's every object is read once."""
    by_key: dict[str, list[Version]] = defaultdict(list)
    for version in zone.store.versions(zone.prefix):
        by_key[version.key].append(version)
    keys = sorted(by_key)
    with ThreadPoolExecutor(max_workers=SCAN_CONCURRENCY, thread_name_prefix="erase-scan") as pool:
        judged = list(pool.map(lambda key: judge_key(zone, key, by_key[key]), keys))
    for key, finding in zip(keys, judged):
        if finding is None:
            continue
        yield finding
        sibling = f"{key}{METADATA_SUFFIX}"
        if zone.name == QUERY_RESULTS and sibling in by_key:
            yield forced(zone, sibling, by_key[sibling])


def erase_finding(finding: Finding) -> Counter[str]:
    """Erase one object as it is stored now (judged again: it may have changed since it was found, or a stopped run
    may have done part of it); the counts of what was done. The object is written again first, then its versions
    that hold them are deleted: stopped between the two, the zone holds the object without them as its current
    version, and the next run deletes the rest."""
    zone, store = finding.zone, finding.zone.store
    versions = [version for version in store.versions(finding.key) if version.key == finding.key]
    now = (
        forced(zone, finding.key, versions) if finding.forced
        else judge_key(zone, finding.key, versions, keep_body=True)
    )
    done: Counter[str] = Counter()
    if now is None or not (now.versions or now.markers):
        return done
    if now.body is not None:
        store.put(finding.key, now.body)
        done["objects rewritten"] += 1
    elif now.versions:
        done["objects deleted"] += 1
    # In a folder the put replaced the file itself (it has no versions): only a bucket keeps the old one to delete.
    replaced = [version for version in now.versions if now.rewrite and version.version_id is None]
    for version in [*now.versions, *now.markers]:
        if version not in replaced:
            store.delete(version)
    done["versions deleted"] += len([version for version in now.versions if version.version_id is not None])
    done.update(now.counts)
    return done


# ---- a stage's lake, and one erasure of it


@dataclass(frozen=True)
class Lake:
    """Where a stage's zones are, its pseudonym key, and who erases."""

    stage: str
    raw: Store
    enriched: Store
    results: Store | None  # a local lake has no query results
    pseudonymizer: Pseudonymizer
    who: str


@dataclass
class Erasure:
    """One run of `tools erase`: find, show, and with `yes` erase, in the order the module's docstring gives."""

    lake: Lake
    subject: Subject
    found: dict[str, list[Finding]] = field(default_factory=dict)

    def zones(self) -> list[Zone]:
        """The zones holding data, in the order they are erased (query results come before and after them)."""
        lake, subject = self.lake, self.subject
        pseudonym = lake.pseudonymizer.pseudonym(subject.id)
        analysts_id = pseudonym if subject.kind == "user" else lake.pseudonymizer.chat_pseudonym(subject.id)
        return [
            Zone("raw", lake.raw, PREFIX, raw_judge(subject)),
            Zone("pseudonymized", lake.enriched, PSEUDONYMIZED_PREFIX, table_judge(subject, analysts_id)),
            Zone("compacted", lake.enriched, PREFIX, table_judge(subject, subject.id)),
            Zone("athena staging", lake.enriched, ATHENA_STAGING_PREFIX, table_judge(subject, subject.id, staged=True)),
            Zone("ingest state", lake.raw, STATE_PREFIX, state_judge(subject)),
        ]

    def results_zone(self) -> Zone | None:
        """The query results, searched with what the other zones were found to hold of them."""
        if self.lake.results is None:
            return None
        return Zone(QUERY_RESULTS, self.lake.results, "", results_judge(self.subject, self.needles()))

    def needles(self) -> list[str]:
        """What a query result of theirs may hold besides their id: their pseudonym, names and texts as found."""
        traces = Traces()
        for findings in self.found.values():
            for finding in findings:
                traces.update(finding.traces)
        values = {str(self.pseudonym), *traces.names, *traces.texts}
        return sorted(normalized for value in values if (normalized := _normalized(value)))

    @property
    def pseudonym(self) -> int:
        """The keyed hash that names them in the audit record (and, for a person, in the pseudonymized table)."""
        return self.lake.pseudonymizer.pseudonym(self.subject.id)

    def scan(self) -> dict[str, list[Finding]]:
        self.found = {zone.name: list(scan(zone)) for zone in self.zones()}
        results = self.results_zone()
        if results is not None:
            self.found[results.name] = list(scan(results))
        return self.found

    def erase(self) -> dict[str, Counter[str]]:
        """Erase what `scan` found, zone by zone; the counts of what was done."""
        done: dict[str, Counter[str]] = defaultdict(Counter)
        results = self.results_zone()
        order = [*([results] if results else []), *self.zones()]
        for zone in order:
            for finding in self.found.get(zone.name, ()):
                done[zone.name].update(self._erased(finding))
        if results is not None:  # results written while the other zones were erased
            for finding in scan(results):
                done[results.name].update(self._erased(finding))
        return done

    def _erased(self, finding: Finding) -> Counter[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return erase_finding(finding)
        except (BotoCoreError, ClientError, OSError) as error:
            raise CommandError(
                f"erase stopped at {finding.zone.name} {finding.zone.store.name}/{finding.key}: {error}. Every zone "
                "is still readable; run the same command again to finish"
            ) from None

    def audit_record(self, started: datetime, done: Mapping[str, Counter[str]]) -> tuple[str, bytes]:
        """The record of this erasure, with no personal data: what kind, the keyed hash, when, who, the counts."""
        finished = datetime.now(timezone.utc)
        record = {
            "subject": self.subject.kind,
            "subject_keyed_hash": str(self.pseudonym),
            "keyed_hash": "HMAC-SHA256 of the id with the stage's pseudonym key, first 63 bits (lambdas/etl/"
            "pseudonymize.py): the pseudonymized table names a person by the same number",
            "stage": self.lake.stage,
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": finished.isoformat(timespec="seconds"),
            "by": self.lake.who,
            "found": {zone: _totals(findings) for zone, findings in self.found.items() if findings},
            "erased": {zone: dict(counts) for zone, counts in done.items() if counts},
            "not_erased": list(NOT_ERASED),
        }
        key = f"{ERASURES_PREFIX}{self.pseudonym}/{finished.strftime('%Y-%m-%dT%H-%M-%SZ')}.json"
        return key, json.dumps(record, indent=2).encode("utf-8")


def _totals(findings: Iterable[Finding]) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for finding in findings:
        totals.update(finding.counts)
        totals["objects"] += 1
        totals["versions"] += len([version for version in finding.versions if version.version_id is not None])
    return dict(totals)


def found_table(found: Mapping[str, Sequence[Finding]]) -> Any:
    """What was found, per zone and day."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Found")
    for heading in ("zone", "day", "objects", "versions", "what"):
        table.add_column(heading, justify="right" if heading in ("objects", "versions") else "left")
    for zone, findings in found.items():
        by_day: dict[str, list[Finding]] = defaultdict(list)
        for finding in findings:
            by_day[finding.day].append(finding)
        for day, day_findings in sorted(by_day.items()):
            totals = _totals(day_findings)
            objects, versions = totals.pop("objects"), totals.pop("versions")
            what = ", ".join(f"{count} {name}" for name, count in sorted(totals.items()))
            table.add_row(zone, day, str(objects), str(versions), Text(plain(what)))
    return table


# ---- the command


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "erase",
        help="erase a person (or a chat) from every zone of a stage: shows what it finds, erases with --yes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    whom = parser.add_mutually_exclusive_group(required=True)
    whom.add_argument("--user", type=_telegram_id, metavar="ID", help="the Telegram user id of the person")
    whom.add_argument("--chat", type=_telegram_id, metavar="ID", help="a chat id: the whole chat leaves the lake")
    add_stage_argument(parser)
    parser.add_argument("--local", metavar="DIR", type=Path, help="a local lake (DIR/raw, DIR/enriched: demo-output/lake)")
    parser.add_argument(
        "--key-file", type=Path,
        help=f"with --local: the pseudonym key (default DIR/{LOCAL_KEY_FILE}, made when the lake has no pseudonymized "
        "table yet)",
    )
    parser.add_argument("--yes", action="store_true", help="erase what was found (without it, nothing changes)")
    parser.set_defaults(func=erase_command)


def erase_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    config = stage_config(args)
    subject = Subject("user", args.user) if args.user is not None else Subject("chat", args.chat)
    if args.key_file is not None and args.local is None:
        raise CommandError("--key-file applies only with --local (a stage's key is its Secrets Manager secret)")
    lake = local_lake(config, args.local, args.key_file, keep_key=args.yes) if args.local else stage_lake(config)
    started = datetime.now(timezone.utc)
    erasure = Erasure(lake, subject)
    found = erasure.scan()
    where = f"local lake {args.local}" if args.local else f"stage {config.stage}"
    if not any(found.values()):
        print(plain(f"No trace of {subject} in {where}: nothing erased."))
        return 0
    Console().print(found_table(found))
    print("Not erased, whatever is found:")
    for item in NOT_ERASED:
        print(f"  - {item}")
    if not args.yes:
        print(plain(f"Nothing erased: run again with --yes to erase {subject} from {where}."))
        return 0
    done = erasure.erase()
    key, record = erasure.audit_record(started, done)
    lake.enriched.put(key, record)
    print(plain(f"Erased {subject} from {where}; audit record {lake.enriched.name}/{key}"))
    return 0


def _telegram_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value == 0 or abs(value) > 2**63 - 1:
        raise argparse.ArgumentTypeError(f"must be a Telegram id, a non-zero integer, got {text!r}")
    return value


def stage_lake(config: StageConfig) -> Lake:
    """A deployed stage's buckets (from its stacks' outputs), its key (from Secrets Manager) and the caller."""
    session = aws_session(config)
    ingestion, etl, presentation = (stack_outputs(config, part, session) for part in ("Ingestion", "Etl", "Presentation"))
    raw = require_output(ingestion, outputs.RAW_BUCKET_NAME, config.stack_name("Ingestion"))
    enriched = require_output(etl, outputs.ENRICHED_BUCKET_NAME, config.stack_name("Etl"))
    key_arn = require_output(etl, outputs.PSEUDONYM_KEY_ARN, config.stack_name("Etl"))
    results = require_output(presentation, outputs.RESULTS_BUCKET_NAME, config.stack_name("Presentation"))
    from botocore.config import Config

    s3 = session.client("s3", config=Config(max_pool_connections=SCAN_CONCURRENCY, retries={"mode": "standard"}))
    return Lake(
        stage=config.stage,
        raw=S3Store(s3, raw),
        enriched=S3Store(s3, enriched),
        results=S3Store(s3, results),
        pseudonymizer=Pseudonymizer(read_key(session.client("secretsmanager"), key_arn)),
        who=session.client("sts").get_caller_identity()["Arn"],
    )


def local_lake(config: StageConfig, folder: Path, key_file: Path | None, *, keep_key: bool) -> Lake:
    """A local lake's two zones as folders, and its key from a file (see `local_key`)."""
    raw, enriched = folder / RAW_FOLDER, folder / ENRICHED_FOLDER
    if not (raw.is_dir() or enriched.is_dir()):
        raise CommandError(f"{folder} is no local lake: it has neither {RAW_FOLDER}/ nor {ENRICHED_FOLDER}/")
    key = local_key(folder, key_file, has_pseudonymized=(enriched / PSEUDONYMIZED_PREFIX).is_dir(), keep=keep_key)
    return Lake(
        stage=config.stage, raw=FolderStore(raw), enriched=FolderStore(enriched), results=None,
        pseudonymizer=Pseudonymizer(key), who=f"{_local_user()} (local)",
    )


def _local_user() -> str:
    """Who runs a local erasure, by their login name (a container may have none)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "an unnamed user"


def local_key(folder: Path, key_file: Path | None, *, has_pseudonymized: bool, keep: bool) -> bytes:
    """The local lake's pseudonym key: `key_file`, else DIR/pseudonym.key; made (for the audit record's keyed hash)
    when no pseudonymized table needs the key that wrote it, and kept there when the run erases (`keep`: a run
    that only looks writes nothing)."""
    path = key_file or folder / LOCAL_KEY_FILE
    if path.is_file():
        key = path.read_bytes().strip()
        if len(key) < MIN_KEY_BYTES:
            raise CommandError(f"{path} holds {len(key)} bytes; a pseudonym key has at least {MIN_KEY_BYTES}")
        return key
    if key_file is not None or has_pseudonymized:
        raise CommandError(
            f"no pseudonym key at {path}: the lake's pseudonymized table can only be searched with the key that "
            "wrote it (--key-file)"
        )
    key = secrets.token_urlsafe(48).encode("ascii")
    if not keep:
        return key
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(key + b"\n")
    return key

"""`python -m tools erase`: a person (or a chat) leaves every zone of a stage, every version of every object, and
nothing else changes.

The stage is built on moto as the lake stores it: a synthetic group chat in Firehose batches and older single-update
objects, with one person (Zéfiro) writing, reacting, answering polls, joining, writing to the bot in private, and
embedded in other people's updates (replied to, quoted, forwarded, added, text-mentioned, shared as a contact,
pinned); redeliveries across midnight; an expired raw object kept as a noncurrent version; both compacted tables
(the day compacted twice: a noncurrent version), a staged file of the Athena engine, the ingest's records, and
Athena query results. The "done when" of the issue is tested literally: after `erase --user ID --yes`, no object or
version of the stage holds the id, a name, the phone number or a text of theirs, except the one message of another
person that types their @username (which the erase says it keeps); every other row is as it was.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Iterator
from zoneinfo import ZoneInfo

import boto3
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

import tools.__main__
import tools.operate.erase as erase
from lambdas.common.envelope import envelope_line
from lambdas.common.layout import chat_link_key, chats_seen_key, raw_key
from lambdas.etl.compact import compact_day
from lambdas.etl.day import enriched_key
from lambdas.etl.pseudonymize import Pseudonymizer, pseudonym, pseudonymized_key
from stacks import outputs
from tests.test_flatten_sql import batch_key, batched
from tools.cli import CommandError
from tools.local.synthetic import synthetic_chat
from tools.operate.erase import ERASURES_PREFIX, Lake, S3Store
from tools.operate.traces import ERASED_NAME, Subject, compact_json

ZONE = "America/Sao_Paulo"
DAYS = [date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22)]
RAW, ENRICHED, RESULTS = "stage-raw", "stage-enriched", "stage-results"
KEY = b"k" * 48
OPERATOR = "arn:aws:sts::123456789012:assumed-role/Operator/alice"
GROUP = -1007770001
OTHER_GROUP = -1007770002
X = 7_700_042_001
ZEFIRO = {"id": X, "is_bot": False, "first_name": "Zéfiro", "last_name": "Apagadíssimo",
          "username": "zefiro_apaga", "language_code": "pt-br"}
ANA = {"id": 5_500_001, "is_bot": False, "first_name": "Ana", "username": "ana_l"}
BO = {"id": 5_500_002, "is_bot": False, "first_name": "Bo"}
PHONE = "+5511987650001"
PRIVATE = {"id": X, "type": "private", "first_name": "Zéfiro", "username": "zefiro_apaga"}
GROUP_CHAT = {"id": GROUP, "type": "supergroup", "title": "Lake"}
OTHER_CHAT = {"id": OTHER_GROUP, "type": "group", "title": "Off"}
# The one update that keeps something of theirs: another person's text typing their @username.
MENTION = 50_000_090
FIRST_ID = 50_000_000


def their_text(number: int) -> str:
    return f"Zéfiro's plan number {number}: meet at the quay"


def message(update_id: int, sender: dict, text: str | None, chat: dict = GROUP_CHAT, kind: str = "message",
            **fields: Any) -> dict[str, Any]:
    number = update_id - FIRST_ID + 1
    body = {"message_id": number, "from": sender, "chat": chat, "date": 1_795_100_000 + number,
            **({"text": text} if text is not None else {}), **fields}
    return {"update_id": update_id, kind: body}


def person_updates() -> dict[str, dict[str, Any]]:
    """Every kind of trace of the person, by what it is (update ids FIRST_ID + n)."""
    ids = iter(range(FIRST_ID, FIRST_ID + 100))
    theirs = message(next(ids), ZEFIRO, their_text(1))
    replied = theirs["message"]
    updates = {
        "their message": theirs,
        "their second message": message(next(ids), ZEFIRO, their_text(2)),
        "their edit": message(next(ids), ZEFIRO, their_text(3), kind="edited_message", edit_date=1_795_200_000),
        "their private /start": message(next(ids), ZEFIRO, "/start", chat=PRIVATE,
                                       entities=[{"type": "bot_command", "offset": 0, "length": 6}]),
        "their reaction": {"update_id": next(ids), "message_reaction": {
            "chat": GROUP_CHAT, "message_id": 7, "user": ZEFIRO, "date": 1_795_100_100,
            "old_reaction": [], "new_reaction": [{"type": "emoji", "emoji": "👍"}]}},
        "their join": {"update_id": next(ids), "chat_member": {
            "chat": GROUP_CHAT, "from": ZEFIRO, "date": 1_795_100_200,
            "old_chat_member": {"user": ZEFIRO, "status": "left"}, "new_chat_member": {"user": ZEFIRO, "status": "member"}}},
        "their callback": {"update_id": next(ids), "callback_query": {
            "id": "cb1", "from": ZEFIRO, "chat_instance": "i", "data": "buy",
            "message": {"message_id": 3, "date": 1_795_100_000, "chat": GROUP_CHAT, "text": "Pick one"}}},
        "their poll answer": {"update_id": next(ids), "poll_answer": {"poll_id": "p1", "user": ZEFIRO, "option_ids": [0]}},
        "a reply to them": message(next(ids), ANA, "good idea", reply_to_message=replied,
                                   quote={"text": "meet at the quay", "position": 28}),
        "a forward of theirs": message(next(ids), BO, "forwarded from a friend", forward_origin={
            "type": "user", "sender_user": ZEFIRO, "date": 1_795_100_000}, forward_from=ZEFIRO, forward_date=1_795_100_000),
        "them added": message(next(ids), ANA, None, new_chat_members=[ZEFIRO, BO], new_chat_member=ZEFIRO,
                              new_chat_participant=ZEFIRO),
        "them text-mentioned": message(next(ids), BO, "hey you", entities=[
            {"type": "text_mention", "offset": 4, "length": 3, "user": ZEFIRO}]),
        "their contact shared": message(next(ids), ANA, None, contact={
            "phone_number": PHONE, "first_name": "Zéfiro", "last_name": "Apagadíssimo", "user_id": X}),
        "an external reply to them": message(next(ids), ANA, "same here", external_reply={
            "origin": {"type": "user", "sender_user": ZEFIRO, "date": 1_795_000_000}, "chat": OTHER_CHAT,
            "message_id": 5}, quote={"text": "Zéfiro's words elsewhere", "position": 0}),
        "their message pinned": message(next(ids), ANA, None, pinned_message=replied),
        "a message in another chat": message(next(ids), BO, "nothing about them", chat=OTHER_CHAT),
    }
    updates["their @username typed"] = message(MENTION, ANA, "ask @zefiro_apaga about it", entities=[
        {"type": "mention", "offset": 4, "length": 13}])
    return updates


# What no object may hold after the erase (outside the @username typed by another person).
NEEDLES = (str(X), "Zéfiro", "Apagadíssimo", "zefiro_apaga", PHONE, "plan number", "meet at the quay", "words elsewhere")


def arrival(day: date, seconds: int) -> int:
    """An arrival instant on `day` in the stage's zone, in milliseconds."""
    midnight = datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(ZONE))
    return int((midnight + timedelta(seconds=seconds)).timestamp() * 1000)


def raw_objects() -> list[tuple[str, bytes]]:
    """The raw zone: a synthetic group (batches) around the person's updates (batches and single objects)."""
    updates = person_updates()
    background = synthetic_chat(DAYS[0], 3, 40, chat_id=GROUP, other_chat_id=OTHER_GROUP, zone=ZONE, seed=5)
    lines: dict[tuple[date, str], list[bytes]] = {}
    for number, item in enumerate(background):
        day = item.arrival.date()
        lines.setdefault((day, f"bg-{number // 15:03d}"), []).append(
            envelope_line(day, int(item.arrival.timestamp() * 1000), compact_json(item.update)))
    objects = []
    singles = ("their message", "a reply to them")  # stored one per object, as before batching
    for number, (name, update) in enumerate(updates.items()):
        day = DAYS[number % 2]
        if name in singles:
            objects.append((raw_key(day, update["update_id"]), compact_json(update)))
            continue
        batch = "theirs-only" if name == "their edit" else f"mixed-{number % 3}"
        lines.setdefault((day, batch), []).append(envelope_line(day, arrival(day, 3_600 + number), compact_json(update)))
    # redelivered after midnight: their message and the reply to it, again in the next day's batch
    for name in ("their second message", "a reply to them"):
        update = updates[name]
        lines.setdefault((DAYS[2], "redelivered"), []).append(envelope_line(DAYS[2], arrival(DAYS[2], 5), compact_json(update)))
    lines.setdefault((DAYS[1], "mixed-0"), []).append(b"not json, but their id: %d\n" % X)  # a rejected line
    objects += [(batch_key(day, name), batched(body)) for (day, name), body in sorted(lines.items())]
    return objects


def build_stage(s3: Any, secrets_arn: str | None = None) -> Lake:
    for bucket in (RAW, ENRICHED, RESULTS):
        s3.create_bucket(Bucket=bucket)
    for bucket in (RAW, ENRICHED):
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for key, body in raw_objects():
        s3.put_object(Bucket=RAW, Key=key, Body=body)
    # expired by the lifecycle rule: a delete marker over a version that still holds them
    expired = batch_key(DAYS[0], "expired")
    s3.put_object(Bucket=RAW, Key=expired, Body=batched([envelope_line(
        DAYS[0], arrival(DAYS[0], 60), compact_json(message(FIRST_ID + 95, ZEFIRO, their_text(9))))]))
    s3.delete_object(Bucket=RAW, Key=expired)
    pseudonymizer = Pseudonymizer(KEY)
    for day in DAYS:
        compact_day(s3, raw_bucket=RAW, enriched_bucket=ENRICHED, day=day, concurrency=4, pseudonymizer=pseudonymizer)
    compact_day(s3, raw_bucket=RAW, enriched_bucket=ENRICHED, day=DAYS[0], concurrency=4, pseudonymizer=pseudonymizer)
    staged = f"athena-staging/{DAYS[1]}/20261122T010000-aaaaaaaaaaaa/part-0"
    s3.put_object(Bucket=ENRICHED, Key=staged, Body=s3.get_object(Bucket=ENRICHED, Key=enriched_key(DAYS[1]))["Body"].read())
    s3.delete_object(Bucket=ENRICHED, Key=staged)  # publish removed it: a noncurrent version stays a day
    record = {"chat_id": X, "chat_type": "private", "title": None, "username": "zefiro_apaga", "updates": {}}
    for day in DAYS[:2]:
        s3.put_object(Bucket=RAW, Key=chats_seen_key(day, X, "c1"), Body=json.dumps(record).encode())
        s3.put_object(Bucket=RAW, Key=chats_seen_key(day, GROUP, "c1"), Body=json.dumps({"chat_id": GROUP}).encode())
    s3.put_object(Bucket=RAW, Key=chats_seen_key(DAYS[0], X, "c1"), Body=json.dumps(record).encode())  # a 2nd version
    s3.put_object(Bucket=RAW, Key=chat_link_key(GROUP, -7770001), Body=b'{"from": -7770001, "to": -1007770001}')
    results = {
        "q-their-text.csv": f'"question","times_asked"\n"{their_text(1).lower()}","1"\n',
        "q-their-text.csv.metadata": "\x00binary metadata",
        "q-their-id.csv": f'"user_id","messages"\n"{X}","3"\n',
        "q-unrelated.csv": '"question","times_asked"\n"how do I deploy?","4"\n',
        "analysts/q-pseudonym.csv": f'"user_id","messages"\n"{pseudonym(KEY, X)}","3"\n',
        "Unsaved/2026/11/22/q-username.txt": "zefiro_apaga\n",
    }
    for key, body in results.items():
        s3.put_object(Bucket=RESULTS, Key=key, Body=body.encode())
    return Lake(stage="dev", raw=S3Store(s3, RAW), enriched=S3Store(s3, ENRICHED), results=S3Store(s3, RESULTS),
                pseudonymizer=pseudonymizer, who=OPERATOR)


@pytest.fixture
def stage(monkeypatch):
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        lake = build_stage(s3)
        monkeypatch.setattr(erase, "stage_lake", lambda config: lake)
        yield s3, lake


def erase_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = tools.__main__.main(["erase", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def every_version(s3: Any) -> Iterator[tuple[str, str, str, bytes | None]]:
    """(bucket, key, version id, body: None for a delete marker) of everything the stage stores."""
    for bucket in (RAW, ENRICHED, RESULTS):
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for item in page.get("Versions", ()):
                body = s3.get_object(Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])["Body"].read()
                yield bucket, item["Key"], item["VersionId"], body
            for item in page.get("DeleteMarkers", ()):
                yield bucket, item["Key"], item["VersionId"], None


def readable(key: str, body: bytes) -> list[str]:
    """What an object says, as text pieces: a batch's lines, a Parquet file's rows, anything else whole."""
    if body.startswith(b"PAR1"):
        return [json.dumps(row, ensure_ascii=False, default=str) for row in pq.read_table(io.BytesIO(body)).to_pylist()]
    if key.endswith(".gz"):
        body = gzip.decompress(body)
    return body.decode("utf-8", "replace").splitlines()


def snapshot(s3: Any) -> dict[tuple[str, str, str], str | None]:
    return {(bucket, key, version): body and hashlib.md5(body).hexdigest() for bucket, key, version, body in every_version(s3)}


def rows(s3: Any, key: str) -> list[dict[str, Any]]:
    try:
        body = s3.get_object(Bucket=ENRICHED, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return []
    return pq.read_table(io.BytesIO(body)).to_pylist()


def theirs(row: dict[str, Any], ids: tuple[int, ...]) -> bool:
    return row["user_id"] in ids or row["chat_id"] in ids


# ---- the rules: what of an update is theirs


def test_their_own_updates_are_theirs_whatever_the_type_and_others_only_embed_them():
    subject = Subject("user", X)
    owned = {name for name, update in person_updates().items() if subject.owns(update)}

    assert owned == {
        "their message", "their second message", "their edit", "their private /start", "their reaction", "their join",
        "their callback", "their poll answer",
    }


def test_another_persons_update_keeps_its_own_message_and_loses_them():
    subject = Subject("user", X)
    updates = person_updates()

    reply, changed = subject.scrubbed(updates["a reply to them"])
    assert changed and "quote" not in reply["message"]
    assert reply["message"]["reply_to_message"] == {"message_id": 1, "date": 1_795_100_001, "chat": GROUP_CHAT}
    assert {key: value for key, value in reply["message"].items() if key not in ("reply_to_message", "quote")} == {
        key: value for key, value in updates["a reply to them"]["message"].items()
        if key not in ("reply_to_message", "quote")
    }
    added, _ = subject.scrubbed(updates["them added"])
    erased = {"id": 0, "first_name": ERASED_NAME, "is_bot": False}
    assert added["message"]["new_chat_members"] == [erased, BO]  # a count of people stays a count of people
    assert added["message"]["new_chat_member"] == added["message"]["new_chat_participant"] == erased
    contact, _ = subject.scrubbed(updates["their contact shared"])
    assert contact["message"]["contact"] == {"user_id": 0}
    external, _ = subject.scrubbed(updates["an external reply to them"])
    assert "external_reply" not in external["message"] and "quote" not in external["message"]
    assert external["message"]["text"] == "same here"
    assert subject.scrubbed(updates["a message in another chat"]) == (updates["a message in another chat"], False)
    assert subject.scrubbed(updates["their @username typed"])[1] is False  # another person's words stay


def test_a_chat_owns_every_update_in_it_and_is_scrubbed_from_the_others():
    subject = Subject("chat", OTHER_GROUP)
    updates = person_updates()

    assert subject.owns(updates["a message in another chat"]) and not subject.owns(updates["their message"])
    external, changed = subject.scrubbed(updates["an external reply to them"])
    assert changed and "Off" not in json.dumps(external) and str(OTHER_GROUP) not in json.dumps(external)


def test_an_id_is_a_non_zero_integer():
    with pytest.raises(ValueError, match="non-zero integer"):
        Subject("user", 0)


# ---- the command on a stage


def test_without_yes_it_shows_what_it_found_and_changes_nothing(stage, capsys):
    s3, _ = stage
    before = snapshot(s3)

    code, out, _ = erase_cli(capsys, "--user", str(X))

    assert code == 0 and snapshot(s3) == before
    for zone in ("raw", "compacted", "pseudonymized", "athena staging", "ingest state", "query results"):
        assert zone in out
    for day in DAYS:
        assert day.isoformat() in out
    assert "Nothing erased: run again with --yes" in out
    assert "quote or name them" in out and "downloaded reports" in out


def test_after_erase_no_object_version_row_or_result_of_the_stage_holds_them(stage, capsys):
    """The issue's "done when", literally: every object and every version of the three buckets, read whole (a
    batch's lines, a Parquet file's rows, a result's text), searched for the id, the names, the phone number and
    the texts; the only piece left is another person's text typing their @username, as the erase says."""
    s3, _ = stage

    code, out, _ = erase_cli(capsys, "--user", str(X), "--yes")

    assert code == 0 and "Erased user" in out
    left = [
        (bucket, key, piece) for bucket, key, _, body in every_version(s3) if body is not None
        for piece in readable(key, body) if any(needle in piece for needle in NEEDLES)
    ]
    assert left and all(str(MENTION) in piece and "@zefiro_apaga" in piece for _, _, piece in left), left
    assert all(needle not in piece for _, _, piece in left for needle in NEEDLES if needle != "zefiro_apaga")
    markers = [key for bucket, key, _, body in every_version(s3) if body is None and bucket == RAW]
    assert not [key for key in markers if "expired" in key or str(X) in key]


def test_every_other_row_is_as_it_was_and_each_day_is_what_its_raw_zone_compacts_to_now(stage, capsys):
    s3, lake = stage
    full_before = {day: rows(s3, enriched_key(day)) for day in DAYS}
    analysts_before = {day: rows(s3, pseudonymized_key(day)) for day in DAYS}

    assert erase_cli(capsys, "--user", str(X), "--yes")[0] == 0

    mine = pseudonym(KEY, X)
    for day in DAYS:
        assert rows(s3, enriched_key(day)) == [row for row in full_before[day] if not theirs(row, (X,))]
        assert rows(s3, pseudonymized_key(day)) == [row for row in analysts_before[day] if not theirs(row, (mine,))]
    for day in DAYS[:2]:  # the third day held only redeliveries, which the days before keep
        assert len(rows(s3, enriched_key(day))) < len(full_before[day])
    # the raw zone as erased compacts to exactly these days: the zones agree
    s3.create_bucket(Bucket="recompacted")
    for day in DAYS:
        compact_day(s3, raw_bucket=RAW, enriched_bucket="recompacted", day=day, concurrency=4)
        assert rows(s3, enriched_key(day)) == _rows_of(s3, "recompacted", enriched_key(day))


def _rows_of(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    return pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())).to_pylist()


def test_only_the_pieces_that_held_them_changed(stage, capsys):
    """Objects that never held them keep their version; the group's records and link stay; unrelated results stay."""
    s3, _ = stage
    before = snapshot(s3)

    erase_cli(capsys, "--user", str(X), "--yes")

    after = snapshot(s3)
    kept = {(RAW, chats_seen_key(DAYS[0], GROUP, "c1")), (RAW, chat_link_key(GROUP, -7770001)),
            (RESULTS, "q-unrelated.csv")}
    for bucket, key in kept:
        assert [v for (b, k, v) in before if (b, k) == (bucket, key)] == [v for (b, k, v) in after if (b, k) == (bucket, key)]
    background = [(b, k, v) for (b, k, v) in before if b == RAW and "bg-" in k]
    assert background and all(after.get(item) == before[item] for item in background)
    gone = {(RESULTS, "q-their-text.csv"), (RESULTS, "q-their-text.csv.metadata"), (RESULTS, "q-their-id.csv"),
            (RESULTS, "analysts/q-pseudonym.csv"), (RESULTS, "Unsaved/2026/11/22/q-username.txt")}
    assert not gone & {(b, k) for (b, k, _) in after}


def test_the_audit_record_says_what_when_who_and_how_much_and_holds_no_personal_data(stage, capsys):
    s3, _ = stage

    erase_cli(capsys, "--user", str(X), "--yes")

    [item] = s3.list_objects_v2(Bucket=ENRICHED, Prefix=ERASURES_PREFIX)["Contents"]
    body = s3.get_object(Bucket=ENRICHED, Key=item["Key"])["Body"].read().decode()
    record = json.loads(body)
    assert item["Key"].startswith(f"{ERASURES_PREFIX}{pseudonym(KEY, X)}/")
    assert (record["subject"], record["subject_keyed_hash"], record["by"]) == ("user", str(pseudonym(KEY, X)), OPERATOR)
    assert (record["stage"], record["started_at"] <= record["finished_at"]) == ("dev", True)
    assert record["found"]["raw"]["updates removed"] == record["erased"]["raw"]["updates removed"] == 10
    assert record["erased"]["raw"]["updates scrubbed"] == 8 and record["erased"]["raw"]["unreadable lines removed"] == 1
    assert record["erased"]["compacted"]["rows removed"] == record["erased"]["pseudonymized"]["rows removed"] > 0
    assert record["found"]["query results"]["objects"] == 5 and record["erased"]["ingest state"]["records"] == 2
    assert record["not_erased"] == list(erase.NOT_ERASED)
    assert not any(needle in body for needle in NEEDLES)


def test_a_second_run_finds_nothing_and_leaves_no_second_record(stage, capsys):
    s3, _ = stage
    erase_cli(capsys, "--user", str(X), "--yes")
    before = snapshot(s3)

    code, out, _ = erase_cli(capsys, "--user", str(X), "--yes")

    assert code == 0 and "No trace of user 7700042001 in stage dev: nothing erased." in out
    assert snapshot(s3) == before


def test_an_unknown_user_erases_nothing_and_says_so(stage, capsys):
    s3, _ = stage
    before = snapshot(s3)

    code, out, _ = erase_cli(capsys, "--user", "123456789", "--yes")

    assert code == 0 and "No trace of user 123456789 in stage dev: nothing erased." in out
    assert snapshot(s3) == before


def test_a_run_stopped_half_way_leaves_every_zone_readable_and_the_next_run_finishes_it(stage, capsys, monkeypatch):
    s3, lake = stage
    deletes = []
    real_delete = S3Store.delete

    def failing_delete(self, version):
        deletes.append(version.key)
        if len(deletes) == 12:
            from botocore.exceptions import ClientError
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "DeleteObject")
        real_delete(self, version)

    monkeypatch.setattr(S3Store, "delete", failing_delete)
    code, _, err = erase_cli(capsys, "--user", str(X), "--yes")
    assert code == 1 and "erase stopped at" in err and "run the same command again to finish" in err
    # readable: every batch gunzips, every Parquet file opens, every day still compacts
    for bucket, key, _, body in every_version(s3):
        if body is not None:
            readable(key, body)
    for day in DAYS:
        compact_day(s3, raw_bucket=RAW, enriched_bucket=ENRICHED, day=day, concurrency=4)
    assert not s3.list_objects_v2(Bucket=ENRICHED, Prefix=ERASURES_PREFIX).get("Contents")

    monkeypatch.setattr(S3Store, "delete", real_delete)
    code, out, _ = erase_cli(capsys, "--user", str(X), "--yes")

    assert code == 0 and "Erased user" in out
    left = [piece for _, key, _, body in every_version(s3) if body is not None for piece in readable(key, body)
            if any(needle in piece for needle in NEEDLES) and str(MENTION) not in piece]
    assert left == []


def test_a_whole_chat_leaves_with_its_records_and_links(stage, capsys):
    s3, _ = stage

    code, out, _ = erase_cli(capsys, "--chat", str(GROUP), "--yes")

    assert code == 0 and "Erased chat" in out
    for bucket, key, _, body in every_version(s3):
        pieces = readable(key, body) if body is not None else [key]
        assert not any(str(abs(GROUP)) in piece for piece in pieces), (bucket, key)
    for day in DAYS:
        assert all(row["chat_id"] != GROUP for row in rows(s3, enriched_key(day)))
    left = {row["chat_id"] for day in DAYS for row in rows(s3, enriched_key(day))}
    assert left == {OTHER_GROUP, X}  # the other group's rows, and the private chat's, stay


def test_a_stage_is_found_through_its_stacks_and_its_key_in_secrets_manager(monkeypatch):
    """stage_lake: the buckets from the three stacks' outputs, the key from the Etl stack's secret, the caller."""
    from stacks.config import load_from_cdk_json

    with mock_aws():
        secret = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="key", SecretString=KEY.decode())
        stack_values = {
            "Ingestion": {outputs.RAW_BUCKET_NAME: RAW},
            "Etl": {outputs.ENRICHED_BUCKET_NAME: ENRICHED, outputs.PSEUDONYM_KEY_ARN: secret["ARN"]},
            "Presentation": {outputs.RESULTS_BUCKET_NAME: RESULTS},
        }
        monkeypatch.setattr(erase, "stack_outputs", lambda config, part, session=None: stack_values[part])
        config = replace(load_from_cdk_json("dev"), region="us-east-1")

        lake = erase.stage_lake(config)

        assert (lake.raw.name, lake.enriched.name, lake.results.name) == (f"s3://{RAW}", f"s3://{ENRICHED}", f"s3://{RESULTS}")
        assert lake.pseudonymizer.key == KEY and lake.who.startswith("arn:aws:sts::")
        del stack_values["Etl"][outputs.PSEUDONYM_KEY_ARN]
        with pytest.raises(CommandError, match="has no output 'PseudonymKeyArn'; redeploy it"):
            erase.stage_lake(config)


# ---- a local lake


def local_copy(s3: Any, folder: Path) -> Path:
    """The stage's current objects as a local lake: raw/ and enriched/, laid out as their buckets."""
    for bucket, zone in ((RAW, "raw"), (ENRICHED, "enriched")):
        for item in s3.list_objects_v2(Bucket=bucket).get("Contents", ()):
            path = folder / zone / item["Key"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
    (folder / "pseudonym.key").write_bytes(KEY)
    return folder


def current_objects(s3: Any, bucket: str) -> dict[str, bytes]:
    return {item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            for item in s3.list_objects_v2(Bucket=bucket).get("Contents", ())}


def test_a_local_lake_is_erased_exactly_as_the_stage_is(stage, tmp_path, capsys):
    s3, _ = stage
    lake = local_copy(s3, tmp_path / "lake")

    code, out, _ = erase_cli(capsys, "--user", str(X), "--local", str(lake))
    assert code == 0 and f"Nothing erased: run again with --yes to erase user {X} from local lake {lake}." in out
    code, out, _ = erase_cli(capsys, "--user", str(X), "--local", str(lake), "--yes")
    assert code == 0 and f"Erased user {X} from local lake {lake}" in out
    erase_cli(capsys, "--user", str(X), "--yes")

    for bucket, zone in ((RAW, "raw"), (ENRICHED, "enriched")):
        on_s3 = {key: body for key, body in current_objects(s3, bucket).items() if not key.startswith(ERASURES_PREFIX)}
        local = {path.relative_to(lake / zone).as_posix(): path.read_bytes()
                 for path in (lake / zone).rglob("*") if path.is_file()
                 and not path.relative_to(lake / zone).as_posix().startswith(ERASURES_PREFIX)}
        assert local == on_s3, zone
    [record] = (lake / "enriched" / ERASURES_PREFIX).rglob("*.json")
    assert json.loads(record.read_text())["by"].endswith("(local)")


def test_a_local_lake_with_a_pseudonymized_table_needs_the_key_that_wrote_it(stage, tmp_path, capsys):
    s3, _ = stage
    lake = local_copy(s3, tmp_path / "lake")
    (lake / "pseudonym.key").unlink()

    code, _, err = erase_cli(capsys, "--user", str(X), "--local", str(lake))

    assert code == 1 and "can only be searched with the key that wrote it (--key-file)" in err
    assert not (lake / "pseudonym.key").exists()


def test_a_local_lake_without_a_pseudonymized_table_gets_a_key_of_its_own(tmp_path, capsys):
    lake = tmp_path / "lake"
    path = lake / "raw" / batch_key(DAYS[0], "one")
    path.parent.mkdir(parents=True)
    path.write_bytes(batched([envelope_line(DAYS[0], arrival(DAYS[0], 1), compact_json(message(FIRST_ID, ZEFIRO, "hi")))]))

    assert erase_cli(capsys, "--user", str(X), "--local", str(lake))[0] == 0
    key_file = lake / "pseudonym.key"
    assert path.exists() and not key_file.exists()  # a run that only looks writes nothing

    code, _, _ = erase_cli(capsys, "--user", str(X), "--local", str(lake), "--yes")

    assert code == 0 and not path.exists()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600" and len(key_file.read_bytes().strip()) >= 32


@pytest.mark.parametrize("argv", [["--user", "0"], ["--user", "zefiro"], ["--user", "1", "--chat", "2"], []])
def test_whom_to_erase_is_one_non_zero_id(argv, capsys):
    with pytest.raises(SystemExit):
        tools.__main__.main(["erase", *argv])

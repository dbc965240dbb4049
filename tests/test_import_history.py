"""`python -m tools import-history`: Telegram Desktop's export into the lake, as the webhook would have stored it.

Every export here is built in Telegram Desktop's own format (result.json: the chat's `name`, `type`, `id`, then
`messages` with `date_unixtime`, `from_id` "user<id>", `text` and `text_entities`, service `action`s, media
without files, `reactions`), either by hand or by tools/local/synthetic.py from a synthetic chat's Bot API
updates, whose webhook copies the lake then also holds: the imported rows are compared with theirs.
"""

from __future__ import annotations

import gzip
import io
import json
import tracemalloc
from collections import Counter
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pyarrow.parquet as pq
import pytest
from moto import mock_aws
from rich.console import Console

from lambdas.common.envelope import envelope_line, update_bytes
from lambdas.common.layout import PREFIX, day_prefix, local_day
from lambdas.etl.handler import EtlSettings
from stacks.config import load_from_cdk_json
from tools.__main__ import main as tools_main
from tools.cli import CommandError
from tools.local.stack import telegram_json
from tools.local.synthetic import desktop_export, synthetic_chat, write_desktop_export
from tools.operate.desktop_export import (
    ANONYMOUS_ADMIN, FAKE_CHANNEL, MIGRATED_ID_SHIFT, ExportedChat, ExportError, TargetChat, imported_update_id,
    message_updates, read_export,
)
from tools.operate.etl_runs import local_runner, run_days
from tools.operate.import_history import (
    BucketZone, FolderZone, ImportSummary, Lake, compact_folder_days, import_history, local_lake, summary_table,
)

# The Lambda engine: the quicker of the two locally (the Athena engine's SQL is proven equal to it elsewhere).
CONFIG = replace(load_from_cdk_json("dev"), etl_engine="lambda")
ZONE = ZoneInfo(CONFIG.timezone)
CHAT = CONFIG.allowed_chat_ids[0]  # -1001234567890
EXPORT_ID = 1234567890
NOW = datetime(2026, 12, 7, 12, tzinfo=timezone.utc)
NOON = int(datetime(2026, 11, 2, 12, tzinfo=timezone.utc).timestamp())  # 09:00 in São Paulo, on 2026-11-02
DAY = date(2026, 11, 2)
ALICE = {"id": 111, "is_bot": False, "first_name": "Alice Lima"}
BOB = {"id": 222, "is_bot": False, "first_name": "Bob"}
NOT_INCLUDED = "(File not included. Change data exporting settings to download.)"


# ---- exports, as Telegram Desktop writes them


def sent(offset: int) -> dict[str, str]:
    instant = NOON + offset
    return {"date": datetime.fromtimestamp(instant).isoformat(), "date_unixtime": str(instant)}


def message(message_id: int, offset: int, text: Any = "", entities: list | None = None, author=ALICE, **fields) -> dict:
    exported = {"id": message_id, "type": "message", **sent(offset), "from": author["first_name"],
                "from_id": f"user{author['id']}", **fields}
    exported["text"] = text
    plain = [{"type": "plain", "text": text}] if text else []
    exported["text_entities"] = entities if entities is not None else plain
    return exported


def service(number: int, offset: int, action: str, actor=ALICE, **fields) -> dict:
    return {"id": number, "type": "service", **sent(offset), "actor": actor["first_name"],
            "actor_id": f"user{actor['id']}", "action": action, **fields, "text": "", "text_entities": []}


def chat_export(messages: list[dict], *, export_id: int = EXPORT_ID, kind: str = "private_supergroup",
                name: str = "Community") -> dict:
    return {"name": name, "type": kind, "id": export_id, "messages": messages}


def write(tmp_path: Path, export: dict | str | bytes, name: str = "result.json") -> Path:
    path = tmp_path / "export" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(export, dict):
        return write_desktop_export(export, path)
    path.write_bytes(export if isinstance(export, bytes) else export.encode())
    return path


EMOJI_TEXT = [  # 👍 and 🇧🇷 are two and four UTF-16 code units: every offset after them counts so
    "👍 see ",
    {"type": "bold", "text": "🇧🇷 café"},
    " and ",
    {"type": "link", "text": "https://example.org"},
    " or ",
    {"type": "text_link", "text": "docs", "href": "https://example.org/docs"},
    ", ",
    {"type": "mention_name", "text": "Bob", "user_id": 222},
    " ",
    {"type": "custom_emoji", "text": "🔥", "document_id": "5368324170671202286"},
    {"type": "bank_card", "text": " 4111"},
]
EMOJI_ENTITIES = [{"type": "plain", "text": part} if isinstance(part, str) else part for part in EMOJI_TEXT]
HANDMADE = [
    service(1, 0, "create_group", title="Community", members=["Alice Lima"]),
    service(2, 60, "join_group_by_link", actor=BOB, inviter="Alice Lima"),
    message(3, 120, EMOJI_TEXT, EMOJI_ENTITIES),
    message(4, 180, "/Price@SomeBot btc",
            [{"type": "bot_command", "text": "/Price@SomeBot"}, {"type": "plain", "text": " btc"}],
            author=BOB, reply_to_message_id=3),
    message(5, 240, "typo fixed", edited="2026-11-02T12:05:00", edited_unixtime=str(NOON + 300)),
    message(6, 300, "look", forwarded_from="Someone Hidden"),
    message(7, 360, "a caption", photo=NOT_INCLUDED, photo_file_size=1234, width=1280, height=960),
    message(8, 420, file=NOT_INCLUDED, media_type="voice_message", mime_type="audio/ogg", duration_seconds=7),
    message(9, 480, file=NOT_INCLUDED, media_type="sticker", sticker_emoji="😂", width=512, height=512,
            reactions=[{"type": "emoji", "count": 3, "emoji": "👍",
                        "recent": [{"from": "Bob", "from_id": "user222", "date": "x"}]},
                       {"type": "custom_emoji", "count": 1, "document_id": "5377305978079288312"},
                       {"type": "paid", "count": 2}]),
    message(10, 540, file=NOT_INCLUDED, media_type="animation", mime_type="video/mp4", width=320, height=240),
    message(11, 600, file=NOT_INCLUDED, file_name="report.pdf", mime_type="application/pdf", file_size=52000),
    message(12, 660, location_information={"latitude": -23.5, "longitude": -46.6}, place_name="Office",
            address="Rua 1"),
    message(13, 720, poll={"question": "When?", "closed": False, "total_voters": 3,
                           "answers": [{"text": "Friday", "voters": 2, "chosen": False},
                                       {"text": "Monday", "voters": 1, "chosen": True}]}),
    message(14, 780, "as the group", author={"id": EXPORT_ID, "first_name": "Community"})
    | {"from_id": f"channel{EXPORT_ID}"},
    message(15, 840, "from a channel", author={"id": 777, "first_name": "News"}) | {"from_id": "channel777"},
    service(16, 900, "invite_members", members=["Carol", "Alice Lima"]),
    service(17, 960, "remove_members", actor=BOB, members=["Bob"]),
    service(18, 1020, "remove_members", members=["Carol"]),
    service(19, 1080, "pin_message", message_id=4),
    service(20, 1140, "edit_group_title", title="Community 2"),
    service(21, 1200, "phone_call", discard_reason="missed"),
    {"id": 22, "type": "unsupported"},
    message(23, 1260, "old format", author=BOB) | {"from_id": 222, "text_entities": None},
]
for _exported in HANDMADE:
    if _exported.get("text_entities", "") is None:
        del _exported["text_entities"]


def handmade_target() -> TargetChat:
    return TargetChat(id=CHAT, type="supergroup", title="Community", own_id=CHAT)


def converted(message_id: int) -> list[dict]:
    exported = next(item for item in HANDMADE if item["id"] == message_id)
    return list(message_updates(handmade_target(), exported, earliest=0, latest=NOON + 86_400).updates)


def payload(message_id: int) -> dict:
    updates = converted(message_id)
    return updates[0]["message"]


# ---- reading the export


def test_reading_yields_each_chat_then_its_messages_in_both_layouts(tmp_path):
    single = write(tmp_path, chat_export(HANDMADE[:2]))
    with single.open("rb") as stream:
        items = list(read_export(stream))
    assert items == [ExportedChat(EXPORT_ID, "private_supergroup", "Community"), *HANDMADE[:2]]

    everything = {
        "about": "Here is the data you requested.",
        "personal_information": {"user_id": 1, "first_name": "Me", "unknown_field": [1, {"nested": True}]},
        "chats": {"about": "chats", "list": [
            chat_export(HANDMADE[:1], export_id=5, kind="personal_chat", name="Friend"),
            chat_export(HANDMADE[2:3]),
        ]},
        "left_chats": {"about": "left", "list": [{"name": "Old", "type": "private_channel", "id": 9, "messages": []}]},
        "frequent_contacts": {"list": [{"id": 1, "category": "people", "type": "user", "name": "X", "rating": 1.5}]},
    }
    with write(tmp_path, everything).open("rb") as stream:
        items = list(read_export(stream))
    assert items == [
        ExportedChat(5, "personal_chat", "Friend"), HANDMADE[0],
        ExportedChat(EXPORT_ID, "private_supergroup", "Community"), HANDMADE[2],
        ExportedChat(9, "private_channel", "Old"),
    ]


def test_reading_reads_telegram_desktops_control_character_escapes_and_pieces_of_any_size(tmp_path, monkeypatch):
    from tools.operate import desktop_export

    monkeypatch.setattr(desktop_export, "_CHUNK", 7)  # every value, number and escape cut across pieces
    text = "tab\tbell\u0007 \\x07 done é🇧🇷"
    body = json.dumps(chat_export([message(1, 0, text)]), ensure_ascii=False, indent=1)
    body = body.replace("\\u0007", "\\x07")  # what Telegram Desktop writes for U+0007; `\\x07` stays text
    with write(tmp_path, body).open("rb") as stream:
        items = list(read_export(stream))
    assert items[1]["text"] == text


@pytest.mark.parametrize(("body", "error"), [
    (b"", "not an export: the file is empty"),
    (b"[1, 2]", "not an export: a Telegram Desktop export is a JSON object"),
    (b'{"id": 1, "type": "private_group", "messages": [}',
     "not JSON: Expecting value in message 1 of the export's messages"),
    (b'{"about": "nothing"}', "not an export: no `messages` and no `chats.list`"),
    (b'{"messages": []}', "not an export: the export has no integer `id` and `type` before its messages"),
    (b'{"id": 1, "type": "private_group", "messages": [{"id": 1}, 7]}',
     "not an export: message 2 of the export's messages is a int"),
    (b'{"id": 1, "type": "private_group", "messages": []} trailing',
     "not JSON: expected the end of the file in the export"),
    (b'{"id": 1, "type": "private_group", "messages": [] "x": 1}', "not JSON: expected ',' or '}' in the export"),
    (b'{"id": 1, "type": "private_group", "messages": [{"id": 1, "text": "caf\xe9"}]}', "not UTF-8 text"),
])
def test_bad_files_are_refused_in_one_line(tmp_path, body, error):
    with pytest.raises(ExportError) as refused:
        with write(tmp_path, body).open("rb") as stream:
            list(read_export(stream))
    assert str(refused.value).startswith(error) and "\n" not in str(refused.value), str(refused.value)


def test_a_truncated_export_is_refused_wherever_it_is_cut(tmp_path):
    body = json.dumps(chat_export(HANDMADE), ensure_ascii=False, indent=1).encode()
    for cut in range(1, len(body) - 1, max(1, len(body) // 97)):
        with pytest.raises(ExportError) as refused:
            with write(tmp_path, body[:cut]).open("rb") as stream:
                list(read_export(stream))
        assert str(refused.value).startswith("truncated: the file ends inside"), (cut, str(refused.value))


# ---- each message as the webhook would have stored it


def test_text_and_entities_are_rebuilt_with_utf16_offsets():
    message3 = payload(3)
    assert message3["text"] == "👍 see 🇧🇷 café and https://example.org or docs, Bob 🔥 4111"
    # 👍 is 2 units, so "🇧🇷 café" starts at 2 + 5 = 7 and is 4 + 5 = 9 long; each later offset counts so.
    assert message3["entities"] == [
        {"offset": 7, "length": 9, "type": "bold"},
        {"offset": 21, "length": 19, "type": "url"},
        {"offset": 44, "length": 4, "type": "text_link", "url": "https://example.org/docs"},
        {"offset": 50, "length": 3, "type": "text_mention", "user": {"id": 222, "is_bot": False, "first_name": "Bob"}},
        {"offset": 54, "length": 2, "type": "custom_emoji", "custom_emoji_id": "5368324170671202286"},
    ]  # a bank card is no Bot API entity: plain text
    units = message3["text"].encode("utf-16-le")
    marked = [units[2 * each["offset"]:2 * (each["offset"] + each["length"])] for each in message3["entities"]]
    assert [piece.decode("utf-16-le") for piece in marked] == [
        "🇧🇷 café", "https://example.org", "docs", "Bob", "🔥"]


def test_a_message_is_the_bot_api_message_with_the_chat_sender_date_reply_and_command():
    [update] = converted(4)
    assert update == {"update_id": imported_update_id(CHAT, 4, 0), "message": {
        "message_id": 4, "from": BOB, "chat": {"id": CHAT, "type": "supergroup", "title": "Community"},
        "date": NOON + 180,
        "reply_to_message": {"message_id": 3, "chat": {"id": CHAT, "type": "supergroup", "title": "Community"}},
        "text": "/Price@SomeBot btc", "entities": [{"offset": 0, "length": 14, "type": "bot_command"}],
    }}


def test_edits_forwards_and_media_without_their_files():
    assert payload(5)["edit_date"] == NOON + 300 and payload(5)["text"] == "typo fixed"
    assert payload(6)["forward_origin"] == {
        "type": "hidden_user", "sender_user_name": "Someone Hidden", "date": NOON + 300}
    assert payload(7)["photo"] == [{"width": 1280, "height": 960, "file_size": 1234}]
    assert payload(7)["caption"] == "a caption" and "text" not in payload(7)  # a photo's text is its caption
    assert payload(8)["voice"] == {"duration": 7, "mime_type": "audio/ogg"}
    assert payload(9)["sticker"] == {"width": 512, "height": 512, "emoji": "😂"}
    gif = {"mime_type": "video/mp4", "width": 320, "height": 240}
    assert payload(10)["animation"] == payload(10)["document"] == gif
    assert payload(11)["document"] == {"file_name": "report.pdf", "mime_type": "application/pdf", "file_size": 52000}
    assert payload(12)["venue"] == {
        "location": {"latitude": -23.5, "longitude": -46.6}, "title": "Office", "address": "Rua 1"}
    assert payload(13)["poll"] == {"question": "When?", "options": [{"text": "Friday", "voter_count": 2},
                                                                   {"text": "Monday", "voter_count": 1}],
                                   "total_voter_count": 3, "is_closed": False}
    assert not any("file_id" in json.dumps(payload(number)) for number in range(7, 12))


def test_reactions_become_the_messages_reaction_counts():
    message_update, counts = converted(9)
    assert counts == {"update_id": imported_update_id(CHAT, 9, 1), "message_reaction_count": {
        "chat": {"id": CHAT, "type": "supergroup", "title": "Community"}, "message_id": 9, "date": NOON + 480,
        "reactions": [{"type": {"type": "emoji", "emoji": "👍"}, "total_count": 3},
                      {"type": {"type": "custom_emoji", "custom_emoji_id": "5377305978079288312"}, "total_count": 1},
                      {"type": {"type": "paid"}, "total_count": 2}],
    }}
    assert message_update["update_id"] < counts["update_id"] < imported_update_id(CHAT, 10, 0) < 0


def test_senders_on_behalf_of_a_chat_get_the_bot_apis_fake_sender():
    assert payload(14)["from"] == ANONYMOUS_ADMIN and payload(14)["sender_chat"]["id"] == CHAT
    assert payload(15)["from"] == FAKE_CHANNEL
    assert payload(15)["sender_chat"] == {"id": -1000000000777, "type": "channel", "title": "News"}
    assert payload(23)["from"] == BOB and payload(23)["text"] == "old format"  # an export from before mid-2021


def test_service_actions_become_service_fields_joins_and_leaves_among_them():
    assert payload(1)["group_chat_created"] is True
    assert payload(2)["from"] == BOB and payload(2)["new_chat_members"] == [BOB]
    # The export names the others of an action without their ids: only the actor keeps one.
    assert payload(16)["new_chat_members"] == [{"is_bot": False, "first_name": "Carol"}, ALICE]
    assert payload(17)["left_chat_member"] == BOB
    assert payload(18)["left_chat_member"] == {"is_bot": False, "first_name": "Carol"}
    assert payload(19)["pinned_message"] == {"chat": {"id": CHAT, "type": "supergroup", "title": "Community"},
                                             "message_id": 4, "date": 0}
    assert payload(20)["new_chat_title"] == "Community 2"
    call = next(item for item in HANDMADE if item["id"] == 21)
    assert message_updates(handmade_target(), call, earliest=0, latest=NOON + 99_999).skipped == (
        "service action the Bot API does not send")
    assert message_updates(handmade_target(), HANDMADE[21], earliest=0, latest=NOON).skipped == "unsupported message"


def test_a_channels_posts_are_channel_posts_without_a_sender():
    channel = TargetChat(id=-1009, type="channel", title="News", own_id=-1009)
    post = message(1, 0, "hello", author={"id": 9, "first_name": "News"}) | {"from_id": "channel9", "author": "Ana"}
    [update] = message_updates(channel, post, earliest=0, latest=NOON).updates
    assert update["channel_post"]["sender_chat"] == {"id": -1009, "type": "channel", "title": "News"}
    assert "from" not in update["channel_post"] and update["channel_post"]["author_signature"] == "Ana"


@pytest.mark.parametrize("unix", ["0", str(NOON + 2 * 86_400), "x", None])
def test_a_date_outside_any_sane_range_is_refused(unix):
    bad = message(1, 0, "hi") | {"date_unixtime": unix}
    with pytest.raises(ExportError, match="date_unixtime of message 1 of chat"):
        message_updates(handmade_target(), bad, earliest=1_376_438_400, latest=NOON + 86_400)


def test_update_ids_are_negative_deterministic_and_ordered_within_a_chat():
    ids = [imported_update_id(CHAT, message_id, kind) for message_id in (MIGRATED_ID_SHIFT + 5, 1, 2, 2**31 - 1)
           for kind in (0, 1)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) and all(-(2**62) <= each < 0 for each in ids)
    assert imported_update_id(CHAT, 1, 0) != imported_update_id(CHAT - 1, 1, 0)
    with pytest.raises(ValueError):
        imported_update_id(CHAT, 2**31, 0)


# ---- the import into a lake


def run_import(
    tmp_path: Path, export: Path, *, config=CONFIG, chat_id: int | None = None, lake: str = "lake"
) -> ImportSummary:
    return import_history(export, config, local_lake(tmp_path / lake, config), quiet(), chat_id=chat_id, now=NOW)


def quiet() -> Console:
    return Console(file=io.StringIO(), width=160)


def printed(summary: ImportSummary, config=CONFIG) -> str:
    """The summary table's text, each row's words on one line."""
    console = quiet()
    console.print(summary_table(summary, config))
    return " ".join(console.file.getvalue().replace("│", " ").split())


def lake_rows(folder: Path) -> list[dict[str, Any]]:
    return [{**row, "context_date": date.fromisoformat(path.parent.name.removeprefix("context_date="))}
            for path in sorted((folder / "enriched").glob("telegram/context_date=*/telegram.parquet"))
            for row in pq.read_table(path).to_pylist()]


def raw_files(folder: Path) -> dict[str, bytes]:
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in files}


def webhook_batches(folder: Path, deliveries: list[tuple[datetime, dict]]) -> None:
    """What the raw delivery stream writes for these deliveries: a gzip batch of envelope lines per arrival day."""
    days: dict[date, list[bytes]] = {}
    for arrival, update in deliveries:
        day = arrival.astimezone(ZONE).date()
        days.setdefault(day, []).append(envelope_line(day, int(arrival.timestamp() * 1000), telegram_json(update)))
    for day, lines in days.items():
        path = folder / "raw" / day_prefix(day) / f"TelegramLake-dev-Raw-1-{day}-00-00-00-abc.jsonl.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(b"".join(lines)))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Two days of a synthetic group: its webhook copies compacted in one lake, its export imported into another."""
    folder = tmp_path_factory.mktemp("synthetic")
    updates = synthetic_chat(date(2026, 11, 2), 2, 150, chat_id=CHAT, other_chat_id=None, zone=CONFIG.timezone, seed=5)
    webhook_batches(folder / "webhook", [(item.arrival, item.update) for item in updates])
    compact_folder_days(CONFIG, folder / "webhook" / "raw", folder / "webhook" / "enriched",
                        [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)], Console(file=io.StringIO()))
    export = write(folder, desktop_export(updates, CHAT, name="Telegram Lake Community"))
    summary = run_import(folder, export)
    return updates, lake_rows(folder / "webhook"), lake_rows(folder / "lake"), summary, folder


# What an export determines of a message's row; the other columns are the known differences below.
SAME_COLUMNS = ("message_id", "user_id", "chat_id", "chat_type", "chat_title", "text", "caption", "date", "update_type",
                "message_type", "reply_to_message_id", "is_command", "command")


def test_the_imported_rows_equal_what_the_webhook_path_stores_for_the_same_messages(synthetic):
    updates, webhook_rows, imported_rows, summary, _ = synthetic
    # The export holds each message as last edited: the webhook's row of the message, with its latest edit's text.
    edits = {row["message_id"]: row for row in sorted(webhook_rows, key=lambda row: row["update_id"])
             if row["update_type"] == "edited_message"}
    expected = {}
    for row in webhook_rows:
        if row["update_type"] == "message" and row["message_type"] != "dice":  # Telegram Desktop exports no dice
            edit = edits.get(row["message_id"], {})
            last = {name: edit[name] for name in ("text", "caption", "edit_date") if edit}
            expected[row["message_id"]] = {**row, **last}
    imported = {row["message_id"]: row for row in imported_rows}
    assert imported.keys() == expected.keys() and len(imported_rows) == len(imported)
    for message_id, row in imported.items():
        assert {name: row[name] for name in SAME_COLUMNS} == {name: expected[message_id][name] for name in SAME_COLUMNS}
        assert row["edit_date"] == expected[message_id]["edit_date"]
        assert row["context_date"] == local_day(datetime.fromtimestamp(row["date"], timezone.utc), CONFIG.timezone)
        # What the export does not hold: usernames, language codes, topics, bots as bots; the name is whole.
        sender = expected[message_id]
        assert row["user_first_name"] == " ".join(filter(None, (sender["user_first_name"], sender["user_last_name"])))
        assert (row["user_last_name"], row["user_username"], row["user_language_code"], row["message_thread_id"]) == (
            None, None, None, None)
        assert row["user_is_bot"] is False and row["update_id"] < 0
    assert any(row["user_is_bot"] for row in expected.values())  # the synthetic bot's messages: not marked as a bot's
    assert sum(summary.kinds[kind] for kind in summary.kinds if kind != "reaction counts") == len(imported)


def test_the_imported_reaction_counts_are_each_messages_final_reactions(synthetic):
    updates, _, _, summary, folder = synthetic
    lines = [json.loads(update_bytes(line)) for path in (folder / "lake" / "raw").rglob("*.jsonl.gz")
             for line in gzip.decompress(path.read_bytes()).splitlines()]
    counts = {line["message_reaction_count"]["message_id"]: line["message_reaction_count"]["reactions"]
              for line in lines if "message_reaction_count" in line}
    standing: dict[int, dict[Any, list]] = {}
    for item in updates:
        if "message_reaction" in item.update:
            change = item.update["message_reaction"]
            actor = change.get("user", change.get("actor_chat"))["id"]
            standing.setdefault(change["message_id"], {})[actor] = change["new_reaction"]
    imported = {line["message"]["message_id"] for line in lines if "message" in line}
    for message_id, actors in standing.items():
        if message_id not in imported:  # a dice: Telegram Desktop exports it as unsupported, reactions and all
            continue
        expected = Counter(json.dumps(reaction, sort_keys=True) for listed in actors.values() for reaction in listed)
        listed = counts.get(message_id, [])
        got = Counter({json.dumps(each["type"], sort_keys=True): each["total_count"] for each in listed})
        assert got == +expected
    assert summary.kinds["reaction counts"] == len(counts) > 0


def test_every_day_is_one_object_per_chat_marked_imported_in_update_id_order(synthetic):
    *_, folder = synthetic
    for day_folder in (folder / "lake" / "raw" / "telegram").iterdir():
        [batch] = list(day_folder.iterdir())
        assert batch.name.startswith(f"import-{CHAT}-") and batch.name.endswith(".jsonl.gz")
        lines = [json.loads(line) for line in gzip.decompress(batch.read_bytes()).splitlines()]
        assert all(line["imported"] is True and line["context_date"] == day_folder.name.removeprefix("context_date=")
                   for line in lines)
        assert [line["update"]["update_id"] for line in lines] == sorted(line["update"]["update_id"] for line in lines)
        for line in lines:
            payload_ = line["update"].get("message") or line["update"]["message_reaction_count"]
            assert line["received_at"] == payload_["date"] * 1000


def test_importing_the_same_export_again_changes_nothing(synthetic, tmp_path):
    *_, folder = synthetic
    before = raw_files(folder / "lake")
    again = run_import(folder, folder / "export" / "result.json")
    assert raw_files(folder / "lake") == before
    assert (again.written, again.replaced, again.compacted) == (0, 0, [])
    assert again.unchanged == len(list((folder / "lake" / "raw" / "telegram").iterdir()))


def test_a_newer_export_replaces_the_earlier_import_of_each_day(tmp_path):
    first = [message(1, 0, "one"), message(2, 60, "two"), message(3, 86_400, "next day")]
    run_import(tmp_path, write(tmp_path, chat_export(first)))
    newer = [message(1, 0, "one, edited", edited="x", edited_unixtime=str(NOON + 99)), message(3, 86_400, "next day")]
    summary = run_import(tmp_path, write(tmp_path, chat_export(newer)))
    assert (summary.written, summary.unchanged, summary.replaced) == (1, 1, 1)
    assert len(list((tmp_path / "lake" / "raw" / day_prefix(DAY)).iterdir())) == 1
    rows = {row["message_id"]: row for row in lake_rows(tmp_path / "lake")}
    assert rows.keys() == {1, 3} and rows[1]["text"] == "one, edited" and rows[1]["edit_date"] == NOON + 99


def test_the_webhooks_copy_wins_and_is_counted_once(tmp_path):
    lake = tmp_path / "lake"
    webhook_message = {"message_id": 2, "from": ALICE, "chat": {"id": CHAT, "type": "supergroup", "title": "Community"},
                       "date": NOON + 60, "text": "two, as the webhook got it"}
    midnight = int(datetime(2026, 11, 3, tzinfo=ZONE).timestamp()) - NOON  # seconds from NOON to the local midnight
    late = {"message_id": 3, "from": ALICE, "chat": webhook_message["chat"], "date": NOON + midnight - 10,
            "text": "before midnight"}
    arrival = datetime.fromtimestamp(NOON, timezone.utc)
    webhook_batches(lake, [(arrival + timedelta(seconds=61), {"update_id": 10, "message": webhook_message}),
                           (arrival + timedelta(seconds=midnight + 10), {"update_id": 11, "message": late})])
    export = chat_export([message(1, 0, "one"), message(2, 60, "two"), message(3, midnight - 10, "before midnight"),
                          message(4, 86_400, "four")])
    summary = run_import(tmp_path, write(tmp_path, export))
    assert summary.duplicates == 2
    rows = sorted(lake_rows(lake), key=lambda row: row["message_id"])
    from_webhook = [(row["message_id"], row["update_id"] >= 0) for row in rows]
    assert from_webhook == [(1, False), (2, True), (3, True), (4, False)]
    assert rows[1]["text"] == "two, as the webhook got it"
    assert "duplicates 2 messages a webhook copy already holds" in printed(summary)


def test_days_before_analytics_start_date_are_counted_and_named_not_dropped_silently(tmp_path):
    config = replace(CONFIG, analytics_start_date="2026-11-03")
    summary = run_import(tmp_path, write(tmp_path, chat_export([message(1, 0, "early"), message(2, 86_400, "in")])),
                         config=config)
    assert summary.before_start == Counter({DAY: 1})
    assert [path.parent.name for path in (tmp_path / "lake" / "raw").rglob("*.gz")] == ["context_date=2026-11-03"]
    table = printed(summary, config)
    assert "1 messages on 1 days from 2026-11-02, not imported" in table
    assert "set it to 2026-11-02 in cdk.json (context.stages.dev), deploy, and import again" in table


def test_a_day_not_ended_is_written_and_left_to_tonights_run(tmp_path):
    today = NOW.astimezone(ZONE).date()
    exported = message(1, 0, "today") | {"date_unixtime": str(int(NOW.timestamp()) - 3600)}
    in_flight = message(3, 0, "a minute ago") | {"date_unixtime": str(int(NOW.timestamp()) - 60)}
    summary = run_import(tmp_path, write(tmp_path, chat_export([exported, message(2, 0, "earlier"), in_flight])))
    assert summary.not_ended == {today} and [outcome.day for outcome in summary.compacted] == [DAY]
    assert summary.too_recent == 1  # the webhook may still be delivering it: left to the webhook
    assert (tmp_path / "lake" / "raw" / day_prefix(today)).is_dir()
    assert not (tmp_path / "lake" / "enriched" / day_prefix(today)).exists()


# ---- which chats, under which id


def test_only_allowlisted_chats_are_imported_and_a_refusal_names_the_id(tmp_path, capsys):
    path = write(tmp_path, chat_export([message(1, 0, "hi")], export_id=42, kind="private_group", name="Other"))
    assert tools_main(["import-history", str(path), "--local", str(tmp_path / "lake")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: nothing imported: chat -42 (Other): not allowlisted in stage dev: add -42 to its "
                          "allowed_chat_ids in cdk.json") and err.count("\n") == 1
    assert not list((tmp_path / "lake").rglob("*.*"))


def test_an_all_chats_export_imports_the_allowlisted_chats_and_lists_the_others(tmp_path):
    everything = {"chats": {"list": [
        chat_export([message(1, 0, "mine")]),
        chat_export([message(1, 0, "not mine"), message(2, 1, "no")], export_id=77, kind="public_channel", name="Chan"),
        {"name": None, "type": "saved_messages", "id": 1, "messages": [message(1, 0, "note")]},
    ]}}
    summary = run_import(tmp_path, write(tmp_path, everything))
    assert [(chat.id, chat.messages, chat.refused is None) for chat in summary.chats] == [
        (CHAT, 1, True), (-1000000000077, 2, False), (1, 1, False)]
    assert "add -1000000000077 to its allowed_chat_ids" in summary.chats[1].refused
    assert summary.chats[2].refused == "a saved_messages chat, which no bot is in"
    assert [row["text"] for row in lake_rows(tmp_path / "lake")] == ["mine"]


def test_chat_id_overrides_the_exports_and_an_old_shifted_id_is_named(tmp_path):
    shifted = EXPORT_ID + (1 << 33)  # what exports before mid-2021 wrote
    path = write(tmp_path, chat_export([message(1, 0, "old")], export_id=shifted))
    with pytest.raises(CommandError) as refused:
        run_import(tmp_path, path)
    assert f"if this is that chat, import it with --chat-id {CHAT}" in str(refused.value)
    run_import(tmp_path, path, chat_id=CHAT)
    assert [(row["chat_id"], row["text"]) for row in lake_rows(tmp_path / "lake")] == [(CHAT, "old")]
    two_chats = write(tmp_path, {"chats": {"list": [chat_export([]), chat_export([], export_id=5)]}}, "all.json")
    with pytest.raises(CommandError, match="--chat-id names one chat, and this export holds more than one"):
        run_import(tmp_path, two_chats, chat_id=CHAT, lake="other")


def test_a_migrated_group_imports_under_the_supergroup_the_stage_follows(tmp_path):
    """The stage allowlists the basic group and followed its upgrade (a chat link). The supergroup's export holds the
    group's history under Telegram Desktop's shifted ids; an export of the group itself, made before the upgrade,
    imports under the supergroup the same way; the webhook's copies of the group's messages, under the group's id
    and own message ids, still win."""
    group, supergroup = -4321, -1009999999999
    config = replace(CONFIG, allowed_chat_ids=(group,))
    lake = tmp_path / "lake"
    link = lake / "raw" / "ingest-state" / "chat-links" / str(supergroup) / f"{group}.json"
    link.parent.mkdir(parents=True)
    link.write_text("{}")
    webhook = {"message_id": 2, "from": BOB, "chat": {"id": group, "type": "group", "title": "Old"}, "date": NOON + 60,
               "text": "seen live"}
    webhook_batches(lake, [(datetime.fromtimestamp(NOON + 61, timezone.utc), {"update_id": 5, "message": webhook})])
    supergroup_export = chat_export(
        [message(1 + MIGRATED_ID_SHIFT, 0, "in the group"), message(2 + MIGRATED_ID_SHIFT, 60, "seen live", author=BOB),
         service(3 + MIGRATED_ID_SHIFT, 90, "migrate_to_supergroup"),
         service(1, 120, "migrate_from_group", title="Old"),
         message(2, 180, "in the supergroup")],
        export_id=9999999999, name="New")
    summary = run_import(tmp_path, write(tmp_path, supergroup_export), config=config)
    assert summary.duplicates == 1 and summary.skipped["service action the Bot API does not send"] == 2
    rows = sorted(lake_rows(lake), key=lambda row: row["update_id"])
    assert [(row["chat_id"], row["message_id"], row["text"]) for row in rows] == [
        (supergroup, 1 + MIGRATED_ID_SHIFT, "in the group"), (supergroup, 2, "in the supergroup"),
        (group, 2, "seen live")]

    group_export = chat_export([message(1, 0, "in the group"), message(2, 60, "seen live", author=BOB)],
                               export_id=4321, kind="private_group", name="New")
    other = tmp_path / "other"
    (other / "raw").mkdir(parents=True)
    for path in (lake / "raw").rglob("*"):
        if path.is_file() and not path.name.startswith("import-"):  # the same link and webhook copy
            (other / path.relative_to(lake)).parent.mkdir(parents=True, exist_ok=True)
            (other / path.relative_to(lake)).write_bytes(path.read_bytes())
    before = run_import(tmp_path, write(tmp_path, group_export), config=config, lake="other")
    assert before.duplicates == 1
    def identities(found: list[dict]) -> list[tuple[int, int, int]]:
        return [(row["chat_id"], row["message_id"], row["update_id"]) for row in found]

    assert identities(lake_rows(other)) == identities([row for row in rows if row["text"] != "in the supergroup"])


# ---- bad input writes nothing


@pytest.mark.parametrize(("body", "error"), [
    (b"{not json", "not JSON"),
    (b'{"about": 1}', "not an export"),
    (None, "truncated"),
    (b'{"name": "c", "type": "private_supergroup", "id": 1234567890, "messages": [{"id": 1, "type": "message", '
     b'"date_unixtime": "0", "from_id": "user1", "text": ""}]}', "outside 1376438400"),
])
def test_bad_input_gets_one_line_and_writes_nothing(tmp_path, capsys, body, error):
    good = json.dumps(chat_export(HANDMADE), ensure_ascii=False).encode()
    path = write(tmp_path, body if body is not None else good[: len(good) * 2 // 3])
    lake = tmp_path / "lake"
    assert tools_main(["import-history", str(path), "--local", str(lake)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: ") and error in err and err.count("\n") == 1
    assert not [item for item in lake.rglob("*") if item.is_file()]


def test_unknown_fields_are_ignored_at_every_level(tmp_path):
    noisy = chat_export([message(1, 0, "hi", brand_new_field={"x": [1]}) | {"from_rank": "admin"}])
    noisy["brand_new_chat_field"] = [{"deep": None}]
    summary = run_import(tmp_path, write(tmp_path, noisy))
    assert summary.kinds == Counter({"text": 1}) and [row["text"] for row in lake_rows(tmp_path / "lake")] == ["hi"]


# ---- streaming


def test_a_large_export_streams_in_bounded_memory(tmp_path):
    """Memory follows the largest value, not the file: 40 times the messages, the same peak."""
    def peak(count: int) -> tuple[int, int]:
        path = tmp_path / f"big-{count}.json"
        with path.open("w", encoding="utf-8") as out:
            out.write('{"name": "Big", "type": "private_supergroup", "id": 1234567890, "messages": [')
            for number in range(1, count + 1):
                exported = message(number, number, f"message {number} é🇧🇷 " * 8)
                out.write(("," if number > 1 else "") + json.dumps(exported, ensure_ascii=False, indent=1))
            out.write("]}")
        target = handmade_target()
        tracemalloc.start()
        try:
            with path.open("rb") as stream:
                converted_ = sum(len(message_updates(target, item, earliest=0, latest=2**40).updates)
                                 for item in read_export(stream) if isinstance(item, dict))
            return tracemalloc.get_traced_memory()[1], converted_
        finally:
            tracemalloc.stop()

    small, _ = peak(1_000)
    large, count = peak(40_000)
    assert count == 40_000 and (tmp_path / "big-40000.json").stat().st_size > 20 * 2**20
    assert large < 2 * small + 2**20, (small, large)


# ---- the deployed stage's buckets


def test_a_deployed_stage_gets_the_same_objects_through_its_buckets(tmp_path):
    export = write(tmp_path, chat_export([message(1, 0, "one"), message(2, 86_400, "two")]))
    local = run_import(tmp_path, export)
    with mock_aws():
        s3 = boto3.client("s3")
        for bucket in ("raw", "enriched"):
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket="raw", Key=f"ingest-state/chat-links/{CHAT}/-55.json", Body=b"{}")
        settings = EtlSettings("raw", "enriched", CONFIG.timezone, 4)
        ran: list[date] = []

        def compact(days, console):
            ran.extend(days)
            return run_days(days, local_runner(settings), console)

        lake = Lake(BucketZone(s3, "raw", 4), BucketZone(s3, "enriched", 4), compact)
        summary = import_history(export, CONFIG, lake, quiet(), now=NOW)
        assert ran == [DAY, DAY + timedelta(days=1)] and summary.written == local.written == 2
        keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket="raw", Prefix=PREFIX)["Contents"])
        local_keys = [key.removeprefix("raw/") for key in raw_files(tmp_path / "lake") if key.startswith("raw/")]
        assert keys == sorted(local_keys)
        for key in keys:
            assert s3.get_object(Bucket="raw", Key=key)["Body"].read() == (tmp_path / "lake" / "raw" / key).read_bytes()
        parquet = s3.get_object(Bucket="enriched", Key=f"{day_prefix(DAY)}telegram.parquet")["Body"].read()
        assert [row["text"] for row in pq.read_table(io.BytesIO(parquet)).to_pylist()] == ["one"]
        again = import_history(export, CONFIG, lake, quiet(), now=NOW)
        assert (again.unchanged, again.compacted, ran) == (2, [], [DAY, DAY + timedelta(days=1)])


def test_a_day_whose_webhook_rows_outlived_their_raw_objects_is_kept(tmp_path):
    lake = tmp_path / "lake"
    webhook_batches(lake, [(datetime.fromtimestamp(NOON + 5, timezone.utc),
                            {"update_id": 9, "message": {"message_id": 1, "from": ALICE, "date": NOON, "text": "live",
                                                         "chat": {"id": CHAT, "type": "supergroup"}}})])
    compact_folder_days(CONFIG, lake / "raw", lake / "enriched", [DAY], quiet())
    for path in (lake / "raw").rglob("*.gz"):
        path.unlink()  # raw_expiration_days went by
    summary = run_import(tmp_path, write(tmp_path, chat_export([message(2, 0, "history")])))
    assert summary.kept_days == {DAY} and summary.written == 0
    assert [row["text"] for row in lake_rows(lake)] == ["live"]


def test_the_command_is_listed_and_takes_a_folder_holding_result_json(tmp_path, capsys):
    assert tools_main(["import-history", str(tmp_path / "missing"), "--local", str(tmp_path / "lake")]) == 1
    assert "is not a file (or a folder holding result.json)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tools_main(["--help"])
    assert "import-history" in capsys.readouterr().out


def test_the_command_imports_into_the_deployed_stage_through_its_stacks_outputs(tmp_path, monkeypatch, capsys):
    """`--stage S` finds the raw and enriched buckets through the stacks' outputs and compacts with the stage's
    deployed engine (here the Lambda handler's own code, in place of the deployed function)."""
    from tools.operate import etl_runs, import_history as command

    export = write(tmp_path, chat_export([message(1, 0, "deployed")]))
    with mock_aws():
        s3 = boto3.client("s3")
        for bucket in ("stage-raw", "stage-enriched"):
            s3.create_bucket(Bucket=bucket)
        outputs = {"Ingestion": {"RawBucketName": "stage-raw"}, "Etl": {"EnrichedBucketName": "stage-enriched"}}
        monkeypatch.setattr(command, "stack_outputs", lambda config, part, session=None: outputs[part])
        settings = EtlSettings("stage-raw", "stage-enriched", CONFIG.timezone, 4)
        monkeypatch.setattr(etl_runs, "deployed_runner", lambda config: local_runner(settings))
        assert tools_main(["import-history", str(export), "--stage", "dev"]) == 0
        parquet = s3.get_object(Bucket="stage-enriched", Key=f"{day_prefix(DAY)}telegram.parquet")["Body"].read()
    assert [row["text"] for row in pq.read_table(io.BytesIO(parquet)).to_pylist()] == ["deployed"]
    assert "History import" in capsys.readouterr().out


def test_a_day_an_earlier_run_wrote_but_did_not_compact_is_compacted_by_the_next(tmp_path):
    export = write(tmp_path, chat_export([message(1, 0, "one"), message(2, 86_400, "two")]))
    folder = tmp_path / "lake"
    stopped = Lake(FolderZone(folder / "raw"), FolderZone(folder / "enriched"), lambda days, console: [])
    assert import_history(export, CONFIG, stopped, quiet(), now=NOW).written == 2  # stopped before compacting
    again = run_import(tmp_path, export)
    assert (again.written, again.unchanged) == (0, 2)
    assert [outcome.day for outcome in again.compacted] == [DAY, DAY + timedelta(days=1)]
    assert sorted(row["text"] for row in lake_rows(folder)) == ["one", "two"]

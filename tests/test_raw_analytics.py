"""The saved queries the raw zone answers (members, reactions) and "right now", on DuckDB, against answers
computed in plain Python from the same raw updates.

The relations count back from today (UTC's current_date, as Athena does), so the lake is written for the
last few days: a synthetic group chat stored as the ingest stores it (with redeliveries after midnight),
its older days compacted by the ETL's own code, and a second chat of hand-written cases with the answers
spelled out: one join sent as both kinds of update, a leave and a rejoin, redeliveries across midnight,
reactions changed and taken back, anonymous totals rising and falling, a message 25 hours old.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlglot
from sqlglot import exp

import analytics
import tools.__main__
from analytics import load_queries, load_query
from lambdas.common.layout import raw_key
from lambdas.common.updates import UPDATE_TYPES, update_type
from tests.test_flatten_sql import compact_json, write_raw
from tests.test_up_to_the_minute import compact_into
from tools.local.sql import open_lake
from tools.local.synthetic import REACTION_EMOJI, synthetic_chat

DATABASE = "telegram_lake_test"
ZONE = "Asia/Kolkata"  # UTC+05:30: local hours are not UTC's hours, and local days start before UTC's
NOW = datetime.now(timezone.utc)
TODAY = NOW.astimezone(ZoneInfo(ZONE)).date()
HOUR = 3_600
# The SQL's clock runs on while the tests run: no message is sent this close to "24 hours ago".
BOUNDARY_MARGIN = timedelta(minutes=15)
SYNTHETIC_CHAT, OTHER_CHAT, EDGE_CHAT = -1001110001111, -1002220002222, -1003330003333

Stored = tuple[date, dict[str, Any]]  # (context_date, update): each update once, on the day that counts it
Rows = list[tuple]


# ---- the lake ---------------------------------------------------------------------------------------------


@dataclass
class Lake:
    """Raw objects as the ingest stores them, and the updates as the ETL counts them (first day only)."""

    objects: list[tuple[str, bytes]] = field(default_factory=list)
    updates: list[Stored] = field(default_factory=list)

    def store(self, day: date, update: dict[str, Any], *redelivered_on: date) -> None:
        self.updates.append((day, update))
        for stored_on in (day, *redelivered_on):
            self.objects.append((raw_key(stored_on, update["update_id"]), compact_json(update)))

    def write(self, root: Path, compacted: list[date]) -> Path:
        compact_into(root, self.objects, compacted)
        write_raw(self.objects, root)
        return root


def local_day(seconds: int) -> date:
    return datetime.fromtimestamp(seconds, ZoneInfo(ZONE)).date()


def at(day: date, hour: int, minute: int = 0) -> int:
    return int(datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(ZONE)).timestamp())


def near_the_24_hour_boundary(seconds: int) -> bool:
    boundary = NOW - timedelta(hours=24)
    return abs(datetime.fromtimestamp(seconds, timezone.utc) - boundary) < BOUNDARY_MARGIN


def person(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {"id": user_id, "is_bot": bot, "first_name": name}


ANA, BRUNO, CARLA, DAVI, ERICA, FABIO, GIL, HELIO, IARA, JOANA = (
    person(user_id, name) for user_id, name in enumerate(
        ("Ana", "Bruno", "Carla", "Davi", "Érica", "Fábio", "Gil", "Hélio", "Iara", "Joana"), start=201
    )
)
HELPER_BOT = person(7_000_000_001, "Helper", bot=True)
THUMBS, HEART, FIRE = ({"type": "emoji", "emoji": emoji} for emoji in ("👍", "❤", "🔥"))
CUSTOM = {"type": "custom_emoji", "custom_emoji_id": "5368324170671202286"}
PAID = {"type": "paid"}


class EdgeChat:
    """Hand-written updates in one chat, ids in the order they are written (as Telegram numbers them)."""

    info = {"id": EDGE_CHAT, "type": "supergroup", "title": "Edge cases"}

    def __init__(self, lake: Lake, first_id: int = 990_000_000, first_message_id: int = 1):
        self.lake = lake
        self.next_id = first_id
        self.next_message_id = first_message_id

    def _store(self, kind: str, payload: dict[str, Any], *redelivered_on: date) -> dict[str, Any]:
        update = {"update_id": self.next_id, kind: payload}
        self.next_id += 1
        self.lake.store(local_day(payload["date"]), update, *redelivered_on)
        return update

    def message(self, sent: int, sender: dict[str, Any], **content: Any) -> int:
        if near_the_24_hour_boundary(sent):  # sent a little earlier, so that the clock running on changes nothing
            sent -= int(2 * BOUNDARY_MARGIN.total_seconds())
        message_id = self.next_message_id
        self.next_message_id += 1
        self._store("message", {"message_id": message_id, "from": sender, "chat": self.info, "date": sent, **content})
        return message_id

    def edit(self, message_id: int, sent: int, sender: dict[str, Any], text: str) -> None:
        edited = {"message_id": message_id, "from": sender, "chat": self.info, "date": sent - 60, "edit_date": sent,
                  "text": text}
        self._store("edited_message", edited)

    def member(self, sent: int, user: dict[str, Any], old: dict[str, Any], new: dict[str, Any], *later: date) -> None:
        change = {"chat": self.info, "from": user, "date": sent, "old_chat_member": {"user": user, **old},
                  "new_chat_member": {"user": user, **new}}
        self._store("chat_member", change, *later)

    def reaction(self, sent: int, message_id: int, actor: dict[str, Any] | None, old: list, new: list,
                 *later: date) -> None:
        change: dict[str, Any] = {"chat": self.info, "message_id": message_id}
        change.update({"user": actor} if actor else {"actor_chat": self.info})
        change.update(date=sent, old_reaction=old, new_reaction=new)
        self._store("message_reaction", change, *later)

    def counts(self, sent: int, message_id: int, *totals: tuple[dict[str, str], int]) -> None:
        reactions = [{"type": reaction, "total_count": total} for reaction, total in totals]
        self._store("message_reaction_count", {"chat": self.info, "message_id": message_id, "date": sent,
                                               "reactions": reactions})


MEMBER, LEFT = {"status": "member"}, {"status": "left"}
RESTRICTED, RESTRICTED_OUT = {"status": "restricted", "is_member": True}, {"status": "restricted", "is_member": False}
# The days the hand-written cases happen on; the lake holds them and the two days before.
D2, D1 = TODAY - timedelta(days=2), TODAY - timedelta(days=1)


def edge_cases(lake: Lake) -> None:
    """The hand-written chat's members and reactions, with the answers in the tests below."""
    chat = EdgeChat(lake)
    # Messages reacted to, all on D2 (compacted): one edited on D1 (in the raw zone), one photo with a caption,
    # one with anonymous reactions; and below, one the lake never received.
    first = chat.message(at(D2, 9), ANA, text="primeira mensagem")
    edited = chat.message(at(D2, 9, 5), BRUNO, text="com erro")
    chat.edit(edited, at(D1, 8), BRUNO, "corrigida")
    captioned = chat.message(at(D2, 9, 10), CARLA, photo=[{"file_id": "x", "file_unique_id": "y", "width": 1,
                                                          "height": 1}], caption="foto do encontro")
    anonymous = chat.message(at(D2, 9, 20), DAVI, text="post com reações anônimas")

    # Members on D1. Ana: one join, sent as both kinds (and once more as chat_member) -> one join.
    chat.message(at(D1, 10), ANA, new_chat_members=[ANA])
    chat.member(at(D1, 10), ANA, LEFT, MEMBER)
    chat.member(at(D1, 10, 1), ANA, LEFT, MEMBER)
    # Bruno leaves and comes back: a join and a leave, no net change.
    chat.member(at(D1, 11), BRUNO, MEMBER, LEFT)
    chat.message(at(D1, 11), BRUNO, left_chat_member=BRUNO)
    chat.member(at(D1, 12), BRUNO, LEFT, MEMBER)
    # Carla joins, leaves and joins again: one of each, and one more member at the end of the day.
    chat.member(at(D1, 13), CARLA, LEFT, MEMBER)
    chat.member(at(D1, 14), CARLA, MEMBER, {"status": "kicked", "until_date": 0})
    chat.member(at(D1, 15), CARLA, {"status": "kicked", "until_date": 0}, MEMBER)
    # Davi and a bot added together: Davi joins, the bot is not counted.
    chat.message(at(D1, 16), ERICA, new_chat_members=[DAVI, HELPER_BOT])
    # A restricted non-member let in joins; a member restricted or promoted stays; an owner leaving leaves.
    chat.member(at(D1, 17), ERICA, RESTRICTED_OUT, RESTRICTED)
    chat.member(at(D1, 17, 5), FABIO, MEMBER, RESTRICTED)
    chat.member(at(D1, 17, 10), GIL, MEMBER, {"status": "administrator", "can_manage_chat": True})
    chat.member(at(D1, 17, 15), HELIO, {"status": "creator", "is_anonymous": False}, LEFT)
    # Fábio, restricted, leaves: he stays restricted, no longer a member.
    chat.member(at(D1, 17, 30), FABIO, RESTRICTED, RESTRICTED_OUT)
    # Iara joins late on D2; Telegram delivers the update again after midnight: D2's, once.
    chat.member(at(D2, 23, 59), IARA, LEFT, MEMBER, D1)
    # A member update whose ids are not integers counts nowhere.
    chat.member(at(D1, 18), {"id": "209", "is_bot": False, "first_name": "Texto"}, LEFT, MEMBER)

    # Reactions. D2: Ana 👍, then (D1) changes it to ❤; Bruno sets 👍 and a custom emoji, then takes both back.
    chat.reaction(at(D2, 10), first, ANA, [], [THUMBS])
    chat.reaction(at(D2, 11), first, BRUNO, [], [THUMBS, CUSTOM])
    chat.reaction(at(D1, 9), first, ANA, [THUMBS], [HEART])
    chat.reaction(at(D1, 9, 30), first, BRUNO, [THUMBS, CUSTOM], [])
    # Carla reacts late on D2, redelivered after midnight: counted on D2 only.
    chat.reaction(at(D2, 23, 58), edited, CARLA, [], [FIRE], D1)
    chat.reaction(at(D1, 10), edited, DAVI, [], [FIRE, THUMBS])
    chat.reaction(at(D1, 10, 30), edited, CARLA, [FIRE], [FIRE, HEART])  # a second one: 🔥 stays
    # An anonymous admin pays a star; a reaction to a message the lake never received.
    chat.reaction(at(D1, 11), captioned, None, [], [PAID])
    chat.reaction(at(D1, 12), 7_777, ERICA, [], [HEART])
    # Should Telegram report a message both ways, its totals alone count (they include every reaction).
    chat.reaction(at(D1, 12, 30), anonymous, GIL, [], [THUMBS])
    # Anonymous totals: the latest of each day counts (D2: 👍4 ❤1), then they fall (D1: 👍2) and rise (today).
    chat.counts(at(D2, 12), anonymous, (THUMBS, 3))
    chat.counts(at(D2, 13), anonymous, (THUMBS, 4), (HEART, 1))
    chat.counts(at(D1, 12), anonymous, (THUMBS, 2))
    chat.counts(max(at(TODAY, 0), int(NOW.timestamp()) - HOUR), anonymous, (THUMBS, 5), (FIRE, 1))


def right_now(lake: Lake) -> None:
    """25 hours ago is out; 23 hours, 1 hour and 5 minutes ago are in; a bot is never counted."""
    chat = EdgeChat(lake, first_id=991_000_000, first_message_id=1_000)
    for ago in (timedelta(hours=25), timedelta(hours=23), timedelta(hours=1), timedelta(minutes=5)):
        chat.message(int((NOW - ago).timestamp()), JOANA, text=f"{ago} ago")
    chat.message(int((NOW - timedelta(hours=2)).timestamp()), HELPER_BOT, text="a bot")


def synthetic_updates(lake: Lake) -> None:
    """Five days of the synthetic chat up to now, the last three updates of each day redelivered the next."""
    updates = synthetic_chat(TODAY - timedelta(days=4), 5, 150, chat_id=SYNTHETIC_CHAT, other_chat_id=OTHER_CHAT,
                             zone=ZONE, seed=5)
    by_day: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for item in updates:
        sent = item.update.get("message", {}).get("date")
        if item.arrival <= NOW and not (sent is not None and near_the_24_hour_boundary(sent)):
            by_day[item.arrival.astimezone(ZoneInfo(ZONE)).date()].append(item.update)
    for day, day_updates in sorted(by_day.items()):
        for number, update in enumerate(day_updates):
            redelivered = (day + timedelta(days=1),) if number >= len(day_updates) - 3 and day < TODAY else ()
            lake.store(day, update, *redelivered)


@pytest.fixture(scope="module")
def edge_lake(tmp_path_factory) -> Iterator[tuple[Lake, Any]]:
    """The hand-written chat alone, D2 compacted."""
    lake = Lake()
    edge_cases(lake)
    root = lake.write(tmp_path_factory.mktemp("edge"), [D2])
    with open_lake(str(root)) as local:
        yield lake, local


@pytest.fixture(scope="module")
def now_lake(tmp_path_factory) -> Iterator[tuple[Lake, Any]]:
    """A few messages around "24 hours ago", raw only."""
    lake = Lake()
    right_now(lake)
    root = lake.write(tmp_path_factory.mktemp("now"), [])
    with open_lake(str(root)) as local:
        yield lake, local


@pytest.fixture(scope="module")
def full_lake(tmp_path_factory) -> Iterator[tuple[Lake, Any]]:
    """The synthetic chat and the hand-written ones, the days before yesterday compacted, plus an object
    that is not JSON (it spoils only itself)."""
    lake = Lake()
    synthetic_updates(lake)
    edge_cases(lake)
    right_now(lake)
    lake.objects.append((raw_key(D1, 990_999_999), b'{"update_id":990999999,"chat_member":{"chat":'))
    root = lake.write(tmp_path_factory.mktemp("full"), [TODAY - timedelta(days=offset) for offset in (4, 3, 2)])
    with open_lake(str(root)) as local:
        yield lake, local


def run(local: Any, name: str) -> Rows:
    return local.run(load_query(name, ZONE, DATABASE))[1]


# ---- independent answers, in plain Python -------------------------------------------------------------------


def is_integer(value: Any) -> bool:
    return type(value) is int  # JSON integers only: not true/false, not 1.0, not "1"


def is_member(chat_member: dict[str, Any]) -> bool | None:
    status = chat_member.get("status")
    if status in ("creator", "administrator", "member"):
        return True
    if status == "restricted":
        return chat_member.get("is_member") is True
    return False if status in ("left", "kicked") else None


def membership_changes(updates: list[Stored]) -> Iterator[tuple[date, int, int, dict[str, Any], str]]:
    """(day, update id, chat id, user, "join" | "leave") for every change any update reports."""
    for day, update in updates:
        kind = update_type(update)
        payload = update[kind]
        if kind == "chat_member":
            before, after = is_member(payload["old_chat_member"]), is_member(payload["new_chat_member"])
            user = payload["new_chat_member"]["user"]
            if (before, after) in ((False, True), (True, False)):
                yield day, update["update_id"], payload["chat"]["id"], user, "join" if after else "leave"
        elif kind == "message":
            for user in payload.get("new_chat_members", []):
                yield day, update["update_id"], payload["chat"]["id"], user, "join"
            if "left_chat_member" in payload:
                yield day, update["update_id"], payload["chat"]["id"], payload["left_chat_member"], "leave"


def member_changes_per_day(updates: list[Stored]) -> Rows:
    per_person: dict[tuple[date, int, int], list[tuple[int, str]]] = defaultdict(list)
    for day, update_id, chat_id, user, direction in membership_changes(updates):
        if is_integer(chat_id) and is_integer(user.get("id")) and user.get("is_bot") is False:
            per_person[day, chat_id, user["id"]].append((update_id, direction))
    totals: dict[tuple[date, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for (day, chat_id, _), changes in per_person.items():
        directions = [direction for _, direction in sorted(changes)]
        total = totals[day, chat_id]
        total[0] += "join" in directions
        total[1] += "leave" in directions
        total[2] += (directions[-1] == "join") - (directions[0] == "leave")
    return sorted(((day, chat_id, *total) for (day, chat_id), total in totals.items()),
                  key=lambda row: (-row[0].toordinal(), row[1]))


def reaction_key(reaction: Any) -> tuple[str, str] | None:
    """(reaction_type, reaction): the emoji, the custom emoji's id, or the type's name."""
    kind = reaction.get("type") if isinstance(reaction, dict) else None
    if not isinstance(kind, str):
        return None
    value = {"emoji": reaction.get("emoji"), "custom_emoji": reaction.get("custom_emoji_id")}.get(kind, kind)
    return (kind, value) if isinstance(value, str) else None


def actor(payload: dict[str, Any]) -> int | None:
    for holder in ("user", "actor_chat"):
        if is_integer((payload.get(holder) or {}).get("id")):
            return payload[holder]["id"]
    return None


def latest_totals(updates: list[Stored]) -> dict[tuple[int, int], list[tuple[date, dict[tuple[str, str], int]]]]:
    """Each message's anonymous totals: the latest of each day it has any, by day."""
    latest: dict[tuple[int, int, date], tuple[int, dict]] = {}
    for day, update in updates:
        payload = update.get("message_reaction_count")
        if payload is None or not (is_integer(payload["chat"]["id"]) and is_integer(payload["message_id"])):
            continue
        key = (payload["chat"]["id"], payload["message_id"], day)
        if key not in latest or latest[key][0] < update["update_id"]:
            totals: dict[tuple[str, str], int] = defaultdict(int)
            for reaction_count in payload["reactions"]:
                name = reaction_key(reaction_count.get("type"))
                if name and is_integer(reaction_count.get("total_count")) and reaction_count["total_count"] >= 0:
                    totals[name] += reaction_count["total_count"]
            latest[key] = (update["update_id"], totals)
    by_message: dict[tuple[int, int], list] = defaultdict(list)
    for (chat_id, message_id, day), (_, totals) in sorted(latest.items()):
        by_message[chat_id, message_id].append((day, totals))
    return by_message


def reactions_per_day(updates: list[Stored]) -> Rows:
    added, removed, anonymous = defaultdict(int), defaultdict(int), defaultdict(int)
    adders: dict[tuple, set[int]] = defaultdict(set)
    for day, update in updates:
        payload = update.get("message_reaction")
        if payload is None:
            continue
        old = {key for key in map(reaction_key, payload.get("old_reaction") or []) if key}
        new = {key for key in map(reaction_key, payload.get("new_reaction") or []) if key}
        for key in new - old:
            added[(day, *key)] += 1
            if actor(payload) is not None:
                adders[(day, *key)].add(actor(payload))
        for key in old - new:
            removed[(day, *key)] += 1
    for days in latest_totals(updates).values():
        for (day, totals), previous in zip(days, [{}, *(totals for _, totals in days)]):
            for key in {*totals, *previous}:
                anonymous[(day, *key)] += totals.get(key, 0) - previous.get(key, 0)
    rows = [
        (day, kind, value, added[day, kind, value], removed[day, kind, value], len(adders[day, kind, value]),
         anonymous[day, kind, value])
        for day, kind, value in {*added, *removed, *anonymous}
    ]
    rows = [row for row in rows if row[3] or row[4] or row[6]]
    return sorted(rows, key=lambda row: (-row[0].toordinal(), -(row[3] + row[6]), row[1], row[2]))


def message_texts(updates: list[Stored]) -> dict[tuple[int, int], str | None]:
    """Each message's text (or caption) as last edited, from every message-like update."""
    texts = {}
    for _, update in sorted(updates, key=lambda stored: stored[1]["update_id"]):
        if update_type(update) in ("message", "edited_message"):
            message = update[update_type(update)]
            text = message.get("text") if isinstance(message.get("text"), str) else None
            caption = message.get("caption") if isinstance(message.get("caption"), str) else None
            texts[message["chat"]["id"], message["message_id"]] = text if text is not None else caption
    return texts


def most_reacted_messages(updates: list[Stored]) -> Rows:
    latest: dict[tuple[int, int, int], tuple[int, list]] = {}
    for _, update in updates:
        payload = update.get("message_reaction")
        if payload is None or actor(payload) is None:
            continue
        key = (payload["chat"]["id"], payload["message_id"], actor(payload))
        if key not in latest or latest[key][0] < update["update_id"]:
            latest[key] = (update["update_id"], payload["new_reaction"])
    by_people: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    for (chat_id, message_id, _), (_, reactions) in latest.items():
        by_people[chat_id, message_id][0] += len(reactions)
        by_people[chat_id, message_id][1] += bool(reactions)
    anonymous = {message: sum(days[-1][1].values()) for message, days in latest_totals(updates).items() if days[-1][1]}
    texts = message_texts(updates)
    rows = [
        (chat_id, message_id, anonymous[chat_id, message_id], None) if (chat_id, message_id) in anonymous
        else (chat_id, message_id, *by_people[chat_id, message_id])
        for chat_id, message_id in {*by_people, *anonymous}
    ]
    rows = [(*row, texts.get(row[:2])) for row in rows if row[2] > 0]
    return sorted(rows, key=lambda row: (-row[2], row[0], row[1]))[:20]


def messages_last_24_hours(updates: list[Stored]) -> Rows:
    since = (NOW - timedelta(hours=24)).timestamp()
    hours: dict[tuple[date, int], list[int]] = defaultdict(list)
    for _, update in updates:
        message = update.get("message")
        if message and message["from"]["is_bot"] is False and message["date"] > since:
            local = datetime.fromtimestamp(message["date"], ZoneInfo(ZONE))
            hours[local.date(), local.hour].append(message["from"]["id"])
    return sorted((day, hour, len(users), len(set(users))) for (day, hour), users in hours.items())


EXPECTED: dict[str, Callable[[list[Stored]], Rows]] = {
    function.__name__: function
    for function in (member_changes_per_day, reactions_per_day, most_reacted_messages, messages_last_24_hours)
}


# ---- the saved queries against those answers --------------------------------------------------------------


@pytest.mark.parametrize("name", list(EXPECTED))
def test_saved_query_on_duckdb_equals_python(full_lake, name):
    lake, local = full_lake
    assert run(local, name) == EXPECTED[name](lake.updates)


def test_the_full_lake_holds_what_the_queries_must_get_right(full_lake):
    """Without these, the equality above could pass for queries that get them wrong."""
    lake, _ = full_lake
    synthetic = [(day, update) for day, update in lake.updates if update["update_id"] < 990_000_000]
    assert {"chat_member", "message_reaction", "message_reaction_count"} <= {update_type(u) for _, u in synthetic}
    joins = defaultdict(set)  # the synthetic chat reports some joins both ways
    for day, update in synthetic:
        payload = update[update_type(update)]
        for user in payload.get("new_chat_members", []):
            joins[day, user["id"]].add("service message")
        if "new_chat_member" in payload and payload["new_chat_member"]["status"] == "member":
            joins[day, payload["new_chat_member"]["user"]["id"]].add("chat_member")
    assert any(len(kinds) == 2 for kinds in joins.values())
    assert {row[1] for row in member_changes_per_day(synthetic)} == {SYNTHETIC_CHAT, OTHER_CHAT}
    stored_on = defaultdict(set)
    for key, _ in lake.objects:
        stored_on[key.rsplit("/", 1)[1]].add(key)
    assert sum(len(keys) > 1 for keys in stored_on.values()) > 10  # redelivered after midnight
    top = most_reacted_messages(synthetic)
    assert len(top) == 20 and any(row[3] is None for row in top) and any(row[3] for row in top)
    assert any(row[4] is None for row in top) and any(row[4] for row in top)  # messages with and without text
    assert any(row[4] for row in reactions_per_day(synthetic))  # reactions taken back
    assert sum(row[2] for row in messages_last_24_hours(synthetic)) > 20


def test_members_per_day_count_each_person_once_per_direction(edge_lake):
    _, local = edge_lake
    assert [row for row in run(local, "member_changes_per_day") if row[1] == EDGE_CHAT] == [
        # Ana, Bruno, Carla, Davi, Érica (let in); Bruno, Carla, Hélio, Fábio left; Ana, Carla, Davi, Érica net.
        (D1, EDGE_CHAT, 5, 4, 2),
        (D2, EDGE_CHAT, 1, 0, 1),  # Iara: redelivered after midnight, counted on D2 alone
    ]


def test_reactions_per_day_count_additions_removals_and_anonymous_changes(edge_lake):
    _, local = edge_lake
    custom = CUSTOM["custom_emoji_id"]
    assert run(local, "reactions_per_day") == [
        (TODAY, "emoji", "👍", 0, 0, 0, 3),  # anonymous totals 2 -> 5
        (TODAY, "emoji", "🔥", 0, 0, 0, 1),
        (D1, "emoji", "❤", 3, 0, 3, -1),  # Ana's change, Carla's second, Érica's (on a message never received)
        (D1, "emoji", "🔥", 1, 0, 1, 0),  # Davi; Carla's redelivery is D2's, and her 🔥 stayed
        (D1, "paid", "paid", 1, 0, 1, 0),  # an anonymous admin, as the chat
        (D1, "custom_emoji", custom, 0, 1, 0, 0),  # Bruno took it back
        (D1, "emoji", "👍", 2, 2, 2, -2),  # Davi, Gil added; Ana changed, Bruno took back; anonymous 4 -> 2
        (D2, "emoji", "👍", 2, 0, 2, 4),  # Ana and Bruno; anonymous 0 -> 4: the day's latest totals only
        (D2, "custom_emoji", custom, 1, 0, 1, 0),
        (D2, "emoji", "❤", 0, 0, 0, 1),
        (D2, "emoji", "🔥", 1, 0, 1, 0),  # Carla, once
    ]


def test_most_reacted_messages_count_what_stands_and_show_the_latest_text(edge_lake):
    _, local = edge_lake
    assert run(local, "most_reacted_messages") == [
        (EDGE_CHAT, 4, 6, None, "post com reações anônimas"),  # today's anonymous totals alone, people unknown
        (EDGE_CHAT, 2, 4, 2, "corrigida"),  # Carla 🔥❤, Davi 🔥👍; the text as edited (on D1, from the raw zone)
        (EDGE_CHAT, 1, 1, 1, "primeira mensagem"),  # Ana's ❤ stands, Bruno's were taken back
        (EDGE_CHAT, 3, 1, 1, "foto do encontro"),  # a caption
        (EDGE_CHAT, 7_777, 1, 1, None),  # never received: no text
    ]


def test_messages_last_24_hours_leave_out_25_hours_ago_and_bots(now_lake):
    _, local = now_lake
    expected = defaultdict(int)
    for ago in (timedelta(hours=23), timedelta(hours=1), timedelta(minutes=5)):
        sent = datetime.fromtimestamp(int((NOW - ago).timestamp()), ZoneInfo(ZONE))
        expected[sent.date(), sent.hour] += 1
    rows = [(day, hour, count, 1) for (day, hour), count in sorted(expected.items())]
    assert run(local, "messages_last_24_hours") == rows


# ---- the synthetic chat's member and reaction updates --------------------------------------------------------


CHAT_MEMBER_FIELDS = {"creator": {"is_anonymous"}, "administrator": {"can_be_edited", "can_manage_chat"},
                      "member": set(), "restricted": {"is_member", "can_send_messages", "until_date"},
                      "left": set(), "kicked": {"until_date"}}


def is_reaction_type(reaction: Any) -> bool:
    return reaction in ({"type": "emoji", "emoji": emoji} for emoji in REACTION_EMOJI) or (
        set(reaction) == {"type", "custom_emoji_id"} and reaction["type"] == "custom_emoji"
        and reaction["custom_emoji_id"].isdigit()
    )


def test_the_synthetic_chat_reports_members_and_reactions_as_the_bot_api_does():
    """ChatMemberUpdated, MessageReactionUpdated and MessageReactionCountUpdated with their fields, each
    update's "old" being what the one before it made "new", and every case the queries must tell apart."""
    chat = synthetic_chat(date(2026, 11, 2), 4, 600, chat_id=-1001, other_chat_id=-1002, zone=ZONE, seed=3)
    statuses: dict[tuple[int, int], dict] = {}
    reactions: dict[tuple[int, int, int], list] = {}
    counted: set[tuple[int, int]] = set()
    seen = defaultdict(int)
    for item in chat:
        kind = update_type(item.update)
        payload = item.update[kind]
        if kind == "chat_member":
            assert set(payload) == {"chat", "from", "date", "old_chat_member", "new_chat_member"}
            old, new = payload["old_chat_member"], payload["new_chat_member"]
            assert old["user"] == new["user"] and not new["user"]["is_bot"]
            for member in (old, new):
                assert CHAT_MEMBER_FIELDS[member["status"]] <= set(member)
            key = (payload["chat"]["id"], new["user"]["id"])
            if key in statuses:
                assert old == statuses[key]
                seen["rejoin"] += is_member(old) is False and is_member(new) is True
            else:  # someone new, or a member from before the chat began
                assert old in ({"user": new["user"], "status": "left"}, {"user": new["user"], "status": "member"})
            statuses[key] = new
            seen[f"{old['status']} -> {new['status']}"] += 1
        elif kind == "message_reaction":
            assert list(payload) in (
                ["chat", "message_id", "user", "date", "old_reaction", "new_reaction"],
                ["chat", "message_id", "actor_chat", "date", "old_reaction", "new_reaction"],
            )
            key = (payload["chat"]["id"], payload["message_id"], actor(payload))
            assert payload["old_reaction"] == reactions.get(key, [])
            assert all(map(is_reaction_type, payload["new_reaction"])) and len(payload["new_reaction"]) <= 3
            reactions[key] = payload["new_reaction"]
            old, new = ({reaction_key(r) for r in payload[side]} for side in ("old_reaction", "new_reaction"))
            seen["taken back" if old and not new else "changed" if old - new and new - old else "added"] += 1
            seen["a second one"] += bool(old) and old < new
            seen["by an anonymous admin"] += "actor_chat" in payload
            seen["custom emoji"] += any(r["type"] == "custom_emoji" for r in payload["new_reaction"])
        elif kind == "message_reaction_count":
            assert list(payload) == ["chat", "message_id", "date", "reactions"]
            totals = [reaction_count["total_count"] for reaction_count in payload["reactions"]]
            assert totals == sorted(totals, reverse=True) and all(is_integer(total) and total > 0 for total in totals)
            assert all(is_reaction_type(reaction_count["type"]) for reaction_count in payload["reactions"])
            counted.add((payload["chat"]["id"], payload["message_id"]))
            seen["anonymous totals"] += 1
    assert counted.isdisjoint(key[:2] for key in reactions)  # a message's reactions are public or anonymous
    assert {"member -> left", "left -> member", "member -> kicked", "member -> administrator",
            "member -> restricted", "rejoin", "taken back", "changed", "added", "a second one",
            "by an anonymous admin", "custom emoji", "anonymous totals"} <= {name for name in seen if seen[name]}, seen
    assert chat == synthetic_chat(date(2026, 11, 2), 4, 600, chat_id=-1001, other_chat_id=-1002, zone=ZONE, seed=3)


# ---- the `-- updates:` header and what webhook set asks for ------------------------------------------------


def update_types_compared_in(sql: str) -> set[str]:
    """The update types a query's SQL selects with `update_type = '...'` or `update_type IN (...)`."""
    tree = sqlglot.parse_one(sql, read="athena")
    types = set()
    for condition in tree.find_all(exp.EQ, exp.In):
        if isinstance(condition.this, exp.Column) and condition.this.name == "update_type":
            values = condition.expressions if isinstance(condition, exp.In) else [condition.expression]
            types |= {value.name for value in values if isinstance(value, exp.Literal)}
    return types


@pytest.mark.parametrize("path", sorted(analytics.QUERY_DIR.glob("*.sql")), ids=lambda path: path.name)
def test_a_query_declares_exactly_the_update_types_it_reads_from_the_raw_zone(path):
    name = path.stem.split("_", 1)[1]
    query = load_query(name, ZONE, DATABASE)
    body = path.read_text(encoding="utf-8").replace("{{timezone}}", ZONE)
    if re.search(r"\b(FROM|JOIN)\s+telegram_updates\b", body):
        assert set(query.update_types) == update_types_compared_in(body)
    else:
        assert query.update_types == ()  # `telegram` is made of message updates, which every stage asks for


@pytest.mark.parametrize("name", ["member_changes_per_day", "reactions_per_day", "most_reacted_messages"])
def test_a_raw_zone_query_reads_the_raw_zone_once(name):
    """Athena (Trino) evaluates a WITH query again at every reference, scanning its files again: each of
    these reads 33 days of raw JSON, so it names `telegram_updates` once and follows every step from there."""
    path = next(analytics.QUERY_DIR.glob(f"*_{name}.sql"))
    tree = sqlglot.parse_one(path.read_text(encoding="utf-8").replace("{{timezone}}", ZONE), read="athena")
    assert [table.name for table in tree.find_all(exp.Table)].count("telegram_updates") == 1


def test_the_raw_zone_queries_declare_the_types_telegram_sends_only_when_asked():
    declared = {query.name: query.update_types for query in load_queries(ZONE, DATABASE) if query.update_types}
    assert declared == {
        "member_changes_per_day": ("chat_member", "message"),
        "reactions_per_day": ("message_reaction", "message_reaction_count"),
        "most_reacted_messages": ("message_reaction", "message_reaction_count"),
    }


def saved_query_file(folder: Path, header: str, body: str = "SELECT update_id FROM telegram_updates") -> None:
    (folder / "01_probe.sql").write_text(f"-- Which updates?\n{header}{body}\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("-- updates: chat_member, stories\n", r"unknown update types \['stories'\]"),
        ("-- updates:\n", r"unknown update types \[''\]"),
        ("-- updates: chat_member,\n", r"unknown update types \[''\]"),
        ("-- updates: chat_member, chat_member\n", r"\['chat_member'\] more than once"),
        ("-- updates: chat_member\n-- updates: message\n", "one `-- updates:` line at most"),
        ("", "reads telegram_updates, so its header must name the update types"),
    ],
)
def test_loader_rejects_a_wrong_updates_header(tmp_path, monkeypatch, header, problem):
    saved_query_file(tmp_path, header)
    monkeypatch.setattr(analytics, "QUERY_DIR", tmp_path)
    with pytest.raises(ValueError, match=f"01_probe.sql: .*{problem}"):
        load_queries(ZONE, DATABASE)


def test_loader_reads_the_updates_header_in_its_order_and_keeps_it_in_the_sql(tmp_path, monkeypatch):
    saved_query_file(tmp_path, "-- updates:  message_reaction_count ,message_reaction\n")
    monkeypatch.setattr(analytics, "QUERY_DIR", tmp_path)
    [query] = load_queries(ZONE, DATABASE)
    assert query.update_types == ("message_reaction_count", "message_reaction")
    assert set(query.update_types) <= set(UPDATE_TYPES)
    assert "-- updates:  message_reaction_count ,message_reaction" in query.sql


def test_query_list_shows_the_raw_zone_questions(capsys):
    code = tools.__main__.main(["query", "--list", "--stage", "dev", "--format", "csv"])
    listed = {row["name"]: row["question"] for row in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert code == 0
    assert len(listed) >= 12
    assert set(EXPECTED) <= set(listed)
    question = "How many people join and leave each chat per day, and what is the net change?"
    assert listed["member_changes_per_day"] == question

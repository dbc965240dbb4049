"""The ingest's chat rules (lambdas/ingest/chats.py): chat facts, upgrade notices, links, allowlist, records."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest

from lambdas.common.layout import CHAT_LINKS_PREFIX, chat_link_key, chats_seen_key
from lambdas.common.updates import update_type
from lambdas.ingest.chats import (
    Allowlist,
    Chat,
    ChatDay,
    ChatLink,
    ChatsSeen,
    RECORD_INTERVAL,
    allowed_through,
    chat_of,
    link_record,
    migration_of,
    parse_link_key,
)

OLD, NEW = -4001, -1000000004001  # a basic group, and the supergroup it becomes (-100 and its digits)
DAY = date(2026, 5, 17)
NOON = datetime(2026, 5, 17, 12, tzinfo=timezone.utc)


def message(chat_id: int = OLD, chat_type: str = "group", **fields: object) -> dict:
    return {"message_id": 1, "date": 1779030000, "chat": {"id": chat_id, "type": chat_type}, **fields}


# ---- chat facts

def test_chat_keeps_id_type_title_and_username_and_nothing_else():
    update = {"update_id": 1, "message": message(chat={"id": NEW, "type": "supergroup", "title": "Lake",
                                                        "username": "lake", "description": "secret plans"})}
    assert chat_of(update) == Chat(id=NEW, type="supergroup", title="Lake", username="lake")


def test_chat_fields_that_are_not_text_are_dropped():
    update = {"update_id": 1, "my_chat_member": {"chat": {"id": NEW, "type": 5, "title": ["x"], "username": None}}}
    assert chat_of(update) == Chat(id=NEW, type=None, title=None, username=None)


def test_a_chat_less_update_has_no_chat():
    assert chat_of({"update_id": 1, "poll": {"id": "p"}}) is None


@pytest.mark.parametrize("chat_type, is_group", [
    ("group", True), ("supergroup", True), ("channel", True), ("private", False), (None, False)])
def test_groups_supergroups_and_channels_are_groups(chat_type, is_group):
    assert Chat(id=1, type=chat_type, title=None, username=None).is_group is is_group


# ---- upgrade notices

@pytest.mark.parametrize("update, link", [
    ({"message": message(OLD, migrate_to_chat_id=NEW)}, ChatLink(old=OLD, new=NEW)),
    ({"message": message(NEW, "supergroup", migrate_from_chat_id=OLD)}, ChatLink(old=OLD, new=NEW)),
    ({"edited_message": message(OLD, migrate_to_chat_id=NEW)}, ChatLink(old=OLD, new=NEW)),
    ({"future_message": message(OLD, migrate_to_chat_id=NEW)}, ChatLink(old=OLD, new=NEW)),
], ids=["migrate-to", "migrate-from", "any-message-type", "newer-type"])
def test_a_message_announcing_an_upgrade_names_the_link(update, link):
    assert migration_of({"update_id": 1, **update}) == link


@pytest.mark.parametrize("update", [
    {"message": message(OLD)},
    {"message": message(OLD, migrate_to_chat_id=True)},
    {"message": message(OLD, migrate_to_chat_id=str(NEW))},
    {"message": message(OLD, migrate_to_chat_id=OLD)},
    {"message": message(OLD, migrate_from_chat_id=OLD)},
    {"message": {"chat": {"id": OLD}, "migrate_to_chat_id": NEW}},  # no message_id/date: not a message
    {"my_chat_member": {**message(OLD), "migrate_to_chat_id": NEW}},  # shaped like one, but a known non-message
    {"message": message(chat={"id": "x"}, migrate_to_chat_id=NEW)},
    {"poll": {"id": "p", "migrate_to_chat_id": NEW}},
    # Only a supergroup continues an upgraded group: a link to any other chat would allow it unconfigured.
    {"message": message(OLD, migrate_to_chat_id=-999999999999)},  # one digit short of a supergroup id
    {"message": message(OLD, migrate_to_chat_id=-4002)},  # another basic group
    {"message": message(OLD, migrate_to_chat_id=42)},  # a person
    {"message": message(-4002, "group", migrate_from_chat_id=OLD)},  # the "new" chat is a basic group
    {"message": message(42, "private", migrate_from_chat_id=OLD)},  # ... or a private chat
    {"message": message(NEW, "channel", migrate_from_chat_id=OLD)},  # ... or a channel (ids like a supergroup's)
], ids=["none", "bool", "string", "same-id-to", "same-id-from", "not-a-message", "membership", "bad-chat-id",
        "chat-less", "to-short-id", "to-basic-group", "to-person", "from-into-basic-group", "from-into-private",
        "from-into-channel"])
def test_anything_else_announces_no_upgrade(update):
    assert migration_of({"update_id": 1, **update}) is None


def test_a_link_key_holds_both_ids_and_reads_back():
    link = ChatLink(old=OLD, new=NEW)
    assert link.key == chat_link_key(NEW, OLD)
    assert parse_link_key(link.key) == link


@pytest.mark.parametrize("key", [
    f"{CHAT_LINKS_PREFIX}notes.txt",
    f"{CHAT_LINKS_PREFIX}{NEW}/{OLD}.json.bak",
    f"{CHAT_LINKS_PREFIX}{NEW}/x.json",
    f"{CHAT_LINKS_PREFIX}{NEW}/{OLD}/more.json",
    f"elsewhere/{NEW}/{OLD}.json",
])
def test_a_key_that_names_no_link_reads_as_none(key):
    assert parse_link_key(key) is None


def test_a_link_object_says_from_to_which_update_and_when():
    body = link_record(ChatLink(old=OLD, new=NEW), 42, NOON)
    assert json.loads(body) == {"from": OLD, "to": NEW, "update_id": 42, "when": "2026-05-17T12:00:00.000+00:00"}


# ---- the allowed chats

def test_allowed_chats_follow_links_from_configured_ids_only_and_to_the_end_of_a_chain():
    links = [ChatLink(1, 2), ChatLink(2, 3), ChatLink(3, 1), ChatLink(7, 8)]  # a cycle, and an unrelated link
    assert allowed_through([1], links) == {1: None, 2: ChatLink(1, 2), 3: ChatLink(2, 3)}


class LinkStore:
    def __init__(self, *links: ChatLink) -> None:
        self.links = list(links)
        self.reads = 0

    def read(self) -> list[ChatLink]:
        self.reads += 1
        return list(self.links)


def chat(chat_id: int, chat_type: str = "supergroup") -> Chat:
    return Chat(id=chat_id, type=chat_type, title=None, username=None)


def test_configured_chats_are_allowed_without_reading_the_links():
    store = LinkStore()
    allowlist = Allowlist(frozenset({OLD}), store.read)
    assert allowlist.allows(chat(OLD, "group"))
    assert store.reads == 0


def test_the_links_are_read_at_the_first_decision_outside_the_configuration():
    store = LinkStore(ChatLink(OLD, NEW))
    allowlist = Allowlist(frozenset({OLD}), store.read)
    assert allowlist.allows(chat(NEW))
    assert allowlist.allows(chat(NEW))
    assert store.reads == 1


@pytest.mark.parametrize("chat_type, reads", [("supergroup", 3), ("group", 1), ("private", 1), ("channel", 1)])
def test_only_a_supergroup_that_is_not_allowed_reads_the_links_again(chat_type, reads):
    store = LinkStore()
    allowlist = Allowlist(frozenset({OLD}), store.read)
    for _ in range(3):
        assert not allowlist.allows(chat(NEW, chat_type))
    assert store.reads == reads


def test_a_link_stored_by_another_container_is_seen_by_the_next_supergroup_update():
    store = LinkStore()
    allowlist = Allowlist(frozenset({OLD}), store.read)
    assert not allowlist.allows(chat(NEW))
    store.links.append(ChatLink(OLD, NEW))
    assert allowlist.allows(chat(NEW))


def test_a_link_is_learned_only_from_an_allowed_group_to_a_chat_not_allowed_yet():
    allowlist = Allowlist(frozenset({OLD}), LinkStore().read)
    assert allowlist.should_learn(ChatLink(OLD, NEW))
    assert not allowlist.should_learn(ChatLink(-999, NEW))  # the notice's group is not allowed
    allowlist.learn(ChatLink(OLD, NEW))
    assert allowlist.allows(chat(NEW))
    assert not allowlist.should_learn(ChatLink(OLD, NEW))  # known already
    assert allowlist.should_learn(ChatLink(NEW, -1))  # a chain continues from a learned id


# ---- chats seen

def test_a_container_counts_each_chat_and_day_and_keeps_the_latest_name():
    seen = ChatsSeen("c1")
    seen.observe(DAY, Chat(NEW, "group", "Old name", None), "message", "stored", True, NOON)
    seen.observe(DAY, Chat(NEW, "supergroup", "New name", "lake"), "edited_message", "stored", True,
                 NOON + timedelta(hours=1))
    record = seen.observe(DAY, Chat(NEW, "supergroup", None, None), "message", "skipped", False, NOON)

    assert record.key == chats_seen_key(DAY, NEW, "c1")
    assert json.loads(record.to_json()) == {
        "chat_id": NEW, "day": "2026-05-17", "container_id": "c1", "chat_type": "supergroup",
        "title": "New name", "username": "lake", "updates": {"stored": 2, "skipped": 1},
        "update_types": ["edited_message", "message"], "first_seen": "2026-05-17T12:00:00.000+00:00",
        "last_seen": "2026-05-17T13:00:00.000+00:00", "allowlisted": False,
    }


def observe_at(seen: ChatsSeen, seconds: float, *, allowlisted: bool = False, day: date = DAY) -> ChatDay | None:
    return seen.observe(day, chat(NEW), "message", "stored" if allowlisted else "skipped", allowlisted,
                        NOON + timedelta(seconds=seconds))


def test_a_record_is_due_at_the_chats_first_update_then_once_the_interval_has_passed_since_it_was_written():
    seen = ChatsSeen("c1")
    due = []
    for seconds in (0, 1, 59.999, 60, 61, 119.999, 120):
        record = observe_at(seen, seconds)
        if record is not None:
            due.append((seconds, record.counts["skipped"]))
            seen.written(record, NOON + timedelta(seconds=seconds))
    assert due == [(0, 1), (60, 4), (120, 7)]
    assert RECORD_INTERVAL == timedelta(minutes=1)


def test_a_record_whose_write_failed_stays_due_until_one_succeeds():
    seen = ChatsSeen("c1")
    assert observe_at(seen, 0) is not None  # not written: the write failed
    assert observe_at(seen, 1) is not None
    seen.written(observe_at(seen, 2), NOON + timedelta(seconds=2))
    assert observe_at(seen, 3) is None


def test_a_change_of_allowlisting_is_due_at_once_whatever_the_interval():
    seen = ChatsSeen("c1")
    seen.written(observe_at(seen, 0), NOON)
    changed = observe_at(seen, 5, allowlisted=True)
    assert changed is not None and changed.allowlisted is True
    seen.written(changed, NOON + timedelta(seconds=5))
    assert observe_at(seen, 6, allowlisted=True) is None
    assert observe_at(seen, 7, allowlisted=False) is not None  # and back


def test_an_earlier_instant_than_the_last_write_is_due():
    """Arrival instants come from API Gateway; one before the last write (a skewed clock) must not mute the chat."""
    seen = ChatsSeen("c1")
    seen.written(observe_at(seen, 0), NOON)
    assert observe_at(seen, -1) is not None


def test_each_chat_and_day_is_due_on_its_own():
    seen = ChatsSeen("c1")
    seen.written(observe_at(seen, 0), NOON)
    assert seen.observe(DAY, chat(OLD, "group"), "message", "skipped", False, NOON) is not None
    assert observe_at(seen, 1, day=DAY + timedelta(days=1)) is not None
    assert observe_at(seen, 2) is None


def string_leaves(value: object) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*map(string_leaves, value.values()))
    if isinstance(value, list):
        return set().union(*map(string_leaves, value))
    return set()


PERSON = {"id": 99, "is_bot": False, "first_name": "Ana first name", "last_name": "Silva last name",
          "username": "ana_lake", "language_code": "pt-br"}
PRIVATE_CHAT = {"id": 99, "type": "private", "first_name": "Ana first name", "last_name": "Silva last name",
                "username": "ana_lake"}


@pytest.mark.parametrize("update", [
    {"message": {"message_id": 1, "date": 1779030000, "chat": PRIVATE_CHAT, "from": PERSON,
                 "text": "my private message text"}},
    {"edited_message": {"message_id": 1, "date": 1779030000, "edit_date": 1779030060, "chat": PRIVATE_CHAT,
                        "from": PERSON, "text": "my edited private text"}},
    {"message": {"message_id": 2, "date": 1779030000, "chat": PRIVATE_CHAT, "from": PERSON,
                 "photo": [{"file_id": "file-id-secret", "file_unique_id": "u1", "width": 1, "height": 1}],
                 "caption": "my private photo caption"}},
], ids=["text", "edited-text", "caption"])
def test_a_private_chats_record_holds_no_text_of_the_update(update):
    """A private chat has no title: its record keeps the id, type and public username, never a name the
    person typed or anything the message says."""
    update = {"update_id": 1, **update}
    seen = ChatsSeen("c1")
    record = seen.observe(DAY, chat_of(update), update_type(update), "skipped", False, NOON)

    body = record.to_json().decode()
    assert json.loads(body)["title"] is None
    leaked = {text for text in string_leaves(update) - {"private", "ana_lake"} if text in body}
    assert leaked == set()


def test_a_new_day_starts_new_counts_and_the_day_before_yesterday_is_forgotten():
    seen = ChatsSeen("c1")
    for offset in range(3):
        seen.observe(DAY + timedelta(days=offset), chat(NEW), "message", "stored", True, NOON)
    yesterday = seen.observe(DAY + timedelta(days=1), chat(NEW), "message", "stored", True, NOON)
    first = seen.observe(DAY, chat(NEW), "message", "stored", True, NOON)

    assert yesterday.counts["stored"] == 2  # still in memory
    assert first.counts["stored"] == 1  # forgotten, started again


@pytest.mark.parametrize("outcome", ["failed", "rejected", "duplicate"])
def test_only_answered_outcomes_are_counted(outcome):
    with pytest.raises(ValueError, match=f"not '{outcome}'"):
        ChatsSeen("c1").observe(DAY, chat(NEW), "message", outcome, True, NOON)


def test_a_record_reads_back_as_written():
    record = ChatsSeen("c1").observe(DAY, Chat(NEW, "supergroup", "Lake ☕", "lake"), "message", "stored", True, NOON)
    again = ChatDay.from_json(record.to_json())
    assert again == record
    assert again.key == record.key


def test_a_record_written_before_batching_reads_its_duplicates_as_stored():
    """Before the raw zone was batched a redelivery the conditional write refused counted as `duplicate`; it is an
    accepted update now, so an old record reads the same as a new one would."""
    old = valid_record() | {"updates": {"stored": 3, "duplicate": 2, "skipped": 1}}
    assert ChatDay.from_json(json.dumps(old).encode()).counts == {"stored": 5, "skipped": 1}


def valid_record() -> dict:
    return json.loads(ChatsSeen("c1").observe(DAY, chat(NEW), "message", "stored", True, NOON).to_json())


@pytest.mark.parametrize("change, message", [
    ({"chat_id": "x"}, "`chat_id` must be an integer"),
    ({"chat_id": True}, "`chat_id` must be an integer"),
    ({"day": "20260517"}, "`day` must be a date YYYY-MM-DD"),
    ({"container_id": ""}, "`container_id` must be a non-empty string"),
    ({"title": 5}, "`title` must be a string or null"),
    ({"updates": {"stored": 1}}, "`updates` must count exactly"),
    ({"updates": {"stored": -1, "duplicate": 0, "skipped": 0}}, "`updates` must count exactly"),
    ({"updates": {"stored": 1, "skipped": 0, "failed": 0}}, "`updates` must count exactly stored, skipped "
                                                             r"\(or stored, duplicate, skipped\)"),
    ({"updates": {"stored": True, "skipped": 0}}, "`updates` must count exactly"),
    ({"update_types": "message"}, "`update_types` must be a list"),
    ({"allowlisted": "yes"}, "`allowlisted` must be true or false"),
    ({"first_seen": "2026-05-17T12:00:00"}, "`first_seen` must be an ISO time with its UTC offset"),
    ({"last_seen": None}, "`last_seen` must be an ISO time with its UTC offset"),
])
def test_a_bad_record_is_a_value_error_naming_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        ChatDay.from_json(json.dumps(valid_record() | change).encode())


@pytest.mark.parametrize("body, message", [(b"{", "not JSON"), (b"[]", "not a JSON object")])
def test_a_record_that_is_not_a_json_object_is_a_value_error(body, message):
    with pytest.raises(ValueError, match=message):
        ChatDay.from_json(body)

"""Which chats the ingest stores, which it has seen, and how an allowlisted group keeps its place when it
changes id: the rules and the formats, free of AWS (the handler does the S3 calls, `tools chats` reads back).

Two kinds of state live in the raw bucket outside `telegram/` (layout.STATE_PREFIX):

- chat links, `chat-links/<new>/<old>.json`: when an allowlisted basic group becomes a supergroup, Telegram
  continues it under a new id. The link makes the new id allowed, for every container and across cold
  starts. Both ids are in the key, so one listing reads every link without a GET.
- chats seen, `chats-seen/<day>/<chat>/<container>.json`: per arrival day, chat and ingest container, that
  container's counts and the chat's name and type (never message content), so an operator can find the id of
  a group that writes but is not allowlisted. A container writes a chat's record at once for the chat's first
  update of the day and whenever its allowlisting changes, otherwise at most once a minute
  (RECORD_INTERVAL): S3 PUTs grow with time, not with updates, and the counts may miss the last minute of a
  container that stops.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping

from lambdas.common.layout import CHAT_LINKS_PREFIX, chat_link_key, chats_seen_key
from lambdas.common.updates import carries_message, is_message, update_chat, update_payload

# The only chat type a basic group can be upgraded into: an unknown chat of this type may be a new link.
SUPERGROUP = "supergroup"
# A Bot API supergroup (or channel) id is -100 followed by the chat's own digits: -1001234567890.
SUPERGROUP_ID_CEILING = -1_000_000_000_000
# Chats that are not one person: a skipped update from one of them likely means a missing allowlist entry.
GROUP_TYPES = frozenset({"group", SUPERGROUP, "channel"})
# What a chats-seen record counts: the outcomes of updates that were answered 200.
COUNTED_OUTCOMES = ("stored", "skipped")
# Records written before the raw zone was batched also counted `duplicate` (a redelivery the conditional write
# refused): read as stored, which is what a redelivery is now.
LEGACY_OUTCOMES = ("stored", "duplicate", "skipped")
# How often a container writes a chat's record at most (besides the writes that cannot wait, see ChatsSeen).
RECORD_INTERVAL = timedelta(minutes=1)
_INSTANT = "an ISO time with its UTC offset"
# JSON can escape a lone UTF-16 surrogate ("\ud800"), which no UTF-8 text (a record, a log line) can hold.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_LINK_KEY = re.compile(rf"{re.escape(CHAT_LINKS_PREFIX)}(-?\d+)/(-?\d+)\.json")


@dataclass(frozen=True)
class Chat:
    """What the ingest may keep of an update's chat: its id, type and public name, never content."""

    id: int
    type: str | None
    title: str | None
    username: str | None

    @property
    def is_group(self) -> bool:
        return self.type in GROUP_TYPES


def chat_of(update: Mapping[str, Any]) -> Chat | None:
    """The chat of any update type (see lambdas.common.updates.update_chat); None for chat-less updates."""
    chat = update_chat(update)
    if chat is None:
        return None
    return Chat(id=chat["id"], type=_text(chat.get("type")), title=_text(chat.get("title")),
                username=_text(chat.get("username")))


def _text(value: Any) -> str | None:
    return valid_text(value) if isinstance(value, str) else None


def valid_text(text: str) -> str:
    """`text` as valid UTF-8: each lone surrogate becomes U+FFFD, the replacement character."""
    return _LONE_SURROGATE.sub("\ufffd", text)


@dataclass(frozen=True)
class ChatLink:
    """`new` continues the group `old` (a basic group upgraded to a supergroup)."""

    old: int
    new: int

    @property
    def key(self) -> str:
        return chat_link_key(self.new, self.old)


def migration_of(update: Mapping[str, Any]) -> ChatLink | None:
    """The upgrade a message announces: in the old chat it carries `migrate_to_chat_id`, in the new one
    `migrate_from_chat_id`. Any update whose payload is a Message counts, a type newer than this code too;
    None otherwise. A group is only ever upgraded into a supergroup, so a link to any other id (or from a
    chat that is not a supergroup) is no upgrade: it would allow a chat nobody configured."""
    payload = update_payload(update)
    if not (carries_message(update) and is_message(payload)):
        return None
    chat = payload["chat"]
    chat_id = chat.get("id")
    if not _is_chat_id(chat_id):
        return None
    target, source = payload.get("migrate_to_chat_id"), payload.get("migrate_from_chat_id")
    if _is_supergroup_id(target) and target != chat_id:
        return ChatLink(old=chat_id, new=target)
    if _is_chat_id(source) and source != chat_id and _is_supergroup_id(chat_id) and chat.get("type") == SUPERGROUP:
        return ChatLink(old=source, new=chat_id)
    return None


def _is_chat_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_supergroup_id(value: Any) -> bool:
    return _is_chat_id(value) and value <= SUPERGROUP_ID_CEILING


def parse_link_key(key: str) -> ChatLink | None:
    """The link a listed key records; None for a key the ingest did not write."""
    match = _LINK_KEY.fullmatch(key)
    return None if match is None else ChatLink(old=int(match[2]), new=int(match[1]))


def link_record(link: ChatLink, update_id: int, now: datetime) -> bytes:
    """The link object's body, for people reading the bucket (the ingest itself reads only keys)."""
    return _json({"from": link.old, "to": link.new, "update_id": update_id, "when": _utc(now)})


def allowed_through(configured: Iterable[int], links: Iterable[ChatLink]) -> dict[int, ChatLink | None]:
    """Every allowed chat, with the link it is allowed through (None when configured): the configured ids
    and every id reachable from them along links, so a chain of upgrades is followed to its end."""
    successors: dict[int, list[ChatLink]] = {}
    for link in links:
        successors.setdefault(link.old, []).append(link)
    allowed: dict[int, ChatLink | None] = dict.fromkeys(configured)
    queue = deque(allowed)
    while queue:
        for link in successors.get(queue.popleft(), ()):
            if link.new not in allowed:
                allowed[link.new] = link
                queue.append(link.new)
    return allowed


class Allowlist:
    """ALLOWED_CHAT_IDS plus the groups they became, as one container knows them.

    The links (`read_links`: every link stored under CHAT_LINKS_PREFIX) are read the first time a chat
    outside ALLOWED_CHAT_IDS needs a decision, and again for every supergroup not allowed yet: only a
    supergroup can be an upgrade's target, and another container may have just learned it, so a "no" is
    never cached for one. Chats in ALLOWED_CHAT_IDS never wait for S3.
    """

    def __init__(self, configured: frozenset[int], read_links: Callable[[], Iterable[ChatLink]]):
        self.configured = configured
        self._read_links = read_links
        self._links: set[ChatLink] | None = None
        self._allowed: frozenset[int] = configured

    def allows(self, chat: Chat) -> bool:
        """Whether the chat's updates are stored; may read the links (see the class)."""
        if chat.id in self.configured:
            return True
        if self._links is None or (chat.id not in self._allowed and chat.type == SUPERGROUP):
            self._reload()
        return chat.id in self._allowed

    def should_learn(self, link: ChatLink) -> bool:
        """Only a link from an allowed group to a chat not allowed yet is learned: a notice from any other
        chat adds nothing."""
        if self._links is None:
            self._reload()
        return link.old in self._allowed and link.new not in self._allowed

    def learn(self, link: ChatLink) -> None:
        """Add a link this container has just stored (after `should_learn` said so)."""
        self._links.add(link)
        self._allowed = frozenset(allowed_through(self.configured, self._links))

    def _reload(self) -> None:
        self._links = set(self._read_links())
        self._allowed = frozenset(allowed_through(self.configured, self._links))


@dataclass
class ChatDay:
    """One container's record of one chat on one arrival day: cumulative counts, never content."""

    chat_id: int
    day: date
    container_id: str
    chat_type: str | None
    title: str | None
    username: str | None
    first_seen: datetime
    last_seen: datetime
    allowlisted: bool
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTED_OUTCOMES, 0))
    update_types: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        return chats_seen_key(self.day, self.chat_id, self.container_id)

    def to_json(self) -> bytes:
        return _json({
            "chat_id": self.chat_id, "day": self.day.isoformat(), "container_id": self.container_id,
            "chat_type": self.chat_type, "title": self.title, "username": self.username,
            "updates": self.counts, "update_types": sorted(self.update_types),
            "first_seen": _utc(self.first_seen), "last_seen": _utc(self.last_seen),
            "allowlisted": self.allowlisted,
        })

    @classmethod
    def from_json(cls, body: bytes) -> ChatDay:
        """Read a record back (for `tools chats`); ValueError naming what is wrong."""
        try:
            data = json.loads(body)
        except ValueError as error:
            raise ValueError(f"not JSON ({error})") from None
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        counts = _counts(data.get("updates"))
        types = data.get("update_types")
        if not (isinstance(types, list) and all(isinstance(name, str) for name in types)):
            raise ValueError("`update_types` must be a list of names")
        if not isinstance(data.get("allowlisted"), bool):
            raise ValueError("`allowlisted` must be true or false")
        return cls(
            chat_id=_required_int(data, "chat_id"),
            day=_parsed(data, "day", _iso_day, "a date YYYY-MM-DD"),
            container_id=_required_text(data, "container_id"),
            chat_type=_optional_text(data, "chat_type"),
            title=_optional_text(data, "title"),
            username=_optional_text(data, "username"),
            first_seen=_parsed(data, "first_seen", _aware_instant, _INSTANT),
            last_seen=_parsed(data, "last_seen", _aware_instant, _INSTANT),
            allowlisted=data["allowlisted"],
            counts=counts,
            update_types=set(types),
        )


def _counts(value: Any) -> dict[str, int]:
    """A record's `updates`, of today's format or the one before batching (its duplicates read as stored)."""
    if not (isinstance(value, dict) and set(value) in ({*COUNTED_OUTCOMES}, {*LEGACY_OUTCOMES})
            and all(_is_count(count) for count in value.values())):
        raise ValueError(
            f"`updates` must count exactly {', '.join(COUNTED_OUTCOMES)} (or {', '.join(LEGACY_OUTCOMES)})"
        )
    return {"stored": value["stored"] + value.get("duplicate", 0), "skipped": value["skipped"]}


class ChatsSeen:
    """What this container saw of each chat per arrival day: `observe` counts an update and says whether the
    chat's record is due, `written` notes that it was written.

    Each container writes only its own keys (its container id is in them) and always its whole cumulative
    record, so no write is ever lost to another container's, and a failed write stays due until one succeeds.
    A record is due at a chat's first update of the day, when its allowlisting differs from what was last
    written (what `tools chats` and `tools doctor` judge is never a minute late), and once RECORD_INTERVAL has
    passed since its last write. Only the newest day and the one before it stay in memory.
    """

    def __init__(self, container_id: str):
        self.container_id = container_id
        self._days: dict[tuple[date, int], ChatDay] = {}
        self._written: dict[tuple[date, int], tuple[datetime, bool]] = {}  # when, and the allowlisting written

    def observe(
        self, day: date, chat: Chat, update_type: str, outcome: str, allowlisted: bool, now: datetime
    ) -> ChatDay | None:
        """Count the update; the chat's record when it is due (write it, then call `written`), else None."""
        if outcome not in COUNTED_OUTCOMES:
            raise ValueError(f"only answered updates are counted, not {outcome!r}")
        self._forget_before(day - timedelta(days=1))
        record = self._days.get((day, chat.id))
        if record is None:
            record = self._days[(day, chat.id)] = ChatDay(
                chat_id=chat.id, day=day, container_id=self.container_id, chat_type=chat.type,
                title=chat.title, username=chat.username, first_seen=now, last_seen=now, allowlisted=allowlisted,
            )
        record.counts[outcome] += 1
        record.update_types.add(update_type)
        record.chat_type = chat.type or record.chat_type
        record.title = chat.title or record.title
        record.username = chat.username or record.username
        record.first_seen, record.last_seen = min(record.first_seen, now), max(record.last_seen, now)
        record.allowlisted = allowlisted
        return record if self._due(record, now) else None

    def written(self, record: ChatDay, now: datetime) -> None:
        """The record, as it is now, was stored at `now`."""
        self._written[(record.day, record.chat_id)] = (now, record.allowlisted)

    def _due(self, record: ChatDay, now: datetime) -> bool:
        last = self._written.get((record.day, record.chat_id))
        if last is None:
            return True
        written_at, allowlisted = last
        return allowlisted != record.allowlisted or not written_at <= now < written_at + RECORD_INTERVAL

    def _forget_before(self, oldest: date) -> None:
        for stale in [key for key in self._days if key[0] < oldest]:
            del self._days[stale]
            self._written.pop(stale, None)


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _utc(instant: datetime) -> str:
    return instant.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _required_int(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if not _is_chat_id(value):
        raise ValueError(f"`{name}` must be an integer")
    return value


def _required_text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"`{name}` must be a non-empty string")
    return value


def _optional_text(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"`{name}` must be a string or null")
    return value


def _parsed(data: Mapping[str, Any], name: str, parse: Callable[[str], Any], expected: str) -> Any:
    value = data.get(name)
    try:
        return parse(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be {expected}, got {value!r}") from None


def _iso_day(text: str) -> date:
    if not isinstance(text, str) or len(text) != 10:
        raise ValueError(text)
    return date.fromisoformat(text)


def _aware_instant(text: str) -> datetime:
    instant = datetime.fromisoformat(text)
    if instant.tzinfo is None:
        raise ValueError(text)
    return instant

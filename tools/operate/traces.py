"""What of the lake holds a person (or a chat), and what is left of it once they are erased (pure, no AWS).

`tools erase` (tools/operate/erase.py) reads every stored object and asks this module what to do with it:

- **An update that is theirs goes whole**: any update whose sender or subject they are (a message `from` them, a
  reaction, poll answer, callback or inline query by them, a `chat_member` change of their membership, a join
  request), and every update of their private chat with the bot (its id is theirs). For a chat: every update in it.
- **Another person's update keeps that person's message, without them in it**: where it embeds them, the embedding
  is scrubbed. A message of theirs that it replies to (`reply_to_message`), pins or carries is cut to its id, date
  and chat (the enriched table reads only the id); the `quote` of their words and an `external_reply` naming them
  go; every User or Chat object naming them (a forward's origin, `new_chat_members`, `left_chat_member`, a
  `text_mention`, a shared contact or user) becomes Telegram's own "Deleted Account", id 0; any other id field
  holding their id becomes 0. Nothing the enriched table reads of the other person's message changes.
- **What stays**: other people's texts that quote or name them (`@username` typed in a message), a forward from an
  account that hides its id (only a chosen name to go by), and copies outside the lake.

A line that is no JSON (a rejected line) holding their id goes too. Rows of the compacted tables are theirs when
`user_id` or `chat_id` is their id (the pseudonymized table: their pseudonym).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Mapping

from lambdas.common.updates import is_message, update_chat_id, update_payload, update_type

# What Telegram itself shows for an account that is gone, and for a chat that is.
ERASED_NAME = "Deleted Account"
ERASED_CHAT_TITLE = "Deleted chat"
# The id left where theirs was: no Telegram user or chat has it.
ERASED_ID = 0
# Fields ending in `id` that hold no user or chat id, so an equal number there is not theirs.
NOT_PARTY_IDS = frozenset({"message_id", "update_id", "message_thread_id", "media_group_id", "boost_id"})
# Where a payload names the one who acted, or whom it is about (paths of keys from the payload).
ACTOR_PATHS = (
    ("from",), ("user",), ("new_chat_member", "user"), ("old_chat_member", "user"), ("boost", "source", "user"),
    ("source", "user"), ("voter_chat",), ("actor_chat",),
)
# Keys of the objects that are a User or a Chat (beside an integer `id`).
_PARTY_KEYS = frozenset({"is_bot", "first_name", "last_name", "username", "type", "title"})
_NAME_KEYS = ("first_name", "last_name", "username", "title")

SubjectKind = Literal["user", "chat"]


@dataclass(frozen=True)
class Subject:
    """Whom an erasure is about: a Telegram user, or a whole chat."""

    kind: SubjectKind
    id: int

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int) or self.id == ERASED_ID:
            raise ValueError(f"a Telegram {self.kind} id is a non-zero integer, got {self.id!r}")

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"

    @property
    def token(self) -> re.Pattern[str]:
        """Their id as written in JSON, CSV or a key: its digits, not inside a longer number."""
        return re.compile(rf"(?<![0-9]){abs(self.id)}(?![0-9])")

    def may_hold(self, text: str) -> bool:
        """Whether `text` can hold their id at all (every update naming them does): the cheap test first."""
        return self.token.search(text) is not None

    def owns(self, update: Mapping[str, Any]) -> bool:
        """Whether the whole update is theirs (see the module's docstring)."""
        if update_chat_id(update) == self.id:
            return True
        if self.kind == "chat":
            return False
        payload = update_payload(update)
        if not isinstance(payload, Mapping):
            return False
        return payload.get("user_chat_id") == self.id or any(
            self._names(_at(payload, path)) for path in ACTOR_PATHS
        )

    def authored(self, message: Mapping[str, Any]) -> bool:
        """A message that is theirs: sent by them or in their private chat (a chat's: sent in it, or as it)."""
        if self._names(message.get("chat")):
            return True
        sender = message.get("sender_chat") if self.kind == "chat" else message.get("from")
        return self._names(sender)

    def scrubbed(self, update: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Another person's update without them in it, and whether anything changed (see the module's docstring)."""
        scrub = _Scrub(self)
        return scrub.update(update), scrub.changed

    def traces(self, update: Mapping[str, Any]) -> Traces:
        """Their names and texts in an update: what else may hold them (Athena's query results)."""
        found = Traces()
        self._collect(update, found)
        return found

    def _collect(self, value: Any, found: Traces) -> None:
        if isinstance(value, Mapping):
            if self._is_party(value):
                found.names.update(name for key in _NAME_KEYS if isinstance(name := value.get(key), str))
            if is_message(value) and self.authored(value):
                found.texts.update(text for key in ("text", "caption") if isinstance(text := value.get(key), str))
            quote = value.get("quote")
            if isinstance(quote, Mapping) and self._replies_to_them(value):
                found.texts.update([quote["text"]] if isinstance(quote.get("text"), str) else [])
            for item in value.values():
                self._collect(item, found)
        elif isinstance(value, list):
            for item in value:
                self._collect(item, found)

    def _names(self, value: Any) -> bool:
        return isinstance(value, Mapping) and _is_int(value.get("id")) and value["id"] == self.id

    def _is_party(self, value: Mapping[str, Any]) -> bool:
        """A User or Chat object that is them (or a shared user or contact of theirs, by `user_id`)."""
        if self.kind == "user" and _is_int(value.get("user_id")) and value["user_id"] == self.id:
            return True
        return self._names(value) and (bool(_PARTY_KEYS & value.keys()) or len(value) == 1)

    def _replies_to_them(self, message: Mapping[str, Any]) -> bool:
        replied = message.get("reply_to_message")
        return (isinstance(replied, Mapping) and self.authored(replied)) or _holds(self, message.get("external_reply"))


@dataclass
class Traces:
    """Their names and texts, as found."""

    names: set[str] = field(default_factory=set)
    texts: set[str] = field(default_factory=set)

    def update(self, other: Traces) -> None:
        self.names |= other.names
        self.texts |= other.texts


class _Scrub:
    """One pass over another person's update: their own message (the update's payload) is never cut, only what
    it embeds of the subject."""

    def __init__(self, subject: Subject):
        self.subject = subject
        self.changed = False

    def update(self, update: Mapping[str, Any]) -> dict[str, Any]:
        kind = update_type(update)
        return {
            name: self.members(item) if name == kind and isinstance(item, Mapping) else self.value(item, name)
            for name, item in update.items()
        }

    def value(self, value: Any, key: str | None = None) -> Any:
        subject = self.subject
        if isinstance(value, Mapping):
            if subject._is_party(value):
                return self._replaced(_placeholder(value))
            if is_message(value) and subject.authored(value):
                stub = {"message_id": value["message_id"], "date": value["date"]}
                return self._replaced({**stub, "chat": self.value(value["chat"], "chat")})
            return self.members(value)
        if isinstance(value, list):
            return [self.value(item, key) for item in value]
        if _is_int(value) and value == subject.id and key is not None and key.endswith("id") and key not in NOT_PARTY_IDS:
            return self._replaced(ERASED_ID)
        return value

    def members(self, value: Mapping[str, Any]) -> dict[str, Any]:
        """An object's members scrubbed; a reply to them loses the `quote` of their words and an `external_reply`
        naming them."""
        kept = dict(value)
        if self.subject._replies_to_them(value):
            for gone in ("quote", "external_reply"):
                if gone in kept and (gone == "quote" or _holds(self.subject, kept[gone])):
                    del kept[gone]
                    self.changed = True
        return {name: self.value(item, name) for name, item in kept.items()}

    def _replaced(self, value: Any) -> Any:
        self.changed = True
        return value


def _placeholder(party: Mapping[str, Any]) -> dict[str, Any]:
    """What stands where a User or Chat object of theirs was: Telegram's deleted account, or a deleted chat."""
    if "user_id" in party and "id" not in party:
        return {"user_id": ERASED_ID}
    if "type" in party and party["type"] != "private":
        return {"id": ERASED_ID, "type": party["type"], "title": ERASED_CHAT_TITLE}
    erased: dict[str, Any] = {"id": ERASED_ID, "first_name": ERASED_NAME}
    if "type" in party:
        erased["type"] = "private"
    if isinstance(party.get("is_bot"), bool):  # a count of people stays a count of people
        erased["is_bot"] = party["is_bot"]
    return erased


def _holds(subject: Subject, value: Any) -> bool:
    """Whether a JSON value names them anywhere."""
    if isinstance(value, Mapping):
        return subject._is_party(value) or any(_holds(subject, item) for item in value.values())
    if isinstance(value, list):
        return any(_holds(subject, item) for item in value)
    return False


def _at(value: Any, path: Iterable[str]) -> Any:
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def compact_json(value: Any) -> bytes:
    """JSON as Telegram sends it (compact, UTF-8), a lone surrogate kept as its escape; ValueError for a number
    JSON cannot write (a value past a double that Python read as infinity)."""
    from tools.local.stack import telegram_json

    json.dumps(value, allow_nan=False)  # refuses infinity and NaN before anything is written
    return telegram_json(value)

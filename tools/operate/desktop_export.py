"""Telegram Desktop's machine-readable export (`result.json`), read as what the webhook would have stored.

Reading (`read_export`): the file is parsed incrementally, a message at a time, so a multi-GB export needs no
more memory than its largest single value: the reader walks the document's structure itself and decodes each
message (and each other value, skipped) with the standard library's `JSONDecoder.raw_decode`. It yields an
`ExportedChat` before each chat's messages, for both layouts: one chat ("Export chat history": `name`, `type`,
`id`, `messages`) and the all-chats export (`chats.list`, `left_chats.list`). Fields it does not know are skipped.
Telegram Desktop writes a control character in a text as `\\xHH`, which is no JSON escape: it is read as that
character. Bad input raises `ExportError`, one line: not UTF-8, not JSON, not an export, a truncated file.

Converting (`message_updates`): each exported message becomes the Bot API update the webhook would have stored
for it (a `message`, or a `channel_post` in a channel), with the chat's Bot API id and type, `date` from
`date_unixtime`, the sender (`from`, or `sender_chat` with the fake sender user the Bot API adds), text and
entities rebuilt from `text_entities` (offsets in UTF-16 code units), the reply's message id, the forward's
origin, `edit_date`, the media kind without the file, and service actions as the Bot API's service fields
(joins and leaves among them); a message's reactions become a `message_reaction_count` update. What the export
does not hold stays out: files, usernames and language codes, the original text of an edited message, whether
a sender is a bot (every sender is a person, `is_bot` false), topics. `MIGRATED_ID_SHIFT` is Telegram
Desktop's own: a supergroup's export holds the basic group it was upgraded from with each message id shifted by
it, and an export of that basic group imported under its supergroup is shifted the same way.

Each update has an id no Telegram update has: negative, and the same for the same chat, message and kind on
every run (`imported_update_id`), ordered as the messages within a chat.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterator, Mapping

# The Bot API's fake senders of messages sent on behalf of a chat in a group (its `from`, beside `sender_chat`).
ANONYMOUS_ADMIN = {"id": 1087968824, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"}
FAKE_CHANNEL = {"id": 136817688, "is_bot": True, "first_name": "Channel", "username": "Channel_Bot"}
DELETED_ACCOUNT = "Deleted Account"  # how Telegram names a sender whose account is gone (the export writes null)
# Telegram Desktop's shift of the message ids of a basic group's history inside its supergroup's export.
MIGRATED_ID_SHIFT = -1_000_000_000
# The message ids an import can number: a supergroup's own (positive, 31 bits) and shifted basic-group ones.
MIN_MESSAGE_ID, MAX_MESSAGE_ID = -(1 << 30), (1 << 31) - 1
# Imported update ids: below every Telegram update id (non-negative) and ordered by message within a chat.
_IMPORTED_BASE = -(1 << 62)
_CHAT_BITS = 27
MESSAGE_KIND, REACTIONS_KIND = 0, 1

# The export's chat types, as the Bot API's chat type and how its id becomes the Bot API's.
GROUP_TYPES = {"private_group": "group"}
SUPERGROUP_TYPES = {"private_supergroup": "supergroup", "public_supergroup": "supergroup"}
CHANNEL_TYPES = {"private_channel": "channel", "public_channel": "channel"}
PRIVATE_TYPES = {"personal_chat": "private", "bot_chat": "private"}
SUPERGROUP_PREFIX = -1_000_000_000_000  # a Bot API supergroup or channel id: -100 followed by the chat's digits

# Text part types of the export -> the Bot API's MessageEntity types (the export's others carry no entity).
ENTITY_TYPES = {
    "mention": "mention", "hashtag": "hashtag", "cashtag": "cashtag", "bot_command": "bot_command", "link": "url",
    "email": "email", "phone": "phone_number", "bold": "bold", "italic": "italic", "underline": "underline",
    "strikethrough": "strikethrough", "spoiler": "spoiler", "blockquote": "blockquote", "code": "code",
    "pre": "pre", "text_link": "text_link", "mention_name": "text_mention", "custom_emoji": "custom_emoji",
}
# Media whose text the Bot API sends as `caption` (with `caption_entities`).
CAPTIONED = ("animation", "audio", "document", "photo", "video", "voice")
# The export's `media_type` of a file -> the Bot API's field.
MEDIA_TYPES = {
    "sticker": "sticker", "video_message": "video_note", "voice_message": "voice", "animation": "animation",
    "video_file": "video", "audio_file": "audio",
}
FILE_FIELDS = {"duration_seconds": "duration", "width": "width", "height": "height", "file_name": "file_name",
                "mime_type": "mime_type", "file_size": "file_size", "performer": "performer", "title": "title"}

_CHUNK = 1 << 18
# A single value (a message, or a field skipped) larger than this is no export's.
MAX_VALUE_CHARACTERS = 64 << 20
_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"
# Telegram Desktop's `\xHH` for a control character, outside a `\\` escape: the JSON escape `\u00HH`.
_DESKTOP_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\x([0-9A-Fa-f]{2})")
_PEER_ID = re.compile(r"(user|channel|chat)([0-9]{1,19})")
_UNIX_TIME = re.compile(r"[0-9]{1,12}")


class ExportError(ValueError):
    """The file is not a Telegram Desktop export this command can read; the message says why, in one line."""


@dataclass(frozen=True)
class ExportedChat:
    """A chat's header in the export: its id as the export writes it, its type and name."""

    export_id: int
    type: str
    name: str | None


@dataclass(frozen=True)
class TargetChat:
    """Where a chat's messages import: the Bot API chat they belong to, and what the export's ids mean there."""

    id: int  # the Bot API id the updates carry
    type: str  # the Bot API chat type: group, supergroup, channel, private
    title: str | None
    own_id: int  # the export's chat as the Bot API names it: a message from it as a sender is the chat itself
    message_id_shift: int = 0  # MIGRATED_ID_SHIFT when a basic group's export imports under its supergroup

    @property
    def chat(self) -> dict[str, Any]:
        if self.type == "private":
            return {"id": self.id, "type": self.type, "first_name": self.title or DELETED_ACCOUNT}
        chat: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.title is not None:
            chat["title"] = self.title
        return chat


def bot_api_chat(exported: ExportedChat) -> tuple[int, str] | None:
    """The Bot API's id and type of an exported chat (supergroups and channels -100..., basic groups -id, a
    private chat the person's id); None for a kind of chat no bot is in (saved messages, replies, ...)."""
    for types, bot_api_id in (
        (SUPERGROUP_TYPES, SUPERGROUP_PREFIX - exported.export_id),
        (CHANNEL_TYPES, SUPERGROUP_PREFIX - exported.export_id),
        (GROUP_TYPES, -exported.export_id),
        (PRIVATE_TYPES, exported.export_id),
    ):
        if exported.type in types:
            return bot_api_id, types[exported.type]
    return None


def imported_update_id(chat_id: int, message_id: int, kind: int) -> int:
    """The update id of a message's update of `kind` (MESSAGE_KIND, REACTIONS_KIND): negative (Telegram's are
    not), the same on every run, and increasing with the message id within a chat. The chat's part is a 27-bit
    hash of its id (`chat_hash`: the importer refuses two chats of a stage that share one)."""
    if not MIN_MESSAGE_ID <= message_id <= MAX_MESSAGE_ID:
        raise ValueError(f"message id {message_id} is outside {MIN_MESSAGE_ID} .. {MAX_MESSAGE_ID}")
    return _IMPORTED_BASE + (chat_hash(chat_id) << 34) + ((message_id - MIN_MESSAGE_ID) << 2) + kind


def chat_hash(chat_id: int) -> int:
    return int.from_bytes(hashlib.sha256(str(chat_id).encode()).digest()[:4], "big") >> (32 - _CHAT_BITS)


# ---- reading


class _Source:
    """A JSON document read a piece at a time: whitespace, structure characters and whole values."""

    def __init__(self, stream: BinaryIO, progress: Callable[[int], None]):
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
        self._progress = progress
        self._text = ""
        self._pos = 0
        self._before = 0  # characters read before _text[0], for positions in messages
        self._bytes = 0
        self._eof = False

    def _more(self) -> bool:
        """Read the next piece; False at the end of the file."""
        if self._eof:
            return False
        chunk = self._stream.read(_CHUNK)
        try:
            text = self._decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as error:
            if not chunk:  # the file ends inside a character
                raise ExportError("truncated: the file ends inside a character") from None
            raise ExportError(f"not UTF-8 text: {error.reason} near byte {self._bytes + error.start}") from None
        self._bytes += len(chunk)
        self._progress(len(chunk))
        self._eof = not chunk
        self._before += self._pos
        self._text = self._text[self._pos:] + text
        self._pos = 0
        return True

    def peek(self) -> str:
        """The next character that is not whitespace ('' at the end of the file), left unread."""
        while True:
            while self._pos < len(self._text) and self._text[self._pos] in _WHITESPACE:
                self._pos += 1
            if self._pos < len(self._text):
                return self._text[self._pos]
            if not self._more():
                return ""

    def take(self, expected: str, where: str) -> None:
        found = self.peek()
        if found != expected:
            self.fail(repr(expected), where, found)
        self._pos += 1

    def fail(self, expected: str, where: str, found: str) -> None:
        if not found:
            raise ExportError(f"truncated: the file ends inside {where}")
        raise ExportError(
            f"not JSON: expected {expected} in {where}, found {found!r} at character {self._before + self._pos}"
        )

    def value(self, where: str) -> Any:
        """The next whole value (read in more pieces while it is incomplete)."""
        if not self.peek():
            raise ExportError(f"truncated: the file ends inside {where}")
        last_problem = None
        while True:
            try:
                value, end = _DECODER.raw_decode(self._text, self._pos)
            except json.JSONDecodeError as error:
                if error.msg.startswith("Invalid \\escape") and self._repair_escapes():
                    continue
                problem = (error.msg, error.pos)
                # A failure at the same place after reading on is the document's own (an unterminated string moves
                # on only when read to its end).
                genuine = last_problem == problem and not error.msg.startswith("Unterminated string")
                if genuine or not self._grow(where):
                    if self._eof and self._ends_inside(error):
                        raise ExportError(f"truncated: the file ends inside {where}") from None
                    raise ExportError(
                        f"not JSON: {error.msg} in {where}, at character {self._before + error.pos}"
                    ) from None
                last_problem = problem
                continue
            if end == len(self._text) and self._grow(where):
                continue  # a number or word at the end of the piece may go on in the next one
            self._pos = end
            return value

    def _ends_inside(self, error: json.JSONDecodeError) -> bool:
        """Whether a value fails only because the file ends: in a string, or where more was due (a word or a
        number begun, a delimiter, a value, a key)."""
        rest = self._text[error.pos:].rstrip()
        return error.msg.startswith("Unterminated string") or not rest or any(
            word.startswith(rest) for word in ("true", "false", "null", "-")
        )

    def _grow(self, where: str) -> bool:
        if len(self._text) - self._pos > MAX_VALUE_CHARACTERS:
            raise ExportError(
                f"not an export: a value larger than {MAX_VALUE_CHARACTERS >> 20} Mi characters in {where}"
            )
        return self._more()

    def _repair_escapes(self) -> bool:
        """Telegram Desktop's `\\xHH` escapes in the unread text as JSON's; False when there is none."""
        repaired = _DESKTOP_ESCAPE.sub(r"\1\\u00\2", self._text[self._pos:])
        if repaired == self._text[self._pos:]:
            return False
        self._text = self._text[:self._pos] + repaired
        return True

    def members(self, where: str) -> Iterator[str]:
        """An object's keys, one at a time: the caller reads (or skips) each key's value before the next."""
        self.take("{", where)
        if self.peek() == "}":
            self._pos += 1
            return
        while True:
            key = self.value(where)
            if not isinstance(key, str):
                raise ExportError(f"not JSON: an object key that is not a string in {where}")
            self.take(":", where)
            yield key
            found = self.peek()
            if found not in (",", "}"):
                self.fail("',' or '}'", where, found)
            self._pos += 1
            if found == "}":
                return

    def elements(self, where: str) -> Iterator[int]:
        """An array's elements, by index: the caller reads each element before the next."""
        self.take("[", where)
        if self.peek() == "]":
            self._pos += 1
            return
        index = 0
        while True:
            yield index
            index += 1
            found = self.peek()
            if found not in (",", "]"):
                self.fail("',' or ']'", where, found)
            self._pos += 1
            if found == "]":
                return

    def end(self) -> None:
        found = self.peek()
        if found:
            self.fail("the end of the file", "the export", found)


def read_export(
    stream: BinaryIO, progress: Callable[[int], None] = lambda read: None
) -> Iterator[ExportedChat | dict[str, Any]]:
    """Each chat's header, then its messages, in file order; `progress` gets the bytes read as they are read."""
    source = _Source(stream, progress)
    if source.peek() != "{":
        if not source.peek():
            raise ExportError("not an export: the file is empty")
        raise ExportError("not an export: a Telegram Desktop export is a JSON object (its result.json)")
    header: dict[str, Any] = {}
    chats = 0
    for key in source.members("the export"):
        if key == "messages":
            chats += 1
            yield _chat_header(header, "the export")
            yield from _messages(source, "the export's messages")
        elif key in ("chats", "left_chats"):
            for list_key in source.members(f"`{key}`"):
                if list_key != "list":
                    source.value(f"`{key}.{list_key}`")
                    continue
                for index in source.elements(f"`{key}.list`"):
                    chats += 1
                    yield from _listed_chat(source, f"chat {index + 1} of `{key}.list`")
        elif key in ("name", "type", "id"):
            header[key] = source.value(f"the export's `{key}`")
        else:
            source.value(f"the export's `{key}`")
    source.end()
    if not chats:
        raise ExportError(
            "not an export: no `messages` and no `chats.list` (export a chat's history, or all chats, as "
            "machine-readable JSON from Telegram Desktop)"
        )


def _listed_chat(source: _Source, where: str) -> Iterator[ExportedChat | dict[str, Any]]:
    header: dict[str, Any] = {}
    has_messages = False
    for key in source.members(where):
        if key == "messages":
            has_messages = True
            yield _chat_header(header, where)
            yield from _messages(source, f"the messages of {where}")
        elif key in ("name", "type", "id"):
            header[key] = source.value(f"`{key}` of {where}")
        else:
            source.value(f"`{key}` of {where}")
    if not has_messages:
        yield _chat_header(header, where)


def _chat_header(header: Mapping[str, Any], where: str) -> ExportedChat:
    export_id, kind, name = header.get("id"), header.get("type"), header.get("name")
    if not _is_int(export_id) or not isinstance(kind, str):
        raise ExportError(f"not an export: {where} has no integer `id` and `type` before its messages")
    return ExportedChat(export_id, kind, name if isinstance(name, str) else None)


def _messages(source: _Source, where: str) -> Iterator[dict[str, Any]]:
    for index in source.elements(where):
        message = source.value(f"message {index + 1} of {where}")
        if not isinstance(message, dict):
            raise ExportError(f"not an export: message {index + 1} of {where} is a {type(message).__name__}")
        yield message


# ---- converting


@dataclass(frozen=True)
class Converted:
    """What one exported message becomes: its updates (none when skipped), its date, and why it was skipped."""

    updates: tuple[dict[str, Any], ...]
    date: int | None = None
    message_id: int | None = None
    skipped: str | None = None  # "unsupported message", "service action the Bot API does not send"


def message_updates(chat: TargetChat, message: Mapping[str, Any], *, earliest: int, latest: int) -> Converted:
    """The updates the webhook would have stored for one exported message of `chat` (see the module's docstring).

    ExportError for a message no export holds: no integer id, no `date_unixtime`, a date outside
    `earliest` .. `latest` (Unix seconds)."""
    exported_id = message.get("id")
    if not _is_int(exported_id):
        raise ExportError(f"not an export: a message of chat {chat.id} has no integer id ({exported_id!r})")
    kind = message.get("type")
    if kind not in ("message", "service"):
        return Converted((), skipped="unsupported message")
    message_id = exported_id + chat.message_id_shift
    if not MIN_MESSAGE_ID <= message_id <= MAX_MESSAGE_ID:
        raise ExportError(f"not an export: message id {exported_id} of chat {chat.id} is no Telegram message id")
    where = f"message {exported_id} of chat {chat.id}"
    sent = _unix_time(message.get("date_unixtime"), f"date_unixtime of {where}", earliest, latest)
    payload: dict[str, Any] = {
        "message_id": message_id, **_sender(chat, message, kind), "chat": chat.chat, "date": sent,
    }
    if kind == "service":
        fields = _service_fields(chat, message, payload.get("from"))
        if fields is None:
            return Converted((), sent, message_id, skipped="service action the Bot API does not send")
        payload.update(fields)
    else:
        payload.update(_content(chat, message, sent, where, earliest, latest))
    update_type = "channel_post" if chat.type == "channel" else "message"
    updates = [{"update_id": imported_update_id(chat.id, message_id, MESSAGE_KIND), update_type: payload}]
    reactions = _reaction_counts(message.get("reactions"))
    if reactions:
        counts = {"chat": chat.chat, "message_id": message_id, "date": sent, "reactions": reactions}
        updates.append({"update_id": imported_update_id(chat.id, message_id, REACTIONS_KIND),
                        "message_reaction_count": counts})
    return Converted(tuple(updates), sent, message_id)


def _unix_time(value: Any, what: str, earliest: int, latest: int) -> int:
    """Unix seconds from the export's string of digits (an integer is read too), within earliest .. latest."""
    if isinstance(value, str) and _UNIX_TIME.fullmatch(value):
        value = int(value)
    if not _is_int(value):
        raise ExportError(f"not an export: {what} is {value!r}, not Unix seconds")
    if not earliest <= value <= latest:
        raise ExportError(
            f"{what} is {value}, outside {earliest} .. {latest} (Telegram's launch to now): not a real message date"
        )
    return value


def _sender(chat: TargetChat, message: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """`from` (and `sender_chat`), as the Bot API sets them: the actor of a service message, a channel's own posts
    without a sender, a message sent on behalf of a chat with the fake sender user beside the chat."""
    name_field, id_field = ("actor", "actor_id") if kind == "service" else ("from", "from_id")
    name = message.get(name_field)
    name = name if isinstance(name, str) else None
    peer = message.get(id_field)
    if _is_int(peer):  # exports before mid-2021 wrote a user's bare id
        return {"from": person(peer, name)}
    match = _PEER_ID.fullmatch(peer) if isinstance(peer, str) else None
    if match is None:
        return {"sender_chat": chat.chat} if chat.type == "channel" else {}
    peer_type, peer_id = match[1], int(match[2])
    if peer_type == "user":
        return {"from": person(peer_id, name)}
    sender_id = SUPERGROUP_PREFIX - peer_id if peer_type == "channel" else -peer_id
    if chat.type == "channel" or sender_id in (chat.own_id, chat.id):
        sender = {"sender_chat": chat.chat}
        return sender if chat.type == "channel" else {"from": dict(ANONYMOUS_ADMIN), **sender}
    sender_chat = {"id": sender_id, "type": "channel" if peer_type == "channel" else "group"}
    if name is not None:
        sender_chat["title"] = name
    return {"from": dict(FAKE_CHANNEL), "sender_chat": sender_chat}


def person(user_id: int, name: str | None) -> dict[str, Any]:
    """A Bot API User from what the export knows: the id and the whole name (as `first_name`); never a bot."""
    return {"id": user_id, "is_bot": False, "first_name": name if name is not None else DELETED_ACCOUNT}


def _content(
    chat: TargetChat, message: Mapping[str, Any], sent: int, where: str, earliest: int, latest: int
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    author = message.get("author")
    if isinstance(author, str):
        fields["author_signature"] = author
    if "forwarded_from" in message:
        fields["forward_origin"] = _forward_origin(message, sent)
    reply_to = message.get("reply_to_message_id")
    if _is_int(reply_to) and "reply_to_peer_id" not in message:  # a reply in another chat: no id of this chat's
        fields["reply_to_message"] = {"message_id": reply_to + chat.message_id_shift, "chat": chat.chat}
    if "edited_unixtime" in message:
        fields["edit_date"] = _unix_time(message["edited_unixtime"], f"edited_unixtime of {where}", earliest, latest)
    media = _media(message)
    fields.update(media)
    text, entities = rebuilt_text(message, where)
    if text:
        captioned = any(kind in media for kind in CAPTIONED)
        text_field, entities_field = ("caption", "caption_entities") if captioned else ("text", "entities")
        fields[text_field] = text
        if entities:
            fields[entities_field] = entities
    return fields


def _forward_origin(message: Mapping[str, Any], sent: int) -> dict[str, Any]:
    """A MessageOrigin from the forward's name (and id, when the export has one). The export does not say when
    the original was sent: its date is the forward's."""
    name = message.get("forwarded_from")
    name = name if isinstance(name, str) else DELETED_ACCOUNT
    peer = message.get("forwarded_from_id")
    match = _PEER_ID.fullmatch(peer) if isinstance(peer, str) else None
    if match is not None and match[1] == "user":
        return {"type": "user", "sender_user": person(int(match[2]), name), "date": sent}
    if match is not None:
        sender_chat = {"id": SUPERGROUP_PREFIX - int(match[2]), "type": "channel", "title": name}
        return {"type": "chat", "sender_chat": sender_chat, "date": sent}
    return {"type": "hidden_user", "sender_user_name": name, "date": sent}


def _media(message: Mapping[str, Any]) -> dict[str, Any]:
    """The Bot API's media field of the message, without the file: only what the export says about it."""
    if "photo" in message:
        size = _described(message, ("width", "height")) | _renamed(message, {"photo_file_size": "file_size"})
        return {"photo": [size]}
    if "file" in message:
        media_type = message.get("media_type")
        if media_type == "sticker":
            sticker = _described(message, ("width", "height"))
            if isinstance(message.get("sticker_emoji"), str):
                sticker["emoji"] = message["sticker_emoji"]
            return {"sticker": sticker}
        field = MEDIA_TYPES.get(media_type, "document") if isinstance(media_type, str) else "document"
        described = _described(message, tuple(FILE_FIELDS))
        if field == "video_note":
            described = {"duration": described.get("duration"), "length": described.get("width")}
            described = {name: value for name, value in described.items() if value is not None}
        if field == "animation":  # Telegram sends a GIF as `document` too, for older clients
            return {"animation": described, "document": dict(described)}
        return {field: described}
    if isinstance(message.get("contact_information"), Mapping):
        names = ("first_name", "last_name", "phone_number")
        return {"contact": _renamed(message["contact_information"], {name: name for name in names})}
    location = message.get("location_information")
    if isinstance(location, Mapping):
        place = _renamed(location, {"latitude": "latitude", "longitude": "longitude"})
        if "live_location_period_seconds" in message:
            place["live_period"] = message["live_location_period_seconds"]
        if isinstance(message.get("place_name"), str):
            venue = {"location": place, "title": message["place_name"], "address": message.get("address") or ""}
            return {"venue": venue, "location": dict(place)}
        return {"location": place}
    poll = message.get("poll")
    if isinstance(poll, Mapping):
        answers = poll.get("answers") if isinstance(poll.get("answers"), list) else []
        names = {"text": "text", "voters": "voter_count"}
        options = [_renamed(answer, names) for answer in answers if isinstance(answer, Mapping)]
        return {"poll": {"question": poll.get("question"), "options": options,
                         "total_voter_count": poll.get("total_voters"), "is_closed": poll.get("closed")}}
    return {}


def _described(message: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {FILE_FIELDS[name]: message[name] for name in names if name in message and message[name] is not None}


def _renamed(source: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    return {new: source[old] for old, new in names.items() if source.get(old) is not None}


def rebuilt_text(message: Mapping[str, Any], where: str = "a message") -> tuple[str, list[dict[str, Any]]]:
    """A message's text and its Bot API entities, from `text_entities` (or, in exports without them, `text`):
    the parts joined, each marked part an entity whose offset and length count UTF-16 code units."""
    parts = message.get("text_entities", message.get("text", ""))
    if isinstance(parts, str):
        parts = [parts]
    if not isinstance(parts, list):
        raise ExportError(f"not an export: the text of {where} is a {type(parts).__name__}")
    pieces: list[str] = []
    entities: list[dict[str, Any]] = []
    offset = 0
    for part in parts:
        piece = part if isinstance(part, str) else part.get("text") if isinstance(part, Mapping) else None
        if not isinstance(piece, str):
            raise ExportError(f"not an export: a part of the text of {where} has no text ({part!r})")
        length = utf16_length(piece)
        entity = _entity(part, offset, length) if isinstance(part, Mapping) and length else None
        if entity is not None:
            entities.append(entity)
        pieces.append(piece)
        offset += length
    return "".join(pieces), entities


def utf16_length(text: str) -> int:
    """The length the Bot API counts: UTF-16 code units (a character beyond the BMP, an emoji, is two)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _entity(part: Mapping[str, Any], offset: int, length: int) -> dict[str, Any] | None:
    kind = ENTITY_TYPES.get(part.get("type"))  # type: ignore[arg-type]
    if kind is None:
        return None
    entity: dict[str, Any] = {"offset": offset, "length": length, "type": kind}
    if kind == "text_link" and isinstance(part.get("href"), str):
        entity["url"] = part["href"]
    elif kind == "text_mention" and _is_int(part.get("user_id")):
        entity["user"] = person(part["user_id"], part["text"])
    elif kind == "custom_emoji" and part.get("document_id") is not None:
        entity["custom_emoji_id"] = str(part["document_id"])
    elif kind == "pre" and part.get("language"):
        entity["language"] = part["language"]
    return entity


def _service_fields(chat: TargetChat, message: Mapping[str, Any], actor: Any) -> dict[str, Any] | None:
    """The Bot API's service fields for an export's action; None for an action the Bot API never sends a bot, or
    whose fields the export cannot rebuild (a group's upgrade: the ingest records it as a chat link)."""
    action = message.get("action")
    members = [name if isinstance(name, str) else DELETED_ACCOUNT for name in message.get("members") or ()]
    actor_name = actor.get("first_name") if isinstance(actor, Mapping) else None

    def member(name: str) -> dict[str, Any]:
        # The export names the other people of an action, without their ids: only the actor has one.
        return dict(actor) if name == actor_name else {"is_bot": False, "first_name": name}

    if action in ("join_group_by_link", "join_group_by_request") and isinstance(actor, Mapping):
        return {"new_chat_members": [dict(actor)]}
    if action == "invite_members" and members:
        return {"new_chat_members": [member(name) for name in members]}
    if action == "remove_members" and members:
        return {"left_chat_member": member(members[0])}
    if action == "pin_message" and _is_int(message.get("message_id")):
        pinned = message["message_id"] + chat.message_id_shift
        return {"pinned_message": {"chat": chat.chat, "message_id": pinned, "date": 0}}
    simple = {
        "create_group": {"group_chat_created": True},
        "create_channel": {"channel_chat_created": True},
        "edit_group_title": {"new_chat_title": message.get("title")},
        "edit_group_photo": {"new_chat_photo": [_described(message, ("width", "height"))]},
        "delete_group_photo": {"delete_chat_photo": True},
        "topic_created": {"forum_topic_created": {"name": message.get("title")}},
        "topic_edit": {"forum_topic_edited": _renamed(message, {"new_title": "name"})},
        "group_call": (
            {"video_chat_ended": {"duration": message["duration"]}} if _is_int(message.get("duration"))
            else {"video_chat_started": {}}
        ),
        "group_call_scheduled": {"video_chat_scheduled": {"start_date": message.get("schedule_date")}},
        "set_messages_ttl": {"message_auto_delete_timer_changed": {"message_auto_delete_time": message.get("period")}},
        "boost_apply": {"boost_added": {"boost_count": message.get("boosts")}},
    }
    return simple.get(action)  # type: ignore[arg-type]


def _reaction_counts(reactions: Any) -> list[dict[str, Any]]:
    """The Bot API's ReactionCount list from the export's reactions (emoji, custom emoji, paid)."""
    counts = []
    for reaction in reactions if isinstance(reactions, list) else ():
        if not isinstance(reaction, Mapping) or not _is_int(reaction.get("count")) or reaction["count"] < 1:
            continue
        kind = reaction.get("type")
        if kind == "emoji" and isinstance(reaction.get("emoji"), str):
            reaction_type = {"type": "emoji", "emoji": reaction["emoji"]}
        elif kind == "custom_emoji" and reaction.get("document_id") is not None:
            reaction_type = {"type": "custom_emoji", "custom_emoji_id": str(reaction["document_id"])}
        elif kind == "paid":
            reaction_type = {"type": "paid"}
        else:
            continue
        counts.append({"type": reaction_type, "total_count": reaction["count"]})
    return counts


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

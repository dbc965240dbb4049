"""A realistic synthetic Telegram group chat, shared by the ETL benchmark, the local demo and the e2e test.

`synthetic_chat` returns Bot API Updates as Telegram would deliver them to the webhook, each with its
arrival time: many users (names, usernames, language codes), chatter, questions that recur across users
(so "most frequent questions" means something) with "thanks"/"resolved" follow-ups, bot commands
(`/start`, `/price@SomeBot btc`, ...), replies, edits, photos with and without captions, stickers, voice,
video, documents, locations, polls, dice, forum topics, joins and leaves, a few bot-authored messages,
some traffic from another chat, and non-message updates: callback queries, the bot's own membership, poll
answers, members' status changes (`chat_member`: joins, leaves, rejoins, kicks, promotions, restrictions;
Telegram often sends a join or leave both as a service message and as `chat_member`, and so does this chat),
reactions by people (`message_reaction`: added, changed, taken back; emoji and custom emoji) and anonymous
reaction totals (`message_reaction_count`, on other messages than the people's reactions). Arrivals follow
a daily rhythm in the chat's time zone (quiet nights, busy evenings, busier weekdays). The output depends
only on the arguments: the same seed gives the same chat. Update ids are unique and increase with arrival;
duplicate deliveries are the caller's business.
"""

from __future__ import annotations

import json
import random
import unicodedata
from collections import Counter, deque
from itertools import accumulate
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from zoneinfo import ZoneInfo

from tools.operate.desktop_export import FILE_FIELDS, ENTITY_TYPES, MEDIA_TYPES, SUPERGROUP_PREFIX

FIRST_UPDATE_ID = 873_400_000
CHAT_TITLE = "Telegram Lake Community"
BOT = {"id": 7_012_345_678, "is_bot": True, "first_name": "Price Bot", "username": "SomeBot"}

# Relative traffic by local hour (0-23) and by weekday (Monday first).
HOURLY_WEIGHTS = (
    0.6, 0.3, 0.15, 0.1, 0.1, 0.2, 0.5, 1.0, 1.6, 2.0, 2.2, 2.3,
    2.4, 2.6, 3.0, 3.2, 3.3, 3.4, 3.6, 3.9, 4.0, 3.6, 2.6, 1.5,
)
WEEKDAY_WEIGHTS = (1.15, 1.15, 1.15, 1.15, 1.1, 0.75, 0.65)

OTHER_CHAT_SHARE = 0.1
TOPIC_SHARE = 0.2
TOPIC_THREAD_IDS = (2, 3, 5)

FIRST_NAMES = (
    "Ana", "João", "Maria", "Pedro", "Lucas", "Beatriz", "Sofia", "Gabriel", "Liam", "Emma", "Noah", "Olivia",
    "Hiroshi", "Yuki", "Dmitri", "Olga", "Ahmed", "Fatima", "Wei", "Priya", "Arjun", "Carlos", "Lucía",
    "Hans", "Greta", "Kwame", "Amara", "Zoë", "François", "Björn", "Mateus", "Larissa", "Rafael", "Camila",
)
LAST_NAMES = (
    "Silva", "Santos", "Oliveira", "Souza", "Costa", "Pereira", "Smith", "Johnson", "Tanaka", "Ivanova",
    "Haddad", "Sharma", "García", "Müller", "Mensah", "Dubois", "Lindqvist", "Chen", "Almeida", "Rocha",
)
LANGUAGES = (("pt-br", 35), ("en", 30), ("es", 10), ("de", 5), ("ru", 5), ("ja", 3), (None, 12))

CHATTER = (
    "good morning everyone", "bom dia pessoal ☀️", "lol 😂", "I'll check it tonight", "makes sense",
    "agreed, let's do that", "the new release looks great", "boa tarde!", "anyone up for lunch?!",
    "brb", "😂😂😂", "that was fast", "nice work on the docs 👏", "vou testar amanhã", "see you all at 7",
    "happy friday 🎉", "just deployed the fix", "the dashboard is really slow today", "ok", "👍",
    "muito obrigado pela ajuda ontem", "can't wait for the meetup", "good night 🌙", "same here",
)
QUESTIONS = (
    "How do I reset my password?", "Is the API down?", "When is the next meetup?",
    "Qual o horário da reunião?", "How do I export the data to CSV?", "Does anyone have the meeting link?",
    "Where can I find the docs?", "Alguém sabe se o servidor caiu?", "Can I use this with Python 3.14?",
    "What is the price of BTC today?", "Who is presenting on Thursday?", "Is there a recording of the talk?",
    "How do I join the beta?", "Why is my upload failing?", "Which plan includes the API?",
    "¿Alguien tiene el enlace?", "Does the bot support group topics?", "Can someone review my PR?",
)
# Zipf-like popularity: the first questions recur most, asked again and again by different members.
QUESTION_POPULARITY = list(accumulate(1 / (rank + 1) for rank in range(len(QUESTIONS))))
FOLLOW_UPS = ("thanks!", "resolved, thank you 🙏", "obrigado!", "that worked, thanks", "resolved", "valeu! resolvido")
REPLIES = (
    "+1", "try restarting it", "I had the same problem yesterday", "check the pinned message",
    "it's in the docs under Settings", "yes, at 19h", "no idea, sorry", "works for me now", "same 😅",
)
CAPTIONS = (
    "look at this", "sunset from the office 🌅", "new dashboard", "screenshot of the error", "nosso time 💙",
)
COMMANDS = (
    ("/start", ""), ("/help", ""), ("/price", " btc"), ("/price@SomeBot", " eth"), ("/stats", ""),
    ("/rules", ""), ("/Help@SomeBot", ""), ("/price@SomeBot", " btc"),
)
LINKS = ("https://example.org/docs", "https://github.com/example/lake/pull/42", "https://meet.example.com/abc")
# Reactions, most popular first (Telegram's emoji reactions are written without a variation selector).
REACTION_EMOJI = ("👍", "❤", "🔥", "😁", "🎉", "🙏", "👏", "🤔", "😢")
REACTION_POPULARITY = list(accumulate(1 / (rank + 1) for rank in range(len(REACTION_EMOJI))))
MAX_REACTIONS = 3  # per person and message (Telegram Premium; others set one)
# How much more likely a message is to get the next reaction per reaction it has: some messages collect many.
REACTION_ATTRACTION = 4
CUSTOM_EMOJI_IDS = ("5368324170671202286", "5377305978079288312")
CUSTOM_EMOJI_SHARE = 0.08
ANONYMOUS_ADMIN_SHARE = 0.04
RECONSIDERED_SHARE = 0.25  # of reactions: someone changes, adds to or takes back a reaction they set
# A join or leave the chat also reports as a `chat_member` update (the bot is an administrator listing it).
ALSO_CHAT_MEMBER_SHARE = 0.6
MIN_MEMBERS = 10
ADMINISTRATOR_RIGHTS = {
    "can_be_edited": True, "is_anonymous": False, "can_manage_chat": True, "can_delete_messages": True,
    "can_manage_video_chats": True, "can_restrict_members": True, "can_promote_members": False,
    "can_change_info": False, "can_invite_users": True, "can_post_stories": False, "can_edit_stories": False,
    "can_delete_stories": False, "can_pin_messages": True, "can_manage_topics": True,
}
MUTED = {
    "can_send_messages": False, "can_send_audios": False, "can_send_documents": False, "can_send_photos": False,
    "can_send_videos": False, "can_send_video_notes": False, "can_send_voice_notes": False,
    "can_send_polls": False, "can_send_other_messages": False, "can_add_web_page_previews": False,
    "can_change_info": False, "can_invite_users": True, "can_pin_messages": False, "can_manage_topics": False,
}


@dataclass(frozen=True)
class SyntheticUpdate:
    arrival: datetime  # aware: when the webhook receives the update
    update: dict[str, Any]  # a Bot API Update, JSON-ready


def synthetic_chat(
    start: date,
    days: int,
    updates_per_day: int,
    *,
    chat_id: int,
    other_chat_id: int | None,
    zone: str,
    seed: int = 7,
) -> list[SyntheticUpdate]:
    """`days * updates_per_day` updates starting on `start` (local days in `zone`), in arrival order.

    Weekdays get more of the total than weekends, so a day's count varies around `updates_per_day`.
    """
    if days < 1 or updates_per_day < 0:
        raise ValueError(f"need days >= 1 and updates_per_day >= 0, got {days} and {updates_per_day}")
    rng = random.Random(seed)
    arrivals = _arrival_times(rng, start, days, updates_per_day, ZoneInfo(zone))
    chat = _Chat(chat_id, "supergroup", CHAT_TITLE, _users(rng, 48), forum=True)
    other = _Chat(other_chat_id, "group", "Off-topic", _users(rng, 12), forum=False) if other_chat_id else None
    writer = _UpdateWriter(rng)
    updates = []
    for update_id, arrival in enumerate(arrivals, FIRST_UPDATE_ID):
        target = other if other is not None and rng.random() < OTHER_CHAT_SHARE else chat
        updates.append(SyntheticUpdate(arrival, writer.update(update_id, target, arrival)))
    return updates


def _arrival_times(rng: random.Random, start: date, days: int, per_day: int, zone: ZoneInfo) -> list[datetime]:
    """Sorted aware arrival times: the total split by weekday weight, then spread by hourly weight."""
    dates = [start + timedelta(days=offset) for offset in range(days)]
    counts = _split(per_day * days, [WEEKDAY_WEIGHTS[day.weekday()] for day in dates])
    instants = []
    for day, count in zip(dates, counts):
        for hour in rng.choices(range(24), weights=HOURLY_WEIGHTS, k=count):
            local = datetime.combine(day, time(hour), tzinfo=zone) + timedelta(seconds=rng.randrange(3600))
            instants.append(local.astimezone(timezone.utc))
    # Sorted as UTC instants: Python compares datetimes of one zone by wall clock, wrong when clocks fall
    # back. Converting back also turns a wall-clock time inside a DST gap into the real one.
    return [instant.astimezone(zone) for instant in sorted(instants)]


def _split(total: int, weights: list[float]) -> list[int]:
    """Integer shares of `total` proportional to weights, summing exactly to total (largest remainder)."""
    scale = total / sum(weights)
    exact = [weight * scale for weight in weights]
    shares = [int(value) for value in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (shares[i] - exact[i], i))
    for i in by_remainder[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _users(rng: random.Random, count: int) -> list[dict[str, Any]]:
    users = []
    for _ in range(count):
        first = rng.choice(FIRST_NAMES)
        user: dict[str, Any] = {"id": rng.randrange(100_000_000, 7_000_000_000), "is_bot": False, "first_name": first}
        last = rng.choice(LAST_NAMES) if rng.random() < 0.7 else None
        if last:
            user["last_name"] = last
        if rng.random() < 0.75:
            user["username"] = _ascii(f"{first}_{last or rng.randrange(100, 999)}").lower()
        language = rng.choices([code for code, _ in LANGUAGES], weights=[w for _, w in LANGUAGES])[0]
        if language:
            user["language_code"] = language
        users.append(user)
    return users


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


@dataclass
class _Chat:
    """One chat's members and memory: message ids, recent messages to reply to or edit, open questions."""

    id: int
    type: str
    title: str
    members: list[dict[str, Any]]
    forum: bool
    next_message_id: int = 1
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=40))
    open_questions: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=10))
    polls: list[str] = field(default_factory=list)
    activity: list[float] = field(default_factory=list)
    # Updates already decided, delivered as this chat's next ones (the second report of one change).
    pending: deque[dict[str, Any]] = field(default_factory=deque)
    former_members: list[dict[str, Any]] = field(default_factory=list)
    statuses: dict[int, dict[str, Any]] = field(default_factory=dict)  # user id -> ChatMember, when not plain
    # message id -> user id (None: an anonymous admin) -> the ReactionType list set, for messages with public
    # reactions; message id -> reaction -> total, for messages with anonymous reactions. Never both for one.
    reactions: dict[int, dict[int | None, list[dict[str, str]]]] = field(default_factory=dict)
    anonymous_totals: dict[int, dict[tuple[tuple[str, str], ...], int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._update_activity()

    @property
    def known(self) -> dict[int, dict[str, Any]]:
        """Everyone who is or was a member, by id."""
        return {user["id"]: user for user in (*self.members, *self.former_members)}

    def join(self, member: dict[str, Any]) -> None:
        self.members.append(member)
        if member in self.former_members:
            self.former_members.remove(member)
        self.statuses.pop(member["id"], None)
        self._update_activity()

    def leave(self, member: dict[str, Any], status: dict[str, Any]) -> None:
        self.members.remove(member)
        self.former_members.append(member)
        self.statuses[member["id"]] = status
        self._update_activity()

    def status(self, user: dict[str, Any]) -> dict[str, Any]:
        """The user's ChatMember object as Telegram would show it now (someone never seen has `left`)."""
        plain = "member" if user in self.members else "left"
        return self.statuses.get(user["id"], {"user": user, "status": plain})

    def _update_activity(self) -> None:
        """Cumulative Zipf-like weights: a few members talk far more than the rest, as in real groups."""
        self.activity = list(accumulate(1 / (rank + 1) ** 0.8 for rank in range(len(self.members))))

    @property
    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"id": self.id, "type": self.type, "title": self.title}
        if self.forum:
            info["is_forum"] = True
        return info


class _UpdateWriter:
    """Writes the next update of a chat, choosing its kind by weight; kinds that need history fall back."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        kinds: dict[Callable[[_Chat, int], dict[str, Any] | None], float] = {
            self.chatter: 30, self.question: 13, self.follow_up: 4, self.reply: 8, self.command: 7,
            self.bot_message: 2, self.photo: 9, self.sticker: 5, self.voice: 3, self.document: 2,
            self.location: 1, self.video: 1.5, self.animation: 1, self.poll: 0.5, self.dice: 0.5,
            self.edit: 4, self.membership: 1, self.callback_query: 1.5, self.my_chat_member: 0.3,
            self.poll_answer: 0.7, self.reaction: 4, self.reaction_count: 1.2, self.member_status: 0.5,
        }
        self.kinds = list(kinds)
        self.weights = list(kinds.values())

    def update(self, update_id: int, chat: _Chat, arrival: datetime) -> dict[str, Any]:
        if chat.pending:
            return {"update_id": update_id, **chat.pending.popleft()}
        sent = int(arrival.timestamp()) - self.rng.randint(0, 2)
        payload = self.rng.choices(self.kinds, weights=self.weights)[0](chat, sent) or self.chatter(chat, sent)
        return {"update_id": update_id, **payload}

    # -- message kinds: each returns {update_type: payload}, or None when the chat lacks the history it needs

    def chatter(self, chat: _Chat, sent: int) -> dict[str, Any]:
        text = self.rng.choice(CHATTER)
        roll = self.rng.random()
        if roll < 0.08:
            link = _with_entity(text + " ", self.rng.choice(LINKS), "url")
            return self.message(chat, sent, self.sender(chat), **link)
        if roll < 0.14:
            mention = "@" + self.rng.choice([u for u in chat.members if "username" in u] or [BOT])["username"]
            return self.message(chat, sent, self.sender(chat), **_with_entity(text + " ", mention, "mention"))
        return self.message(chat, sent, self.sender(chat), text=text)

    def question(self, chat: _Chat, sent: int) -> dict[str, Any]:
        text = self.rng.choices(QUESTIONS, cum_weights=QUESTION_POPULARITY)[0]
        update = self.message(chat, sent, self.sender(chat), text=text)
        chat.open_questions.append(update["message"])
        return update

    def follow_up(self, chat: _Chat, sent: int) -> dict[str, Any] | None:
        if not chat.open_questions:
            return None
        question = chat.open_questions.popleft()
        return self.message(chat, sent, question["from"], text=self.rng.choice(FOLLOW_UPS), reply_to=question)

    def reply(self, chat: _Chat, sent: int) -> dict[str, Any] | None:
        if not chat.recent:
            return None
        replied = self.rng.choice(chat.recent)
        return self.message(chat, sent, self.sender(chat), text=self.rng.choice(REPLIES), reply_to=replied)

    def command(self, chat: _Chat, sent: int) -> dict[str, Any]:
        name, argument = self.rng.choice(COMMANDS)
        return self.message(chat, sent, self.sender(chat), **_with_entity("", name, "bot_command", argument))

    def bot_message(self, chat: _Chat, sent: int) -> dict[str, Any]:
        if self.rng.random() < 0.5:
            text = f"BTC: {self.rng.randint(55_000, 75_000):,}.{self.rng.randint(0, 99):02d} USD"
            return self.message(chat, sent, BOT, text=text)
        # A command inside the text, not at its start: not a command message.
        return self.message(chat, sent, BOT, **_with_entity("Available commands: ", "/price", "bot_command", " /help"))

    def photo(self, chat: _Chat, sent: int) -> dict[str, Any]:
        sizes = [
            {**self.file(), "width": width, "height": width * 3 // 4, "file_size": width * 120}
            for width in (90, 320, 1280)
        ]
        roll = self.rng.random()
        if roll < 0.45:
            return self.message(chat, sent, self.sender(chat), photo=sizes)
        if roll < 0.5:
            name, argument = self.rng.choice(COMMANDS)
            captioned = _with_entity("", name, "bot_command", argument, text_field="caption")
            return self.message(chat, sent, self.sender(chat), photo=sizes, **captioned)
        return self.message(chat, sent, self.sender(chat), photo=sizes, caption=self.rng.choice(CAPTIONS))

    def sticker(self, chat: _Chat, sent: int) -> dict[str, Any]:
        sticker = {**self.file(), "type": "regular", "width": 512, "height": 512, "is_animated": False,
                   "is_video": False, "emoji": self.rng.choice("😂👍🔥❤️🙏")}
        return self.message(chat, sent, self.sender(chat), sticker=sticker)

    def voice(self, chat: _Chat, sent: int) -> dict[str, Any]:
        duration = self.rng.randint(2, 90)
        voice = {**self.file(), "duration": duration, "mime_type": "audio/ogg", "file_size": duration * 4000}
        return self.message(chat, sent, self.sender(chat), voice=voice)

    def document(self, chat: _Chat, sent: int) -> dict[str, Any]:
        name = self.rng.choice(("report.pdf", "export.csv", "slides.pptx", "logs.txt"))
        document = {**self.file(), "file_name": name, "mime_type": "application/octet-stream", "file_size": 52_000}
        if self.rng.random() < 0.3:
            return self.message(chat, sent, self.sender(chat), document=document, caption="here it is")
        return self.message(chat, sent, self.sender(chat), document=document)

    def location(self, chat: _Chat, sent: int) -> dict[str, Any]:
        place = {
            "latitude": round(self.rng.uniform(-23.7, -23.4), 6),
            "longitude": round(self.rng.uniform(-46.8, -46.4), 6),
        }
        return self.message(chat, sent, self.sender(chat), location=place)

    def video(self, chat: _Chat, sent: int) -> dict[str, Any]:
        video = {**self.file(), "width": 1280, "height": 720, "duration": self.rng.randint(5, 120)}
        return self.message(chat, sent, self.sender(chat), video=video, caption=self.rng.choice(CAPTIONS))

    def animation(self, chat: _Chat, sent: int) -> dict[str, Any]:
        # Telegram sends a GIF both as `animation` and, for older clients, as `document`.
        gif = {**self.file(), "width": 320, "height": 240, "duration": 3, "file_name": "funny.mp4"}
        return self.message(chat, sent, self.sender(chat), animation=gif, document=dict(gif))

    def poll(self, chat: _Chat, sent: int) -> dict[str, Any]:
        poll_id = str(self.rng.getrandbits(62))
        chat.polls.append(poll_id)
        options = [{"text": option, "voter_count": 0} for option in ("Thursday", "Friday", "Next week")]
        poll = {"id": poll_id, "question": "When should we meet?", "options": options, "total_voter_count": 0,
                "is_closed": False, "is_anonymous": False, "type": "regular", "allows_multiple_answers": False}
        return self.message(chat, sent, self.sender(chat), poll=poll)

    def dice(self, chat: _Chat, sent: int) -> dict[str, Any]:
        return self.message(chat, sent, self.sender(chat), dice={"emoji": "🎲", "value": self.rng.randint(1, 6)})

    def edit(self, chat: _Chat, sent: int) -> dict[str, Any] | None:
        editable = [
            m for m in chat.recent
            if "text" in m and "entities" not in m and not m["from"]["is_bot"] and not m["text"].endswith("?")
        ]
        if not editable:
            return None
        original = self.rng.choice(editable)
        edited = {**original, "text": original["text"] + " (edit: typo)", "edit_date": max(sent, original["date"] + 1)}
        return {"edited_message": edited}

    def membership(self, chat: _Chat, sent: int) -> dict[str, Any]:
        """A join or leave as its service message; often reported again as a `chat_member` update."""
        if self.rng.random() < 0.6 or len(chat.members) <= MIN_MEMBERS:
            newcomer = self.newcomer(chat)
            change = self.chat_member(chat, sent, newcomer, {"user": newcomer, "status": "member"})
            update = self.message(chat, sent, newcomer, new_chat_members=[newcomer], remember=False)
        else:
            leaver = self.sender(chat)
            change = self.chat_member(chat, sent, leaver, {"user": leaver, "status": "left"})
            update = self.message(chat, sent, leaver, left_chat_member=leaver, remember=False)
        if self.rng.random() < ALSO_CHAT_MEMBER_SHARE:
            chat.pending.append(change)
        return update

    def member_status(self, chat: _Chat, sent: int) -> dict[str, Any]:
        """A `chat_member` update alone: a join or leave without a service message, a kick, a promotion,
        a restriction (someone restricted stays a member)."""
        roll = self.rng.random()
        if roll < 0.35 or len(chat.members) <= MIN_MEMBERS:
            newcomer = self.newcomer(chat)
            return self.chat_member(chat, sent, newcomer, {"user": newcomer, "status": "member"})
        member = self.sender(chat)
        if roll < 0.6:
            return self.chat_member(chat, sent, member, {"user": member, "status": "left"})
        admin = chat.members[0] if member is not chat.members[0] else chat.members[1]  # the most active
        if roll < 0.75:
            return self.chat_member(chat, sent, admin, {"user": member, "status": "kicked", "until_date": 0})
        if roll < 0.9:
            promoted = {"user": member, "status": "administrator", **ADMINISTRATOR_RIGHTS}
            return self.chat_member(chat, sent, admin, promoted)
        restricted = {"user": member, "status": "restricted", "is_member": True, **MUTED, "until_date": sent + 86_400}
        return self.chat_member(chat, sent, admin, restricted)

    def newcomer(self, chat: _Chat) -> dict[str, Any]:
        """Someone new, or now and then someone who left earlier coming back."""
        if chat.former_members and self.rng.random() < 0.3:
            return self.rng.choice(chat.former_members)
        return _users(self.rng, 1)[0]

    def chat_member(self, chat: _Chat, sent: int, actor: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        """A ChatMemberUpdated for `new["user"]`, applied to the chat's state."""
        user = new["user"]
        old = chat.status(user)
        if new["status"] in ("left", "kicked"):
            chat.leave(user, new)
        elif user not in chat.members:
            chat.join(user)
        else:
            chat.statuses[user["id"]] = new
        change = {"chat": chat.info, "from": dict(actor), "date": sent, "old_chat_member": old, "new_chat_member": new}
        return {"chat_member": change}

    def reaction(self, chat: _Chat, sent: int) -> dict[str, Any] | None:
        """Someone adds a reaction to a recent message, or changes one they set, adds a second one, or takes
        it back. An anonymous admin reacts as the chat (`actor_chat`, no `user`)."""
        messages = [m["message_id"] for m in chat.recent if m["message_id"] not in chat.anonymous_totals]
        if not messages:
            return None
        standing = [(message_id, actor) for message_id in messages
                    for actor, listed in chat.reactions.get(message_id, {}).items() if listed]
        if standing and self.rng.random() < RECONSIDERED_SHARE:
            message_id, reactor = self.rng.choice(standing)
        else:
            message_id = self.popular(messages, {message: len(actors) for message, actors in chat.reactions.items()})
            reactor = None if self.rng.random() < ANONYMOUS_ADMIN_SHARE else self.sender(chat)["id"]
        old = chat.reactions.setdefault(message_id, {}).get(reactor, [])
        other, roll = self.reaction_type(), self.rng.random()
        if not old:
            new = [other]
        elif roll < 0.45 or other in old:
            new = []
        elif roll < 0.85 or len(old) >= MAX_REACTIONS:
            new = [other]
        else:
            new = [*old, other]
        chat.reactions[message_id][reactor] = new
        change: dict[str, Any] = {"chat": chat.info, "message_id": message_id}
        change.update({"actor_chat": chat.info} if reactor is None else {"user": dict(chat.known[reactor])})
        change.update(date=sent, old_reaction=old, new_reaction=new)
        return {"message_reaction": change}

    def reaction_count(self, chat: _Chat, sent: int) -> dict[str, Any] | None:
        """The anonymous totals of a recent message after someone added (or now and then took back) one."""
        messages = [m["message_id"] for m in chat.recent if m["message_id"] not in chat.reactions]
        if not messages:
            return None
        totals_now = {message: sum(totals.values()) for message, totals in chat.anonymous_totals.items()}
        message_id = self.popular(messages, totals_now)
        totals = chat.anonymous_totals.setdefault(message_id, {})
        if totals and self.rng.random() < 0.2:
            taken_back = self.rng.choice(sorted(totals))
            totals[taken_back] -= 1
            if not totals[taken_back]:
                del totals[taken_back]
        else:
            added = tuple(self.reaction_type().items())
            totals[added] = totals.get(added, 0) + 1
        reactions = [
            {"type": dict(key), "total_count": total}
            for key, total in sorted(totals.items(), key=lambda item: (-item[1], item[0]))
        ]
        return {"message_reaction_count": {"chat": chat.info, "message_id": message_id, "date": sent,
                                           "reactions": reactions}}

    def popular(self, message_ids: list[int], reactions: dict[int, int]) -> int:
        """One of the messages, the more likely the more reactions it already has."""
        weights = [1 + REACTION_ATTRACTION * reactions.get(message_id, 0) for message_id in message_ids]
        return self.rng.choices(message_ids, weights=weights)[0]

    def reaction_type(self) -> dict[str, str]:
        """A ReactionType: mostly a popular emoji, sometimes a custom emoji."""
        if self.rng.random() < CUSTOM_EMOJI_SHARE:
            return {"type": "custom_emoji", "custom_emoji_id": self.rng.choice(CUSTOM_EMOJI_IDS)}
        return {"type": "emoji", "emoji": self.rng.choices(REACTION_EMOJI, cum_weights=REACTION_POPULARITY)[0]}

    # -- non-message updates: counted and skipped by the ETL

    def callback_query(self, chat: _Chat, sent: int) -> dict[str, Any]:
        bot_message = {"message_id": max(1, chat.next_message_id - 1), "from": BOT, "chat": chat.info,
                       "date": sent - 60, "text": "Choose a coin"}
        query = {"id": str(self.rng.getrandbits(63)), "from": self.sender(chat), "message": bot_message,
                 "chat_instance": str(-abs(chat.id) // 7), "data": self.rng.choice(("price:btc", "price:eth"))}
        return {"callback_query": query}

    def my_chat_member(self, chat: _Chat, sent: int) -> dict[str, Any]:
        statuses = self.rng.sample(("member", "administrator"), 2)
        change = {"chat": chat.info, "from": self.sender(chat), "date": sent,
                  "old_chat_member": {"user": BOT, "status": statuses[0]},
                  "new_chat_member": {"user": BOT, "status": statuses[1]}}
        return {"my_chat_member": change}

    def poll_answer(self, chat: _Chat, sent: int) -> dict[str, Any] | None:
        if not chat.polls:
            return None
        answer = {
            "poll_id": self.rng.choice(chat.polls), "user": self.sender(chat), "option_ids": [self.rng.randrange(3)],
        }
        return {"poll_answer": answer}

    # -- helpers

    def sender(self, chat: _Chat) -> dict[str, Any]:
        return self.rng.choices(chat.members, cum_weights=chat.activity)[0]

    def file(self) -> dict[str, str]:
        token = f"{self.rng.getrandbits(128):032x}"
        return {"file_id": f"AgACAgEAAx0{token}", "file_unique_id": f"AQAD{token[:12]}"}

    def message(
        self, chat: _Chat, sent: int, sender: dict[str, Any], *, reply_to: dict[str, Any] | None = None,
        remember: bool = True, **content: Any,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": chat.next_message_id, "from": dict(sender), "chat": chat.info, "date": sent,
        }
        chat.next_message_id += 1
        if chat.forum and self.rng.random() < TOPIC_SHARE:
            message.update(message_thread_id=self.rng.choice(TOPIC_THREAD_IDS), is_topic_message=True)
        if reply_to is not None:
            message["reply_to_message"] = {k: v for k, v in reply_to.items() if k != "reply_to_message"}
        message.update(content)
        if remember:
            chat.recent.append(message)
        return {"message": message}


def _with_entity(
    before: str, marked: str, kind: str, after: str = "", *, text_field: str = "text"
) -> dict[str, Any]:
    """`{text, entities}` (or `{caption, caption_entities}`) with one entity, offsets in UTF-16 units."""
    offset = len(before.encode("utf-16-le")) // 2
    length = len(marked.encode("utf-16-le")) // 2
    entities_field = "entities" if text_field == "text" else "caption_entities"
    return {text_field: before + marked + after, entities_field: [{"offset": offset, "length": length, "type": kind}]}


# ---- Telegram Desktop's export of the same chat

# What Telegram Desktop writes instead of a file it did not download.
FILE_NOT_INCLUDED = "(File not included. Change data exporting settings to download.)"
# A media field of the Bot API -> the export's `media_type` (a photo and a document have none).
_EXPORTED_MEDIA_TYPES = {bot_api: exported for exported, bot_api in MEDIA_TYPES.items()}
_EXPORTED_ENTITY_TYPES = {bot_api: exported for exported, bot_api in ENTITY_TYPES.items()}
_EXPORTED_FILE_FIELDS = {bot_api: exported for exported, bot_api in FILE_FIELDS.items()}


def desktop_export(
    updates: Iterable[SyntheticUpdate | Mapping[str, Any]], chat_id: int, *, name: str
) -> dict[str, Any]:
    """What Telegram Desktop's "Export chat history" (machine-readable JSON) writes for the chat whose Bot API
    updates these are: each message as last edited, with its reactions' final counts, the joins and leaves as
    service messages, in message id order. What an export holds that the updates never told (or the reverse) is
    left out: a dice is `unsupported`, as Telegram Desktop writes it; callback queries, poll answers and members'
    status changes are no messages."""
    updates = [item.update if isinstance(item, SyntheticUpdate) else item for item in updates]
    mine = [update for update in updates if _payload_chat_id(update) == chat_id]
    edited = [update["edited_message"] for update in mine if "edited_message" in update]
    edits = {edit["message_id"]: edit for edit in edited}  # the latest edit of each message
    messages = [
        _exported_message(update["message"], edits.get(update["message"]["message_id"]), _final_reactions(mine))
        for update in mine if "message" in update
    ]
    if chat_id <= SUPERGROUP_PREFIX:
        export_id, chat_type = SUPERGROUP_PREFIX - chat_id, "private_supergroup"
    else:
        export_id, chat_type = -chat_id, "private_group"
    messages.sort(key=lambda message: message["id"])
    return {"name": name, "type": chat_type, "id": export_id, "messages": messages}


def write_desktop_export(export: Mapping[str, Any], path: Path) -> Path:
    """The export as Telegram Desktop lays out its result.json: UTF-8, one space of indentation per level."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(export, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path


def _payload_chat_id(update: Mapping[str, Any]) -> int | None:
    payload = next((value for key, value in update.items() if key != "update_id"), None)
    chat = payload.get("chat") if isinstance(payload, Mapping) else None
    return chat.get("id") if isinstance(chat, Mapping) else None


def _exported_message(
    message: Mapping[str, Any], edited: Mapping[str, Any] | None, reactions: Mapping[int, list[dict[str, Any]]]
) -> dict[str, Any]:
    if "dice" in message:
        return {"id": message["message_id"], "type": "unsupported"}
    current = edited or message
    exported: dict[str, Any] = {
        "id": message["message_id"], "type": "message", **_exported_date("date", message["date"]),
    }
    if edited is not None:
        exported.update(_exported_date("edited", edited["edit_date"]))
    sender = message["from"]
    if "new_chat_members" in message or "left_chat_member" in message:
        exported.update(type="service", actor=full_name(sender), actor_id=f"user{sender['id']}")
        if "new_chat_members" in message:
            exported["action"] = "join_group_by_link"
            exported["inviter"] = None
        else:
            exported.update(action="remove_members", members=[full_name(message["left_chat_member"])])
        exported.update(text="", text_entities=[])
        return exported
    exported.update({"from": full_name(sender), "from_id": f"user{sender['id']}"})
    if "forward_origin" in message and message["forward_origin"].get("type") == "hidden_user":
        exported["forwarded_from"] = message["forward_origin"]["sender_user_name"]
    if "reply_to_message" in message:
        exported["reply_to_message_id"] = message["reply_to_message"]["message_id"]
    exported.update(_exported_media(message))
    text_field, entities_field = ("caption", "caption_entities") if "caption" in current else ("text", "entities")
    parts = exported_text(current.get(text_field, ""), current.get(entities_field, []))
    plain = len(parts) == 1 and parts[0]["type"] == "plain"
    mixed = [part["text"] if part["type"] == "plain" else part for part in parts]
    exported["text"] = parts[0]["text"] if plain else mixed
    exported["text_entities"] = parts
    if message["message_id"] in reactions:
        exported["reactions"] = reactions[message["message_id"]]
    return exported


def full_name(user: Mapping[str, Any]) -> str:
    """A person's name as Telegram Desktop writes it: first and last name."""
    return " ".join(filter(None, (user.get("first_name"), user.get("last_name"))))


def _exported_date(field_name: str, unix: int) -> dict[str, str]:
    """A date as the export writes it: the exporting computer's wall clock (here UTC) and the Unix seconds."""
    local = datetime.fromtimestamp(unix, timezone.utc).replace(tzinfo=None)
    return {field_name: local.isoformat(), f"{field_name}_unixtime": str(unix)}


def exported_text(text: str, entities: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Telegram Desktop's `text_entities` of a Bot API text: the text cut at its (non-overlapping) entities,
    whose offsets count UTF-16 code units, each piece typed (`plain` between them)."""
    units = text.encode("utf-16-le", "surrogatepass")

    def piece(start: int, end: int) -> str:
        return units[2 * start:2 * end].decode("utf-16-le", "surrogatepass")

    parts: list[dict[str, Any]] = []
    offset = 0
    for entity in sorted(entities, key=lambda entity: entity["offset"]):
        if entity["offset"] > offset:
            parts.append({"type": "plain", "text": piece(offset, entity["offset"])})
        end = entity["offset"] + entity["length"]
        part: dict[str, Any] = {
            "type": _EXPORTED_ENTITY_TYPES.get(entity["type"], "unknown"), "text": piece(entity["offset"], end),
        }
        if "url" in entity:
            part["href"] = entity["url"]
        if "user" in entity:
            part["user_id"] = entity["user"]["id"]
        if "custom_emoji_id" in entity:
            part["document_id"] = entity["custom_emoji_id"]
        parts.append(part)
        offset = end
    if offset < len(units) // 2 or not parts:
        parts.append({"type": "plain", "text": piece(offset, len(units) // 2)})
    return parts


def _exported_media(message: Mapping[str, Any]) -> dict[str, Any]:
    """The export's fields of the message's media: no file (Telegram Desktop's note instead), what it says about it."""
    if "photo" in message:
        largest = message["photo"][-1]
        return {"photo": FILE_NOT_INCLUDED, "photo_file_size": largest["file_size"], "width": largest["width"],
                "height": largest["height"]}
    for field_name in ("sticker", "video_note", "voice", "animation", "video", "audio", "document"):
        if field_name in message:
            media = message[field_name]
            exported: dict[str, Any] = {"file": FILE_NOT_INCLUDED}
            exported.update({
                _EXPORTED_FILE_FIELDS[name]: value for name, value in media.items() if name in _EXPORTED_FILE_FIELDS
            })
            if field_name in _EXPORTED_MEDIA_TYPES:
                exported["media_type"] = _EXPORTED_MEDIA_TYPES[field_name]
            if field_name == "sticker":
                exported["sticker_emoji"] = media["emoji"]
            return exported
    if "location" in message:
        return {"location_information": dict(message["location"])}
    if "poll" in message:
        poll = message["poll"]
        answers = [
            {"text": option["text"], "voters": option["voter_count"], "chosen": False} for option in poll["options"]
        ]
        return {"poll": {"question": poll["question"], "closed": poll["is_closed"],
                         "total_voters": poll["total_voter_count"], "answers": answers}}
    return {}


def _final_reactions(updates: Iterable[Mapping[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Each message's reactions as the export shows them at the end: counts per reaction, most first (a person's
    latest reaction list, or a message's latest anonymous totals)."""
    people: dict[int, dict[Any, list[dict[str, str]]]] = {}
    anonymous: dict[int, dict[tuple[tuple[str, str], ...], int]] = {}
    for update in updates:
        if "message_reaction" in update:
            change = update["message_reaction"]
            actor = change.get("user", change.get("actor_chat"))["id"]
            people.setdefault(change["message_id"], {})[actor] = change["new_reaction"]
        elif "message_reaction_count" in update:
            totals = update["message_reaction_count"]
            anonymous[totals["message_id"]] = {
                tuple(sorted(each["type"].items())): each["total_count"] for each in totals["reactions"]
            }
    counted: dict[int, Counter[tuple[tuple[str, str], ...]]] = {
        message_id: Counter(tuple(sorted(reaction.items())) for listed in actors.values() for reaction in listed)
        for message_id, actors in people.items()
    }
    counted.update({message_id: Counter(totals) for message_id, totals in anonymous.items()})
    exported = {}
    for message_id, counts in counted.items():
        reactions = []
        for key, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            if count < 1:
                continue
            reaction_type = dict(key)
            reaction: dict[str, Any] = {"type": reaction_type["type"], "count": count}
            if reaction_type["type"] == "emoji":
                reaction["emoji"] = reaction_type["emoji"]
            else:
                reaction["document_id"] = reaction_type["custom_emoji_id"]
            reactions.append(reaction)
        if reactions:
            exported[message_id] = reactions
    return exported

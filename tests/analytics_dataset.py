"""A generated group chat in the enriched layout, for testing the saved analytics on DuckDB.

Rows are plain dicts with the enriched columns plus `context_date`, so the tests can compute every
answer from them in plain Python. Besides seeded random traffic, the chat holds the cases the SQL has to
get right: messages one second either side of local midnight, a local Saturday night that is Sunday in
UTC, a local Sunday, averages of exactly .5, a rename, edits arriving a day later, bots, a channel post,
bare `?`, questions repeated within and after 24 hours, a question spaced with a tab and a non-breaking
space, and commands with a @botname. Four more weeks may follow the random days, for the engagement
questions: newcomers who stay, skip a week or write once, a first message on a local Sunday night (Monday in
UTC west of Greenwich), a join (a service message) a week before the joiner's first message, an edit as
someone's only activity of a week, many kinds of message, a second group, a private chat and a renamed group.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq

from lambdas.common.layout import local_day
from lambdas.etl.day import enriched_key
from lambdas.etl.schema import COLUMN_NAMES, arrow_schema

CHAT_ID = -1001234567890
# A chat as the enriched row holds it: id, type, title.
Chat = tuple[int, str, str | None]
MAIN_CHAT: Chat = (CHAT_ID, "supergroup", "Comunidade")
RENAMED_CHAT: Chat = (CHAT_ID, "supergroup", "Comunidade Lake")
OTHER_CHAT: Chat = (-1009876543210, "group", "Fora do tópico")
PRIVATE_CHAT: Chat = (101, "private", None)  # Ana and the bot: a private chat has no title
NEWCOMERS = {110: "Olga", 111: "Pablo", 112: "Quitéria"}
PEOPLE = {101: "Ana", 102: "Bruno", 103: "Carla", 104: "Davi", 105: "Érica"}
HALF_UP_USER = (106, "Meio")
SPACING_USER = (107, "Nara")
BOT = (900, "HelperBot")
ANONYMOUS_ADMIN = (1087968824, "Group")  # Telegram's GroupAnonymousBot: a person posting as the group
CHAT_TEXTS = ("bom dia", "obrigado!", "ok", "alguém aí", "valeu 👍", "até amanhã", "funcionou, obrigada")
QUESTIONS = (
    "Como faço login?",
    "  COMO faço\tlogin?",
    "qual o horário de atendimento?",
    "Qual o HORÁRIO   de atendimento?",
    "o bot está fora do ar?",
    "Posso pagar com pix?\n",
)
# (text, the `command` the ETL extracts from it)
COMMANDS = (("/start", "/start"), ("/help", "/help"), ("/Help@HelperBot", "/help"), ("/report@HelperBot x", "/report"))
NOT_QUESTIONS = ("?", "??", " ? ? ", "isso é uma pergunta? não")
DAY = 86_400


@dataclass(frozen=True)
class Scenario:
    zone: str
    first_day: date
    days: int = 9  # more than a week: every weekday, a Sunday, and a week boundary
    seed: int = 7
    later_weeks: bool = False  # the four weeks of engagement cases after the random days (see `_later_weeks`)


class _Chat:
    """Accumulates messages and edits; update and message ids follow arrival order, as Telegram's do."""

    def __init__(self, zone: str):
        self.zone_name = zone
        self.zone = ZoneInfo(zone)
        self.events: list[dict[str, Any]] = []

    def at(self, day: date, hour: int, minute: int = 0, second: int = 0) -> int:
        """Unix seconds of a local wall-clock time in the scenario's zone."""
        return int(datetime.combine(day, time(hour, minute, second), tzinfo=self.zone).timestamp())

    def day_bounds(self, day: date) -> tuple[int, int]:
        return self.at(day, 0), self.at(day + timedelta(days=1), 0)

    def message(
        self,
        sent: int,
        user: tuple[int | None, str | None],
        *,
        text: str | None = None,
        caption: str | None = None,
        kind: str = "text",
        command: str | None = None,
        is_bot: bool = False,
        chat: Chat = MAIN_CHAT,
    ) -> dict[str, Any]:
        row = dict.fromkeys(COLUMN_NAMES)
        row.update(
            user_id=user[0], user_first_name=user[1], user_is_bot=is_bot, chat_id=chat[0], chat_type=chat[1],
            chat_title=chat[2], text=text, caption=caption, date=sent, update_type="message", message_type=kind,
            is_command=command is not None, command=command, arrival=sent,
        )
        self.events.append(row)
        return row

    def channel_post(self, sent: int, text: str) -> None:
        """A post in a channel: no sender at all."""
        row = dict.fromkeys(COLUMN_NAMES)
        row.update(
            chat_id=CHAT_ID, chat_type="channel", text=text, date=sent, update_type="channel_post",
            message_type="text", is_command=False, arrival=sent,
        )
        self.events.append(row)

    def edit(self, original: dict[str, Any], edited: int, text: str) -> None:
        self.events.append(
            dict(original, update_type="edited_message", text=text, edit_date=edited, arrival=edited, original=original)
        )

    def rows(self) -> list[dict[str, Any]]:
        """The enriched rows: ids follow arrival, an edit keeps its message's id, `context_date` = arrival day."""
        ordered = sorted(self.events, key=lambda event: event["arrival"])
        message_ids = {id(event): number for number, event in enumerate((e for e in ordered if "original" not in e), 1)}
        rows = []
        for update_id, event in enumerate(ordered, start=500_000):
            row = {name: event[name] for name in COLUMN_NAMES}
            row.update(
                update_id=update_id,
                message_id=message_ids[id(event.get("original", event))],
                context_date=local_day(datetime.fromtimestamp(event["arrival"], timezone.utc), self.zone_name),
            )
            rows.append(row)
        return rows


def generate(scenario: Scenario) -> list[dict[str, Any]]:
    chat = _Chat(scenario.zone)
    rng = random.Random(scenario.seed)
    days = [scenario.first_day + timedelta(days=offset) for offset in range(scenario.days)]
    for day in days:
        _random_traffic(chat, rng, day)
    _edge_cases(chat, days)
    if scenario.later_weeks:
        _later_weeks(chat, days[-1])
    return chat.rows()


def _random_traffic(chat: _Chat, rng: random.Random, day: date) -> None:
    start, end = chat.day_bounds(day)
    for user in PEOPLE.items():
        for _ in range(rng.randint(0, 7)):
            sent = rng.randrange(start, end)
            kind = rng.choice(("chat", "chat", "question", "question", "one-off", "command", "photo", "sticker"))
            if kind == "chat":
                row = chat.message(sent, user, text=rng.choice(CHAT_TEXTS))
                if rng.random() < 0.3:
                    chat.edit(row, sent + rng.randrange(60, 36 * 3600), row["text"] + " (editado)")
            elif kind == "question":
                chat.message(sent, user, text=rng.choice(QUESTIONS))
            elif kind == "one-off":
                chat.message(sent, user, text=f"Onde está o pedido {rng.randrange(1000, 9999)}?")
            elif kind == "command":
                text, command = rng.choice(COMMANDS)
                chat.message(sent, user, text=text, command=command)
            elif kind == "photo":
                chat.message(sent, user, kind="photo", caption=rng.choice((None, "isso está certo?", "olha")))
            else:
                chat.message(sent, user, kind="sticker")
        if rng.random() < 0.5:  # the bot answers somebody, with a question and a command of its own
            chat.message(rng.randrange(start, end), BOT, text=rng.choice(QUESTIONS + ("/help",)), is_bot=True)


def _edge_cases(chat: _Chat, days: list[date]) -> None:
    first, second, third = days[0], days[1], days[2]
    ana, bruno, carla = ((user_id, PEOPLE[user_id]) for user_id in (101, 102, 103))
    # One second either side of local midnight: two different days.
    chat.message(chat.at(first, 23, 59, 59), ana, text="boa noite")
    chat.message(chat.at(second, 0, 0, 0), ana, text="já é amanhã")
    # Averages of exactly 2.5 and 4.5: half up gives 3 and 5 (half to even would give 2 and 4).
    chat.message(chat.at(first, 10), HALF_UP_USER, text="ab")
    chat.message(chat.at(first, 11), HALF_UP_USER, text="abc")
    chat.message(chat.at(first, 12), HALF_UP_USER, kind="photo")
    chat.message(chat.at(second, 10), HALF_UP_USER, text="abcd")
    chat.message(chat.at(second, 11), HALF_UP_USER, text="abcde")
    # A rename during a day: one row per user and day, with the latest name.
    chat.message(chat.at(second, 8), (104, "Davi"), text="oi")
    chat.message(chat.at(second, 20), (104, "Davi R."), text="mudei meu nome")
    # Every local Saturday and Sunday late evening: the next day in UTC west of Greenwich.
    for day in days:
        if day.isoweekday() in (6, 7):
            chat.message(chat.at(day, 22, 30), carla, text="fim de semana?")
    # The same question again after 23 hours (a repeat) and after 26 more (not within 24 hours).
    chat.message(chat.at(first, 10), bruno, text="O pagamento caiu?")
    chat.message(chat.at(second, 9), bruno, text="o   PAGAMENTO caiu?")
    chat.message(chat.at(third, 11), bruno, text="o pagamento caiu?")
    # The 24-hour window's edge: exactly 24 hours later is a repeat, one second more is not.
    asked = chat.at(first, 8)
    for later in (0, DAY, 2 * DAY + 1):
        chat.message(asked + later, carla, text="Tem reunião hoje?")
    # A tab is whitespace to the SQL, a non-breaking space is text (in Athena and DuckDB alike): these are
    # two questions, not a repeat. `str.split()` would take them for one.
    chat.message(chat.at(third, 14), SPACING_USER, text="Aceita cartão de crédito?")
    chat.message(chat.at(third, 14, 10), SPACING_USER, text="aceita\u00a0cartão\tde crédito?")
    # An edit that arrives the next day is activity on that day, not a new message.
    late = chat.message(chat.at(first, 23), carla, text="até já")
    chat.edit(late, chat.at(second, 1), "até já!")
    # Not questions, not people.
    for offset, text in enumerate(NOT_QUESTIONS):
        chat.message(chat.at(second, 15, offset), ana, text=text)
    chat.message(chat.at(second, 16), ANONYMOUS_ADMIN, text="Regras do grupo?", is_bot=True)
    chat.channel_post(chat.at(second, 17), "Novidade no canal?")


def _later_weeks(chat: _Chat, last_day: date) -> None:
    """Four ISO weeks after the random days (weeks 1 to 4 below; week 0 holds the last random day)."""
    monday = last_day - timedelta(days=last_day.weekday())

    def day(week: int, weekday: int) -> date:  # ISO weekday: 1 = Monday ... 7 = Sunday
        return monday + timedelta(weeks=week, days=weekday - 1)

    olga, pablo, quiteria = NEWCOMERS.items()
    ana, bruno = ((user_id, PEOPLE[user_id]) for user_id in (101, 102))
    # Olga first writes on a Sunday night (Monday in UTC west of Greenwich), in the other group; skips week 2
    # and comes back in week 3.
    chat.message(chat.at(day(1, 7), 22, 30), olga, text="oi, sou nova aqui", chat=OTHER_CHAT)
    chat.message(chat.at(day(3, 2), 9), olga, kind="voice")
    # Pablo joins in week 1 (a service message: not writing), first writes in week 2, and never again.
    chat.message(chat.at(day(1, 3), 12), pablo, kind="service")
    chat.message(chat.at(day(2, 4), 18), pablo, text="alguém tem o link?")
    # Quitéria first writes at the very start of week 2 and stays, sending every kind of message.
    chat.message(chat.at(day(2, 1), 0, 0, 0), quiteria, text="bom dia!")
    for week, weekday, kind in ((2, 3, "photo"), (2, 5, "video"), (3, 1, "document"), (3, 4, "poll")):
        chat.message(chat.at(day(week, weekday), 15), quiteria, kind=kind)
    # The old members: Ana writes again in week 3 (in private with the bot, too); Bruno's only activity in
    # week 2 is an edit, and he writes in the other group in week 4.
    chat.message(chat.at(day(3, 3), 10), ana, kind="sticker")
    chat.message(chat.at(day(3, 3), 11), ana, text="/help", command="/help", chat=PRIVATE_CHAT)
    original = chat.message(chat.at(day(0, 1), 9), bruno, text="até semana que vem")
    chat.edit(original, chat.at(day(2, 2), 9), "até semana que vem!")
    chat.message(chat.at(day(4, 3), 20), bruno, text="voltei", chat=OTHER_CHAT)
    # Not writers: the bot, and a sender without an id (Telegram never sends one; the ETL keeps a missing
    # field as null), in week 3.
    chat.message(chat.at(day(3, 5), 8), BOT, kind="photo", is_bot=True)
    chat.message(chat.at(day(3, 6), 12), (None, None), text="sem remetente")
    # The group is renamed on the Monday of week 4: its later messages carry the new title, except the last
    # one, which lacks the field (the newest title stays the one Telegram last sent).
    renamed_at = chat.at(day(4, 1), 9)
    chat.message(renamed_at, quiteria, text="gostei do nome novo", chat=RENAMED_CHAT)
    for weekday, kind in ((2, "video_note"), (2, "animation"), (6, "location")):
        chat.message(chat.at(day(4, weekday), 15), quiteria, kind=kind, chat=RENAMED_CHAT)
    chat.message(chat.at(day(4, 7), 21), ana, kind="dice", chat=(CHAT_ID, "supergroup", None))
    # Quitéria has a last name, and a new username from week 4: members are named as on their latest message.
    for event in chat.events:
        if event["user_id"] == quiteria[0]:
            username = "quiteria_s" if event["date"] >= renamed_at else "quiteria"
            event.update(user_last_name="Souza", user_username=username)


def write_lake(rows: list[dict[str, Any]], root: Path) -> Path:
    """One Parquet per day under `root`, at the ETL's key: `root` looks like the enriched bucket."""
    schema = arrow_schema()
    for day in sorted({row["context_date"] for row in rows}):
        day_rows = sorted((row for row in rows if row["context_date"] == day), key=lambda row: row["update_id"])
        path = root / enriched_key(day)
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist([{name: row[name] for name in COLUMN_NAMES} for row in day_rows], schema=schema)
        pq.write_table(table, path)
    return root

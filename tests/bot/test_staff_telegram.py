"""The staff group in Telegram end to end: the real python-telegram-bot client, the fake Bot API.

A customer complains in a private chat, the ticket's card appears in the staff group, staff
answer by replying to it and the answer reaches the customer through the outbox; the
customer's next message lands in the same thread; resolving sends the note and the rating
question. Outsiders are refused, bursts become digests, and a reply handled while the bot
restarts reaches the customer exactly once. Every test runs on SQLite and PostgreSQL; time
moves only through the ManualClock.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from bot import tickets
from bot.channels.telegram import TelegramChannel
from bot.channels.telegram_poller import TelegramPoller, build_poller
from bot.clock import ManualClock
from bot.config import Settings
from bot.engine import Engine
from bot.staff.notifier import StaffNotifier
from bot.staff.telegram import TelegramStaffChat
from bot.storage.database import Database
from bot.storage.models import (
    ChannelIdentity,
    Customer,
    OutboxMessage,
    ServiceRecord,
    Staff,
    StaffNotice,
    StaffPost,
    Ticket,
)
from dialogs.rating import ticket_question
from dialogs.texts import t
from dialogs.types import Inbound
from scheduler.dispatcher import Dispatcher
from tests.bot.test_telegram import telegram_settings
from tests.conftest import START
from tests.fakes.telegram_api import MAX_TEXT_LENGTH, FakeTelegramAPI
from tests.scheduler.processes import BotProcess, shared_database, wait_for

GROUP = -100777
ANNA = 1001
MARIA = 501  # a registered agent
STRANGER = 666  # in the group, not staff
COMPLAINT = "I want to make a complaint: the brakes squeal since your repair"


@dataclass
class Desk:
    """The bot's Telegram side as `concierge run` wires it, stepped by hand."""

    api: FakeTelegramAPI
    db: Database
    clock: ManualClock
    settings: Settings
    engine: Engine
    poller: TelegramPoller
    notifier: StaffNotifier
    dispatcher: Dispatcher

    async def poll(self) -> None:
        await self.poller.poll_once()
        await self.poller.replies.idle()

    async def post(self) -> int:
        return await self.notifier.drain()

    async def deliver(self) -> None:
        await self.dispatcher.dispatch_due()

    def group(self) -> list[str]:
        return [message.text for message in self.api.sent_to(GROUP)]


@pytest.fixture
async def desk(
    db: Database, clock: ManualClock, settings: Settings, telegram_api: FakeTelegramAPI
) -> AsyncIterator[Desk]:
    configured = telegram_settings(settings, telegram_api, staff_chat_id=str(GROUP))
    engine = Engine(db, clock, configured)
    poller = build_poller(engine, configured)
    async with poller.bot:
        chat = TelegramStaffChat(poller.bot)
        channels = {"telegram": TelegramChannel(poller.bot, clock)}
        yield Desk(
            telegram_api, db, clock, configured, engine, poller,
            StaffNotifier(db, clock, chat, configured),
            Dispatcher(db, clock, channels, configured),
        )  # fmt: skip
        await poller.replies.stop()


async def add_staff(db: Database, user_id: int, name: str, role: str = "agent") -> None:
    async with db.transaction() as session:
        session.add(Staff(name=name, role=role, telegram_user_id=str(user_id), created_at=START))


async def complain(desk: Desk, user_id: int = ANNA, name: str = "Anna") -> None:
    desk.api.push_text(user_id, COMPLAINT, first_name=name)
    await desk.poll()


async def events(db: Database, number: int) -> list[tuple[str, str]]:
    async with db.transaction() as session:
        return [(e.kind, e.actor) for e in await tickets.timeline(session, number)]


async def answers_queued(db: Database) -> int:
    async with db.transaction() as session:
        query = select(func.count()).where(OutboxMessage.dedupe_key.like("ticket:%:answer:%"))
        return (await session.scalar(query)) or 0


async def test_the_whole_loop_from_complaint_to_rating_question(desk: Desk) -> None:
    api, db = desk.api, desk.db
    await add_staff(db, MARIA, "Maria")
    async with db.transaction() as session:  # Anna is on file, with her last service
        anna = Customer(name="Anna Smith", on_file=True, created_at=START)
        session.add(anna)
        await session.flush()
        session.add(
            ChannelIdentity(
                channel="telegram",
                external_id=str(ANNA),
                chat_id=str(ANNA),
                customer_id=anna.id,
                created_at=START,
            )
        )
        session.add(ServiceRecord(customer_id=anna.id, kind="brake pads", performed_by="Joe",
                                  performed_at=date(2026, 4, 20), created_at=START))  # fmt: skip
    await complain(desk)
    assert "#1" in api.sent_to(ANNA)[-1].text

    assert await desk.post() == 1
    card = api.sent_to(GROUP)[-1]
    assert "Anna" in card.text
    assert "brake pads on 2026-04-20" in card.text
    assert "brakes squeal" in card.text
    assert [b["callback_data"] for b in card.inline_buttons] == ["take:1", "resolve:1"]

    api.push_button(MARIA, card.message_id, "take:1", first_name="Maria")
    api.push_group_text(MARIA, GROUP, "So sorry! Come by at 9, free of charge.",
                        reply_to=card.message_id, first_name="Maria")  # fmt: skip
    await desk.poll()
    assert api.button_answers[-1]["text"] == t("en", "staff.taken_button", number=1)
    await desk.deliver()
    assert api.sent_to(ANNA)[-1].text == "So sorry! Come by at 9, free of charge."

    api.push_text(ANNA, "Great, see you at 9", first_name="Anna")
    await desk.poll()
    await desk.post()
    taken, answer = api.sent_to(GROUP)[-2:]
    assert taken.text == t("en", "staff.taken", number=1, name="Maria")
    assert "see you at 9" in answer.text
    assert taken.reply_to == answer.reply_to == card.message_id  # one thread per ticket

    api.push_group_text(MARIA, GROUP, "/resolve 1 Pads replaced free of charge")
    await desk.poll()
    await desk.deliver()
    note, question = api.sent_to(ANNA)[-2:]
    assert note.text == t("en", "ticket.resolved", number=1, note="Pads replaced free of charge")
    assert question.text == ticket_question("en", number=1).text
    assert question.button_texts == list(ticket_question("en", number=1).buttons)
    await desk.post()
    assert api.sent_to(GROUP)[-1].reply_to == card.message_id
    kinds = [kind for kind, _ in await events(db, 1)]
    assert kinds == ["created", "assigned", "staff_message", "customer_message", "resolved",
                     "rating_requested"]  # fmt: skip


async def test_outsiders_are_refused_and_it_is_on_the_timeline(desk: Desk) -> None:
    api, db = desk.api, desk.db
    await add_staff(db, 502, "Mark", role="marketing")
    await complain(desk)
    await desk.post()
    card = api.sent_to(GROUP)[-1]
    before = len(api.sent_to(ANNA))

    api.push_group_text(STRANGER, GROUP, "no refunds, lol", reply_to=card.message_id)
    api.push_button(STRANGER, card.message_id, "take:1")
    api.push_button(STRANGER, card.message_id, "resolve:1")
    api.push_group_text(502, GROUP, "/resolve 1 nothing to do")  # staff, but not for tickets
    await desk.poll()
    await desk.deliver()
    await desk.post()

    assert len(api.sent_to(ANNA)) == before
    assert await answers_queued(db) == 0
    assert [a["text"] for a in api.button_answers] == [t("en", "staff.refused")] * 2
    assert all(a["show_alert"] is True for a in api.button_answers)
    assert len(api.sent_to(GROUP)) == 1  # outsiders get no answer in the group
    async with db.transaction() as session:
        ticket = await session.get(Ticket, 1)
        assert ticket is not None
        assert (ticket.status, ticket.assigned_to_id) == ("open", None)
    refused = [actor for kind, actor in await events(db, 1) if kind == "refused"]
    assert len(refused) == 4
    assert all(actor.startswith(f"telegram:{STRANGER}") for actor in refused[:3])


async def test_the_resolve_button_asks_for_a_note_until_the_customer_was_answered(
    desk: Desk,
) -> None:
    api = desk.api
    await add_staff(desk.db, MARIA, "Maria")
    await complain(desk)
    await desk.post()
    card = api.sent_to(GROUP)[-1]

    api.push_button(MARIA, card.message_id, "resolve:1")
    await desk.poll()
    assert api.button_answers[-1]["text"] == t("en", "staff.resolve_needs_note", number=1)

    api.push_group_text(MARIA, GROUP, "Fixed it on the spot.", reply_to=card.message_id)
    api.push_button(MARIA, card.message_id, "resolve:1")
    await desk.poll()
    await desk.deliver()
    assert api.button_answers[-1]["text"] == t("en", "staff.resolved_button", number=1)
    default = t("en", "ticket.resolved_default_note")
    texts = [m.text for m in api.sent_to(ANNA)]
    assert texts[-2] == t("en", "ticket.resolved", number=1, note=default)


async def burst(desk: Desk, count: int) -> None:
    """`count` customers complain at the same moment (through the engine)."""
    await asyncio.gather(
        *(
            desk.engine.handle(
                Inbound(channel="telegram", external_user_id=str(5000 + n),
                        chat_id=str(5000 + n), text=f"Complaint: my car {n} still rattles",
                        received_at=desk.clock.now(), display_name=f"Customer {n}",
                        message_id=f"{5000 + n}:1")
            )
            for n in range(count)
        )
    )  # fmt: skip


async def ticket_of(db: Database, chat_id: int) -> int:
    async with db.transaction() as session:
        number = await session.scalar(select(Ticket.id).where(Ticket.chat_id == str(chat_id)))
    assert number is not None
    return number


async def test_a_burst_becomes_digests_within_the_group_limit(desk: Desk) -> None:
    api = desk.api
    await add_staff(desk.db, MARIA, "Maria")
    await burst(desk, 150)

    posts = 0
    for _ in range(5):  # five seconds, a pass a second
        posts += await desk.post()
        desk.clock.advance(timedelta(seconds=1))
    digests = api.sent_to(GROUP)
    shown = {int(n) for d in digests for n in re.findall(r"^#(\d+) ", d.text, re.MULTILINE)}
    assert shown == set(range(1, 151))  # every ticket within seconds, none lost
    assert posts == len(digests) <= 3  # far below 20 a minute
    assert all(len(d.text) <= MAX_TEXT_LENGTH for d in digests)
    seventh = await ticket_of(desk.db, 5007)
    line = f"#{seventh} Customer 7: Complaint: my car 7 still rattles"
    assert any(line in d.text.splitlines() for d in digests)

    # A reply to a digest names its ticket; the next lone ticket gets its card at once.
    text = f"#{seventh} We will call you today."
    api.push_group_text(MARIA, GROUP, text, reply_to=digests[-1].message_id)
    await desk.poll()
    await desk.deliver()
    assert api.sent_to(5007)[-1].text == "We will call you today."
    await complain(desk)
    await desk.post()
    card = api.sent_to(GROUP)[-1]
    assert card.text.startswith("🆕 Ticket #151")
    assert card.inline_buttons

    # /ticket N posts N's card, to which its customer's messages then reply: a thread.
    eighth = await ticket_of(desk.db, 5008)
    api.push_group_text(MARIA, GROUP, f"/ticket {eighth}")
    await desk.poll()
    await desk.post()
    card8 = api.sent_to(GROUP)[-1]
    assert card8.text.startswith(f"🆕 Ticket #{eighth} ")
    assert card8.inline_buttons
    api.push_text(5008, "hello? anyone?")
    await desk.poll()
    await desk.post()
    assert api.sent_to(GROUP)[-1].reply_to == card8.message_id


async def test_a_staff_reply_handled_during_a_restart_reaches_the_customer_once(
    desk: Desk,
) -> None:
    api = desk.api
    await add_staff(desk.db, MARIA, "Maria")
    await complain(desk)
    await desk.poll()  # confirms the complaint
    await desk.post()
    card = api.sent_to(GROUP)[-1]
    update = api.push_group_text(MARIA, GROUP, "We'll call you.", reply_to=card.message_id)

    # The first poller commits the answer and dies before its next getUpdates confirms it ...
    crashed = build_poller(desk.engine, desk.settings)
    async with crashed.bot:
        assert await crashed.poll_once() == 1
        await crashed.replies.stop()
    # ... so the restarted one is given the same update again.
    restarted = build_poller(desk.engine, desk.settings)
    async with restarted.bot:
        assert await restarted.poll_once() == 1
        await restarted.poll_once()
        await restarted.replies.stop()
    await desk.deliver()
    await desk.deliver()

    assert [m.text for m in api.sent_to(ANNA)].count("We'll call you.") == 1
    assert await answers_queued(desk.db) == 1
    assert [kind for kind, _ in await events(desk.db, 1)].count("staff_message") == 1
    assert api.confirmed_offset == update["update_id"] + 1


async def test_a_reply_to_a_post_not_yet_recorded_still_reaches_the_customer(desk: Desk) -> None:
    api = desk.api
    await add_staff(desk.db, MARIA, "Maria")
    await complain(desk)
    await desk.post()
    card = api.sent_to(GROUP)[-1]
    async with desk.db.transaction() as session:  # as if the notifier had not committed yet
        await session.execute(delete(StaffPost))

    api.push_group_text(MARIA, GROUP, "On it!", reply_to=card.message_id)
    await desk.poll()
    await desk.deliver()

    assert api.sent_to(ANNA)[-1].text == "On it!"


async def notices(db: Database) -> list[tuple[str, str | None]]:
    async with db.transaction() as session:
        rows = await session.execute(
            select(StaffNotice.status, StaffNotice.error).order_by(StaffNotice.id)
        )
        return [(status, error) for status, error in rows]


async def test_429_waits_on_the_clock_network_errors_retry_400_fails(desk: Desk) -> None:
    api, clock = desk.api, desk.clock
    await complain(desk)
    api.fail_next(GROUP, status=429, retry_after=7)
    assert await desk.post() == 0
    clock.advance(timedelta(seconds=6))
    assert await desk.post() == 0  # still waiting out the 7 s
    clock.advance(timedelta(seconds=1))
    assert await desk.post() == 1

    await complain(desk, 1002, "Bob")
    api.fail_next(GROUP, status=502)
    assert await desk.post() == 0
    clock.advance(timedelta(seconds=1))
    assert await desk.post() == 1

    await complain(desk, 1003, "Carl")
    api.fail_next(GROUP, status=400, description="Bad Request: not enough rights")
    assert await desk.post() == 0
    outcome = await notices(desk.db)
    assert outcome[:2] == [("posted", None), ("posted", None)]
    assert outcome[2][0] == "failed"
    assert "not enough rights" in (outcome[2][1] or "").lower()
    assert len(api.sent_to(GROUP)) == 2


async def test_without_a_staff_group_notices_wait_and_go_out_once_it_is_set(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    unset = desk.settings.model_copy(update={"staff_chat_id": None})
    chat = TelegramStaffChat(desk.poller.bot)
    notifier = StaffNotifier(desk.db, desk.clock, chat, unset)
    await complain(desk)
    await complain(desk, 1002, "Bob")
    async with desk.db.transaction() as session:
        ticket = await session.get(Ticket, 1)
        await tickets.notify_staff(session, "escalation", "⏰ #1 needs you", desk.clock.now(),
                                   ticket, chat_id="501")  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="bot.staff.notifier"):
        assert await notifier.drain() == 1  # only the supervisor's private message
        assert await notifier.drain() == 0
    assert [m.text for m in desk.api.sent_to(501)] == ["⏰ #1 needs you"]
    assert sum("CONCIERGE_STAFF_CHAT_ID" in r.getMessage() for r in caplog.records) == 1

    assert await desk.post() == 2  # configured: both cards go out
    assert [status for status, _ in await notices(desk.db)] == ["posted"] * 3


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_a_real_bot_killed_after_a_staff_reply_delivers_it_once_after_restart(
    kind: str, tmp_path: Path, telegram_api: FakeTelegramAPI
) -> None:
    """`concierge run` as a business runs it: the card comes from the scheduler's notifier job,
    the reply is committed, then the process is SIGKILLed before it could send the answer."""
    async with shared_database(kind, tmp_path) as (url, database):
        await add_staff(database, MARIA, "Maria")
        first = BotProcess("first", tmp_path, url, telegram_api)
        first.env |= {"CONCIERGE_STAFF_CHAT_ID": str(GROUP), "CONCIERGE_DISPATCHER_INTERVAL": "60"}
        await first.start()
        try:
            telegram_api.push_text(ANNA, COMPLAINT, first_name="Anna")
            await wait_for(lambda: telegram_api.sent_to(GROUP), "the ticket's card")
            card = telegram_api.sent_to(GROUP)[0]
            assert [b["text"] for b in card.inline_buttons] == [
                t("en", "staff.button_take"),
                t("en", "staff.button_resolve"),
            ]
            telegram_api.push_group_text(MARIA, GROUP, "We'll call you.", reply_to=card.message_id)
            await wait_for(lambda: answers_queued(database), "the answer to be queued")
        finally:
            await first.kill()

        second = BotProcess("second", tmp_path, url, telegram_api)
        second.env |= {"CONCIERGE_STAFF_CHAT_ID": str(GROUP)}
        await second.start()
        try:

            def answered() -> int:
                return [m.text for m in telegram_api.sent_to(ANNA)].count("We'll call you.")

            await wait_for(answered, "the answer to reach the customer")
            await wait_for(lambda: not telegram_api.pending, "every update to be confirmed")
            await asyncio.sleep(1.0)  # room for a duplicate to show up, if there were one
        finally:
            await second.stop()
        assert answered() == 1
        assert await answers_queued(database) == 1

"""Complaints through the engine: a ticket with a number and an honest answer time, messages
routed to the live ticket, /human and the FAQ's button, reopening, and web visitors receiving
staff answers in their inbox. Both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from httpx import ASGITransport, AsyncClient
from sqlalchemy import select

from bot import tickets
from bot.channels.web_inbox import WebInbox
from bot.clock import ManualClock
from bot.config import Settings
from bot.engine import Engine
from bot.staff import cards
from bot.staff.actions import resolve
from bot.storage.database import Database
from bot.storage.models import Customer, Staff, StaffNotice, Ticket, TicketEvent
from bot.web.app import create_app
from dialogs.texts import t
from dialogs.types import Inbound
from scheduler.dispatcher import Dispatcher


async def say(engine: Engine, clock: ManualClock, text: str, user: str = "c1") -> list[str]:
    replies = await engine.handle(Inbound("web", user, user, text, clock.now()))
    return [reply.text for reply in replies]


async def met(engine: Engine, clock: ManualClock, user: str = "c1") -> None:
    await say(engine, clock, "hi", user)
    await say(engine, clock, "Anna", user)


async def only_ticket(db: Database) -> Ticket:
    async with db.sessions() as session:
        rows = list(await session.scalars(select(Ticket)))
    assert len(rows) == 1
    return rows[0]


async def events(db: Database, number: int) -> list[tuple[str, str, str]]:
    async with db.sessions() as session:
        rows = await session.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == number).order_by(TicketEvent.id)
        )
        return [(e.kind, e.actor, e.text) for e in rows]


async def notices(db: Database) -> list[tuple[str, str]]:
    async with db.sessions() as session:
        rows = await session.scalars(select(StaffNotice).order_by(StaffNotice.id))
        return [(n.kind, n.text) for n in rows]


async def test_a_complaint_opens_a_ticket_with_its_number_and_answer_time(
    engine: Engine, clock: ManualClock, db: Database
) -> None:
    await met(engine, clock)  # Friday 2026-05-01 10:00 UTC: staff are in (mon-fri 09-18)
    replies = await say(engine, clock, "I want to make a complaint, the car still rattles")
    ticket = await only_ticket(db)
    assert (ticket.kind, ticket.status, ticket.channel, ticket.chat_id) == (
        "complaint",
        "open",
        "web",
        "c1",
    )
    assert ticket.due_at == datetime(2026, 5, 1, 14, 0, tzinfo=UTC)  # 4 business hours
    assert replies[-2] == t("en", "ticket.sorry_complaint")
    assert replies[-1] == t("en", "ticket.opened_open_now", number=ticket.id, due="today at 14:00")
    kinds = [kind for kind, _ in await notices(db)]
    assert kinds == ["new_ticket"]
    async with db.sessions() as session:  # the card the staff notifier writes as it posts
        zone = engine.settings.business_hours.zone
        card = await cards.ticket_card(session, ticket, "en", zone)
    assert f"#{ticket.id}" in card
    assert "Anna" in card
    assert "still rattles" in card
    assert [(k, a) for k, a, _ in await events(db, ticket.id)] == [("created", "customer")]


async def test_outside_business_hours_the_customer_hears_when_staff_are_back(
    engine: Engine, clock: ManualClock, db: Database
) -> None:
    clock.advance(timedelta(hours=7))  # Friday 17:00: one hour left
    await met(engine, clock)
    clock.advance(timedelta(hours=3))  # Friday 20:00: closed until Monday
    replies = await say(engine, clock, "我要投诉，你们的服务太差了")
    ticket = await only_ticket(db)
    assert ticket.language == "zh"
    assert ticket.due_at == datetime(2026, 5, 4, 13, 0, tzinfo=UTC)  # Monday 09:00 + 4 h
    assert replies[-1] == t(
        "zh",
        "ticket.opened_closed_now",
        number=ticket.id,
        back="5月4日 星期一 09:00",
        due="5月4日 星期一 13:00",
    )


async def test_while_a_ticket_is_live_messages_go_to_it_and_the_customer_is_told_once(
    engine: Engine, clock: ManualClock, db: Database
) -> None:
    await met(engine, clock)
    await say(engine, clock, "This is unacceptable, I want to speak to a manager")
    ticket = await only_ticket(db)
    first = await say(engine, clock, "when do you open?")  # not answered by the FAQ now
    second = await say(engine, clock, "the invoice number is 4711")
    assert first == [t("en", "ticket.routed", number=ticket.id)]
    assert second == []
    texts = [text for kind, _, text in await events(db, ticket.id) if kind == "customer_message"]
    assert texts == ["when do you open?", "the invoice number is 4711"]
    kinds = [kind for kind, _ in await notices(db)]
    assert kinds == ["new_ticket", "customer_message", "customer_message"]
    # Commands still work while the ticket is live.
    assert "/human" in (await say(engine, clock, "/help"))[-1]


async def test_human_command_and_faq_button_open_a_request_for_a_person(
    engine: Engine, clock: ManualClock, db: Database
) -> None:
    await met(engine, clock)
    await say(engine, clock, t("en", "faq.talk_to_person"))
    ticket = await only_ticket(db)
    assert ticket.kind == "human"
    again = await say(engine, clock, "/human")
    assert again == [t("en", "ticket.already_open", number=ticket.id)]
    await only_ticket(db)  # still one ticket


async def test_neutral_questions_and_praise_open_no_ticket(
    engine: Engine, clock: ManualClock, db: Database
) -> None:
    await met(engine, clock)
    for text in ("how much is an oil change?", "thanks, no complaints at all", "你们几点开门"):
        await say(engine, clock, text)
    async with db.sessions() as session:
        assert list(await session.scalars(select(Ticket))) == []


async def staff_answer(
    db: Database, clock: ManualClock, number: int, text: str, resolution: str | None = None
) -> None:
    """Bo (agent) answers ticket `number`, and resolves it when a resolution is given."""
    async with db.transaction() as session:
        staff = Staff(name="Bo", role="agent", created_at=clock.now())
        session.add(staff)
        await session.flush()
        row = await session.get_one(Ticket, number)
        await tickets.answer(session, row, staff, text, clock.now())
        if resolution is not None:
            await resolve(session, row, f"staff:{staff.id}", resolution, clock.now())


async def resolved_ticket(engine: Engine, clock: ManualClock, db: Database) -> Ticket:
    await met(engine, clock)
    await say(engine, clock, "I am very unhappy, the brakes squeak after your repair")
    ticket = await only_ticket(db)
    await staff_answer(db, clock, ticket.id, "Please come by tomorrow.", "We replaced the pads.")
    return ticket


async def test_a_customer_answer_puts_a_waiting_ticket_back_in_staff_hands(
    engine: Engine, clock: ManualClock, db: Database
) -> None:
    await met(engine, clock)
    await say(engine, clock, "I want to make a complaint about the bill")
    ticket = await only_ticket(db)
    await staff_answer(db, clock, ticket.id, "Could you send us a photo of the invoice?")
    assert (await only_ticket(db)).status == "waiting"

    clock.advance(timedelta(minutes=10))
    await say(engine, clock, "Sure, here it is: invoice 2041, charged twice")

    answered = await only_ticket(db)
    assert answered.status == "assigned"  # Bo took it by answering; it is his turn again
    assert [kind for kind, _, _ in await events(db, ticket.id)][-1] == "customer_message"
    assert [k for k, _ in await notices(db)][-1] == "customer_message"


async def test_still_not_fixed_within_a_week_reopens_the_ticket(
    engine: Engine, clock: ManualClock, db: Database
) -> None:
    ticket = await resolved_ticket(engine, clock, db)
    clock.advance(timedelta(days=3))
    replies = await say(engine, clock, "the noise is still there, it's not fixed")
    assert replies[-1] == t("en", "ticket.reopened", number=ticket.id)
    reopened = await only_ticket(db)
    assert (reopened.status, reopened.reopened_count) == ("assigned", 1)
    kinds = [kind for kind, _, _ in await events(db, ticket.id)]
    assert kinds[-1] == "reopened"
    assert [k for k, _ in await notices(db)][-1] == "reopened"


async def test_after_the_reopening_window_a_new_complaint_is_a_new_ticket(
    engine: Engine, clock: ManualClock, db: Database
) -> None:
    ticket = await resolved_ticket(engine, clock, db)
    clock.advance(timedelta(days=8))
    replies = await say(engine, clock, "still not fixed")
    async with db.sessions() as session:
        old, new = await session.scalars(select(Ticket).order_by(Ticket.id))
    assert old.id == ticket.id
    assert old.status in ("resolved", "closed")  # left as it was, not reopened
    assert new.status == "open"
    assert any(f"#{new.id}" in reply for reply in replies)


async def test_erasing_the_customer_erases_their_tickets(
    engine: Engine, clock: ManualClock, db: Database
) -> None:
    await met(engine, clock)
    await say(engine, clock, "I want to file a complaint")
    await say(engine, clock, "/forget")
    await say(engine, clock, t("en", "forget.yes_button"))
    async with db.sessions() as session:
        assert list(await session.scalars(select(Customer))) == []
        assert list(await session.scalars(select(Ticket))) == []
        assert list(await session.scalars(select(TicketEvent))) == []
        assert list(await session.scalars(select(StaffNotice))) == []


async def test_a_web_visitor_reads_the_staff_answer_in_the_inbox(
    engine: Engine, clock: ManualClock, db: Database, settings: Settings
) -> None:
    await met(engine, clock)
    await say(engine, clock, "I need to talk to a human please")
    ticket = await only_ticket(db)
    await staff_answer(db, clock, ticket.id, "Hi Anna, Bo here. How can I help?")
    dispatcher = Dispatcher(db, clock, {"web": WebInbox(db, clock)}, settings)
    await dispatcher.dispatch_due()
    assert dispatcher.stats.sent == 1
    app = create_app(engine)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        first = (await client.get("/api/chat/inbox", params={"session": "c1"})).json()
        texts = [m["text"] for m in first["messages"]]
        assert texts == ["Hi Anna, Bo here. How can I help?"]
        after = first["messages"][-1]["id"]
        again = await client.get("/api/chat/inbox", params={"session": "c1", "after": after})
        assert again.json() == {"messages": []}
        other = await client.get("/api/chat/inbox", params={"session": "someone-else"})
        assert other.json() == {"messages": []}
        bad = await client.get("/api/chat/inbox", params={"session": "c1", "after": -1})
        assert bad.status_code == 422
        assert bad.json() == {"error": "after: must be a whole number, 0 or more"}

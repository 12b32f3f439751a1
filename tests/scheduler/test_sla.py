"""SLA and escalation with an injected clock: business hours, answered tickets, the second
level, repeated and concurrent ticks, the notices supervisors get, and closing resolved tickets."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot import tickets
from bot.clock import ManualClock
from bot.config import Settings
from bot.engine import Engine
from bot.staff import actions
from bot.staff.roster import add_staff
from bot.storage.database import Database
from bot.storage.models import Staff, StaffNotice, Ticket, TicketEvent
from dialogs.types import Inbound
from scheduler.runtime import ProactiveRuntime
from scheduler.sla import SlaReport, check_tickets

FRIDAY_17 = datetime(2026, 5, 1, 17, 0, tzinfo=UTC)  # business hours mon-fri 09-18, UTC
SATURDAY_NOON = datetime(2026, 5, 2, 12, 0, tzinfo=UTC)
MONDAY_NOON = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)  # Friday 17:00 + 4 business hours
TUESDAY_17 = datetime(2026, 5, 5, 17, 0, tzinfo=UTC)  # Friday 17:00 + 2 working days
NOTHING = SlaReport(escalated=0, closed=0)
ONE = SlaReport(escalated=1, closed=0)


def at(clock: ManualClock, moment: datetime) -> None:
    clock.advance(moment - clock.now())


async def complain(engine: Engine, clock: ManualClock, chat: int = 42, name: str = "Anna") -> int:
    """A customer complains in chat; returns the ticket number."""
    await engine.handle(
        Inbound("telegram", str(chat), str(chat), "I want to make a complaint", clock.now(), name)
    )
    async with engine.database.sessions() as session:
        number = await session.scalar(select(Ticket.id).order_by(Ticket.id.desc()).limit(1))
    assert number is not None
    return number


async def register(db: Database, now: datetime) -> dict[str, Staff]:
    """Supervisors with and without Telegram, an agent, and a removed supervisor."""
    people: dict[str, Staff] = {}
    async with db.transaction() as session:
        for name, role, user_id, username in (
            ("Sam", actions.Role.SUPERVISOR, "501", "sam_boss"),
            ("Lee", actions.Role.SUPERVISOR, None, None),
            ("Ada", actions.Role.AGENT, "502", "ada"),
            ("Old", actions.Role.SUPERVISOR, "503", "old_boss"),
        ):
            people[name], _ = await add_staff(
                session, name=name, role=role, now=now, telegram_user_id=user_id, username=username
            )
        people["Old"].removed_at = now
    return people


async def notices(db: Database) -> list[StaffNotice]:
    async with db.sessions() as session:
        rows = await session.scalars(
            select(StaffNotice).where(StaffNotice.kind == "escalation").order_by(StaffNotice.id)
        )
        return list(rows)


async def escalations(db: Database, number: int) -> list[TicketEvent]:
    async with db.sessions() as session:
        return [e for e in await tickets.timeline(session, number) if e.kind == "escalated"]


async def test_a_friday_evening_complaint_is_escalated_on_monday_at_noon_not_at_the_weekend(
    db: Database, clock: ManualClock, settings: Settings, engine: Engine
) -> None:
    at(clock, FRIDAY_17)
    number = await complain(engine, clock)
    people = await register(db, clock.now())

    for moment in (
        FRIDAY_17 + timedelta(minutes=1),
        SATURDAY_NOON,
        MONDAY_NOON - timedelta(minutes=1),
    ):
        at(clock, moment)
        assert await check_tickets(db, clock, settings) == NOTHING
    at(clock, MONDAY_NOON)
    assert await check_tickets(db, clock, settings) == ONE
    assert await check_tickets(db, clock, settings) == NOTHING  # a repeated tick
    at(clock, MONDAY_NOON + timedelta(minutes=7))
    assert await check_tickets(db, clock, settings) == NOTHING  # a late one

    reason = "no answer from staff yet; it was due Mon 2026-05-04 12:00"
    group, direct = await notices(db)
    assert (group.chat_id, group.ticket_id, group.status) == (None, number, "queued")
    assert group.text == (
        f"⏰ Escalation (level 1): ticket #{number} · complaint · Anna: {reason}. "
        "@sam_boss, Lee, please see to it."
    )
    assert direct.chat_id == "501"  # only the supervisor with Telegram; not the agent, not Old
    assert direct.text == (
        f"⏰ Ticket #{number} (complaint, Anna) needs a supervisor (level 1): {reason}.\n"
        "“I want to make a complaint”\nThe ticket is in the staff group."
    )
    [event] = await escalations(db, number)
    assert (event.at, event.actor, event.text) == (MONDAY_NOON, "system", reason)
    assert event.data == {
        "level": 1,
        "reason": "unanswered",
        "supervisors": [people["Sam"].id, people["Lee"].id],
        "direct": [people["Sam"].id],
    }
    async with db.sessions() as session:
        ticket = await tickets.get(session, number)
    assert ticket.escalation_level == 1


async def test_an_answered_ticket_is_not_escalated_until_the_second_level(
    db: Database, clock: ManualClock, settings: Settings, engine: Engine
) -> None:
    at(clock, FRIDAY_17)
    number = await complain(engine, clock)
    people = await register(db, clock.now())
    at(clock, MONDAY_NOON - timedelta(hours=2))
    async with db.transaction() as session:
        ticket = await tickets.get(session, number)
        await tickets.answer(session, ticket, people["Ada"], "We're on it.", clock.now())
        assert ticket.status == tickets.Status.WAITING

    at(clock, MONDAY_NOON)
    assert await check_tickets(db, clock, settings) == NOTHING
    at(clock, TUESDAY_17 - timedelta(minutes=1))
    assert await check_tickets(db, clock, settings) == NOTHING
    at(clock, TUESDAY_17)
    assert await check_tickets(db, clock, settings) == ONE
    assert await check_tickets(db, clock, settings) == NOTHING

    [event] = await escalations(db, number)
    assert event.data["level"] == 2
    assert event.data["reason"] == "unresolved"
    assert event.text == "still not resolved 4 days after Fri 2026-05-01 17:00"
    group = (await notices(db))[0]
    assert group.text.startswith(f"⏰ Escalation (level 2): ticket #{number} · complaint · Anna")


async def test_an_unanswered_ticket_climbs_both_levels_and_a_late_tick_sends_only_the_highest(
    db: Database, clock: ManualClock, settings: Settings, engine: Engine
) -> None:
    at(clock, FRIDAY_17)
    first = await complain(engine, clock, chat=42)
    second = await complain(engine, clock, chat=43, name="Bob")
    await register(db, clock.now())

    at(clock, MONDAY_NOON)
    assert await check_tickets(db, clock, settings) == SlaReport(escalated=2, closed=0)
    at(clock, TUESDAY_17)
    assert await check_tickets(db, clock, settings) == SlaReport(escalated=2, closed=0)
    assert [e.data["level"] for e in await escalations(db, first)] == [1, 2]

    at(clock, datetime(2026, 5, 11, 9, 0, tzinfo=UTC))  # the scheduler was down for a week
    third = await complain(engine, clock, chat=44, name="Cy")
    at(clock, datetime(2026, 5, 18, 9, 0, tzinfo=UTC))
    assert await check_tickets(db, clock, settings) == ONE
    assert [e.data["level"] for e in await escalations(db, third)] == [2]
    assert [e.data["level"] for e in await escalations(db, second)] == [1, 2]


async def test_concurrent_ticks_escalate_once(
    db: Database, clock: ManualClock, settings: Settings, engine: Engine
) -> None:
    at(clock, FRIDAY_17)
    number = await complain(engine, clock)
    await register(db, clock.now())
    at(clock, MONDAY_NOON)

    reports = await asyncio.gather(*(check_tickets(db, clock, settings) for _ in range(4)))

    assert sum(report.escalated for report in reports) == 1
    assert len(await escalations(db, number)) == 1
    assert len(await notices(db)) == 2


async def test_without_supervisors_or_direct_messages_the_group_alone_is_told(
    db: Database, clock: ManualClock, settings: Settings, engine: Engine
) -> None:
    at(clock, FRIDAY_17)
    number = await complain(engine, clock)
    quiet = settings.model_copy(update={"supervisor_direct_messages": False})
    at(clock, MONDAY_NOON)

    assert await check_tickets(db, clock, quiet) == ONE

    [group] = await notices(db)
    assert group.chat_id is None
    assert group.text.endswith(
        "No supervisor is registered: add one with `concierge staff add NAME --role supervisor`."
    )
    [event] = await escalations(db, number)
    assert event.data["supervisors"] == []
    assert event.data["direct"] == []


async def test_a_reopened_ticket_gets_a_fresh_deadline_and_resolved_ones_close_after_a_week(
    db: Database, clock: ManualClock, settings: Settings, engine: Engine
) -> None:
    at(clock, FRIDAY_17)
    number = await complain(engine, clock)
    rules = tickets.queue_rules(settings)
    at(clock, datetime(2026, 5, 4, 10, 0, tzinfo=UTC))
    async with db.transaction() as session:
        await actions.resolve(
            session, await tickets.get(session, number), "cli", "Fixed.", clock.now()
        )
    at(clock, datetime(2026, 5, 8, 10, 0, tzinfo=UTC))  # Friday, a week after opening
    async with db.transaction() as session:
        await tickets.reopen(
            session, await tickets.get(session, number), "still broken", clock.now(), rules
        )

    assert await check_tickets(db, clock, settings) == NOTHING  # not "a week old": reopened now
    at(clock, datetime(2026, 5, 8, 14, 0, tzinfo=UTC))
    assert await check_tickets(db, clock, settings) == ONE  # 4 business hours after reopening
    at(clock, datetime(2026, 5, 12, 9, 59, tzinfo=UTC))
    assert await check_tickets(db, clock, settings) == NOTHING
    at(clock, datetime(2026, 5, 12, 10, 0, tzinfo=UTC))  # two working days after reopening
    assert await check_tickets(db, clock, settings) == ONE

    async with db.transaction() as session:
        await actions.resolve(
            session, await tickets.get(session, number), "cli", "Fixed!", clock.now()
        )
    at(clock, datetime(2026, 5, 19, 9, 59, tzinfo=UTC))
    assert await check_tickets(db, clock, settings) == NOTHING
    at(clock, datetime(2026, 5, 19, 10, 1, tzinfo=UTC))
    assert await check_tickets(db, clock, settings) == SlaReport(escalated=0, closed=1)
    assert await check_tickets(db, clock, settings) == NOTHING
    async with db.sessions() as session:
        events = await tickets.timeline(session, number)
        assert (await tickets.get(session, number)).status == tickets.Status.CLOSED
    assert (events[-1].kind, events[-1].actor) == ("closed", "system")


async def test_the_runtime_checks_tickets_every_minute(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    job = ProactiveRuntime(db, clock, settings, {})._scheduler().get_job("sla")
    assert job is not None
    assert job.trigger.interval == timedelta(minutes=1)

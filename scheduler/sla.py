"""SLA and escalation: tickets nobody answered in time, or nobody solved, climb to supervisors.

Every minute the leader process looks at the live tickets. One with no staff answer by its due
time (`ticket_sla` business time after it opened) is escalated to level 1; one still not
resolved `ticket_second_escalation` (in working days) after it opened or was last reopened,
answered or not, to level 2. An escalation is a staff-group notice mentioning the supervisors,
a notice to each supervisor's private chat with the bot (when `supervisor_direct_messages`)
and an `escalated` event on the ticket's timeline, written in one transaction that first moves
`escalation_level` up with a conditional UPDATE: a repeated, late or concurrent tick finds the
level taken and does nothing. A ticket waiting for the customer is not "unanswered": staff did
answer it. The same sweep closes resolved tickets past the reopening window.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import tickets
from bot.clock import Clock
from bot.config import Settings
from bot.locks import lock_across_processes
from bot.staff import cards
from bot.storage.database import Database
from bot.storage.models import Staff, Ticket, TicketEvent
from dialogs.texts import duration, t
from dialogs.types import Language

log = logging.getLogger(__name__)

SLA_CHECK = timedelta(minutes=1)
CLOSING_LOCK = "concierge-ticket-closing"
SUBJECT_LIMIT = 300  # characters of the customer's words quoted in a direct message


class Reason(StrEnum):
    UNANSWERED = "unanswered"  # level 1: no staff answer by the due time
    UNRESOLVED = "unresolved"  # level 2: not resolved long after opening, answered or not


@dataclass(frozen=True, slots=True)
class Escalation:
    """Ticket `ticket_id` is due to climb from `from_level` to `level`."""

    ticket_id: int
    level: int
    reason: Reason
    from_level: int
    live_since: datetime  # opened, or last reopened


@dataclass(frozen=True, slots=True)
class SlaReport:
    escalated: int
    closed: int


def second_deadline(live_since: datetime, rules: tickets.QueueRules) -> datetime:
    """When a ticket live since `live_since` climbs to level 2: `second_escalation` counted in
    working days ("2 days" is two full working days of business time), so a Friday evening
    complaint reaches supervisors on Tuesday evening, not on Sunday when nobody is in."""
    hours = rules.hours
    workday = datetime.combine(date.min, hours.closes) - datetime.combine(date.min, hours.opens)
    span = rules.second_escalation
    return hours.add(live_since, span.days * workday + (span - timedelta(days=span.days)))


def escalation_due(
    ticket: Ticket, live_since: datetime, now: datetime, rules: tickets.QueueRules
) -> Escalation | None:
    """The escalation `ticket` is due for at `now`, if any; the highest level only, so a
    tick late by days sends one escalation, not two at once."""
    if ticket.status not in tickets.LIVE:
        return None
    level = ticket.escalation_level
    if level < 2 and now >= second_deadline(live_since, rules):
        return Escalation(ticket.id, 2, Reason.UNRESOLVED, level, live_since)
    if level < 1 and ticket.first_response_at is None and now >= ticket.due_at:
        return Escalation(ticket.id, 1, Reason.UNANSWERED, level, live_since)
    return None


async def due_escalations(
    session: AsyncSession, now: datetime, rules: tickets.QueueRules
) -> list[Escalation]:
    """Live tickets due for an escalation now, oldest first."""
    candidates = list(
        await session.scalars(
            select(Ticket)
            .where(
                Ticket.status.in_(tickets.LIVE),
                or_(
                    and_(
                        Ticket.escalation_level < 1,
                        Ticket.first_response_at.is_(None),
                        Ticket.due_at <= now,
                    ),
                    # A superset: business time never passes faster than calendar time, and a
                    # reopened ticket's reopening time decides below.
                    and_(
                        Ticket.escalation_level < 2,
                        Ticket.opened_at <= now - rules.second_escalation,
                    ),
                ),
            )
            .order_by(Ticket.id)
        )
    )
    reopened = [ticket.id for ticket in candidates if ticket.reopened_count]
    reopened_at: dict[int, datetime] = {}
    if reopened:
        rows = await session.execute(
            select(TicketEvent.ticket_id, func.max(TicketEvent.at))
            .where(TicketEvent.ticket_id.in_(reopened), TicketEvent.kind == "reopened")
            .group_by(TicketEvent.ticket_id)
        )
        reopened_at = {number: at for number, at in rows}
    due = (
        escalation_due(ticket, reopened_at.get(ticket.id, ticket.opened_at), now, rules)
        for ticket in candidates
    )
    return [escalation for escalation in due if escalation is not None]


async def supervisors(session: AsyncSession) -> list[Staff]:
    rows = await session.scalars(
        select(Staff)
        .where(Staff.role == "supervisor", Staff.removed_at.is_(None))
        .order_by(Staff.id)
    )
    return list(rows)


def mention(staff: Staff) -> str:
    """@username when known (Telegram then notifies them), else the name."""
    return f"@{staff.telegram_username.lstrip('@')}" if staff.telegram_username else staff.name


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%a %Y-%m-%d %H:%M")


def reason_text(
    escalation: Escalation, ticket: Ticket, now: datetime, language: Language, zone: ZoneInfo
) -> str:
    if escalation.reason is Reason.UNANSWERED:
        return t(language, "staff.escalation_unanswered", due=_local(ticket.due_at, zone))
    return t(
        language,
        "staff.escalation_unresolved",
        age=duration(now - escalation.live_since, language),
        since=_local(escalation.live_since, zone),
    )


async def _claim(session: AsyncSession, escalation: Escalation, now: datetime) -> bool:
    """Move the ticket to the escalation's level unless someone (a tick, an answer) got there
    first. On PostgreSQL a concurrent UPDATE waits for this one and then matches no row."""
    conditions = [
        Ticket.id == escalation.ticket_id,
        Ticket.escalation_level == escalation.from_level,
        Ticket.status.in_(tickets.LIVE),
    ]
    if escalation.reason is Reason.UNANSWERED:
        conditions += [Ticket.first_response_at.is_(None), Ticket.due_at <= now]
    result = await session.execute(
        update(Ticket)
        .where(*conditions)
        .values(escalation_level=escalation.level)
        .execution_options(synchronize_session=False)
    )
    return cast(CursorResult[Any], result).rowcount == 1


async def escalate(
    session: AsyncSession,
    escalation: Escalation,
    now: datetime,
    rules: tickets.QueueRules,
    direct_messages: bool,
) -> bool:
    """The escalation's notices and timeline event, if this call claimed it; else nothing."""
    if not await _claim(session, escalation, now):
        return False
    ticket = await tickets.get(session, escalation.ticket_id)
    language, zone = rules.staff_language, rules.hours.zone
    reason = reason_text(escalation, ticket, now, language, zone)
    bosses = await supervisors(session)
    values = {
        "level": escalation.level,
        "number": ticket.id,
        "kind": t(language, f"staff.kind_{ticket.kind}"),
        "customer": await cards.customer_name(session, ticket.customer_id),
        "reason": reason,
    }
    if bosses:
        mentions = ", ".join(mention(boss) for boss in bosses)
        group = t(language, "staff.escalation_group", supervisors=mentions, **values)
    else:
        group = t(language, "staff.escalation_group_nobody", **values)
    await tickets.notify_staff(session, "escalation", group, now, ticket)
    reached: Sequence[Staff] = (
        [boss for boss in bosses if boss.telegram_user_id] if direct_messages else []
    )
    subject = textwrap.shorten(ticket.subject, SUBJECT_LIMIT, placeholder="…")
    for boss in reached:
        text = t(language, "staff.escalation_direct", subject=subject, **values)
        await tickets.notify_staff(
            session, "escalation", text, now, ticket, chat_id=boss.telegram_user_id
        )
    tickets.record(
        session,
        ticket,
        "escalated",
        tickets.ACTOR_SYSTEM,
        now,
        reason,
        level=escalation.level,
        reason=str(escalation.reason),
        supervisors=[boss.id for boss in bosses],
        direct=[boss.id for boss in reached],
    )
    log.warning("ticket #%d escalated to level %d: %s", ticket.id, escalation.level, reason)
    return True


async def check_tickets(database: Database, clock: Clock, settings: Settings) -> SlaReport:
    """The sweep: close what is past reopening, then escalate what is due, one ticket per
    transaction (so concurrent ticks never wait on each other's locks in opposite orders)."""
    now = clock.now()
    rules = tickets.queue_rules(settings)
    async with database.transaction() as session:
        if database.dialect == "postgresql":
            # Concurrent sweeps close one after the other; the second finds nothing left.
            await lock_across_processes(session, CLOSING_LOCK)
        closed = await tickets.close_resolved(session, now, rules.reopen_window)
    async with database.sessions() as session:
        due = await due_escalations(session, now, rules)
    escalated = 0
    for escalation in due:
        async with database.transaction() as session:
            done = await escalate(
                session, escalation, now, rules, settings.supervisor_direct_messages
            )
        escalated += done
    if closed:
        log.info("closed %d resolved tickets past the reopening window", closed)
    return SlaReport(escalated=escalated, closed=closed)

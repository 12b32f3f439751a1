"""The human queue: tickets, their audit trail, and what customers and staff do with them.

Every change to a ticket is one function here, called inside the caller's transaction, and
writes a `TicketEvent` (time, actor, what happened) next to the change, so the timeline that
`concierge tickets show` prints is complete by construction. Whatever staff must see is queued
as a `StaffNotice` in the same transaction (the staff notifier posts it); whatever the customer
must read goes through the outbox. Nothing is posted or sent from here directly, so a crash
anywhere loses nothing: the rows are either all committed or none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.business_hours import BusinessHours
from bot.config import Settings
from bot.staff import cards
from bot.storage.models import (
    OutboxMessage,
    RatingRequest,
    Staff,
    StaffNotice,
    Ticket,
    TicketEvent,
)
from dialogs.types import Language, TicketView
from scheduler.outbox import OutboxEntry, enqueue
from scheduler.policy import Category

ACTOR_CUSTOMER = "customer"
ACTOR_SYSTEM = "system"


class Status(StrEnum):
    OPEN = "open"
    ASSIGNED = "assigned"
    WAITING = "waiting"  # staff answered; waiting for the customer
    RESOLVED = "resolved"
    CLOSED = "closed"


LIVE = (Status.OPEN, Status.ASSIGNED, Status.WAITING)


class TicketError(Exception):
    """A ticket operation that cannot be done; the message says why, for staff to read."""


@dataclass(frozen=True, slots=True)
class QueueRules:
    """The business's SLA knobs (from Settings)."""

    hours: BusinessHours
    sla: timedelta  # business time until a staff answer is due
    second_escalation: timedelta  # unresolved this long after opening: escalate again
    reopen_window: timedelta
    staff_language: Language = "en"  # the language of staff-group posts


def staff_actor(staff: Staff) -> str:
    return f"staff:{staff.id}"


def record(
    session: AsyncSession,
    ticket: Ticket,
    kind: str,
    actor: str,
    now: datetime,
    text: str = "",
    **data: Any,
) -> TicketEvent:
    """Add an event to the ticket's timeline; it gets its id at the next flush.

    The event refers to the ticket object, so a ticket opened in this very transaction needs
    no flush first: a batch of new tickets and their events goes in with a few statements.
    """
    event = TicketEvent(ticket=ticket, at=now, actor=actor, kind=kind, text=text, data=data)
    session.add(event)
    return event


async def notify_staff(
    session: AsyncSession,
    kind: str,
    text: str,
    now: datetime,
    ticket: Ticket | None = None,
    chat_id: str | None = None,
) -> None:
    """Queue a post for the staff group (or a staff member's private chat). A card's notice
    (`new_ticket`, `card`) has no text: the notifier writes the card as it posts it."""
    session.add(
        StaffNotice(
            ticket=ticket,
            kind=kind,
            chat_id=chat_id,
            text=text,
            status="queued",
            created_at=now,
        )
    )


async def get(session: AsyncSession, number: int) -> Ticket:
    ticket = await session.get(Ticket, number)
    if ticket is None:
        raise TicketError(f"there is no ticket #{number}")
    return ticket


async def for_customers(
    session: AsyncSession, customer_ids: Sequence[int], now: datetime, reopen_window: timedelta
) -> dict[int, Ticket]:
    """Each customer's live ticket, else the one resolved within the reopening window.

    One query for all of them (this runs for every batch of messages): a customer has few
    such tickets. Customers with neither are left out.
    """
    if not customer_ids:
        return {}
    candidates = await session.scalars(
        select(Ticket).where(
            Ticket.customer_id.in_(customer_ids),
            Ticket.status.in_(LIVE)
            | ((Ticket.status == Status.RESOLVED) & (Ticket.resolved_at >= now - reopen_window)),
        )
    )
    chosen: dict[int, Ticket] = {}
    for ticket in candidates:
        best = chosen.get(ticket.customer_id)
        if best is None or _preference(ticket) > _preference(best):
            chosen[ticket.customer_id] = ticket
    return chosen


def _preference(ticket: Ticket) -> tuple[int, float, int]:
    """Live beats resolved; among live ones the newest, among resolved the latest resolved."""
    if ticket.status in LIVE:
        return 1, 0.0, ticket.id
    return 0, ticket.resolved_at.timestamp() if ticket.resolved_at else 0.0, ticket.id


async def views(session: AsyncSession, found: Sequence[Ticket]) -> dict[int, TicketView]:
    """The dialogs' view of each ticket, by number; one query counts the customers' messages."""
    if not found:
        return {}
    counts = dict(
        (
            await session.execute(
                select(TicketEvent.ticket_id, func.count())
                .where(
                    TicketEvent.ticket_id.in_([ticket.id for ticket in found]),
                    TicketEvent.kind == "customer_message",
                )
                .group_by(TicketEvent.ticket_id)
            )
        )
        .tuples()
        .all()
    )
    return {
        ticket.id: TicketView(
            number=ticket.id,
            status=ticket.status,
            kind=ticket.kind,
            opened_at=ticket.opened_at,
            resolved_at=ticket.resolved_at,
            customer_messages=int(counts.get(ticket.id, 0)),
        )
        for ticket in found
    }


async def open_ticket(
    session: AsyncSession,
    *,
    customer_id: int,
    kind: str,
    subject: str,
    priority: str,
    channel: str,
    chat_id: str,
    language: str,
    now: datetime,
    rules: QueueRules,
    cues: Sequence[str] = (),
    service_record_id: int | None = None,
) -> Ticket:
    """A new ticket, its `created` event and the staff group's notice of it.

    The ticket gets its number at the next flush; the caller flushes once for a whole batch.
    """
    ticket = Ticket(
        customer_id=customer_id,
        kind=kind,
        priority=priority,
        status=Status.OPEN,
        subject=subject,
        channel=channel,
        chat_id=chat_id,
        language=language,
        opened_at=now,
        due_at=rules.hours.add(now, rules.sla),
        escalation_level=0,
        reopened_count=0,
        service_record_id=service_record_id,
    )
    session.add(ticket)
    record(
        session, ticket, "created", ACTOR_CUSTOMER, now, subject, priority=priority, cues=[*cues]
    )
    # The card itself is written when the notifier posts it: a burst goes out as digest lines
    # and needs no card, and the customer's transaction stays short (see bot.staff.notifier).
    await notify_staff(session, "new_ticket", "", now, ticket)
    return ticket


async def add_customer_message(
    session: AsyncSession, ticket: Ticket, text: str, now: datetime, rules: QueueRules
) -> None:
    """The customer wrote while the ticket is live: onto the timeline and into the thread."""
    record(session, ticket, "customer_message", ACTOR_CUSTOMER, now, text)
    if ticket.status == Status.WAITING:
        ticket.status = Status.ASSIGNED if ticket.assigned_to_id else Status.OPEN
    await notify_staff(
        session,
        "customer_message",
        cards.customer_message(ticket, text, rules.staff_language),
        now,
        ticket,
    )


async def reopen(
    session: AsyncSession, ticket: Ticket, text: str, now: datetime, rules: QueueRules
) -> None:
    """ "Still not fixed": the resolved ticket is live again, with a fresh answer deadline."""
    if ticket.status != Status.RESOLVED:
        raise TicketError(f"ticket #{ticket.id} is {ticket.status}, not resolved")
    ticket.status = Status.ASSIGNED if ticket.assigned_to_id else Status.OPEN
    ticket.reopened_count += 1
    ticket.resolved_at = None
    ticket.first_response_at = None
    ticket.escalation_level = 0
    ticket.due_at = rules.hours.add(now, rules.sla)
    record(session, ticket, "reopened", ACTOR_CUSTOMER, now, text)
    await notify_staff(
        session, "reopened", cards.reopened(ticket, text, rules.staff_language), now, ticket
    )


async def assign(
    session: AsyncSession, ticket: Ticket, staff: Staff, now: datetime, actor: str | None = None
) -> None:
    """`staff` has the ticket now; `actor` is who gave it to them (default: they took it)."""
    if ticket.status not in LIVE:
        raise TicketError(f"ticket #{ticket.id} is {ticket.status}; nothing to take")
    ticket.assigned_to_id = staff.id
    if ticket.status == Status.OPEN:
        ticket.status = Status.ASSIGNED
    record(
        session, ticket, "assigned", actor or staff_actor(staff), now, staff.name, staff=staff.id
    )


async def answer(
    session: AsyncSession,
    ticket: Ticket,
    staff: Staff,
    text: str,
    now: datetime,
    source: str | None = None,
) -> bool:
    """A staff member's answer: to the customer through the outbox, onto the timeline.

    `source` names the staff message it came from (e.g. "telegram:-100:55"): the same source
    seen again (a redelivered update) is not answered twice. Returns False for such a repeat.
    """
    if ticket.status not in LIVE:
        raise TicketError(f"ticket #{ticket.id} is {ticket.status}; reopen it to answer")
    if not text.strip():
        raise TicketError("an empty answer cannot be sent")
    key = f"ticket:{ticket.id}:answer:{source}" if source else None
    if key is not None and await session.scalar(
        select(OutboxMessage.id).where(OutboxMessage.dedupe_key == key)
    ):
        return False
    event = record(session, ticket, "staff_message", staff_actor(staff), now, text)
    await session.flush()  # the event's id names the outbox message
    entry = _to_customer(ticket, key or f"ticket:{ticket.id}:event:{event.id}", text, now)
    await enqueue(session, [entry], now)
    if ticket.assigned_to_id is None:
        ticket.assigned_to_id = staff.id
    ticket.first_response_at = ticket.first_response_at or now
    ticket.status = Status.WAITING
    return True


async def resolve(
    session: AsyncSession,
    ticket: Ticket,
    actor: str,
    note: str,
    now: datetime,
    *,
    message: str,
    rating_question: str,
    rating_buttons: Sequence[str],
) -> None:
    """Resolved: the customer gets the note and is asked how the ticket was handled.

    `message` is the note as the customer reads it and `rating_question`/`rating_buttons` the
    rating question, both in the ticket's language (the caller renders the texts).
    """
    if ticket.status not in LIVE:
        raise TicketError(f"ticket #{ticket.id} is already {ticket.status}")
    if not note.strip():
        raise TicketError("say how it was resolved: the customer reads the note")
    ticket.status = Status.RESOLVED
    ticket.resolved_at = now
    ticket.resolution = note
    ticket.first_response_at = ticket.first_response_at or now
    event = record(session, ticket, "resolved", actor, now, note)
    await session.flush()  # the event's id names the outbox message
    key = f"ticket:{ticket.id}:resolved:{event.id}"
    rating_key = f"rating:ticket:{ticket.id}"
    entries = [_to_customer(ticket, key, message, now)]
    already_asked = await session.scalar(
        select(RatingRequest.id).where(RatingRequest.ticket_id == ticket.id)
    )
    if already_asked is None:
        entries.append(_to_customer(ticket, rating_key, rating_question, now, rating_buttons))
        session.add(
            RatingRequest(
                customer_id=ticket.customer_id,
                ticket_id=ticket.id,
                outbox_key=rating_key,
                status="pending",
                created_at=now,
            )
        )
        record(session, ticket, "rating_requested", ACTOR_SYSTEM, now)
    await enqueue(session, entries, now)


def _to_customer(
    ticket: Ticket, key: str, text: str, now: datetime, buttons: Sequence[str] = ()
) -> OutboxEntry:
    """An outbox message to the ticket's customer, in the chat the ticket came from."""
    return OutboxEntry(
        dedupe_key=key,
        category=Category.REPLY,
        customer_id=ticket.customer_id,
        text=text,
        not_before=now,
        channel=ticket.channel,
        chat_id=ticket.chat_id,
        buttons=tuple(buttons),
    )


async def close_resolved(session: AsyncSession, now: datetime, reopen_window: timedelta) -> int:
    """Resolved tickets past the reopening window become closed; returns how many."""
    stale = list(
        await session.scalars(
            select(Ticket).where(
                Ticket.status == Status.RESOLVED, Ticket.resolved_at < now - reopen_window
            )
        )
    )
    for ticket in stale:
        ticket.status = Status.CLOSED
        ticket.closed_at = now
        record(session, ticket, "closed", ACTOR_SYSTEM, now)
    return len(stale)


async def timeline(session: AsyncSession, number: int) -> list[TicketEvent]:
    rows = await session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == number).order_by(TicketEvent.id)
    )
    return list(rows)


def queue_rules(settings: Settings) -> QueueRules:
    return QueueRules(
        hours=settings.business_hours,
        sla=settings.ticket_sla,
        second_escalation=settings.ticket_second_escalation,
        reopen_window=settings.ticket_reopen_window,
        staff_language=settings.default_language,
    )

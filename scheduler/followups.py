"""Post-service follow-ups: the rating question a few days after a service, "is all well?" later.

The sweep covers every service record, however it was added (CSV import, CLI, HTTP API). The
first follow-up (`dialogs.rating.question`, with its 1-5 buttons) is queued as soon as the sweep
sees a service, due `follow_up_days_by_kind[kind]` (else `follow_up_first_days`) days after it at
10:00 in the customer's time zone, together with its `RatingRequest`; it is not queued for a
service already rated or asked about, nor for history: a service whose question would have been
due more than `LATE_WINDOW` ago (an imported record from last year) is never asked about. The
second (`dialogs.rating.second_follow_up`) is queued when it falls due, `follow_up_second_days`
after the first, for services that were asked about; it is written as skipped when the customer
declined to rate or a low rating or a ticket put the service in staff's hands. Keys
`followup:<stage>:<service>` keep each to one. Unanswered questions lapse after
`bot.ratings.PENDING_FOR`, or when the second follow-up is queued: the sweep marks them `expired`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Settings, service_kind_key
from bot.ratings import PENDING_FOR, cancel_follow_ups, follow_up_key
from bot.storage.database import Database
from bot.storage.models import (
    ChannelIdentity,
    Customer,
    OutboxMessage,
    Rating,
    RatingRequest,
    ServiceRecord,
    Ticket,
)
from dialogs.rating import question, second_follow_up
from scheduler.localtime import at_local, zone
from scheduler.messages import addressee
from scheduler.outbox import OutboxEntry, enqueue
from scheduler.policy import Category

FOLLOW_UP_TIME = time(10, 0)  # local time a follow-up falls due: mid-morning, after quiet hours
LATE_WINDOW = timedelta(days=3)  # a follow-up this far overdue is history: not sent any more
LOW_SCORE = 2  # a rating this low is service recovery, handled by staff
FIRST, SECOND = "first", "second"
SKIPPED_FOR_STAFF = "staff are handling a complaint about this service"
SKIPPED_DECLINED = "the customer declined to rate this service"

_REACHABLE = exists().where(ChannelIdentity.customer_id == Customer.id)


def first_days(kind: str, settings: Settings) -> int:
    """Days after a service of `kind` that its rating question goes."""
    return settings.follow_up_days_by_kind.get(
        service_kind_key(kind), settings.follow_up_first_days
    )


def second_days(kind: str, settings: Settings) -> int:
    """Days after the first follow-up of a service of `kind` that the second goes."""
    by_kind = settings.follow_up_second_days_by_kind
    return by_kind.get(service_kind_key(kind), settings.follow_up_second_days)


def follow_up_due(
    performed_on: date, days: int, tz_name: str | None, settings: Settings
) -> datetime:
    """`days` after `performed_on` at FOLLOW_UP_TIME, customer's zone (else the business's)."""
    tz = zone(tz_name, settings.timezone)
    return at_local(performed_on + timedelta(days=days), FOLLOW_UP_TIME, tz)


def _day_range(settings: Settings, second: bool) -> tuple[int, int]:
    """The fewest and most days after a service that a follow-up of this stage falls due."""
    kinds = {*settings.follow_up_days_by_kind, *settings.follow_up_second_days_by_kind}
    days = [first_days(kind, settings) for kind in kinds]
    days.append(settings.follow_up_first_days)
    if second:
        days = [
            d + s
            for d in days
            for s in (
                settings.follow_up_second_days,
                *settings.follow_up_second_days_by_kind.values(),
            )
        ]
    return min(days), max(days)


def _earliest(now: datetime, longest: int) -> date:
    """The oldest service date a due follow-up can belong to (a day spare for time zones)."""
    return (now - LATE_WINDOW).date() - timedelta(days=longest + 1)


@dataclass(frozen=True, slots=True)
class _Service:
    id: int
    kind: str
    performed_at: date
    customer_id: int
    timezone: str | None
    language: str | None
    address_as: str | None
    name: str | None


_COLUMNS = (
    ServiceRecord.id,
    ServiceRecord.kind,
    ServiceRecord.performed_at,
    Customer.id,
    Customer.timezone,
    Customer.language,
    Customer.address_as,
    Customer.name,
)


async def queue_first(session: AsyncSession, now: datetime, settings: Settings) -> int:
    """Queue the rating question of each recent service not yet asked about or rated."""
    _, longest = _day_range(settings, second=False)
    asked = exists().where(RatingRequest.service_record_id == ServiceRecord.id)
    rated = exists().where(Rating.service_record_id == ServiceRecord.id)
    rows = await session.execute(
        select(*_COLUMNS)
        .join(Customer, Customer.id == ServiceRecord.customer_id)
        .where(ServiceRecord.performed_at >= _earliest(now, longest), ~asked, ~rated, _REACHABLE)
    )
    entries: list[OutboxEntry] = []
    for service in (_Service(*row) for row in rows):
        days = first_days(service.kind, settings)
        due = follow_up_due(service.performed_at, days, service.timezone, settings)
        if due < now - LATE_WINDOW:
            continue  # history, or a question the bot would ask far too late
        who = addressee(
            service.language, service.address_as, service.name, settings.default_language
        )
        reply = question(
            who.language, name=who.salutation, kind=service.kind, performed_on=service.performed_at
        )
        key = follow_up_key(FIRST, service.id)
        entries.append(
            OutboxEntry(
                dedupe_key=key,
                category=Category.REMINDER,
                customer_id=service.customer_id,
                text=reply.text,
                not_before=due,
                expires_at=max(due, now) + LATE_WINDOW,
                buttons=reply.buttons,
            )
        )
        session.add(
            RatingRequest(
                customer_id=service.customer_id,
                service_record_id=service.id,
                outbox_key=key,
                status="pending",
                created_at=now,
            )
        )
    return await enqueue(session, entries, now)


async def queue_second(session: AsyncSession, now: datetime, settings: Settings) -> int:
    """Queue the "is all well?" of services asked about whose second follow-up is now due."""
    shortest, longest = _day_range(settings, second=True)
    rows = await session.execute(
        select(*_COLUMNS, RatingRequest.status, Rating.score)
        .join(Customer, Customer.id == ServiceRecord.customer_id)
        .join(RatingRequest, RatingRequest.service_record_id == ServiceRecord.id)
        .outerjoin(Rating, Rating.service_record_id == ServiceRecord.id)
        .where(
            ServiceRecord.performed_at.between(
                _earliest(now, longest), now.date() - timedelta(days=shortest - 1)
            )
        )
    )
    due_now: list[tuple[_Service, datetime, str | None]] = []
    for *columns, status, score in rows:
        service = _Service(*columns)
        days = first_days(service.kind, settings) + second_days(service.kind, settings)
        due = follow_up_due(service.performed_at, days, service.timezone, settings)
        if not now - LATE_WINDOW <= due <= now:
            continue
        reason = None
        if status == "declined":
            reason = SKIPPED_DECLINED
        elif score is not None and score <= LOW_SCORE:
            reason = SKIPPED_FOR_STAFF
        due_now.append((service, due, reason))
    if not due_now:
        return 0
    keys = [follow_up_key(SECOND, service.id) for service, _, _ in due_now]
    known = set(
        await session.scalars(
            select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.in_(keys))
        )
    )
    fresh = [item for item in due_now if follow_up_key(SECOND, item[0].id) not in known]
    with_tickets = await _services_with_tickets(session, [s for s, _, _ in fresh])
    entries: list[OutboxEntry] = []
    skipped: list[tuple[int, str]] = []
    for service, due, reason in fresh:
        if reason is None and service.id in with_tickets:
            reason = SKIPPED_FOR_STAFF
        who = addressee(
            service.language, service.address_as, service.name, settings.default_language
        )
        reply = second_follow_up(
            who.language, name=who.salutation, kind=service.kind, performed_on=service.performed_at
        )
        entries.append(
            OutboxEntry(
                dedupe_key=follow_up_key(SECOND, service.id),
                category=Category.REMINDER,
                customer_id=service.customer_id,
                text=reply.text,
                not_before=due,
                expires_at=max(due, now) + LATE_WINDOW,
                buttons=reply.buttons,
            )
        )
        if reason is not None:
            skipped.append((service.id, reason))
    queued = await enqueue(session, entries, now)
    for service_id, reason in skipped:  # written, then skipped: the outbox shows why
        await cancel_follow_ups(session, service_id, now, reason, (SECOND,))
    if fresh:  # the rating question still unanswered lapses: "is all well?" asks no score,
        # so an answer to it ("good", "👍") must not be read as one
        await session.execute(
            update(RatingRequest)
            .where(
                RatingRequest.service_record_id.in_([service.id for service, _, _ in fresh]),
                RatingRequest.status == "pending",
            )
            .values(status="expired")
        )
    return queued - len(skipped)


async def _services_with_tickets(session: AsyncSession, services: list[_Service]) -> set[int]:
    """Which of `services` a ticket was opened about (looked up through the customers' index)."""
    if not services:
        return set()
    found = await session.scalars(
        select(Ticket.service_record_id).where(
            Ticket.customer_id.in_(sorted({service.customer_id for service in services})),
            Ticket.service_record_id.in_(sorted(service.id for service in services)),
        )
    )
    return {service_id for service_id in found if service_id is not None}


async def expire_lapsed(session: AsyncSession, now: datetime) -> int:
    """Pending questions sent more than PENDING_FOR ago (or never sent, and as old) expire."""
    cutoff = now - PENDING_FOR
    lapsed = (
        select(RatingRequest.id)
        .join(OutboxMessage, OutboxMessage.dedupe_key == RatingRequest.outbox_key)
        .where(
            RatingRequest.status == "pending",
            RatingRequest.created_at < cutoff,
            or_(
                and_(
                    OutboxMessage.status.in_(("sent", "unknown")),
                    func.coalesce(OutboxMessage.sent_at, OutboxMessage.finished_at) < cutoff,
                ),
                OutboxMessage.status.in_(("skipped", "failed")),
            ),
        )
    )
    ids = list(await session.scalars(lapsed))
    if ids:
        await session.execute(
            update(RatingRequest)
            .where(RatingRequest.id.in_(ids), RatingRequest.status == "pending")
            .values(status="expired")
            .execution_options(synchronize_session=False)
        )
    return len(ids)


async def queue_follow_ups(database: Database, clock: Clock, settings: Settings) -> int:
    """The sweep: lapse old questions, queue due follow-ups; returns how many were queued."""
    now = clock.now()
    async with database.transaction() as session:
        await expire_lapsed(session, now)
    async with database.transaction() as session:
        first = await queue_first(session, now, settings)
    async with database.transaction() as session:
        second = await queue_second(session, now, settings)
    return first + second

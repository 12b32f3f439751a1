"""Reminders from the service records: maintenance coming due, and appointments tomorrow.

Maintenance: `reminder_lead_days` (default 7) before a service record's `next_due_at`, counted
in the customer's time zone, unless a later record of the same kind shows it was done again.
Appointments: from the day before the appointment until it starts. The sweep looks at a window
rather than one exact day, so a reminder missed during downtime still goes out while it is
useful; keys such as `reminder:maintenance:<service id>:<due date>` keep it to one.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import aliased

from bot.clock import Clock
from bot.config import Settings
from bot.storage.database import Database
from bot.storage.models import Appointment, ChannelIdentity, Customer, ServiceRecord
from scheduler.localtime import end_of_local_day, zone
from scheduler.messages import addressee, appointment_reminder, maintenance_reminder
from scheduler.outbox import OutboxEntry, enqueue
from scheduler.policy import Category

_REACHABLE = exists().where(ChannelIdentity.customer_id == Customer.id)


def maintenance_is_due(today: date, due: date, lead_days: int) -> bool:
    """A reminder goes from `lead_days` before the due date until the due date itself."""
    return today <= due <= today + timedelta(days=lead_days)


def appointment_is_due(today: date, starts_local: datetime, now: datetime) -> bool:
    """From the (local) day before the appointment until it starts."""
    return starts_local.date() - timedelta(days=1) <= today and now < starts_local


async def maintenance_entries(
    database: Database, now: datetime, settings: Settings
) -> list[OutboxEntry]:
    later = aliased(ServiceRecord)
    superseded = exists().where(
        later.customer_id == ServiceRecord.customer_id,
        later.kind == ServiceRecord.kind,
        later.performed_at > ServiceRecord.performed_at,
    )
    first = (now - timedelta(days=1)).date()
    last = (now + timedelta(days=settings.reminder_lead_days + 1)).date()
    async with database.sessions() as session:
        rows = await session.execute(
            select(
                ServiceRecord.id,
                ServiceRecord.kind,
                ServiceRecord.next_due_at,
                Customer.id,
                Customer.timezone,
                Customer.language,
                Customer.address_as,
                Customer.name,
            )
            .join(Customer, Customer.id == ServiceRecord.customer_id)
            .where(
                ServiceRecord.next_due_at.between(first, last),
                ~superseded,
                _REACHABLE,
            )
        )
        found = rows.all()
    entries = []
    for record_id, kind, due, customer_id, tz_name, language, address_as, name in found:
        tz = zone(tz_name, settings.timezone)
        if due is None or not maintenance_is_due(
            now.astimezone(tz).date(), due, settings.reminder_lead_days
        ):
            continue
        who = addressee(language, address_as, name, settings.default_language)
        entries.append(
            OutboxEntry(
                dedupe_key=f"reminder:maintenance:{record_id}:{due.isoformat()}",
                category=Category.REMINDER,
                customer_id=customer_id,
                text=maintenance_reminder(who, settings.business_name, kind, due),
                not_before=now,
                expires_at=end_of_local_day(due, tz),
            )
        )
    return entries


async def appointment_entries(
    database: Database, now: datetime, settings: Settings
) -> list[OutboxEntry]:
    async with database.sessions() as session:
        rows = await session.execute(
            select(
                Appointment.id,
                Appointment.kind,
                Appointment.starts_at,
                Customer.id,
                Customer.timezone,
                Customer.language,
                Customer.address_as,
                Customer.name,
            )
            .join(Customer, Customer.id == Appointment.customer_id)
            .where(
                Appointment.starts_at > now,
                Appointment.starts_at <= now + timedelta(days=2, hours=14),
                _REACHABLE,
            )
        )
        found = rows.all()
    entries = []
    for appointment_id, kind, starts_at, customer_id, tz_name, language, address_as, name in found:
        tz = zone(tz_name, settings.timezone)
        starts_local = starts_at.astimezone(tz)
        if not appointment_is_due(now.astimezone(tz).date(), starts_local, now):
            continue
        who = addressee(language, address_as, name, settings.default_language)
        entries.append(
            OutboxEntry(
                dedupe_key=f"reminder:appointment:{appointment_id}:{starts_at:%Y-%m-%dT%H:%M}",
                category=Category.REMINDER,
                customer_id=customer_id,
                text=appointment_reminder(who, settings.business_name, kind, starts_local),
                not_before=now,
                expires_at=starts_at,
            )
        )
    return entries


async def queue_reminders(database: Database, clock: Clock, settings: Settings) -> int:
    """The sweep: queue the maintenance and appointment reminders now due; returns how many."""
    now = clock.now()
    entries = await maintenance_entries(database, now, settings)
    entries += await appointment_entries(database, now, settings)
    async with database.transaction() as session:
        return await enqueue(session, entries, now)

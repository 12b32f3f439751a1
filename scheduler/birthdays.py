"""Birthday greetings: who has a birthday today in their own time zone, queued once a year.

The sweep runs every few minutes. A customer is due once it is `birthday_hour` or later on
their birthday in their time zone (29 February birthdays are greeted on 28 February in other
years); their greeting is queued under the key `birthday:<year>:<customer>`, so whatever
happens (a doubled tick, a restart, the clock set back) there is at most one per year. After
downtime the sweep still finds today's birthdays; yesterday's are not today's and are never
replayed, and a greeting held back by quiet hours past the end of the day expires.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Settings
from bot.storage.database import Database
from bot.storage.models import ChannelIdentity, Customer
from scheduler.localtime import end_of_local_day, zone
from scheduler.messages import addressee, birthday_greeting
from scheduler.outbox import OutboxEntry, enqueue
from scheduler.policy import Category


def birthday_on(year: int, month: int, day: int) -> date:
    """The day a birthday is celebrated in `year`: 29 February is 28 February in other years."""
    if (month, day) == (2, 29) and not calendar.isleap(year):
        return date(year, 2, 28)
    return date(year, month, day)


@cache
def _zone_infos() -> tuple[tuple[str, ZoneInfo], ...]:
    """Every IANA zone, loaded once (ZoneInfo's own cache keeps only a few alive)."""
    return tuple((name, ZoneInfo(name)) for name in sorted(available_timezones()))


@cache
def _all_zones() -> frozenset[str]:
    return frozenset(name for name, _ in _zone_infos())


def zones_by_day(now: datetime, hour: int) -> dict[date, set[str]]:
    """Each date that is today somewhere with `hour` o'clock reached, and the zones where.

    The importer accepts only these zone names, so the lists narrow the query exactly; the
    check per customer afterwards stays the rule.
    """
    days: dict[date, set[str]] = defaultdict(set)
    for name, tz in _zone_infos():
        local = now.astimezone(tz)
        if local.hour >= hour:
            days[local.date()].add(name)
    return days


def _in_zones(names: set[str], with_no_zone: bool) -> ColumnElement[bool]:
    """Customers whose zone is among `names`, and those without one if `with_no_zone`."""
    others = _all_zones() - names
    if len(names) <= len(others):
        known = Customer.timezone.in_(sorted(names))
    else:  # the shorter list; NOT IN is false for customers without a zone
        known = Customer.timezone.not_in(sorted(others))
    return or_(known, Customer.timezone.is_(None)) if with_no_zone else known


@dataclass(frozen=True, slots=True)
class DueBirthday:
    customer_id: int
    year: int
    expires_at: datetime
    language: str | None
    address_as: str | None
    name: str | None


async def due_birthdays(
    session: AsyncSession, now: datetime, settings: Settings
) -> list[DueBirthday]:
    """Customers with a chat whose birthday it is now, at or after the birthday hour, locally.

    The index on (birthday_month, birthday_day) narrows a million customers to the few whose
    birthday falls on a candidate date; their time zones decide the rest.
    """
    hour = settings.birthday_hour
    business = now.astimezone(zone(None, settings.timezone))  # for customers without a zone
    conditions = []
    for day, names in zones_by_day(now, hour).items():
        dates = [(day.month, day.day)]
        if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
            dates.append((2, 29))
        zones = _in_zones(names, with_no_zone=business.date() == day and business.hour >= hour)
        for month, day_of_month in dates:
            same_day = and_(Customer.birthday_month == month, Customer.birthday_day == day_of_month)
            conditions.append(and_(same_day, zones))
    if not conditions:
        return []
    reachable = exists().where(ChannelIdentity.customer_id == Customer.id)
    rows = await session.execute(
        select(
            Customer.id,
            Customer.timezone,
            Customer.birthday_month,
            Customer.birthday_day,
            Customer.language,
            Customer.address_as,
            Customer.name,
        ).where(
            or_(*conditions),
            reachable,
        )
    )
    due: list[DueBirthday] = []
    local_times: dict[str | None, tuple[datetime, datetime]] = {}  # zone -> (now, day's end)
    for customer_id, tz_name, month, day, language, address_as, name in rows:
        if tz_name not in local_times:
            tz = zone(tz_name, settings.timezone)
            local = now.astimezone(tz)
            local_times[tz_name] = (local, end_of_local_day(local.date(), tz))
        local, expires = local_times[tz_name]
        try:
            celebrated = birthday_on(local.year, month, day)
        except ValueError:
            continue  # an impossible date on file; the importer refuses those
        if celebrated == local.date() and local.hour >= hour:
            due.append(DueBirthday(customer_id, local.year, expires, language, address_as, name))
    return due


async def queue_birthdays(database: Database, clock: Clock, settings: Settings) -> int:
    """The sweep: queue today's greetings not queued yet; returns how many were new."""
    now = clock.now()
    async with database.transaction() as session:
        due = await due_birthdays(session, now, settings)
        entries = [
            OutboxEntry(
                dedupe_key=f"birthday:{b.year}:{b.customer_id}",
                category=Category.GREETING,
                customer_id=b.customer_id,
                text=birthday_greeting(
                    addressee(b.language, b.address_as, b.name, settings.default_language),
                    settings.business_name,
                ),
                not_before=now,
                expires_at=b.expires_at,
            )
            for b in due
        ]
        return await enqueue(session, entries, now)

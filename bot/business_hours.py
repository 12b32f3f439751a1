"""Business hours: when staff are in, and deadlines counted in working time.

A ticket's answer is due "4 business hours" after it opened: a complaint at 17:00 on a Friday
with hours 09:00-18:00 Monday to Friday is due at 12:00 on Monday. The customer is told the
same thing: when staff are back, if they are not in now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class BusinessHoursError(ValueError):
    """The business hours setting cannot be read; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """Opening hours on working days (weekday numbers, Monday = 0) in one time zone."""

    days: frozenset[int]
    opens: time
    closes: time
    zone: ZoneInfo

    def __post_init__(self) -> None:
        if not self.days:
            raise BusinessHoursError("business hours need at least one working day")
        if self.opens >= self.closes:
            raise BusinessHoursError(
                f"opening time {self.opens:%H:%M} must be before closing time {self.closes:%H:%M}"
            )

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self.zone)
        return local.weekday() in self.days and self.opens <= local.time() < self.closes

    def next_open(self, at: datetime) -> datetime:
        """`at` itself when open, else the next opening time (UTC)."""
        if self.is_open(at):
            return at.astimezone(UTC)
        local = at.astimezone(self.zone)
        day = local.date()
        if local.weekday() in self.days and local.time() < self.opens:
            return _at(day, self.opens, self.zone)
        for offset in range(1, 8):
            candidate = day + timedelta(days=offset)
            if candidate.weekday() in self.days:
                return _at(candidate, self.opens, self.zone)
        raise AssertionError("a working day comes within a week")

    def add(self, start: datetime, working: timedelta) -> datetime:
        """The moment `working` business time after `start` has passed (UTC)."""
        moment = self.next_open(start)
        left = working
        while True:
            local = moment.astimezone(self.zone)
            closing = _at(local.date(), self.closes, self.zone)
            available = closing - moment
            if left <= available:
                return moment + left
            left -= available
            moment = self.next_open(closing)


def _at(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def parse_days(spec: str) -> frozenset[int]:
    """ "mon-fri", "mon-fri,sat" or "mon,wed,fri" as weekday numbers."""
    days: set[int] = set()
    for part in (p.strip().lower() for p in spec.split(",")):
        if not part:
            continue
        first, _, last = part.partition("-")
        try:
            start = DAY_NAMES.index(first[:3])
            end = DAY_NAMES.index(last[:3]) if last else start
        except ValueError:
            raise BusinessHoursError(
                f"unknown day in {spec!r}; use names like mon-fri or mon,tue,sat"
            ) from None
        span = range(start, end + 1) if start <= end else [*range(start, 7), *range(0, end + 1)]
        days.update(span)
    if not days:
        raise BusinessHoursError("business days are empty; use names like mon-fri")
    return frozenset(days)

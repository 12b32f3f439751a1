"""The customer's local time: their time zone (else the business's), days and mornings in it."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger(__name__)


@cache
def zone(name: str | None, default: str) -> ZoneInfo:
    """The zone `name`, or `default` when the customer has none or an unknown one."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("unknown time zone %r on file; using %s", name, default)
    return ZoneInfo(default)


def at_local(day: date, moment: time, tz: ZoneInfo) -> datetime:
    """`day` at `moment` in `tz`, as an aware UTC time (a moment skipped by DST moves forward)."""
    local = datetime.combine(day, moment, tzinfo=tz)
    # A wall time in a DST gap does not exist; round-tripping through UTC moves it past the gap.
    return local.astimezone(UTC)


def end_of_local_day(day: date, tz: ZoneInfo) -> datetime:
    """The first instant after `day` in `tz`, in UTC."""
    return at_local(day + timedelta(days=1), time(0, 0), tz)


def parse_local(text: str, tz: ZoneInfo) -> datetime:
    """ "2026-12-01 10:00" (or ISO 8601, "T" and an offset allowed) read in `tz`, as UTC.

    Raises ValueError naming the accepted form.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a time; write it as YYYY-MM-DD HH:MM") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)

"""Business hours: deadlines counted in working time, and when staff are back."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.business_hours import BusinessHours, BusinessHoursError, parse_days

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEEKDAYS = BusinessHours(parse_days("mon-fri"), time(9), time(18), SHANGHAI)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


def test_four_business_hours_from_friday_afternoon_end_on_monday() -> None:
    due = WEEKDAYS.add(local(2026, 5, 1, 17, 0), timedelta(hours=4))
    assert due == local(2026, 5, 4, 12, 0)


def test_a_deadline_within_the_day_is_plain_addition() -> None:
    assert WEEKDAYS.add(local(2026, 5, 4, 9, 30), timedelta(hours=4)) == local(2026, 5, 4, 13, 30)


def test_staff_are_back_on_the_next_working_morning() -> None:
    assert not WEEKDAYS.is_open(local(2026, 5, 2, 11, 0))  # Saturday
    assert WEEKDAYS.next_open(local(2026, 5, 2, 11, 0)) == local(2026, 5, 4, 9, 0)
    assert WEEKDAYS.next_open(local(2026, 5, 4, 7, 0)) == local(2026, 5, 4, 9, 0)
    assert WEEKDAYS.next_open(local(2026, 5, 4, 10, 0)) == local(2026, 5, 4, 10, 0)


def test_days_are_read_as_written() -> None:
    assert parse_days("mon-fri,sat") == frozenset(range(6))
    assert parse_days("Fri-Mon") == frozenset({4, 5, 6, 0})
    with pytest.raises(BusinessHoursError, match="unknown day"):
        parse_days("mon-fry")
    with pytest.raises(BusinessHoursError, match="before closing"):
        BusinessHours(frozenset({0}), time(18), time(9), SHANGHAI)


@given(
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1)),
    st.integers(min_value=0, max_value=60 * 60 * 30),
)
def test_a_deadline_is_never_earlier_than_the_working_time_it_allows(
    start: datetime, seconds: int
) -> None:
    start = start.replace(tzinfo=UTC)
    due = WEEKDAYS.add(start, timedelta(seconds=seconds))
    assert due >= start + timedelta(seconds=seconds)
    assert WEEKDAYS.is_open(due) or due.astimezone(SHANGHAI).time() == time(18)

"""The contact policy, as a pure function: consent, opt-out, quiet hours, frequency cap, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from scheduler.policy import (
    RULES,
    SKIP_EXPLANATIONS,
    Category,
    ContactPolicy,
    Delay,
    Due,
    Recipient,
    Send,
    Skip,
    SkipReason,
    decide,
    quiet_until,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOON_SHANGHAI = datetime(2026, 5, 1, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
POLICY = ContactPolicy()


def recipient(**facts: object) -> Recipient:
    values: dict[str, object] = {"zone": SHANGHAI, "marketing_consent": True} | facts
    return Recipient(**values)  # type: ignore[arg-type]


def test_marketing_needs_consent_and_no_opt_out() -> None:
    due = Due(Category.MARKETING, NOON_SHANGHAI)
    assert decide(due, recipient(), POLICY) == Send()
    assert decide(due, recipient(marketing_consent=False), POLICY) == Skip(SkipReason.NO_CONSENT)
    assert decide(due, recipient(opted_out=True), POLICY) == Skip(SkipReason.OPTED_OUT)


def test_reminders_and_replies_need_no_consent_and_ignore_marketing_opt_out() -> None:
    who = recipient(marketing_consent=False, opted_out=True)
    assert decide(Due(Category.REMINDER, NOON_SHANGHAI), who, POLICY) == Send()
    assert decide(Due(Category.REPLY, NOON_SHANGHAI), who, POLICY) == Send()
    # A birthday greeting needs no consent but respects "stop sending me messages".
    assert decide(Due(Category.GREETING, NOON_SHANGHAI), who, POLICY) == Skip(SkipReason.OPTED_OUT)


@pytest.mark.parametrize(
    ("local_hour", "waits_until_local"),
    [(22, "next 09:00"), (3, "09:00"), (20, None), (9, None), (8, "09:00")],
)
def test_quiet_hours_in_the_customers_zone_delay_to_their_morning(
    local_hour: int, waits_until_local: str | None
) -> None:
    now = datetime(2026, 5, 1, local_hour, 30, tzinfo=SHANGHAI).astimezone(UTC)
    decision = decide(Due(Category.REMINDER, now), recipient(), POLICY)
    if waits_until_local is None:
        assert decision == Send()
        return
    assert isinstance(decision, Delay)
    morning = decision.until.astimezone(SHANGHAI)
    assert morning.time() == time(9, 0)
    day = 2 if waits_until_local.startswith("next") else 1
    assert morning.date().day == day


def test_quiet_hours_do_not_hold_back_replies_to_the_customer() -> None:
    night = datetime(2026, 5, 1, 23, 0, tzinfo=SHANGHAI).astimezone(UTC)
    assert decide(Due(Category.REPLY, night), recipient(), POLICY) == Send()
    assert isinstance(decide(Due(Category.MARKETING, night), recipient(), POLICY), Delay)


def test_quiet_hours_are_the_customers_not_the_servers() -> None:
    # 14:00 UTC is 22:00 in Shanghai (quiet) and 15:00 in London (not).
    now = datetime(2026, 1, 10, 14, 0, tzinfo=UTC)
    assert isinstance(decide(Due(Category.GREETING, now), recipient(), POLICY), Delay)
    london = recipient(zone=ZoneInfo("Europe/London"))
    assert decide(Due(Category.GREETING, now), london, POLICY) == Send()


def test_quiet_hours_within_one_day_and_switched_off() -> None:
    lunch = ContactPolicy(quiet_start=time(12, 0), quiet_end=time(14, 0))
    assert quiet_until(NOON_SHANGHAI, SHANGHAI, lunch) == datetime(2026, 5, 1, 6, 0, tzinfo=UTC)
    never = ContactPolicy(quiet_start=time(0, 0), quiet_end=time(0, 0))
    night = datetime(2026, 5, 1, 23, 0, tzinfo=SHANGHAI).astimezone(UTC)
    assert quiet_until(night, SHANGHAI, never) is None


def test_frequency_cap_counts_recent_marketing_only() -> None:
    due = Due(Category.MARKETING, NOON_SHANGHAI)
    assert decide(due, recipient(recent_marketing=1), POLICY) == Send()
    assert decide(due, recipient(recent_marketing=2), POLICY) == Skip(SkipReason.FREQUENCY_CAP)
    reminder = Due(Category.REMINDER, NOON_SHANGHAI)
    assert decide(reminder, recipient(recent_marketing=9), POLICY) == Send()


def test_unreachable_customers_and_expired_messages_are_skipped_first() -> None:
    due = Due(Category.REMINDER, NOON_SHANGHAI, expires_at=NOON_SHANGHAI)
    assert decide(due, recipient(), POLICY) == Skip(SkipReason.EXPIRED)
    fresh = Due(Category.REMINDER, NOON_SHANGHAI)
    assert decide(fresh, recipient(has_channel=False), POLICY) == Skip(SkipReason.NO_CHANNEL)
    assert decide(fresh, recipient(blocked=True), POLICY) == Skip(SkipReason.UNREACHABLE)


def test_a_message_whose_morning_comes_too_late_expires() -> None:
    night = datetime(2026, 5, 1, 22, 0, tzinfo=SHANGHAI).astimezone(UTC)
    midnight = datetime(2026, 5, 2, 0, 0, tzinfo=SHANGHAI).astimezone(UTC)
    due = Due(Category.GREETING, night, expires_at=midnight)
    assert decide(due, recipient(), POLICY) == Skip(SkipReason.EXPIRED)


def test_every_category_has_rules_and_every_reason_an_explanation() -> None:
    assert set(RULES) == set(Category)
    assert set(SKIP_EXPLANATIONS) == set(SkipReason)

"""The contact policy: whether a proactive message may go now, later, or not at all.

One pure function, `decide`, applied by the dispatcher to every outbox row just before it is
sent. What applies to which kind of message is the table `RULES`; the checks run in the order
of `CHECKS`, and the first one that objects decides. A message that must not go is skipped
with a reason, one that must wait (quiet hours) is delayed to the customer's next morning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from scheduler.localtime import at_local


class Category(StrEnum):
    """What a proactive message is, which decides the rules it obeys."""

    MARKETING = "marketing"  # campaigns and event invitations
    GREETING = "greeting"  # birthday greetings
    REMINDER = "reminder"  # maintenance due, appointment tomorrow, post-service follow-ups
    REPLY = "reply"  # answers to the customer's own messages (e.g. from staff)


class SkipReason(StrEnum):
    """Why a message was not sent; shown by `concierge campaign status`."""

    EXPIRED = "expired"
    NO_CHANNEL = "no_channel"
    UNREACHABLE = "unreachable"
    NO_CONSENT = "no_consent"
    OPTED_OUT = "opted_out"
    FREQUENCY_CAP = "frequency_cap"
    CANCELLED = "cancelled"


SKIP_EXPLANATIONS: Mapping[SkipReason, str] = {
    SkipReason.EXPIRED: "too late to be useful (e.g. a birthday that has passed)",
    SkipReason.NO_CHANNEL: "no chat the bot can write to",
    SkipReason.UNREACHABLE: "the customer blocked the bot",
    SkipReason.NO_CONSENT: "no marketing consent on file",
    SkipReason.OPTED_OUT: "the customer opted out (/stop)",
    SkipReason.FREQUENCY_CAP: "marketing frequency cap reached",
    SkipReason.CANCELLED: "the campaign was cancelled",
}


@dataclass(frozen=True, slots=True)
class Rules:
    needs_consent: bool  # marketing consent on file is required
    honours_opt_out: bool  # /stop stops it
    quiet_hours: bool  # waits for the customer's morning
    frequency_capped: bool  # counts against, and is limited by, the marketing cap


RULES: Mapping[Category, Rules] = {
    #                   needs consent, honours opt-out, quiet hours, frequency capped
    Category.MARKETING: Rules(True, True, True, True),
    Category.GREETING: Rules(False, True, True, False),
    Category.REMINDER: Rules(False, False, True, False),
    Category.REPLY: Rules(False, False, False, False),
}  # fmt: skip
# Post-service follow-ups (the rating question and "is all well?") go as REMINDER: asking how a
# service went is part of the service, not marketing, so it needs no consent and /stop (which
# stops marketing) does not stop it; like every reminder it waits for the end of quiet hours.


@dataclass(frozen=True, slots=True)
class ContactPolicy:
    """The business's knobs (from Settings): quiet hours and the marketing frequency cap."""

    quiet_start: time = time(21, 0)
    quiet_end: time = time(9, 0)
    marketing_cap: int = 2
    cap_period: timedelta = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Recipient:
    """What the dispatcher knows about the customer when the message is due."""

    zone: ZoneInfo
    has_channel: bool = True  # an identity on a channel the dispatcher can write to
    blocked: bool = False  # every such identity blocked the bot (403)
    marketing_consent: bool = False
    opted_out: bool = False
    recent_marketing: int = 0  # marketing messages sent within the cap period


@dataclass(frozen=True, slots=True)
class Send:
    pass


@dataclass(frozen=True, slots=True)
class Skip:
    reason: SkipReason


@dataclass(frozen=True, slots=True)
class Delay:
    until: datetime


Decision = Send | Skip | Delay


@dataclass(frozen=True, slots=True)
class Due:
    """The message being decided on."""

    category: Category
    now: datetime
    expires_at: datetime | None = None


Check = Callable[[Due, Rules, Recipient, ContactPolicy], Decision | None]


def quiet_until(now: datetime, zone: ZoneInfo, policy: ContactPolicy) -> datetime | None:
    """The end of the quiet hours `now` falls in (customer's local time), or None if not quiet."""
    start, end = policy.quiet_start, policy.quiet_end
    if start == end:
        return None
    local = now.astimezone(zone)
    moment, day = local.time().replace(tzinfo=None), local.date()
    if start < end:  # quiet within one day, e.g. 13:00-14:00
        return at_local(day, end, zone) if start <= moment < end else None
    if moment >= start:  # e.g. 22:30 with quiet hours 21:00-09:00: until tomorrow 09:00
        return at_local(day + timedelta(days=1), end, zone)
    if moment < end:  # e.g. 03:00: until 09:00 today
        return at_local(day, end, zone)
    return None


def _expired(due: Due, rules: Rules, who: Recipient, policy: ContactPolicy) -> Decision | None:
    late = due.expires_at is not None and due.now >= due.expires_at
    return Skip(SkipReason.EXPIRED) if late else None


def _no_channel(due: Due, rules: Rules, who: Recipient, policy: ContactPolicy) -> Decision | None:
    return None if who.has_channel else Skip(SkipReason.NO_CHANNEL)


def _blocked(due: Due, rules: Rules, who: Recipient, policy: ContactPolicy) -> Decision | None:
    return Skip(SkipReason.UNREACHABLE) if who.blocked else None


def _consent(due: Due, rules: Rules, who: Recipient, policy: ContactPolicy) -> Decision | None:
    missing = rules.needs_consent and not who.marketing_consent
    return Skip(SkipReason.NO_CONSENT) if missing else None


def _opt_out(due: Due, rules: Rules, who: Recipient, policy: ContactPolicy) -> Decision | None:
    return Skip(SkipReason.OPTED_OUT) if rules.honours_opt_out and who.opted_out else None


def _quiet_hours(due: Due, rules: Rules, who: Recipient, policy: ContactPolicy) -> Decision | None:
    if not rules.quiet_hours:
        return None
    until = quiet_until(due.now, who.zone, policy)
    if until is None:
        return None
    if due.expires_at is not None and until >= due.expires_at:
        return Skip(SkipReason.EXPIRED)  # the morning comes too late for it
    return Delay(until)


def _frequency_cap(
    due: Due, rules: Rules, who: Recipient, policy: ContactPolicy
) -> Decision | None:
    over = rules.frequency_capped and who.recent_marketing >= policy.marketing_cap
    return Skip(SkipReason.FREQUENCY_CAP) if over else None


CHECKS: tuple[Check, ...] = (
    _expired,
    _no_channel,
    _blocked,
    _consent,
    _opt_out,
    _quiet_hours,
    _frequency_cap,
)


def decide(due: Due, recipient: Recipient, policy: ContactPolicy) -> Decision:
    """Send, Skip(reason) or Delay(until) for one message; the first objecting check wins."""
    rules = RULES[due.category]
    for check in CHECKS:
        decision = check(due, rules, recipient, policy)
        if decision is not None:
            return decision
    return Send()

"""Greeting the customer: the first hello, and the welcome back that shows we remember them."""

from __future__ import annotations

from datetime import datetime, timedelta

from dialogs.texts import day, duration, t
from dialogs.types import Outcome, Reply, SetState, Turn

ADDRESS_DIALOG = "profile"
ADDRESS_STEP = "ask_address"


def is_returning(turn: Turn) -> bool:
    """True when a known customer writes after a break of at least the greeting gap."""
    customer = turn.customer
    return not customer.is_new and is_new_visit(
        customer.previous_seen_at, turn.now, turn.persona.greeting_gap
    )


def is_new_visit(previous_seen_at: datetime | None, now: datetime, gap: timedelta) -> bool:
    """A message starts a new visit when the customer was away for the greeting gap or more."""
    return previous_seen_at is None or now - previous_seen_at >= gap


def first_contact(turn: Turn) -> Outcome:
    """Say hello to someone new, and ask how they like to be addressed.

    The name comes from the platform profile when there is one and is offered as a button;
    on Telegram the customer may instead share their phone number to be found on file.
    """
    lang, name = turn.language, turn.customer.name
    business = turn.persona.business_name
    if name:
        replies = [Reply(t(lang, "greeting.first_contact", name=name, business=business), (name,))]
    else:
        replies = [Reply(t(lang, "greeting.first_contact_anonymous", business=business))]
    if turn.inbound.can_share_contact:
        replies.append(
            Reply(
                t(lang, "greeting.share_contact_hint"),
                contact_button=t(lang, "greeting.share_contact_button"),
            )
        )
    return Outcome(
        replies=tuple(replies),
        effects=(SetState(ADDRESS_DIALOG, ADDRESS_STEP),),
        intent="greeting.first_contact",
    )


def welcome_back(turn: Turn) -> Outcome:
    """Greet a returning customer by name with what we remember about them."""
    lang, customer = turn.language, turn.customer
    lines = [
        t(lang, "greeting.welcome_back", name=customer.salutation)
        if customer.salutation
        else t(lang, "greeting.welcome_back_anonymous")
    ]
    seen = customer.previous_seen_at
    if seen is not None and turn.now - seen >= turn.persona.long_absence:
        lines.append(t(lang, "greeting.absence", duration=duration(turn.now - seen, lang)))
    lines.extend(remembered(turn))
    return Outcome(replies=(Reply(" ".join(lines)),), intent="greeting.welcome_back")


def remembered(turn: Turn) -> list[str]:
    """Sentences about the last service, the next due date and a stored preference."""
    lang, customer = turn.language, turn.customer
    lines: list[str] = []
    service = customer.last_service
    if service is not None:
        what = service.description or service.kind
        lines.append(
            t(lang, "greeting.last_service", description=what, date=day(service.performed_at, lang))
        )
        if service.next_due_at is not None and service.next_due_at >= turn.now.date():
            lines.append(
                t(lang, "greeting.next_due", kind=service.kind, date=day(service.next_due_at, lang))
            )
    if customer.preferences:
        preference = next(iter(customer.preferences.values()))
        lines.append(t(lang, "greeting.preference", preference=preference))
    return lines

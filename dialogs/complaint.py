"""Complaints and requests for a person: open a ticket, keep the customer's messages on it.

A complaint or a request for a person (the words, a failure the turn's complaint model
recognises, `/human`, or the FAQ's "talk to a person" button) opens a ticket; the runtime
assigns its number and deadline and calls `ticket_opened` for the confirmation. While a ticket
is live, whatever the customer writes is added to it (they are told once); shortly after it was
resolved, "still not fixed" reopens it.
"""

from __future__ import annotations

import re
from datetime import datetime

from babel.dates import format_datetime, format_time

from dialogs.dissatisfaction import Signal, assess, priority
from dialogs.texts import BABEL_LOCALES, t
from dialogs.types import AddToTicket, Language, OpenTicket, Outcome, ReopenTicket, Reply, Turn

SUBJECT_LIMIT = 2000

# "It is still broken" after a resolution, in the customer's words.
_STILL_BROKEN = re.compile(
    r"\b(still|again)\b.*\b(not|n't|broken|wrong|same|problem|issue|noise|leak|fail)"
    r"|\bnot (fixed|solved|resolved|working)\b|\b(didn't|did not|doesn't|does not) (fix|work|help)"
    r"|\bproblem(s)? (is|are) back\b|\bcame back\b"
    r"|还(是|没)?(没|不)(好|修好|解决|行)|问题(还在|依旧|依然|又)|又(坏|出现|有问题)|没(有)?(修好|解决)"
    r"|还是(一样|老样子|有问题)",
    re.IGNORECASE,
)


def is_still_broken(text: str) -> bool:
    return bool(_STILL_BROKEN.search(text))


def _open(turn: Turn, kind: str, signal: Signal | None, subject: str | None = None) -> Outcome:
    lang = turn.language
    subject = (subject or turn.text).strip()[:SUBJECT_LIMIT] or t(lang, "ticket.sorry_human")
    effect = OpenTicket(
        kind="complaint" if kind == "complaint" else "human",
        subject=subject,
        priority=priority(signal) if signal is not None else "normal",
        cues=signal.cues if signal is not None else (),
    )
    key = "ticket.sorry_complaint" if kind == "complaint" else "ticket.sorry_human"
    return Outcome(replies=(Reply(t(lang, key)),), effects=(effect,), intent=f"ticket.{kind}")


def _already_open(turn: Turn, number: int) -> Outcome:
    text = t(turn.language, "ticket.already_open", number=number)
    return Outcome(
        replies=(Reply(text),), effects=(AddToTicket(number, turn.text),), intent="ticket.message"
    )


def on_ticket(turn: Turn) -> Outcome | None:
    """The first route: a live ticket takes the message; a recent one may be reopened."""
    ticket = turn.ticket
    if ticket is None:
        return None
    if ticket.live:
        replies: tuple[Reply, ...] = ()
        if ticket.customer_messages == 0:  # said once; after that staff answer in person
            replies = (Reply(t(turn.language, "ticket.routed", number=ticket.number)),)
        return Outcome(
            replies=replies,
            effects=(AddToTicket(ticket.number, turn.text),),
            intent="ticket.message",
        )
    if is_still_broken(turn.text):
        return Outcome(
            replies=(Reply(t(turn.language, "ticket.reopened", number=ticket.number)),),
            effects=(ReopenTicket(ticket.number, turn.text),),
            intent="ticket.reopened",
        )
    return None


def request(turn: Turn) -> Outcome | None:
    """A route: the message complains or asks for a person."""
    signal = assess(turn.text, turn.complaint_model)
    if signal is None:
        return None
    return _open(turn, signal.kind, signal)


def ask_for_person(turn: Turn) -> Outcome:
    """`/human`, or the "talk to a person" button the FAQ offers."""
    if turn.ticket is not None and turn.ticket.live:
        return _already_open(turn, turn.ticket.number)
    return _open(turn, "human", None)


def person_button(turn: Turn) -> Outcome | None:
    """A route for the FAQ's "talk to a person" button."""
    if turn.text not in {t(lang, "faq.talk_to_person") for lang in ("en", "zh")}:
        return None
    if turn.ticket is not None and turn.ticket.live:
        return _already_open(turn, turn.ticket.number)
    state = turn.state
    question = state.data.get("question") if state is not None and state.dialog == "faq" else None
    return _open(turn, "human", None, question if isinstance(question, str) else None)


def ticket_opened(
    language: Language, number: int, due: datetime, now: datetime, back: datetime | None
) -> Reply:
    """The confirmation with the ticket number and an honest answer time.

    `due` and `back` (when staff return, None while they are in) are in the business's local
    time; `now` too, so "today" and "tomorrow" are right for the reader.
    """
    if back is None:
        text = t(language, "ticket.opened_open_now", number=number, due=_when(due, now, language))
    else:
        text = t(
            language,
            "ticket.opened_closed_now",
            number=number,
            back=_when(back, now, language),
            due=_when(due, now, language),
        )
    return Reply(text)


def _when(moment: datetime, now: datetime, language: Language) -> str:
    locale = BABEL_LOCALES[language]
    days = (moment.date() - now.date()).days
    clock = format_time(moment, "HH:mm", locale=locale)
    if days == 0:
        return t(language, "ticket.today_at", time=clock)
    if days == 1:
        return t(language, "ticket.tomorrow_at", time=clock)
    pattern = "EEEE d MMMM, HH:mm" if language == "en" else "M月d日 EEEE HH:mm"
    return format_datetime(moment, pattern, locale=locale)

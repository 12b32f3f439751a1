"""What staff may do to a ticket, checked against their role, from Telegram or the CLI.

Every action goes through `authorize` first: only active staff with a role that covers the
action may do it; a refusal is logged and, when it concerns a ticket, written to its
timeline, so attempts by outsiders are visible in the audit trail.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import tickets
from bot.storage.models import Staff, Ticket
from dialogs.rating import ticket_question
from dialogs.texts import t
from dialogs.types import Language

log = logging.getLogger(__name__)


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    MARKETING = "marketing"
    ADMIN = "admin"


class Action(StrEnum):
    TAKE = "take"
    ANSWER = "answer"
    RESOLVE = "resolve"
    ASSIGN = "assign"  # give a ticket to someone else


PERMISSIONS: Mapping[Action, frozenset[Role]] = {
    Action.TAKE: frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN}),
    Action.ANSWER: frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN}),
    Action.RESOLVE: frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN}),
    Action.ASSIGN: frozenset({Role.SUPERVISOR, Role.ADMIN}),
}


class NotAllowedError(Exception):
    """The person is not registered staff, or their role does not allow the action."""


async def staff_by_telegram(session: AsyncSession, telegram_user_id: str) -> Staff | None:
    staff: Staff | None = await session.scalar(
        select(Staff).where(Staff.telegram_user_id == telegram_user_id, Staff.removed_at.is_(None))
    )
    return staff


async def authorize(
    session: AsyncSession,
    staff: Staff | None,
    action: Action,
    now: datetime,
    *,
    who: str,
    ticket: Ticket | None = None,
) -> Staff:
    """`staff` if they may do `action`; otherwise the refusal is recorded and raised.

    `who` describes the person for the log when they are not staff (e.g. a Telegram user).
    """
    if staff is not None and staff.removed_at is None and Role(staff.role) in PERMISSIONS[action]:
        return staff
    reason = (
        f"{who} is not registered staff"
        if staff is None or staff.removed_at is not None
        else f"{staff.name} ({staff.role}) may not {action}"
    )
    log.warning("refused: %s (ticket %s)", reason, ticket.id if ticket else "-")
    if ticket is not None:
        tickets.record(session, ticket, "refused", who, now, reason, action=str(action))
    raise NotAllowedError(reason)


async def resolve(
    session: AsyncSession, ticket: Ticket, actor: str, note: str, now: datetime
) -> None:
    """Resolve with `note`; the customer reads it and is asked to rate the handling."""
    language: Language = "zh" if ticket.language == "zh" else "en"
    question = ticket_question(language, number=ticket.id)
    await tickets.resolve(
        session,
        ticket,
        actor,
        note,
        now,
        message=t(language, "ticket.resolved", number=ticket.id, note=note.strip()),
        rating_question=question.text,
        rating_buttons=question.buttons,
    )

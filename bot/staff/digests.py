"""What a digest says about each ticket: one compact line, such as "#123 ❗ Anna: brakes squeal…".

A burst of notices is posted as digests (see `bot.staff.notifier`); each ticket gets one line
however many of its notices the digest stands for. A new ticket's line names the customer and
starts their complaint; any other notice's line is the start of the notice itself, which names
its ticket already. Staff open a ticket's full card and thread with `/ticket N`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.staff.pacing import DigestLine, shorten
from bot.storage.models import ChannelIdentity, Customer, Ticket
from dialogs.texts import t
from dialogs.types import Language

CARD_KINDS = ("new_ticket", "card")  # notices that are a ticket's card and open its thread
NAME_CHARS = 20
SUBJECT_CHARS = 40
NOTICE_CHARS = 60


class Notice(Protocol):
    """The fields of a queued `StaffNotice` a digest needs."""

    @property
    def id(self) -> int: ...
    @property
    def ticket_id(self) -> int | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...


async def digest_lines(
    session: AsyncSession, notices: Sequence[Notice], language: Language
) -> list[DigestLine]:
    """One line per ticket (and per notice about no ticket), in the order they first came."""
    groups: dict[int | str, list[Notice]] = {}
    for notice in notices:
        key: int | str = notice.ticket_id if notice.ticket_id is not None else f"n{notice.id}"
        groups.setdefault(key, []).append(notice)
    facts = await _ticket_facts(
        session, [n.ticket_id for n in notices if n.kind in CARD_KINDS and n.ticket_id]
    )
    lines: list[DigestLine] = []
    for group in groups.values():
        first = group[0]
        ticket = first.ticket_id
        if first.kind in CARD_KINDS and ticket is not None and ticket in facts:
            priority, name, subject = facts[ticket]
            text = t(
                language,
                "staff.digest_line",
                number=ticket,
                mark="❗ " if priority == "high" else "",
                name=shorten(name, NAME_CHARS),
                text=shorten(subject, SUBJECT_CHARS),
            )
        elif first.kind in CARD_KINDS:  # a card's notice has no text; its ticket was erased
            text = f"#{ticket}"
        else:
            text = shorten(first.text.strip().split("\n", 1)[0], NOTICE_CHARS)
        if len(group) > 1:
            text = f"{text} {t(language, 'staff.digest_more', count=len(group) - 1)}"
        lines.append(DigestLine(text, tuple(n.id for n in group), ticket))
    return lines


async def _ticket_facts(
    session: AsyncSession, numbers: Sequence[int]
) -> dict[int, tuple[str, str, str]]:
    """Priority, customer name and subject of each ticket, in two queries for any number."""
    if not numbers:
        return {}
    rows = list(
        await session.execute(
            select(Ticket.id, Ticket.priority, Ticket.subject, Ticket.customer_id,
                   Customer.name, Customer.address_as)
            .join(Customer, Customer.id == Ticket.customer_id)
            .where(Ticket.id.in_(set(numbers)))
        )
    )  # fmt: skip
    unnamed = {row.customer_id for row in rows if not (row.name or row.address_as)}
    shown: dict[int, str] = {}
    if unnamed:
        identities = await session.execute(
            select(ChannelIdentity.customer_id, ChannelIdentity.display_name)
            .where(ChannelIdentity.customer_id.in_(unnamed))
            .order_by(ChannelIdentity.id)
        )
        shown = {customer: name for customer, name in identities if name}
    return {
        row.id: (
            row.priority,
            row.name or row.address_as or shown.get(row.customer_id, f"customer {row.customer_id}"),
            row.subject,
        )
        for row in rows
    }

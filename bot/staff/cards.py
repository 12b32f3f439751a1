"""What staff read about a ticket: the card posted for a new ticket, and the thread's notices.

A card gives staff what they need to answer without looking anything up: who the customer
is, their last service and rating, their earlier tickets, when the answer is due, and what
they wrote. Texts come from the catalog (`staff.*` keys) in the staff's language.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import ChannelIdentity, Customer, Rating, ServiceRecord, Ticket
from dialogs.texts import t
from dialogs.types import Language

QUOTE_LIMIT = 1500  # characters of the customer's text quoted in one notice


def _quote(text: str) -> str:
    text = text.strip()
    return text if len(text) <= QUOTE_LIMIT else text[: QUOTE_LIMIT - 1] + "…"


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%a %Y-%m-%d %H:%M")


async def customer_name(session: AsyncSession, customer_id: int) -> str:
    customer = await session.get(Customer, customer_id)
    if customer is not None and (customer.name or customer.address_as):
        return str(customer.name or customer.address_as)
    shown = await session.scalar(
        select(ChannelIdentity.display_name)
        .where(ChannelIdentity.customer_id == customer_id)
        .order_by(ChannelIdentity.id.desc())
        .limit(1)
    )
    return shown or f"customer {customer_id}"


async def ticket_card(
    session: AsyncSession, ticket: Ticket, language: Language, zone: ZoneInfo
) -> str:
    """The post announcing `ticket` in the staff group."""
    lines = [
        t(
            language,
            "staff.card_title",
            number=ticket.id,
            kind=t(language, f"staff.kind_{ticket.kind}"),
            priority=t(language, f"staff.priority_{ticket.priority}"),
        ),
        t(
            language,
            "staff.card_customer",
            name=await customer_name(session, ticket.customer_id),
            channel=ticket.channel,
        ),
    ]
    service = await session.scalar(
        select(ServiceRecord)
        .where(ServiceRecord.customer_id == ticket.customer_id)
        .order_by(ServiceRecord.performed_at.desc(), ServiceRecord.id.desc())
        .limit(1)
    )
    if service is not None:
        lines.append(
            t(
                language,
                "staff.card_last_service",
                kind=service.kind,
                date=service.performed_at.isoformat(),
                by=service.performed_by or "-",
            )
        )
    rating = await session.scalar(
        select(Rating)
        .where(Rating.customer_id == ticket.customer_id)
        .order_by(Rating.created_at.desc(), Rating.id.desc())
        .limit(1)
    )
    if rating is not None:
        lines.append(
            t(
                language,
                "staff.card_last_rating",
                score=rating.score,
                date=rating.created_at.astimezone(zone).date().isoformat(),
            )
        )
    earlier = list(
        await session.execute(
            select(Ticket.id, Ticket.status)
            .where(Ticket.customer_id == ticket.customer_id, Ticket.id != ticket.id)
            .order_by(Ticket.id.desc())
            .limit(5)
        )
    )
    if earlier:
        listed = ", ".join(f"#{number} ({status})" for number, status in earlier)
        lines.append(t(language, "staff.card_earlier", tickets=listed))
    else:
        lines.append(t(language, "staff.card_first_ticket"))
    lines.append(t(language, "staff.card_due", due=_local(ticket.due_at, zone)))
    lines.append("")
    lines.append(f"“{_quote(ticket.subject)}”")
    lines.append("")
    lines.append(t(language, "staff.card_howto", number=ticket.id))
    return "\n".join(lines)


def customer_message(ticket: Ticket, text: str, language: Language) -> str:
    return t(language, "staff.customer_message", number=ticket.id, text=_quote(text))


def reopened(ticket: Ticket, text: str, language: Language) -> str:
    return t(language, "staff.reopened", number=ticket.id, text=_quote(text))

"""The customer repository: identify who wrote, link them to records on file, erase them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import (
    Base,
    ChannelIdentity,
    ConversationState,
    Customer,
    ServiceRecord,
)
from dialogs.types import CustomerView, Language, ServiceSummary


@dataclass(slots=True)
class Identified:
    """The customer behind a message, and what we knew of them before this message."""

    customer: Customer
    identity: ChannelIdentity
    is_new: bool
    previous_seen_at: datetime | None
    state: ConversationState | None = None
    just_linked: bool = False


@dataclass(frozen=True, slots=True)
class Sender:
    """Who wrote, as the channel tells it: the person's id there and where replies go."""

    channel: str
    external_id: str
    chat_id: str
    display_name: str | None = None


async def identify_many(
    session: AsyncSession, senders: Sequence[Sender], now: datetime
) -> list[Identified]:
    """The customer behind each sender (distinct senders), created on first contact.

    One query per channel for identity, customer and dialog state, and one flush for all the
    newcomers: this runs for every batch of messages. The caller serializes messages per
    sender, so two first messages cannot race into two customers; the unique constraint is
    the last line of defence.
    """
    found: dict[tuple[str, str], Identified] = {}
    for channel in {sender.channel for sender in senders}:
        ids = [sender.external_id for sender in senders if sender.channel == channel]
        rows = await session.execute(
            select(ChannelIdentity, Customer, ConversationState)
            .join(Customer, Customer.id == ChannelIdentity.customer_id)
            .outerjoin(ConversationState, ConversationState.customer_id == Customer.id)
            .where(ChannelIdentity.channel == channel, ChannelIdentity.external_id.in_(ids))
        )
        for identity, customer, state in rows.tuples():
            found[(channel, identity.external_id)] = Identified(
                customer, identity, False, customer.last_seen_at, state
            )
    newcomers = [sender for sender in senders if (sender.channel, sender.external_id) not in found]
    created = [
        Customer(name=sender.display_name, created_at=now, tags=[], preferences={})
        for sender in newcomers
    ]
    if created:
        session.add_all(created)
        await session.flush()
    for sender, customer in zip(newcomers, created, strict=True):
        identity = ChannelIdentity(
            channel=sender.channel,
            external_id=sender.external_id,
            chat_id=sender.chat_id,
            customer_id=customer.id,
            display_name=sender.display_name,
            created_at=now,
        )
        session.add(identity)
        found[(sender.channel, sender.external_id)] = Identified(
            customer, identity, is_new=True, previous_seen_at=None
        )
    result = [found[(sender.channel, sender.external_id)] for sender in senders]
    for sender, who in zip(senders, result, strict=True):
        if who.identity.chat_id != sender.chat_id:
            who.identity.chat_id = sender.chat_id
        if who.identity.blocked_at is not None:
            who.identity.blocked_at = None  # they wrote again, so they can be reached again
    return result


async def link_phone(session: AsyncSession, who: Identified, phone: str) -> Identified:
    """Attach a verified phone number; if a record on file has it, that record becomes the customer.

    The chat's own short history (the customer met in chat a moment ago) moves onto the record
    on file, and the temporary customer row is removed, so nothing is lost or duplicated.
    """
    on_file = await session.scalar(select(Customer).where(Customer.phone == phone))
    if on_file is None:
        who.customer.phone = phone
        return who
    if on_file.id == who.customer.id:
        return who
    temporary = who.customer
    for table in _customer_tables():
        if table is ConversationState.__table__:
            continue  # the chat's half-finished step means nothing for the record on file
        await session.execute(
            update(table).where(table.c.customer_id == temporary.id).values(customer_id=on_file.id)
        )
    await session.execute(
        delete(ConversationState).where(ConversationState.customer_id == temporary.id)
    )
    on_file.language = on_file.language or temporary.language
    on_file.visit_count += temporary.visit_count
    await session.delete(temporary)
    await session.flush()
    await session.refresh(who.identity)
    state = await session.get(ConversationState, on_file.id)
    return Identified(on_file, who.identity, False, on_file.last_seen_at, state, just_linked=True)


async def last_services(
    session: AsyncSession, customer_ids: Sequence[int]
) -> dict[int, ServiceRecord]:
    """Each customer's most recent service record (customers without one are left out)."""
    if not customer_ids:
        return {}
    newest = (
        select(
            ServiceRecord.id,
            func.row_number()
            .over(
                partition_by=ServiceRecord.customer_id,
                order_by=(ServiceRecord.performed_at.desc(), ServiceRecord.id.desc()),
            )
            .label("rank"),
        )
        .where(ServiceRecord.customer_id.in_(customer_ids))
        .subquery()
    )
    records = await session.scalars(
        select(ServiceRecord)
        .join(newest, newest.c.id == ServiceRecord.id)
        .where(newest.c.rank == 1)
    )
    return {record.customer_id: record for record in records}


def view(who: Identified, service: ServiceRecord | None) -> CustomerView:
    """The snapshot of the customer that the dialogs get to see.

    `service` is the last service record when the greeting will mention it (the caller reads
    the history only then, which keeps a query off the path of most messages).
    """
    customer = who.customer
    return CustomerView(
        id=customer.id,
        name=customer.name,
        address_as=customer.address_as,
        language=view_language(customer.language),
        is_new=who.is_new,
        previous_seen_at=who.previous_seen_at,
        visit_count=customer.visit_count,
        on_file=customer.on_file,
        just_linked=who.just_linked,
        marketing_opted_out=customer.marketing_opt_out_at is not None,
        last_service=None
        if service is None
        else ServiceSummary(
            kind=service.kind,
            description=service.description,
            performed_at=service.performed_at,
            next_due_at=service.next_due_at,
        ),
        preferences={str(k): str(v) for k, v in _mapping(customer.preferences).items()},
    )


async def erase(session: AsyncSession, customer_id: int) -> None:
    """Delete the customer and every row that refers to them, whatever table it is in."""
    for table in reversed(_customer_tables()):  # children (e.g. replies in the log) first
        await session.execute(delete(table).where(table.c.customer_id == customer_id))
    await session.execute(delete(Customer).where(Customer.id == customer_id))


def _customer_tables() -> list[Table]:
    """Every table that refers to a customer, read from the models so a new one is not missed."""
    return [
        table
        for table in Base.metadata.sorted_tables
        if any(fk.column.table is Customer.__table__ for fk in table.foreign_keys)
        and "customer_id" in table.c
    ]


async def get(session: AsyncSession, customer_id: int) -> Customer:
    return await session.get_one(Customer, customer_id)


def view_language(value: str | None) -> Language | None:
    return "zh" if value == "zh" else "en" if value == "en" else None


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


async def mark_unreachable(
    session: AsyncSession, channel: str, chat_id: str, now: datetime
) -> None:
    """The customer blocked the bot on `channel`: send nothing there until they write again."""
    await session.execute(
        update(ChannelIdentity)
        .where(ChannelIdentity.channel == channel, ChannelIdentity.chat_id == chat_id)
        .values(blocked_at=now)
    )

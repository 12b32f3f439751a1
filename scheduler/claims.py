"""The dispatcher's side of the outbox: claim due rows, read the facts, record what happened.

Claims follow APScheduler 4's SQL data store: due rows are selected `FOR UPDATE SKIP LOCKED` on
PostgreSQL (SQLite has one writer at a time) and leased to one dispatcher (`lease_owner`,
`lease_until`), so a second dispatcher passes them over. Every transition is one statement for
the whole batch; a row goes to `sending` only if it is still queued and still this
dispatcher's, so a campaign cancelled in the meantime is not sent.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import ChannelIdentity, Customer, OutboxMessage
from scheduler.outbox import FINAL, Status
from scheduler.policy import Category

_TABLE = cast(Table, OutboxMessage.__table__)
# Marketing that may have reached the customer counts against the frequency cap.
_MAYBE_DELIVERED = (Status.SENT, Status.SENDING, Status.UNKNOWN)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A due row this dispatcher holds the lease on."""

    id: int
    customer_id: int
    category: Category
    text: str
    expires_at: datetime | None
    attempts: int
    channel: str | None
    chat_id: str | None
    buttons: tuple[str, ...] = ()


async def claim_due(
    session: AsyncSession, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[Claimed]:
    """Lease up to `limit` due rows, oldest first; rows leased by others are passed over."""
    due = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.status == Status.QUEUED,
            OutboxMessage.not_before <= now,
            or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now),
        )
        .order_by(OutboxMessage.not_before, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite renders nothing
    )
    ids = list(await session.scalars(due))
    if not ids:
        return []
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids))
        .values(lease_owner=owner, lease_until=now + lease)
        .execution_options(synchronize_session=False)
    )
    rows = await session.execute(
        select(
            OutboxMessage.id,
            OutboxMessage.customer_id,
            OutboxMessage.category,
            OutboxMessage.text,
            OutboxMessage.expires_at,
            OutboxMessage.attempts,
            OutboxMessage.channel,
            OutboxMessage.chat_id,
            OutboxMessage.buttons,
        )
        .where(OutboxMessage.id.in_(ids))
        .order_by(OutboxMessage.not_before, OutboxMessage.id)
    )
    return [
        Claimed(r[0], r[1], Category(r[2]), r[3], r[4], r[5], r[6], r[7], tuple(r[8] or ()))
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class Facts:
    """What the contact policy and the routing need to know about one customer."""

    timezone: str | None
    marketing_consent: bool
    opted_out: bool
    route: tuple[str, str] | None  # (channel, chat id) of the newest unblocked identity
    has_identity: bool  # on a channel the dispatcher can write to, blocked or not
    recent_marketing: int


async def customer_facts(
    session: AsyncSession, customer_ids: Collection[int], channels: Collection[str], since: datetime
) -> dict[int, Facts]:
    """Facts for each customer: consent, opt-out, zone, where to write, recent marketing."""
    ids = list(set(customer_ids))
    customers = await session.execute(
        select(
            Customer.id,
            Customer.timezone,
            Customer.marketing_consent,
            Customer.marketing_opt_out_at,
        ).where(Customer.id.in_(ids))
    )
    identities = await session.execute(
        select(ChannelIdentity.customer_id, ChannelIdentity.channel, ChannelIdentity.chat_id)
        .add_columns(ChannelIdentity.blocked_at)
        .where(ChannelIdentity.customer_id.in_(ids), ChannelIdentity.channel.in_(list(channels)))
        .order_by(ChannelIdentity.created_at.desc(), ChannelIdentity.id.desc())
    )
    routes: dict[int, tuple[str, str]] = {}
    known: set[int] = set()
    for customer_id, channel, chat_id, blocked_at in identities:
        known.add(customer_id)
        if blocked_at is None:
            routes.setdefault(customer_id, (channel, chat_id))
    counted = await session.execute(
        select(OutboxMessage.customer_id, func.count())
        .where(
            OutboxMessage.customer_id.in_(ids),
            OutboxMessage.category == Category.MARKETING,
            OutboxMessage.status.in_(_MAYBE_DELIVERED),
            OutboxMessage.sent_at >= since,
        )
        .group_by(OutboxMessage.customer_id)
    )
    counts: dict[int, int] = {customer_id: count for customer_id, count in counted}
    return {
        customer_id: Facts(
            timezone=timezone,
            marketing_consent=consent,
            opted_out=opted_out_at is not None,
            route=routes.get(customer_id),
            has_identity=customer_id in known,
            recent_marketing=counts.get(customer_id, 0),
        )
        for customer_id, timezone, consent, opted_out_at in customers
    }


@dataclass(frozen=True, slots=True)
class RowUpdate:
    """A new status for one row; `not_before` set means "queued again for then"."""

    row_id: int
    status: Status
    reason: str | None = None
    delivery_id: str | None = None
    not_before: datetime | None = None
    channel: str | None = None
    chat_id: str | None = None


async def set_status(session: AsyncSession, updates: Sequence[RowUpdate], now: datetime) -> None:
    """Apply per-row outcomes in one statement; leases are dropped."""
    if not updates:
        return
    statement = (
        update(_TABLE)
        .where(_TABLE.c.id == bindparam("row_id"))
        .values(
            status=bindparam("new_status"),
            reason=bindparam("new_reason"),
            delivery_id=func.coalesce(bindparam("new_delivery"), _TABLE.c.delivery_id),
            not_before=func.coalesce(
                bindparam("new_not_before", type_=_TABLE.c.not_before.type), _TABLE.c.not_before
            ),
            channel=func.coalesce(bindparam("new_channel"), _TABLE.c.channel),
            chat_id=func.coalesce(bindparam("new_chat"), _TABLE.c.chat_id),
            finished_at=bindparam("new_finished", type_=_TABLE.c.finished_at.type),
            lease_owner=None,
            lease_until=None,
        )
    )
    await session.execute(
        statement,
        [
            {
                "row_id": u.row_id,
                "new_status": u.status.value,
                "new_reason": u.reason,
                "new_delivery": u.delivery_id,
                "new_not_before": u.not_before,
                "new_channel": u.channel,
                "new_chat": u.chat_id,
                "new_finished": now if u.status in FINAL else None,
            }
            for u in updates
        ],
    )


async def mark_sending(
    session: AsyncSession,
    routes: dict[int, tuple[str, str]],
    owner: str,
    now: datetime,
    lease: timedelta,
) -> set[int]:
    """Mark rows `sending` to their (channel, chat); returns those that still were this
    dispatcher's and queued (a cancelled campaign's rows, for instance, are not)."""
    if not routes:
        return set()
    statement = (
        update(_TABLE)
        .where(
            _TABLE.c.id == bindparam("row_id"),
            _TABLE.c.status == Status.QUEUED.value,
            _TABLE.c.lease_owner == owner,
        )
        .values(
            status=Status.SENDING.value,
            channel=bindparam("route_channel"),
            chat_id=bindparam("route_chat"),
            attempts=_TABLE.c.attempts + 1,
            sent_at=now,
            lease_until=now + lease,
        )
    )
    await session.execute(
        statement,
        [{"row_id": i, "route_channel": c, "route_chat": chat} for i, (c, chat) in routes.items()],
    )
    started = await session.scalars(
        select(OutboxMessage.id).where(
            OutboxMessage.id.in_(list(routes)),
            OutboxMessage.status == Status.SENDING,
            OutboxMessage.lease_owner == owner,
        )
    )
    return set(started)


async def release(session: AsyncSession, ids: Collection[int], owner: str) -> None:
    """Give back leased rows that were not sent; they stay queued for the next round."""
    if ids:
        await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id.in_(list(ids)),
                OutboxMessage.status == Status.QUEUED,
                OutboxMessage.lease_owner == owner,
            )
            .values(lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )

"""The outbox: every proactive message is a row, from `queued` to a final status.

Jobs `enqueue` rows under unique dedupe keys, so queueing the same message twice is a no-op.
The dispatcher (through `scheduler.claims`) marks a row `sending` and commits before calling
the channel, then records `sent`, `skipped` (with the policy's reason), `failed` (with the
error) or `unknown` (the send may or may not have arrived), or queues it again when the failure
proves nothing was delivered. A row still `sending` when a dispatcher takes over was caught
mid-send by a crash: it becomes `unknown` and is never sent again. A channel's request to wait
(429) is stored here too, so it outlives a restart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import cast

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import ChannelPause, OutboxMessage
from scheduler.policy import Category

_TABLE = cast(Table, OutboxMessage.__table__)
_CHUNK = 1_000  # rows per INSERT statement


class Status(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"
    UNKNOWN = "unknown"


FINAL = frozenset({Status.SENT, Status.SKIPPED, Status.FAILED, Status.UNKNOWN})


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A message to queue. `dedupe_key` names it: the same key is queued at most once."""

    dedupe_key: str
    category: Category
    customer_id: int
    text: str
    not_before: datetime
    expires_at: datetime | None = None
    campaign_id: int | None = None
    channel: str | None = None  # None: the customer's newest reachable chat when it is sent
    chat_id: str | None = None
    buttons: tuple[str, ...] = ()  # quick replies offered with the text


async def enqueue(session: AsyncSession, entries: Iterable[OutboxEntry], now: datetime) -> int:
    """Queue the entries whose dedupe key is new; returns how many were queued.

    Keys already queued are looked up first, so a sweep repeating itself every few minutes
    costs index lookups, not failed inserts (which would burn PostgreSQL sequence numbers).
    """
    unique = list({e.dedupe_key: e for e in entries}.values())
    fresh: list[OutboxEntry] = []
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        known = set(
            await session.scalars(
                select(OutboxMessage.dedupe_key).where(
                    OutboxMessage.dedupe_key.in_([e.dedupe_key for e in chunk])
                )
            )
        )
        fresh.extend(e for e in chunk if e.dedupe_key not in known)
    rows = [
        {
            "dedupe_key": e.dedupe_key,
            "category": str(e.category),
            "customer_id": e.customer_id,
            "campaign_id": e.campaign_id,
            "text": e.text,
            "status": Status.QUEUED.value,
            "not_before": e.not_before,
            "expires_at": e.expires_at,
            "attempts": 0,
            "channel": e.channel,
            "chat_id": e.chat_id,
            "buttons": list(e.buttons),
            "created_at": now,
        }
        for e in fresh
    ]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(_TABLE).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(_TABLE.c.id)
    )
    queued = 0
    for start in range(0, len(rows), _CHUNK):
        result = await session.execute(statement, rows[start : start + _CHUNK])
        queued += len(result.all())
    return queued


async def recover_interrupted(session: AsyncSession, now: datetime) -> int:
    """Rows caught mid-send by a crash become `unknown` (never re-sent); leases are dropped.

    Only the process holding the dispatcher role calls this, so no other dispatcher is live.
    """
    interrupted = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == Status.SENDING)
        .values(
            status=Status.UNKNOWN,
            reason="interrupted while sending (the process stopped); not sent again",
            finished_at=now,
            lease_owner=None,
            lease_until=None,
        )
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == Status.QUEUED, OutboxMessage.lease_owner.is_not(None))
        .values(lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(interrupted, "rowcount", 0) or 0)


async def expire_stale_sends(session: AsyncSession, now: datetime) -> int:
    """Rows `sending` past their lease with no outcome recorded become `unknown`.

    A send takes seconds; a row still `sending` after the lease lost its outcome (the
    database failed as it was to be recorded, or its process hung). An outcome that comes
    later still overwrites `unknown`.
    """
    stale = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == Status.SENDING, OutboxMessage.lease_until < now)
        .values(
            status=Status.UNKNOWN,
            reason="no outcome recorded within the lease; not sent again",
            finished_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(stale, "rowcount", 0) or 0)


async def pauses(session: AsyncSession, now: datetime) -> dict[str, datetime]:
    """Channels that asked us to wait, and until when (only pauses still running)."""
    rows = await session.execute(
        select(ChannelPause.channel, ChannelPause.paused_until).where(
            ChannelPause.paused_until > now
        )
    )
    return {channel: until for channel, until in rows}


async def pause(session: AsyncSession, channel: str, until: datetime, reason: str) -> None:
    """Record that `channel` takes nothing before `until` (kept across restarts)."""
    row = await session.get(ChannelPause, channel)
    if row is None:
        session.add(ChannelPause(channel=channel, paused_until=until, reason=reason))
    elif until > row.paused_until:
        row.paused_until, row.reason = until, reason

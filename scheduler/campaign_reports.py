"""What became of a campaign: its messages by status, skip reasons, errors, and the unknowns.

`unknown` rows are listed one by one: they were caught mid-send by a crash (or the platform's
answer was lost), so the customer may or may not have the message, and it is never sent again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import Campaign, Customer, OutboxMessage
from scheduler.campaigns import get_campaign
from scheduler.outbox import FINAL, Status


@dataclass(frozen=True, slots=True)
class UnknownDelivery:
    customer_id: int
    name: str | None
    chat: str | None
    sent_at: datetime | None
    reason: str | None


@dataclass(slots=True)
class CampaignReport:
    campaign: Campaign
    by_status: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)  # by reason
    failed: Counter[str] = field(default_factory=Counter)  # by error
    unknown: list[UnknownDelivery] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def finished(self) -> int:
        return sum(n for status, n in self.by_status.items() if status in FINAL)


async def counts_by_status(session: AsyncSession, campaign_id: int) -> Counter[str]:
    rows = await session.execute(
        select(OutboxMessage.status, func.count())
        .where(OutboxMessage.campaign_id == campaign_id)
        .group_by(OutboxMessage.status)
    )
    return Counter({status: count for status, count in rows})


async def campaign_report(session: AsyncSession, campaign_id: int) -> CampaignReport:
    """The campaign with its messages counted by status, reason and error."""
    report = CampaignReport(await get_campaign(session, campaign_id))
    report.by_status = await counts_by_status(session, campaign_id)
    reasons = await session.execute(
        select(OutboxMessage.status, OutboxMessage.reason, func.count())
        .where(
            OutboxMessage.campaign_id == campaign_id,
            OutboxMessage.status.in_([Status.SKIPPED, Status.FAILED]),
        )
        .group_by(OutboxMessage.status, OutboxMessage.reason)
    )
    for status, reason, count in reasons:
        target = report.skipped if status == Status.SKIPPED else report.failed
        target[reason or "?"] += count
    unknown = await session.execute(
        select(
            OutboxMessage.customer_id,
            func.coalesce(Customer.address_as, Customer.name),
            OutboxMessage.chat_id,
            OutboxMessage.sent_at,
            OutboxMessage.reason,
        )
        .join(Customer, Customer.id == OutboxMessage.customer_id)
        .where(OutboxMessage.campaign_id == campaign_id, OutboxMessage.status == Status.UNKNOWN)
        .order_by(OutboxMessage.id)
    )
    report.unknown = [UnknownDelivery(*row) for row in unknown]
    return report


async def list_campaigns(
    session: AsyncSession, limit: int = 50
) -> list[tuple[Campaign, Counter[str]]]:
    """The latest campaigns, newest first, with their messages counted by status."""
    campaigns = list(
        await session.scalars(select(Campaign).order_by(Campaign.id.desc()).limit(limit))
    )
    return [(c, await counts_by_status(session, c.id)) for c in campaigns]


@dataclass(frozen=True, slots=True)
class Progress:
    total: int  # messages of the campaign
    finished: int  # sent, skipped, failed or unknown
    due: int  # queued and due now, or being sent
    waiting: int  # queued for later (quiet hours, a pause, a retry)
    next_due: datetime | None  # when the first waiting one is due


async def campaign_progress(session: AsyncSession, campaign_id: int, now: datetime) -> Progress:
    """How far a campaign has got, for a progress bar."""
    is_due = OutboxMessage.not_before <= now
    rows = await session.execute(
        select(OutboxMessage.status, is_due, func.count(), func.min(OutboxMessage.not_before))
        .where(OutboxMessage.campaign_id == campaign_id)
        .group_by(OutboxMessage.status, is_due)
    )
    total = finished = due = waiting = 0
    next_due: datetime | None = None
    for status, due_now, count, first in rows:
        total += count
        if status in FINAL:
            finished += count
        elif status == Status.SENDING or due_now:
            due += count
        else:
            waiting += count
            next_due = first if next_due is None else min(next_due, first)
    return Progress(total, finished, due, waiting, next_due)

"""Campaigns: marketing's message to a segment of customers, queued into the outbox when due.

A campaign is a row with a due time (`send_at`), never an APScheduler job: the campaign tick
queues every due campaign's messages under `campaign:<id>:<customer>` keys and marks it
`queued`, so a tick repeated after a crash adds nothing. An event invitation is a campaign
with `event_on`; it is due `event_lead_days` before the event and `{date}` names the day.
Consent, opt-outs, quiet hours and the frequency cap are the dispatcher's business, as for
every proactive message; the segment only chooses who is asked about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from sqlalchemy import Row, Select, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Settings
from bot.storage.database import Database
from bot.storage.models import Campaign, ChannelIdentity, Customer, OutboxMessage
from scheduler.localtime import at_local, zone
from scheduler.messages import TemplateError, addressee, campaign_text, check_campaign_text
from scheduler.outbox import OutboxEntry, Status, enqueue
from scheduler.policy import Category, SkipReason
from scheduler.segments import SegmentError, parse_segment, where

EVENT_INVITATION_TIME = time(10, 0)  # business's local time, `event_lead_days` before the event


class CampaignStatus(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    CANCELLED = "cancelled"


class CampaignError(ValueError):
    """A campaign that cannot be created, sent or cancelled; the message says why."""


def event_send_at(event_on: date, settings: Settings) -> datetime:
    """When an event's invitation goes out: `event_lead_days` before, at 10:00 local."""
    local_zone = zone(None, settings.timezone)
    day = event_on - timedelta(days=settings.event_lead_days)
    return at_local(day, EVENT_INVITATION_TIME, local_zone)


async def create_campaign(
    session: AsyncSession,
    *,
    text: str,
    segment: str,
    send_at: datetime | None,
    event_on: date | None,
    name: str | None,
    settings: Settings,
    now: datetime,
) -> Campaign:
    """Check the text and the segment, and store the campaign (not queued yet)."""
    try:
        check_campaign_text(text, event=event_on is not None)
        parsed = parse_segment(segment)
    except (TemplateError, SegmentError) as error:
        raise CampaignError(str(error)) from None
    if send_at is None:
        if event_on is None:
            raise CampaignError("say when to send it (--at) or give the event's date (--event)")
        send_at = event_send_at(event_on, settings)
    title = name or text.strip().splitlines()[0][:60]
    campaign = Campaign(
        name=title[:200],
        text=text.strip(),
        segment=str(parsed) if parsed.conditions else "",
        event_on=event_on,
        send_at=send_at,
        status=CampaignStatus.SCHEDULED,
        created_at=now,
    )
    session.add(campaign)
    await session.flush()
    return campaign


def audience(
    segment: str, dialect: str, settings: Settings, reachable: bool = True
) -> Select[tuple[int, str | None, str | None, str | None, bool, datetime | None]]:
    """The customers a segment selects (with a chat on some channel, when `reachable`)."""
    query = select(
        Customer.id,
        Customer.language,
        Customer.address_as,
        Customer.name,
        Customer.marketing_consent,
        Customer.marketing_opt_out_at,
    ).where(where(parse_segment(segment), dialect, settings.default_language))
    if reachable:
        query = query.where(exists().where(ChannelIdentity.customer_id == Customer.id))
    return query.order_by(Customer.id)


@dataclass(frozen=True, slots=True)
class Sample:
    customer_id: int
    name: str | None
    text: str


@dataclass(slots=True)
class Preview:
    matched: int = 0  # customers in the segment
    reachable: int = 0  # ... with a chat the bot can write to
    eligible: int = 0  # ... who also consented and did not opt out
    samples: list[Sample] = field(default_factory=list)


async def preview(
    session: AsyncSession, campaign: Campaign, settings: Settings, samples: int = 3
) -> Preview:
    """How many customers the campaign reaches, and how its text reads for a few of them."""
    dialect = session.get_bind().dialect.name
    result = Preview()
    everyone = audience(campaign.segment, dialect, settings, reachable=False).subquery()
    result.matched = await session.scalar(select(func.count()).select_from(everyone)) or 0
    for row in await session.execute(audience(campaign.segment, dialect, settings)):
        result.reachable += 1
        customer_id, _, address_as, name, consent, opted_out_at = row
        result.eligible += bool(consent and opted_out_at is None)
        if len(result.samples) < samples:
            text = _render(campaign, row, settings)
            result.samples.append(Sample(customer_id, address_as or name, text))
    return result


def _render(
    campaign: Campaign,
    row: Row[tuple[int, str | None, str | None, str | None, bool, datetime | None]],
    settings: Settings,
) -> str:
    who = addressee(row[1], row[2], row[3], settings.default_language)
    return campaign_text(campaign.text, who, campaign.event_on)


async def queue_campaign(
    session: AsyncSession, campaign: Campaign, settings: Settings, now: datetime
) -> int:
    """Write the campaign's outbox rows (idempotent) and mark it queued; returns new rows."""
    if campaign.status == CampaignStatus.CANCELLED:
        raise CampaignError(f"campaign {campaign.id} was cancelled")
    dialect = session.get_bind().dialect.name
    expires = None
    if campaign.event_on is not None:
        expires = at_local(campaign.event_on, time(0, 0), zone(None, settings.timezone))
    rows = await session.execute(audience(campaign.segment, dialect, settings))
    entries = [
        OutboxEntry(
            dedupe_key=f"campaign:{campaign.id}:{row[0]}",
            category=Category.MARKETING,
            customer_id=row[0],
            text=_render(campaign, row, settings),
            not_before=now,
            expires_at=expires,
            campaign_id=campaign.id,
        )
        for row in rows
    ]
    queued = await enqueue(session, entries, now)
    campaign.status, campaign.queued_at = CampaignStatus.QUEUED, campaign.queued_at or now
    return queued


async def queue_due_campaigns(database: Database, clock: Clock, settings: Settings) -> int:
    """The campaign tick: queue every scheduled campaign whose time has come."""
    now = clock.now()
    async with database.sessions() as session:
        due = list(
            await session.scalars(
                select(Campaign.id)
                .where(Campaign.status == CampaignStatus.SCHEDULED, Campaign.send_at <= now)
                .order_by(Campaign.send_at, Campaign.id)
            )
        )
    queued = 0
    for campaign_id in due:  # one transaction each: a big campaign does not hold up the rest
        async with database.transaction() as session:
            campaign = await session.get_one(Campaign, campaign_id)
            if campaign.status == CampaignStatus.SCHEDULED:
                queued += await queue_campaign(session, campaign, settings, now)
    return queued


async def send_now(
    session: AsyncSession, campaign_id: int, settings: Settings, now: datetime
) -> int:
    """Queue a campaign at once instead of at its time; returns the rows queued."""
    campaign = await get_campaign(session, campaign_id)
    if campaign.status == CampaignStatus.SCHEDULED and campaign.send_at > now:
        campaign.send_at = now
    return await queue_campaign(session, campaign, settings, now)


async def cancel_campaign(session: AsyncSession, campaign_id: int, now: datetime) -> int:
    """Cancel a campaign; its messages not sent yet are skipped. Returns how many were."""
    campaign = await get_campaign(session, campaign_id)
    campaign.status, campaign.cancelled_at = CampaignStatus.CANCELLED, now
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.campaign_id == campaign_id, OutboxMessage.status == Status.QUEUED)
        .values(status=Status.SKIPPED, reason=SkipReason.CANCELLED.value, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def get_campaign(session: AsyncSession, campaign_id: int) -> Campaign:
    campaign = await session.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignError(f"no campaign with id {campaign_id} (see `concierge campaign list`)")
    return campaign

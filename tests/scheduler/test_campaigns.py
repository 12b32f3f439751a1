"""Campaigns: segments, preview, queueing once, cancelling, status, event invitations."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import update

from bot.clock import ManualClock
from bot.config import Settings
from bot.storage.database import Database
from bot.storage.models import Campaign, OutboxMessage, ServiceRecord
from scheduler.campaign_reports import campaign_report
from scheduler.campaigns import (
    CampaignError,
    audience,
    cancel_campaign,
    create_campaign,
    event_send_at,
    preview,
    queue_due_campaigns,
)
from scheduler.dispatcher import Dispatcher
from scheduler.segments import SegmentError, parse_segment
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.scheduler.conftest import add_customer, outbox_rows


async def new_campaign(
    db: Database,
    clock: ManualClock,
    settings: Settings,
    text: str = "Hello {name}!",
    segment: str = "",
    send_at: datetime | None = None,
    event_on: date | None = None,
) -> Campaign:
    async with db.transaction() as session:
        return await create_campaign(
            session,
            text=text,
            segment=segment,
            send_at=send_at if send_at or event_on else clock.now(),
            event_on=event_on,
            name=None,
            settings=settings,
            now=clock.now(),
        )


async def service(db: Database, customer: int, kind: str, on: date, clock: ManualClock) -> None:
    async with db.transaction() as session:
        session.add(
            ServiceRecord(customer_id=customer, kind=kind, performed_at=on, created_at=clock.now())
        )


@pytest.fixture
async def people(db: Database, clock: ManualClock) -> dict[str, int]:
    now = clock.now()
    ids = {
        "wei": await add_customer(db, now, chat=1, name="Zhang Wei", language="zh",
                                  tags=["vip"], birthday=date(1980, 7, 3)),
        "anna": await add_customer(db, now, chat=2, name="Anna", language="en",
                                   tags=["vip", "sedan"], consent=False),
        "li": await add_customer(db, now, chat=3, name="Li", language="zh",
                                 birthday=date(1990, 7, 20), opted_out=True),
        "bob": await add_customer(db, now, chat=None, name="Bob", language="en"),
        "nolang": await add_customer(db, now, chat=4, name="Nolang", language=None),
    }  # fmt: skip
    await service(db, ids["wei"], "oil change", date(2025, 10, 1), clock)
    await service(db, ids["anna"], "tyres", date(2026, 3, 1), clock)
    await service(db, ids["anna"], "Oil Change", date(2025, 1, 1), clock)
    return ids


@pytest.mark.parametrize(
    ("segment", "expected"),
    [
        ("", {"wei", "anna", "li", "nolang"}),
        ("language=zh", {"wei", "li"}),
        ("language=en", {"anna", "nolang"}),  # no language on file: the default (en)
        ("tag=vip", {"wei", "anna"}),
        ("tag=sedan|gold", {"anna"}),
        ("tag=vip,tag=sedan", {"anna"}),
        ("last_visit_before=2026-01-01", {"wei"}),
        ("last_visit_after=2026-01-01", {"anna"}),
        ("service=oil change", {"wei", "anna"}),
        ("birthday_month=7", {"wei", "li"}),
        ("consent=yes", {"wei", "nolang"}),
        ("consent=no", {"anna", "li"}),
        ("language=zh,tag=vip,last_visit_before=2026-01-01", {"wei"}),
    ],
)
async def test_segments_select_customers(
    db: Database, settings: Settings, people: dict[str, int], segment: str, expected: set[str]
) -> None:
    async with db.sessions() as session:
        rows = await session.execute(audience(segment, db.dialect, settings))
        chosen = {row[0] for row in rows}
    assert chosen == {people[name] for name in expected}


@pytest.mark.parametrize(
    ("segment", "message"),
    [
        ("foo=1", "write key=value with a key among"),
        ("language", "write key=value"),
        ("language=fr", "language is one of en, zh"),
        ("birthday_month=13", "birthday_month is a number from 1 to 12"),
        ("last_visit_before=01/02/2026", "YYYY-MM-DD"),
        ("consent=maybe", "consent is yes or no"),
        ("tag=", "no value"),
    ],
)
def test_a_bad_segment_says_what_is_wrong(segment: str, message: str) -> None:
    with pytest.raises(SegmentError, match=message):
        parse_segment(segment)


async def test_preview_counts_and_renders_names(
    db: Database, clock: ManualClock, settings: Settings, people: dict[str, int]
) -> None:
    campaign = await new_campaign(db, clock, settings, text="Hi {name}, 20% off!")
    async with db.sessions() as session:
        shown = await preview(session, campaign, settings, samples=5)

    assert (shown.matched, shown.reachable, shown.eligible) == (5, 4, 2)
    texts = {sample.customer_id: sample.text for sample in shown.samples}
    assert texts[people["anna"]] == "Hi Anna, 20% off!\n\nSend /stop to stop receiving offers."
    assert texts[people["wei"]].startswith("Hi Zhang Wei, 20% off!\n\n回复 /stop")


async def test_a_campaign_is_queued_once_when_due_and_sent_by_the_policy(
    db: Database,
    clock: ManualClock,
    settings: Settings,
    people: dict[str, int],
    dispatcher: Dispatcher,
    telegram_api: FakeTelegramAPI,
) -> None:
    campaign = await new_campaign(db, clock, settings, send_at=clock.now() + timedelta(hours=1))

    assert await queue_due_campaigns(db, clock, settings) == 0
    clock.advance(timedelta(hours=1))
    assert await queue_due_campaigns(db, clock, settings) == 4
    assert await queue_due_campaigns(db, clock, settings) == 0
    await dispatcher.dispatch_due()

    assert sorted(m.chat_id for m in telegram_api.sent) == [1, 4]
    async with db.sessions() as session:
        report = await campaign_report(session, campaign.id)
    assert report.by_status == {"sent": 2, "skipped": 2}
    assert report.skipped == {"no_consent": 1, "opted_out": 1}
    assert report.campaign.status == "queued"
    keys = sorted(r.dedupe_key for r in await outbox_rows(db))
    assert keys[0] == f"campaign:{campaign.id}:{people['wei']}"


async def test_cancelling_skips_what_was_not_sent(
    db: Database,
    clock: ManualClock,
    settings: Settings,
    people: dict[str, int],
    dispatcher: Dispatcher,
    telegram_api: FakeTelegramAPI,
) -> None:
    campaign = await new_campaign(db, clock, settings, segment="consent=yes")
    await queue_due_campaigns(db, clock, settings)

    async with db.transaction() as session:
        assert await cancel_campaign(session, campaign.id, clock.now()) == 2
    await dispatcher.dispatch_due()
    assert await queue_due_campaigns(db, clock, settings) == 0

    assert telegram_api.sent == []
    async with db.sessions() as session:
        report = await campaign_report(session, campaign.id)
    assert report.skipped == {"cancelled": 2}
    assert report.campaign.status == "cancelled"


async def test_status_lists_unknown_deliveries(
    db: Database, clock: ManualClock, settings: Settings, people: dict[str, int]
) -> None:
    campaign = await new_campaign(db, clock, settings, segment="consent=yes")
    await queue_due_campaigns(db, clock, settings)
    async with db.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.customer_id == people["wei"])
            .values(status="unknown", chat_id="1", reason="interrupted", sent_at=clock.now())
        )
        report = await campaign_report(session, campaign.id)

    assert report.by_status == {"unknown": 1, "queued": 1}
    [unknown] = report.unknown
    assert (unknown.customer_id, unknown.name, unknown.chat) == (people["wei"], "Zhang Wei", "1")
    assert (report.total, report.finished) == (2, 1)


async def test_an_event_invitation_goes_out_two_weeks_before_and_names_the_day(
    db: Database, clock: ManualClock, settings: Settings, people: dict[str, int]
) -> None:
    event = date(2026, 6, 20)
    campaign = await new_campaign(
        db, clock, settings, text="{name}, join us on {date}!", segment="consent=yes",
        event_on=event, send_at=None,
    )  # fmt: skip
    assert campaign.send_at == datetime(2026, 6, 6, 10, 0, tzinfo=UTC)
    assert event_send_at(event, settings) == campaign.send_at

    clock.advance(campaign.send_at - clock.now())
    assert await queue_due_campaigns(db, clock, settings) == 2

    texts = sorted(r.text for r in await outbox_rows(db))
    assert texts[0].startswith("Nolang, join us on June 20, 2026!")
    assert texts[1].startswith("Zhang Wei, join us on 2026年6月20日!")
    assert {r.expires_at for r in await outbox_rows(db)} == {datetime(2026, 6, 20, tzinfo=UTC)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Hello {first_name}", "unknown placeholder {first_name}; use {name}"),
        ("50% off {", "stray brace"),
        ("   ", "empty"),
        ("x" * 5000, "at most 3800"),
    ],
)
async def test_a_campaign_text_that_cannot_be_sent_is_refused(
    db: Database, clock: ManualClock, settings: Settings, text: str, message: str
) -> None:
    with pytest.raises(CampaignError, match=message):
        await new_campaign(db, clock, settings, text=text)

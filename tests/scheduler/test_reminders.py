"""Reminders: maintenance due in a week, appointments the day before, each sent once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from bot.clock import ManualClock
from bot.config import Settings
from bot.storage.database import Database
from bot.storage.models import Appointment, ServiceRecord
from scheduler.dispatcher import Dispatcher
from scheduler.reminders import queue_reminders
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.scheduler.conftest import add_customer, outbox_rows

TODAY = date(2026, 5, 1)  # the clock starts 2026-05-01 10:00 UTC


async def record(
    db: Database, clock: ManualClock, customer: int, kind: str, done: date, due: date | None
) -> int:
    async with db.transaction() as session:
        row = ServiceRecord(
            customer_id=customer, kind=kind, performed_at=done, next_due_at=due,
            created_at=clock.now(),
        )  # fmt: skip
        session.add(row)
        await session.flush()
        return row.id


async def book(db: Database, clock: ManualClock, customer: int, starts: datetime) -> int:
    async with db.transaction() as session:
        row = Appointment(customer_id=customer, kind="oil change", starts_at=starts,
                          created_at=clock.now())  # fmt: skip
        session.add(row)
        await session.flush()
        return row.id


async def test_maintenance_is_reminded_a_week_ahead_once(
    db: Database,
    clock: ManualClock,
    settings: Settings,
    dispatcher: Dispatcher,
    telegram_api: FakeTelegramAPI,
) -> None:
    anna = await add_customer(db, clock.now(), chat=1, name="Anna")
    due = TODAY + timedelta(days=7)
    service = await record(db, clock, anna, "oil change", date(2025, 11, 1), due)
    await record(db, clock, anna, "tyres", date(2025, 11, 1), TODAY + timedelta(days=8))

    assert await queue_reminders(db, clock, settings) == 1
    assert await queue_reminders(db, clock, settings) == 0
    clock.advance(timedelta(days=1))
    assert await queue_reminders(db, clock, settings) == 1  # the tyres, now a week ahead
    await dispatcher.dispatch_due()

    rows = await outbox_rows(db)
    assert rows[0].dedupe_key == f"reminder:maintenance:{service}:2026-05-08"
    assert rows[0].category == "reminder"
    assert telegram_api.sent_to(1)[0].text == (
        "Hello, Anna! A reminder from Concierge: your next oil change is due on May 8, 2026. "
        "Reply here if you'd like to book a time."
    )


async def test_a_missed_reminder_still_goes_out_before_the_due_date_unless_done_again(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    wei = await add_customer(db, clock.now(), chat=1, name="张伟", language="zh")
    bob = await add_customer(db, clock.now(), chat=2, name="Bob")
    await record(db, clock, wei, "保养", date(2025, 11, 1), TODAY + timedelta(days=3))
    await record(db, clock, bob, "oil change", date(2025, 11, 1), TODAY + timedelta(days=3))
    await record(db, clock, bob, "oil change", date(2026, 4, 20), date(2026, 10, 20))
    await record(db, clock, bob, "brakes", date(2025, 11, 1), TODAY - timedelta(days=1))

    assert await queue_reminders(db, clock, settings) == 1

    [row] = await outbox_rows(db)
    assert row.customer_id == wei
    assert row.text == (
        "张伟，您好！Concierge温馨提醒：您的下一次保养将于2026年5月4日到期。"
        "如需预约时间，请直接回复。"
    )


async def test_appointments_are_reminded_the_day_before_in_the_customers_zone(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    wei = await add_customer(db, clock.now(), chat=1, name="Zhang", timezone="Asia/Shanghai")
    anna = await add_customer(db, clock.now(), chat=2, name="Anna")
    # 2 May 10:30 in Shanghai is tomorrow there: due now.
    soon = await book(db, clock, wei, datetime(2026, 5, 2, 2, 30, tzinfo=UTC))
    await book(db, clock, anna, datetime(2026, 5, 4, 10, 0, tzinfo=UTC))  # in three days
    await book(db, clock, anna, datetime(2026, 5, 1, 8, 0, tzinfo=UTC))  # already over

    assert await queue_reminders(db, clock, settings) == 1

    [row] = await outbox_rows(db)
    assert row.dedupe_key == f"reminder:appointment:{soon}:2026-05-02T02:30"
    assert row.expires_at == datetime(2026, 5, 2, 2, 30, tzinfo=UTC)
    assert "appointment at Concierge on May 2, 2026 at 10:30\u202fAM" in row.text  # Babel's space
    clock.advance(timedelta(days=2))
    assert await queue_reminders(db, clock, settings) == 1  # Anna's, the day before


async def test_customers_without_a_chat_get_no_reminder_rows(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    on_file = await add_customer(db, clock.now(), chat=None)
    await record(db, clock, on_file, "oil change", date(2025, 11, 1), TODAY + timedelta(days=2))
    await book(db, clock, on_file, clock.now() + timedelta(hours=5))

    assert await queue_reminders(db, clock, settings) == 0

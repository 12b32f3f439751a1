"""Birthday greetings: once a year whatever happens, 29 February, downtime, time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bot.clock import ManualClock
from bot.config import Settings
from bot.storage.database import Database
from scheduler.birthdays import birthday_on, queue_birthdays, zones_by_day
from scheduler.dispatcher import Dispatcher
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.scheduler.conftest import add_customer, outbox_rows

TODAY = date(2026, 5, 1)  # the clock fixture starts at 2026-05-01 10:00 UTC


def at(clock: ManualClock, moment: datetime) -> None:
    """Set the manual clock to `moment`, backwards too."""
    clock.advance(moment - clock.now())


async def test_a_birthday_is_greeted_once_whatever_the_ticks_and_the_clock_do(
    db: Database,
    clock: ManualClock,
    settings: Settings,
    dispatcher: Dispatcher,
    telegram_api: FakeTelegramAPI,
) -> None:
    await add_customer(db, clock.now(), chat=7, name="Anna", birthday=date(1990, 5, 1))

    assert await queue_birthdays(db, clock, settings) == 1
    assert await queue_birthdays(db, clock, settings) == 0  # a doubled tick
    await dispatcher.dispatch_due()
    restarted = Dispatcher(db, clock, dispatcher.channels, settings)  # as after a restart
    await restarted.recover()
    assert await queue_birthdays(db, clock, settings) == 0
    await restarted.dispatch_due()
    at(clock, datetime(2026, 5, 1, 9, 30, tzinfo=UTC))  # the clock set back, same day
    assert await queue_birthdays(db, clock, settings) == 0
    at(clock, datetime(2026, 5, 1, 23, 59, tzinfo=UTC))
    assert await queue_birthdays(db, clock, settings) == 0
    await restarted.dispatch_due()

    assert [m.text for m in telegram_api.sent_to(7)] == [
        "Happy birthday, Anna! 🎂 Everyone at Concierge wishes you a wonderful year."
    ]
    at(clock, datetime(2027, 5, 1, 12, 0, tzinfo=UTC))
    assert await queue_birthdays(db, clock, settings) == 1  # next year, next greeting
    assert [r.dedupe_key for r in await outbox_rows(db)] == ["birthday:2026:1", "birthday:2027:1"]


async def test_29_february_is_greeted_on_28_february_in_other_years(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    await add_customer(db, clock.now(), chat=7, birthday=date(2000, 2, 29))

    at(clock, datetime(2027, 2, 28, 10, 0, tzinfo=UTC))
    assert await queue_birthdays(db, clock, settings) == 1
    at(clock, datetime(2027, 3, 1, 10, 0, tzinfo=UTC))
    assert await queue_birthdays(db, clock, settings) == 0
    at(clock, datetime(2028, 2, 28, 10, 0, tzinfo=UTC))  # a leap year: not yet
    assert await queue_birthdays(db, clock, settings) == 0
    at(clock, datetime(2028, 2, 29, 10, 0, tzinfo=UTC))
    assert await queue_birthdays(db, clock, settings) == 1
    assert birthday_on(2027, 2, 29) == date(2027, 2, 28)
    assert birthday_on(2028, 2, 29) == date(2028, 2, 29)


async def test_after_downtime_todays_birthdays_go_out_but_yesterdays_are_not_replayed(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    today = await add_customer(db, clock.now(), chat=1, birthday=date(1980, 5, 1))
    await add_customer(db, clock.now(), chat=2, birthday=date(1980, 4, 30))
    await add_customer(db, clock.now(), chat=3, birthday=date(1980, 5, 2))

    at(clock, datetime(2026, 5, 1, 18, 0, tzinfo=UTC))  # the bot was down all morning
    assert await queue_birthdays(db, clock, settings) == 1

    rows = await outbox_rows(db)
    assert [r.customer_id for r in rows] == [today]
    assert rows[0].expires_at == datetime(2026, 5, 2, 0, 0, tzinfo=UTC)


async def test_the_birthday_hour_is_the_customers_own(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    shanghai = await add_customer(
        db, clock.now(), chat=1, birthday=date(1985, 5, 1), timezone="Asia/Shanghai"
    )
    los_angeles = await add_customer(
        db, clock.now(), chat=2, birthday=date(1985, 5, 1), timezone="America/Los_Angeles"
    )

    at(clock, datetime(2026, 4, 30, 23, 0, tzinfo=UTC))  # 07:00 on 1 May in Shanghai
    assert await queue_birthdays(db, clock, settings) == 0
    at(clock, datetime(2026, 5, 1, 1, 0, tzinfo=UTC))  # 09:00 in Shanghai, 18:00 (30 Apr) in LA
    assert await queue_birthdays(db, clock, settings) == 1
    at(clock, datetime(2026, 5, 1, 16, 0, tzinfo=UTC))  # 09:00 in Los Angeles
    assert await queue_birthdays(db, clock, settings) == 1

    assert [r.customer_id for r in await outbox_rows(db)] == [shanghai, los_angeles]


async def test_greetings_are_in_the_customers_language_and_only_for_customers_with_a_chat(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    await add_customer(db, clock.now(), chat=1, name="张伟", language="zh", birthday=TODAY)
    await add_customer(db, clock.now(), chat=None, name="On file only", birthday=TODAY)
    await add_customer(db, clock.now(), chat=2, name=None, birthday=TODAY, address_as=None)

    assert await queue_birthdays(db, clock, settings) == 2

    texts = [r.text for r in await outbox_rows(db)]
    assert texts[0].startswith("张伟，生日快乐！")
    assert texts[1].startswith("Happy birthday! 🎂")


def test_the_query_looks_only_where_the_birthday_hour_has_come() -> None:
    days = zones_by_day(datetime(2026, 5, 1, 10, 0, tzinfo=UTC), 9)
    assert set(days) == {date(2026, 4, 30), date(2026, 5, 1)}
    assert "Pacific/Pago_Pago" in days[date(2026, 4, 30)]  # 23:00 there
    assert {"UTC", "Asia/Shanghai", "Europe/London"} <= days[date(2026, 5, 1)]
    assert not any("America/Los_Angeles" in zones for zones in days.values())  # 03:00 there

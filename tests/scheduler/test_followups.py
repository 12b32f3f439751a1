"""Post-service follow-ups: the rating question 3 days after at 10:00 local, the second a week
later, once each, never about history, never when already rated; unanswered questions lapse."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select

from bot import customers, ratings
from bot.channels.telegram import TelegramChannel
from bot.clock import ManualClock
from bot.config import Settings
from bot.engine import Engine
from bot.storage.database import Database
from bot.storage.models import OutboxMessage, Rating, RatingRequest, Ticket
from dialogs.types import Inbound
from scheduler.dispatcher import Dispatcher
from scheduler.followups import SKIPPED_DECLINED, SKIPPED_FOR_STAFF, queue_follow_ups
from scheduler.ratelimit import Limits
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.scheduler.conftest import add_customer, outbox_rows, serve

TODAY = date(2026, 5, 1)  # the clock starts 2026-05-01 10:00 UTC


async def requests(db: Database) -> list[RatingRequest]:
    async with db.sessions() as session:
        return list(await session.scalars(select(RatingRequest).order_by(RatingRequest.id)))


def at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


async def test_the_rating_question_goes_three_days_later_at_ten_local_with_buttons(
    db: Database,
    clock: ManualClock,
    settings: Settings,
    dispatcher: Dispatcher,
    telegram_api: FakeTelegramAPI,
) -> None:
    wei = await add_customer(db, clock.now(), chat=1, name="张伟", language="zh",
                             timezone="Asia/Shanghai")  # fmt: skip
    anna = await add_customer(db, clock.now(), chat=2, name="Anna")  # the business's zone: UTC
    service = await serve(db, clock, wei, "保养", TODAY)
    await serve(db, clock, anna, "oil change", TODAY)

    assert await queue_follow_ups(db, clock, settings) == 2

    first, second = await outbox_rows(db)
    assert first.dedupe_key == f"followup:first:{service}"
    assert first.category == "reminder"
    assert first.not_before == datetime(2026, 5, 4, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    assert second.not_before == at(date(2026, 5, 4))
    assert (
        first.text
        == "张伟，您好！您在2026年5月1日做的保养，我们的服务您还满意吗？请给我们打 1 到 5 分。"
    )
    assert first.buttons == ["5 ⭐ 非常满意", "4 满意", "3 一般", "2 不满意", "1 非常不满意"]
    [request, _] = await requests(db)
    assert (request.service_record_id, request.outbox_key) == (service, first.dedupe_key)
    assert request.status == "pending"

    await dispatcher.dispatch_due()
    assert telegram_api.sent == []  # queued ahead, due in three days
    clock.advance(datetime(2026, 5, 4, 2, 0, tzinfo=UTC) - clock.now())
    await dispatcher.dispatch_due()
    [sent] = telegram_api.sent
    assert sent.chat_id == 1
    assert sent.button_texts == first.buttons
    assert telegram_api.sent_to(2) == []  # Anna's goes at 10:00 UTC


async def test_the_delay_can_be_set_per_service_kind(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    anna = await add_customer(db, clock.now(), chat=1, name="Anna")
    await serve(db, clock, anna, "tyre change", TODAY)
    await serve(db, clock, anna, "oil change", TODAY)
    tuned = settings.model_copy(update={"follow_up_days_by_kind": {"tyre change": 5}})

    assert await queue_follow_ups(db, clock, tuned) == 2

    tyres, oil = await outbox_rows(db)
    assert tyres.not_before == at(date(2026, 5, 6))
    assert oil.not_before == at(date(2026, 5, 4))


async def test_the_second_delay_can_be_set_per_service_kind(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    anna = await add_customer(db, clock.now(), chat=1, name="Anna")
    await serve(db, clock, anna, "tyre change", TODAY)
    await serve(db, clock, anna, "oil change", TODAY)
    tuned = settings.model_copy(update={"follow_up_second_days_by_kind": {"tyre change": 14}})
    await queue_follow_ups(db, clock, tuned)
    clock.advance(at(date(2026, 5, 11)) - clock.now())  # oil: 3 + 7 days
    assert await queue_follow_ups(db, clock, tuned) == 1
    clock.advance(at(date(2026, 5, 18)) - clock.now())  # tyres: 3 + 14 days
    assert await queue_follow_ups(db, clock, tuned) == 1
    seconds = [row for row in await outbox_rows(db) if row.dedupe_key.startswith("followup:second")]
    assert [row.not_before for row in seconds] == [at(date(2026, 5, 11)), at(date(2026, 5, 18))]


async def test_the_second_follow_up_comes_a_week_after_the_first_in_other_words(
    db: Database,
    clock: ManualClock,
    settings: Settings,
    dispatcher: Dispatcher,
    telegram_api: FakeTelegramAPI,
) -> None:
    anna = await add_customer(db, clock.now(), chat=1, name="Anna")
    service = await serve(db, clock, anna, "oil change", TODAY)
    await queue_follow_ups(db, clock, settings)
    clock.advance(at(date(2026, 5, 4)) - clock.now())
    await dispatcher.dispatch_due()

    clock.advance(at(date(2026, 5, 11), 9) - clock.now())
    assert await queue_follow_ups(db, clock, settings) == 0  # 09:00: not yet
    clock.advance(timedelta(hours=1))
    assert await queue_follow_ups(db, clock, settings) == 1
    assert await queue_follow_ups(db, clock, settings) == 0

    first, second = await outbox_rows(db)
    assert second.dedupe_key == f"followup:second:{service}"
    assert second.buttons == []
    assert second.not_before == at(date(2026, 5, 11))
    assert second.text == (
        "Hello, Anna! It's been a little while since your oil change on May 1, 2026. "
        "Is everything going well? If there's anything else we can do for you, just reply here."
    )
    assert second.buttons == []  # no rating asked again
    await dispatcher.dispatch_due()
    assert [m.text for m in telegram_api.sent_to(1)] == [first.text, second.text]
    assert len(await requests(db)) == 1


async def test_an_answer_to_the_second_follow_up_is_not_taken_for_a_rating(
    db: Database,
    clock: ManualClock,
    settings: Settings,
    dispatcher: Dispatcher,
    telegram_api: FakeTelegramAPI,
) -> None:
    anna = await add_customer(db, clock.now(), chat=1, name="Anna")
    await serve(db, clock, anna, "oil change", TODAY)
    await queue_follow_ups(db, clock, settings)
    clock.advance(at(date(2026, 5, 4)) - clock.now())
    await dispatcher.dispatch_due()  # the rating question, never answered
    clock.advance(at(date(2026, 5, 11)) - clock.now())
    await queue_follow_ups(db, clock, settings)
    await dispatcher.dispatch_due()  # "Is everything going well?"

    replies = await Engine(db, clock, settings).handle(
        Inbound("telegram", "1", "1", "good, thanks", clock.now())
    )

    assert not any("rating" in reply.text.lower() for reply in replies)
    async with db.sessions() as session:
        assert await session.scalar(select(Rating)) is None
        assert await ratings.pending_for_many(session, [anna], clock.now()) == {}
    assert [r.status for r in await requests(db)] == ["expired"]


async def test_a_rated_service_gets_no_question_and_rating_cancels_one_waiting(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    anna = await add_customer(db, clock.now(), chat=1, name="Anna")
    rated = await serve(db, clock, anna, "brakes", TODAY)
    waiting = await serve(db, clock, anna, "oil change", TODAY)
    async with db.transaction() as session:
        session.add(Rating(customer_id=anna, service_record_id=rated, score=5, dimensions={},
                           channel="telegram", created_at=clock.now()))  # fmt: skip

    assert await queue_follow_ups(db, clock, settings) == 1
    [request] = await requests(db)
    assert request.service_record_id == waiting
    async with db.transaction() as session:  # e.g. rated through another channel meanwhile
        await ratings.record(session, request.id, 4, None, {}, "web", clock.now())

    [row] = await outbox_rows(db)
    assert (row.status, row.reason) == ("skipped", "already rated")
    clock.advance(timedelta(days=10))
    assert await queue_follow_ups(db, clock, settings) == 1  # the "all well?" still comes
    assert [r.dedupe_key for r in await outbox_rows(db)][1] == f"followup:second:{waiting}"


async def test_history_and_customers_out_of_reach_get_no_follow_up(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    anna = await add_customer(db, clock.now(), chat=1, name="Anna")
    on_file = await add_customer(db, clock.now(), chat=None, name="Bo")
    erased = await add_customer(db, clock.now(), chat=2, name="Cy")
    await serve(db, clock, anna, "oil change", date(2024, 5, 1))  # imported history
    await serve(db, clock, anna, "brakes", TODAY - timedelta(days=7))  # due 4 days ago: too late
    recent = await serve(db, clock, anna, "tyres", TODAY - timedelta(days=5))  # due 2 days ago
    await serve(db, clock, on_file, "oil change", TODAY)
    await serve(db, clock, erased, "oil change", TODAY)
    async with db.transaction() as session:
        await customers.erase(session, erased)

    assert await queue_follow_ups(db, clock, settings) == 1

    [row] = await outbox_rows(db)
    assert row.dedupe_key == f"followup:first:{recent}"
    assert row.not_before == at(TODAY - timedelta(days=2))  # late but useful: goes at once
    assert row.expires_at == clock.now() + timedelta(days=3)


async def test_repeated_and_late_sweeps_queue_each_follow_up_once(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    anna = await add_customer(db, clock.now(), chat=1, name="Anna")
    await serve(db, clock, anna, "oil change", TODAY)

    counts = []
    for _ in range(24):  # every few hours for twelve days, each tick twice
        counts += [await queue_follow_ups(db, clock, settings) for _ in range(2)]
        clock.advance(timedelta(hours=12))

    assert sum(counts) == 2
    assert [r.dedupe_key.split(":")[1] for r in await outbox_rows(db)] == ["first", "second"]
    assert len(await requests(db)) == 1


async def test_quiet_hours_hold_the_question_until_they_end(
    db: Database,
    clock: ManualClock,
    settings: Settings,
    channel: TelegramChannel,
    telegram_api: FakeTelegramAPI,
) -> None:
    settings = settings.model_copy(update={"quiet_hours_end": time(11, 0)})  # wakes at 11
    dispatcher = Dispatcher(db, clock, {"telegram": channel}, settings, limits=Limits.unlimited())
    anna = await add_customer(db, clock.now(), chat=1, name="Anna")
    await serve(db, clock, anna, "oil change", TODAY)
    await queue_follow_ups(db, clock, settings)

    clock.advance(at(date(2026, 5, 4)) - clock.now())
    await dispatcher.dispatch_due()
    [row] = await outbox_rows(db)
    assert (row.status, row.not_before) == ("queued", at(date(2026, 5, 4), 11))
    assert telegram_api.sent == []
    clock.advance(timedelta(hours=1))
    await dispatcher.dispatch_due()
    assert len(telegram_api.sent_to(1)) == 1


async def test_no_second_follow_up_when_staff_handle_the_service_or_the_customer_declined(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    anna = await add_customer(db, clock.now(), chat=1, name="Anna")
    low = await serve(db, clock, anna, "oil change", TODAY)
    complained = await serve(db, clock, anna, "brakes", TODAY)
    declined = await serve(db, clock, anna, "tyres", TODAY)
    fine = await serve(db, clock, anna, "wash", TODAY)
    await queue_follow_ups(db, clock, settings)
    by_service = {r.service_record_id: r.id for r in await requests(db)}
    async with db.transaction() as session:
        await ratings.record(session, by_service[low], 1, None, {}, "telegram", clock.now())
        await ratings.close(session, by_service[declined], "declined", clock.now())
        session.add(Ticket(customer_id=anna, kind="complaint", priority="normal", status="open",
                           subject="brakes squeak", channel="telegram", chat_id="1",
                           language="en", opened_at=clock.now(), due_at=clock.now(),
                           escalation_level=0, reopened_count=0,
                           service_record_id=complained))  # fmt: skip

    clock.advance(timedelta(days=10))
    assert await queue_follow_ups(db, clock, settings) == 1

    seconds = {
        r.dedupe_key: (r.status, r.reason)
        for r in await outbox_rows(db)
        if r.dedupe_key.startswith("followup:second:")
    }
    assert seconds == {
        f"followup:second:{low}": ("skipped", SKIPPED_FOR_STAFF),
        f"followup:second:{complained}": ("skipped", SKIPPED_FOR_STAFF),
        f"followup:second:{declined}": ("skipped", SKIPPED_DECLINED),
        f"followup:second:{fine}": ("queued", None),
    }


async def test_unanswered_questions_lapse_after_two_weeks(
    db: Database, clock: ManualClock, settings: Settings, dispatcher: Dispatcher
) -> None:
    anna = await add_customer(db, clock.now(), chat=1, name="Anna")
    await serve(db, clock, anna, "oil change", TODAY)
    await queue_follow_ups(db, clock, settings)
    clock.advance(at(date(2026, 5, 4)) - clock.now())
    await dispatcher.dispatch_due()

    clock.advance(ratings.PENDING_FOR - timedelta(minutes=1))
    await queue_follow_ups(db, clock, settings)
    assert [r.status for r in await requests(db)] == ["pending"]
    clock.advance(timedelta(minutes=2))
    await queue_follow_ups(db, clock, settings)
    assert [r.status for r in await requests(db)] == ["expired"]
    async with db.sessions() as session:
        assert await ratings.pending_for_many(session, [anna], clock.now()) == {}
        first = await session.scalar(select(OutboxMessage).order_by(OutboxMessage.id))
    assert first is not None
    assert first.status == "sent"

"""A service from the business's system to the customer's rating, end to end on both databases:
the HTTP API records it, the sweep and the dispatcher ask through Telegram (the fake Bot API),
the customer answers through the engine, and nothing is asked twice."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import httpx
from pydantic import SecretStr
from sqlalchemy import select

from bot.clock import ManualClock
from bot.config import Settings
from bot.engine import Engine
from bot.storage.database import Database
from bot.storage.models import Rating, RatingRequest
from bot.web.app import create_app
from dialogs.types import Inbound
from scheduler.dispatcher import Dispatcher
from scheduler.followups import queue_follow_ups
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.scheduler.conftest import add_customer, outbox_rows, serve

QUESTION = (
    "Hello, Anna! How did we do with your oil change on May 1, 2026? Please rate us from 1 to 5."
)


async def test_a_service_is_followed_up_rated_once_and_checked_on_later(
    db: Database,
    clock: ManualClock,
    settings: Settings,
    dispatcher: Dispatcher,
    telegram_api: FakeTelegramAPI,
) -> None:
    settings = settings.model_copy(update={"api_key": SecretStr("key")})
    engine = Engine(db, clock, settings)
    anna = await add_customer(db, clock.now(), chat=42, name="Anna", external_ref="C-7")

    async def say(text: str) -> list[str]:
        replies = await engine.handle(Inbound("telegram", "42", "42", text, clock.now()))
        return [reply.text for reply in replies]

    async def sweep_and_send() -> None:
        await queue_follow_ups(db, clock, settings)
        await dispatcher.dispatch_due()

    # The workshop's system records the service.
    transport = httpx.ASGITransport(app=create_app(engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://concierge.test") as api:
        body = {"customer": {"external_ref": "C-7"}, "kind": "oil change",
                "performed_at": "2026-05-01"}  # fmt: skip
        created = await api.post("/api/service-records", json=body, headers={"X-API-Key": "key"})
    assert created.status_code == 201, created.text

    await sweep_and_send()
    assert telegram_api.sent == []  # three days early
    clock.advance(datetime(2026, 5, 4, 10, 0, tzinfo=UTC) - clock.now())
    await sweep_and_send()
    [question] = telegram_api.sent_to(42)
    assert question.text == QUESTION
    assert question.button_texts == ["5 ⭐ Excellent", "4 Good", "3 Okay", "2 Poor", "1 Very poor"]

    clock.advance(timedelta(hours=2))
    replies = await say("5 stars")
    assert replies[0] == "Thank you for your rating!"  # no "welcome back" before it
    async with db.sessions() as session:
        rating = await session.scalar(select(Rating))
        request = await session.scalar(select(RatingRequest))
    assert rating is not None
    assert request is not None
    assert (rating.customer_id, rating.service_record_id, rating.score) == (
        anna, created.json()["id"], 5,
    )  # fmt: skip
    assert (rating.channel, request.status) == ("telegram", "rated")

    # The chat goes on; neither the engine nor a later sweep asks about the service again.
    assert not any("rate us" in text for text in await say("Skip") + await say("thanks, bye"))
    for _ in range(4):
        clock.advance(timedelta(days=2))
        await sweep_and_send()
    later = [m.text for m in telegram_api.sent_to(42)]
    assert later.count(QUESTION) == 1
    assert later[1] == (
        "Hello, Anna! It's been a little while since your oil change on May 1, 2026. "
        "Is everything going well? If there's anything else we can do for you, just reply here."
    )
    assert len(later) == 2
    assert [r.dedupe_key.split(":")[1] for r in await outbox_rows(db)] == ["first", "second"]


async def test_a_question_in_between_is_answered_and_the_rating_asked_again_once(
    db: Database,
    clock: ManualClock,
    settings: Settings,
    dispatcher: Dispatcher,
    telegram_api: FakeTelegramAPI,
) -> None:
    engine = Engine(db, clock, settings)
    anna = await add_customer(db, clock.now(), chat=42, name="Anna")
    await serve(db, clock, anna, "oil change", date(2026, 5, 1))
    await queue_follow_ups(db, clock, settings)
    clock.advance(datetime(2026, 5, 4, 10, 0, tzinfo=UTC) - clock.now())
    await dispatcher.dispatch_due()
    assert [m.text for m in telegram_api.sent_to(42)] == [QUESTION]

    async def say(text: str) -> list[str]:
        clock.advance(timedelta(minutes=5))
        replies = await engine.handle(Inbound("telegram", "42", "42", text, clock.now()))
        return [reply.text for reply in replies]

    reask = (
        "By the way, how did we do with your oil change on May 1, 2026? Please rate us from 1 to 5."
    )
    first = await say("Do you also fix bicycles?")
    assert first[-1] == reask  # answered (honestly: no answer), then asked again
    assert len(first) > 1
    assert reask not in await say("And do you sell tyres?")  # asked again once, not twice
    assert (await say("4"))[0] == "Thank you for your rating!"  # the rating is still pending
    async with db.sessions() as session:
        assert [r.score for r in await session.scalars(select(Rating))] == [4]

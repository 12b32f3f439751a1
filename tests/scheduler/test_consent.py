"""Opting out of marketing in chat: /stop and plain words stop it, /start resumes it.

The dialogs are pure and tested as such; the engine tests check the opt-out lands on the
customer, where the dispatcher's contact policy reads it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.engine import Engine
from bot.storage.database import Database
from bot.storage.models import Customer
from dialogs import respond
from dialogs.consent import asks_to_stop
from dialogs.types import CustomerView, Inbound, SetMarketingOptOut, Turn

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def turn(text: str, *, opted_out: bool = False, language: str = "en") -> Turn:
    view = CustomerView(
        id=1, name="Anna", address_as=None, language=language,  # type: ignore[arg-type]
        is_new=False, previous_seen_at=NOW, visit_count=3, marketing_opted_out=opted_out,
    )  # fmt: skip
    return Turn(Inbound("telegram", "1", "1", text, NOW), view, NOW, language)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "/stop",
        "stop",
        "STOP!",
        "Stop sending me messages",
        "please stop texting me",
        "no more offers please",
        "I want to unsubscribe",
        "opt out",
        "don't send me ads",
        "退订",
        "不要再发了",
        "别再给我发消息了",
        "停止推送",
    ],
)
def test_stop_and_plain_words_opt_out_of_marketing(text: str) -> None:
    outcome = respond(turn(text))

    assert outcome.effects == (SetMarketingOptOut(True),)
    assert outcome.intent == "consent.opt_out"
    assert "won't receive offers" in outcome.replies[0].text or "不再" in outcome.replies[0].text


@pytest.mark.parametrize(
    "text",
    [
        "Can I stop by tomorrow to pick up my car?",
        "When do you stop selling winter tyres?",
        "我不要发票",
        "my engine stopped",
        "hello",
    ],
)
def test_other_messages_are_not_taken_for_an_opt_out(text: str) -> None:
    assert not asks_to_stop(text)


def test_chinese_opt_out_is_answered_in_chinese() -> None:
    outcome = respond(turn("退订", language="zh"))
    assert outcome.replies[0].text.startswith("好的，今后我们不再向您发送优惠")


def test_start_says_hello_and_confirms_the_opt_in_only_after_an_opt_out() -> None:
    usual = respond(turn("/start"))
    resumed = respond(turn("/start", opted_out=True))

    assert [r.text for r in usual.replies] == ["Hello, Anna! How can I help you?"]
    assert usual.effects == (SetMarketingOptOut(False),)
    assert [r.text for r in resumed.replies] == [
        "Hello, Anna! How can I help you?",
        "You're subscribed again: you'll receive our offers, news and greetings. "
        "Send /stop at any time to unsubscribe.",
    ]
    assert resumed.effects == (SetMarketingOptOut(False),)
    assert resumed.intent == "consent.opt_in"


def test_stop_again_says_they_already_are_unsubscribed_and_help_mentions_stop() -> None:
    assert "already unsubscribed" in respond(turn("/stop", opted_out=True)).replies[0].text
    assert "/stop" in respond(turn("/help")).replies[0].text
    assert "/stop" in respond(turn("/nonsense")).replies[0].text


async def opted_out_at(db: Database) -> datetime | None:
    async with db.sessions() as session:
        return await session.scalar(select(Customer.marketing_opt_out_at))


async def test_the_engine_records_the_opt_out_and_start_clears_it(
    engine: Engine, db: Database, clock: ManualClock
) -> None:
    def say(text: str) -> Inbound:
        return Inbound("telegram", "42", "42", text, clock.now(), display_name="Anna")

    await engine.handle(say("hi"))
    await engine.handle(say("Anna"))
    assert await opted_out_at(db) is None

    replies = await engine.handle(say("stop sending me messages"))
    assert "won't receive offers" in replies[0].text
    assert await opted_out_at(db) == clock.now()
    await engine.handle(say("/stop"))  # again: the first time is kept
    assert await opted_out_at(db) == clock.now()

    await engine.handle(say("/start"))
    assert await opted_out_at(db) is None

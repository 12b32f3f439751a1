"""Questions answered in chat from the sample knowledge base, through the engine, on both DBs."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.config import Settings
from bot.engine import Engine
from bot.knowledge_base import entry_from_json, entry_to_json
from bot.storage.database import Database
from bot.storage.models import MessageLog
from dialogs.faq import Knowledge
from dialogs.texts import t
from dialogs.types import Inbound
from knowledge.encoder import EmbeddingCache
from knowledge.matcher import build_matcher
from knowledge.samples import car_workshop


@pytest.fixture(scope="session")
def workshop(tmp_path_factory: pytest.TempPathFactory) -> Knowledge:
    """The shipped sample KB, indexed once for the whole session (real models, offline)."""
    base = car_workshop()
    cache = EmbeddingCache(Path(tmp_path_factory.mktemp("faq-cache")))
    return Knowledge(base, build_matcher(base, cache=cache))


@pytest.fixture
def faq_engine(db: Database, clock: ManualClock, settings: Settings, workshop: Knowledge) -> Engine:
    return Engine(db, clock, settings, knowledge=lambda: workshop)


async def ask(engine: Engine, clock: ManualClock, text: str, user: str = "q1") -> list[str]:
    replies = await engine.handle(Inbound("web", user, user, text, clock.now()))
    return [reply.text for reply in replies]


async def chat_started(engine: Engine, clock: ManualClock, user: str = "q1") -> None:
    await ask(engine, clock, "hi", user)
    await ask(engine, clock, "Anna", user)


async def test_a_question_is_answered_from_the_knowledge_base(
    faq_engine: Engine, clock: ManualClock, db: Database
) -> None:
    await chat_started(faq_engine, clock)
    replies = await faq_engine.handle(Inbound("web", "q1", "q1", "when do you open?", clock.now()))
    assert "08:00" in replies[-1].text
    assert replies[-1].buttons  # follow-ups offered as quick replies
    async with db.sessions() as session:
        row = await session.scalar(select(MessageLog).where(MessageLog.text == "when do you open?"))
    assert row is not None
    assert (row.intent, row.topic) == ("faq.answer", "opening-hours")
    assert row.confidence is not None
    assert row.confidence >= 0.5


async def test_a_follow_up_button_answers_that_entry(
    faq_engine: Engine, clock: ManualClock
) -> None:
    await chat_started(faq_engine, clock)
    first = await faq_engine.handle(
        Inbound("web", "q1", "q1", "What are your opening hours?", clock.now())
    )
    button = first[-1].buttons[0]
    answer = await ask(faq_engine, clock, button)
    assert answer
    assert answer[-1] != first[-1].text


async def test_chinese_question_gets_the_chinese_answer(
    faq_engine: Engine, clock: ManualClock
) -> None:
    await ask(faq_engine, clock, "你好", "zh1")
    await ask(faq_engine, clock, "李先生", "zh1")
    answer = await ask(faq_engine, clock, "你们几点开门？", "zh1")
    assert "08:00" in answer[-1]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in answer[-1])


async def test_an_unrelated_question_is_admitted_logged_as_a_gap_and_offers_a_person(
    faq_engine: Engine, clock: ManualClock, db: Database
) -> None:
    await chat_started(faq_engine, clock)
    question = "who won the football world cup in 1966?"
    replies = await faq_engine.handle(Inbound("web", "q1", "q1", question, clock.now()))
    assert replies[-1].text == t("en", "faq.unknown")
    assert replies[-1].buttons == (t("en", "faq.talk_to_person"),)
    seam = await ask(faq_engine, clock, t("en", "faq.talk_to_person"))
    assert "Concierge" in seam[-1]
    async with db.sessions() as session:
        intents = list(
            await session.scalars(select(MessageLog.intent).where(MessageLog.text == question))
        )
    assert intents == ["faq.unknown"]


def test_entries_survive_the_database_round_trip() -> None:
    for entry in car_workshop():
        assert entry_from_json(entry_to_json(entry)) == entry

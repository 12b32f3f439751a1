"""Questions answered in chat from the sample knowledge base, through the engine, on both DBs.

The sample is indexed as the bot indexes it: with the default out-of-scope set, so chit-chat and
off-topic questions get the honest "I don't know" and the way to a person.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.engine import Engine
from bot.knowledge_base import (
    OUT_OF_SCOPE_ROW,
    KnowledgeService,
    entry_from_json,
    entry_to_json,
    replace_entries,
    stored_base,
)
from bot.storage.database import Database
from bot.storage.models import MessageLog, Ticket
from dialogs.texts import t
from dialogs.types import Inbound, Language
from knowledge.entries import Entry, KnowledgeBase, KnowledgeBaseError
from knowledge.matcher import Decision
from knowledge.samples import car_workshop


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
    handed_over = await ask(faq_engine, clock, t("en", "faq.talk_to_person"))
    async with db.sessions() as session:
        ticket = await session.scalar(select(Ticket))
    assert ticket is not None
    assert (ticket.kind, ticket.subject) == ("human", question)  # staff see the question
    assert f"#{ticket.id}" in handed_over[-1]
    async with db.sessions() as session:
        intents = list(
            await session.scalars(select(MessageLog.intent).where(MessageLog.text == question))
        )
    assert intents == ["faq.unknown"]


def test_entries_survive_the_database_round_trip() -> None:
    for entry in car_workshop():
        assert entry_from_json(entry_to_json(entry)) == entry


@pytest.mark.parametrize(
    ("user", "name", "question", "language"),
    [
        ("o1", "Anna", "can you tell me a funny story about cats?", "en"),
        ("o2", "Anna", "what do you think of the new president?", "en"),
        ("o3", "李先生", "你是真人还是机器？", "zh"),
        ("o4", "李先生", "明天会不会下雪啊", "zh"),
    ],
)
async def test_chit_chat_gets_the_honest_i_dont_know_and_a_person(
    faq_engine: Engine, clock: ManualClock, user: str, name: str, question: str, language: Language
) -> None:
    await ask(faq_engine, clock, "hi" if language == "en" else "你好", user)
    await ask(faq_engine, clock, name, user)
    replies = await faq_engine.handle(Inbound("web", user, user, question, clock.now()))
    assert replies[-1].text == t(language, "faq.unknown")
    assert replies[-1].buttons == (t(language, "faq.talk_to_person"),)


OWN = KnowledgeBase(
    (
        Entry(
            "opening-hours",
            questions={"en": ("When are you open?", "What are your opening hours?")},
            answers={"en": "07:30 to 19:00 every day."},
        ),
        Entry(
            "parking",
            questions={"en": ("Where can I park?", "Is there parking?")},
            answers={"en": "In front of the workshop."},
        ),
    ),
    {"en": ("Do you sell ice cream?", "Can I buy a cake here?", "Do you have pizza?")},
)


async def test_imported_out_of_scope_examples_are_stored_and_learned(
    db: Database, clock: ManualClock, cache_dir: Path
) -> None:
    await replace_entries(db, OWN, clock.now())
    assert await stored_base(db) == OWN  # the examples round-trip through their reserved row
    service = KnowledgeService(db, cache_dir)
    assert await service.refresh()
    knowledge = service.current
    assert knowledge is not None
    assert knowledge.base == OWN
    assert knowledge.matcher.match("do you sell ice cream").decision is Decision.OUT_OF_SCOPE
    hours = knowledge.matcher.match("when do you open?")
    assert (hours.decision, hours.best and hours.best.entry_id) == (
        Decision.ANSWER,
        "opening-hours",
    )


async def test_an_entry_may_not_take_the_reserved_row(db: Database, clock: ManualClock) -> None:
    taken = KnowledgeBase((Entry(OUT_OF_SCOPE_ROW, {"en": ("x",)}, {"en": "y"}),))
    with pytest.raises(KnowledgeBaseError, match="reserved"):
        await replace_entries(db, taken, clock.now())

"""The engine end to end on SQLite and PostgreSQL: identification, memory, order, erasure."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date, timedelta

import pytest
from sqlalchemy import event, func, select

from bot.clock import ManualClock
from bot.config import Settings
from bot.engine import Answer, Engine
from bot.storage.database import Database
from bot.storage.models import (
    Appointment,
    Base,
    ChannelIdentity,
    Customer,
    MessageLog,
    OutboxMessage,
    ServiceRecord,
    Ticket,
    TicketEvent,
)
from dialogs.types import Inbound, MessageKind
from tests.conftest import BuggyComplaintModel


def message(clock: ManualClock, text: str, user: str = "u1", **extra: object) -> Inbound:
    return Inbound("web", user, user, text, clock.now(), **extra)  # type: ignore[arg-type]


async def say(
    engine: Engine, clock: ManualClock, text: str, user: str = "u1", **extra: object
) -> str:
    replies = await engine.handle(message(clock, text, user, **extra))
    return "\n".join(reply.text for reply in replies)


async def count(db: Database, model: type[Base]) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_first_contact_takes_the_platform_name_and_asks_how_to_address(
    engine: Engine, clock: ManualClock
) -> None:
    replies = await engine.handle(message(clock, "hi", display_name="Anna Li"))
    assert "Anna Li" in replies[0].text
    assert "address you" in replies[0].text
    assert replies[0].buttons == ("Anna Li",)
    assert "Nice to meet you, Anna" in await say(engine, clock, "Anna")
    assert "Hello, Anna!" in await say(engine, clock, "hello")


async def test_a_question_on_first_contact_is_greeted_and_answered(
    engine: Engine, clock: ManualClock
) -> None:
    answer = await say(engine, clock, "How much is an oil change?")
    assert "assistant of Concierge" in answer
    assert "still loading my answers" in answer  # this engine has no knowledge base


async def test_returning_customer_is_greeted_with_what_the_bot_remembers(
    engine: Engine, db: Database, clock: ManualClock
) -> None:
    await say(engine, clock, "hi", display_name="Robert Smith")
    await say(engine, clock, "Mr. Smith")
    async with db.transaction() as session:
        customer = await session.scalar(select(Customer))
        assert customer is not None
        customer.preferences = {"seating": "the window table"}
        session.add(
            ServiceRecord(
                customer_id=customer.id,
                kind="maintenance",
                description="oil change and brake check",
                performed_at=date(2026, 5, 2),
                next_due_at=date(2026, 11, 2),
                created_at=clock.now(),
            )
        )

    clock.advance(timedelta(hours=2))  # within the greeting gap: no welcome back
    assert "Welcome back" not in await say(engine, clock, "thanks")

    clock.advance(timedelta(days=150))
    welcome = await say(engine, clock, "hello")
    assert "Welcome back, Mr. Smith!" in welcome
    assert "It has been 5 months" in welcome
    assert "oil change and brake check (May 2, 2026)" in welcome
    assert "the window table" in welcome
    assert welcome.count("Hello") == 0  # one greeting, not two


async def test_returning_after_a_short_break_is_not_told_how_long_it_has_been(
    engine: Engine, clock: ManualClock
) -> None:
    await say(engine, clock, "hi", display_name="Anna")
    await say(engine, clock, "Anna")
    clock.advance(timedelta(hours=7))
    welcome = await say(engine, clock, "hello")
    assert "Welcome back, Anna!" in welcome
    assert "It has been" not in welcome


async def test_chinese_customer_is_answered_in_chinese_and_can_switch(
    engine: Engine, clock: ManualClock
) -> None:
    assert "您好" in await say(engine, clock, "你好", display_name="李伟")
    assert "很高兴认识您" in await say(engine, clock, "李先生")
    assert "English" in await say(engine, clock, "/language en")
    clock.advance(timedelta(hours=7))
    assert "Welcome back, 李先生" in await say(engine, clock, "/start")


async def test_visits_are_counted_per_return_not_per_message(
    engine: Engine, db: Database, clock: ManualClock
) -> None:
    for _ in range(3):
        await say(engine, clock, "hello")
    clock.advance(timedelta(days=1))
    await say(engine, clock, "hello")
    async with db.sessions() as session:
        customer = await session.scalar(select(Customer))
    assert customer is not None
    assert customer.visit_count == 2
    assert customer.last_seen_at == clock.now()


async def test_concurrent_burst_keeps_arrival_order_and_creates_one_customer(
    engine: Engine, db: Database, clock: ManualClock
) -> None:
    burst = [f"message number {i}" for i in range(25)]
    await asyncio.gather(
        *(engine.handle(message(clock, text, user=f"user{u}")) for text in burst for u in range(4))
    )
    assert await count(db, Customer) == 4
    assert await count(db, ChannelIdentity) == 4
    async with db.sessions() as session:
        for u in range(4):
            logged = await session.scalars(
                select(MessageLog.text)
                .join(ChannelIdentity, ChannelIdentity.customer_id == MessageLog.customer_id)
                .where(ChannelIdentity.external_id == f"user{u}", MessageLog.direction == "in")
                .order_by(MessageLog.id)
            )
            assert list(logged) == burst


async def test_a_redelivered_message_is_answered_from_the_log_not_handled_twice(
    engine: Engine, db: Database, clock: ManualClock
) -> None:
    first = await engine.handle(message(clock, "hi", message_id="42"))
    again = await engine.handle(message(clock, "hi", message_id="42"))
    assert [r.text for r in again] == [r.text for r in first]
    async with db.sessions() as session:
        inbound = await session.scalar(
            select(func.count()).select_from(MessageLog).where(MessageLog.direction == "in")
        )
    assert inbound == 1


async def test_message_log_records_intent_and_both_directions(
    engine: Engine, db: Database, clock: ManualClock
) -> None:
    await say(engine, clock, "hi")
    await say(engine, clock, "What time do you open tomorrow?")
    async with db.sessions() as session:
        rows = list(await session.scalars(select(MessageLog).order_by(MessageLog.id)))
    inbound = [row for row in rows if row.direction == "in"]
    assert [row.intent for row in inbound] == ["greeting.first_contact", "faq.not_ready"]
    assert inbound[1].confidence == 0.0
    assert all(row.reply_to_id is not None for row in rows if row.direction == "out")


async def test_shared_contact_links_the_chat_to_the_customer_on_file(
    engine: Engine, db: Database, clock: ManualClock
) -> None:
    async with db.transaction() as session:
        session.add(
            Customer(
                name="Wang Fang",
                address_as="Ms. Wang",
                phone="+8613800138000",
                on_file=True,
                created_at=clock.now(),
                tags=[],
                preferences={},
            )
        )
    await say(engine, clock, "hi", user="tg1", display_name="Fang")
    linked = await say(
        engine,
        clock,
        "",
        user="tg1",
        kind=MessageKind.CONTACT,
        contact_phone="8613800138000",
    )
    assert "Thank you, Ms. Wang! I found you in our records." in linked
    assert await count(db, Customer) == 1  # the chat's temporary customer was merged away
    clock.advance(timedelta(hours=7))
    assert "Welcome back, Ms. Wang!" in await say(engine, clock, "hello", user="tg1")


async def test_forget_erases_every_trace_after_confirmation(
    engine: Engine, db: Database, clock: ManualClock
) -> None:
    secret_name, secret_text = "Zelda Quinton", "my car plate is QX-4242"
    await say(engine, clock, "hi", display_name=secret_name)
    await say(engine, clock, "Zelda")
    await say(engine, clock, secret_text)
    async with db.transaction() as session:
        customer = await session.scalar(select(Customer))
        assert customer is not None
        customer.phone, customer.email = "+12025550143", "zelda@example.com"
        session.add(
            ServiceRecord(
                customer_id=customer.id,
                kind="tyres",
                description="winter tyres",
                performed_at=date(2026, 4, 1),
                created_at=clock.now(),
            )
        )
        session.add(
            Appointment(
                customer_id=customer.id,
                kind="tyres",
                starts_at=clock.now() + timedelta(days=3),
                note="Zelda brings the QX-4242",
                created_at=clock.now(),
            )
        )
        session.add(
            OutboxMessage(
                dedupe_key=f"birthday:2026:{customer.id}",
                category="birthday",
                customer_id=customer.id,
                text="Happy birthday, Zelda!",
                not_before=clock.now(),
                created_at=clock.now(),
            )
        )
    await say(engine, clock, "/forget")
    assert await count(db, Customer) == 1  # nothing happens before the confirmation
    assert "erased" in await say(engine, clock, "Yes, erase my data")

    async with db.sessions() as session:
        for table in Base.metadata.sorted_tables:
            rows = (await session.execute(select(table))).all()
            dump = repr(rows)
            for trace in (secret_name, "Zelda", "QX-4242", "+12025550143", "zelda@example"):
                assert trace not in dump, f"{trace!r} survives in {table.name}"
            assert rows == [], f"{table.name} still has rows: {dump[:200]}"


async def test_plain_words_ask_to_erase_and_no_keeps_the_data(
    engine: Engine, db: Database, clock: ManualClock
) -> None:
    await say(engine, clock, "hello")
    assert "Are you sure?" in await say(engine, clock, "please delete my data")
    assert "nothing was erased" in await say(engine, clock, "no")
    assert "确定要删除吗" in await say(engine, clock, "请删除我的数据")
    assert "没有删除" in await say(engine, clock, "不")
    assert await count(db, Customer) == 1


async def test_unsupported_and_empty_messages_get_a_clear_answer(
    engine: Engine, clock: ManualClock
) -> None:
    await say(engine, clock, "hello")
    assert "only read text" in await say(engine, clock, "", kind=MessageKind.UNSUPPORTED)
    assert "didn't receive any text" in await say(engine, clock, "\x00\x07  \u200b")
    assert "don't know the command /fly" in await say(engine, clock, "/fly me to the moon")


async def test_two_engines_on_one_database_create_one_customer(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    """Two engines, as two processes would have, still serialize one customer's messages."""
    other = Database(db.engine.url.render_as_string(False), **db.options)
    try:
        engines = [Engine(db, clock, settings), Engine(other, clock, settings)]
        await asyncio.gather(
            *(engines[i % 2].handle(message(clock, f"m{i}", user="shared")) for i in range(10))
        )
    finally:
        await other.dispose()
    assert await count(db, Customer) == 1
    async with db.sessions() as session:
        handled = await session.scalars(
            select(MessageLog.text).where(MessageLog.direction == "in").order_by(MessageLog.id)
        )
        assert sorted(handled) == sorted(f"m{i}" for i in range(10))


# --- Batches (a getUpdates round): one transaction, answers as if each message came alone.

COMPLAINT = "I want to make a complaint: the brakes squeal since your repair"


def texts(answer: Answer | Exception) -> str:
    assert isinstance(answer, Answer), answer
    return "\n".join(reply.text for reply in answer.replies)


async def test_a_batch_gets_each_message_its_own_answer_and_ticket(
    engine: Engine, db: Database, clock: ManualClock
) -> None:
    batch = [
        message(clock, COMPLAINT, user="anna", display_name="Anna"),
        message(clock, "hi", user="bob", display_name="Bob"),
        message(clock, "我要投诉，修完车以后刹车还是有异响", user="wei"),
        message(clock, "I need to talk to a manager about the bill", user="carl"),
    ]
    answers = await engine.answer_all(batch)

    async with db.sessions() as session:
        numbers = dict((await session.execute(select(Ticket.chat_id, Ticket.id))).tuples().all())
        rows = list(await session.scalars(select(MessageLog).order_by(MessageLog.id)))
    assert sorted(numbers) == ["anna", "carl", "wei"]
    assert len(set(numbers.values())) == 3
    assert f"Your ticket number is #{numbers['anna']}" in texts(answers[0])
    assert "Bob" in texts(answers[1])
    assert "ticket" not in texts(answers[1])
    assert f"#{numbers['wei']}" in texts(answers[2])
    assert "工单" in texts(answers[2])
    assert f"#{numbers['carl']}" in texts(answers[3])
    # Each reply is logged against its own message, with the ids the answer gives.
    inbound = {row.id: row.text for row in rows if row.direction == "in"}
    for sent, answer in zip(batch, answers, strict=True):
        assert isinstance(answer, Answer)
        replies = [row for row in rows if row.id in answer.log_ids]
        assert [row.text for row in replies] == [reply.text for reply in answer.replies]
        assert {inbound[row.reply_to_id or 0] for row in replies} == {sent.text}


async def test_a_customers_messages_in_one_batch_follow_each_other_in_order(
    engine: Engine, db: Database, clock: ManualClock
) -> None:
    answers = await engine.answer_all(
        [
            message(clock, COMPLAINT, user="anna"),
            message(clock, "hi", user="bob"),
            message(clock, "and it leaks oil too", user="anna"),
        ]
    )
    async with db.sessions() as session:
        ticket = await session.scalar(select(Ticket))
        assert ticket is not None
        events = list(
            await session.scalars(
                select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket.id)
            )
        )
    assert f"#{ticket.id}" in texts(answers[0])
    assert f"I've added this to ticket #{ticket.id}" in texts(answers[2])
    assert events == ["created", "customer_message"]


async def test_a_batch_answers_a_redelivered_message_from_the_log(
    engine: Engine, db: Database, clock: ManualClock
) -> None:
    first = await engine.answer(message(clock, COMPLAINT, user="anna", message_id="7"))
    again, new = await engine.answer_all(
        [
            message(clock, COMPLAINT, user="anna", message_id="7"),
            message(clock, COMPLAINT, user="bob", message_id="8"),
        ]
    )
    assert isinstance(again, Answer)
    assert again.repeated
    assert again.replies == first.replies
    assert again.log_ids == first.log_ids
    assert isinstance(new, Answer)
    assert not new.repeated
    assert await count(db, Ticket) == 2


async def test_a_bug_in_one_message_of_a_batch_costs_only_that_answer(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    engine = Engine(db, clock, settings, complaint_model=lambda: BuggyComplaintModel())
    broken, fine = await engine.answer_all(
        [message(clock, "boom", user="anna"), message(clock, COMPLAINT, user="bob")]
    )
    assert isinstance(broken, RuntimeError)
    assert "Your ticket number is #1" in texts(fine)
    async with db.sessions() as session:
        logged = list(
            await session.scalars(select(MessageLog.text).where(MessageLog.direction == "in"))
        )
    assert logged == [COMPLAINT]  # the failed round left nothing; bob's message once
    assert await count(db, Ticket) == 1
    with pytest.raises(RuntimeError):
        await engine.answer(message(clock, "boom", user="anna"))


async def test_a_larger_batch_takes_no_more_statements(
    engine: Engine, db: Database, clock: ManualClock
) -> None:
    """Set-based: each read and each kind of write is one statement for the whole batch,
    which is what gets a burst of complaints to the staff group in seconds
    (bench/complaints.py)."""
    statements: list[str] = []

    def counted(*args: object) -> None:
        statements.append(str(args[2]).split(" (")[0].split(" WHERE")[0])

    async def run(size: int, first: int) -> Counter[str]:
        statements.clear()
        batch = [message(clock, COMPLAINT, user=f"user{first + n}") for n in range(size)]
        event.listen(db.engine.sync_engine, "before_cursor_execute", counted)
        try:
            answers = await engine.answer_all(batch)
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", counted)
        assert all("Your ticket number is" in texts(answer) for answer in answers)
        return Counter(statements)

    small = await run(5, 0)
    grown = await run(40, 100) - small
    assert await count(db, Ticket) == 45
    if db.dialect == "sqlite":
        # SQLite cannot tell which new row got which id in a multi-row INSERT, so SQLAlchemy
        # inserts new ORM rows one at a time there; every other statement is per batch.
        assert set(grown) == {
            f"INSERT INTO {table}"
            for table in ("customers", "channel_identities", "tickets", "ticket_events",
                          "staff_notices")
        }  # fmt: skip
    else:
        assert not grown, grown

"""The poller's reply sender against the fake Bot API: paced, in order per chat, durable.

A burst of customers is answered under Telegram's flood limits (the fake server enforces them
in real time, so that test runs on the system clock) with nothing lost, while the poller has
confirmed the updates long before the last reply went out. The rest run on the ManualClock:
order within a chat, back-off after network errors, marks in batches, and replies committed
by a process that stopped before sending them, sent once by the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert, select, update
from telegram import Bot

from bot.channels.reply_log import OutgoingReply
from bot.channels.reply_sender import ReplySender
from bot.channels.telegram import TelegramChannel
from bot.channels.telegram_poller import TelegramPoller, build_poller
from bot.clock import ManualClock, SystemClock
from bot.config import Settings
from bot.engine import Engine
from bot.storage.database import Database
from bot.storage.models import ChannelIdentity, Customer, MessageLog
from dialogs.texts import t
from dialogs.types import Inbound, Reply
from scheduler.ratelimit import Limits
from tests.bot.test_telegram import poll, telegram_settings
from tests.conftest import START
from tests.fakes.telegram_api import FakeTelegramAPI, TelegramLimits

ANNA = 1001
FIRST = 200_001  # the burst's first chat


async def on_file(db: Database, now: datetime, chats: list[int]) -> list[int]:
    """Customers seen a minute ago, each with a Telegram chat; returns their ids."""
    async with db.transaction() as session:
        customers = [
            Customer(name=f"Customer {chat}", language="en", on_file=True, visit_count=1,
                     created_at=now, last_seen_at=now - timedelta(minutes=1))
            for chat in chats
        ]  # fmt: skip
        session.add_all(customers)
        await session.flush()
        session.add_all(
            ChannelIdentity(channel="telegram", external_id=str(chat), chat_id=str(chat),
                            customer_id=customer.id, created_at=now)
            for chat, customer in zip(chats, customers, strict=True)
        )  # fmt: skip
        return [customer.id for customer in customers]


async def out_rows(db: Database) -> list[MessageLog]:
    async with db.sessions() as session:
        query = select(MessageLog).where(MessageLog.direction == "out").order_by(MessageLog.id)
        return list(await session.scalars(query))


@pytest.fixture
async def channel(
    telegram_api: FakeTelegramAPI, clock: ManualClock
) -> AsyncIterator[TelegramChannel]:
    bot = Bot(telegram_api.token, base_url=f"{telegram_api.url}/bot")
    async with bot:
        yield TelegramChannel(bot, clock)


async def test_a_burst_of_100_customers_is_paced_under_the_flood_limits(
    db: Database, settings: Settings, telegram_api: FakeTelegramAPI
) -> None:
    telegram_api.limits = TelegramLimits()  # counted on the fake server's real clock
    clock = SystemClock()
    chats = list(range(FIRST, FIRST + 100))
    await on_file(db, clock.now(), chats)
    configured = telegram_settings(settings, telegram_api)
    poller = build_poller(Engine(db, clock, configured), configured)
    last = [telegram_api.push_text(chat, "thanks") for chat in chats][-1]
    async with poller.bot:
        assert await poller.poll_once() == 100
        await poller.poll_once()
        # Confirmed at once: the replies go out on their own, about 30 a second.
        assert telegram_api.confirmed_offset == last["update_id"] + 1
        assert len(telegram_api.sent) < 50
        await poller.replies.idle()
        await poller.replies.stop()

    assert sorted(m.chat_id for m in telegram_api.sent) == chats  # one each, none lost
    assert {m.text for m in telegram_api.sent} == {t("en", "smalltalk.thanks")}
    assert telegram_api.rate_limited <= 1  # timers may fire a little late on a busy machine
    assert poller.replies.stats.undelivered == 0
    assert all(row.delivered_at is not None for row in await out_rows(db))


async def test_each_chat_keeps_its_order_and_chats_go_side_by_side(
    db: Database, clock: ManualClock, channel: TelegramChannel, telegram_api: FakeTelegramAPI
) -> None:
    sent_after: dict[str, timedelta] = {}  # when each send started, on the clock

    class Timed:
        name = "telegram"

        async def send(self, chat_id: str, reply: Reply) -> str:
            sent_after[reply.text] = clock.now() - START
            return await channel.send(chat_id, reply)

    sender = ReplySender(db, Timed(), clock, Limits())
    await sender.start()
    sender.queue(OutgoingReply("1", Reply(f"a{n}")) for n in range(3))
    sender.queue(OutgoingReply("2", Reply(f"b{n}")) for n in range(3))
    sender.queue([OutgoingReply("3", Reply("c0"))])
    await sender.idle()
    await sender.stop()

    assert [m.text for m in telegram_api.sent_to(1)] == ["a0", "a1", "a2"]
    assert [m.text for m in telegram_api.sent_to(2)] == ["b0", "b1", "b2"]
    # The other chats do not wait for chat 1, whose replies go one a second.
    assert max(sent_after[text] for text in ("a0", "b0", "c0")) < timedelta(seconds=1)
    assert sent_after["a2"] - sent_after["a1"] >= timedelta(seconds=1)
    assert sent_after["a1"] - sent_after["a0"] >= timedelta(seconds=1)


async def test_network_errors_are_retried_with_backoff(
    db: Database, clock: ManualClock, channel: TelegramChannel, telegram_api: FakeTelegramAPI
) -> None:
    telegram_api.fail_next(ANNA, status=502, times=2)
    sender = ReplySender(db, channel, clock, Limits())
    start = clock.now()
    await sender.start()
    sender.queue([OutgoingReply(str(ANNA), Reply("one")), OutgoingReply(str(ANNA), Reply("two"))])
    await sender.idle()
    await sender.stop()

    assert [m.text for m in telegram_api.sent] == ["one", "two"]
    assert clock.now() - start >= timedelta(seconds=1 + 2)
    assert (sender.stats.retried, sender.stats.sent, sender.stats.undelivered) == (2, 2, 0)


async def test_sent_replies_are_marked_in_a_few_transactions(
    db: Database, clock: ManualClock, channel: TelegramChannel, telegram_api: FakeTelegramAPI
) -> None:
    chats = list(range(FIRST, FIRST + 300))
    customers = await on_file(db, clock.now(), chats)
    async with db.transaction() as session:
        ids = await session.scalars(
            insert(MessageLog).returning(MessageLog.id, sort_by_parameter_order=True),
            [{"customer_id": c, "channel": "telegram", "direction": "out", "text": "hi",
              "buttons": [], "created_at": clock.now()} for c in customers],
        )  # fmt: skip
        replies = [
            OutgoingReply(str(chat), Reply("hi"), i) for chat, i in zip(chats, ids, strict=True)
        ]
    updates: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("UPDATE message_log"):
            updates.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    sender = ReplySender(db, channel, clock, Limits.unlimited())
    await sender.start()
    sender.queue(replies)
    await sender.idle()
    await sender.stop()

    assert len(telegram_api.sent) == 300
    assert all(row.delivered_at is not None for row in await out_rows(db))
    assert 1 < len(updates) <= 3  # 200 rows an UPDATE at most, not one per message


async def test_replies_committed_but_not_sent_go_out_once_after_a_restart(
    engine: Engine, settings: Settings, telegram_api: FakeTelegramAPI, db: Database
) -> None:
    class Unreachable:
        """Telegram as seen by a process about to crash: nothing gets through."""

        name = "telegram"

        async def send(self, chat_id: str, reply: Reply) -> str:
            await asyncio.Event().wait()
            raise AssertionError("never")

    configured = telegram_settings(settings, telegram_api)
    update = telegram_api.push_text(ANNA, "hi", first_name="Anna")
    crashed = build_poller(engine, configured)
    crashed.replies = ReplySender(db, Unreachable(), engine.clock, Limits())
    async with crashed.bot:
        assert await crashed.poll_once() == 1  # committed and queued, not confirmed
        await crashed.replies.stop(grace=0)
    assert telegram_api.sent == []
    assert [row.delivered_at for row in await out_rows(db)] == [None, None]

    restarted: TelegramPoller = build_poller(engine, configured)
    async with restarted.bot:
        assert await poll(restarted) == 1  # the same update again: answered from the log
        await poll(restarted)
        await restarted.replies.stop()

    texts = [m.text for m in telegram_api.sent_to(ANNA)]
    assert len(texts) == 2
    assert texts[0].startswith("Hello, Anna")
    assert restarted.replies.stats.recovered == 2
    assert all(row.delivered_at is not None for row in await out_rows(db))
    assert telegram_api.confirmed_offset == update["update_id"] + 1


async def test_only_recent_unsent_telegram_replies_are_sent_again(
    db: Database, clock: ManualClock, channel: TelegramChannel, telegram_api: FakeTelegramAPI
) -> None:
    anna, web, blocked = await on_file(db, clock.now(), [ANNA, 2002, 2003])
    now = clock.now()
    async with db.transaction() as session:
        await session.execute(
            insert(ChannelIdentity),
            [{"channel": "web", "external_id": "w1", "chat_id": "w1", "customer_id": web,
              "created_at": now}],
        )  # fmt: skip
        await session.execute(
            update(ChannelIdentity)
            .where(ChannelIdentity.customer_id == blocked)
            .values(blocked_at=now)
        )
        asked = await session.scalar(
            insert(MessageLog).returning(MessageLog.id),
            {"customer_id": anna, "channel": "telegram", "direction": "in", "text": "hi",
             "buttons": [], "created_at": now},
        )  # fmt: skip
        base = {"direction": "out", "buttons": [], "reply_to_id": asked}
        await session.execute(
            insert(MessageLog),
            [
                base | {"customer_id": anna, "channel": "telegram", "text": "due",
                        "created_at": now - timedelta(minutes=59)},
                base | {"customer_id": anna, "channel": "telegram", "text": "stale",
                        "created_at": now - timedelta(minutes=61)},
                base | {"customer_id": anna, "channel": "telegram", "text": "sent",
                        "created_at": now, "delivered_at": now},
                base | {"customer_id": web, "channel": "web", "text": "web chat",
                        "created_at": now},
                base | {"customer_id": blocked, "channel": "telegram", "text": "blocked",
                        "created_at": now},
            ],
        )  # fmt: skip
    sender = ReplySender(db, channel, clock, Limits())

    assert await sender.start() == 1
    await sender.idle()
    await sender.stop()

    assert [(m.chat_id, m.text) for m in telegram_api.sent] == [(ANNA, "due")]


async def test_the_engine_names_each_replys_log_row_in_order(engine: Engine, db: Database) -> None:
    complaint = "I want to make a complaint: the brakes squeal since your repair"
    inbound = Inbound("telegram", "7", "7", complaint, engine.clock.now(), message_id="7:1")
    first = await engine.answer(inbound)
    again = await engine.answer(inbound)

    rows = {row.id: row.text for row in await out_rows(db)}
    assert len(first.replies) == 3  # a greeting, the apology, the ticket number
    assert [rows[i] for i in first.log_ids] == [reply.text for reply in first.replies]
    assert (first.repeated, again.repeated, again.log_ids) == (False, True, first.log_ids)

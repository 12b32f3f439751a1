"""The dispatcher against the fake Bot API: sends once, honours 429/403/400, survives restarts."""

from __future__ import annotations

import itertools
import socket
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import select, update
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.channels import RetryAfterError
from bot.channels.telegram import TelegramChannel
from bot.clock import ManualClock
from bot.config import Settings
from bot.engine import Engine
from bot.storage.database import Database
from bot.storage.models import ChannelIdentity, OutboxMessage
from dialogs.types import Inbound, Reply
from scheduler.dispatcher import Dispatcher, limits_from
from scheduler.outbox import OutboxEntry, enqueue
from scheduler.policy import Category
from scheduler.ratelimit import Limits
from scheduler.telegram_sender import dispatch_channels
from tests.fakes.telegram_api import TOKEN, FakeTelegramAPI, TelegramLimits
from tests.scheduler.conftest import add_customer, outbox_rows


async def queue(db: Database, clock: ManualClock, *entries: OutboxEntry) -> int:
    async with db.transaction() as session:
        return await enqueue(session, entries, clock.now())


def reminder(customer: int, key: str, clock: ManualClock, text: str = "hello") -> OutboxEntry:
    return OutboxEntry(key, Category.REMINDER, customer, text, clock.now())


async def test_due_messages_are_sent_once(
    db: Database, clock: ManualClock, dispatcher: Dispatcher, telegram_api: FakeTelegramAPI
) -> None:
    ids = [await add_customer(db, clock.now(), chat=100 + n) for n in range(3)]
    assert await queue(db, clock, *(reminder(i, f"k{i}", clock) for i in ids)) == 3
    assert await queue(db, clock, reminder(ids[0], f"k{ids[0]}", clock)) == 0

    await dispatcher.dispatch_due()
    await dispatcher.dispatch_due()

    assert sorted(m.chat_id for m in telegram_api.sent) == [100, 101, 102]
    assert [r.status for r in await outbox_rows(db)] == ["sent"] * 3


def marketing(customer: int, key: str, clock: ManualClock, text: str = "offer") -> OutboxEntry:
    return OutboxEntry(key, Category.MARKETING, customer, text, clock.now())


async def statuses(db: Database) -> list[tuple[str, str | None]]:
    return [(r.status, r.reason) for r in await outbox_rows(db)]


async def test_429_is_honoured_and_the_pause_outlives_a_restart(
    db: Database,
    clock: ManualClock,
    settings: Settings,
    dispatcher: Dispatcher,
    telegram_api: FakeTelegramAPI,
) -> None:
    first = await add_customer(db, clock.now(), chat=1)
    second = await add_customer(db, clock.now(), chat=2)
    await queue(db, clock, reminder(first, "a", clock))
    telegram_api.fail_next(status=429, retry_after=30)

    await dispatcher.dispatch_due()
    await queue(db, clock, reminder(second, "b", clock))
    restarted = Dispatcher(db, clock, dispatcher.channels, settings, limits=Limits.unlimited())
    await restarted.recover()
    clock.advance(timedelta(seconds=29))
    await restarted.dispatch_due()

    assert telegram_api.sent == []  # the stored pause holds both messages back
    rows = await outbox_rows(db)
    assert rows[0].status == "queued"
    assert rows[0].reason is not None
    assert rows[0].reason.startswith("429")
    assert rows[0].attempts == 1
    clock.advance(timedelta(seconds=2))
    await restarted.dispatch_due()
    assert sorted(m.chat_id for m in telegram_api.sent) == [1, 2]
    assert [r.status for r in await outbox_rows(db)] == ["sent", "sent"]
    assert dispatcher.stats.rate_limited == 1


async def test_403_marks_the_chat_unreachable_until_the_customer_writes_again(
    db: Database,
    clock: ManualClock,
    dispatcher: Dispatcher,
    telegram_api: FakeTelegramAPI,
    engine: Engine,
) -> None:
    customer = await add_customer(db, clock.now(), chat=5)
    await queue(db, clock, reminder(customer, "a", clock))
    telegram_api.fail_next(5, status=403)

    await dispatcher.dispatch_due()
    await queue(db, clock, reminder(customer, "b", clock))
    await dispatcher.dispatch_due()

    async with db.sessions() as session:
        identity = await session.scalar(select(ChannelIdentity))
    assert identity is not None
    assert identity.blocked_at == clock.now()
    assert await statuses(db) == [
        ("failed", "blocked: Forbidden: bot was blocked by the user"),
        ("skipped", "unreachable"),
    ]
    await engine.handle(Inbound("telegram", "5", "5", "hello again", clock.now()))
    await queue(db, clock, reminder(customer, "c", clock, text="welcome"))
    await dispatcher.dispatch_due()
    assert [m.text for m in telegram_api.sent_to(5)][-1] == "welcome"


async def test_400_fails_with_the_error_and_is_not_retried(
    db: Database, clock: ManualClock, dispatcher: Dispatcher, telegram_api: FakeTelegramAPI
) -> None:
    customer = await add_customer(db, clock.now(), chat=5)
    await queue(db, clock, reminder(customer, "a", clock))
    telegram_api.fail_next(5, status=400, description="Bad Request: chat not found")

    await dispatcher.dispatch_due()
    clock.advance(timedelta(hours=1))
    await dispatcher.dispatch_due()

    assert await statuses(db) == [("failed", "refused: Chat not found")]
    assert len(telegram_api.calls_of("sendMessage")) == 1


async def test_a_connection_that_never_opened_is_retried_later(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    customer = await add_customer(db, clock.now(), chat=5)
    await queue(db, clock, reminder(customer, "a", clock))
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens here once the socket is closed
    bot = Bot(token=TOKEN, base_url=f"http://127.0.0.1:{port}/bot")
    dispatcher = Dispatcher(
        db, clock, {"telegram": TelegramChannel(bot, clock)}, settings, limits=Limits.unlimited()
    )

    await dispatcher.dispatch_due()

    [row] = await outbox_rows(db)
    assert (row.status, row.attempts) == ("queued", 1)
    assert row.reason is not None
    assert row.reason.startswith("not sent:")
    assert row.not_before == clock.now() + timedelta(seconds=2)


async def test_a_send_whose_answer_is_lost_is_unknown_and_never_repeated(
    db: Database, clock: ManualClock, settings: Settings, telegram_api: FakeTelegramAPI
) -> None:
    customer = await add_customer(db, clock.now(), chat=5)
    await queue(db, clock, reminder(customer, "a", clock))
    telegram_api.send_delay = 1.0  # the message arrives, the answer comes too late
    bot = Bot(
        token=telegram_api.token,
        base_url=f"{telegram_api.url}/bot",
        request=HTTPXRequest(read_timeout=0.2),
    )
    dispatcher = Dispatcher(
        db, clock, {"telegram": TelegramChannel(bot, clock)}, settings, limits=Limits.unlimited()
    )

    await dispatcher.dispatch_due()
    clock.advance(timedelta(hours=1))
    await dispatcher.dispatch_due()

    [row] = await outbox_rows(db)
    assert row.status == "unknown"
    assert len(telegram_api.sent_to(5)) == 1


async def test_rows_caught_mid_send_become_unknown_and_are_not_sent_again(
    db: Database, clock: ManualClock, dispatcher: Dispatcher, telegram_api: FakeTelegramAPI
) -> None:
    customer = await add_customer(db, clock.now(), chat=5)
    await queue(db, clock, reminder(customer, "a", clock), reminder(customer, "b", clock))
    async with db.transaction() as session:  # as a dispatcher killed between commit and answer
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.dedupe_key == "a")
            .values(status="sending", lease_owner="dead", sent_at=clock.now())
        )

    assert await dispatcher.recover() == 1
    await dispatcher.dispatch_due()

    rows = {r.dedupe_key: r for r in await outbox_rows(db)}
    assert rows["a"].status == "unknown"
    assert rows["b"].status == "sent"
    assert len(telegram_api.sent_to(5)) == 1


async def test_quiet_hours_move_marketing_and_reminders_to_the_morning(
    db: Database, clock: ManualClock, dispatcher: Dispatcher, telegram_api: FakeTelegramAPI
) -> None:
    clock.advance(timedelta(hours=12))  # 22:00 UTC, the customer's (default) zone
    customer = await add_customer(db, clock.now(), chat=5)
    await queue(db, clock, reminder(customer, "r", clock), marketing(customer, "m", clock))

    await dispatcher.dispatch_due()
    assert telegram_api.sent == []
    morning = datetime(2026, 5, 2, 9, 0, tzinfo=UTC)
    assert [(r.status, r.not_before) for r in await outbox_rows(db)] == [
        ("queued", morning),
        ("queued", morning),
    ]
    clock.advance(morning - clock.now())
    await dispatcher.dispatch_due()
    assert len(telegram_api.sent_to(5)) == 2


async def test_consent_opt_out_and_the_frequency_cap_skip_marketing_with_a_reason(
    db: Database, clock: ManualClock, dispatcher: Dispatcher, telegram_api: FakeTelegramAPI
) -> None:
    keen = await add_customer(db, clock.now(), chat=1)
    never_asked = await add_customer(db, clock.now(), chat=2, consent=False)
    stopped = await add_customer(db, clock.now(), chat=3, opted_out=True)
    await queue(
        db,
        clock,
        *(marketing(keen, f"keen{n}", clock) for n in range(3)),
        marketing(never_asked, "never", clock),
        marketing(stopped, "stopped", clock),
    )

    await dispatcher.dispatch_due()

    assert await statuses(db) == [
        ("sent", None),
        ("sent", None),
        ("skipped", "frequency_cap"),
        ("skipped", "no_consent"),
        ("skipped", "opted_out"),
    ]
    clock.advance(timedelta(days=7, seconds=1))  # the cap counts the last 7 days
    await queue(db, clock, marketing(keen, "keen-next-week", clock))
    await dispatcher.dispatch_due()
    assert len(telegram_api.sent_to(1)) == 3


async def test_customers_without_a_chat_here_are_skipped_as_such(
    db: Database, clock: ManualClock, dispatcher: Dispatcher
) -> None:
    web_only = await add_customer(db, clock.now(), chat=9, channel="web")
    await queue(db, clock, reminder(web_only, "a", clock))

    await dispatcher.dispatch_due()

    assert await statuses(db) == [("skipped", "no_channel")]


async def test_messages_to_one_chat_keep_their_order_and_the_chat_rate(
    db: Database,
    clock: ManualClock,
    settings: Settings,
    channel: TelegramChannel,
    telegram_api: FakeTelegramAPI,
) -> None:
    customer = await add_customer(db, clock.now(), chat=5)
    await queue(db, clock, *(reminder(customer, f"k{n}", clock, text=f"m{n}") for n in range(3)))
    dispatcher = Dispatcher(db, clock, {"telegram": channel}, settings)  # Telegram's limits
    started = clock.now()

    await dispatcher.dispatch_due()

    assert [m.text for m in telegram_api.sent_to(5)] == ["m0", "m1", "m2"]
    sent_at = [r.sent_at for r in await outbox_rows(db)]
    assert all(b - a >= timedelta(seconds=1) for a, b in itertools.pairwise(sent_at))
    assert clock.now() - started < timedelta(seconds=3)


async def test_paid_broadcasts_raise_the_limit_and_ask_telegram_for_it(
    clock: ManualClock, settings: Settings, telegram_api: FakeTelegramAPI
) -> None:
    paid = Settings(
        _env_file=None,
        **settings.model_dump()
        | {
            "telegram_token": SecretStr(telegram_api.token),
            "telegram_api_url": telegram_api.url,
            "paid_broadcast": True,
        },
    )
    assert limits_from(settings).per_second == 30
    assert limits_from(paid).per_second == 1000

    async with dispatch_channels(paid, clock) as channels:
        await channels["telegram"].send("5", Reply("hi"))
    async with dispatch_channels(settings, clock) as none:
        assert none == {}  # no token, no channel: rows wait in the outbox

    [call] = telegram_api.calls_of("sendMessage")
    assert call.params["allow_paid_broadcast"] is True


async def test_a_reply_to_one_chat_goes_there_even_at_night(
    db: Database, clock: ManualClock, dispatcher: Dispatcher, telegram_api: FakeTelegramAPI
) -> None:
    clock.advance(timedelta(hours=13))  # 23:00 UTC: quiet hours, but replies do not wait
    customer = await add_customer(db, clock.now(), chat=5)
    now = clock.now()
    await queue(
        db,
        clock,
        OutboxEntry("staff:1", Category.REPLY, customer, "Your car is ready", now,
                    channel="telegram", chat_id="77"),
        OutboxEntry("staff:2", Category.REPLY, customer, "Hi", now, channel="web", chat_id="w1"),
    )  # fmt: skip

    await dispatcher.dispatch_due()

    assert [m.text for m in telegram_api.sent_to(77)] == ["Your car is ready"]
    assert await statuses(db) == [("sent", None), ("skipped", "no_channel")]


async def test_a_send_whose_outcome_was_never_recorded_becomes_unknown_after_its_lease(
    db: Database, clock: ManualClock, dispatcher: Dispatcher, telegram_api: FakeTelegramAPI
) -> None:
    customer = await add_customer(db, clock.now(), chat=5)
    await queue(db, clock, reminder(customer, "a", clock))
    lease_end = clock.now() + timedelta(seconds=60)
    async with db.transaction() as session:  # as if recording its outcome had failed
        await session.execute(
            update(OutboxMessage).values(status="sending", lease_owner="me", lease_until=lease_end)
        )

    await dispatcher.dispatch_due()
    assert [r.status for r in await outbox_rows(db)] == ["sending"]  # maybe still in flight
    clock.advance(timedelta(seconds=61))
    await dispatcher.dispatch_due()

    assert await statuses(db) == [
        ("unknown", "no outcome recorded within the lease; not sent again")
    ]
    assert telegram_api.sent == []


async def test_the_fake_server_enforces_telegrams_limits_when_asked(
    channel: TelegramChannel, telegram_api: FakeTelegramAPI
) -> None:
    telegram_api.limits = TelegramLimits()
    await channel.send("5", Reply("one"))
    with pytest.raises(RetryAfterError) as second:
        await channel.send("5", Reply("two"))  # 1 per second to one chat
    for chat in range(100, 129):
        await channel.send(str(chat), Reply("x"))  # 30 in this second over all chats
    with pytest.raises(RetryAfterError):
        await channel.send("200", Reply("x"))

    assert second.value.seconds == 1
    assert (len(telegram_api.sent), telegram_api.rate_limited) == (30, 2)


async def test_a_token_telegram_refuses_is_retried_later_not_given_up(
    db: Database, clock: ManualClock, settings: Settings, telegram_api: FakeTelegramAPI
) -> None:
    customer = await add_customer(db, clock.now(), chat=5)
    await queue(db, clock, reminder(customer, "a", clock))
    bot = Bot(token="123:not-the-token", base_url=f"{telegram_api.url}/bot")
    dispatcher = Dispatcher(
        db, clock, {"telegram": TelegramChannel(bot, clock)}, settings, limits=Limits.unlimited()
    )

    await dispatcher.dispatch_due()

    [row] = await outbox_rows(db)
    assert (row.status, row.attempts) == ("queued", 1)
    assert telegram_api.sent == []

"""The Telegram adapter end to end: the real python-telegram-bot client against the fake Bot API.

Every test that stores anything runs on SQLite and PostgreSQL (through the `engine` fixture);
time moves only through the ManualClock, so retry waits and back-offs are checked, not slept.
Replies go out in the background (`bot.channels.reply_sender`): `poll` waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import func, select
from telegram.error import InvalidToken

from bot.channels import RetryAfterError
from bot.channels.telegram import MAX_MESSAGE_LENGTH, split_text
from bot.channels.telegram_poller import TelegramPoller, build_poller
from bot.clock import ManualClock
from bot.config import Settings
from bot.engine import Engine
from bot.storage.database import Database
from bot.storage.models import ChannelIdentity, Customer, MessageLog
from dialogs.texts import t
from dialogs.types import Reply
from tests.conftest import START, BuggyComplaintModel
from tests.fakes.telegram_api import FakeTelegramAPI

ANNA = 1001
BOB = 1002


def telegram_settings(settings: Settings, api: FakeTelegramAPI, **extra: object) -> Settings:
    """`settings` pointed at the fake server; long polls return at once unless a test asks."""
    values = settings.model_dump() | {
        "telegram_token": SecretStr(api.token),
        "telegram_api_url": api.url,
        "telegram_poll_timeout": 0,
    }
    return Settings(_env_file=None, **(values | extra))


@pytest.fixture
async def poller(
    engine: Engine, settings: Settings, telegram_api: FakeTelegramAPI
) -> AsyncIterator[TelegramPoller]:
    poller = build_poller(engine, telegram_settings(settings, telegram_api))
    async with poller.bot:
        yield poller
        await poller.replies.stop()


async def poll(poller: TelegramPoller) -> int:
    """One polling round, then wait until its replies are sent and marked."""
    handled = await poller.poll_once()
    await poller.replies.idle()
    return handled


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


async def inbound_rows(db: Database) -> int:
    async with db.transaction() as session:
        query = select(func.count()).select_from(MessageLog).where(MessageLog.direction == "in")
        return (await session.scalar(query)) or 0


async def test_first_message_is_greeted_with_name_button_and_contact_request(
    poller: TelegramPoller, telegram_api: FakeTelegramAPI
) -> None:
    update = telegram_api.push_text(ANNA, "hi", first_name="Anna", last_name="Smith")

    assert await poll(poller) == 1

    greeting, hint = telegram_api.sent_to(ANNA)
    assert "Anna Smith" in greeting.text
    assert greeting.button_texts == ["Anna Smith"]
    assert greeting.reply_markup is not None
    assert greeting.reply_markup["one_time_keyboard"] is True
    assert hint.buttons == [
        {"text": t("en", "greeting.share_contact_button"), "request_contact": True}
    ]
    await poller.poll_once()  # the next round confirms the handled update
    assert telegram_api.confirmed_offset == update["update_id"] + 1
    assert telegram_api.pending == []


async def test_returning_customer_is_welcomed_back_by_name(
    poller: TelegramPoller, telegram_api: FakeTelegramAPI, clock: ManualClock
) -> None:
    telegram_api.push_text(ANNA, "hi", first_name="Anna")
    await poll(poller)
    telegram_api.push_text(ANNA, "Anna", first_name="Anna")
    await poll(poller)
    clock.advance(timedelta(hours=7))
    telegram_api.push_text(ANNA, "hello", first_name="Anna")
    await poll(poller)

    assert "Nice to meet you, Anna" in telegram_api.sent_to(ANNA)[2].text
    assert telegram_api.sent_to(ANNA)[-1].text.startswith("Welcome back, Anna")


async def test_shared_contact_links_the_chat_to_the_customer_on_file(
    poller: TelegramPoller, telegram_api: FakeTelegramAPI, db: Database
) -> None:
    async with db.transaction() as session:
        session.add(Customer(name="Li Wei", phone="+8613800138000", on_file=True, created_at=START))
    # Telegram's contact button sends the number without the "+".
    telegram_api.push_contact(ANNA, "8613800138000", first_name="Wei", language_code="en")

    await poll(poller)

    assert "Li Wei" in telegram_api.sent_to(ANNA)[0].text
    async with db.transaction() as session:
        identity = await session.scalar(select(ChannelIdentity))
        on_file = await session.scalar(select(Customer).where(Customer.name == "Li Wei"))
    assert identity is not None
    assert on_file is not None
    assert identity.customer_id == on_file.id


async def test_someone_elses_contact_is_refused(
    poller: TelegramPoller, telegram_api: FakeTelegramAPI, db: Database
) -> None:
    telegram_api.push_text(ANNA, "hi")
    telegram_api.push_contact(ANNA, "8613800138000", contact_user_id=BOB)
    await poll(poller)

    refusal = telegram_api.sent_to(ANNA)[-1]
    assert refusal.text == t("en", "profile.foreign_contact")
    assert refusal.buttons[0]["request_contact"] is True
    async with db.transaction() as session:
        assert await session.scalar(select(Customer.phone)) is None


async def test_stickers_and_photos_get_a_text_only_answer(
    poller: TelegramPoller, telegram_api: FakeTelegramAPI
) -> None:
    telegram_api.push_text(ANNA, "hi")
    await poll(poller)
    telegram_api.push_sticker(ANNA)
    telegram_api.push_photo(ANNA, caption="my car")
    await poll(poller)

    answers = [message.text for message in telegram_api.sent_to(ANNA)[2:]]
    assert answers == [t("en", "input.unsupported")] * 2


# PTB 22 itself warns, while building RetryAfter, that retry_after will become a timedelta.
async def test_retry_after_is_waited_out_and_the_reply_delivered_once(
    poller: TelegramPoller, telegram_api: FakeTelegramAPI, clock: ManualClock
) -> None:
    telegram_api.fail_next(ANNA, status=429, retry_after=3)
    telegram_api.push_text(ANNA, "hi", first_name="Anna")

    await poll(poller)

    greetings = [m for m in telegram_api.sent_to(ANNA) if "Anna" in m.text]
    assert len(greetings) == 1
    assert len(telegram_api.calls_of("sendMessage")) == 3  # refused, retried, then the hint
    assert clock.now() - START >= timedelta(seconds=3)


async def test_blocked_chat_is_marked_unreachable_and_polling_goes_on(
    poller: TelegramPoller, telegram_api: FakeTelegramAPI, db: Database, clock: ManualClock
) -> None:
    telegram_api.fail_next(ANNA, status=403)
    telegram_api.push_text(ANNA, "hi")
    last = telegram_api.push_text(BOB, "hi")

    assert await poll(poller) == 2

    assert telegram_api.sent_to(ANNA) == []
    assert len(telegram_api.sent_to(BOB)) == 2
    assert poller.offset == last["update_id"] + 1
    async with db.transaction() as session:
        blocked = await session.scalar(
            select(ChannelIdentity.blocked_at).where(ChannelIdentity.chat_id == str(ANNA))
        )
    assert blocked is not None
    assert START <= blocked <= clock.now()  # the clock moved on while Bob's replies were paced
    assert (poller.replies.stats.blocked, poller.replies.stats.undelivered) == (1, 2)


async def test_bad_request_is_logged_and_polling_goes_on(
    poller: TelegramPoller, telegram_api: FakeTelegramAPI, caplog: pytest.LogCaptureFixture
) -> None:
    telegram_api.fail_next(ANNA, status=400)
    telegram_api.push_text(ANNA, "hi", first_name="Anna")
    with caplog.at_level(logging.ERROR, logger="bot.channels.telegram"):
        await poll(poller)
    telegram_api.push_text(ANNA, "thanks")
    await poll(poller)

    logged = [record.getMessage().lower() for record in caplog.records]
    assert any("chat not found" in line and str(ANNA) in line for line in logged)
    texts = [message.text for message in telegram_api.sent_to(ANNA)]
    assert texts[-1] == t("en", "smalltalk.thanks")
    assert poller.replies.stats.undelivered == 1


async def test_a_long_reply_arrives_in_pieces_within_the_limit(
    poller: TelegramPoller, telegram_api: FakeTelegramAPI
) -> None:
    line = "The quick brown fox jumps over the lazy dog, again and again and again.\n"
    text = (line * 200)[:10_000]

    await poller.channel.send(str(ANNA), Reply(text, buttons=("OK",)))

    pieces = telegram_api.sent_to(ANNA)
    assert len(pieces) == 3
    assert all(len(piece.text) <= MAX_MESSAGE_LENGTH for piece in pieces)
    assert "".join(piece.text for piece in pieces) == text
    assert all(piece.text.endswith("\n") for piece in pieces[:-1])  # broken at line ends
    assert [piece.button_texts for piece in pieces] == [[], [], ["OK"]]


async def test_a_429_within_a_long_reply_does_not_repeat_the_delivered_pieces(
    poller: TelegramPoller, telegram_api: FakeTelegramAPI, clock: ManualClock
) -> None:
    text = "word " * 2_000
    telegram_api.fail_next(ANNA, status=429, retry_after=5)
    with pytest.raises(RetryAfterError) as refused:  # nothing delivered yet: the caller waits
        await poller.channel.send(str(ANNA), Reply(text))
    assert refused.value.seconds == 5
    assert telegram_api.sent == []

    telegram_api.fail_next(ANNA, status=429, retry_after=5, after=1)
    await poller.channel.send(str(ANNA), Reply(text))

    assert "".join(message.text for message in telegram_api.sent) == text
    assert clock.now() - START == timedelta(seconds=5)


@hypothesis_settings(max_examples=150, deadline=None)
@given(
    text=st.lists(
        st.sampled_from(["word ", "\n", "x" * 97, "长句子" * 30, "😀", " " * 40, "a", "\t"]),
        max_size=600,
    ).map(lambda parts: "".join(parts)[:20_000])
    | st.text(max_size=2_000),
    limit=st.sampled_from([2, 3, 50, 777, MAX_MESSAGE_LENGTH]),
)
def test_split_text_keeps_every_character_within_the_limit(text: str, limit: int) -> None:
    pieces = split_text(text, limit)

    assert "".join(pieces) == text
    assert all(piece and utf16_length(piece) <= limit for piece in pieces)


async def test_an_update_is_confirmed_only_after_its_transaction_committed(
    tmp_path: Path, clock: ManualClock, telegram_api: FakeTelegramAPI
) -> None:
    path = tmp_path / "concierge.db"
    # A short busy timeout, so a locked database fails fast instead of waiting 30 s.
    database = Database(f"sqlite+aiosqlite:///{path}", connect_args={"timeout": 0.2})
    await database.upgrade()
    configured = telegram_settings(Settings(_env_file=None), telegram_api)
    poller = build_poller(Engine(database, clock, configured), configured)
    update = telegram_api.push_text(ANNA, "hi")
    locker = sqlite3.connect(path, isolation_level=None)
    try:
        async with poller.bot:
            locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
            assert await poller.poll_once() == 0
            assert poller.offset is None
            assert telegram_api.sent == []
            assert clock.now() - START >= timedelta(seconds=1)  # backed off on the clock
            locker.execute("ROLLBACK")

            assert await poll(poller) == 1
            await poller.poll_once()
            await poller.replies.stop()
        assert telegram_api.confirmed_offset == update["update_id"] + 1
        assert len(telegram_api.sent_to(ANNA)) == 2  # the greeting and the contact hint, once
        assert await inbound_rows(database) == 1
        assert poller.stats.storage_outages == 1
    finally:
        locker.close()
        await database.dispose()


async def test_a_redelivered_update_is_answered_from_the_log(
    engine: Engine, settings: Settings, telegram_api: FakeTelegramAPI, db: Database
) -> None:
    configured = telegram_settings(settings, telegram_api)
    update = telegram_api.push_text(ANNA, "hi", first_name="Anna")
    # The first poller stops (crashes) before its next getUpdates could confirm the update,
    # but after its replies went out; the restarted poller is given the same update again.
    crashed = build_poller(engine, configured)
    async with crashed.bot:
        assert await poll(crashed) == 1
        await crashed.replies.stop()
    first_answer = [message.text for message in telegram_api.sent]
    restarted = build_poller(engine, configured)
    async with restarted.bot:
        assert await poll(restarted) == 1
        await poll(restarted)
        await restarted.replies.stop()

    assert first_answer[0].startswith("Hello, Anna")
    assert len(first_answer) == 2
    assert [message.text for message in telegram_api.sent] == first_answer  # answered once
    assert await inbound_rows(db) == 1
    assert telegram_api.confirmed_offset == update["update_id"] + 1


async def test_a_poison_update_gets_an_apology_and_does_not_block_the_others(
    db: Database,
    clock: ManualClock,
    settings: Settings,
    telegram_api: FakeTelegramAPI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    configured = telegram_settings(settings, telegram_api)
    engine = Engine(db, clock, configured, complaint_model=lambda: BuggyComplaintModel())
    poller = build_poller(engine, configured)
    poison = telegram_api.push_text(ANNA, "boom", language_code="zh-hans")
    last = telegram_api.push_text(BOB, "hi", first_name="Bob")
    async with poller.bot:
        assert await poll(poller) == 2
        await poller.replies.stop()

    assert [m.text for m in telegram_api.sent_to(ANNA)] == [t("zh", "error.internal")]
    assert "Bob" in telegram_api.sent_to(BOB)[0].text
    assert poller.offset == last["update_id"] + 1
    assert poller.stats.internal_errors == 1
    failure = next(r for r in caplog.records if r.exc_info)
    assert str(poison["update_id"]) in failure.getMessage()


async def test_get_updates_failures_are_waited_out(
    poller: TelegramPoller, telegram_api: FakeTelegramAPI, clock: ManualClock
) -> None:
    telegram_api.fail_next(status=502, method="getUpdates", times=2)
    telegram_api.push_text(ANNA, "hi")

    assert await poller.poll_once() == 0
    assert await poller.poll_once() == 0
    assert clock.now() - START == timedelta(seconds=1 + 2)  # exponential back-off
    assert await poller.poll_once() == 1
    assert poller.stats.poll_failures == 2


async def test_a_wrong_token_is_logged_not_fatal(
    engine: Engine,
    settings: Settings,
    telegram_api: FakeTelegramAPI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    configured = telegram_settings(settings, telegram_api, telegram_token=SecretStr("1:wrong"))
    poller = build_poller(engine, configured)
    try:
        with pytest.raises(InvalidToken):
            await poller.bot.initialize()
        assert await poller.poll_once() == 0
    finally:
        await poller.replies.stop()
        await poller.bot.shutdown()

    assert any(
        r.levelno == logging.ERROR and "getUpdates" in r.getMessage() for r in caplog.records
    )


async def test_group_messages_are_ignored_but_confirmed(
    poller: TelegramPoller, telegram_api: FakeTelegramAPI, db: Database
) -> None:
    update = telegram_api.push_text(ANNA, "hi", chat_id=-100123, chat_type="group")

    assert await poller.poll_once() == 1

    assert telegram_api.sent == []
    assert poller.offset == update["update_id"] + 1
    assert await inbound_rows(db) == 0


async def test_run_polls_until_cancelled_and_confirms_on_the_way_out(
    engine: Engine, settings: Settings, telegram_api: FakeTelegramAPI
) -> None:
    poller = build_poller(
        engine, telegram_settings(settings, telegram_api, telegram_poll_timeout=5)
    )
    update = telegram_api.push_text(ANNA, "hi")
    task = asyncio.create_task(poller.run())

    # Handled, answered, and confirmed by the next round's getUpdates, all on its own.
    await telegram_api.wait_until(lambda: telegram_api.confirmed_offset > 0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    assert telegram_api.calls_of("deleteWebhook")
    assert telegram_api.confirmed_offset == update["update_id"] + 1
    assert len(telegram_api.sent_to(ANNA)) == 2


async def test_the_fake_reads_multipart_and_json_bodies(telegram_api: FakeTelegramAPI) -> None:
    base = f"{telegram_api.url}/bot{telegram_api.token}"
    markup = {"keyboard": [[{"text": "OK"}]]}
    async with httpx.AsyncClient() as client:
        multipart = await client.post(
            f"{base}/sendMessage",
            data={"chat_id": "7", "text": "123", "reply_markup": json.dumps(markup)},
            files={"document": ("a.txt", b"hello")},
        )
        as_json = await client.post(f"{base}/sendMessage", json={"chat_id": 7, "text": "hi"})
        unknown = await client.post(f"{base}/sendTelepathy")
        wrong_token = await client.get(f"{telegram_api.url}/bot1:nope/getMe")

    assert multipart.json()["ok"]
    assert as_json.json()["ok"]
    assert [(m.chat_id, m.text, m.reply_markup) for m in telegram_api.sent] == [
        (7, "123", markup),
        (7, "hi", None),
    ]
    assert unknown.status_code == 404
    assert wrong_token.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}

"""One scheduler among many processes: the leader lock, and a takeover when the leader dies."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, text

from bot.clock import SystemClock
from bot.config import Settings
from bot.storage.database import Database
from bot.storage.models import OutboxMessage
from scheduler.campaigns import create_campaign
from scheduler.leader import FileLeaderLock, PostgresLeaderLock, leader_lock
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.scheduler.processes import BotProcess, shared_database, wait_for
from tests.scheduler.test_crash import FIRST_CHAT, populate

CUSTOMERS = 40


async def test_only_one_postgres_session_holds_the_lock_and_it_is_freed_with_it(
    tmp_path: Path,
) -> None:
    async with shared_database("postgresql", tmp_path) as (url, database):
        other = Database(url)
        try:
            first = PostgresLeaderLock(database, "role")
            second = PostgresLeaderLock(other, "role")
            assert await first.acquire()
            assert not await second.acquire()
            assert await first.still_held()
            await first.release()
            assert await second.acquire()
            await second.release()
        finally:
            await other.dispose()


async def test_on_sqlite_a_file_lock_keeps_a_second_dispatcher_out(tmp_path: Path) -> None:
    async with shared_database("sqlite", tmp_path) as (_, database):
        first, second = leader_lock(database, "role"), leader_lock(database, "role")
        assert isinstance(first, FileLeaderLock)
        assert await first.acquire()
        assert not await second.acquire()
        await first.release()
        assert await second.acquire()
        await second.release()


async def campaign_now(database: Database, name: str) -> int:
    now = SystemClock().now()
    async with database.transaction() as session:
        campaign = await create_campaign(
            session, text=f"{name}: hello {{name}}", segment="", send_at=now - timedelta(seconds=1),
            event_on=None, name=name, settings=Settings(_env_file=None), now=now,
        )  # fmt: skip
        return campaign.id


async def finished(database: Database, campaign_id: int) -> bool:
    async with database.sessions() as session:
        total = await session.scalar(
            select(func.count()).where(
                OutboxMessage.campaign_id == campaign_id, OutboxMessage.status == "sent"
            )
        )
    return total == CUSTOMERS


async def lock_holders(database: Database) -> int:
    async with database.sessions() as session:
        held = await session.scalar(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
        )
    return int(held or 0)


async def test_two_bots_share_one_database_and_the_survivor_takes_over(
    tmp_path: Path, telegram_api: FakeTelegramAPI
) -> None:
    async with shared_database("postgresql", tmp_path) as (url, database):
        first_campaign = await populate(database, CUSTOMERS)
        leader = await BotProcess("leader", tmp_path, url, telegram_api).start()
        await wait_for(lambda: leader.logged("runs the scheduler"), "the first to lead")
        follower = await BotProcess("follower", tmp_path, url, telegram_api).start()
        try:
            await wait_for(lambda: finished(database, first_campaign), "the first campaign")
            await wait_for(lambda: follower.logged("Web chat on"), "the second to start")
            assert not follower.logged("runs the scheduler")
            assert await lock_holders(database) == 1

            await leader.kill()
            killed = time.monotonic()
            await wait_for(lambda: follower.logged("runs the scheduler"), "the takeover", 30)
            took = time.monotonic() - killed
            second_campaign = await campaign_now(database, "second")
            await wait_for(lambda: finished(database, second_campaign), "the second campaign")
        finally:
            await leader.stop()
            await follower.stop()

    assert took < 30, f"the takeover took {took:.1f} s"
    per_chat = Counter(message.chat_id for message in telegram_api.sent)
    assert set(per_chat) == set(range(FIRST_CHAT, FIRST_CHAT + CUSTOMERS))
    assert set(per_chat.values()) == {2}, "a campaign reached someone twice"

"""The scheduler role in-process: APScheduler ticks the jobs only while the leader lock is held.

These tests run on the wall clock with sub-second intervals (APScheduler keeps real time); the
jobs' own logic is tested with the ManualClock elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date, timedelta

from bot.channels.telegram import TelegramChannel
from bot.clock import SystemClock
from bot.config import Settings
from bot.storage.database import Database
from scheduler.runtime import ProactiveRuntime
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.scheduler.conftest import add_customer, outbox_rows
from tests.scheduler.processes import wait_for


class SwitchableLock:
    """A leader lock the test hands over and takes back."""

    def __init__(self) -> None:
        self.free = False
        self.held = False
        self.released = 0

    async def acquire(self) -> bool:
        self.held = self.held or self.free
        return self.held

    async def still_held(self) -> bool:
        self.held = self.held and self.free
        return self.held

    async def release(self) -> None:
        self.held = False
        self.released += 1


def quick(settings: Settings) -> Settings:
    return Settings(
        _env_file=None,
        **settings.model_dump()
        | {
            "dispatcher_interval": 0.1,
            "sweep_interval": timedelta(seconds=0.3),
            "leader_retry_interval": 0.1,
            "quiet_hours_start": "00:00",
            "quiet_hours_end": "00:00",
            "birthday_hour": 0,
        },
    )


async def test_jobs_run_only_in_the_process_holding_the_role(
    db: Database, settings: Settings, channel: TelegramChannel, telegram_api: FakeTelegramAPI
) -> None:
    clock = SystemClock()
    today = clock.now().date()
    await add_customer(db, clock.now(), chat=8, name="Anna", birthday=date(1990, today.month, 1))
    await add_customer(
        db, clock.now(), chat=9, name="Bo", birthday=today.replace(year=1992)
    )  # a leap year
    lock = SwitchableLock()
    runtime = ProactiveRuntime(db, clock, quick(settings), {"telegram": channel}, lock=lock)
    task = asyncio.create_task(runtime.run())
    try:
        await asyncio.sleep(0.6)
        assert await outbox_rows(db) == []  # not the leader: nothing is queued or sent

        lock.free = True  # the holder died
        await wait_for(runtime.leading.is_set, "taking over the role", 5)
        await wait_for(lambda: telegram_api.sent_to(9), "the birthday greeting", 5)
        assert "Happy birthday, Bo!" in telegram_api.sent_to(9)[0].text

        lock.free = False  # the lock's connection broke: the role is given up
        await wait_for(lambda: not runtime.leading.is_set(), "giving up the role", 10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert lock.released >= 1
    assert len(telegram_api.sent) == 1 + (today.day == 1)
    assert runtime.job_failures == 0

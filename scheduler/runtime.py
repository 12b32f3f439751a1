"""The scheduler role: wait for the leader lock, then tick the jobs with APScheduler.

APScheduler 3 (`AsyncIOScheduler`, in-memory job store) only ticks: a few periodic jobs defined
here (campaigns, birthdays, reminders, follow-ups, the ticket SLA check, the outbox dispatcher),
each reading what is due from the database. Overlapping, late or doubled ticks are harmless
because every job writes under unique keys (the outbox's dedupe keys; a ticket's escalation
level). The process that loses the leader lock (or never gets it) keeps trying every
`leader_retry_interval` seconds and takes over when the holder dies. Taking over starts with
`Dispatcher.recover`: rows the dead holder left `sending` become `unknown`. With Telegram
configured, the staff notifier posts queued staff notices to the staff group every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

from bot.channels import Channel
from bot.clock import Clock
from bot.config import Settings
from bot.staff.notifier import StaffNotifier
from bot.staff.telegram import StaffChat
from bot.storage.database import Database
from scheduler.birthdays import queue_birthdays
from scheduler.campaigns import queue_due_campaigns
from scheduler.dispatcher import Dispatcher
from scheduler.followups import queue_follow_ups
from scheduler.leader import LeaderLock, leader_lock
from scheduler.reminders import queue_reminders
from scheduler.sla import SLA_CHECK, SlaReport, check_tickets

log = logging.getLogger(__name__)

CAMPAIGN_CHECK = timedelta(seconds=15)  # a campaign set for 10:00 goes out by 10:00:15
LEADERSHIP_CHECK = 5.0  # seconds between checks that the leader lock is still held (at most)
STAFF_NOTICES_INTERVAL = 1.0  # seconds between the staff notifier's passes
STOP_GRACE = 15.0  # seconds the dispatcher gets to finish the sends in flight on shutdown


class ProactiveRuntime:
    """Runs the jobs and the dispatcher in whichever process holds the leader lock."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        settings: Settings,
        channels: Mapping[str, Channel],
        lock: LeaderLock | None = None,
        staff_chat: StaffChat | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        self.settings = settings
        self.channels = channels
        self.lock = lock or leader_lock(database, settings.leader_lock)
        self.dispatcher = Dispatcher(database, clock, channels, settings)
        self.staff_chat = staff_chat  # None: Telegram is off; staff notices wait in the table
        self.notifier: StaffNotifier | None = None
        self.leading = asyncio.Event()
        self.job_failures = 0

    async def run(self) -> None:
        """Until cancelled: take the role when it is free, and run it while it is held."""
        try:
            while True:
                if await self.lock.acquire():
                    await self._lead()
                await self.clock.sleep(self.settings.leader_retry_interval)
        finally:
            await self.lock.release()

    async def _lead(self) -> None:
        log.info("this process runs the scheduler and the outbox dispatcher")
        self.dispatcher = Dispatcher(self.database, self.clock, self.channels, self.settings)
        await self.dispatcher.recover()
        scheduler = self._scheduler()
        scheduler.start()
        self.leading.set()
        try:
            check = min(LEADERSHIP_CHECK, self.settings.leader_retry_interval)
            while await self.lock.still_held():
                await self.clock.sleep(check)
            log.error("lost the scheduler role; another process may take it over")
        finally:
            self.leading.clear()
            # Let the sends in flight finish and be recorded before the jobs are cancelled:
            # a send cut off mid-way would only be `unknown` after the restart.
            self.dispatcher.stop()
            scheduler.pause()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.dispatcher.wait_idle(), STOP_GRACE)
            scheduler.shutdown(wait=False)

    def _scheduler(self) -> AsyncIOScheduler:
        settings = self.settings
        scheduler = AsyncIOScheduler(timezone="UTC")
        sweep = settings.sweep_interval.total_seconds()
        jobs: list[tuple[str, Callable[[], Awaitable[object]], float]] = [
            ("campaigns", self._queue_campaigns, min(sweep, CAMPAIGN_CHECK.total_seconds())),
            ("birthdays", self._queue_birthdays, sweep),
            ("reminders", self._queue_reminders, sweep),
            ("follow-ups", self._queue_follow_ups, sweep),
            ("sla", self._check_tickets, SLA_CHECK.total_seconds()),
        ]
        if self.channels:  # without a channel, rows wait in the outbox for one
            jobs.append(("dispatcher", self.dispatcher.dispatch_due, settings.dispatcher_interval))
        if self.staff_chat is not None:
            self.notifier = StaffNotifier(self.database, self.clock, self.staff_chat, settings)
            jobs.append(("staff notices", self._post_staff_notices, STAFF_NOTICES_INTERVAL))
        for name, job, seconds in jobs:
            scheduler.add_job(
                self._guarded(name, job),
                "interval",
                seconds=seconds,
                id=name,
                name=name,
                replace_existing=True,
                next_run_time=self.clock.now(),  # a first tick right away catches up
                misfire_grace_time=int(max(60.0, seconds * 2)),
                coalesce=True,
                # The dispatcher's tick returns at once while an earlier one still drains, so a
                # second instance is allowed instead of logging "maximum instances reached".
                max_instances=2 if name == "dispatcher" else 1,
            )
        return scheduler

    def _guarded(
        self, name: str, job: Callable[[], Awaitable[object]]
    ) -> Callable[[], Awaitable[None]]:
        async def tick() -> None:
            try:
                result = await job()
            except Exception:
                # Logged and counted; the next tick tries again (jobs are idempotent).
                self.job_failures += 1
                log.exception("scheduler job %r failed; it runs again at its next tick", name)
                return
            if isinstance(result, int) and result:
                log.info("%s: queued %d messages", name, result)

        return tick

    async def _queue_campaigns(self) -> int:
        return await queue_due_campaigns(self.database, self.clock, self.settings)

    async def _queue_birthdays(self) -> int:
        return await queue_birthdays(self.database, self.clock, self.settings)

    async def _post_staff_notices(self) -> None:
        assert self.notifier is not None
        await self.notifier.drain()

    async def _queue_reminders(self) -> int:
        return await queue_reminders(self.database, self.clock, self.settings)

    async def _queue_follow_ups(self) -> int:
        return await queue_follow_ups(self.database, self.clock, self.settings)

    async def _check_tickets(self) -> SlaReport:
        return await check_tickets(self.database, self.clock, self.settings)

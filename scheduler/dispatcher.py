"""The outbox dispatcher: claim due rows, apply the contact policy, send at the rate limit.

One tick (`dispatch_due`) drains what is due: it claims a batch under a lease, decides each row
with `scheduler.policy.decide` (skip with a reason, delay to the morning, or send), and feeds
the rest to the channel through the rate limiter, many in flight at once. A row is committed
as `sending` before its send starts and its outcome is committed right after, together with
the next rows going out, so a crash can leave at most the in-flight rows `unknown`, never a
message sent twice. What a send's failure means, and which are retried, is
`scheduler.delivery`'s business; a 429 pauses the channel (stored, so it outlives a restart).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.channels import (
    Channel,
)
from bot.clock import Clock
from bot.config import Settings
from bot.customers import mark_unreachable
from bot.storage.database import Database
from scheduler import claims, outbox
from scheduler.claims import RowUpdate
from scheduler.delivery import SendResult, send_once
from scheduler.outbox import Status
from scheduler.policy import ContactPolicy
from scheduler.ratelimit import Limits, RateLimiter
from scheduler.triage import PAUSED, Ready, triage

log = logging.getLogger(__name__)

# Under a rate limit a send starts this long after its slot was granted, whatever the commit in
# between took, so a slow commit cannot bunch sends up at the platform.
SEND_LAG = timedelta(milliseconds=100)
STOP_GRACE_SECONDS = 30.0  # how long sends in flight may take to finish after a failure


@dataclass(slots=True)
class DispatchStats:
    """What the dispatcher did since it was created, for logs, benchmarks and tests."""

    sent: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    delayed: int = 0
    failed: int = 0
    unknown: int = 0
    retried: int = 0
    rate_limited: int = 0  # 429 answers received
    blocked: int = 0  # 403 answers: chats marked unreachable
    recovered: int = 0  # rows found mid-send at start-up, now unknown


def limits_from(settings: Settings) -> Limits:
    overall = settings.paid_broadcast_per_second if settings.paid_broadcast else None
    return Limits(
        per_second=overall or settings.rate_limit_per_second,
        chat_per_second=settings.rate_limit_chat_per_second,
        group_per_minute=settings.rate_limit_group_per_minute,
    )


def policy_from(settings: Settings) -> ContactPolicy:
    return ContactPolicy(
        quiet_start=settings.quiet_hours_start,
        quiet_end=settings.quiet_hours_end,
        marketing_cap=settings.marketing_cap,
        cap_period=settings.marketing_cap_period,
    )


class Dispatcher:
    """Sends due outbox rows through `channels` (by channel name), one tick at a time."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        channels: Mapping[str, Channel],
        settings: Settings,
        *,
        limits: Limits | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        self.channels = dict(channels)
        self.settings = settings
        self.policy = policy_from(settings)
        self.limiter = RateLimiter(limits or limits_from(settings))
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stats = DispatchStats()
        self._epoch = clock.now()
        self._paused: dict[str, datetime] = {}
        self._stopping = False
        self._busy = False
        self._idle = asyncio.Event()
        self._idle.set()

    async def recover(self) -> int:
        """Call on taking the dispatcher role: rows caught mid-send become `unknown`."""
        async with self.database.transaction() as session:
            count = await outbox.recover_interrupted(session, self.clock.now())
        if count:
            log.warning("%d outbox messages were interrupted mid-send; marked unknown", count)
        self.stats.recovered += count
        return count

    def stop(self) -> None:
        """Send nothing new; the running tick finishes the sends in flight and returns."""
        self._stopping = True

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def dispatch_due(self) -> DispatchStats:
        """One tick: send (or skip, or delay) everything due now. A tick that finds another one
        still running returns at once, so overlapping timer ticks are harmless."""
        if self._busy or self._stopping:
            return self.stats
        self._busy = True
        self._idle.clear()
        try:
            while not self._stopping:
                ready = await self._claim_and_decide()
                if ready is None:
                    break
                await self._deliver(ready)
        finally:
            self._busy = False
            self._idle.set()
        return self.stats

    async def _claim_and_decide(self) -> list[Ready] | None:
        """Claim a batch and apply the policy; None when nothing is due (or all is paused)."""
        now = self.clock.now()
        settings = self.settings
        async with self.database.transaction() as session:
            if stale := await outbox.expire_stale_sends(session, now):
                log.warning("%d outbox messages lost their outcome; marked unknown", stale)
                self.stats.unknown += stale
            self._paused = await outbox.pauses(session, now)
            if self.channels and all(c in self._paused for c in self.channels):
                return None
            claimed = await claims.claim_due(
                session, self.owner, now, settings.dispatcher_lease, settings.dispatcher_batch
            )
            if not claimed:
                return None
            facts = await claims.customer_facts(
                session,
                [row.customer_id for row in claimed],
                self.channels,
                now - self.policy.cap_period,
            )
            sorted_out = triage(
                claimed, facts, now, self.policy, settings.timezone, self._paused, self.channels
            )
            await claims.set_status(session, sorted_out.updates, now)
        self.stats.skipped.update(sorted_out.skipped)
        self.stats.delayed += sorted_out.delayed
        return sorted_out.ready

    async def _deliver(self, rows: list[Ready]) -> None:
        """Send `rows` under the rate limit, many in flight; commit outcomes as they come.

        If recording fails (the database went away), the sends in flight are finished and
        their outcomes recorded once more before the error goes up; rows whose outcome still
        could not be recorded become `unknown` when their lease runs out.
        """
        in_flight: dict[asyncio.Task[SendResult], Ready] = {}
        try:
            await self._pipeline(rows, in_flight)
        except BaseException:
            if in_flight:
                done, _ = await asyncio.wait(in_flight, timeout=STOP_GRACE_SECONDS)
                results = [t.result() for t in done if not t.cancelled() and not t.exception()]
                try:
                    await self._commit(results, [], [], self.clock.now())
                except Exception as error:
                    log.error("could not record %d send outcomes: %s", len(results), error)
            raise

    async def _pipeline(
        self, rows: list[Ready], in_flight: dict[asyncio.Task[SendResult], Ready]
    ) -> None:
        pending = list(rows)
        finished: list[SendResult] = []
        while pending or in_flight or finished:
            now = self.clock.now()
            wave: list[Ready] = []
            wait = math.inf
            held: list[Ready] = []  # rows whose channel asked us to pause
            if self._stopping:
                held, pending = pending, []
            else:
                held = [r for r in pending if self._is_paused(r.channel, now)]
                open_rows = [r for r in pending if not self._is_paused(r.channel, now)]
                room = self.settings.dispatcher_concurrency - len(in_flight)
                if open_rows and room > 0:
                    granted, wait = self.limiter.grant(
                        [r.chat_id for r in open_rows], self._seconds(now), room
                    )
                    wave = [open_rows[i] for i in granted]
                taken = {id(r) for r in wave} | {id(r) for r in held}
                pending = [r for r in pending if id(r) not in taken]
            started = await self._commit(finished, wave, held, now)
            finished = []
            for ready in wave:
                if ready.row.id in started:
                    in_flight[asyncio.create_task(self._send(ready, now))] = ready
            if wave and wait == 0 and pending:
                continue  # more may go right now
            # Wake for the next token, or for a finished send when sends are what we wait for.
            full = len(in_flight) >= self.settings.dispatcher_concurrency
            waiters: set[asyncio.Task[Any]] = set(in_flight) if full or not pending else set()
            sleeper = None
            if pending and wait < math.inf:
                # The wait counts from the grant, not from after the commit: sends stay evenly
                # spaced however long the commit took.
                left = wait - (self.clock.now() - now).total_seconds()
                sleeper = asyncio.create_task(self.clock.sleep(max(0.0, left)))
                waiters.add(sleeper)
            if not waiters:
                break
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if sleeper is not None and not sleeper.done():
                sleeper.cancel()
            for task in [t for t in in_flight if t.done()]:
                in_flight.pop(task)
                finished.append(task.result())

    async def _commit(
        self, finished: list[SendResult], wave: list[Ready], held: list[Ready], now: datetime
    ) -> set[int]:
        """One transaction: outcomes of finished sends, paused or released rows, and the next
        wave marked `sending` (returns the ids that may go)."""
        if not (finished or wave or held):
            return set()
        async with self.database.transaction() as session:
            await claims.set_status(session, [r.update for r in finished], now)
            for result in finished:
                self._count(result.update)
                if result.blocked:
                    await mark_unreachable(session, result.ready.channel, result.ready.chat_id, now)
                if result.pause_until is not None:
                    reason = result.update.reason or "rate limited"
                    await outbox.pause(session, result.ready.channel, result.pause_until, reason)
            if self._stopping:
                await claims.release(session, [r.row.id for r in held], self.owner)
            else:
                await claims.set_status(
                    session,
                    [
                        RowUpdate(r.row.id, Status.QUEUED, PAUSED, None, self._paused[r.channel])
                        for r in held
                    ],
                    now,
                )
            routes = {r.row.id: (r.channel, r.chat_id) for r in wave}
            return await claims.mark_sending(
                session, routes, self.owner, now, self.settings.dispatcher_lease
            )

    async def _send(self, ready: Ready, granted_at: datetime) -> SendResult:
        if self.limiter.limits.per_second is not None:
            hold = (granted_at + SEND_LAG - self.clock.now()).total_seconds()
            if hold > 0:
                await self.clock.sleep(hold)
        result = await send_once(self.channels[ready.channel], ready, self.clock)
        if result.pause_until is not None:
            self.stats.rate_limited += 1
            self._pause(ready.channel, result.pause_until)  # holds the rows not yet sent
        return result

    def _count(self, update: RowUpdate) -> None:
        stats = self.stats
        if update.status is Status.SENT:
            stats.sent += 1
        elif update.status is Status.QUEUED:
            stats.retried += 1
        elif update.status is Status.FAILED:
            stats.failed += 1
            stats.blocked += (update.reason or "").startswith("blocked")
        elif update.status is Status.UNKNOWN:
            stats.unknown += 1

    def _pause(self, channel: str, until: datetime) -> None:
        if until > self._paused.get(channel, until - timedelta(1)):
            self._paused[channel] = until

    def _is_paused(self, channel: str, now: datetime) -> bool:
        return channel in self._paused and self._paused[channel] > now

    def _seconds(self, now: datetime) -> float:
        return (now - self._epoch).total_seconds()

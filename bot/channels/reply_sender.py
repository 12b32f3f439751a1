"""The poller's replies out to Telegram: each chat in order, under the flood limits, marked sent.

The poller hands over the replies of updates the engine has committed (and logged); `queue`
never waits. One pacing loop grants sends under `scheduler.ratelimit` (30/s overall less
`STAFF_RESERVE` for the staff notifier; 1/s per private chat, as the limiter has no burst
allowance): a chat's replies go one at a time in order, chats side by side. A 429 pauses all
sends for its retry_after on the injected clock; a 403 marks the chat unreachable and drops
its queue; a 400 is logged and dropped; network errors are retried with exponential backoff.
Sent rows are marked (`reply_log`) one UPDATE per `MARK_ROWS` rows or `MARK_SECONDS`. `start`
first queues the replies of the last `RECOVER_WINDOW` never marked, committed by a process that
stopped before sending them: delivery is at least once, as a crash (or a `stop` whose grace ran
out) between a send and its mark sends that message again after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bot.channels import (
    BadRequestError,
    Channel,
    ChannelError,
    RecipientBlockedError,
    RetryAfterError,
)
from bot.channels.reply_log import OutgoingReply, mark_delivered, unsent
from bot.channels.telegram import CHANNEL
from bot.clock import Clock
from bot.config import Settings
from bot.customers import mark_unreachable
from bot.storage.database import Database
from scheduler.ratelimit import Limits, RateLimiter

log = logging.getLogger(__name__)

STAFF_RESERVE = 1.0  # messages/s of the overall limit left to the staff notifier
IN_FLIGHT = 50  # sends at once at most
ATTEMPTS = 5  # network failures of one reply before it is given up (1, 2, 4, 8 s apart)
MAX_BACKOFF = 30.0  # seconds
MARK_ROWS = 200  # delivered rows per UPDATE
MARK_SECONDS = 0.25  # longest a sent reply waits for its mark while sends go on
MARK_RETRY = 5.0  # seconds after a failed mark (the database is away)
RECOVER_WINDOW = timedelta(hours=1)
STOP_GRACE = 10.0  # seconds (real time) `stop` lets queued replies go


@dataclass(slots=True)
class SenderStats:
    sent: int = 0
    marked: int = 0  # rows recorded as delivered
    recovered: int = 0  # replies re-queued at start
    rate_limited: int = 0  # 429 answers
    retried: int = 0  # network failures waited out
    blocked: int = 0  # chats found to have blocked the bot
    undelivered: int = 0  # replies given up on (refused, blocked, failing)


def reply_limits(settings: Settings) -> Limits:
    """The configured limits, with `STAFF_RESERVE` of the overall rate kept back."""
    return Limits(
        per_second=max(1.0, settings.rate_limit_per_second - STAFF_RESERVE),
        chat_per_second=settings.rate_limit_chat_per_second,
        group_per_minute=settings.rate_limit_group_per_minute,
    )


class ReplySender:
    """Sends queued replies in the background; `start` it, `queue` replies, `stop` it."""

    def __init__(self, database: Database, channel: Channel, clock: Clock, limits: Limits) -> None:
        self.database = database
        self.channel = channel
        self.limiter = RateLimiter(limits)
        self.stats = SenderStats()
        self._clock = clock
        self._epoch = clock.now()
        self._chats: dict[str, deque[OutgoingReply]] = {}  # oldest waiting chat first
        self._busy: set[str] = set()  # chats with a send in flight
        self._retry_at: dict[str, float] = {}  # chats backing off after a network error
        self._failures: dict[str, int] = {}
        self._paused_until = -math.inf  # after a 429
        self._unmarked: list[int] = []  # rows sent, not yet marked
        self._unmarked_since = 0.0
        self._mark_retry_at = -math.inf  # after a failed mark
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._accepting = True

    @property
    def started(self) -> bool:
        return self._task is not None

    async def start(self) -> int:
        """Queue the replies an earlier process left unsent and start sending; returns how
        many were queued. Raises SQLAlchemyError or OSError if the log cannot be read; call
        again then (nothing is started before that succeeds)."""
        if self._task is not None:
            return 0
        left = await unsent(self.database, self._clock.now() - RECOVER_WINDOW)
        if self._task is not None:  # started meanwhile
            return 0
        if left:
            log.warning("%d Telegram replies were committed but not sent; sending them", len(left))
        self.stats.recovered += len(left)
        self.queue(left)
        self._task = asyncio.create_task(self._run())
        return len(left)

    def queue(self, replies: Iterable[OutgoingReply]) -> None:
        """Send `replies` after what their chats have queued already; returns at once."""
        if not self._accepting:
            return  # stopping: logged replies are sent by the next start
        for item in replies:
            self._chats.setdefault(item.chat_id, deque()).append(item)
            self._idle.clear()
        self._wake.set()

    async def idle(self) -> None:
        """Wait until everything queued is sent (or given up) and marked."""
        await self._idle.wait()

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Accept no more; let the queue drain for up to `grace` seconds, then record what was
        sent and leave the rest (logged, unmarked) to the next start."""
        self._accepting = False
        if self._task is None:
            return
        try:
            async with asyncio.timeout(grace):
                await self._idle.wait()
        except TimeoutError:
            waiting = sum(len(q) for q in self._chats.values())
            log.warning("%d replies unsent at shutdown; the next start sends them", waiting)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self._unmarked:
            await self._mark(list(self._unmarked))

    # --- the pacing loop

    def _seconds(self) -> float:
        return (self._clock.now() - self._epoch).total_seconds()

    async def _run(self) -> None:
        while True:
            try:
                await self._pace()
            except Exception:  # a bug here must not leave every chat unanswered
                log.exception("the reply sender failed; it starts again in a second")
                await self._clock.sleep(1.0)

    async def _pace(self) -> None:
        in_flight: dict[asyncio.Task[ChannelError | None], OutgoingReply] = {}
        marking: asyncio.Task[None] | None = None
        helpers: set[asyncio.Task[Any]] = set()  # the wake-up and the timer of one wait
        try:
            while True:
                self._wake.clear()
                now = self._seconds()
                wait = self._grant(now, in_flight)
                if marking is None and self._unmarked:
                    due = self._mark_due(now, not self._chats and not in_flight)
                    if due <= 0:
                        marking = asyncio.create_task(self._mark(self._unmarked[:MARK_ROWS]))
                    elif not in_flight:  # else the next send to finish wakes us anyway
                        wait = min(wait, due)
                if not (self._chats or in_flight or marking or self._unmarked):
                    self._idle.set()
                helpers = {asyncio.create_task(self._wake.wait())}
                if wait < math.inf:  # whole microseconds, up: a datetime clock moves no less
                    helpers.add(asyncio.create_task(self._clock.sleep(math.ceil(wait * 1e6) / 1e6)))
                waiters = helpers | set(in_flight) | ({marking} if marking else set())
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for helper in helpers:
                    helper.cancel()
                if marking is not None and marking.done():
                    marking = None
                for task in [t for t in in_flight if t.done()]:
                    self._settle(in_flight.pop(task), task.result())
        finally:
            for task in (*helpers, *in_flight, *([marking] if marking else [])):
                task.cancel()
            # A send that finished before the cancel counts; a cancelled one goes again (it
            # may have reached Telegram: at least once).
            for task, item in in_flight.items():
                with contextlib.suppress(asyncio.CancelledError):
                    if (await asyncio.gather(task, return_exceptions=True))[0] is None:
                        self._settle(item, None)
                self._busy.discard(item.chat_id)

    def _grant(self, now: float, in_flight: dict[Any, OutgoingReply]) -> float:
        """Start the sends the limits allow now; returns the seconds until more may go."""
        if now < self._paused_until:
            return self._paused_until - now
        waiting = [c for c in self._chats if c not in self._busy]
        ready = [c for c in waiting if self._retry_at.get(c, now) <= now]
        later = [self._retry_at[c] - now for c in waiting if self._retry_at.get(c, now) > now]
        soonest = min(later, default=math.inf)  # the next chat back from a network error
        room = IN_FLIGHT - len(in_flight)
        if not ready or room <= 0:
            return soonest
        granted, wait = self.limiter.grant(ready, now, room)
        for index in granted:
            item = self._chats[ready[index]][0]
            self._busy.add(item.chat_id)
            in_flight[asyncio.create_task(self._send(item))] = item
        return min(soonest, math.inf if len(granted) == room else wait)

    async def _send(self, item: OutgoingReply) -> ChannelError | None:
        try:
            await self.channel.send(item.chat_id, item.reply)
        except RecipientBlockedError as error:
            try:
                async with self.database.transaction() as session:
                    await mark_unreachable(session, CHANNEL, item.chat_id, self._clock.now())
            except (SQLAlchemyError, OSError) as db_error:
                log.warning("could not mark chat %s unreachable: %s", item.chat_id, db_error)
            return error
        except ChannelError as error:
            return error
        except Exception as error:  # a bug in the adapter: retried like a network error
            log.exception("sending a reply to chat %s failed", item.chat_id)
            return ChannelError(f"unexpected {type(error).__name__}: {error}")
        return None

    def _settle(self, item: OutgoingReply, error: ChannelError | None) -> None:
        """Record a send's outcome; the chat's next reply may go unless this one is retried."""
        chat = item.chat_id
        self._busy.discard(chat)
        queue = self._chats[chat]
        if isinstance(error, RetryAfterError):
            self.stats.rate_limited += 1
            self._paused_until = max(self._paused_until, self._seconds() + error.seconds)
            log.warning("Telegram asks to wait %.0f s (reply to chat %s)", error.seconds, chat)
            return
        if error is None:
            self.stats.sent += 1
            if item.log_id is not None:
                if not self._unmarked:
                    self._unmarked_since = self._seconds()
                self._unmarked.append(item.log_id)
        elif isinstance(error, RecipientBlockedError):
            self.stats.blocked += 1
            self.stats.undelivered += len(queue)
            log.info("chat %s blocked the bot; %d replies dropped", chat, len(queue))
            queue.clear()
        elif isinstance(error, BadRequestError):
            self.stats.undelivered += 1
            log.error(
                "Telegram refused a reply to chat %s: %s (%.60r)", chat, error, item.reply.text
            )
        else:
            failures = self._failures.get(chat, 0) + 1
            if failures < ATTEMPTS:
                self._failures[chat] = failures
                self._retry_at[chat] = self._seconds() + min(MAX_BACKOFF, 2.0 ** (failures - 1))
                self.stats.retried += 1
                log.warning(
                    "reply to chat %s: %s; retry %d of %d", chat, error, failures, ATTEMPTS - 1
                )
                return
            self.stats.undelivered += 1
            log.error("gave up on a reply to chat %s after %d tries: %s", chat, failures, error)
        self._failures.pop(chat, None)
        self._retry_at.pop(chat, None)
        if queue:
            queue.popleft()
        if queue:
            self._chats[chat] = self._chats.pop(chat)  # its next reply waits behind other chats
        else:
            del self._chats[chat]

    def _mark_due(self, now: float, idle: bool) -> float:
        """Seconds until the sent rows should be marked (0 or less: now)."""
        if now < self._mark_retry_at:
            return self._mark_retry_at - now
        if idle or len(self._unmarked) >= MARK_ROWS:
            return 0.0
        return self._unmarked_since + MARK_SECONDS - now

    async def _mark(self, ids: list[int]) -> None:
        """Mark `ids`, the head of `_unmarked`, delivered; on failure try again later."""
        try:
            await mark_delivered(self.database, ids, self._clock.now())
        except (SQLAlchemyError, OSError) as error:
            self._mark_retry_at = self._seconds() + MARK_RETRY
            log.warning("could not mark %d replies delivered (%s); retrying", len(ids), error)
            return
        del self._unmarked[: len(ids)]
        self._unmarked_since = self._seconds()
        self.stats.marked += len(ids)

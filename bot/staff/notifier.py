"""The staff notifier: queued `StaffNotice` rows out to the staff group, at the group's limit.

Each pass (`drain`, a scheduler job every second) takes the queued notices oldest first. A new
ticket's notice is posted as its card with the buttons Take / Resolve, written as it is posted
(so the customer's transaction does not pay for history look-ups that a digest never shows); a
thread notice (the customer wrote, reopened, an escalation, a staff action) as a reply to the
ticket's card, so each ticket is one thread. When more notices wait than the group's budget
(`pacing`) has posts left, they go out as digests, one compact line per ticket, so a burst of a
thousand complaints reaches the group in seconds rather than in fifty minutes. A full digest
goes at once; the last, unfilled one waits for more lines while notices keep coming, at most
the budget's `spacing`. A ticket whose card went out in a digest has no thread yet: its later
notices are posted on their own (replying to them still answers the customer) until someone
asks for its card with `/ticket N`.

Every post is recorded as a `StaffPost` and its notices marked posted (message id, time) in
the transaction that ends the pass (one commit for the pass's few posts: under a burst each
commit queues behind the customers' transactions). A crash between a post and that commit
leaves its notices queued, and they are posted again after the restart: at least once, never
lost, hence no `posting` status. 400 marks the notices failed with Telegram's error; 429 pauses
posting until retry_after has passed on the injected clock; a network error, or the bot missing
from the group (403), pauses and retries. Without `staff_chat_id` group notices stay queued
(one warning) and go out once it is configured. Private notices (`chat_id` set, e.g.
escalations to supervisors) are posted one by one at the private-chat rate.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels import BadRequestError, ChannelError, RecipientBlockedError, RetryAfterError
from bot.channels.telegram import MAX_MESSAGE_LENGTH
from bot.clock import Clock
from bot.config import Settings
from bot.staff import cards, pacing
from bot.staff.digests import CARD_KINDS, digest_lines
from bot.staff.telegram import Button, StaffChat
from bot.storage.database import Database
from bot.storage.models import StaffNotice, StaffPost, Ticket
from dialogs.texts import t
from scheduler.ratelimit import Limits, RateLimiter

log = logging.getLogger(__name__)

REQUESTED_CARD = "card"  # asked for with /ticket N: always posted on its own
RESERVE = 5  # posts kept back when posting notices one by one, for a burst right after
BATCH = 5_000  # notices read per pass
MAX_BACKOFF = 60.0  # seconds

_Notice = Row[tuple[int, int | None, str, str | None, str, datetime]]


@dataclass(frozen=True, slots=True)
class _Post:
    chat_id: str
    text: str
    notice_ids: tuple[int, ...]
    ticket_id: int | None  # None: a digest (or a notice about no ticket)
    thread_of: int | None = None  # reply to this ticket's card
    buttons: tuple[Button, ...] = ()
    digest: bool = False


@dataclass(frozen=True, slots=True)
class _Done:
    """A post made (message id) or refused for good (error)."""

    post: _Post
    message_id: str | None
    error: str | None
    at: datetime


@dataclass(slots=True)
class NotifierStats:
    posts: int = 0
    digests: int = 0
    notices: int = 0  # notices posted (alone or in digests)
    failed: int = 0
    rate_limited: int = 0
    retried: int = 0  # posts that hit a network error or a 403 and wait to be tried again


class StaffNotifier:
    """Posts queued staff notices through `chat`; call `drain` every second or so."""

    def __init__(self, database: Database, clock: Clock, chat: StaffChat, settings: Settings):
        self.database = database
        self.clock = clock
        self.chat = chat
        self.settings = settings
        self.group = settings.staff_chat_id
        self.language = settings.default_language
        self.zone = settings.business_hours.zone
        self.budget = pacing.PostBudget(
            max(1, int(settings.rate_limit_group_per_minute)), 60.0 + pacing.MARGIN
        )
        # Private chats (one message a second each); the group has `budget`.
        self.limiter = RateLimiter(Limits(None, settings.rate_limit_chat_per_second, None))
        self.stats = NotifierStats()
        self._epoch = clock.now()
        self._paused_until = self._epoch
        self._failures = 0
        self._warned = False

    async def drain(self) -> int:
        """One pass: post what may go now; returns the number of posts made."""
        now = self.clock.now()
        if now < self._paused_until:
            return 0
        async with self.database.sessions() as session:
            notices = list(
                await session.execute(
                    select(StaffNotice.id, StaffNotice.ticket_id, StaffNotice.kind,
                           StaffNotice.chat_id, StaffNotice.text, StaffNotice.created_at)
                    .where(StaffNotice.status == "queued")
                    .order_by(StaffNotice.id)
                    .limit(BATCH)
                )
            )  # fmt: skip
            group = [n for n in notices if n.chat_id is None]
            if group and self.group is None:
                if not self._warned:
                    log.warning(
                        "%d staff notices wait for the staff group: set CONCIERGE_STAFF_CHAT_ID",
                        len(group),
                    )
                    self._warned = True
                group = []
            plan = self._private_posts([n for n in notices if n.chat_id is not None], now)
            plan += await self._group_posts(session, group, now)
        done: list[_Done] = []
        cards: dict[int, str] = {}
        try:
            for post in plan:
                if post.chat_id == self.group and not self._take_group_token():
                    break
                outcome = await self._post(post, cards)
                if outcome is None:
                    break
                done.append(outcome)
        finally:
            # One transaction for the pass: under a burst every commit waits its turn.
            if done:
                await self._record(done)
        return sum(1 for outcome in done if outcome.message_id is not None)

    def _seconds(self, moment: datetime | None = None) -> float:
        return ((moment or self.clock.now()) - self._epoch).total_seconds()

    def _take_group_token(self) -> bool:
        now = self._seconds()
        if self.budget.available(now) == 0:
            return False
        self.budget.spend(now)
        return True

    def _private_posts(self, notices: Sequence[_Notice], now: datetime) -> list[_Post]:
        chats = [str(n.chat_id) for n in notices]
        granted, _ = self.limiter.grant(chats, self._seconds(now), len(chats))
        return [
            _Post(chats[i], notices[i].text, (notices[i].id,), notices[i].ticket_id)
            for i in granted
        ]

    async def _group_posts(
        self, session: AsyncSession, notices: list[_Notice], now: datetime
    ) -> list[_Post]:
        available = self.budget.available(self._seconds(now))
        if not notices or available == 0 or self.group is None:
            return []
        requested = [n for n in notices if n.kind == REQUESTED_CARD]
        rest = [n for n in notices if n.kind != REQUESTED_CARD]
        if len(rest) <= max(1, available - len(requested) - RESERVE):
            return await self._alone(session, requested + rest)
        plan = await self._alone(session, requested)
        lines = await digest_lines(session, rest, self.language)
        digests = pacing.pack(
            lines,
            lambda count: t(self.language, "staff.digest_title", count=count),
            lambda number: t(self.language, "staff.digest_hint", number=number),
            MAX_MESSAGE_LENGTH,
        )
        last = set(digests[-1].notice_ids)
        times = [n.created_at for n in rest if n.id in last]
        waited, quiet = ((now - moment).total_seconds() for moment in (min(times), max(times)))
        spacing = self.budget.spacing(self._seconds(now))
        if not digests[-1].full and waited < spacing and quiet < pacing.QUIET:
            digests.pop()  # notices keep coming: wait for more lines to fill it
        return plan + [
            _Post(self.group, d.text, d.notice_ids, None, digest=True)
            for d in digests[: available - len(plan)]
        ]

    async def _alone(self, session: AsyncSession, notices: Sequence[_Notice]) -> list[_Post]:
        """A post for each notice; a ticket's card is written now, showing the ticket as it is."""
        assert self.group is not None
        posts = []
        for notice in notices:
            number = notice.ticket_id
            if notice.kind not in CARD_KINDS or number is None:
                posts.append(_Post(self.group, notice.text, (notice.id,), number, thread_of=number))
                continue
            ticket = await session.get(Ticket, number)
            if ticket is None:  # erased since the pass began: its notices went with it
                continue
            card = await cards.ticket_card(session, ticket, self.language, self.zone)
            buttons = (
                Button(t(self.language, "staff.button_take"), f"take:{number}"),
                Button(t(self.language, "staff.button_resolve"), f"resolve:{number}"),
            )
            posts.append(_Post(self.group, card, (notice.id,), number, buttons=buttons))
        return posts

    async def _post(self, post: _Post, cards: dict[int, str]) -> _Done | None:
        """Post; the outcome to record, or None when posting must pause."""
        reply_to = None
        if post.thread_of is not None:
            reply_to = cards.get(post.thread_of) or await self._card_of(post.thread_of)
        try:
            message_id = await self.chat.post(
                post.chat_id, post.text, reply_to=reply_to, buttons=post.buttons
            )
        except RetryAfterError as error:
            self.stats.rate_limited += 1
            self._pause(error.seconds, f"429: {error}")
            if post.chat_id == self.group:
                self.budget.exhaust(self._seconds(), error.seconds)
            return None
        except BadRequestError as error:
            self.stats.failed += len(post.notice_ids)
            log.error("Telegram refused a staff post to %s: %s", post.chat_id, error)
            return _Done(post, None, str(error), self.clock.now())
        except RecipientBlockedError as error:
            if post.chat_id != self.group:  # a staff member who never started the bot
                self.stats.failed += len(post.notice_ids)
                return _Done(post, None, f"blocked: {error}", self.clock.now())
            self.stats.retried += 1
            self._pause(self._backoff(), f"the bot cannot post in the staff group: {error}")
            return None
        except ChannelError as error:
            self.stats.retried += 1
            self._pause(self._backoff(), f"network: {error}")
            return None
        self._failures = 0
        if post.buttons and post.ticket_id is not None:
            cards[post.ticket_id] = message_id
        return _Done(post, message_id, None, self.clock.now())

    async def _record(self, done: Sequence[_Done]) -> None:
        """The posts and their notices' outcomes, in one transaction."""
        async with self.database.transaction() as session:
            for outcome in done:
                post, message_id = outcome.post, outcome.message_id
                if message_id is not None:
                    row = StaffPost(chat_id=post.chat_id, message_id=message_id,
                                    ticket_id=post.ticket_id, created_at=outcome.at)  # fmt: skip
                    session.add(row)
                await session.execute(
                    update(StaffNotice)
                    .where(StaffNotice.id.in_(post.notice_ids), StaffNotice.status == "queued")
                    .values(
                        status="posted" if message_id is not None else "failed",
                        message_id=message_id,
                        posted_at=outcome.at if message_id is not None else None,
                        error=outcome.error,
                    )
                )
        for outcome in done:
            if outcome.message_id is not None:
                self.stats.posts += 1
                self.stats.digests += outcome.post.digest
                self.stats.notices += len(outcome.post.notice_ids)

    async def _card_of(self, ticket_id: int) -> str | None:
        """The message id of the ticket's newest card in the staff group, if it has one."""
        async with self.database.sessions() as session:
            card: str | None = await session.scalar(
                select(StaffNotice.message_id)
                .join(
                    StaffPost,
                    (StaffPost.chat_id == self.group)
                    & (StaffPost.message_id == StaffNotice.message_id),
                )
                .where(
                    StaffNotice.ticket_id == ticket_id,
                    StaffNotice.kind.in_(CARD_KINDS),
                    StaffNotice.status == "posted",
                    StaffPost.ticket_id == ticket_id,
                )
                .order_by(StaffNotice.posted_at.desc(), StaffNotice.id.desc())
                .limit(1)
            )
        return card

    def _backoff(self) -> float:
        self._failures += 1
        return min(MAX_BACKOFF, 2.0 ** (self._failures - 1))

    def _pause(self, seconds: float, why: str) -> None:
        self._paused_until = self.clock.now() + timedelta(seconds=max(seconds, 1.0))
        log.warning("staff notices paused for %.0f s: %s", seconds, why)

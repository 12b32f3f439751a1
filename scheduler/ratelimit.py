"""Delivery rate as pure token buckets: over all chats, per private chat, per group chat.

Telegram documents about 30 messages a second overall, one a second to a private chat and 20 a
minute to a group; going faster earns 429 "retry after" and a pause. Each bucket is a single
token on an even schedule (the generic cell rate algorithm), so no window of one period ever
holds more than the limit; a deeper bucket would allow a burst on top of the rate. A send that
comes up to `SLACK` late (a timer firing late) keeps its place on the schedule instead of
pushing every later send back, which is what lets the dispatcher use the whole rate; the
spacing is widened by `SLACK` over each period to pay for it, and by `TRANSIT` more because the
platform counts arrivals, which a commit or the network can bunch up a little. Time is a number
of seconds handed in, never read here: the limiter is pure and is tested without sleeping.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SLACK = 0.005  # seconds of lateness a send may make up for
TRANSIT = 0.025  # seconds per period by which arrivals may bunch up on the way (3 % at 30/s)
# Spacing is padded by a microsecond so that float rounding can never squeeze one send too many
# into a window; at 1000 messages/s that costs 0.1 %.
_PAD = 1e-6
_PRUNE_AT = 10_000  # chat buckets kept before idle ones are dropped


@dataclass(frozen=True, slots=True)
class Limits:
    """Messages per second overall and per private chat, per minute per group; None = no limit."""

    per_second: float | None = 30.0
    chat_per_second: float | None = 1.0
    group_per_minute: float | None = 20.0

    @classmethod
    def unlimited(cls) -> Limits:
        return cls(None, None, None)


@dataclass(slots=True)
class TokenBucket:
    """One token, due again `interval` seconds after it was due (or taken, if taken late).

    Any `count` consecutive sends span at least `count * interval - SLACK` seconds, which is
    the whole period and `TRANSIT` more when `interval = (period + SLACK + TRANSIT) / count`.
    """

    interval: float
    ready_at: float = -math.inf

    @classmethod
    def per(cls, count: float | None, period: float) -> TokenBucket | None:
        return None if count is None else cls((period + SLACK + TRANSIT) / count + _PAD)

    def wait(self, now: float) -> float:
        """Seconds until the token is there (0 when it is)."""
        return max(0.0, self.ready_at - now)

    def take(self, now: float) -> None:
        self.ready_at = max(now - SLACK, self.ready_at) + self.interval


def is_group(chat_id: str) -> bool:
    """Telegram numbers groups, supergroups and channels below zero, private chats above."""
    return chat_id.startswith("-")


class RateLimiter:
    """Grants sends under every applicable limit, earliest-queued first."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._overall = TokenBucket.per(limits.per_second, 1.0)
        self._chats: dict[str, TokenBucket] = {}

    def _chat(self, chat_id: str) -> TokenBucket | None:
        bucket = self._chats.get(chat_id)
        if bucket is None:
            if is_group(chat_id):
                bucket = TokenBucket.per(self.limits.group_per_minute, 60.0)
            else:
                bucket = TokenBucket.per(self.limits.chat_per_second, 1.0)
            if bucket is None:
                return None
            self._chats[chat_id] = bucket
        return bucket

    def wait(self, chat_id: str, now: float) -> float:
        """Seconds until a message to `chat_id` may go (0 = now)."""
        buckets = (self._overall, self._chat(chat_id))
        return max((b.wait(now) for b in buckets if b is not None), default=0.0)

    def take(self, chat_id: str, now: float) -> None:
        """Record a send to `chat_id` at `now` (the caller checked that `wait` is 0)."""
        for bucket in (self._overall, self._chat(chat_id)):
            if bucket is not None:
                bucket.take(now)
        if len(self._chats) > _PRUNE_AT:
            self._prune(now)

    def grant(self, chat_ids: Sequence[str], now: float, most: int) -> tuple[list[int], float]:
        """Which of the queued messages (by chat) may go now, and the wait for the next one.

        The queue is scanned in order, so an earlier message is never passed over by a later one
        that wants the same tokens: a message waits only for its own chat's spacing and for the
        overall rate, which bounds its wait (no starvation). Returns the indexes granted (at
        most `most`) and the seconds until another could go (0 if the `most` ran out first,
        inf if nothing is left).
        """
        granted: list[int] = []
        soonest = math.inf
        for index, chat_id in enumerate(chat_ids):
            if len(granted) >= most:
                return granted, 0.0
            if self._overall is not None and self._overall.wait(now) > 0:
                return granted, min(soonest, self._overall.wait(now))
            wait = self.wait(chat_id, now)
            if wait == 0:
                self.take(chat_id, now)
                granted.append(index)
            else:
                soonest = min(soonest, wait)
        return granted, soonest

    def _prune(self, now: float) -> None:
        self._chats = {c: b for c, b in self._chats.items() if b.ready_at > now}

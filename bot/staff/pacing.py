"""How the staff group is paced: its post budget, and digests for bursts.

Telegram lets a bot post about 20 messages a minute in a group and answers more with 429. The
budget here is that rule as Telegram applies it, a sliding window: `limit` tokens, each coming
back `period` seconds after it was spent (a deeper token bucket refilling at 20/min would allow
40 posts in one minute). When more notices wait than tokens are left, they are packed into
digests: one compact line per ticket, as many lines as fit in one message. Pure: times are
seconds handed in, texts are handed in already worded.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

MARGIN = 1.0  # seconds added to the period: our clock and Telegram's see a post at other times
HOLD = 0.5  # seconds an unfilled digest waits for more lines, at least
QUIET = 1.0  # seconds without a new notice after which an unfilled digest waits no longer
ELLIPSIS = "…"


class PostBudget:
    """`limit` posts in any `period` seconds: a token returns `period` after it was spent."""

    def __init__(self, limit: int, period: float) -> None:
        if limit < 1:
            raise ValueError("a budget needs at least one post per period")
        self.limit = limit
        self.period = period
        self._spent: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0] + self.period <= now:
            self._spent.popleft()

    def available(self, now: float) -> int:
        self._expire(now)
        return self.limit - len(self._spent)

    def spend(self, now: float) -> None:
        self._expire(now)
        self._spent.append(now)

    def wait(self, now: float) -> float:
        """Seconds until a token is there (0 when one is)."""
        if self.available(now) > 0:
            return 0.0
        return self._spent[0] + self.period - now

    def spacing(self, now: float) -> float:
        """How long an unfilled digest may wait for more lines while notices keep coming.

        Waiting fills digests, so a long burst costs fewer posts. The tokens left are spread
        evenly until the first spent one returns: a burst that has used most of the minute's
        budget keeps posting, less often, instead of spending the rest on small digests and
        then falling silent for a minute. `HOLD` while nothing is spent.
        """
        left = self.available(now)
        if not self._spent:
            return HOLD
        if left == 0:
            return math.inf
        return max(HOLD, (self._spent[0] + self.period - now) / left)

    def exhaust(self, now: float, seconds: float) -> None:
        """Telegram said "retry after `seconds`": act as if every token came back only then."""
        self._spent = deque([now + seconds - self.period] * self.limit)


def utf16_length(text: str) -> int:
    """Telegram's safe measure of a message: UTF-16 code units (an emoji counts two)."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def shorten(text: str, limit: int) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis if longer."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + ELLIPSIS


@dataclass(frozen=True, slots=True)
class DigestLine:
    """One ticket's line in a digest and the notices it stands for."""

    text: str
    notice_ids: tuple[int, ...]
    ticket_id: int | None


@dataclass(frozen=True, slots=True)
class Digest:
    text: str
    lines: tuple[DigestLine, ...]
    full: bool  # no further line would have fitted

    @property
    def notice_ids(self) -> tuple[int, ...]:
        return tuple(notice for line in self.lines for notice in line.notice_ids)


def pack(
    lines: Sequence[DigestLine],
    title: Callable[[int], str],
    hint: Callable[[int], str],
    limit: int,
) -> list[Digest]:
    """`lines` in order, packed into digests of at most `limit` UTF-16 units each.

    A digest is `title(count)`, its lines, and `hint(first ticket number)`. A line too long
    for any digest is shortened to fit. The last digest is `full` only if it is at its limit.
    """
    if not lines:
        return []
    numbers = [line.ticket_id for line in lines if line.ticket_id is not None]
    frame = utf16_length(title(len(lines))) + utf16_length(hint(max(numbers, default=0))) + 2
    room = limit - frame
    if room < 20:
        raise ValueError("the digest's title and hint leave no room for lines")
    digests: list[Digest] = []
    current: list[DigestLine] = []
    used = 0
    longest = 0
    for line in lines:
        if utf16_length(line.text) > room - 1:
            line = DigestLine(shorten(line.text, room // 2), line.notice_ids, line.ticket_id)
        size = utf16_length(line.text) + 1  # and its newline
        longest = max(longest, size)
        if current and used + size > room:
            digests.append(_digest(current, title, hint, full=True))
            current, used = [], 0
        current.append(line)
        used += size
    digests.append(_digest(current, title, hint, full=used + longest > room))
    return digests


def _digest(
    lines: list[DigestLine], title: Callable[[int], str], hint: Callable[[int], str], full: bool
) -> Digest:
    example = next((line.ticket_id for line in lines if line.ticket_id is not None), 0)
    text = "\n".join([title(len(lines)), *(line.text for line in lines), hint(example)])
    return Digest(text, tuple(lines), full)

"""The monthly satisfaction report: what customers said in one month, and the year before it.

`monthly` reads the rows (ratings with their service, rating questions that went out, tickets
opened from ratings) for the twelve months ending with the given one; every figure is then
computed by the pure functions below from plain rows, so each can be checked by hand.
Definitions, all in the business time zone:

- a rating counts in the month the customer gave it (`Rating.created_at`); *service ratings*
  (about a service record) make the headline, ratings of how a ticket was handled are apart;
- **CSAT** = share of service ratings that are 4 or 5, in %; **average** = mean service score;
- **satisfaction index** = (average - 1) / 4 x 100: the mean score on a 0-100 scale (all 5s give
  100, all 4s give 75, all 1s give 0), so every score counts, not only the satisfied ones; it is
  compared with the target (default 93): *met* when index >= target, *gap* = index - target;
- **response rate** = of the service rating questions that went out in the month (outbox row
  sent or unknown, `sent_at` in the month), the share whose service has a rating (given then or
  later), in %; second follow-ups and ticket questions are not rating questions of a service;
- **RATER** averages per dimension over the month's service ratings that have that dimension;
- **complaints from ratings** = tickets of kind "rating" opened in the month;
- **lowest rated** service kinds and staff (`performed_by`): average per group, lowest first,
  more ratings first on a tie, at most five; services without staff on record are not ranked.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from statistics import fmean
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import OutboxMessage, Rating, RatingRequest, ServiceRecord, Ticket
from dialogs.rating import DIMENSIONS

TREND_MONTHS = 12
LOWEST_SHOWN = 5
INDEX_DEFINITION = "satisfaction index = (average score - 1) / 4 x 100 (1 -> 0, 5 -> 100)"
_WENT_OUT = ("sent", "unknown")  # unknown: it may have arrived, and an answer may come back
_MONTH = re.compile(r"(\d{4})-(\d{1,2})")


def parse_month(text: str) -> date:
    """ "2026-11" as the first day of that month; ValueError naming the accepted form."""
    match = _MONTH.fullmatch(text.strip())
    if match is None or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1:
        raise ValueError(f"{text!r} is not a month; write it as YYYY-MM, e.g. 2026-11")
    return date(int(match[1]), int(match[2]), 1)


def add_months(month: date, count: int) -> date:
    """The first day of the month `count` months after (or before) `month`'s."""
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def month_bounds(month: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The month in `zone` as a UTC interval [start, end)."""

    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(0, 0), tzinfo=zone).astimezone(UTC)

    return midnight(month.replace(day=1)), midnight(add_months(month, 1))


def month_of(moment: datetime, zone: ZoneInfo) -> date:
    local = moment.astimezone(zone)
    return date(local.year, local.month, 1)


@dataclass(frozen=True, slots=True)
class RatingRow:
    """One rating as the report sees it; `kind` and `staff` are its service's."""

    score: int
    at: datetime
    about_ticket: bool = False  # False: a rating of a service
    kind: str | None = None
    staff: str | None = None
    dimensions: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QuestionRow:
    """A service's rating question that went out, and whether the service has been rated."""

    sent_at: datetime
    answered: bool


@dataclass(frozen=True, slots=True)
class Average:
    """The mean of `count` scores of a group (None when there are none)."""

    name: str
    average: float | None
    count: int


@dataclass(frozen=True, slots=True)
class Headline:
    """The figures of one month that the trend repeats for every month."""

    month: date
    ratings: int  # service ratings
    satisfied: int  # of them, 4 or 5
    average: float | None
    questions: int  # rating questions that went out
    answered: int  # of them, rated

    @property
    def csat(self) -> float | None:
        return 100 * self.satisfied / self.ratings if self.ratings else None

    @property
    def index(self) -> float | None:
        return satisfaction_index(self.average)

    @property
    def response_rate(self) -> float | None:
        return 100 * self.answered / self.questions if self.questions else None


@dataclass(frozen=True, slots=True)
class SatisfactionReport:
    month: date
    zone: str
    target: float
    headline: Headline
    rater: tuple[Average, ...]  # every dimension, in DIMENSIONS order
    lowest_kinds: tuple[Average, ...]
    lowest_staff: tuple[Average, ...]
    complaints: tuple[int, ...]  # ticket numbers
    ticket_handling: Average
    trend: tuple[Headline, ...]  # TREND_MONTHS months, oldest first, ending with `month`

    @property
    def empty(self) -> bool:
        """No rating of any kind was given in the month."""
        return self.headline.ratings == 0 and self.ticket_handling.count == 0

    @property
    def gap(self) -> float | None:
        """Index minus target, in points (negative: below the target)."""
        index = self.headline.index
        return None if index is None else index - self.target

    @property
    def target_met(self) -> bool | None:
        gap = self.gap
        return None if gap is None else gap >= 0


def satisfaction_index(average: float | None) -> float | None:
    return None if average is None else (average - 1) / 4 * 100


def average_of(name: str, scores: Sequence[int]) -> Average:
    return Average(name, fmean(scores) if scores else None, len(scores))


def headline(
    month: date, ratings: Iterable[RatingRow], questions: Iterable[QuestionRow]
) -> Headline:
    """The month's headline from its ratings (ticket ratings are left out) and questions."""
    scores = [r.score for r in ratings if not r.about_ticket]
    asked = list(questions)
    return Headline(
        month=month,
        ratings=len(scores),
        satisfied=sum(1 for s in scores if s >= 4),
        average=fmean(scores) if scores else None,
        questions=len(asked),
        answered=sum(1 for q in asked if q.answered),
    )


def rater_averages(ratings: Iterable[RatingRow]) -> tuple[Average, ...]:
    """Each RATER dimension's mean over the ratings that have it (scores outside 1-5 ignored)."""
    scores: dict[str, list[int]] = {name: [] for name in DIMENSIONS}
    for rating in ratings:
        for name, value in rating.dimensions.items():
            if name in scores and type(value) is int and 1 <= value <= 5:
                scores[name].append(value)
    return tuple(average_of(name, values) for name, values in scores.items())


def lowest_rated(
    ratings: Iterable[RatingRow],
    group: Callable[[RatingRow], str | None],
    limit: int = LOWEST_SHOWN,
) -> tuple[Average, ...]:
    """Groups by average score, lowest first (more ratings first on a tie), at most `limit`."""
    scores: dict[str, list[int]] = defaultdict(list)
    for rating in ratings:
        name = group(rating)
        if name:
            scores[name].append(rating.score)
    ranked = sorted(scores.items(), key=lambda item: (fmean(item[1]), -len(item[1]), item[0]))
    return tuple(average_of(name, values) for name, values in ranked[:limit])


def build(
    month: date,
    zone: ZoneInfo,
    target: float,
    ratings: Iterable[RatingRow],
    questions: Iterable[QuestionRow],
    complaints: Iterable[int],
) -> SatisfactionReport:
    """The report for `month` from the rows of its trend window (rows outside it are ignored)."""
    month = month.replace(day=1)
    months = [add_months(month, k - TREND_MONTHS + 1) for k in range(TREND_MONTHS)]
    rated: dict[date, list[RatingRow]] = defaultdict(list)
    for rating in ratings:
        rated[month_of(rating.at, zone)].append(rating)
    asked: dict[date, list[QuestionRow]] = defaultdict(list)
    for question in questions:
        asked[month_of(question.sent_at, zone)].append(question)
    trend = tuple(headline(m, rated.get(m, ()), asked.get(m, ())) for m in months)
    services = [r for r in rated.get(month, ()) if not r.about_ticket]
    return SatisfactionReport(
        month=month,
        zone=zone.key,
        target=target,
        headline=trend[-1],
        rater=rater_averages(services),
        lowest_kinds=lowest_rated(services, lambda r: r.kind),
        lowest_staff=lowest_rated(services, lambda r: r.staff),
        complaints=tuple(sorted(complaints)),
        ticket_handling=average_of(
            "ticket handling", [r.score for r in rated.get(month, ()) if r.about_ticket]
        ),
        trend=trend,
    )


async def monthly(
    session: AsyncSession, month: date, zone: ZoneInfo, target: float = 93.0
) -> SatisfactionReport:
    """The satisfaction report of `month` (any day in it) in `zone`, against `target`."""
    month = month.replace(day=1)
    start, _ = month_bounds(add_months(month, 1 - TREND_MONTHS), zone)
    month_start, end = month_bounds(month, zone)
    rating_rows = await session.execute(
        select(
            Rating.score,
            Rating.created_at,
            Rating.service_record_id,
            Rating.dimensions,
            ServiceRecord.kind,
            ServiceRecord.performed_by,
        )
        .outerjoin(ServiceRecord, ServiceRecord.id == Rating.service_record_id)
        .where(Rating.created_at >= start, Rating.created_at < end)
    )
    ratings = [
        RatingRow(score, at, service_id is None, kind, staff, dimensions or {})
        for score, at, service_id, dimensions, kind, staff in rating_rows
    ]
    # A question is the outbox row its RatingRequest names; the service's rating may be later.
    question_rows = await session.execute(
        select(OutboxMessage.sent_at, Rating.id.is_not(None))
        .join(RatingRequest, RatingRequest.outbox_key == OutboxMessage.dedupe_key)
        .outerjoin(Rating, Rating.service_record_id == RatingRequest.service_record_id)
        .where(
            RatingRequest.service_record_id.is_not(None),
            OutboxMessage.status.in_(_WENT_OUT),
            OutboxMessage.sent_at >= start,
            OutboxMessage.sent_at < end,
        )
    )
    questions = [QuestionRow(sent_at, bool(answered)) for sent_at, answered in question_rows]
    complaints = await session.scalars(
        select(Ticket.id).where(
            Ticket.kind == "rating", Ticket.opened_at >= month_start, Ticket.opened_at < end
        )
    )
    return build(month, zone, target, ratings, questions, complaints)

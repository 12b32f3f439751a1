"""Ratings in storage: the questions asked, the answers given, and what a low score triggers.

A `RatingRequest` is written when a follow-up (or a resolved ticket's question) is queued in
the outbox; it becomes *pending* for the dialogs once its outbox message went out, and stays so
until the customer answers, declines, or it lapses after `PENDING_FOR`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import OutboxMessage, Rating, RatingRequest, ServiceRecord
from dialogs.types import PendingRating

PENDING_FOR = timedelta(days=14)  # an unanswered question lapses after this long
_WENT_OUT = ("sent", "unknown")  # unknown: it may have arrived; an answer is welcome


async def pending_for_many(
    session: AsyncSession, customer_ids: Sequence[int], now: datetime
) -> dict[int, PendingRating]:
    """The newest question each customer was sent and has not answered, in one query;
    customers with none are left out."""
    if not customer_ids:
        return {}
    rows = await session.execute(
        select(RatingRequest, OutboxMessage.sent_at, ServiceRecord.kind, ServiceRecord.performed_at)
        .join(OutboxMessage, OutboxMessage.dedupe_key == RatingRequest.outbox_key)
        .outerjoin(ServiceRecord, ServiceRecord.id == RatingRequest.service_record_id)
        .where(
            RatingRequest.customer_id.in_(customer_ids),
            RatingRequest.status == "pending",
            OutboxMessage.status.in_(_WENT_OUT),
            OutboxMessage.sent_at >= now - PENDING_FOR,
        )
        .order_by(OutboxMessage.sent_at.desc(), RatingRequest.id.desc())
    )
    pending: dict[int, PendingRating] = {}
    for request, sent_at, kind, performed_at in rows.tuples():
        if request.customer_id in pending or sent_at is None:
            continue  # an older question of the same customer
        pending[request.customer_id] = PendingRating(
            request_id=request.id,
            subject="ticket" if request.ticket_id is not None else "service",
            asked_at=sent_at,
            reasked=request.reasked_at is not None,
            service_kind=kind,
            service_date=performed_at,
            ticket_number=request.ticket_id,
        )
    return pending


async def record(
    session: AsyncSession,
    request_id: int,
    score: int,
    comment: str | None,
    dimensions: Mapping[str, int],
    channel: str,
    now: datetime,
) -> Rating:
    """Store (or complete) the answer to a request; the request is then `rated`.

    A rating question about the same service still waiting in the outbox is cancelled.
    """
    if not 1 <= score <= 5:
        raise ValueError(f"a rating is 1 to 5, not {score}")
    request = await session.get_one(RatingRequest, request_id)
    rating = await session.scalar(
        select(Rating).where(
            (Rating.service_record_id == request.service_record_id)
            if request.service_record_id is not None
            else (Rating.ticket_id == request.ticket_id)
        )
    )
    if rating is None:
        rating = Rating(
            customer_id=request.customer_id,
            service_record_id=request.service_record_id,
            ticket_id=request.ticket_id,
            score=score,
            comment=comment,
            dimensions=dict(dimensions),
            channel=channel,
            created_at=now,
        )
        session.add(rating)
    else:
        rating.score = score
        rating.comment = comment if comment is not None else rating.comment
        rating.dimensions = {**rating.dimensions, **dimensions}
    if request.status != "rated":
        request.status, request.answered_at = "rated", now
    if request.service_record_id is not None:
        await cancel_follow_ups(
            session, request.service_record_id, now, "already rated", ("first",)
        )
    await session.flush()
    return rating


def follow_up_key(stage: str, service_record_id: int) -> str:
    """The outbox key of a service's follow-up; `stage` is "first" (rating) or "second"."""
    return f"followup:{stage}:{service_record_id}"


async def cancel_follow_ups(
    session: AsyncSession,
    service_record_id: int,
    now: datetime,
    reason: str,
    stages: tuple[str, ...] = ("first", "second"),
) -> None:
    """Follow-ups of a service still waiting in the outbox are skipped with `reason`."""
    await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.dedupe_key.in_([follow_up_key(s, service_record_id) for s in stages]),
            OutboxMessage.status == "queued",
            OutboxMessage.lease_owner.is_(None),
        )
        .values(status="skipped", reason=reason, finished_at=now)
        .execution_options(synchronize_session=False)
    )


async def mark_reasked(session: AsyncSession, request_id: int, now: datetime) -> None:
    request = await session.get_one(RatingRequest, request_id)
    request.reasked_at = request.reasked_at or now


async def close(session: AsyncSession, request_id: int, status: str, now: datetime) -> None:
    request = await session.get_one(RatingRequest, request_id)
    if request.status == "pending":
        request.status, request.answered_at = status, now

"""Applying the dialogs' effects: each `Effect` type and the storage change it stands for.

The engine calls `apply` inside the message's transaction, so an effect and the message that
caused it are committed together or not at all. Some effects produce a reply only the runtime
can word, such as a new ticket's number and answer time; those come back as `Applied.replies`,
to be worded once the session is flushed (a new ticket has no number before), so a batch of
messages needs one flush for all of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot import customers, ratings, tickets
from bot.config import Settings
from bot.storage.models import ConversationState, RatingRequest
from dialogs.complaint import ticket_opened
from dialogs.types import (
    AddToTicket,
    ClearState,
    CloseRatingRequest,
    Effect,
    EraseCustomer,
    Inbound,
    Language,
    MarkRatingReasked,
    OpenTicket,
    RecordRating,
    ReopenTicket,
    Reply,
    SetAddress,
    SetLanguage,
    SetMarketingOptOut,
    SetState,
)

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Applied:
    erased: bool = False
    replies: list[Callable[[], Reply]] = field(default_factory=list)  # call after a flush


@dataclass(frozen=True, slots=True)
class Context:
    """Who the effects are about and where the message came from."""

    customer_id: int
    inbound: Inbound
    language: Language
    now: datetime
    settings: Settings


async def apply(
    session: AsyncSession,
    context: Context,
    row: ConversationState | None,
    effects: tuple[Effect, ...],
) -> Applied:
    """Apply `effects` in order; stops at an erasure (nothing is left to change)."""
    applied = Applied()
    now, customer_id = context.now, context.customer_id
    for effect in effects:
        match effect:
            case EraseCustomer():
                await customers.erase(session, customer_id)
                log.info("customer %s erased at their request", customer_id)
                applied.erased = True
                return applied
            case SetState(dialog=dialog, step=step, data=data):
                if row is None:
                    row = ConversationState(
                        customer_id=customer_id, dialog=dialog, step=step, data=dict(data),
                        updated_at=now,
                    )  # fmt: skip
                    session.add(row)
                else:
                    row.dialog, row.step, row.data, row.updated_at = dialog, step, dict(data), now
            case ClearState():
                if row is not None:
                    await session.delete(row)
                    row = None
            case SetAddress(address_as=address_as):
                (await customers.get(session, customer_id)).address_as = address_as
            case SetLanguage(language=language):
                (await customers.get(session, customer_id)).language = language
            case SetMarketingOptOut(opted_out=opted_out):
                customer = await customers.get(session, customer_id)
                if not opted_out:
                    customer.marketing_opt_out_at = None
                elif customer.marketing_opt_out_at is None:
                    customer.marketing_opt_out_at = now
            case OpenTicket():
                applied.replies.append(await _open_ticket(session, context, effect))
            case AddToTicket(number=number, text=text):
                ticket = await tickets.get(session, number)
                rules = tickets.queue_rules(context.settings)
                await tickets.add_customer_message(session, ticket, text, now, rules)
            case ReopenTicket(number=number, text=text):
                ticket = await tickets.get(session, number)
                await tickets.reopen(
                    session, ticket, text, now, tickets.queue_rules(context.settings)
                )
            case RecordRating(request_id=request_id, score=score, comment=comment, dimensions=dims):
                await ratings.record(
                    session, request_id, score, comment, dims, context.inbound.channel, now
                )
            case MarkRatingReasked(request_id=request_id):
                await ratings.mark_reasked(session, request_id, now)
            case CloseRatingRequest(request_id=request_id, status=status):
                await ratings.close(session, request_id, status, now)
    return applied


async def _open_ticket(
    session: AsyncSession, context: Context, effect: OpenTicket
) -> Callable[[], Reply]:
    """Open the ticket; its confirmation (number, when staff will answer) is worded after the
    flush that numbers it."""
    rules = tickets.queue_rules(context.settings)
    service_record_id = None
    if effect.rating_request_id is not None:
        request = await session.get(RatingRequest, effect.rating_request_id)
        service_record_id = request.service_record_id if request is not None else None
    inbound = context.inbound
    ticket = await tickets.open_ticket(
        session,
        customer_id=context.customer_id,
        kind=effect.kind,
        subject=effect.subject,
        priority=effect.priority,
        channel=inbound.channel,
        chat_id=inbound.chat_id,
        language=context.language,
        now=context.now,
        rules=rules,
        cues=effect.cues,
        service_record_id=service_record_id,
    )
    zone = rules.hours.zone
    back = None if rules.hours.is_open(context.now) else rules.hours.next_open(context.now)
    return lambda: ticket_opened(
        context.language,
        ticket.id,
        ticket.due_at.astimezone(zone),
        context.now.astimezone(zone),
        back.astimezone(zone) if back is not None else None,
    )

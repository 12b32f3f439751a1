"""The engine: one inbound message, one transaction, the dialogs' answer.

`Engine.handle` follows the flow in DESIGN.md: identify the customer, let the dialogs decide,
apply their effects and log both directions, all in one transaction; messages of one
customer are handled strictly one after another, in the order they arrived.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from bot import customers, effects, ratings, tickets
from bot.clock import Clock
from bot.config import Settings
from bot.locks import KeyedLocks, lock_across_processes
from bot.phones import InvalidPhoneError, normalize_shared_contact
from bot.storage.database import Database, StorageUnavailableError
from bot.storage.models import MessageLog
from dialogs import respond
from dialogs.cleaning import clean_text
from dialogs.dissatisfaction import ComplaintModel
from dialogs.faq import Knowledge
from dialogs.greeting import is_new_visit
from dialogs.language import choose_language
from dialogs.types import ConversationState as StateView
from dialogs.types import (
    Inbound,
    MessageKind,
    Outcome,
    Reply,
    Turn,
)

log = logging.getLogger(__name__)

# Errors that mean "the database is not there right now", as opposed to a bug.
_UNAVAILABLE = (OperationalError, InterfaceError, OSError, TimeoutError)
# PostgreSQL SQLSTATEs of the same kind: connection exceptions (class 08), lock not available,
# query cancelled (statement timeout), admin shutdown, cannot connect now.
_UNAVAILABLE_SQLSTATES = ("08", "55P03", "57014", "57P01", "57P03")


@dataclass(frozen=True, slots=True)
class Answer:
    """The replies to one message and the ids of the log rows that record them, in order.

    `log_ids` is empty when the replies were not logged (the customer asked to be erased).
    `repeated`: the message was handled before and the replies come from the log.
    """

    replies: list[Reply]
    log_ids: list[int]
    repeated: bool = False


def _is_unavailable(error: Exception) -> bool:
    if isinstance(error, _UNAVAILABLE):
        return True
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        sqlstate = str(getattr(error.orig, "sqlstate", "") or "")
        return sqlstate.startswith(_UNAVAILABLE_SQLSTATES)
    return False


class Engine:
    """Handles inbound messages from every channel the same way."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        settings: Settings,
        knowledge: Callable[[], Knowledge | None] = lambda: None,
        complaint_model: Callable[[], ComplaintModel | None] = lambda: None,
    ) -> None:
        self.database = database
        self.clock = clock
        self.settings = settings
        self._knowledge = knowledge  # the current knowledge base, read at each message
        self._complaint_model = complaint_model  # None: complaints by the lexicon alone
        self._locks = KeyedLocks()

    async def handle(self, inbound: Inbound) -> list[Reply]:
        """The replies to `inbound`, after its effects and log rows are committed."""
        return (await self.answer(inbound)).replies

    async def answer(self, inbound: Inbound) -> Answer:
        """`handle`, with the replies' log rows, for a channel that delivers them later.

        A message seen before (same platform message id) is not handled again: the replies
        logged the first time are returned, so a redelivery after a crash is harmless.
        Raises StorageUnavailableError when the database cannot be used; nothing is then
        written and the message may be retried.
        """
        inbound = replace(inbound, text=clean_text(inbound.text))
        key = f"{inbound.channel}:{inbound.external_user_id}"
        async with self._locks.hold(key):
            try:
                async with self.database.transaction() as session:
                    if self.database.dialect == "postgresql":
                        await lock_across_processes(session, key)
                    return await self._handle(session, inbound)
            except (DBAPIError, *_UNAVAILABLE) as error:
                if not _is_unavailable(error):
                    raise
                raise StorageUnavailableError(f"database unavailable: {error}") from error

    async def _handle(self, session: AsyncSession, inbound: Inbound) -> Answer:
        inbound_key = f"{inbound.channel}:{inbound.message_id}" if inbound.message_id else None
        if inbound_key is not None:
            earlier = await _logged_replies(session, inbound_key)
            if earlier is not None:
                log.info("message %s was handled before; returning its replies", inbound_key)
                return earlier
        now = self.clock.now()
        who = await customers.identify(
            session,
            inbound.channel,
            inbound.external_user_id,
            inbound.chat_id,
            inbound.display_name,
            now,
        )
        if inbound.kind is MessageKind.CONTACT and inbound.contact_phone:
            try:
                phone = normalize_shared_contact(inbound.contact_phone, self.settings.phone_region)
            except InvalidPhoneError:
                log.warning("ignoring an unreadable shared phone number on %s", inbound.channel)
            else:
                who = await customers.link_phone(session, who, phone)
        customer, state_row = who.customer, who.state
        new_visit = is_new_visit(who.previous_seen_at, now, self.settings.greeting_gap)
        language = choose_language(
            inbound.text,
            customers.view_language(customer.language),
            inbound.language_hint,
            self.settings.default_language,
        )
        if customer.language is None:
            customer.language = language
        ticket = await tickets.for_customer(
            session, customer.id, now, self.settings.ticket_reopen_window
        )
        turn = Turn(
            inbound=inbound,
            customer=await customers.view(session, who, with_history=new_visit or who.just_linked),
            now=now,
            language=language,
            state=None
            if state_row is None
            else StateView(state_row.dialog, state_row.step, dict(state_row.data)),
            persona=self.settings.persona,
            knowledge=self._knowledge(),
            ticket=await tickets.view(session, ticket) if ticket is not None else None,
            pending_rating=await ratings.pending_for(session, customer.id, now),
            complaint_model=self._complaint_model(),
        )
        # Matching a question against the knowledge base or reading it with the complaint model
        # is CPU work (embeddings): keep it off the event loop so other customers are not held up.
        embeds = turn.knowledge is not None or turn.complaint_model is not None
        outcome = await asyncio.to_thread(respond, turn) if embeds else respond(turn)
        context = effects.Context(customer.id, inbound, language, now, self.settings)
        applied = await effects.apply(session, context, state_row, outcome.effects)
        if applied.erased:
            return Answer(list(outcome.replies), [])
        if applied.replies:
            outcome = replace(outcome, replies=outcome.replies + tuple(applied.replies))
        if (
            who.is_new
            or turn.customer.previous_seen_at is None
            or (now - turn.customer.previous_seen_at >= self.settings.greeting_gap)
        ):
            customer.visit_count += 1
        customer.last_seen_at = now
        log_ids = await _log(session, customer.id, inbound, outcome, inbound_key, now)
        return Answer(list(outcome.replies), log_ids)


async def _logged_replies(session: AsyncSession, inbound_key: str) -> Answer | None:
    first = await session.scalar(select(MessageLog.id).where(MessageLog.inbound_key == inbound_key))
    if first is None:
        return None
    rows = list(
        await session.scalars(
            select(MessageLog).where(MessageLog.reply_to_id == first).order_by(MessageLog.id)
        )
    )
    replies = [Reply(row.text, tuple(row.buttons), row.contact_button) for row in rows]
    return Answer(replies, [row.id for row in rows], repeated=True)


async def _log(
    session: AsyncSession,
    customer_id: int,
    inbound: Inbound,
    outcome: Outcome,
    inbound_key: str | None,
    now: datetime,
) -> list[int]:
    """Write the message and the replies to the log (Core inserts: this runs for every message);
    returns the replies' row ids."""
    common = {"customer_id": customer_id, "channel": inbound.channel, "created_at": now}
    incoming = await session.scalar(
        insert(MessageLog).returning(MessageLog.id),
        {
            **common,
            "direction": "in",
            "text": inbound.text if inbound.kind is MessageKind.TEXT else f"[{inbound.kind.value}]",
            "intent": outcome.intent,
            "confidence": outcome.confidence,
            "inbound_key": inbound_key,
            "buttons": [],
            "contact_button": None,
            "topic": outcome.topic,
        },
    )
    if outcome.replies:
        # One multi-row INSERT; the rows get their ids in the order given (SQLite's rowid,
        # PostgreSQL's sequence), so sorted ids match the replies. Asking SQLAlchemy to sort
        # them would cost SQLite one statement per row.
        replies = await session.scalars(
            insert(MessageLog).returning(MessageLog.id),
            [
                {
                    **common,
                    "direction": "out",
                    "text": reply.text,
                    "reply_to_id": incoming,
                    "buttons": list(reply.buttons),
                    "contact_button": reply.contact_button,
                    "topic": None,
                    "intent": None,
                    "confidence": None,
                    "inbound_key": None,
                }
                for reply in outcome.replies
            ],
        )
        return sorted(replies)
    return []

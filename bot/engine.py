"""The engine: inbound messages, one transaction, the dialogs' answers.

`Engine.handle` follows the flow in DESIGN.md: identify the customer, let the dialogs decide,
apply their effects and log both directions, all in one transaction; messages of one
customer are handled strictly one after another, in the order they arrived.

`Engine.answer_all` does the same for a batch (a getUpdates round): messages of different
customers share the transaction, and each read and each kind of write is one statement for
all of them. A burst of 1 000 complaints then costs tens of statements per hundred messages
instead of a dozen per message (bench/complaints.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
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
from dialogs.types import Inbound, MessageKind, Outcome, Reply, Turn

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
        self._knowledge = knowledge  # the current knowledge base, read at each round
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
        (result,) = await self.answer_all([inbound])
        if isinstance(result, Exception):
            raise result
        return result

    async def answer_all(self, inbounds: Sequence[Inbound]) -> list[Answer | Exception]:
        """`answer` for a batch, such as one getUpdates round; the results in the same order.

        Messages of different customers share one transaction. A customer's next message in
        the batch goes in a later round, once the one before is committed, so it sees what
        that one did. A message that hits a bug costs only its own answer: the round is
        rolled back and its messages handled again one at a time, and that message's result
        is the exception. A result is StorageUnavailableError when the database could not be
        used: nothing of that message was written and it may be retried.
        """
        cleaned = [replace(inbound, text=clean_text(inbound.text)) for inbound in inbounds]
        results: list[Answer | Exception | None] = [None] * len(cleaned)
        waiting = list(range(len(cleaned)))
        while waiting:
            batch: list[int] = []
            later: list[int] = []
            senders: set[str] = set()
            for index in waiting:
                sender = _sender_key(cleaned[index])
                (later if sender in senders else batch).append(index)
                senders.add(sender)
            done = await self._round([cleaned[index] for index in batch])
            for index, result in zip(batch, done, strict=True):
                results[index] = result
            # None: another sender's message in the round was the same customer's; next round.
            waiting = sorted(later + [i for i, r in zip(batch, done, strict=True) if r is None])
        answered = [result for result in results if result is not None]
        assert len(answered) == len(results)  # a round always answers its first message
        return answered

    async def _round(self, inbounds: list[Inbound]) -> list[Answer | Exception | None]:
        """One transaction for messages of distinct senders, under their locks."""
        senders = [_sender_key(inbound) for inbound in inbounds]
        async with self._locks.hold_all(senders):
            try:
                return list(await self._transaction(inbounds, senders))
            except StorageUnavailableError as error:
                return [error] * len(inbounds)
            except Exception as error:
                if len(inbounds) == 1:
                    return [error]
                log.warning(
                    "a round of %d messages failed (%r); handling them one at a time",
                    len(inbounds),
                    error,
                )
            results: list[Answer | Exception | None] = []
            for inbound, sender in zip(inbounds, senders, strict=True):
                try:
                    results.extend(await self._transaction([inbound], [sender]))
                except Exception as error:
                    results.append(error)
            return results

    async def _transaction(
        self, inbounds: list[Inbound], senders: list[str]
    ) -> list[Answer | None]:
        try:
            async with self.database.transaction() as session:
                if self.database.dialect == "postgresql":
                    await lock_across_processes(session, *senders)
                return await self._handle(session, inbounds)
        except (DBAPIError, *_UNAVAILABLE) as error:
            if not _is_unavailable(error):
                raise
            raise StorageUnavailableError(f"database unavailable: {error}") from error

    async def _handle(self, session: AsyncSession, inbounds: list[Inbound]) -> list[Answer | None]:
        """Messages of distinct senders, in one transaction: read everything they need with a
        query per kind, let the dialogs answer, apply the effects, flush once, log them all.

        An entry is None for a message whose customer already has one in this round (two
        senders can be one customer); the caller hands it to the next round.
        """
        results: list[Answer | None] = [None] * len(inbounds)
        inbound_keys = [_inbound_key(inbound) for inbound in inbounds]
        earlier = await _logged_replies(session, [key for key in inbound_keys if key is not None])
        fresh: list[int] = []
        for index, key in enumerate(inbound_keys):
            if key is not None and key in earlier:
                log.info("message %s was handled before; returning its replies", key)
                results[index] = earlier[key]
            else:
                fresh.append(index)
        if not fresh:
            return results
        now = self.clock.now()
        found = await customers.identify_many(
            session,
            [
                customers.Sender(i.channel, i.external_user_id, i.chat_id, i.display_name)
                for i in (inbounds[index] for index in fresh)
            ],
            now,
        )
        work: list[tuple[int, customers.Identified]] = []
        seen: set[int] = set()
        for index, who in zip(fresh, found, strict=True):
            inbound = inbounds[index]
            if inbound.kind is MessageKind.CONTACT and inbound.contact_phone:
                try:
                    phone = normalize_shared_contact(
                        inbound.contact_phone, self.settings.phone_region
                    )
                except InvalidPhoneError:
                    log.warning("ignoring an unreadable shared phone number on %s", inbound.channel)
                else:
                    who = await customers.link_phone(session, who, phone)
            if who.customer.id not in seen:
                seen.add(who.customer.id)
                work.append((index, who))
        turns = await self._turns(session, [(inbounds[index], who) for index, who in work], now)
        outcomes = await self._respond(turns)
        done: list[tuple[int, Turn, Outcome, effects.Applied]] = []
        for (index, who), turn, outcome in zip(work, turns, outcomes, strict=True):
            customer = who.customer
            context = effects.Context(customer.id, turn.inbound, turn.language, now, self.settings)
            applied = await effects.apply(session, context, who.state, outcome.effects)
            if applied.erased:
                results[index] = Answer(list(outcome.replies), [])
                continue
            previous = turn.customer.previous_seen_at
            if who.is_new or previous is None or now - previous >= self.settings.greeting_gap:
                customer.visit_count += 1
            customer.last_seen_at = now
            done.append((index, turn, outcome, applied))
        await session.flush()  # numbers the new tickets, which the replies below mention
        logged: list[tuple[int, Inbound, Outcome, str | None]] = []
        for index, turn, outcome, applied in done:
            if applied.replies:
                added = tuple(word() for word in applied.replies)
                outcome = replace(outcome, replies=outcome.replies + added)
            logged.append((turn.customer.id, turn.inbound, outcome, inbound_keys[index]))
        log_ids = await _log(session, logged, now)
        for (index, *_), (_, _, outcome, _), ids in zip(done, logged, log_ids, strict=True):
            results[index] = Answer(list(outcome.replies), ids)
        return results

    async def _turns(
        self,
        session: AsyncSession,
        messages: list[tuple[Inbound, customers.Identified]],
        now: datetime,
    ) -> list[Turn]:
        """What the dialogs see of each message, its customer, ticket and pending rating."""
        ids = [who.customer.id for _, who in messages]
        found = await tickets.for_customers(session, ids, now, self.settings.ticket_reopen_window)
        ticket_views = await tickets.views(session, list(found.values()))
        pending = await ratings.pending_for_many(session, ids, now)
        new_visits = [
            is_new_visit(who.previous_seen_at, now, self.settings.greeting_gap) or who.just_linked
            for _, who in messages
        ]
        history = await customers.last_services(
            session, [id_ for id_, new in zip(ids, new_visits, strict=True) if new]
        )
        knowledge, complaint_model = self._knowledge(), self._complaint_model()
        turns = []
        for inbound, who in messages:
            customer = who.customer
            row = who.state
            state = None if row is None else StateView(row.dialog, row.step, dict(row.data))
            language = choose_language(
                inbound.text,
                customers.view_language(customer.language),
                inbound.language_hint,
                self.settings.default_language,
            )
            if customer.language is None:
                customer.language = language
            ticket = found.get(customer.id)
            turns.append(
                Turn(
                    inbound=inbound,
                    customer=customers.view(who, history.get(customer.id)),
                    now=now,
                    language=language,
                    state=state,
                    persona=self.settings.persona,
                    knowledge=knowledge,
                    ticket=ticket_views[ticket.id] if ticket is not None else None,
                    pending_rating=pending.get(customer.id),
                    complaint_model=complaint_model,
                )
            )
        return turns

    @staticmethod
    async def _respond(turns: list[Turn]) -> list[Outcome]:
        """The dialogs' answers. Matching against the knowledge base or reading with the
        complaint model is CPU work (embeddings): it runs off the event loop, so the web chat
        and the scheduler are not held up meanwhile."""
        if any(turn.knowledge is not None or turn.complaint_model is not None for turn in turns):
            return await asyncio.to_thread(lambda: [respond(turn) for turn in turns])
        return [respond(turn) for turn in turns]


def _sender_key(inbound: Inbound) -> str:
    return f"{inbound.channel}:{inbound.external_user_id}"


def _inbound_key(inbound: Inbound) -> str | None:
    return f"{inbound.channel}:{inbound.message_id}" if inbound.message_id else None


async def _logged_replies(session: AsyncSession, inbound_keys: list[str]) -> dict[str, Answer]:
    """The answers logged for messages handled before, by inbound key."""
    if not inbound_keys:
        return {}
    firsts = dict(
        (
            await session.execute(
                select(MessageLog.id, MessageLog.inbound_key).where(
                    MessageLog.inbound_key.in_(inbound_keys)
                )
            )
        )
        .tuples()
        .all()
    )
    if not firsts:
        return {}
    rows: dict[int, list[MessageLog]] = {first: [] for first in firsts}
    for row in await session.scalars(
        select(MessageLog).where(MessageLog.reply_to_id.in_(firsts)).order_by(MessageLog.id)
    ):
        rows[row.reply_to_id or 0].append(row)
    return {
        str(key): Answer(
            [Reply(row.text, tuple(row.buttons), row.contact_button) for row in rows[first]],
            [row.id for row in rows[first]],
            repeated=True,
        )
        for first, key in firsts.items()
    }


async def _log(
    session: AsyncSession,
    messages: list[tuple[int, Inbound, Outcome, str | None]],
    now: datetime,
) -> list[list[int]]:
    """Write the messages (customer id, message, outcome, inbound key) and their replies to the
    log, with two multi-row INSERTs for all of them; returns each message's reply row ids.

    The rows get their ids in the order given (SQLite's rowid, PostgreSQL's sequence), so
    sorted ids match the rows. Asking SQLAlchemy to sort them would cost SQLite one statement
    per row.
    """
    if not messages:
        return []
    incoming = sorted(
        await session.scalars(
            insert(MessageLog).returning(MessageLog.id),
            [
                {
                    "customer_id": customer_id,
                    "channel": inbound.channel,
                    "created_at": now,
                    "direction": "in",
                    "text": inbound.text
                    if inbound.kind is MessageKind.TEXT
                    else f"[{inbound.kind.value}]",
                    "intent": outcome.intent,
                    "confidence": outcome.confidence,
                    "inbound_key": inbound_key,
                    "buttons": [],
                    "contact_button": None,
                    "topic": outcome.topic,
                    "reply_to_id": None,
                }
                for customer_id, inbound, outcome, inbound_key in messages
            ],
        )
    )
    replies = [
        {
            "customer_id": customer_id,
            "channel": inbound.channel,
            "created_at": now,
            "direction": "out",
            "text": reply.text,
            "reply_to_id": reply_to,
            "buttons": list(reply.buttons),
            "contact_button": reply.contact_button,
            "topic": None,
            "intent": None,
            "confidence": None,
            "inbound_key": None,
        }
        for (customer_id, inbound, outcome, _), reply_to in zip(messages, incoming, strict=True)
        for reply in outcome.replies
    ]
    ids = iter(
        sorted(await session.scalars(insert(MessageLog).returning(MessageLog.id), replies))
        if replies
        else []
    )
    return [[next(ids) for _ in outcome.replies] for _, _, outcome, _ in messages]

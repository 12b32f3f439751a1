"""The staff group's side of Telegram: what staff write and press there, turned into actions.

- A reply to one of the bot's posts about a ticket (its card or a thread notice) answers that
  ticket's customer through the outbox; a reply to a digest must start with "#123". The
  answer's source is the Telegram message, so a redelivered update answers only once. A post
  not yet recorded as a `StaffPost` is known by the ticket number in its first line.
- `/take 123`, `/resolve 123 NOTE` and `/ticket 123` (that ticket's card again, as a new thread).
- The card's buttons: Take assigns the ticket; Resolve resolves it with a default note (in the
  customer's language) when staff have already answered the customer, and otherwise asks for
  `/resolve 123 NOTE` in a pop-up: a customer never gets a canned closing before any answer.

Every action is authorised (`bot.staff.actions.authorize`): a refusal is on the ticket's
timeline and in the log; a button press gets a short refusal, a message none (outsiders in the
group are not answered). What staff should see in the group (taken, resolved, an error) is
queued as a staff notice in the action's own transaction; the notifier posts it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import CallbackQuery, Message, Update, User

from bot import tickets
from bot.clock import Clock
from bot.config import Settings
from bot.staff import actions
from bot.staff.actions import Action, NotAllowedError
from bot.storage.database import Database, StorageUnavailableError
from bot.storage.models import Staff, StaffPost, Ticket
from dialogs.texts import t
from dialogs.types import Language

log = logging.getLogger(__name__)

_COMMAND = re.compile(r"^/(\w+)(?:@\w+)?(?:\s+(.*))?$", re.DOTALL)
_NUMBERED = re.compile(r"^\s*#(\d+)\b[\s:,.-]*(.*)$", re.DOTALL)
_BUTTON = re.compile(r"^(take|resolve):(\d+)$")
_FIRST_LINE_TICKET = re.compile(r"(?:^|\s)#(\d+)\b")


@dataclass(frozen=True, slots=True)
class ButtonAnswer:
    """The answer to a button press, given once the action is committed."""

    query_id: str
    text: str
    alert: bool = False


def _who(user: User) -> str:
    """The person as the log and the timeline name someone who may not be staff."""
    return f"telegram:{user.id} {user.full_name}"[:64]


class StaffDesk:
    """Handles the staff group's messages and button presses, one at a time, in order."""

    def __init__(self, database: Database, clock: Clock, settings: Settings) -> None:
        self.database = database
        self.clock = clock
        self.group = settings.staff_chat_id
        self.language: Language = settings.default_language
        self.rules = tickets.queue_rules(settings)
        self._lock = asyncio.Lock()  # staff actions on one ticket must keep their order

    def wants(self, update: Update) -> bool:
        """True for button presses and for messages in the staff group."""
        if update.callback_query is not None:
            return True
        message = update.message
        return message is not None and self.group is not None and str(message.chat.id) == self.group

    async def handle(self, update: Update) -> ButtonAnswer | None:
        """Do what the update asks, in one committed transaction; raises
        StorageUnavailableError when the database cannot be used (nothing was done)."""
        async with self._lock:
            try:
                async with self.database.transaction() as session:
                    if update.callback_query is not None:
                        return await self._button(session, update.callback_query)
                    if update.message is not None:
                        await self._message(session, update.message)
                    return None
            except (DBAPIError, OSError, TimeoutError) as error:
                if isinstance(error, DBAPIError) and not (
                    error.connection_invalidated
                    or isinstance(error, OperationalError | InterfaceError)
                ):
                    raise
                raise StorageUnavailableError(f"database unavailable: {error}") from error

    # --- button presses

    async def _button(self, session: AsyncSession, query: CallbackQuery) -> ButtonAnswer:
        now = self.clock.now()
        parsed = _BUTTON.match(query.data or "")
        if parsed is None:
            return ButtonAnswer(query.id, "")
        verb, number = parsed.group(1), int(parsed.group(2))
        ticket = await session.get(Ticket, number)
        if ticket is None:
            return ButtonAnswer(query.id, t(self.language, "staff.no_such_ticket", number=number))
        action = Action.TAKE if verb == "take" else Action.RESOLVE
        staff = await actions.staff_by_telegram(session, str(query.from_user.id))
        try:
            staff = await actions.authorize(
                session, staff, action, now, who=_who(query.from_user), ticket=ticket
            )
        except NotAllowedError:
            return ButtonAnswer(query.id, t(self.language, "staff.refused"), alert=True)
        try:
            if action is Action.TAKE:
                await self._take(session, ticket, staff, now)
                return ButtonAnswer(query.id, t(self.language, "staff.taken_button", number=number))
            if ticket.first_response_at is None and ticket.status in tickets.LIVE:
                text = t(self.language, "staff.resolve_needs_note", number=number)
                return ButtonAnswer(query.id, text, alert=True)
            language: Language = "zh" if ticket.language == "zh" else "en"
            note = t(language, "ticket.resolved_default_note")
            await self._resolve(session, ticket, staff, note, now)
            return ButtonAnswer(query.id, t(self.language, "staff.resolved_button", number=number))
        except tickets.TicketError as error:
            return ButtonAnswer(query.id, t(self.language, "staff.action_failed", error=error))

    # --- messages

    async def _message(self, session: AsyncSession, message: Message) -> None:
        user = message.from_user
        if user is None or user.is_bot:
            return
        text = message.text
        command = _COMMAND.match(text.strip()) if text else None
        if command is not None:
            await self._command(session, message, user, command.group(1).lower(), command[2])
            return
        replied = message.reply_to_message
        if replied is None:
            return  # staff talking among themselves
        post = await session.get(StaffPost, (str(message.chat.id), str(replied.message_id)))
        if post is not None:
            await self._answer(session, message, user, post.ticket_id, text)
        elif replied.from_user is not None and replied.from_user.is_bot:
            # Our post, not recorded yet (the notifier commits after posting) or never (a crash
            # in between): its first line names the ticket ("🆕 Ticket #12", "💬 #12 ..."); a
            # digest's does not.
            named = _FIRST_LINE_TICKET.search((replied.text or "").split("\n", 1)[0])
            await self._answer(session, message, user, int(named[1]) if named else None, text)

    async def _answer(
        self,
        session: AsyncSession,
        message: Message,
        user: User,
        posted_about: int | None,
        text: str | None,
    ) -> None:
        now = self.clock.now()
        staff = await actions.staff_by_telegram(session, str(user.id))
        number, body = posted_about, (text or "").strip()
        numbered = _NUMBERED.match(body)
        if numbered is not None and posted_about in (None, int(numbered.group(1))):
            # "#123 ..." names the ticket (a must under a digest); the customer need not read it.
            number, body = int(numbered.group(1)), numbered.group(2).strip()
        ticket = await session.get(Ticket, number) if number is not None else None
        try:
            staff = await actions.authorize(
                session, staff, Action.ANSWER, now, who=_who(user), ticket=ticket
            )
        except NotAllowedError:
            return
        if ticket is None:
            example = number if number is not None else 123
            key = "staff.which_ticket" if number is None else "staff.no_such_ticket"
            await self._tell(session, t(self.language, key, number=example), now)
            return
        if text is None:
            await self._tell(session, t(self.language, "staff.text_only"), now, ticket)
            return
        source = f"telegram:{message.chat.id}:{message.message_id}"
        try:
            await tickets.answer(session, ticket, staff, body, now, source=source)
        except tickets.TicketError as error:
            await self._failed(session, error, now, ticket)

    async def _command(
        self, session: AsyncSession, message: Message, user: User, name: str, rest: str | None
    ) -> None:
        if name not in ("take", "resolve", "ticket"):
            return  # not ours (another bot's, or a typo we need not answer)
        now = self.clock.now()
        staff = await actions.staff_by_telegram(session, str(user.id))
        parts = (rest or "").strip().split(maxsplit=1)
        number = int(parts[0].lstrip("#")) if parts and parts[0].lstrip("#").isdigit() else None
        ticket = await session.get(Ticket, number) if number is not None else None
        action = Action.RESOLVE if name == "resolve" else Action.TAKE
        try:
            staff = await actions.authorize(
                session, staff, action, now, who=_who(user), ticket=ticket
            )
        except NotAllowedError:
            return
        if ticket is None:
            key = "staff.usage" if number is None else "staff.no_such_ticket"
            await self._tell(session, t(self.language, key, number=number), now)
            return
        try:
            if name == "take":
                await self._take(session, ticket, staff, now)
            elif name == "resolve":
                await self._resolve(session, ticket, staff, parts[1] if len(parts) > 1 else "", now)
            else:
                await tickets.notify_staff(session, "card", "", now, ticket)
        except tickets.TicketError as error:
            await self._failed(session, error, now, ticket)

    # --- the actions and what the group is told

    async def _take(
        self, session: AsyncSession, ticket: Ticket, staff: Staff, now: datetime
    ) -> None:
        if ticket.assigned_to_id == staff.id and ticket.status in tickets.LIVE:
            return  # already theirs (or a redelivered press): nothing new to say
        await tickets.assign(session, ticket, staff, now)
        text = t(self.language, "staff.taken", number=ticket.id, name=staff.name)
        await tickets.notify_staff(session, "assigned", text, now, ticket)

    async def _resolve(
        self, session: AsyncSession, ticket: Ticket, staff: Staff, note: str, now: datetime
    ) -> None:
        if ticket.status == tickets.Status.RESOLVED and ticket.resolution == note.strip():
            return  # a redelivered /resolve: done already
        await actions.resolve(session, ticket, tickets.staff_actor(staff), note, now)
        text = t(self.language, "staff.resolved", number=ticket.id, name=staff.name, note=note)
        await tickets.notify_staff(session, "resolved", text, now, ticket)

    async def _failed(
        self, session: AsyncSession, error: tickets.TicketError, now: datetime, ticket: Ticket
    ) -> None:
        await self._tell(session, t(self.language, "staff.action_failed", error=error), now, ticket)

    async def _tell(
        self, session: AsyncSession, text: str, now: datetime, ticket: Ticket | None = None
    ) -> None:
        await tickets.notify_staff(session, "notice", text, now, ticket)

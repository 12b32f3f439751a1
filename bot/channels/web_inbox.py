"""The web chat's inbox: how proactive messages (staff answers, reminders) reach a web visitor.

A web page cannot be pushed to, so "sending" to a web chat writes the message to the message
log, and the page asks for what is new (`GET /api/chat/inbox`) every few seconds. The message
id in the log is the delivery id; nothing is lost if the visitor is away, they read it when
they come back.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, select

from bot.channels import BadRequestError
from bot.clock import Clock
from bot.storage.database import Database
from bot.storage.models import ChannelIdentity, MessageLog
from dialogs.types import Reply

CHANNEL = "web"
PAGE = 50  # messages returned by one inbox request at most


@dataclass(frozen=True, slots=True)
class InboxMessage:
    id: int
    text: str
    buttons: tuple[str, ...]


class WebInbox:
    """The `Channel` the outbox dispatcher delivers web-chat messages through."""

    name = CHANNEL

    def __init__(self, database: Database, clock: Clock) -> None:
        self.database = database
        self.clock = clock

    async def send(self, chat_id: str, reply: Reply) -> str:
        async with self.database.transaction() as session:
            customer_id = await session.scalar(
                select(ChannelIdentity.customer_id).where(
                    ChannelIdentity.channel == CHANNEL, ChannelIdentity.external_id == chat_id
                )
            )
            if customer_id is None:
                raise BadRequestError(f"no web chat {chat_id!r}")
            logged = await session.scalar(
                insert(MessageLog).returning(MessageLog.id),
                {
                    "customer_id": customer_id,
                    "channel": CHANNEL,
                    "direction": "out",
                    "text": reply.text,
                    "buttons": list(reply.buttons),
                    "created_at": self.clock.now(),
                },
            )
        return str(logged)


async def unread(database: Database, session_id: str, after: int) -> list[InboxMessage]:
    """Messages the bot wrote to `session_id` on its own (not replies), newer than `after`."""
    async with database.transaction() as session:
        rows = await session.execute(
            select(MessageLog.id, MessageLog.text, MessageLog.buttons)
            .join(ChannelIdentity, ChannelIdentity.customer_id == MessageLog.customer_id)
            .where(
                ChannelIdentity.channel == CHANNEL,
                ChannelIdentity.external_id == session_id,
                MessageLog.channel == CHANNEL,
                MessageLog.direction == "out",
                MessageLog.reply_to_id.is_(None),
                MessageLog.id > after,
            )
            .order_by(MessageLog.id)
            .limit(PAGE)
        )
        return [InboxMessage(id, text, tuple(buttons or ())) for id, text, buttons in rows]

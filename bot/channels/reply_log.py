"""Telegram replies in the message log: which were committed but never sent, and marking sent.

The engine logs a reply (`MessageLog`, direction "out") in the transaction that handles the
message, before it is sent; `delivered_at` is set once it was. Only Telegram's replies are
considered: the web chat hands its replies back in the HTTP response and leaves the column
empty, so its rows must never be taken for unsent ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from bot.channels.telegram import CHANNEL
from bot.storage.database import Database
from bot.storage.models import ChannelIdentity, MessageLog
from dialogs.types import Reply


@dataclass(frozen=True, slots=True)
class OutgoingReply:
    """A reply to send to a chat, and the log row to mark (None: not logged, an apology)."""

    chat_id: str
    reply: Reply
    log_id: int | None = None


async def unsent(database: Database, since: datetime) -> list[OutgoingReply]:
    """The Telegram replies logged since `since` and not marked sent, oldest first, except
    to chats that blocked the bot."""
    async with database.sessions() as session:
        rows = await session.execute(
            select(MessageLog.id, ChannelIdentity.chat_id, MessageLog.text, MessageLog.buttons,
                   MessageLog.contact_button)
            .join(ChannelIdentity, (ChannelIdentity.customer_id == MessageLog.customer_id)
                  & (ChannelIdentity.channel == CHANNEL))
            .where(MessageLog.channel == CHANNEL, MessageLog.direction == "out",
                   MessageLog.reply_to_id.is_not(None), MessageLog.delivered_at.is_(None),
                   MessageLog.created_at >= since, ChannelIdentity.blocked_at.is_(None))
            .order_by(MessageLog.id, ChannelIdentity.id.desc())
        )  # fmt: skip
        found: dict[int, OutgoingReply] = {}
        for log_id, chat_id, text, buttons, contact in rows:
            # A customer with two Telegram identities is answered in the newest one.
            reply = Reply(text, tuple(buttons), contact)
            found.setdefault(log_id, OutgoingReply(chat_id, reply, log_id))
    return list(found.values())


async def mark_delivered(database: Database, log_ids: Sequence[int], at: datetime) -> None:
    """One transaction, one UPDATE: the rows `log_ids` were sent by `at`."""
    async with database.transaction() as session:
        await session.execute(
            update(MessageLog)
            .where(MessageLog.id.in_(log_ids))
            .values(delivered_at=at)
            .execution_options(synchronize_session=False)
        )

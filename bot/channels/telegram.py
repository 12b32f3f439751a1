"""Telegram through python-telegram-bot 22: updates in, replies out, platform errors mapped.

This module owns the PTB side of Telegram: `to_inbound` maps an update to an `Inbound`,
and `TelegramChannel` renders a `Reply` as messages with a reply keyboard and maps PTB's errors
to the channel errors.
The long-polling loop that feeds the engine lives in `bot.channels.telegram_poller`.
"""

from __future__ import annotations

import logging
import warnings
from datetime import datetime, timedelta

from telegram import Bot, KeyboardButton, Message, ReplyKeyboardMarkup, Update
from telegram.constants import ChatType, MessageLimit
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from bot.channels import (
    BadRequestError,
    ChannelError,
    RecipientBlockedError,
    RetryAfterError,
)
from bot.clock import Clock
from dialogs.types import Inbound, MessageKind, Reply

log = logging.getLogger(__name__)

CHANNEL = "telegram"
MAX_MESSAGE_LENGTH: int = MessageLimit.MAX_TEXT_LENGTH  # 4096
SEND_ATTEMPTS = 3


def to_inbound(update: Update, now: datetime) -> Inbound | None:
    """The customer's message in `update`, or None for anything we do not answer.

    Only new messages in private chats are answered; group chats, edits and service messages
    are ignored (and still confirmed). The message id is qualified by the chat, because
    Telegram numbers messages per chat, so a redelivered update maps to the same id.
    """
    message = update.message
    if message is None or message.chat.type != ChatType.PRIVATE or message.from_user is None:
        return None
    user = message.from_user
    kind, text, phone = MessageKind.TEXT, message.text or "", None
    if message.contact is not None:
        own = message.contact.user_id == user.id
        kind = MessageKind.CONTACT if own else MessageKind.FOREIGN_CONTACT
        phone = message.contact.phone_number if own else None
    elif message.text is None:
        if message.effective_attachment is None:
            return None  # a service message (e.g. "write access allowed"): nothing to answer
        kind, text = MessageKind.UNSUPPORTED, message.caption or ""
    return Inbound(
        channel=CHANNEL,
        external_user_id=str(user.id),
        chat_id=str(message.chat.id),
        text=text,
        received_at=now,
        display_name=user.full_name or None,
        language_hint=user.language_code,
        kind=kind,
        contact_phone=phone,
        message_id=f"{message.chat.id}:{message.message_id}",
        can_share_contact=True,
    )


def split_text(text: str, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """`text` cut into pieces of at most `limit` UTF-16 code units, losing no character.

    Telegram documents "4096 characters" without saying how it counts; counting UTF-16 code
    units (as its entity offsets do, an emoji being two) is safe either way. A piece ends after
    the last newline that fits, else after the last space, provided that leaves it at least
    half full; otherwise it is cut mid-word. Joining the pieces gives `text` back exactly.
    """
    if limit < 2:
        raise ValueError("limit must leave room for any character (2 UTF-16 code units)")
    pieces: list[str] = []
    rest = text
    while rest:
        fit = _fitting_prefix(rest, limit)
        if fit == len(rest):
            pieces.append(rest)
            break
        window, cut = rest[:fit], fit
        for separator in ("\n", " "):
            after = window.rfind(separator) + 1  # 0 when there is none
            if after and after >= fit // 2:
                cut = after
                break
        pieces.append(rest[:cut])
        rest = rest[cut:]
    return pieces


def _fitting_prefix(text: str, limit: int) -> int:
    """The length of the longest prefix of `text` within `limit` UTF-16 code units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def reply_markup(reply: Reply) -> ReplyKeyboardMarkup | None:
    """The reply's buttons as a one-time reply keyboard, one button per row."""
    rows = [[KeyboardButton(label)] for label in reply.buttons]
    if reply.contact_button:
        rows.append([KeyboardButton(reply.contact_button, request_contact=True)])
    if not rows:
        return None
    return ReplyKeyboardMarkup(rows, resize_keyboard=True, one_time_keyboard=True)


def channel_error(error: TelegramError) -> ChannelError:
    """PTB's error as one of our channel errors."""
    if isinstance(error, RetryAfter):
        with warnings.catch_warnings():  # PTB 22 warns that retry_after becomes a timedelta
            warnings.simplefilter("ignore", PTBDeprecationWarning)
            wait = error.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        return RetryAfterError(seconds, str(error))
    if isinstance(error, Forbidden):
        return RecipientBlockedError(str(error))
    if isinstance(error, BadRequest):  # before NetworkError, of which it is a subclass
        return BadRequestError(str(error))
    return ChannelError(str(error))


class TelegramChannel:
    """Delivers replies to Telegram chats through a PTB `Bot`."""

    name = CHANNEL

    def __init__(self, bot: Bot, clock: Clock) -> None:
        self.bot = bot
        self._clock = clock

    async def send(self, chat_id: str, reply: Reply) -> str:
        """Send `reply` as one or more messages; the keyboard rides on the last one.

        A 429 on the first message is raised, because the caller owns the retry policy. A 429
        on a later piece of a long reply is waited out here: raising would make the caller
        send the already delivered pieces again.
        """
        # Telegram rejects blank messages and trims blanks anyway, so blank pieces are skipped.
        pieces = [piece for piece in split_text(reply.text) if piece.strip()]
        if not pieces:
            raise BadRequestError(f"an empty reply cannot be sent to chat {chat_id}")
        markup = reply_markup(reply)
        delivered: Message | None = None
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            for attempt in range(1, SEND_ATTEMPTS + 1):
                try:
                    delivered = await self.bot.send_message(
                        chat_id=chat_id, text=piece, reply_markup=markup if last else None
                    )
                    break
                except TelegramError as error:
                    mapped = channel_error(error)
                    later_piece = index > 0 and attempt < SEND_ATTEMPTS
                    if not (later_piece and isinstance(mapped, RetryAfterError)):
                        raise mapped from error
                    await self._clock.sleep(mapped.seconds)
        assert delivered is not None
        return str(delivered.message_id)

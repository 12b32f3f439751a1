"""The Bot API calls the staff side makes, behind a small `StaffChat` protocol.

Posting in the staff group differs from answering a customer: a post may be a reply (so that
each ticket is one thread) and may carry inline buttons (Take / Resolve), and pressing a
button needs an answer. `TelegramStaffChat` does that with python-telegram-bot and maps its
errors to the channel errors (`bot.channels`), like the customer-side adapter does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters
from telegram.error import TelegramError

from bot.channels.telegram import MAX_MESSAGE_LENGTH, channel_error, split_text
from bot.staff.pacing import ELLIPSIS

CALLBACK_TEXT_LIMIT = 200  # characters Telegram shows of an answer to a button press


@dataclass(frozen=True, slots=True)
class Button:
    """An inline button; `data` ("take:12") comes back when it is pressed."""

    label: str
    data: str


class StaffChat(Protocol):
    async def post(
        self,
        chat_id: str,
        text: str,
        *,
        reply_to: str | None = None,
        buttons: Sequence[Button] = (),
    ) -> str:
        """Post `text` (as a reply to message `reply_to`); returns the new message's id."""
        ...

    async def answer_button(self, query_id: str, text: str, *, alert: bool = False) -> None:
        """Answer a button press with a short notice (a pop-up when `alert`)."""
        ...


def fit(text: str) -> str:
    """`text` cut to one message; staff posts are written to fit, this is a last guard."""
    pieces = split_text(text, MAX_MESSAGE_LENGTH - 1)
    return pieces[0] if len(pieces) == 1 else pieces[0] + ELLIPSIS


class TelegramStaffChat:
    """`StaffChat` through a PTB `Bot`."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def post(
        self,
        chat_id: str,
        text: str,
        *,
        reply_to: str | None = None,
        buttons: Sequence[Button] = (),
    ) -> str:
        markup = (
            InlineKeyboardMarkup(
                [[InlineKeyboardButton(b.label, callback_data=b.data) for b in buttons]]
            )
            if buttons
            else None
        )
        # A deleted card must not make its thread unpostable: then the notice goes out alone.
        reply = (
            ReplyParameters(int(reply_to), allow_sending_without_reply=True) if reply_to else None
        )
        try:
            message = await self.bot.send_message(
                chat_id=chat_id, text=fit(text), reply_markup=markup, reply_parameters=reply
            )
        except TelegramError as error:
            raise channel_error(error) from error
        return str(message.message_id)

    async def answer_button(self, query_id: str, text: str, *, alert: bool = False) -> None:
        try:
            await self.bot.answer_callback_query(
                query_id, text=text[:CALLBACK_TEXT_LIMIT], show_alert=alert
            )
        except TelegramError as error:
            raise channel_error(error) from error

"""Channels: adapters between a chat platform and the engine, behind one `Channel` protocol.

An adapter maps platform updates to `Inbound` and `Reply` objects to platform messages, and
maps the platform's errors to the small typed set below, so nothing above it knows which
platform (or which Telegram library) it talks to.
"""

from __future__ import annotations

from typing import Protocol

from dialogs.types import Reply


class ChannelError(Exception):
    """A message could not be delivered."""


class RecipientBlockedError(ChannelError):
    """The customer blocked the bot (Telegram 403); stop writing until they write again."""


class RetryAfterError(ChannelError):
    """The platform asks us to wait `seconds` before sending again (Telegram 429)."""

    def __init__(self, seconds: float, message: str = "") -> None:
        super().__init__(message or f"retry after {seconds} s")
        self.seconds = seconds


class BadRequestError(ChannelError):
    """The platform refused the message as malformed (Telegram 400); retrying will not help."""


class Channel(Protocol):
    """Something that can deliver a reply to a chat."""

    name: str

    async def send(self, chat_id: str, reply: Reply) -> str:
        """Deliver `reply`; return the platform's id of the (last) message sent."""
        ...

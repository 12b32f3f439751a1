"""The Telegram channel the dispatcher sends through: its own connections, paid broadcasts.

The dispatcher keeps many sends in flight, so it gets a Bot (and connection pool) of its own
rather than sharing the poller's. With `CONCIERGE_PAID_BROADCAST=true` every message is sent
with `allow_paid_broadcast`, which lets Telegram take up to 1000 messages a second for Stars.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from telegram import Bot, Message
from telegram.request import HTTPXRequest

from bot.channels import Channel
from bot.channels.telegram import CHANNEL, TelegramChannel
from bot.clock import Clock
from bot.config import Settings


class PaidBroadcastBot(Bot):
    """A Bot whose messages may go above the free 30/s, paid in Telegram Stars."""

    async def send_message(self, *args: Any, **kwargs: Any) -> Message:
        kwargs.setdefault("allow_paid_broadcast", True)
        return await super().send_message(*args, **kwargs)


def dispatch_bot(settings: Settings) -> Bot | None:
    if settings.telegram_token is None:
        return None
    root = settings.telegram_api_url
    kind = PaidBroadcastBot if settings.paid_broadcast else Bot
    return kind(
        token=settings.telegram_token.get_secret_value(),
        base_url=f"{root}/bot",
        base_file_url=f"{root}/file/bot",
        request=HTTPXRequest(connection_pool_size=settings.dispatcher_concurrency),
    )


@asynccontextmanager
async def dispatch_channels(settings: Settings, clock: Clock) -> AsyncIterator[dict[str, Channel]]:
    """The channels proactive messages can go out on (none without a Telegram token)."""
    bot = dispatch_bot(settings)
    if bot is None:
        yield {}
        return
    await bot.request.initialize()
    try:
        yield {CHANNEL: TelegramChannel(bot, clock)}
    finally:
        await bot.request.shutdown()

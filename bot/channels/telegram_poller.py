"""The Telegram long-polling loop: getUpdates, the engine, replies, then confirm.

We call `telegram.Bot.get_updates` ourselves instead of running PTB's `Application`/`Updater`:
the Updater confirms updates (advances the getUpdates offset) as soon as it has fetched them,
before they are processed, so a crash in between loses them. Here an update is confirmed only
after the engine's transaction for it has committed and its replies went out; after a crash
Telegram delivers it again, and the engine answers a message it has seen from its log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from telegram import Bot, Update
from telegram.error import InvalidToken, TelegramError

from bot.channels import (
    BadRequestError,
    Channel,
    ChannelError,
    RecipientBlockedError,
    RetryAfterError,
)
from bot.channels.telegram import CHANNEL, SEND_ATTEMPTS, TelegramChannel, to_inbound
from bot.clock import Clock
from bot.config import Settings
from bot.customers import mark_unreachable
from bot.engine import Engine
from bot.storage.database import StorageUnavailableError
from dialogs.language import language_from_hint
from dialogs.texts import t
from dialogs.types import Reply

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0  # seconds


@dataclass(slots=True)
class PollerStats:
    """What the poller went through since it started, for logs and health checks."""

    handled: int = 0  # updates confirmed, answered or deliberately ignored
    internal_errors: int = 0  # updates whose handling hit a bug and got an apology
    storage_outages: int = 0  # rounds abandoned because the database was unavailable
    poll_failures: int = 0  # getUpdates calls that failed
    blocked: int = 0  # chats found to have blocked the bot
    undelivered: int = 0  # replies given up on


@dataclass(frozen=True, slots=True)
class _Handled:
    update_id: int
    chat_id: str | None
    replies: tuple[Reply, ...]


class _Backoff:
    """Exponential waits on the injected clock: 1 s, 2 s, 4 s, ... capped at MAX_BACKOFF."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._failures = 0

    def reset(self) -> None:
        self._failures = 0

    async def wait(self) -> float:
        delay = min(MAX_BACKOFF, 2.0**self._failures)
        self._failures += 1
        await self._clock.sleep(delay)
        return delay


class TelegramPoller:
    """Long-polls getUpdates and answers each update through the engine."""

    def __init__(
        self, engine: Engine, channel: Channel, bot: Bot, clock: Clock, settings: Settings
    ) -> None:
        self.engine = engine
        self.channel = channel
        self.bot = bot
        self.offset: int | None = None  # the next getUpdates offset; confirms what is below it
        self.stats = PollerStats()
        self._clock = clock
        self._settings = settings
        self._poll_backoff = _Backoff(clock)
        self._storage_backoff = _Backoff(clock)

    async def run(self) -> None:
        """Poll until cancelled; failures are logged and waited out, never fatal."""
        try:
            while not await self._connect():
                await self._poll_backoff.wait()
            while True:
                try:
                    await self.poll_once()
                except Exception:
                    # A bug in the poller itself: stopping would silence Telegram altogether.
                    log.exception("Telegram polling round failed")
                    await self._poll_backoff.wait()
        finally:
            await self._confirm_and_close()

    async def _connect(self) -> bool:
        try:
            await self.bot.initialize()
            await self.bot.delete_webhook()  # getUpdates is refused while a webhook is set
        except TelegramError as error:
            level = logging.ERROR if isinstance(error, InvalidToken) else logging.WARNING
            log.log(level, "Telegram: cannot connect (%s); retrying", error)
            return False
        return True

    async def poll_once(self) -> int:
        """One getUpdates round; returns how many updates were handled and will be confirmed.

        Updates are handled concurrently (the engine keeps each customer's messages in
        order), their replies sent, and only then is the offset moved past them. When the
        database is unavailable, the update that found it so and all after it stay
        unconfirmed and Telegram delivers them again on the next round.
        """
        try:
            updates = await self.bot.get_updates(
                offset=self.offset,
                timeout=self._settings.telegram_poll_timeout,
                allowed_updates=[Update.MESSAGE],
            )
        except TelegramError as error:
            self.stats.poll_failures += 1
            level = logging.ERROR if isinstance(error, InvalidToken) else logging.WARNING
            log.log(level, "Telegram getUpdates failed (%s); backing off", error)
            await self._poll_backoff.wait()
            return 0
        self._poll_backoff.reset()
        return await self._handle_batch(updates) if updates else 0

    async def _handle_batch(self, updates: Sequence[Update]) -> int:
        now = self._clock.now()
        # Tasks start in creation order, so the engine's per-customer queue sees update order.
        tasks = [asyncio.create_task(self._handle(update, now)) for update in updates]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        handled: list[_Handled] = []
        for update, result in zip(updates, results, strict=True):
            if isinstance(result, StorageUnavailableError):
                self.stats.storage_outages += 1
                log.warning(
                    "database unavailable at update %s (%s); it and %d later ones stay "
                    "unconfirmed for redelivery",
                    update.update_id,
                    result,
                    len(updates) - len(handled) - 1,
                )
                break
            if isinstance(result, BaseException):
                raise result  # cancellation; bugs were answered inside _handle
            handled.append(result)
        await self._deliver(handled)
        if handled:
            self.offset = handled[-1].update_id + 1
            self.stats.handled += len(handled)
        if len(handled) < len(updates):
            await self._storage_backoff.wait()
        else:
            self._storage_backoff.reset()
        return len(handled)

    async def _handle(self, update: Update, now: datetime) -> _Handled:
        inbound = to_inbound(update, now)
        if inbound is None:
            return _Handled(update.update_id, None, ())
        try:
            replies = tuple(await self.engine.handle(inbound))
        except StorageUnavailableError:
            raise
        except Exception:
            # A bug must not block everyone behind it: apologise, count it, confirm the update.
            self.stats.internal_errors += 1
            log.exception("update %s from chat %s failed", update.update_id, inbound.chat_id)
            language = language_from_hint(inbound.language_hint) or self._settings.default_language
            replies = (Reply(t(language, "error.internal")),)
        return _Handled(update.update_id, inbound.chat_id, replies)

    async def _deliver(self, handled: Sequence[_Handled]) -> None:
        """Each chat's replies in order; different chats side by side."""
        by_chat: dict[str, list[Reply]] = {}
        for item in handled:
            if item.chat_id is not None:
                by_chat.setdefault(item.chat_id, []).extend(item.replies)
        await asyncio.gather(*(self._send_all(chat, replies) for chat, replies in by_chat.items()))

    async def _send_all(self, chat_id: str, replies: Sequence[Reply]) -> None:
        for reply in replies:
            if not await self._send(chat_id, reply):
                return

    async def _send(self, chat_id: str, reply: Reply) -> bool:
        """Deliver one reply, retrying 429s and network errors; False if the chat blocked us."""
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                await self.channel.send(chat_id, reply)
                return True
            except RecipientBlockedError:
                await self._mark_unreachable(chat_id)
                return False
            except BadRequestError as error:
                self.stats.undelivered += 1
                log.error(
                    "Telegram refused a reply to chat %s: %s (%.60r)", chat_id, error, reply.text
                )
                return True
            except ChannelError as error:
                if attempt == SEND_ATTEMPTS:
                    self.stats.undelivered += 1
                    log.error(
                        "gave up on a reply to chat %s after %d tries: %s", chat_id, attempt, error
                    )
                    return True
                wait = error.seconds if isinstance(error, RetryAfterError) else 2.0**attempt
                log.warning("reply to chat %s: %s; retrying in %.0f s", chat_id, error, wait)
                await self._clock.sleep(wait)
        return True

    async def _mark_unreachable(self, chat_id: str) -> None:
        self.stats.blocked += 1
        log.info("chat %s blocked the bot; it is marked unreachable", chat_id)
        try:
            async with self.engine.database.transaction() as session:
                await mark_unreachable(session, CHANNEL, chat_id, self._clock.now())
        except (SQLAlchemyError, OSError) as error:
            log.warning("could not mark chat %s unreachable: %s", chat_id, error)

    async def _confirm_and_close(self) -> None:
        """On the way out, confirm what was handled so a restart does not see it again."""
        try:
            if self.offset is not None:
                await self.bot.get_updates(offset=self.offset, limit=1, timeout=0)
        except TelegramError as error:
            log.warning("could not confirm updates below %s on exit: %s", self.offset, error)
        finally:
            await self.bot.shutdown()


def build_poller(engine: Engine, settings: Settings) -> TelegramPoller:
    """The poller for the configured bot token and Bot API server."""
    if settings.telegram_token is None:
        raise ValueError("no Telegram bot token: set CONCIERGE_TELEGRAM_TOKEN")
    root = settings.telegram_api_url
    bot = Bot(
        token=settings.telegram_token.get_secret_value(),
        base_url=f"{root}/bot",
        base_file_url=f"{root}/file/bot",
    )
    return TelegramPoller(engine, TelegramChannel(bot, engine.clock), bot, engine.clock, settings)

"""Telegram through python-telegram-bot 22: updates in, replies out, platform errors mapped.

This module owns the PTB side of Telegram: `to_inbound` maps an update to an `Inbound`,
`TelegramChannel` renders a `Reply` as messages with a reply keyboard and maps PTB's errors to
the channel errors, and `TelegramPoller` long-polls getUpdates and feeds the engine.

We call `telegram.Bot.get_updates` ourselves instead of running PTB's `Application`/`Updater`:
the Updater confirms updates (advances the getUpdates offset) as soon as it has fetched them,
before they are processed, so a crash in between loses them. Here an update is confirmed only
after the engine's transaction for it has committed and its replies went out; after a crash
Telegram delivers it again, and the engine answers a message it has seen from its log.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from telegram import Bot, KeyboardButton, Message, ReplyKeyboardMarkup, Update
from telegram.constants import ChatType, MessageLimit
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from bot.channels import (
    BadRequestError,
    Channel,
    ChannelError,
    RecipientBlockedError,
    RetryAfterError,
)
from bot.clock import Clock
from bot.config import Settings
from bot.customers import mark_unreachable
from bot.engine import Engine
from bot.storage.database import StorageUnavailableError
from dialogs.language import language_from_hint
from dialogs.texts import t
from dialogs.types import Inbound, MessageKind, Reply

log = logging.getLogger(__name__)

CHANNEL = "telegram"
MAX_MESSAGE_LENGTH: int = MessageLimit.MAX_TEXT_LENGTH  # 4096
SEND_ATTEMPTS = 3
MAX_BACKOFF = 30.0  # seconds


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

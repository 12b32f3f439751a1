"""The Telegram long-polling loop: getUpdates, the engine, then confirm; replies go on their own.

We call `telegram.Bot.get_updates` ourselves instead of running PTB's `Application`/`Updater`:
the Updater confirms updates (advances the getUpdates offset) as soon as it has fetched them,
before they are processed, so a crash in between loses them. Here an update is confirmed (by
the next getUpdates) once the engine's transaction for it has committed, which logged its
replies; they are handed to the `ReplySender`, which sends them at Telegram's pace and marks
them sent, and sends after a restart whatever a crash left unsent. A redelivered update is
recognised by the engine from its log, and its replies are not queued again. Messages in the
staff group and button presses go to the staff desk (`bot.staff.group`) instead of the engine,
under the same rule: confirmed once the desk's transaction committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from telegram import Bot, Update
from telegram.error import InvalidToken, TelegramError

from bot.channels import Channel, ChannelError
from bot.channels.reply_log import OutgoingReply
from bot.channels.reply_sender import STOP_GRACE, ReplySender, reply_limits
from bot.channels.telegram import TelegramChannel, to_inbound
from bot.clock import Clock
from bot.config import Settings
from bot.engine import Answer, Engine
from bot.staff.group import ButtonAnswer, StaffDesk
from bot.staff.telegram import TelegramStaffChat
from bot.storage.database import StorageUnavailableError
from dialogs.language import language_from_hint
from dialogs.texts import t
from dialogs.types import Inbound, Reply

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0  # seconds


@dataclass(slots=True)
class PollerStats:
    """What the poller went through since it started, for logs and health checks."""

    handled: int = 0  # updates confirmed, answered or deliberately ignored
    internal_errors: int = 0  # updates whose handling hit a bug and got an apology
    storage_outages: int = 0  # rounds abandoned because the database was unavailable
    poll_failures: int = 0  # getUpdates calls that failed


@dataclass(frozen=True, slots=True)
class _Handled:
    update_id: int
    replies: tuple[OutgoingReply, ...]  # to queue (none for a redelivered message)
    button: ButtonAnswer | None = None  # a staff button press, answered after the commit


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
    """Long-polls getUpdates and answers each update through the engine and `replies`."""

    def __init__(
        self,
        engine: Engine,
        channel: Channel,
        bot: Bot,
        clock: Clock,
        settings: Settings,
        staff: StaffDesk | None = None,
        replies: ReplySender | None = None,
    ) -> None:
        self.engine = engine
        self.channel = channel
        self.bot = bot
        self.staff = staff
        self.replies = replies or ReplySender(
            engine.database, channel, clock, reply_limits(settings)
        )
        self.staff_chat = TelegramStaffChat(bot)
        self.offset: int | None = None  # the next getUpdates offset; confirms what is below it
        self.stats = PollerStats()
        self._clock = clock
        self._settings = settings
        self._poll_backoff = _Backoff(clock)
        self._storage_backoff = _Backoff(clock)

    async def run(self) -> None:
        """Poll until cancelled; failures are logged and waited out, never fatal. On the way
        out the replies get `STOP_GRACE` seconds to go; the rest go after the next start."""
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

        The customers' updates go to the engine as one batch (it keeps each customer's
        messages in order), their replies are queued for the sender, and the offset moved past
        them. When the
        database is unavailable, the update that found it so and all after it stay
        unconfirmed and Telegram delivers them again on the next round. The first round
        starts the sender, which first queues what an earlier process left unsent.
        """
        if not self.replies.started:
            try:
                await self.replies.start()
            except (SQLAlchemyError, OSError) as error:
                self.stats.storage_outages += 1
                log.warning("cannot read the unsent replies (%s); backing off", error)
                await self._storage_backoff.wait()
                return 0
        try:
            updates = await self.bot.get_updates(
                offset=self.offset,
                timeout=self._settings.telegram_poll_timeout,
                allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY],
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
        # The customers' messages go to the engine together (one transaction for the round; it
        # keeps each customer's messages in update order); staff updates meanwhile, each alone.
        results: list[_Handled | BaseException | None] = [None] * len(updates)
        staff: dict[int, asyncio.Task[_Handled]] = {}
        customers: list[tuple[int, Inbound]] = []
        for index, update in enumerate(updates):
            if self.staff is not None and self.staff.wants(update):
                staff[index] = asyncio.create_task(self._handle_staff(update))
            elif (inbound := to_inbound(update, now)) is not None:
                customers.append((index, inbound))
            else:
                results[index] = _Handled(update.update_id, ())
        answers = await self.engine.answer_all([inbound for _, inbound in customers])
        for (index, inbound), answer in zip(customers, answers, strict=True):
            results[index] = self._answered(updates[index], inbound, answer)
        done = await asyncio.gather(*staff.values(), return_exceptions=True)
        for index, outcome in zip(staff, done, strict=True):
            results[index] = outcome
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
            if not isinstance(result, _Handled):
                raise result or AssertionError("an update was left unhandled")  # cancellation
            handled.append(result)
        # Updates after an outage may have committed too: their logged replies go now, and
        # when Telegram delivers those updates again the engine finds them answered.
        later = [r for r in results[len(handled) :] if isinstance(r, _Handled)]
        self.replies.queue(reply for item in handled for reply in item.replies)
        self.replies.queue(r for item in later for r in item.replies if r.log_id is not None)
        buttons = [item.button for item in handled if item.button is not None]
        await asyncio.gather(*(self._answer_button(button) for button in buttons))
        if handled:
            self.offset = handled[-1].update_id + 1
            self.stats.handled += len(handled)
        if len(handled) < len(updates):
            await self._storage_backoff.wait()
        else:
            self._storage_backoff.reset()
        return len(handled)

    def _answered(
        self, update: Update, inbound: Inbound, answer: Answer | Exception
    ) -> _Handled | StorageUnavailableError:
        """The replies to queue for the engine's `answer` to `update`."""
        if isinstance(answer, StorageUnavailableError):
            return answer
        if isinstance(answer, Exception):
            # A bug must not block everyone behind it: apologise, count it, confirm the update.
            self.stats.internal_errors += 1
            log.error(
                "update %s from chat %s failed",
                update.update_id,
                inbound.chat_id,
                exc_info=answer,
            )
            language = language_from_hint(inbound.language_hint) or self._settings.default_language
            apology = OutgoingReply(inbound.chat_id, Reply(t(language, "error.internal")))
            return _Handled(update.update_id, (apology,))
        if answer.repeated:  # queued the first time (or at start, if that process stopped)
            return _Handled(update.update_id, ())
        ids: list[int | None] = [*answer.log_ids] or [None] * len(answer.replies)
        return _Handled(
            update.update_id,
            tuple(
                OutgoingReply(inbound.chat_id, reply, log_id)
                for reply, log_id in zip(answer.replies, ids, strict=True)
            ),
        )

    async def _handle_staff(self, update: Update) -> _Handled:
        assert self.staff is not None
        try:
            button = await self.staff.handle(update)
        except StorageUnavailableError:
            raise
        except Exception:
            # As for customers: a bug must not block the updates behind it.
            self.stats.internal_errors += 1
            log.exception("staff update %s failed", update.update_id)
            query = update.callback_query
            text = t(self._settings.default_language, "error.internal")
            button = ButtonAnswer(query.id, text) if query is not None else None
        return _Handled(update.update_id, (), button)

    async def _answer_button(self, answer: ButtonAnswer) -> None:
        """Stops the button's spinner; a failure only costs that (the action is committed)."""
        try:
            await self.staff_chat.answer_button(answer.query_id, answer.text, alert=answer.alert)
        except ChannelError as error:
            log.warning("could not answer button press %s: %s", answer.query_id, error)

    async def _confirm_and_close(self) -> None:
        """On the way out, confirm what was handled so a restart does not see it again, and
        give the replies still queued a grace period."""
        try:
            if self.offset is not None:
                await self.bot.get_updates(offset=self.offset, limit=1, timeout=0)
        except TelegramError as error:
            log.warning("could not confirm updates below %s on exit: %s", self.offset, error)
        finally:
            try:
                await self.replies.stop(STOP_GRACE)
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
    staff = StaffDesk(engine.database, engine.clock, settings)
    channel = TelegramChannel(bot, engine.clock)
    return TelegramPoller(engine, channel, bot, engine.clock, settings, staff)

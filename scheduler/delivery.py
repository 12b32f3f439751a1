"""One send and what it came to: the channel's answer as an outbox row update.

Only failures that prove nothing was delivered are retried: 429 "retry after" (the platform
refused the message), a connection that could not be opened (the request never left) and a
token the platform does not accept (401, typically a misconfiguration being fixed). A
403 means the customer blocked the bot: failed, and the chat is marked unreachable. A 400 is
failed with the platform's error. Anything else (a timeout after the request went out, a
dropped connection, a bug in an adapter) may or may not have delivered the message: `unknown`,
never sent again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from telegram.error import InvalidToken

from bot.channels import (
    BadRequestError,
    Channel,
    ChannelError,
    RecipientBlockedError,
    RetryAfterError,
)
from bot.clock import Clock
from dialogs.types import Reply
from scheduler.claims import Claimed, RowUpdate
from scheduler.outbox import Status
from scheduler.triage import Ready

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # sends of one row (each retry followed a proven non-delivery)
MAX_BACKOFF = 300  # seconds before a message whose connection failed is tried again
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    ConnectionRefusedError,
    InvalidToken,  # the adapter reports it as a plain ChannelError; the cause says 401
)


@dataclass(frozen=True, slots=True)
class SendResult:
    ready: Ready
    update: RowUpdate
    pause_until: datetime | None = None  # the channel asked for a pause (429)
    blocked: bool = False  # the customer blocked the bot (403)


def proves_not_sent(error: BaseException) -> bool:
    """True when the error chain shows the request never left (no connection was made)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, _NOT_SENT):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def retry_or_fail(row: Claimed, attempts: int, at: datetime, reason: str) -> RowUpdate:
    if attempts >= MAX_ATTEMPTS:
        return RowUpdate(row.id, Status.FAILED, f"gave up after {attempts} tries; {reason}")
    return RowUpdate(row.id, Status.QUEUED, reason, None, at)


async def send_once(channel: Channel, ready: Ready, clock: Clock) -> SendResult:
    """Send one row; never raises for a failed delivery, the result says what it was."""
    row = ready.row
    attempts = row.attempts + 1
    try:
        delivered = await channel.send(ready.chat_id, Reply(row.text, row.buttons))
    except RetryAfterError as error:
        until = clock.now() + timedelta(seconds=max(error.seconds, 1.0))
        log.warning("%s asks to wait %.0f s (429); pausing", ready.channel, error.seconds)
        return SendResult(ready, retry_or_fail(row, attempts, until, f"429: {error}"), until)
    except RecipientBlockedError as error:
        update = RowUpdate(row.id, Status.FAILED, f"blocked: {error}")
        return SendResult(ready, update, blocked=True)
    except BadRequestError as error:
        log.error("%s refused outbox message %s: %s", ready.channel, row.id, error)
        return SendResult(ready, RowUpdate(row.id, Status.FAILED, f"refused: {error}"))
    except ChannelError as error:
        if proves_not_sent(error):
            later = clock.now() + timedelta(seconds=min(MAX_BACKOFF, 2**attempts))
            return SendResult(ready, retry_or_fail(row, attempts, later, f"not sent: {error}"))
        log.warning("outbox message %s: delivery uncertain: %s", row.id, error)
        return SendResult(ready, RowUpdate(row.id, Status.UNKNOWN, f"uncertain: {error}"))
    except Exception as error:
        # A bug in an adapter: whether the message went out is unknown, so never resend it.
        log.exception("outbox message %s: sending failed unexpectedly", row.id)
        return SendResult(ready, RowUpdate(row.id, Status.UNKNOWN, f"error: {error!r}"))
    return SendResult(ready, RowUpdate(row.id, Status.SENT, None, delivery_id=delivered))

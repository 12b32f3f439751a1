"""Fixtures for the scheduler: customers with chats, the Telegram channel on the fake server,
and a dispatcher driven by the test's ManualClock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import select
from telegram import Bot

from bot.channels.telegram import TelegramChannel
from bot.clock import ManualClock
from bot.config import Settings
from bot.storage.database import Database
from bot.storage.models import ChannelIdentity, Customer, OutboxMessage, ServiceRecord
from scheduler.dispatcher import Dispatcher
from scheduler.ratelimit import Limits
from tests.fakes.telegram_api import FakeTelegramAPI


async def serve(db: Database, clock: ManualClock, customer: int, kind: str, done: date) -> int:
    """A service record for `customer`, done on `done`; returns its id."""
    async with db.transaction() as session:
        row = ServiceRecord(
            customer_id=customer, kind=kind, performed_at=done, description="",
            created_at=clock.now(),
        )  # fmt: skip
        session.add(row)
        await session.flush()
        return row.id


async def add_customer(
    db: Database,
    now: datetime,
    *,
    chat: int | None = None,
    name: str | None = "Anna",
    language: str | None = "en",
    timezone: str | None = None,
    birthday: date | None = None,
    consent: bool = True,
    opted_out: bool = False,
    tags: list[str] | None = None,
    channel: str = "telegram",
    **fields: Any,
) -> int:
    """A customer (with a chat on `channel` when `chat` is given); returns the id."""
    async with db.transaction() as session:
        customer = Customer(
            name=name,
            language=language,
            timezone=timezone,
            birthday_month=birthday.month if birthday else None,
            birthday_day=birthday.day if birthday else None,
            birth_year=birthday.year if birthday and birthday.year > 1900 else None,
            marketing_consent=consent,
            marketing_opt_out_at=now if opted_out else None,
            tags=tags or [],
            preferences={},
            created_at=now,
            **fields,
        )
        session.add(customer)
        await session.flush()
        if chat is not None:
            session.add(
                ChannelIdentity(
                    channel=channel,
                    external_id=str(chat),
                    chat_id=str(chat),
                    customer_id=customer.id,
                    created_at=now,
                )
            )
        return customer.id


async def outbox_rows(db: Database) -> list[OutboxMessage]:
    async with db.sessions() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


@pytest.fixture
async def channel(
    telegram_api: FakeTelegramAPI, clock: ManualClock
) -> AsyncIterator[TelegramChannel]:
    """The real PTB client talking to the fake Bot API server."""
    bot = Bot(
        token=telegram_api.token,
        base_url=f"{telegram_api.url}/bot",
        base_file_url=f"{telegram_api.url}/file/bot",
    )
    async with bot:
        yield TelegramChannel(bot, clock)


@pytest.fixture
def dispatcher(
    db: Database, clock: ManualClock, settings: Settings, channel: TelegramChannel
) -> Dispatcher:
    return Dispatcher(db, clock, {"telegram": channel}, settings, limits=Limits.unlimited())

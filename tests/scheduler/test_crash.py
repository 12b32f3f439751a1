"""Killed mid-campaign: the campaign finishes after a restart and nobody gets it twice.

A real `concierge run` sends a campaign to the fake Bot API server, which holds each answer
back a little so that many sends are in flight; the process is SIGKILLed, started again, and
finishes. Rows caught mid-send are `unknown`, never sent again, and `campaign status` lists them.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from bot.clock import SystemClock
from bot.config import Settings
from bot.storage.database import Database
from bot.storage.models import ChannelIdentity, Customer, OutboxMessage
from scheduler.campaigns import create_campaign
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.scheduler.processes import BotProcess, shared_database, wait_for

CUSTOMERS = 300
FIRST_CHAT = 5001


async def populate(database: Database, customers: int) -> int:
    """Customers with Telegram chats and marketing consent, and a campaign due now."""
    now = SystemClock().now()
    async with database.transaction() as session:
        for n in range(customers):
            customer = Customer(name=f"Customer {n}", marketing_consent=True, tags=[],
                                preferences={}, created_at=now)  # fmt: skip
            session.add(customer)
            await session.flush()
            chat = str(FIRST_CHAT + n)
            await session.execute(
                insert(ChannelIdentity).values(
                    channel="telegram",
                    external_id=chat,
                    chat_id=chat,
                    customer_id=customer.id,
                    created_at=now,
                )
            )
        settings = Settings(_env_file=None)
        campaign = await create_campaign(
            session, text="Hello {name}, our winter check is here.", segment="consent=yes",
            send_at=now - timedelta(seconds=1), event_on=None, name="winter", settings=settings,
            now=now,
        )  # fmt: skip
        return campaign.id


async def unfinished(database: Database) -> int:
    async with database.sessions() as session:
        query = select(func.count()).where(OutboxMessage.status.in_(["queued", "sending"]))
        return (await session.scalar(query)) or 0


async def rows(database: Database) -> list[tuple[str, str | None, str | None]]:
    async with database.sessions() as session:
        result = await session.execute(
            select(OutboxMessage.status, OutboxMessage.chat_id, OutboxMessage.reason)
        )
        return [tuple(row) for row in result]  # type: ignore[misc]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_a_campaign_killed_mid_send_finishes_without_duplicates(
    kind: str, tmp_path: Path, telegram_api: FakeTelegramAPI
) -> None:
    telegram_api.send_delay = 0.3  # every answer takes a while: sends are in flight at the kill
    async with shared_database(kind, tmp_path) as (url, database):
        campaign_id = await populate(database, CUSTOMERS)
        first = await BotProcess("first", tmp_path, url, telegram_api).start()
        try:
            await wait_for(lambda: len(telegram_api.sent) >= 60, "the first sends")
        finally:
            await first.kill()
        delivered_before_restart = len(telegram_api.sent)
        await asyncio.sleep(0.5)  # answers to the dead process's requests are lost

        async def finished() -> bool:
            return await unfinished(database) == 0

        second = await BotProcess("second", tmp_path, url, telegram_api).start()
        try:
            await wait_for(lambda: second.logged("runs the scheduler"), "the restart")
            await wait_for(finished, "the campaign to finish", limit=60)
        finally:
            await second.stop()

        received = Counter(message.chat_id for message in telegram_api.sent)
        assert max(received.values()) == 1, "a customer got the campaign twice"
        outcome = await rows(database)
        by_status = Counter(status for status, _, _ in outcome)
        assert set(by_status) <= {"sent", "unknown"}
        assert sum(by_status.values()) == CUSTOMERS
        assert by_status["unknown"] >= 1, "the kill caught no send in flight"
        sent_chats = {int(chat) for status, chat, _ in outcome if status == "sent" and chat}
        unknown_chats = {int(chat) for status, chat, _ in outcome if status == "unknown" and chat}
        assert sent_chats <= set(received)  # every `sent` row did arrive ...
        assert set(received) <= sent_chats | unknown_chats  # ... and nothing else arrived
        assert len(received) > delivered_before_restart  # the restart finished the job

        status = await _cli(url, tmp_path, "campaign", "status", str(campaign_id))
        assert "Unknown: may or may not have arrived; never sent again" in " ".join(status.split())
        for chat in sorted(unknown_chats)[:3]:
            assert str(chat) in status


async def _cli(url: str, folder: Path, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from bot.cli import app; app()", *args,
        cwd=folder, env={"CONCIERGE_DATABASE_URL": url, "COLUMNS": "300", "PATH": "/usr/bin"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output.decode()

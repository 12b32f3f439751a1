"""Broadcast throughput: a campaign to N customers through the dispatcher and the real PTB client.

    .venv/bin/python bench/broadcast.py [--customers 10000] [--unlimited] [--postgres URL]

The fake Bot API server (tests/fakes/telegram_api.py) runs in a child process and enforces
Telegram's flood limits (30 messages/s overall, 1/s per chat, 20/min per group), answering 429
with retry_after when one is exceeded. The campaign is queued in a fresh SQLite file (or a
throwaway PostgreSQL schema) and sent by the dispatcher at Telegram's rate. Prints messages/s
as the server saw them, the 429s, duplicates, losses and the ratio to the 30 msg/s ceiling.

With --unlimited nothing is limited (Telegram's paid broadcasts allow 1000/s): it measures the
dispatcher's own ceiling twice, with a channel that accepts every message at once (claims,
policy, limiter and commits only) and through PTB to the unlimited fake server (which on a
small machine measures mostly the HTTP client and server sharing the CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.fakes

import asyncpg
from pydantic import SecretStr
from sqlalchemy import func, insert, select

from bot.channels import Channel
from bot.clock import SystemClock
from bot.config import Settings
from bot.storage.database import Database
from bot.storage.models import ChannelIdentity, Customer, OutboxMessage
from dialogs.types import Reply
from scheduler.campaigns import create_campaign, queue_campaign
from scheduler.dispatcher import Dispatcher, DispatchStats
from scheduler.outbox import FINAL
from scheduler.ratelimit import Limits
from scheduler.telegram_sender import dispatch_channels
from tests.fakes.telegram_api import FakeTelegramAPI, TelegramLimits

CEILING = 30.0  # Telegram's free broadcast rate, messages/s
TOKEN = "123456789:TEST-fake-token"


def serve_fake(pipe: Connection, limited: bool) -> None:
    """The child process: the fake server until told to stop, then what it received."""

    async def main() -> None:
        api = FakeTelegramAPI(token=TOKEN, limits=TelegramLimits() if limited else None)
        arrivals: list[float] = []
        accept = api._handlers["sendmessage"]

        async def timed(params: dict[str, Any]) -> dict[str, Any]:
            result = await accept(params)
            arrivals.append(time.monotonic())
            return result

        api._handlers["sendmessage"] = timed
        async with api.running():
            pipe.send(api.url)
            await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        per_chat = Counter(message.chat_id for message in api.sent)
        pipe.send(
            {
                "chats": set(per_chat),
                "received": len(api.sent),
                "duplicates": sum(n - 1 for n in per_chat.values()),
                "rate_limited": api.rate_limited,
                "span": arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0,
                "busiest_second": busiest_second(arrivals),
            }
        )

    asyncio.run(main())


def busiest_second(times: list[float]) -> int:
    most, start = 0, 0
    for end, moment in enumerate(times):
        while times[start] <= moment - 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


class NullChannel:
    """Accepts every message at once: what is left to measure is the dispatcher itself."""

    name = "telegram"

    def __init__(self) -> None:
        self.chats: list[str] = []

    async def send(self, chat_id: str, reply: Reply) -> str:
        self.chats.append(chat_id)
        return str(len(self.chats))


@dataclass
class Run:
    seconds: float
    stats: DispatchStats
    statuses: Counter[str]


@asynccontextmanager
async def fresh_database(postgres: str | None) -> AsyncIterator[Database]:
    if postgres is None:
        with tempfile.TemporaryDirectory() as folder:
            database = Database(f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}")
            try:
                yield database
            finally:
                await database.dispose()
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    plain = postgres.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(plain)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    database = Database(postgres, connect_args={"server_settings": {"search_path": schema}})
    try:
        yield database
    finally:
        await database.dispose()
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


async def populate(database: Database, customers: int, settings: Settings) -> None:
    """Customers with a Telegram chat each (chat id = customer id) and a queued campaign."""
    now = SystemClock().now()
    await database.upgrade()
    async with database.transaction() as session:
        for first in range(1, customers + 1, 5_000):
            numbers = range(first, min(first + 5_000, customers + 1))
            await session.execute(
                insert(Customer),
                [
                    {"name": f"Customer {n}", "language": "zh" if n % 3 == 0 else "en",
                     "tags": [], "preferences": {}, "marketing_consent": True, "on_file": True,
                     "visit_count": 0, "created_at": now}
                    for n in numbers
                ],
            )  # fmt: skip
            await session.execute(
                insert(ChannelIdentity),
                [
                    {"channel": "telegram", "external_id": str(n), "chat_id": str(n),
                     "customer_id": n, "created_at": now}
                    for n in numbers
                ],
            )  # fmt: skip
        campaign = await create_campaign(
            session, text="Hello {name}! Our spring offer is here.", segment="",
            send_at=now, event_on=None, name="bench", settings=settings, now=now,
        )  # fmt: skip
        await queue_campaign(session, campaign, settings, now)


async def broadcast(
    database: Database, settings: Settings, channel: Channel | None, limits: Limits | None
) -> Run:
    """Send everything queued; returns how long it took and what became of the rows."""
    clock = SystemClock()
    async with dispatch_channels(settings, clock) as channels:
        dispatcher = Dispatcher(
            database, clock, {"telegram": channel} if channel else channels, settings, limits=limits
        )
        started = time.perf_counter()
        while True:
            await dispatcher.dispatch_due()
            async with database.sessions() as session:
                query = select(func.count()).where(
                    OutboxMessage.status.not_in([s.value for s in FINAL])
                )
                if not await session.scalar(query):
                    break
            await asyncio.sleep(0.2)  # a 429 pause not over yet
        seconds = time.perf_counter() - started
    async with database.sessions() as session:
        rows = await session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        )
        statuses = Counter({status: count for status, count in rows})
    return Run(seconds, dispatcher.stats, statuses)


def settings_for(database: Database, url: str, unlimited: bool) -> Settings:
    return Settings(
        _env_file=None,
        database_url=database.engine.url.render_as_string(False),
        telegram_token=SecretStr(TOKEN),
        telegram_api_url=url,
        quiet_hours_start="00:00",  # the benchmark runs at any hour
        quiet_hours_end="00:00",
        dispatcher_batch=1_000 if unlimited else 200,
        dispatcher_concurrency=32 if unlimited else 100,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--unlimited", action="store_true", help="the dispatcher's own ceiling")
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL instead of SQLite")
    args = parser.parse_args()
    store = "PostgreSQL" if args.postgres else "SQLite"
    limits = Limits.unlimited() if args.unlimited else None

    if args.unlimited:
        async with fresh_database(args.postgres) as database:
            settings = settings_for(database, "http://127.0.0.1:9", unlimited=True)
            await populate(database, args.customers, settings)
            null = NullChannel()
            run = await broadcast(database, settings, null, limits)
        print(f"dispatcher alone, {args.customers} messages, {store}, no limits:")
        print(f"  sends/s         {len(null.chats) / run.seconds:.0f}  ({run.seconds:.2f} s)")
        print(f"  duplicates      {len(null.chats) - len(set(null.chats))}")
        print(f"  losses          {args.customers - len(set(null.chats))}  ({dict(run.statuses)})")

    here, there = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(
        target=serve_fake, args=(there, not args.unlimited)
    )
    server.start()
    try:
        url = here.recv()
        async with fresh_database(args.postgres) as database:
            settings = settings_for(database, url, args.unlimited)
            await populate(database, args.customers, settings)
            run = await broadcast(database, settings, None, limits)
    finally:
        here.send("stop")
        seen = here.recv()
        server.join()
    rate = seen["received"] / seen["span"] if seen["span"] else float("nan")
    mode = "no limits" if args.unlimited else "Telegram's limits enforced"
    print(f"PTB client -> fake Bot API server, {args.customers} messages, {store}, {mode}:")
    print(f"  messages/s      {rate:.1f}  ({seen['received']} in {seen['span']:.1f} s)")
    if not args.unlimited:
        print(f"  ratio to 30/s   {rate / CEILING:.3f}")
        print(f"  busiest second  {seen['busiest_second']} messages")
    print(f"  429s received   {run.stats.rate_limited}")
    print(f"  duplicates      {seen['duplicates']}")
    print(f"  losses          {args.customers - len(seen['chats'])}  ({dict(run.statuses)})")


if __name__ == "__main__":
    asyncio.run(main())

"""Inbound throughput: simulated customers chatting through the engine at once.

    .venv/bin/python bench/inbound.py [--customers 200] [--messages 10] [--postgres URL]

Two runs per database (a fresh SQLite file and, when reachable, PostgreSQL in a throwaway
schema):

- saturation: every customer sends its messages one after another, waiting for each answer as a
  person does, all customers at once. Prints the messages/s the engine sustains; latencies here
  are mostly time spent queueing behind other customers (Little's law), so they are shown but
  are not the processing latency.
- latency: messages arrive at a steady --rate (open loop, below saturation), spread over the
  customers. Prints p50/p95/p99 from a message reaching the engine to its replies committed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from bot.clock import SystemClock
from bot.config import Settings
from bot.engine import Engine
from bot.storage.database import Database
from dialogs.types import Inbound

SCRIPT = ["hi", "Anna", "What time do you open on Saturday?", "thanks", "Do you fix brakes?"]


async def customer(engine: Engine, user: str, messages: int, latencies: list[float]) -> None:
    clock = engine.clock
    for i in range(messages):
        text = SCRIPT[i % len(SCRIPT)]
        started = time.perf_counter()
        await engine.handle(Inbound("bench", user, user, text, clock.now(), display_name=user))
        latencies.append(time.perf_counter() - started)


async def arrival(engine: Engine, user: str, text: str, latencies: list[float]) -> None:
    started = time.perf_counter()
    await engine.handle(Inbound("bench", user, user, text, engine.clock.now(), display_name=user))
    latencies.append(time.perf_counter() - started)


def report(label: str, mode: str, latencies: list[float], elapsed: float) -> None:
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"{label:<11} {mode:<17} {len(latencies):>6} msgs {len(latencies) / elapsed:6.0f} msg/s  "
        f"p50 {cuts[49] * 1000:7.1f} ms  p95 {cuts[94] * 1000:7.1f} ms  "
        f"p99 {cuts[98] * 1000:7.1f} ms"
    )


async def run(label: str, database: Database, customers: int, messages: int, rate: float) -> None:
    await database.upgrade()
    engine = Engine(database, SystemClock(), Settings(_env_file=None))
    await customer(engine, "warm-up", 3, [])  # first-use costs are not what we measure
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(
        *(customer(engine, f"c{n}", messages, latencies) for n in range(customers))
    )
    report(label, "saturation", latencies, time.perf_counter() - started)

    latencies, tasks = [], []
    total = customers * messages
    started = time.perf_counter()
    for k in range(total):
        delay = started + k / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        text = SCRIPT[(k // customers) % len(SCRIPT)]
        tasks.append(asyncio.create_task(arrival(engine, f"r{k % customers}", text, latencies)))
    await asyncio.gather(*tasks)
    report(label, f"latency @{rate:.0f}/s", latencies, time.perf_counter() - started)
    await database.dispose()


async def postgres_schema(url: str) -> tuple[str, dict[str, Any]] | None:
    plain = url.replace("postgresql+asyncpg://", "postgresql://")
    try:
        connection = await asyncpg.connect(plain, timeout=3)
    except (OSError, asyncpg.PostgresError) as error:
        print(f"postgresql  skipped: {error}")
        return None
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    await connection.execute(f'CREATE SCHEMA "{schema}"')
    await connection.close()
    return schema, {"connect_args": {"server_settings": {"search_path": schema}}}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--messages", type=int, default=10, help="messages per customer")
    parser.add_argument("--rate", type=float, default=200, help="arrivals/s in the latency run")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "CONCIERGE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    print(f"{args.customers} customers x {args.messages} messages, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        await run("sqlite", Database(url), args.customers, args.messages, args.rate)
    found = await postgres_schema(args.postgres)
    if found is not None:
        schema, options = found
        try:
            database = Database(args.postgres, **options)
            await run("postgresql", database, args.customers, args.messages, args.rate)
        finally:
            plain = args.postgres.replace("postgresql+asyncpg://", "postgresql://")
            connection = await asyncpg.connect(plain)
            await connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
            await connection.close()


if __name__ == "__main__":
    asyncio.run(main())

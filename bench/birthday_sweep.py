"""Birthday sweep: how long finding today's birthdays takes among 1 000 000 customers.

    .venv/bin/python bench/birthday_sweep.py [--customers 1000000] [--postgres URL] [--runs 20]

Fills a fresh SQLite file and (when reachable) a throwaway PostgreSQL schema with customers,
each with a birthday, a time zone and a Telegram chat, then times `due_birthdays` - the query
the birthday job runs every few minutes - with the (birthday_month, birthday_day) index the
schema has, and once more without it for comparison. Prints the median and the slowest run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from sqlalchemy import text

from bot.config import Settings
from bot.storage.database import Database
from scheduler.birthdays import due_birthdays

NOW = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)  # 09:00 has passed in Europe and Asia
ZONES = [None, None, "Asia/Shanghai", "Europe/London", "America/Los_Angeles", "Asia/Tokyo"]
INDEX = "ix_customers_birthday_month_birthday_day"


def people(count: int) -> list[tuple[object, ...]]:
    """(id, name, language, timezone, month, day) for `count` customers, birthdays spread."""
    random.seed(7)
    rows = []
    for n in range(1, count + 1):
        month = random.randint(1, 12)
        day = random.randint(1, 29 if month == 2 else 30 if month in (4, 6, 9, 11) else 31)
        rows.append((n, f"Customer {n}", random.choice(["en", "zh"]), random.choice(ZONES),
                     month, day))  # fmt: skip
    return rows


async def timed(database: Database, settings: Settings, runs: int) -> tuple[float, float, int]:
    """Median and worst milliseconds of `due_birthdays`, and how many it found."""
    found, times = 0, []
    async with database.sessions() as session:
        await due_birthdays(session, NOW, settings)  # warm caches and the connection
        for _ in range(runs):
            started = time.perf_counter()
            found = len(await due_birthdays(session, NOW, settings))
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times), found


async def sqlite_figures(count: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sweep.db"
        database = Database(f"sqlite+aiosqlite:///{path}")
        await database.upgrade()
        started = time.perf_counter()
        with sqlite3.connect(path) as connection:
            rows = people(count)
            connection.executemany(
                "INSERT INTO customers (id, name, language, timezone, birthday_month,"
                " birthday_day, tags, preferences, marketing_consent, on_file, created_at,"
                " visit_count) VALUES (?, ?, ?, ?, ?, ?, '[]', '{}', 1, 1,"
                " '2026-01-01 00:00:00', 0)",
                rows,
            )
            connection.executemany(
                "INSERT INTO channel_identities (channel, external_id, chat_id, customer_id,"
                " created_at) VALUES ('telegram', ?, ?, ?, '2026-01-01 00:00:00')",
                ((str(r[0]), str(r[0]), r[0]) for r in rows),
            )
            connection.execute("ANALYZE")
        del rows
        gc.collect()  # a million loaded tuples would make the timings measure the GC
        print(f"SQLite: {count} customers loaded in {time.perf_counter() - started:.0f} s")
        settings = Settings(_env_file=None, database_url=f"sqlite:///{path}")
        report("SQLite", "with the index", *await timed(database, settings, runs))
        async with database.engine.begin() as connection:
            await connection.execute(text(f"DROP INDEX {INDEX}"))
        report("SQLite", "without it", *await timed(database, settings, max(3, runs // 5)))
        await database.dispose()


async def postgres_figures(url: str, count: int, runs: int) -> None:
    plain = url.replace("postgresql+asyncpg://", "postgresql://")
    try:
        admin = await asyncpg.connect(plain, timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        print(f"PostgreSQL: skipped ({error})")
        return
    schema = f"sweep_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    database = Database(url, connect_args={"server_settings": {"search_path": schema}})
    try:
        await database.upgrade()
        started = time.perf_counter()
        rows = people(count)
        created = datetime(2026, 1, 1, tzinfo=UTC)
        await admin.copy_records_to_table(
            "customers", schema_name=schema,
            columns=["id", "name", "language", "timezone", "birthday_month", "birthday_day",
                     "tags", "preferences", "marketing_consent", "on_file", "created_at",
                     "visit_count"],
            records=[(*r, "[]", "{}", True, True, created, 0) for r in rows],
        )  # fmt: skip
        await admin.copy_records_to_table(
            "channel_identities", schema_name=schema,
            columns=["channel", "external_id", "chat_id", "customer_id", "created_at"],
            records=[("telegram", str(r[0]), str(r[0]), r[0], created) for r in rows],
        )  # fmt: skip
        await admin.execute(f'ANALYZE "{schema}".customers, "{schema}".channel_identities')
        del rows
        gc.collect()  # a million loaded tuples would make the timings measure the GC
        print(f"PostgreSQL: {count} customers loaded in {time.perf_counter() - started:.0f} s")
        settings = Settings(_env_file=None, database_url=url)
        report("PostgreSQL", "with the index", *await timed(database, settings, runs))
        await admin.execute(f'DROP INDEX "{schema}".{INDEX}')
        report("PostgreSQL", "without it", *await timed(database, settings, max(3, runs // 5)))
    finally:
        await database.dispose()
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


def report(store: str, how: str, median: float, worst: float, found: int) -> None:
    print(f"  {store} {how}: median {median:.1f} ms, slowest {worst:.1f} ms ({found} birthdays)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test", metavar="URL"
    )
    args = parser.parse_args()
    await sqlite_figures(args.customers, args.runs)
    await postgres_figures(args.postgres, args.customers, args.runs)


if __name__ == "__main__":
    asyncio.run(main())

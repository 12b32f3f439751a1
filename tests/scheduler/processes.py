"""Real `concierge run` processes for the crash and takeover tests, and databases they share.

A `BotProcess` is the command line a business runs, started as a child process against the fake
Bot API server of the test; `kill()` is SIGKILL, nothing gets to clean up. `shared_database`
gives a database a child process can open by URL: a SQLite file, or a PostgreSQL database of
its own (a URL cannot carry the test schema's search_path to asyncpg).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from bot.storage.database import Database
from tests.conftest import POSTGRES_URL, REQUIRE_POSTGRES
from tests.fakes.telegram_api import FakeTelegramAPI

DEADLINE = 40.0  # seconds any one wait in these tests may take before failing


class BotProcess:
    """`concierge run` in a child process, its log in a file."""

    def __init__(self, name: str, folder: Path, database_url: str, api: FakeTelegramAPI) -> None:
        self.name = name
        self.folder = folder
        self.log = folder / f"{name}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CONCIERGE_")} | {
            "CONCIERGE_DATABASE_URL": database_url,
            "CONCIERGE_TELEGRAM_TOKEN": api.token,
            "CONCIERGE_TELEGRAM_API_URL": api.url,
            "CONCIERGE_TELEGRAM_POLL_TIMEOUT": "1",
            "CONCIERGE_WEB_PORT": "0",
            "CONCIERGE_QUIET_HOURS_START": "00:00",  # the test runs at any hour of the day
            "CONCIERGE_QUIET_HOURS_END": "00:00",
            "CONCIERGE_RATE_LIMIT_PER_SECOND": "100",
            "CONCIERGE_DISPATCHER_INTERVAL": "0.2",
            "CONCIERGE_SWEEP_INTERVAL": "PT1S",
            "CONCIERGE_LEADER_RETRY_INTERVAL": "0.5",
            "COLUMNS": "400",  # one log record per line
        }
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> BotProcess:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "from bot.cli import app; app()", "run",
                cwd=self.folder, env=self.env, stdout=log, stderr=log,
            )  # fmt: skip
        return self

    def logged(self, text: str) -> bool:
        return text in self.log.read_text(encoding="utf-8", errors="replace")

    async def kill(self) -> None:
        """SIGKILL: no handler runs, connections are simply cut."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM, as a service manager stops it, and wait for it to end."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(20):
                await self.process.wait()
        except TimeoutError:
            await self.kill()


async def wait_for(condition: Callable[[], object], what: str, limit: float = DEADLINE) -> float:
    """Poll `condition` (sync or async) until it is true; returns the seconds it took."""
    started = time.monotonic()
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - started
        if time.monotonic() - started > limit:
            raise AssertionError(f"timed out after {limit:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def shared_database(kind: str, folder: Path) -> AsyncIterator[tuple[str, Database]]:
    """(URL, migrated Database) that child processes can open too."""
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / 'shared.db'}"
        database = Database(url)
        await database.upgrade()
        try:
            yield url, database
        finally:
            await database.dispose()
        return
    plain = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
    name = f"concierge_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        admin = await asyncpg.connect(plain, timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        if REQUIRE_POSTGRES:
            raise
        pytest.skip(f"PostgreSQL not reachable: {error}")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    database = Database(url)
    try:
        await database.upgrade()
        yield url, database
    finally:
        await database.dispose()
        admin = await asyncpg.connect(plain, timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

"""The async engine, sessions and migrations for SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

log = logging.getLogger(__name__)


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """An async engine; SQLite gets WAL, enforced foreign keys and a busy timeout.

    SQLite transactions start with BEGIN IMMEDIATE: a writer then waits for another process's
    write lock instead of failing when it upgrades a read transaction ("database is locked").
    """
    if url.startswith("sqlite"):
        connect_args = {"timeout": 30, **options.pop("connect_args", {})}
        engine = create_async_engine(url, connect_args=connect_args, **options)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin_immediate(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(url, pool_pre_ping=True, **options)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    """Alembic's configuration pointing at the migrations shipped inside the package."""
    config = Config()
    location = resources.files("bot.storage").joinpath("migrations")
    config.set_main_option("script_location", str(location))
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply the migrations up to `revision` (all of them by default)."""

    def _run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(_run)
    log.debug("database at %s is at revision %s", engine.url.render_as_string(), revision)


class StorageUnavailableError(RuntimeError):
    """The database cannot be reached or is locked; the work is safe to retry later."""


class Database:
    """One database: its engine, sessions and the unit of work (`transaction`).

    SQLite admits one writer at a time, so transactions of this process queue on a lock
    (in arrival order) instead of spinning on SQLite's busy handler.
    """

    def __init__(self, url: str, **options: Any) -> None:
        self.options = options  # kept so a second Database can reach the very same place
        self.engine = create_engine(url, **dict(options))
        self.sessions = session_factory(self.engine)
        self.dialect = self.engine.dialect.name
        self._writer = asyncio.Lock() if self.dialect == "sqlite" else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on exit, rolled back on error."""
        async with self._writer or nullcontext(), self.sessions() as session, session.begin():
            yield session

    async def upgrade(self) -> None:
        await upgrade(self.engine)

    async def dispose(self) -> None:
        await self.engine.dispose()

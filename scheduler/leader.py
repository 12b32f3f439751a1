"""Which process runs the scheduler and the dispatcher: the one holding the leader lock.

On PostgreSQL it is a session-level advisory lock (`pg_try_advisory_lock`) held on a connection
of its own: when the holding process dies, its connection closes, PostgreSQL drops the lock and
another process's next try takes it. TCP keepalives on that connection make the server notice a
vanished host within about half a minute, too. The lock's connection is closed, never returned
to the pool, when the role is given up, so no other user of the pool can inherit the lock.
On SQLite an exclusive `flock` on a file next to the database plays the same part, so a
`concierge campaign send --wait` and a running bot never both dispatch.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.locks import advisory_key
from bot.storage.database import Database

log = logging.getLogger(__name__)

# Seconds: idle time before the server probes the lock's connection, probe interval, probes.
_KEEPALIVES = {"tcp_keepalives_idle": 10, "tcp_keepalives_interval": 5, "tcp_keepalives_count": 3}


class LeaderLock(Protocol):
    async def acquire(self) -> bool:
        """Take the role if nobody holds it; True when this process holds it now."""
        ...

    async def still_held(self) -> bool:
        """False once the role is lost (e.g. the lock's database connection broke)."""
        ...

    async def release(self) -> None: ...


class PostgresLeaderLock:
    def __init__(self, database: Database, name: str) -> None:
        self.database = database
        self.key = advisory_key(name)
        self._connection: AsyncConnection | None = None

    async def acquire(self) -> bool:
        if self._connection is not None:
            return await self.still_held()
        try:
            connection = await self.database.engine.connect()
        except (SQLAlchemyError, OSError) as error:
            log.warning("leader lock: cannot reach the database: %s", error)
            return False
        try:
            for setting, value in _KEEPALIVES.items():
                await connection.execute(text(f"SET {setting} = {int(value)}"))
            taken = bool(await connection.scalar(select(func.pg_try_advisory_lock(self.key))))
            await connection.commit()  # the lock is the session's; no transaction stays open
        except (SQLAlchemyError, OSError) as error:
            log.warning("leader lock: %s", error)
            taken = False
        if not taken:
            await _discard(connection)
            return False
        self._connection = connection
        return True

    async def still_held(self) -> bool:
        if self._connection is None:
            return False
        try:
            await self._connection.scalar(select(1))
            await self._connection.commit()
        except (SQLAlchemyError, OSError) as error:
            log.error("leader lock: its database connection broke (%s); giving up the role", error)
            await self.release()
            return False
        return True

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await _discard(connection)  # closing the session releases the lock


async def _discard(connection: AsyncConnection) -> None:
    try:
        await connection.invalidate()
        await connection.close()
    except (DBAPIError, SQLAlchemyError, OSError) as error:
        log.debug("leader lock: closing its connection: %s", error)


class FileLeaderLock:
    """An exclusive `flock` on a file: the SQLite stand-in for the advisory lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    async def acquire(self) -> bool:
        if self._file is not None:
            return True
        import fcntl

        handle = self.path.open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    async def still_held(self) -> bool:
        return self._file is not None

    async def release(self) -> None:
        handle, self._file = self._file, None
        if handle is not None:
            handle.close()  # closing the file drops the flock


class SoleLeader:
    """Always the leader: an in-memory database is this process's alone."""

    async def acquire(self) -> bool:
        return True

    async def still_held(self) -> bool:
        return True

    async def release(self) -> None:
        return None


def leader_lock(database: Database, name: str) -> LeaderLock:
    """The leader lock that fits the database."""
    if database.dialect == "postgresql":
        return PostgresLeaderLock(database, name)
    path = database.engine.url.database
    if not path or path == ":memory:" or os.name != "posix":
        return SoleLeader()
    return FileLeaderLock(Path(f"{path}.{name}.lock"))

"""Per-customer serialization: one message of a customer at a time, in arrival order."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession


class KeyedLocks:
    """An asyncio lock per key, created on demand and dropped when nobody holds or waits.

    asyncio.Lock wakes waiters first-in first-out, so holders follow the order of arrival.
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


def advisory_key(key: str) -> int:
    """A stable signed 64-bit number for a PostgreSQL advisory lock."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


async def lock_across_processes(session: AsyncSession, key: str) -> None:
    """Hold a PostgreSQL transaction-level advisory lock on `key` until the transaction ends.

    Several processes sharing one PostgreSQL then also handle a customer one message at a time.
    """
    await session.execute(select(func.pg_advisory_xact_lock(advisory_key(key))))

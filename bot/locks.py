"""Per-customer serialization: one message of a customer at a time, in arrival order."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager

from sqlalchemy import text
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

    @asynccontextmanager
    async def hold_all(self, keys: Iterable[str]) -> AsyncIterator[None]:
        """Hold the lock of every key; taken in sorted order, so two holders of overlapping
        sets cannot wait on each other."""
        async with AsyncExitStack() as stack:
            for key in sorted(set(keys)):
                await stack.enter_async_context(self.hold(key))
            yield

    def __len__(self) -> int:
        return len(self._locks)


def advisory_key(key: str) -> int:
    """A stable signed 64-bit number for a PostgreSQL advisory lock."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


_LOCK_ALL = text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k")


async def lock_across_processes(session: AsyncSession, *keys: str) -> None:
    """Hold PostgreSQL transaction-level advisory locks on `keys` until the transaction ends.

    Several processes sharing one PostgreSQL then also handle a customer one message at a time.
    One statement takes them all, in sorted order (unnest keeps the array's order), so two
    processes locking overlapping sets cannot deadlock.
    """
    numbers = sorted({advisory_key(key) for key in keys})
    await session.execute(_LOCK_ALL, {"keys": numbers})

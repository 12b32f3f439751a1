"""The schema: migrations build exactly the tables the models describe, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from bot.storage.database import Database
from bot.storage.models import Base, ChannelIdentity, Customer


async def test_migrations_match_the_models(db: Database) -> None:
    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with db.engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_times_come_back_as_aware_utc(db: Database) -> None:
    shanghai = datetime(2026, 5, 1, 18, 0, tzinfo=timezone(timedelta(hours=8)))
    async with db.transaction() as session:
        session.add(Customer(name="A", created_at=shanghai, tags=[], preferences={}))
    async with db.sessions() as session:
        stored = await session.scalar(select(Customer.created_at))
    assert stored == datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    assert stored is not None
    assert stored.utcoffset() == timedelta(0)


async def test_naive_times_are_refused(db: Database) -> None:
    with pytest.raises(Exception, match="naive datetimes"):
        async with db.transaction() as session:
            session.add(
                Customer(name="A", created_at=datetime(2026, 5, 1), tags=[], preferences={})
            )


async def test_one_channel_identity_per_platform_user(db: Database) -> None:
    now = datetime(2026, 5, 1, tzinfo=UTC)
    async with db.transaction() as session:
        customer = Customer(name="A", created_at=now, tags=[], preferences={})
        session.add(customer)
        await session.flush()
        session.add(ChannelIdentity(channel="telegram", external_id="7", chat_id="7",
                                    customer_id=customer.id, created_at=now))  # fmt: skip
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            session.add(ChannelIdentity(channel="telegram", external_id="7", chat_id="8",
                                        customer_id=customer.id, created_at=now))  # fmt: skip

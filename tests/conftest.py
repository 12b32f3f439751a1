"""Shared fixtures: the clock, the databases (SQLite and PostgreSQL), settings and the engine.

Every test that asks for `db` runs twice, once on a fresh SQLite file and once on PostgreSQL
(CONCIERGE_TEST_POSTGRES_URL, default the local `test` database). Each pytest process works in
its own PostgreSQL schema, so parallel runs do not see each other's rows. Without a reachable
PostgreSQL the PostgreSQL half is skipped locally, and fails when
CONCIERGE_TEST_REQUIRE_POSTGRES=1 (as `.ci/run` sets).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from click.testing import Result
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text
from typer.testing import CliRunner

from bot.cli import app as cli_app
from bot.clock import ManualClock
from bot.config import Settings
from bot.engine import Engine
from bot.storage.database import Database
from bot.storage.models import Base
from dialogs.faq import Knowledge
from knowledge.encoder import EmbeddingCache
from knowledge.out_of_scope import Source, build_bot_matcher
from knowledge.samples import car_workshop

pytest_plugins = ["tests.fakes.telegram_api"]

# `HYPOTHESIS_PROFILE=thorough pytest ...` runs every property test with many more examples
# (those that set max_examples themselves keep theirs): a hunt for rare failures, not for CI.
hypothesis_settings.register_profile("thorough", max_examples=2_000)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

POSTGRES_URL = os.environ.get(
    "CONCIERGE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("CONCIERGE_TEST_REQUIRE_POSTGRES") == "1"
START = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when the test says so; starts 2026-05-01 10:00 UTC."""
    return ManualClock(START)


async def _postgres_schema() -> str | None:
    plain = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
    schema = f"t_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        connection = await asyncpg.connect(plain, timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        if REQUIRE_POSTGRES:
            raise RuntimeError(
                f"PostgreSQL required but unreachable at {plain}: {error}"
            ) from error
        return None
    try:
        await connection.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await connection.close()
    return schema


async def _drop_schema(schema: str) -> None:
    plain = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(plain, timeout=5)
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await connection.close()


@pytest.fixture(scope="session")
async def postgres() -> AsyncIterator[dict[str, Any] | None]:
    """Connection options for this session's PostgreSQL schema, migrated to head once."""
    schema = await _postgres_schema()
    if schema is None:
        yield None
        return
    options = {"connect_args": {"server_settings": {"search_path": schema}}}
    database = Database(POSTGRES_URL, **options)
    await database.upgrade()
    await database.dispose()
    yield {"url": POSTGRES_URL, "schema": schema, "options": options}
    await _drop_schema(schema)


async def _truncate_all(database: Database) -> None:
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    async with database.engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(
    request: pytest.FixtureRequest, tmp_path: Path, postgres: dict[str, Any] | None
) -> AsyncIterator[Database]:
    """A migrated, empty database: a new SQLite file, or this session's PostgreSQL schema."""
    if request.param == "sqlite":
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'concierge.db'}")
        await database.upgrade()
    else:
        if postgres is None:
            pytest.skip("PostgreSQL not reachable (set CONCIERGE_TEST_POSTGRES_URL)")
        database = Database(postgres["url"], **postgres["options"])
        await _truncate_all(database)
    yield database
    await database.dispose()


@pytest.fixture
def settings(db: Database) -> Settings:
    """Settings as a fresh install has them, pointing at the test database."""
    return Settings(_env_file=None, database_url=db.engine.url.render_as_string(False))


@pytest.fixture
def engine(db: Database, clock: ManualClock, settings: Settings) -> Engine:
    return Engine(db, clock, settings)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding cache folder for the session's knowledge bases."""
    return Path(tmp_path_factory.mktemp("faq-cache"))


@pytest.fixture(scope="session")
def workshop(cache_dir: Path) -> Knowledge:
    """The shipped sample KB, indexed once for the whole session as the bot indexes it (real
    models, offline, with the default out-of-scope set)."""
    base = car_workshop()
    matcher, chosen = build_bot_matcher(base, cache=EmbeddingCache(cache_dir))
    assert chosen.source is Source.DEFAULT
    return Knowledge(base, matcher)


@pytest.fixture
def faq_engine(db: Database, clock: ManualClock, settings: Settings, workshop: Knowledge) -> Engine:
    """The engine answering from the sample knowledge base."""
    return Engine(db, clock, settings, knowledge=lambda: workshop)


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean working directory for the CLI: its own SQLite file, no inherited settings."""
    for name in list(os.environ):
        if name.startswith("CONCIERGE_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("COLUMNS", "400")  # rich would otherwise wrap tables at 80 columns
    monkeypatch.setenv("CONCIERGE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("CONCIERGE_PHONE_REGION", "CN")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def concierge(*args: str) -> Result:
    """Run the real `concierge` command line in-process."""
    return CliRunner().invoke(cli_app, list(args))


class BuggyComplaintModel:
    """A complaint model with a bug: the message "boom" crashes it (inside the dialogs)."""

    threshold = 0.5

    def probability(self, text: str) -> float:
        if text == "boom":
            raise RuntimeError("a bug in a dialog")
        return 0.0

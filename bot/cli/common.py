"""What every CLI command shares: the consoles, the settings, logging and a migrated database."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler

from bot.config import Settings
from bot.storage.database import Database

console = Console()
errors = Console(stderr=True)


def load_settings() -> Settings:
    """The effective settings, or a readable list of what is wrong with them (exit code 2)."""
    try:
        return Settings()
    except ValidationError as error:
        for problem in error.errors():
            field = "CONCIERGE_" + "_".join(str(part) for part in problem["loc"]).upper()
            errors.print(f"[red]error:[/red] {field}: {problem['msg']}")
        raise typer.Exit(2) from None


def setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(message)s",
        handlers=[RichHandler(console=errors, show_path=False)],
    )
    if logging.getLogger().level > logging.DEBUG:
        # One line per migration or per job run is noise at INFO.
        for chatty in ("alembic", "apscheduler"):
            logging.getLogger(chatty).setLevel(logging.WARNING)


@asynccontextmanager
async def migrated(settings: Settings) -> AsyncIterator[Database]:
    """The configured database, migrated to the latest schema, closed on exit."""
    database = Database(settings.database_url)
    try:
        await database.upgrade()
        yield database
    finally:
        await database.dispose()

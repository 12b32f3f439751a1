"""The `concierge` command line: run the bot, chat in a terminal, manage customers and data.

Each group of commands lives in its own module and is registered here.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import typer
from rich.table import Table

from bot.cli.campaigns import campaigns_app
from bot.cli.common import console, load_settings, migrated, setup_logging
from bot.cli.customers import customers_app
from bot.cli.kb import kb_app
from bot.cli.report import report_app
from bot.cli.service import service_app
from bot.cli.staff import staff_app
from bot.cli.tickets import tickets_app

app = typer.Typer(help="Concierge: a service-assistant chat bot.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(customers_app, name="customers")
app.add_typer(campaigns_app, name="campaign")
app.add_typer(service_app, name="service")
app.add_typer(kb_app, name="kb")
app.add_typer(report_app, name="report")
app.add_typer(staff_app, name="staff")
app.add_typer(tickets_app, name="tickets")


@app.command()
def run() -> None:
    """Start the bot: web chat on CONCIERGE_WEB_HOST:PORT, Telegram when a token is set."""
    from bot.app import serve

    settings = load_settings()
    setup_logging(settings)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))


@app.command()
def chat(
    user: Annotated[str, typer.Option(help="Who you are in this conversation.")] = "console",
    name: Annotated[str | None, typer.Option(help="Your display name.")] = None,
) -> None:
    """Talk to the bot in this terminal."""
    from bot.channels.console import chat as console_chat

    settings = load_settings()
    asyncio.run(console_chat(settings, user=user, display_name=name))


@app.command()
def config() -> None:
    """Print the effective settings, secrets masked."""
    settings = load_settings()
    table = Table("setting", "value", title="Concierge settings")
    for field, value in settings.masked().items():
        table.add_row(f"CONCIERGE_{field.upper()}", str(value))
    console.print(table)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all database migrations (the bot also does this on start)."""
    settings = load_settings()

    async def _upgrade() -> None:
        async with migrated(settings):
            pass

    asyncio.run(_upgrade())
    console.print(f"Database {settings.masked()['database_url']} is up to date.")

"""`concierge staff ...`: register, remove and list the people who work the human queue."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from bot.cli.common import console, errors, load_settings, migrated
from bot.clock import SystemClock
from bot.staff.roster import (
    ROLES,
    StaffError,
    add_staff,
    list_staff,
    parse_role,
    parse_telegram_id,
    parse_username,
    remove_staff,
)
from bot.storage.models import Staff

staff_app = typer.Typer(
    help="Staff who answer tickets (agents, supervisors, ...).", no_args_is_help=True
)


def fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(1)


def describe(staff: Staff) -> str:
    telegram = f", Telegram {staff.telegram_user_id}" if staff.telegram_user_id else ""
    return f"staff {staff.id}: {staff.name} ({staff.role}{telegram})"


@staff_app.command("add")
def staff_add(
    name: Annotated[str, typer.Argument(help="The person's name, as staff and logs show it.")],
    role: Annotated[str, typer.Option(help=f"One of: {ROLES}.")],
    telegram_id: Annotated[
        str | None,
        typer.Option(help="Their Telegram user id: lets them work from the staff group."),
    ] = None,
    username: Annotated[
        str | None, typer.Option(help="Their Telegram @username, for mentions in the group.")
    ] = None,
) -> None:
    """Register a staff member."""
    try:
        parsed_role = parse_role(role)
        user_id = parse_telegram_id(telegram_id) if telegram_id is not None else None
        handle = parse_username(username) if username is not None else None
    except StaffError as error:
        raise fail(str(error)) from None
    settings = load_settings()

    async def _add() -> tuple[Staff, bool]:
        async with migrated(settings) as database, database.transaction() as session:
            return await add_staff(
                session,
                name=name,
                role=parsed_role,
                now=SystemClock().now(),
                telegram_user_id=user_id,
                username=handle,
            )

    try:
        staff, returned = asyncio.run(_add())
    except StaffError as error:
        raise fail(str(error)) from None
    verb = "Re-activated" if returned else "Added"
    console.print(f"{verb} {escape(describe(staff))}.", soft_wrap=True)
    if staff.telegram_user_id is None:
        console.print("Without --telegram-id they cannot work from the Telegram staff group.")


@staff_app.command("remove")
def staff_remove(
    staff_ref: Annotated[
        str, typer.Argument(metavar="ID_OR_TELEGRAM_ID", help="Staff id or Telegram user id.")
    ],
) -> None:
    """Remove a staff member: they may no longer act; their past actions stay on record."""
    settings = load_settings()

    async def _remove() -> Staff:
        async with migrated(settings) as database, database.transaction() as session:
            return await remove_staff(session, staff_ref, SystemClock().now())

    try:
        staff = asyncio.run(_remove())
    except StaffError as error:
        raise fail(str(error)) from None
    console.print(f"Removed {escape(describe(staff))}.", soft_wrap=True)


@staff_app.command("list")
def staff_list(
    show_all: Annotated[bool, typer.Option("--all", help="Also show removed staff.")] = False,
) -> None:
    """The registered staff."""
    settings = load_settings()

    async def _list() -> list[Staff]:
        async with migrated(settings) as database, database.sessions() as session:
            return await list_staff(session, include_removed=show_all)

    rows = asyncio.run(_list())
    columns = ["id", "name", "role", "telegram id", "username", "added"]
    table = Table(*columns, *(["removed"] if show_all else []), title="Staff")
    for staff in rows:
        cells = [
            str(staff.id),
            escape(staff.name),
            staff.role,
            staff.telegram_user_id or "",
            f"@{staff.telegram_username}" if staff.telegram_username else "",
            f"{staff.created_at:%Y-%m-%d}",
        ]
        if show_all:
            cells.append(f"{staff.removed_at:%Y-%m-%d}" if staff.removed_at else "")
        table.add_row(*cells, style="dim" if staff.removed_at else None)
    console.print(table)
    if not rows:
        console.print("No staff yet: `concierge staff add NAME --role agent --telegram-id ID`.")

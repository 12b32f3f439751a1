"""`concierge tickets ...`: the human queue from a terminal: list, show (the full audit
timeline), assign and resolve tickets, with the same rules as the Telegram staff group."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import tickets
from bot.cli.common import console, errors, load_settings, migrated
from bot.clock import SystemClock
from bot.config import Settings
from bot.staff import actions, cards
from bot.staff.roster import StaffError, find_staff
from bot.storage.models import Staff, Ticket, TicketEvent
from dialogs.texts import t

tickets_app = typer.Typer(
    help="The human queue: complaints and requests for a person.", no_args_is_help=True
)

ACTOR_CLI = "cli"  # the operator at the terminal: trusted, and named as such on the timeline
FILTERS = [*(status.value for status in tickets.Status), "live", "all"]
T = TypeVar("T")


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(1)


def _run(
    settings: Settings, work: Callable[[AsyncSession], Awaitable[T]], *, write: bool = False
) -> T:
    """`work` in one session (one transaction when `write`); errors of the queue exit 1."""

    async def _go() -> T:
        async with migrated(settings) as database:
            scope = database.transaction() if write else database.sessions()
            async with scope as session:
                return await work(session)

    try:
        return asyncio.run(_go())
    except (tickets.TicketError, StaffError) as error:
        raise _fail(str(error)) from None


def _local(moment: datetime | None, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M}" if moment else ""


def _overdue(ticket: Ticket, now: datetime) -> bool:
    return (
        ticket.status in tickets.LIVE and ticket.first_response_at is None and ticket.due_at <= now
    )


async def _staff_names(session: AsyncSession) -> dict[int, str]:
    rows = await session.execute(select(Staff.id, Staff.name))
    return {number: name for number, name in rows}


@tickets_app.command("list")
def tickets_list(
    status: Annotated[str, typer.Option(help=f"One of: {', '.join(FILTERS)}.")] = "live",
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only live tickets with no answer past due.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1)] = 100,
) -> None:
    """Tickets, the most urgent first (live ones) or the newest first."""
    if status not in FILTERS:
        raise _fail(f"unknown status {status!r}; use one of: {', '.join(FILTERS)}")
    settings = load_settings()
    zone = settings.business_hours.zone
    now = SystemClock().now()

    async def _list(session: AsyncSession) -> list[tuple[Ticket, str, str]]:
        query = select(Ticket)
        live = overdue or status == "live"
        if live:
            query = query.where(Ticket.status.in_(tickets.LIVE))
        elif status != "all":
            query = query.where(Ticket.status == status)
        if overdue:
            query = query.where(Ticket.first_response_at.is_(None), Ticket.due_at <= now)
        order = (Ticket.due_at, Ticket.id) if live else (Ticket.id.desc(),)
        names = await _staff_names(session)
        rows = []
        for ticket in await session.scalars(query.order_by(*order).limit(limit)):
            customer = await cards.customer_name(session, ticket.customer_id)
            assigned = names.get(ticket.assigned_to_id, "") if ticket.assigned_to_id else ""
            rows.append((ticket, customer, assigned))
        return rows

    rows = _run(settings, _list)
    columns = ("#", "customer", "kind", "priority", "status", "assigned", "opened", "due")
    table = Table(*columns, "escalations", title=f"Tickets ({status}, times {zone.key})")
    for ticket, customer, assigned in rows:
        late = _overdue(ticket, now)
        table.add_row(
            str(ticket.id),
            escape(customer),
            ticket.kind,
            ticket.priority,
            ticket.status + (" (overdue)" if late else ""),
            escape(assigned),
            _local(ticket.opened_at, zone),
            _local(ticket.due_at, zone),
            str(ticket.escalation_level),
            style="bold red" if late else None,
        )
    console.print(table)
    if not rows:
        console.print("No tickets match.")


def _actor(actor: str, staff: dict[int, str], customer: str) -> str:
    kind, _, ref = actor.partition(":")
    if kind == "staff" and ref.isdigit():
        return staff.get(int(ref), actor)
    if actor == tickets.ACTOR_CUSTOMER:
        return f"customer ({customer})"
    return actor  # system, cli, or who was refused (e.g. telegram:123)


def _details(data: dict[str, Any]) -> str:
    shown = [f"{key}={value}" for key, value in data.items() if value not in (None, "", [], {})]
    return ", ".join(shown)


@tickets_app.command("show")
def tickets_show(number: Annotated[int, typer.Argument(help="The ticket number.")]) -> None:
    """A ticket and its full timeline: every event with its time and who did it."""
    settings = load_settings()
    zone = settings.business_hours.zone

    async def _show(
        session: AsyncSession,
    ) -> tuple[Ticket, str, dict[int, str], list[TicketEvent]]:
        ticket = await tickets.get(session, number)
        customer = await cards.customer_name(session, ticket.customer_id)
        return (
            ticket,
            customer,
            await _staff_names(session),
            await tickets.timeline(session, number),
        )

    ticket, customer, staff, events = _run(settings, _show)
    now = SystemClock().now()
    header = Table(show_header=False, title=f"Ticket #{ticket.id}")
    for label, value in (
        ("customer", f"{customer} (id {ticket.customer_id})"),
        ("channel", f"{ticket.channel}:{ticket.chat_id} ({ticket.language})"),
        ("kind", f"{ticket.kind}, priority {ticket.priority}"),
        ("status", ticket.status + (" — OVERDUE" if _overdue(ticket, now) else "")),
        ("subject", ticket.subject),
        ("assigned to", staff.get(ticket.assigned_to_id, "") if ticket.assigned_to_id else ""),
        ("opened", _local(ticket.opened_at, zone)),
        ("answer due", _local(ticket.due_at, zone)),
        ("first answer", _local(ticket.first_response_at, zone)),
        ("escalations", str(ticket.escalation_level)),
        ("reopened", str(ticket.reopened_count)),
        ("resolved", _local(ticket.resolved_at, zone)),
        ("resolution", ticket.resolution or ""),
        ("closed", _local(ticket.closed_at, zone)),
    ):
        header.add_row(label, escape(value))
    console.print(header)
    timeline = Table(f"time ({zone.key})", "actor", "event", "text", title="Timeline")
    for event in events:
        details = _details(event.data)
        text = escape(event.text) + (f" [dim]({escape(details)})[/dim]" if details else "")
        timeline.add_row(
            _local(event.at, zone), escape(_actor(event.actor, staff, customer)), event.kind, text
        )
    console.print(timeline)


async def _authorized(
    session: AsyncSession, ticket: Ticket, staff: Staff, action: actions.Action
) -> str | None:
    """None when `staff` may do `action`; else why not (the refusal stays on the timeline)."""
    if staff.removed_at is not None:
        return f"{staff.name} (staff {staff.id}) was removed on {staff.removed_at:%Y-%m-%d}"
    try:
        await actions.authorize(
            session, staff, action, SystemClock().now(), who=ACTOR_CLI, ticket=ticket
        )
    except actions.NotAllowedError as error:
        allowed = ", ".join(sorted(role.value for role in actions.PERMISSIONS[action]))
        return f"{error}; only {allowed} may {action} tickets"
    return None


@tickets_app.command("assign")
def tickets_assign(
    number: Annotated[int, typer.Argument(help="The ticket number.")],
    staff_ref: Annotated[
        str, typer.Argument(metavar="STAFF", help="Staff id or Telegram user id.")
    ],
) -> None:
    """Give a ticket to a staff member (who must be allowed to take tickets)."""
    settings = load_settings()
    language = settings.default_language  # the staff group's

    async def _assign(session: AsyncSession) -> tuple[str, str | None]:
        ticket = await tickets.get(session, number)
        staff = await find_staff(session, staff_ref)
        refused = await _authorized(session, ticket, staff, actions.Action.TAKE)
        if refused is None:
            now = SystemClock().now()
            await tickets.assign(session, ticket, staff, now, actor=ACTOR_CLI)
            told = t(language, "staff.taken", number=ticket.id, name=staff.name)
            await tickets.notify_staff(session, "assigned", told, now, ticket)
        return staff.name, refused

    name, refused = _run(settings, _assign, write=True)
    if refused is not None:
        raise _fail(f"ticket #{number} not assigned: {refused}")
    console.print(f"Ticket #{number} assigned to {escape(name)}.")


@tickets_app.command("resolve")
def tickets_resolve(
    number: Annotated[int, typer.Argument(help="The ticket number.")],
    note: Annotated[str, typer.Option(help="How it was resolved: the customer reads this.")],
    as_staff: Annotated[
        str | None,
        typer.Option("--as", help="Resolve as this staff member (id or Telegram user id)."),
    ] = None,
) -> None:
    """Resolve a ticket: the customer gets the note and is asked to rate the handling."""
    settings = load_settings()
    language = settings.default_language  # the staff group's

    async def _resolve(session: AsyncSession) -> str | None:
        ticket = await tickets.get(session, number)
        actor, name = ACTOR_CLI, "CLI"
        if as_staff is not None:
            staff = await find_staff(session, as_staff)
            refused = await _authorized(session, ticket, staff, actions.Action.RESOLVE)
            if refused is not None:
                return refused
            actor, name = tickets.staff_actor(staff), staff.name
        now = SystemClock().now()
        await actions.resolve(session, ticket, actor, note, now)
        told = t(language, "staff.resolved", number=ticket.id, name=name, note=note.strip())
        await tickets.notify_staff(session, "resolved", told, now, ticket)
        return None

    refused = _run(settings, _resolve, write=True)
    if refused is not None:
        raise _fail(f"ticket #{number} not resolved: {refused}")
    console.print(f"Ticket #{number} resolved; the customer gets the note and the rating question.")

"""`concierge service add`: record a service done (and when it is due again) or an appointment."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated

import typer
from rich.markup import escape
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli.common import console, errors, load_settings, migrated
from bot.clock import SystemClock
from bot.service_records import ServiceFacts, record_service
from bot.storage.models import Appointment, Customer
from scheduler.localtime import parse_local, zone

service_app = typer.Typer(help="Service records and appointments.", no_args_is_help=True)


class _NotFoundError(LookupError):
    pass


async def _customer(session: AsyncSession, reference: str) -> Customer:
    """The customer with this id or external id."""
    conditions = [Customer.external_ref == reference]
    if reference.isdigit():
        conditions.append(Customer.id == int(reference))
    found = list(await session.scalars(select(Customer).where(or_(*conditions))))
    exact = [c for c in found if c.external_ref == reference] or found
    if not exact:
        raise _NotFoundError(
            f"no customer with id or external id {reference!r} (see `concierge customers list`)"
        )
    return exact[0]


@service_app.command("add")
def service_add(
    customer: Annotated[str, typer.Argument(help="The customer's id or external id.")],
    kind: Annotated[str, typer.Option(help='What is or was done, e.g. "oil change".')],
    done: Annotated[
        str | None, typer.Option("--date", help="When it was done (YYYY-MM-DD).")
    ] = None,
    next_due: Annotated[
        str | None, typer.Option(help="When it is due again (YYYY-MM-DD): reminded before.")
    ] = None,
    appointment: Annotated[
        str | None,
        typer.Option(help='A booked visit, "YYYY-MM-DD HH:MM" in the customer\'s time zone.'),
    ] = None,
    description: Annotated[str, typer.Option(help="Details.")] = "",
    by: Annotated[str | None, typer.Option(help="Who did it.")] = None,
) -> None:
    """Record a service (--date, optionally --next-due) or book an appointment (--appointment)."""
    settings = load_settings()
    if done is None and appointment is None:
        errors.print("[red]error:[/red] give --date (a service done) or --appointment (booked)")
        raise typer.Exit(2)
    try:
        done_on = None if done is None else date.fromisoformat(done)
        due_on = None if next_due is None else date.fromisoformat(next_due)
    except ValueError as error:
        errors.print(f"[red]error:[/red] {escape(str(error))}; write dates as YYYY-MM-DD")
        raise typer.Exit(2) from None
    now = SystemClock().now()
    if done_on is not None and done_on > now.date():
        errors.print("[red]error:[/red] --date is in the future; book it with --appointment")
        raise typer.Exit(2)

    async def _add() -> list[str]:
        said: list[str] = []
        async with migrated(settings) as database, database.transaction() as session:
            person = await _customer(session, customer)
            who = escape(person.address_as or person.name or f"customer {person.id}")
            if done_on is not None:
                facts = ServiceFacts(kind, done_on, description, by, due_on)
                record = (await record_service(session, person.id, facts, now)).record
                due = f", next due {record.next_due_at}" if record.next_due_at else ""
                said.append(f"Service recorded for {who}: {escape(kind)} on {done_on}{due}.")
            if appointment is not None:
                local_zone = zone(person.timezone, settings.timezone)
                starts_at = parse_local(appointment, local_zone)
                if starts_at <= now:
                    raise ValueError(f"the appointment {appointment!r} is in the past")
                exists = await session.scalar(
                    select(Appointment).where(
                        Appointment.customer_id == person.id,
                        Appointment.kind == kind,
                        Appointment.starts_at == starts_at,
                    )
                )
                if exists is None:
                    session.add(
                        Appointment(
                            customer_id=person.id,
                            kind=kind,
                            starts_at=starts_at,
                            note=description,
                            created_at=now,
                        )
                    )
                local = starts_at.astimezone(local_zone)
                said.append(
                    f"Appointment booked for {who}: {escape(kind)} on {local:%Y-%m-%d %H:%M}"
                    f" ({local_zone.key}); reminded the day before."
                )
        return said

    try:
        lines = asyncio.run(_add())
    except (_NotFoundError, ValueError) as error:
        errors.print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(1) from None
    for line in lines:
        console.print(line, soft_wrap=True)

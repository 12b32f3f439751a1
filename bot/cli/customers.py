"""`concierge customers ...`: import the business's customer file, list and show customers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import func, or_, select

from bot.cli.common import console, errors, load_settings, migrated
from bot.storage.models import ChannelIdentity, Customer, MessageLog, ServiceRecord

customers_app = typer.Typer(help="The customers on file.", no_args_is_help=True)


@customers_app.command("import")
def customers_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
) -> None:
    """Import customers and service records from a CSV file (format in README.md)."""
    from bot.importer import ImportAbortedError, import_csv

    settings = load_settings()

    async def _import() -> int:
        async with migrated(settings) as database:
            try:
                report = await import_csv(database, file, settings)
            except ImportAbortedError as error:
                errors.print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
                return 1
        for problem in report.problems:
            where = escape(f"{file}:{problem.line}:")
            errors.print(f"[yellow]{where}[/yellow] {escape(problem.reason)}", soft_wrap=True)
        console.print(report.summary(), markup=False, soft_wrap=True)
        return 1 if report.problems else 0

    raise typer.Exit(asyncio.run(_import()))


@customers_app.command("list")
def customers_list(
    search: Annotated[str | None, typer.Option(help="Part of a name, phone or email.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
) -> None:
    """List customers, most recently seen first."""
    settings = load_settings()

    async def _list() -> list[Customer]:
        async with migrated(settings) as database, database.sessions() as session:
            query = select(Customer)
            if search:
                pattern = f"%{search.lower()}%"
                query = query.where(
                    or_(
                        func.lower(Customer.name).like(pattern),
                        Customer.phone.like(pattern),
                        func.lower(Customer.email).like(pattern),
                    )
                )
            query = query.order_by(Customer.last_seen_at.desc().nulls_last(), Customer.id).limit(
                limit
            )
            return list(await session.scalars(query))

    table = Table("id", "name", "address as", "phone", "language", "visits", "last seen")
    for customer in asyncio.run(_list()):
        table.add_row(
            str(customer.id),
            customer.name or "",
            customer.address_as or "",
            customer.phone or "",
            customer.language or "",
            str(customer.visit_count),
            f"{customer.last_seen_at:%Y-%m-%d %H:%M}" if customer.last_seen_at else "never",
        )
    console.print(table)


@customers_app.command("show")
def customers_show(customer_id: Annotated[int, typer.Argument(help="The customer's id.")]) -> None:
    """Everything on file about one customer: profile, channels, services, recent messages."""
    settings = load_settings()

    async def _show() -> (
        tuple[Customer, list[ChannelIdentity], list[ServiceRecord], list[MessageLog]] | None
    ):
        async with migrated(settings) as database, database.sessions() as session:
            customer = await session.get(Customer, customer_id)
            if customer is None:
                return None
            identities = await session.scalars(
                select(ChannelIdentity).where(ChannelIdentity.customer_id == customer_id)
            )
            services = await session.scalars(
                select(ServiceRecord)
                .where(ServiceRecord.customer_id == customer_id)
                .order_by(ServiceRecord.performed_at.desc())
            )
            messages = await session.scalars(
                select(MessageLog)
                .where(MessageLog.customer_id == customer_id)
                .order_by(MessageLog.id.desc())
                .limit(10)
            )
            return customer, list(identities), list(services), list(messages)[::-1]

    found = asyncio.run(_show())
    if found is None:
        errors.print(
            f"[red]error:[/red] no customer with id {customer_id} (see `concierge customers list`)"
        )
        raise typer.Exit(1)
    customer, identities, services, messages = found
    profile = Table(show_header=False, title=f"Customer {customer.id}")
    birthday = (
        f"{customer.birth_year or '----'}-{customer.birthday_month:02d}-{customer.birthday_day:02d}"
        if customer.birthday_month and customer.birthday_day
        else ""
    )
    for label, value in (
        ("name", customer.name),
        ("address as", customer.address_as),
        ("external id", customer.external_ref),
        ("phone", customer.phone),
        ("email", customer.email),
        ("language", customer.language),
        ("time zone", customer.timezone),
        ("birthday", birthday),
        ("tags", ", ".join(customer.tags)),
        ("preferences", ", ".join(f"{k}: {v}" for k, v in customer.preferences.items())),
        (
            "marketing consent",
            f"yes since {customer.marketing_consent_at:%Y-%m-%d}"
            if customer.marketing_consent and customer.marketing_consent_at
            else "yes"
            if customer.marketing_consent
            else "no",
        ),
        ("notes", customer.notes),
        ("visits", str(customer.visit_count)),
        ("created", f"{customer.created_at:%Y-%m-%d %H:%M}"),
        (
            "last seen",
            f"{customer.last_seen_at:%Y-%m-%d %H:%M}" if customer.last_seen_at else "never",
        ),
        ("channels", ", ".join(f"{i.channel}:{i.external_id}" for i in identities)),
    ):
        profile.add_row(label, value or "")
    console.print(profile)
    if services:
        table = Table("date", "kind", "what was done", "by", "next due", title="Service records")
        for record in services:
            table.add_row(
                f"{record.performed_at}",
                record.kind,
                record.description,
                record.performed_by or "",
                f"{record.next_due_at or ''}",
            )
        console.print(table)
    if messages:
        table = Table("time", "", "text", "intent", title="Recent messages")
        for message in messages:
            table.add_row(
                f"{message.created_at:%Y-%m-%d %H:%M}",
                "→" if message.direction == "in" else "←",
                message.text[:120],
                message.intent or "",
            )
        console.print(table)

"""Importing customers and their service records from a business's CSV export.

Owns what the checked rows of a file (`bot.csv_rows`) mean for the customers on file: a row
finds its customer by external id first, then by phone; non-empty cells update it, empty cells
never erase; a service is upserted by (customer, kind, date). All good rows are written in one
transaction, and rows that contradict the database become problems instead of half-writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from os import PathLike
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from bot.config import Settings
from bot.csv_rows import CustomerRow, ParsedFile, Problem, ServiceRow, parse_customer_file
from bot.storage.database import Database
from bot.storage.models import Customer, ServiceRecord

__all__ = ["ImportAbortedError", "ImportReport", "Problem", "import_csv"]

# Explicit NULLs keep every row in one batch, where omitted ones group rows by their empty cells.
_INSERT_CUSTOMERS = insert(Customer).execution_options(render_nulls=True)
_INSERT_SERVICES = insert(ServiceRecord).execution_options(render_nulls=True)
LOOKUP_CHUNK = 500  # keys per IN (...) query: well under SQLite's and asyncpg's parameter limits


@dataclass(slots=True)
class ImportReport:
    """What an import did, for the person who ran it."""

    customers_created: int = 0
    customers_updated: int = 0
    customers_unchanged: int = 0
    services_created: int = 0
    services_updated: int = 0
    services_unchanged: int = 0
    rows_read: int = 0
    rows_skipped: int = 0
    problems: list[Problem] = field(default_factory=list)
    encoding: str = "utf-8"
    ignored_columns: list[str] = field(default_factory=list)
    rejected: bool = False  # the file as a whole was refused; nothing was imported

    def summary(self) -> str:
        """One line: "Imported 3 customers (2 new, 1 updated) and 0 service records; ..."."""
        notes = []
        if self.encoding == "gb18030":
            notes.append("The file was read as GB18030 (Chinese Excel), as it is not UTF-8.")
        if self.ignored_columns:
            notes.append(f"Ignored columns: {', '.join(self.ignored_columns)}.")
        if self.rejected:
            return " ".join(
                ["Nothing imported: the file was refused (see the problem above).", *notes]
            )
        if self.rows_read == 0:
            return " ".join(["Nothing to import: the file has no rows under its header.", *notes])
        customers = _counted(
            self.customers_created, self.customers_updated, self.customers_unchanged, "customer"
        )
        services = _counted(
            self.services_created, self.services_updated, self.services_unchanged, "service record"
        )
        line = f"Imported {customers} and {services}"
        if self.rows_skipped:
            line += f"; {_plural(self.rows_skipped, 'row')} skipped with errors"
        return " ".join([line + ".", *notes])


class ImportAbortedError(RuntimeError):
    """The database refused the write; the transaction was rolled back and nothing was imported."""


async def import_csv(
    database: Database,
    path: str | PathLike[str],
    settings: Settings,
    now: datetime | None = None,
) -> ImportReport:
    """Import the customer CSV at `path` (format in README.md); bad rows become `problems`.

    Raises ImportAbortedError (nothing written) when the database refuses the write.
    """
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("import_csv needs a timezone-aware `now`")
    today = now.astimezone(ZoneInfo(settings.timezone)).date()
    # Reading and checking a large file takes a while: keep the event loop free meanwhile.
    parsed = await asyncio.to_thread(_parse, Path(path), settings.phone_region, today)
    report = ImportReport(
        rows_read=parsed.rows_read,
        problems=list(parsed.problems),
        encoding=parsed.encoding,
        ignored_columns=parsed.ignored_columns,
        rejected=parsed.rejected,
    )
    if parsed.rows:
        try:
            async with database.transaction() as session:
                plan = _Plan(now, *await _on_file(session, parsed.rows))
                report.problems += [p for row in parsed.rows if (p := plan.apply(row))]
                await plan.write(session)
        except DBAPIError as error:
            raise ImportAbortedError(
                f"the database refused the import, so nothing was imported: {error.orig}"
            ) from error
        plan.count(report)
    report.problems.sort(key=lambda problem: problem.line)
    report.rows_skipped = 0 if report.rejected else len(report.problems)
    return report


def _parse(path: Path, region: str, today: date) -> ParsedFile:
    return parse_customer_file(path.read_bytes(), region, today)


async def _on_file(
    session: AsyncSession, rows: Sequence[CustomerRow]
) -> tuple[list[Customer], list[ServiceRecord]]:
    """The customers the rows could mean, and their service records, in a few batched queries."""
    customers: dict[int, Customer] = {}
    for column, keys in (
        (Customer.external_ref, {r.external_ref for r in rows if r.external_ref}),
        (Customer.phone, {r.phone for r in rows if r.phone}),
    ):
        for (found,) in await _where_in(session, select(Customer), column, keys):
            customers[found.id] = found
    services: list[ServiceRecord] = []
    if any(row.service for row in rows):
        ids = customers.keys()
        query = select(ServiceRecord)
        services = [s for (s,) in await _where_in(session, query, ServiceRecord.customer_id, ids)]
    return list(customers.values()), services


async def _where_in(
    session: AsyncSession,
    query: Select[Any],
    column: InstrumentedAttribute[Any],
    keys: Iterable[Any],
) -> list[Any]:
    """`query` for every key, LOOKUP_CHUNK keys per query: one query per row would crawl."""
    ordered = sorted(keys)
    found: list[Any] = []
    for start in range(0, len(ordered), LOOKUP_CHUNK):
        chunk = ordered[start : start + LOOKUP_CHUNK]
        found += (await session.execute(query.where(column.in_(chunk)))).all()
    return found


class _Plan:
    """The file's rows applied one by one, in file order, to the customers on file.

    Rows are applied to ORM objects in memory (nothing is queried meanwhile), so a later row
    sees what earlier rows did, and a row that contradicts the state so far is refused whole.
    """

    def __init__(self, now: datetime, customers: list[Customer], services: list[ServiceRecord]):
        self.now = now
        self.by_ref = {c.external_ref: c for c in customers if c.external_ref}
        self.by_phone = {c.phone: c for c in customers if c.phone}
        self.phone_on_file = {c: c.phone for c in customers}
        self.new: dict[Customer, int] = {}  # created by this file -> the line that created it
        self.touched: set[Customer] = set()
        self.changed: set[Customer] = set()
        by_id = {c.id: c for c in customers}
        self.services = {(by_id[s.customer_id], s.kind, s.performed_at): s for s in services}
        self.new_services: dict[ServiceRecord, Customer] = {}
        self.touched_services: set[ServiceRecord] = set()
        self.changed_services: set[ServiceRecord] = set()

    def apply(self, row: CustomerRow) -> Problem | None:
        by_ref = self.by_ref.get(row.external_ref) if row.external_ref else None
        by_phone = self.by_phone.get(row.phone) if row.phone else None
        if by_phone is not None and (
            (by_ref is not None and by_phone is not by_ref)
            or (by_ref is None and row.external_ref and by_phone.external_ref)
        ):
            return Problem(
                row.line,
                f"phone {row.phone} already belongs to {self._describe(by_phone)}; "
                "correct the phone or the external_id",
            )
        customer = by_ref or by_phone
        if customer is None:
            customer = Customer(
                created_at=self.now, tags=[], preferences={}, marketing_consent=False, visit_count=0
            )
            self.new[customer] = row.line
        changed = self._update(customer, row)
        if customer not in self.new:
            self.touched.add(customer)
            if changed:
                self.changed.add(customer)
        if row.service is not None:
            self._upsert_service(customer, row.service)
        return None

    def _describe(self, customer: Customer) -> str:
        ref = f"external id {customer.external_ref}" if customer.external_ref else "no external id"
        if customer in self.new:
            return f"the customer on line {self.new[customer]} ({ref})"
        return f"customer {customer.id} ({ref})"

    def _update(self, customer: Customer, row: CustomerRow) -> bool:
        """Copy the row's non-empty cells onto the customer; True if anything changed."""
        values: dict[str, Any] = {**row.text, "on_file": True}
        if row.external_ref:
            values["external_ref"] = row.external_ref
            self.by_ref[row.external_ref] = customer
        if row.phone and row.phone != customer.phone:
            if customer.phone:  # the old number is free for a later row
                self.by_phone.pop(customer.phone, None)
            self.by_phone[row.phone] = customer
            values["phone"] = row.phone
        if (birthday := row.birthday) is not None:
            on_file = (customer.birthday_month, customer.birthday_day)
            same_day = on_file == (birthday.month, birthday.day)
            values.update(birthday_month=birthday.month, birthday_day=birthday.day)
            # "05-03" for someone on file as born 1990-05-03 adds nothing: keep the year.
            if birthday.year is not None or not same_day:
                values["birth_year"] = birthday.year
        if row.tags is not None:
            values["tags"] = row.tags
        if row.preferences is not None:  # merged: what the bot learnt in chat stays
            values["preferences"] = {**customer.preferences, **row.preferences}
        consent = row.marketing_consent
        if consent is not None and (
            consent != customer.marketing_consent or customer.marketing_consent_at is None
        ):
            values.update(marketing_consent=consent, marketing_consent_at=self.now)
        return _assign(customer, values)

    def _upsert_service(self, customer: Customer, service: ServiceRow) -> None:
        key = (customer, service.kind, service.performed_at)
        record = self.services.get(key)
        if record is None:
            record = ServiceRecord(
                kind=service.kind,
                performed_at=service.performed_at,
                description="",
                created_at=self.now,
            )
            self.services[key] = record
            self.new_services[record] = customer
        elif record not in self.new_services:
            self.touched_services.add(record)
        values = {
            "description": service.description,
            "performed_by": service.performed_by,
            "next_due_at": service.next_due_at,
        }
        changed = _assign(record, {k: v for k, v in values.items() if v is not None})
        if changed and record not in self.new_services:
            self.changed_services.add(record)

    async def write(self, session: AsyncSession) -> None:
        # A phone that moves between customers must be let go before it is taken, and the
        # database checks uniqueness row by row in an order of its own: release moved phones first.
        moved = [c.id for c in self.touched if self.phone_on_file[c] not in (None, c.phone)]
        if moved:
            with session.no_autoflush:
                await session.execute(
                    update(Customer).where(Customer.id.in_(moved)).values(phone=None),
                    execution_options={"synchronize_session": False},
                )
        await session.flush()  # the customers and services on file, changed in place
        # New rows go in as one executemany without RETURNING: SQLite cannot return ids in
        # parameter order, so the ORM would insert them one by one. Their keys find the ids.
        if self.new:
            await session.execute(_INSERT_CUSTOMERS, [_columns(c) for c in self.new])
            ids = {**await _ids(session, Customer.external_ref, self.new)}
            ids |= await _ids(session, Customer.phone, [c for c in self.new if c not in ids])
            for customer, customer_id in ids.items():
                customer.id = customer_id
        if self.new_services:
            for record, customer in self.new_services.items():
                record.customer_id = customer.id
            await session.execute(_INSERT_SERVICES, [_columns(r) for r in self.new_services])

    def count(self, report: ImportReport) -> None:
        report.customers_created = len(self.new)
        report.customers_updated = len(self.changed)
        report.customers_unchanged = len(self.touched - self.changed)
        report.services_created = len(self.new_services)
        report.services_updated = len(self.changed_services)
        report.services_unchanged = len(self.touched_services - self.changed_services)


async def _ids(
    session: AsyncSession, key: InstrumentedAttribute[str | None], customers: Iterable[Customer]
) -> dict[Customer, int]:
    """The ids the database gave `customers`, found by their (unique) `key` column."""
    by_key = {getattr(c, key.key): c for c in customers if getattr(c, key.key)}
    found = await _where_in(session, select(Customer.id, key), key, by_key)
    return {by_key[value]: customer_id for customer_id, value in found}


def _columns(row: Any) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns if c.key != "id"}


def _assign(target: Any, values: dict[str, Any]) -> bool:
    changed = False
    for name, value in values.items():
        if getattr(target, name) != value:
            setattr(target, name, value)
            changed = True
    return changed


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _counted(new: int, updated: int, unchanged: int, noun: str) -> str:
    total = new + updated + unchanged
    if total == 0:
        return f"0 {noun}s"
    parts = [f"{new} new", f"{updated} updated"] + ([f"{unchanged} unchanged"] if unchanged else [])
    return f"{_plural(total, noun)} ({', '.join(parts)})"

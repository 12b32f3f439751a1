"""Recording a service done for a customer: the one upsert the CLI and the HTTP API share.

A service record is identified by (customer, kind, date), as in the CSV import (which applies
the same rule to whole files in batches): recording it again finds the record on file, and
non-empty values update it while missing ones never erase what is known. Nothing else happens
here: the follow-up sweep (`scheduler.followups`) finds every new record by itself, however it
was added.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import ServiceRecord


@dataclass(frozen=True, slots=True)
class ServiceFacts:
    """What was done, when, by whom, and when it is due again."""

    kind: str
    performed_at: date
    description: str | None = None
    performed_by: str | None = None
    next_due_at: date | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    record: ServiceRecord
    created: bool  # False: the record was on file already (and may have been updated)


async def record_service(
    session: AsyncSession, customer_id: int, facts: ServiceFacts, now: datetime
) -> Recorded:
    """Add the service to the customer's records, or update the one on file for that day."""
    record = await session.scalar(
        select(ServiceRecord).where(
            ServiceRecord.customer_id == customer_id,
            ServiceRecord.kind == facts.kind,
            ServiceRecord.performed_at == facts.performed_at,
        )
    )
    created = record is None
    if record is None:
        record = ServiceRecord(
            customer_id=customer_id,
            kind=facts.kind,
            performed_at=facts.performed_at,
            description="",
            created_at=now,
        )
        session.add(record)
    record.description = facts.description or record.description or ""
    record.performed_by = facts.performed_by or record.performed_by
    record.next_due_at = facts.next_due_at or record.next_due_at
    await session.flush()
    return Recorded(record, created)

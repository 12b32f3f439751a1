"""The business API: service records in, ratings out, for the business's own systems.

`business_api(engine)` is the router `create_app` includes. Every call must carry the header
`X-API-Key` equal to `CONCIERGE_API_KEY` (compared in constant time): without a configured key
the API is off (503), a missing or wrong key is a 401. `POST /api/service-records` records a
service through `bot.service_records`, the same upsert `concierge service add` uses; the
customer is found by external_ref, then by phone, and created when new (on file, with no chat
yet: follow-ups wait until the customer reaches the bot). Customers on file are not changed
here; the CSV import is the way to update them. `GET /api/ratings` lists the ratings given in a
period of days in the business's time zone.
"""

from __future__ import annotations

import hmac
import logging
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request, Response, Security
from fastapi.security import APIKeyHeader
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.engine import Engine
from bot.phones import InvalidPhoneError, normalize_phone
from bot.service_records import ServiceFacts, record_service
from bot.storage.models import Customer, Rating, ServiceRecord
from bot.web.api_models import (
    ApiError,
    CustomerOut,
    CustomerRef,
    RatingOut,
    RatingsOut,
    ServiceRecordIn,
    ServiceRecordOut,
)
from scheduler.localtime import at_local

log = logging.getLogger(__name__)

PATHS = ("/api/service-records", "/api/ratings")  # whose 422s `api_models.describe` words
API_DISABLED = "The HTTP API is disabled: set CONCIERGE_API_KEY to turn it on."
BAD_KEY = "Missing or wrong API key: send it in the X-API-Key header."
MAX_PERIOD = timedelta(days=366)
_EARLIEST, _LATEST = date(1970, 1, 1), date(9998, 12, 31)  # clamp: no overflow at the ends
_MIDNIGHT = time(0, 0)

_KEY_HEADER = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKey",
    description="The key set as CONCIERGE_API_KEY on the bot.",
    auto_error=False,
)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ApiError, "description": "The body could not be read (not UTF-8 JSON)."},
    401: {"model": ApiError, "description": "The X-API-Key header is missing or wrong."},
    422: {"model": ApiError, "description": "The request is malformed; the error names the field."},
    503: {"model": ApiError, "description": "The API is disabled, or storage is down."},
}


class _CustomerConflictError(Exception):
    """The phone is on file for a customer with another external_ref."""


def business_api(engine: Engine) -> APIRouter:
    """The routes of the business API, answering from `engine`'s database and clock."""
    settings, database, clock = engine.settings, engine.database, engine.clock

    async def authorise(key: Annotated[str | None, Security(_KEY_HEADER)] = None) -> None:
        expected = settings.api_key.get_secret_value() if settings.api_key else ""
        if not expected:
            raise HTTPException(503, API_DISABLED)
        if key is None or not hmac.compare_digest(key.encode(), expected.encode()):
            raise HTTPException(401, BAD_KEY, headers={"WWW-Authenticate": "ApiKey"})

    router = APIRouter(
        prefix="/api", tags=["business API"], dependencies=[Security(authorise)], responses=_ERRORS
    )

    @router.post(
        "/service-records",
        status_code=201,
        responses={
            200: {
                "model": ServiceRecordOut,
                "description": "Already on file (updated if given more).",
            },
            409: {"model": ApiError, "description": "The phone belongs to another customer."},
        },
    )
    async def add_service_record(body: ServiceRecordIn, response: Response) -> ServiceRecordOut:
        """Record a service done; a repeat (same customer, kind and day) returns the record."""
        now = clock.now()
        if body.performed_at > now.astimezone(ZoneInfo(settings.timezone)).date():
            raise HTTPException(422, "performed_at: must not be in the future")
        phone = None
        if body.customer.phone is not None:
            try:
                phone = normalize_phone(body.customer.phone, settings.phone_region)
            except InvalidPhoneError as error:
                raise HTTPException(422, f"customer.phone: {error}") from None
        facts = ServiceFacts(
            body.kind, body.performed_at, body.description, body.performed_by, body.next_due_at
        )
        for attempt in (1, 2):  # a concurrent twin may insert the same customer or record first
            try:
                async with database.transaction() as session:
                    customer = await _customer(session, body.customer, phone, now)
                    recorded = await record_service(session, customer.id, facts, now)
                    out = _record_out(recorded.record, customer)
                break
            except IntegrityError:
                if attempt == 2:
                    raise
                log.info("service record API: a concurrent request won the insert; reading it")
            except _CustomerConflictError as error:
                raise HTTPException(409, str(error)) from None
        response.status_code = 201 if recorded.created else 200
        return out

    @router.get("/ratings")
    async def list_ratings(
        request: Request,
        start: Annotated[date, Query(alias="from", description="First day, YYYY-MM-DD.")],
        end: Annotated[date, Query(alias="to", description="Last day (included), YYYY-MM-DD.")],
    ) -> RatingsOut:
        """The ratings customers gave from `from` to `to` (days in the business's time zone)."""
        # A misspelt parameter ("form=") must not silently widen or narrow the answer.
        unknown = sorted(set(request.query_params) - {"from", "to"})
        if unknown:
            raise HTTPException(422, f"{unknown[0]!r}: unknown query parameter; use from and to")
        if end < start or end - start > MAX_PERIOD:
            raise HTTPException(422, "to: must be on or after from and at most 366 days later")
        tz = ZoneInfo(settings.timezone)
        since = at_local(min(max(start, _EARLIEST), _LATEST), _MIDNIGHT, tz)
        until = at_local(min(max(end, _EARLIEST), _LATEST) + timedelta(days=1), _MIDNIGHT, tz)
        async with database.sessions() as session:
            rows = await session.execute(
                select(Rating, ServiceRecord, Customer.external_ref)
                .join(Customer, Customer.id == Rating.customer_id)
                .outerjoin(ServiceRecord, ServiceRecord.id == Rating.service_record_id)
                .where(Rating.created_at >= since, Rating.created_at < until)
                .order_by(Rating.created_at, Rating.id)
            )
            return RatingsOut(ratings=[_rating_out(*row) for row in rows])

    return router


async def _customer(
    session: AsyncSession, ref: CustomerRef, phone: str | None, now: datetime
) -> Customer:
    """The customer the reference means (external_ref first, then phone), created when new."""
    conditions = []
    if ref.external_ref is not None:
        conditions.append(Customer.external_ref == ref.external_ref)
    if phone is not None:
        conditions.append(Customer.phone == phone)
    found = list(await session.scalars(select(Customer).where(or_(*conditions))))
    by_ref = [
        c for c in found if ref.external_ref is not None and c.external_ref == ref.external_ref
    ]
    if by_ref:
        return by_ref[0]
    if found:
        customer = found[0]
        if ref.external_ref is not None and customer.external_ref not in (None, ref.external_ref):
            raise _CustomerConflictError(
                f"customer.phone: {phone} is on file for the customer with external_ref "
                f"{customer.external_ref!r}, not {ref.external_ref!r}"
            )
        return customer
    customer = Customer(
        external_ref=ref.external_ref,
        phone=phone,
        name=ref.name,
        language=ref.language,
        on_file=True,
        tags=[],
        preferences={},
        marketing_consent=False,
        visit_count=0,
        created_at=now,
    )
    session.add(customer)
    await session.flush()
    return customer


def _record_out(record: ServiceRecord, customer: Customer) -> ServiceRecordOut:
    return ServiceRecordOut(
        id=record.id,
        customer=CustomerOut(
            id=customer.id,
            external_ref=customer.external_ref,
            phone=customer.phone,
            name=customer.name,
        ),
        kind=record.kind,
        description=record.description,
        performed_at=record.performed_at,
        performed_by=record.performed_by,
        next_due_at=record.next_due_at,
        created_at=record.created_at,
    )


def _rating_out(
    rating: Rating, service: ServiceRecord | None, external_ref: str | None
) -> RatingOut:
    dimensions = rating.dimensions if isinstance(rating.dimensions, dict) else {}
    return RatingOut(
        id=rating.id,
        customer_id=rating.customer_id,
        customer_external_ref=external_ref,
        service_record_id=rating.service_record_id,
        service_kind=service.kind if service is not None else None,
        service_date=service.performed_at if service is not None else None,
        performed_by=service.performed_by if service is not None else None,
        ticket_number=rating.ticket_id,
        score=rating.score,
        comment=rating.comment,
        dimensions={str(k): v for k, v in dimensions.items() if isinstance(v, int)},
        channel=rating.channel,
        created_at=rating.created_at,
    )

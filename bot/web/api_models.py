"""What the business API (`bot.web.api`) accepts and returns, and its 422 answers in words.

Pydantic models are the API's schema: FastAPI validates requests against them and publishes
them in /openapi.json. Text fields are single lines without control characters (descriptions
may span lines) and as long as their columns; unknown fields are refused, so a misspelt field
is an error rather than silently ignored. `describe` turns a validation error into one sentence
that names the field and says what it accepts.
"""

from __future__ import annotations

import unicodedata
from datetime import date, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)


def _single_line(value: str) -> str:
    if any(unicodedata.category(ch) in {"Cc", "Cs"} for ch in value):
        raise ValueError("control characters are not allowed")
    return value


def _plain_text(value: str) -> str:
    if any(ch not in "\n\t" and unicodedata.category(ch) in {"Cc", "Cs"} for ch in value):
        raise ValueError("control characters other than newlines and tabs are not allowed")
    return value


_SHORT = StringConstraints(strip_whitespace=True, min_length=1, max_length=64)
_LONG = StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
Line64 = Annotated[str, _SHORT, AfterValidator(_single_line)]
Line200 = Annotated[str, _LONG, AfterValidator(_single_line)]
Phone = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=40),
    AfterValidator(_single_line),
]
Description = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2000), AfterValidator(_plain_text)
]

# What each field accepts, in words (the 422 body says this instead of pydantic's jargon).
ALLOWED: dict[str, str] = {
    "customer": "an object with external_ref or phone (or both)",
    "customer.external_ref": "1 to 64 characters on one line, or null",
    "customer.phone": "a phone number (international, or local to the business's region)",
    "customer.name": "1 to 200 characters on one line, or null",
    "customer.language": '"en" or "zh", or null',
    "kind": "1 to 64 characters on one line",
    "description": "text of at most 2000 characters",
    "performed_at": "a date, YYYY-MM-DD, not in the future",
    "performed_by": "1 to 200 characters on one line, or null",
    "next_due_at": "a date, YYYY-MM-DD, or null",
    "from": "a date, YYYY-MM-DD",
    "to": "a date, YYYY-MM-DD, on or after from and at most 366 days later",
}
BODY = "body: must be a JSON object with customer, kind and performed_at, sent as application/json"


def describe(error: dict[str, Any]) -> str:
    """One validation problem in plain words: the field, then what it accepts."""
    kind = error.get("type", "")
    location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query")]
    if kind == "json_invalid":
        reason = (error.get("ctx") or {}).get("error")
        return f"body: malformed JSON ({reason})" if reason else "body: malformed JSON"
    if not location:
        return BODY
    field = ".".join(location)
    if kind == "extra_forbidden":
        return f"{field}: unknown field"
    if field not in ALLOWED:
        return f"{field}: {error.get('msg', 'invalid')}"
    if kind == "missing":
        return f"{field}: required, {ALLOWED[field]}"
    if kind == "string_unicode":  # half of a UTF-16 pair, escaped in the JSON
        return f"{field}: must be valid Unicode text"
    return f"{field}: must be {ALLOWED[field]}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerRef(_Strict):
    """Who the service was for: found by external_ref, else by phone; created when new."""

    external_ref: Line64 | None = Field(
        None, description="The customer's id in the business's own system.", examples=["C-1001"]
    )
    phone: Phone | None = Field(
        None, description="Phone number; stored in international form.", examples=["+8613800138000"]
    )
    name: Line200 | None = Field(None, description="Used only when the customer is new.")
    language: Literal["en", "zh"] | None = Field(
        None, description="Used only when the customer is new."
    )

    @model_validator(mode="after")
    def _identified(self) -> Self:
        if self.external_ref is None and self.phone is None:
            raise ValueError("give external_ref or phone")
        return self


class ServiceRecordIn(_Strict):
    """A service the business did: what, when, by whom, and when it is due again."""

    customer: CustomerRef
    kind: Line64 = Field(description="What was done.", examples=["oil change"])
    description: Description = Field("", description="Details.", examples=["Synthetic 5W-30"])
    performed_at: date = Field(description="The day it was done (not in the future).")
    performed_by: Line200 | None = Field(None, description="Who did it.", examples=["Li Na"])
    next_due_at: date | None = Field(
        None, description="When it is due again; the customer is reminded a week before."
    )


class CustomerOut(BaseModel):
    id: int
    external_ref: str | None
    phone: str | None
    name: str | None


class ServiceRecordOut(BaseModel):
    """A service record on file."""

    id: int
    customer: CustomerOut
    kind: str
    description: str
    performed_at: date
    performed_by: str | None
    next_due_at: date | None
    created_at: datetime


class RatingOut(BaseModel):
    """A customer's 1-5 rating of a service (or of how a request to staff was handled)."""

    id: int
    customer_id: int
    customer_external_ref: str | None
    service_record_id: int | None
    service_kind: str | None
    service_date: date | None
    performed_by: str | None
    ticket_number: int | None = Field(description="Set when the rating is of a ticket's handling.")
    score: int = Field(ge=1, le=5)
    comment: str | None
    dimensions: dict[str, int] = Field(
        description="Optional RATER scores, 1-5: reliability, assurance, tangibles, empathy, "
        "responsiveness."
    )
    channel: str
    created_at: datetime


class RatingsOut(BaseModel):
    """The ratings given in the period (days in the business's time zone), oldest first."""

    ratings: list[RatingOut]


class ApiError(BaseModel):
    """Why a request was refused, in one short sentence."""

    error: str = Field(examples=["performed_at: must be a date, YYYY-MM-DD, not in the future"])

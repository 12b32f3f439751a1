"""Campaign segments: "language=zh,tag=vip,last_visit_before=2026-01-01" as a filter on customers.

Conditions are separated by commas and must all hold; `|` inside one gives alternatives
(`tag=vip|gold`). Keys: language, tag, service (a kind of service ever done), birthday_month,
last_visit_before / last_visit_after (the latest service record's date; customers with none
match neither), consent (yes: marketing consent and no opt-out). Parsing is pure; `where`
turns a segment into SQL for SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, and_, cast, exists, false, func, not_, or_, select, true
from sqlalchemy.dialects.postgresql import JSONB, array

from bot.storage.models import Customer, ServiceRecord
from dialogs.types import LANGUAGES

_ALIASES: Mapping[str, str] = {
    "language": "language", "lang": "language",
    "tag": "tag", "tags": "tag",
    "service": "service", "service_kind": "service", "kind": "service",
    "birthday_month": "birthday_month", "birth_month": "birthday_month",
    "last_visit_before": "last_visit_before", "last_visit_after": "last_visit_after",
    "consent": "consent", "marketing_consent": "consent",
}  # fmt: skip
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}


class SegmentError(ValueError):
    """A segment that cannot be read; the message names the part and what is allowed."""


@dataclass(frozen=True, slots=True)
class Condition:
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Segment:
    conditions: tuple[Condition, ...] = ()

    def __str__(self) -> str:
        if not self.conditions:
            return "all customers"
        return ",".join(f"{c.key}={'|'.join(c.values)}" for c in self.conditions)


def parse_segment(text: str) -> Segment:
    """The segment written in `text` (empty: every customer)."""
    conditions = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, raw = part.partition("=")
        key = _ALIASES.get(name.strip().lower())
        if not sep or key is None:
            known = ", ".join(sorted(set(_ALIASES.values())))
            raise SegmentError(f"{part!r}: write key=value with a key among {known}")
        values = tuple(v.strip() for v in raw.split("|") if v.strip())
        if not values:
            raise SegmentError(f"{part!r}: no value after '='")
        conditions.append(Condition(key, tuple(_check(key, v, part) for v in values)))
    return Segment(tuple(conditions))


def _check(key: str, value: str, part: str) -> str:
    if key == "language" and value.lower() not in LANGUAGES:
        raise SegmentError(f"{part!r}: language is one of {', '.join(LANGUAGES)}")
    if key == "birthday_month" and not (value.isdigit() and 1 <= int(value) <= 12):
        raise SegmentError(f"{part!r}: birthday_month is a number from 1 to 12")
    if key.startswith("last_visit"):
        try:
            date.fromisoformat(value)
        except ValueError:
            raise SegmentError(f"{part!r}: write the date as YYYY-MM-DD") from None
    if key == "consent" and value.lower() not in _YES | _NO:
        raise SegmentError(f"{part!r}: consent is yes or no")
    return value.lower() if key in {"language", "consent"} else value


def where(segment: Segment, dialect: str, default_language: str) -> ColumnElement[bool]:
    """The segment as a condition on `Customer` rows."""
    return and_(true(), *(_condition(c, dialect, default_language) for c in segment.conditions))


def _condition(condition: Condition, dialect: str, default_language: str) -> ColumnElement[bool]:
    values = list(condition.values)
    match condition.key:
        case "language":
            return func.coalesce(Customer.language, default_language).in_(values)
        case "tag":
            return _has_any_tag(values, dialect)
        case "service":
            return exists().where(
                ServiceRecord.customer_id == Customer.id,
                func.lower(ServiceRecord.kind).in_([v.lower() for v in values]),
            )
        case "birthday_month":
            return Customer.birthday_month.in_([int(v) for v in values])
        case "last_visit_before" | "last_visit_after":
            last_visit = (
                select(func.max(ServiceRecord.performed_at))
                .where(ServiceRecord.customer_id == Customer.id)
                .scalar_subquery()
            )
            days = [date.fromisoformat(v) for v in values]
            if condition.key == "last_visit_before":
                return or_(*(last_visit < d for d in days))
            return or_(*(last_visit >= d for d in days))
        case "consent":
            wanted = {v in _YES for v in values}
            consenting = and_(
                Customer.marketing_consent.is_(True), Customer.marketing_opt_out_at.is_(None)
            )
            if wanted == {True}:
                return consenting
            return not_(consenting) if wanted == {False} else or_(consenting, not_(consenting))
    return false()


def _has_any_tag(tags: list[str], dialect: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        has_any: ColumnElement[bool] = cast(Customer.tags, JSONB).has_any(array(tags))
        return has_any
    each = func.json_each(Customer.tags).table_valued("value")
    return exists(select(each.c.value).where(each.c.value.in_(tags)))

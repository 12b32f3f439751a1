"""The customer CSV format: reading a file into checked, typed rows and line-numbered problems.

Pure: bytes and `today` in, rows and problems out; no database, no clock. What a row means for
the customers on file is `bot.importer`'s business. The format is documented for users in
README.md ("Importing customers"); keep the two in step.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import itertools
import re
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TypeVar

from bot.phones import InvalidPhoneError, normalize_phone

T = TypeVar("T")

# fmt: off
COLUMNS = (
    "external_id", "name", "address_as", "phone", "email", "language", "timezone", "birthday",
    "tags", "preferences", "marketing_consent", "notes",
    "service_kind", "service_date", "service_description", "service_by", "next_due",
)
# fmt: on
KEY_COLUMNS = ("external_id", "phone")  # a row needs one of them to find its customer
SERVICE_DETAILS = ("service_description", "service_by", "next_due")
# The longest text a cell may hold: the database's column sizes, and sane bounds for the rest.
MAX_LENGTH = {"external_id": 64, "name": 200, "address_as": 100, "email": 254, "notes": 5000}
MAX_LENGTH |= {"tags": 1000, "preferences": 5000, "service_kind": 64, "service_by": 200}
MAX_LENGTH |= {"service_description": 5000}
MAX_TAGS, MAX_PREFERENCES, MAX_KEY, MAX_TAG, MAX_VALUE = 20, 20, 50, 50, 200
CONSENT = dict.fromkeys(("yes", "y", "true", "1", "是"), True)
CONSENT |= dict.fromkeys(("no", "n", "false", "0", "否"), False)
_DATE = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})", re.ASCII)
# Without a year only the ISO forms: "07/08" would be July 8 to some and 7 August to others.
_MONTH_DAY = re.compile(r"(?:--)?(\d{1,2})-(\d{1,2})", re.ASCII)
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")


@dataclass(frozen=True, slots=True)
class Problem:
    """Why one line of the file was not imported (line 1 is the header)."""

    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class Birthday:
    month: int
    day: int
    year: int | None  # None when the file gives only month and day


@dataclass(frozen=True, slots=True)
class ServiceRow:
    kind: str
    performed_at: date
    description: str | None
    performed_by: str | None
    next_due_at: date | None


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """One good row: the customer's keys, the values of its non-empty cells, maybe a service."""

    line: int
    external_ref: str | None
    phone: str | None
    text: dict[str, str]  # Customer attribute -> value: name, address_as, email, language, ...
    birthday: Birthday | None
    tags: list[str] | None
    preferences: dict[str, str] | None
    marketing_consent: bool | None
    service: ServiceRow | None


@dataclass(slots=True)
class ParsedFile:
    rows: list[CustomerRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    encoding: str = "utf-8"
    ignored_columns: list[str] = field(default_factory=list)
    rows_read: int = 0  # data rows, good or bad; blank lines do not count
    rejected: bool = False  # refused as a whole: unreadable, empty, or no usable header


def parse_customer_file(data: bytes, region: str, today: date) -> ParsedFile:
    """Every row of the file, checked: good rows in `rows`, the others in `problems`."""
    parsed = ParsedFile()
    try:
        text, parsed.encoding = decode(data)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        excel = "in Excel use Save As > 'CSV UTF-8 (Comma delimited)'"
        return _rejected(parsed, line, f"the file is not UTF-8 or GB18030 text; {excel}")
    records = _records(text, _delimiter(text))
    header = next((r for r in records if r.error or any(c.strip() for c in r.cells)), None)
    if header is None:
        example = "the first line must name the columns, e.g. external_id,name,phone"
        return _rejected(parsed, 1, f"the file is empty: {example}")
    if header.error is not None:
        return _rejected(parsed, header.line, header.error)
    names = [re.sub(r"[\s-]+", "_", cell.strip().lower()) for cell in header.cells]
    known = [name for name in names if name in COLUMNS]
    if twice := sorted({name for name in known if known.count(name) > 1}):
        return _rejected(parsed, header.line, f"column {', '.join(twice)} appears more than once")
    if not set(KEY_COLUMNS) & set(known):
        what = "has no external_id or phone column" if known else "is not a header row"
        found = ", ".join(quoted(cell, 20) for cell in header.cells[:5])
        expected = "the first line must name the columns, including external_id or phone"
        return _rejected(parsed, header.line, f"line {header.line} {what}: {expected} ({found})")
    parsed.ignored_columns = [
        cell.strip()
        for cell, n in zip(header.cells, names, strict=True)
        if cell.strip() and n not in COLUMNS
    ]
    checker = _RowChecker(region, today)
    for record in records:
        if record.error:
            parsed.rows_read += 1
            parsed.problems.append(_problem(record, [record.error]))
            break  # the reader lost its place in the file; later lines would be misread
        if not any(cell.strip() for cell in record.cells):
            continue  # blank lines, and Excel's rows of empty cells
        parsed.rows_read += 1
        if len(record.cells) != len(names):
            ragged = f"this row has {len(record.cells)} cells but the header has {len(names)}"
            hint = "look for a missing or extra separator, or an unclosed quote"
            parsed.problems.append(_problem(record, [f"{ragged} ({hint})"]))
            continue
        cells = {n: c.strip() for n, c in zip(names, record.cells, strict=True) if n in COLUMNS}
        row = checker.row(record.line, cells)
        if isinstance(row, CustomerRow):
            parsed.rows.append(row)
        else:
            parsed.problems.append(_problem(record, row))
    return parsed


def decode(data: bytes) -> tuple[str, str]:
    """The text and the encoding it was read with: UTF-8 (BOM or not), else GB18030.

    GB18030 is what Excel writes on a Chinese Windows when "CSV UTF-8" is not chosen.
    """
    if data.startswith(codecs.BOM_UTF8):
        return data.decode("utf-8-sig"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as error:
        try:
            return data.decode("gb18030"), "gb18030"
        except UnicodeDecodeError:
            raise error from None  # say where the file stops being UTF-8, the expected encoding


def _rejected(parsed: ParsedFile, line: int, reason: str) -> ParsedFile:
    parsed.problems, parsed.rejected = [Problem(line, reason)], True
    return parsed


def _delimiter(text: str) -> str:
    """The separator the header uses most: Excel writes ';' where ',' is the decimal mark."""
    header = next((line for line in io.StringIO(text) if line.strip()), "")
    return max(",;\t", key=header.count)  # a tie (one column) goes to ','


@dataclass(frozen=True, slots=True)
class _Record:
    line: int  # where the record starts, as a text editor counts lines
    number: int  # its row in a spreadsheet, where a cell spanning lines is still one row
    cells: list[str]
    error: str | None = None


def _records(text: str, delimiter: str) -> Iterator[_Record]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    line = 1
    for number in itertools.count(1):
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:  # e.g. a cell over csv.field_size_limit()
            message = f"the file cannot be read from here on ({error}); no later row was imported"
            yield _Record(line, number, [], message)
            return
        yield _Record(line, number, cells)
        line = reader.line_num + 1


def _problem(record: _Record, reasons: list[str]) -> Problem:
    reason = "; ".join(reasons)
    if record.number != record.line:  # a cell spanning lines above: help spreadsheet users
        reason += f" (row {record.number} in a spreadsheet)"
    return Problem(record.line, reason)


class _RowChecker:
    """Checks the cells of one row, collecting every reason it cannot be imported."""

    def __init__(self, region: str, today: date) -> None:
        self.region, self.today = region, today
        self.cells: dict[str, str] = {}
        self.reasons: list[str] = []

    def row(self, line: int, cells: dict[str, str]) -> CustomerRow | list[str]:
        self.cells, self.reasons = cells, []
        # PostgreSQL cannot store NUL in text; it means a binary or damaged file anyway.
        self.reasons += [f"{c} contains a NUL character" for c, v in cells.items() if "\x00" in v]
        if not cells.get("external_id") and not cells.get("phone"):
            self.reasons.append("external_id and phone are both empty; a row needs one of them")
        external_ref, phone = self._text("external_id"), self._parse("phone", self._phone)
        text = {c: v for c in ("name", "address_as", "notes") if (v := self._text(c))}
        for column, parse in (("email", _email), ("language", _language), ("timezone", _zone)):
            if (value := self._parse(column, parse)) is not None:
                text[column] = value
        row = CustomerRow(
            line=line,
            external_ref=external_ref,
            phone=phone,
            text=text,
            birthday=self._parse("birthday", lambda v: _birthday(v, self.today)),
            tags=self._parse("tags", _tags),
            preferences=self._parse("preferences", _preferences),
            marketing_consent=self._parse("marketing_consent", _consent),
            service=self._service(),
        )
        return self.reasons or row

    def _service(self) -> ServiceRow | None:
        kind = self._text("service_kind")
        latest = self.today + timedelta(days=1)  # a day's grace for the business's time zone
        performed_at = self._parse("service_date", lambda v: _date(v, latest))
        next_due = self._parse("next_due", _date)
        given = [c for c in ("service_kind", "service_date") if self.cells.get(c)]
        if len(given) == 1:
            other = "service_date" if given == ["service_kind"] else "service_kind"
            self.reasons.append(f"{given[0]} is filled in but {other} is empty; give both")
        for detail in SERVICE_DETAILS if not given else ():
            if self.cells.get(detail):
                self.reasons.append(f"{detail} needs service_kind and service_date on its row")
        if performed_at and next_due and next_due < performed_at:
            self.reasons.append(f"next_due {next_due} is before service_date {performed_at}")
        if kind is None or performed_at is None:
            return None
        description, by = self._text("service_description"), self._text("service_by")
        return ServiceRow(kind, performed_at, description, by, next_due)

    def _text(self, column: str) -> str | None:
        value = self.cells.get(column, "")
        if len(value) > (limit := MAX_LENGTH.get(column, len(value))):
            self.reasons.append(f"{column} has {len(value)} characters; at most {limit} fit")
            return None
        return value or None

    def _parse(self, column: str, parse: Callable[[str], T]) -> T | None:
        """The cell parsed (None when empty); a ValueError's text completes the reason."""
        value = self._text(column)
        try:
            return None if value is None else parse(value)
        except ValueError as error:
            self.reasons.append(f"{column} {quoted(value or '')} {error}")
            return None

    def _phone(self, value: str) -> str:
        try:
            return normalize_phone(value, self.region)
        except InvalidPhoneError:
            how = f"with the country code (+86 138 0013 8000) or as a local {self.region} number"
            raise ValueError(f"is not a valid phone number: write it {how}") from None


# Cell parsers: each returns the value or raises ValueError with the end of a sentence that
# starts "<column> '<cell>' ...", which is how the user reads it.


def quoted(value: str, limit: int = 40) -> str:
    """A cell as shown in a reason: one short line, so a huge cell cannot flood the report."""
    shown = " ".join(value.split())
    return "'" + (shown if len(shown) <= limit else shown[: limit - 1] + "…") + "'"


def _date(value: str, latest: date | None = None) -> date:
    if (match := _DATE.fullmatch(value)) is None:
        raise ValueError("is not a date: write it as YYYY-MM-DD, like 2024-05-03")
    try:
        day = date(*(int(part) for part in match.groups()))
    except ValueError as error:
        raise ValueError(f"is not a date: {error}") from None
    if day.year < 1900:
        raise ValueError("is too long ago: check the year")
    if latest is not None and day > latest:
        raise ValueError("is in the future")
    return day


def _birthday(value: str, today: date) -> Birthday:
    if match := _DATE.fullmatch(value):
        year, month, day = (int(part) for part in match.groups())
    elif match := _MONTH_DAY.fullmatch(value):
        year, month, day = None, int(match[1]), int(match[2])
    else:
        raise ValueError("is not a date: write it as YYYY-MM-DD (1990-05-03) or MM-DD (05-03)")
    try:
        born = date(year or 2000, month, day)  # 2000 is a leap year: 02-29 is fine without a year
    except ValueError as error:
        raise ValueError(f"is not a date: {error}") from None
    if year is not None and not date(1900, 1, 1) <= born <= today:
        raise ValueError("is not a plausible birthday: check the year")
    return Birthday(month, day, year)


def _email(value: str) -> str:
    if _EMAIL.fullmatch(value) is None:
        raise ValueError("does not look like an email address (name@example.com)")
    return value


def _language(value: str) -> str:
    if value.lower() not in ("en", "zh"):
        raise ValueError("is not a supported language: use en (English) or zh (Chinese)")
    return value.lower()


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _zone(value: str) -> str:
    if value not in _time_zones():
        raise ValueError("is not a known time zone: use a name such as Asia/Shanghai")
    return value


def _tags(value: str) -> list[str]:
    tags = list(dict.fromkeys(tag.strip() for tag in re.split(r"[;|]", value) if tag.strip()))
    if len(tags) > MAX_TAGS or any(len(tag) > MAX_TAG for tag in tags):
        raise ValueError(f"is too long: at most {MAX_TAGS} tags of {MAX_TAG} characters each")
    return tags


def _preferences(value: str) -> dict[str, str]:
    preferences: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(";"))):
        key, equals, setting = (part.strip() for part in item.partition("="))
        if not equals or not key:
            raise ValueError(f"needs the form key=value; key2=value2 (see {quoted(item, 20)})")
        if len(key) > MAX_KEY or len(setting) > MAX_VALUE:
            raise ValueError(f"has a key over {MAX_KEY} or a value over {MAX_VALUE} characters")
        preferences[key] = setting
    if len(preferences) > MAX_PREFERENCES:
        raise ValueError(f"has {len(preferences)} entries; at most {MAX_PREFERENCES} fit")
    return preferences


def _consent(value: str) -> bool:
    if (consent := CONSENT.get(value.lower())) is None:
        raise ValueError("must be yes or no (also accepted: y/n, true/false, 1/0, 是/否)")
    return consent

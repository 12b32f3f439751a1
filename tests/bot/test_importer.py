"""The customer CSV import on SQLite and PostgreSQL: what is stored, and what the user is told."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import delete, event, select, text

from bot.clock import ManualClock
from bot.config import Settings
from bot.csv_rows import parse_customer_file
from bot.importer import ImportAbortedError, import_csv
from bot.storage.database import Database
from bot.storage.models import ChannelIdentity, Customer, ServiceRecord

HEADER = (
    "external_id,name,address_as,phone,email,language,timezone,birthday,tags,preferences,"
    "marketing_consent,notes,service_kind,service_date,service_description,service_by,next_due"
)
TODAY = date(2026, 5, 1)  # the `clock` fixture's day


@pytest.fixture
def cn(settings: Settings) -> Settings:
    """A business in China: local numbers are Chinese mobile numbers."""
    return settings.model_copy(update={"phone_region": "CN", "timezone": "Asia/Shanghai"})


def write(path: Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def as_csv(rows: list[list[str]], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


async def customers(db: Database) -> list[Customer]:
    async with db.sessions() as session:
        return list(await session.scalars(select(Customer).order_by(Customer.id)))


async def services(db: Database) -> list[ServiceRecord]:
    async with db.sessions() as session:
        query = select(ServiceRecord).order_by(
            ServiceRecord.customer_id, ServiceRecord.performed_at
        )
        return list(await session.scalars(query))


async def test_a_good_file_imports_customers_and_their_services(
    db: Database, cn: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "customers.csv",
        f"{HEADER}\n"
        "C1,Zhang Wei,Mr. Zhang,138 0013 8000,zhang@example.com,ZH,Asia/Shanghai,1985-07-14,"
        'vip|sedan,"seat=window; drink=green tea",yes,Prefers mornings,oil change,2026-03-02,'
        "Synthetic 5W-30,Li Na,2026-09-02\n"
        "C1,,,,,,,,,,,,tyre rotation,2026-04-20,,,\n"  # a second visit: empty cells erase nothing
        "C2,Anna Smith,,+1 201 555 0123,,en,,--02-29,,,no,,,,,,\n"
        ",Walk-in,,13900139000,,,,03-15,regular ; ,,,,,,,,\n",
    )

    report = await import_csv(db, path, cn, now=clock.now())

    assert report.problems == []
    assert report.summary() == (
        "Imported 3 customers (3 new, 0 updated) and 2 service records (2 new, 0 updated)."
    )
    zhang, anna, walk_in = await customers(db)
    assert (zhang.external_ref, zhang.name, zhang.address_as) == ("C1", "Zhang Wei", "Mr. Zhang")
    assert (zhang.phone, zhang.email) == ("+8613800138000", "zhang@example.com")
    assert (zhang.language, zhang.timezone, zhang.notes) == (
        "zh",
        "Asia/Shanghai",
        "Prefers mornings",
    )
    assert (zhang.birth_year, zhang.birthday_month, zhang.birthday_day) == (1985, 7, 14)
    assert zhang.tags == ["vip", "sedan"]
    assert zhang.preferences == {"seat": "window", "drink": "green tea"}
    assert (zhang.marketing_consent, zhang.marketing_consent_at) == (True, clock.now())
    assert (zhang.on_file, zhang.created_at, zhang.visit_count) == (True, clock.now(), 0)
    assert (anna.phone, anna.language) == ("+12015550123", "en")
    assert (anna.birth_year, anna.birthday_month, anna.birthday_day) == (None, 2, 29)
    assert anna.marketing_consent is False
    assert (walk_in.external_ref, walk_in.phone, walk_in.tags) == (
        None,
        "+8613900139000",
        ["regular"],
    )
    assert (walk_in.birthday_month, walk_in.birthday_day, walk_in.birth_year) == (3, 15, None)
    oil, tyres = await services(db)
    assert (oil.customer_id, oil.kind, oil.performed_at) == (
        zhang.id,
        "oil change",
        date(2026, 3, 2),
    )
    assert (oil.description, oil.performed_by, oil.next_due_at) == (
        "Synthetic 5W-30",
        "Li Na",
        date(2026, 9, 2),
    )
    assert (tyres.kind, tyres.description, tyres.performed_by) == ("tyre rotation", "", None)


async def test_reimport_updates_instead_of_duplicating(
    db: Database, cn: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    header = "external_id,name,phone,email,marketing_consent,preferences,service_kind,service_date"
    first = write(
        tmp_path / "first.csv",
        f"{header}\n"
        "C1,Zhang Wei,13800138000,zhang@example.com,yes,seat=window,oil change,2026-03-02\n"
        "C2,Anna,13900139000,,,,,\n",
    )
    await import_csv(db, first, cn, now=clock.now())
    imported_at = clock.now()
    clock.advance(timedelta(days=1))
    second = write(
        tmp_path / "second.csv",
        f"{header.replace('service_date', 'service_date,service_description')}\n"
        "C1,Zhang Wei Jr,13800138000,,yes,drink=tea,oil change,2026-03-02,Synthetic 5W-30\n"
        "C2,Anna,13900139000,,,,,,\n",
    )

    report = await import_csv(db, second, cn, now=clock.now())

    assert report.summary() == (
        "Imported 2 customers (0 new, 1 updated, 1 unchanged) "
        "and 1 service record (0 new, 1 updated)."
    )
    zhang, anna = await customers(db)
    assert zhang.name == "Zhang Wei Jr"
    assert zhang.email == "zhang@example.com"  # the empty cell kept what was on file
    assert zhang.marketing_consent_at == imported_at  # consent given at the first import
    assert zhang.preferences == {"seat": "window", "drink": "tea"}
    assert anna.name == "Anna"
    [oil] = await services(db)
    assert oil.description == "Synthetic 5W-30"


async def test_a_customer_met_in_chat_is_found_by_phone(
    db: Database, cn: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    async with db.transaction() as session:
        session.add(Customer(name="zw", phone="+8613800138000", created_at=clock.now()))
    path = write(tmp_path / "c.csv", "external_id,name,phone\nC1,Zhang Wei,138-0013-8000\n")

    report = await import_csv(db, path, cn, now=clock.now())

    assert (report.customers_created, report.customers_updated) == (0, 1)
    [zhang] = await customers(db)
    assert (zhang.external_ref, zhang.name, zhang.on_file) == ("C1", "Zhang Wei", True)


async def test_bad_rows_are_reported_by_line_and_the_good_ones_imported(
    db: Database, cn: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "mixed.csv",
        "external_id,name,phone,email,birthday,service_kind,service_date,notes\n"
        'G1,Good One,13800138000,,,,,"first line\nsecond line"\n'
        "B1,Bad Birthday,,,02-30,,,\n"
        "B2,Bad Phone,12345,,,,,\n"
        "\n"
        "B3,Bad Email,,not-an-email,,,,\n"
        ",No Key,,,,,,\n"
        "B4,No Date,,,,oil change,,\n"
        "B5,Ragged,,,\n"
        "G2,Good Two,13900139000,g2@example.com,1990-01-31,oil change,2026-04-01,\n",
    )

    report = await import_csv(db, path, cn, now=clock.now())

    expected = [
        (4, "birthday '02-30' is not a date: day is out of range for month (row 3 in a"),
        (5, "phone '12345' is not a valid phone number: write it with the country code"),
        (7, "email 'not-an-email' does not look like an email address"),
        (8, "external_id and phone are both empty; a row needs one of them"),
        (9, "service_kind is filled in but service_date is empty"),
        (10, "this row has 5 cells but the header has 8"),
    ]
    assert [p.line for p in report.problems] == [line for line, _ in expected]
    for problem, (_, reason) in zip(report.problems, expected, strict=True):
        assert problem.reason.startswith(reason)
    assert report.summary() == (
        "Imported 2 customers (2 new, 0 updated) and 1 service record (1 new, 0 updated); "
        "6 rows skipped with errors."
    )
    assert [(c.external_ref, c.notes) for c in await customers(db)] == [
        ("G1", "first line\nsecond line"),
        ("G2", None),
    ]


async def test_a_phone_of_another_customer_refuses_the_row(
    db: Database, cn: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    await import_csv(
        db, write(tmp_path / "a.csv", "external_id,phone\nA,13800138000\nB,13900139000\n"), cn
    )
    path = write(tmp_path / "b.csv", "external_id,name,phone\nA,Alice,13900139000\nA,Alice,\n")

    report = await import_csv(db, path, cn, now=clock.now())

    [problem] = report.problems
    assert problem.line == 2
    assert problem.reason.startswith(
        "phone +8613900139000 already belongs to customer 2 (external id B)"
    )
    assert [(c.external_ref, c.name, c.phone) for c in await customers(db)] == [
        ("A", "Alice", "+8613800138000"),  # line 3 still applied
        ("B", None, "+8613900139000"),
    ]


async def test_a_phone_can_move_to_another_customer_in_the_same_file(
    db: Database, cn: Settings, tmp_path: Path
) -> None:
    # B is older than A, so a naive flush would give B A's phone before A lets go of it.
    await import_csv(
        db, write(tmp_path / "a.csv", "external_id,phone\nB,13900139000\nA,13800138000\n"), cn
    )
    path = write(tmp_path / "b.csv", "external_id,phone\nA,13700137000\nB,13800138000\n")

    report = await import_csv(db, path, cn)

    assert (report.problems, report.customers_updated) == ([], 2)
    assert [(c.external_ref, c.phone) for c in await customers(db)] == [
        ("B", "+8613800138000"),
        ("A", "+8613700137000"),
    ]


async def test_a_database_refusal_midway_imports_nothing(
    db: Database, cn: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    """A rule only the database knows (a DBA made emails unique) stops the import whole."""
    await import_csv(db, write(tmp_path / "a.csv", "external_id,name\nA,Alice\n"), cn)
    path = write(
        tmp_path / "b.csv",
        "external_id,name,email,service_kind,service_date\n"
        "A,Alice Renamed,,wash,2026-04-01\n"
        "B,Bob,same@example.com,wash,2026-04-01\n"
        "C,Carol,SAME@example.com,,\n",
    )
    async with db.transaction() as session:
        await session.execute(text("CREATE UNIQUE INDEX uq_test_email ON customers (lower(email))"))
    try:
        with pytest.raises(ImportAbortedError, match="nothing was imported"):
            await import_csv(db, path, cn, now=clock.now())
    finally:
        async with db.transaction() as session:
            await session.execute(text("DROP INDEX uq_test_email"))

    assert [(c.external_ref, c.name) for c in await customers(db)] == [("A", "Alice")]
    assert await services(db) == []


@pytest.mark.parametrize(
    ("encoding", "delimiter"),
    [("utf-8", ","), ("utf-8-sig", ","), ("gb18030", ","), ("utf-8", ";"), ("utf-8", "\t")],
)
async def test_excel_exports_in_any_usual_encoding_and_separator(
    db: Database, cn: Settings, tmp_path: Path, encoding: str, delimiter: str
) -> None:
    rows = [
        ["External ID", " Name ", "PHONE", "tags", "marketing_consent", "notes"],
        ["C1", "王小明", "13800138000", "贵宾;车主", "是", "周末来, 喜欢绿茶; 不要打扰"],
    ]
    path = write(tmp_path / "export.csv", as_csv(rows, delimiter), encoding)

    report = await import_csv(db, path, cn)

    assert report.problems == []
    assert report.encoding == encoding
    assert ("GB18030" in report.summary()) == (encoding == "gb18030")
    [customer] = await customers(db)
    assert (customer.name, customer.phone, customer.tags) == (
        "王小明",
        "+8613800138000",
        ["贵宾", "车主"],
    )
    assert (customer.marketing_consent, customer.notes) == (True, "周末来, 喜欢绿茶; 不要打扰")


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        (b"", 1, "the file is empty"),
        (b"\r\n  \n", 1, "the file is empty"),
        (b"13800138000,Zhang Wei\n13900139000,Anna\n", 1, "line 1 is not a header row"),
        (b"name,email\nAnna,anna@example.com\n", 1, "line 1 has no external_id or phone column"),
        (b"phone,name,Phone\n13800138000,a,b\n", 1, "column phone appears more than once"),
        (b"external_id,name\nA,ok\nB,\xff\xfe\n", 3, "the file is not UTF-8 or GB18030 text"),
    ],
    ids=["empty", "blank", "no-header", "no-key", "twice", "binary"],
)
async def test_a_file_without_a_usable_header_imports_nothing(
    db: Database, cn: Settings, tmp_path: Path, content: bytes, line: int, reason: str
) -> None:
    report = await import_csv(db, write(tmp_path / "bad.csv", content), cn)

    [problem] = report.problems
    assert (problem.line, problem.reason[: len(reason)]) == (line, reason)
    assert report.summary().startswith("Nothing imported")
    assert await customers(db) == []


async def test_unknown_columns_are_ignored_and_formulas_kept_as_text(
    db: Database, cn: Settings, tmp_path: Path
) -> None:
    rows = [
        ["external_id", "name", "Car colour", "notes", "address_as", "phone"],
        [
            "=1+1",
            '=HYPERLINK("http://x","y")',
            "red",
            "@boss -call +back",
            "-Sir-",
            "+8613800138000",
        ],
    ]
    report = await import_csv(db, write(tmp_path / "f.csv", as_csv(rows)), cn)

    assert report.ignored_columns == ["Car colour"]
    assert report.summary().endswith("Ignored columns: Car colour.")
    [customer] = await customers(db)
    assert (customer.external_ref, customer.name) == ("=1+1", '=HYPERLINK("http://x","y")')
    assert (customer.notes, customer.address_as) == ("@boss -call +back", "-Sir-")


async def test_a_header_without_rows_has_nothing_to_import(
    db: Database, cn: Settings, tmp_path: Path
) -> None:
    report = await import_csv(db, write(tmp_path / "h.csv", f"{HEADER}\n\n"), cn)

    assert (report.problems, report.summary()) == (
        [],
        "Nothing to import: the file has no rows under its header.",
    )


def problems_with(cells: dict[str, str]) -> list[str]:
    """The reasons a one-row file with these cells (and external id X) is refused."""
    data = as_csv([["external_id", *cells], ["X", *cells.values()]]).encode()
    return [problem.reason for problem in parse_customer_file(data, "CN", TODAY).problems]


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        ({"birthday": "02-29"}, None),
        ({"birthday": "--12-31"}, None),
        ({"birthday": "2024-02-29"}, None),
        ({"birthday": "1985/7/14"}, None),
        ({"birthday": "07/14"}, "birthday '07/14' is not a date: write it as YYYY-MM-DD"),
        ({"birthday": "2023-02-29"}, "birthday '2023-02-29' is not a date: day is out of range"),
        ({"birthday": "13-01"}, "birthday '13-01' is not a date: month must be in 1..12"),
        ({"birthday": "soon"}, "birthday 'soon' is not a date: write it as YYYY-MM-DD"),
        ({"birthday": "2030-01-01"}, "birthday '2030-01-01' is not a plausible birthday"),
        ({"service_kind": "wash", "service_date": "2026-05-02"}, None),
        ({"service_kind": "wash", "service_date": "2026-05-03"}, "service_date '2026-05-03' is in"),
        (
            {"service_kind": "wash", "service_date": "01/05/2026"},
            "service_date '01/05/2026' is not",
        ),
        ({"service_date": "2026-04-01"}, "service_date is filled in but service_kind is empty"),
        ({"next_due": "2026-06-01"}, "next_due needs service_kind and service_date"),
        (
            {"service_kind": "wash", "service_date": "2026-04-01", "next_due": "2026-03-01"},
            "next_due 2026-03-01 is before service_date 2026-04-01",
        ),
        ({"language": "fr"}, "language 'fr' is not a supported language: use en"),
        ({"timezone": "Mars/Base"}, "timezone 'Mars/Base' is not a known time zone"),
        ({"timezone": "Europe/Berlin"}, None),
        ({"name": "x" * 201}, "name has 201 characters; at most 200 fit"),
        ({"tags": ";".join(f"t{i}" for i in range(21))}, "tags 't0;t1;"),
        ({"preferences": "window"}, "preferences 'window' needs the form key=value"),
        ({"marketing_consent": "maybe"}, "marketing_consent 'maybe' must be yes or no"),
        ({"marketing_consent": "否"}, None),
        ({"email": "a@b"}, "email 'a@b' does not look like an email address"),
        ({"notes": "a\x00b"}, "notes contains a NUL character"),
    ],
)
def test_each_cell_is_checked_with_a_reason_a_person_understands(
    cells: dict[str, str], reason: str | None
) -> None:
    reasons = problems_with(cells)

    if reason is None:
        assert reasons == []
    else:
        [found] = reasons
        assert found.startswith(reason)


async def test_a_large_file_is_looked_up_in_batches_not_row_by_row(
    db: Database, cn: Settings, tmp_path: Path
) -> None:
    rows = [["external_id", "phone", "service_kind", "service_date"]]
    rows += [[f"C{i}", f"+86138{i:08d}", "wash", "2026-04-01"] for i in range(3000)]
    path = write(tmp_path / "large.csv", as_csv(rows))
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        created = await import_csv(db, path, cn)
        matched = await import_csv(db, path, cn)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)

    assert (created.customers_created, created.services_created) == (3000, 3000)
    assert (matched.customers_unchanged, matched.services_unchanged) == (3000, 3000)
    assert len(statements) < 60, statements


async def wipe(db: Database) -> None:
    async with db.transaction() as session:
        for table in (ServiceRecord, ChannelIdentity, Customer):
            await session.execute(delete(table))


async def snapshot(db: Database) -> list[dict[str, Any]]:
    rows: list[Any] = [*await customers(db), *await services(db)]
    return [{c.key: getattr(row, c.key) for c in row.__table__.columns} for row in rows]


HYPOTHESIS = hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
PLAUSIBLE = ["13800138000", "+1 201 555 0123", "2024-02-29", "02-30", "yes", "zh", "a@b.co"]
PLAUSIBLE += ["Asia/Shanghai", "x=y", "wash", "2026-04-01", "=SUM(A1)", "", " "]
CELL = st.sampled_from(PLAUSIBLE) | st.text(st.sampled_from('ab1+-=@;|,"\n\r\t /:是\x00'))
GARBAGE_ROWS = st.lists(st.lists(CELL, max_size=8), max_size=6).map(
    lambda rows: (HEADER + "\n" + as_csv(rows)).encode()
)
ANY_FILE = st.binary(max_size=500) | st.text(max_size=500).map(str.encode) | GARBAGE_ROWS


@HYPOTHESIS
@given(content=ANY_FILE)
async def test_any_file_gives_problems_never_an_exception(
    db: Database, cn: Settings, tmp_path: Path, content: bytes
) -> None:
    await wipe(db)

    report = await import_csv(db, write(tmp_path / "any.csv", content), cn)

    on_file = await customers(db)
    assert len(on_file) == report.customers_created
    assert len(await services(db)) == report.services_created
    assert all(problem.line >= 1 for problem in report.problems)
    assert report.summary()
    if report.rejected or report.rows_skipped == report.rows_read:
        assert on_file == []


TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=30)
WORD = st.text("abcxyz贵宾车主", min_size=1, max_size=8)
DAY = st.dates(date(1900, 1, 1), TODAY)


@st.composite
def valid_files(draw: st.DrawFn) -> str:
    """Customers with unique keys, each on one row per service visit (or one row without)."""
    numbers = draw(st.lists(st.integers(0, 99_999_999), min_size=1, max_size=6, unique=True))
    rows = [HEADER.split(",")]
    for i, number in enumerate(numbers):
        keys = draw(st.sampled_from(["both", "external_id", "phone"]))
        customer = [
            f"C{i}" if keys != "phone" else "",
            draw(TEXT),
            draw(TEXT.map(lambda s: s[:100])),
            f"138{number:08d}" if keys != "external_id" else "",
            draw(st.sampled_from(["", "a@example.com", "王@例子.中国"])),
            draw(st.sampled_from(["", "en", "zh", "ZH"])),
            draw(st.sampled_from(["", "Asia/Shanghai", "Europe/Berlin"])),
            draw(st.just("") | DAY.map(str) | DAY.map(lambda d: d.strftime("%m-%d"))),
            "|".join(draw(st.lists(WORD, max_size=4))),
            "; ".join(f"{k}={v}" for k, v in draw(st.dictionaries(WORD, WORD, max_size=3)).items()),
            draw(st.sampled_from(["", "yes", "no", "是", "0"])),
            draw(TEXT),
        ]
        visit = st.tuples(
            st.sampled_from(["wash", "oil change"]), st.dates(date(2020, 1, 1), TODAY)
        )
        visits = draw(st.lists(visit, max_size=3, unique=True))
        details = [
            [draw(TEXT), draw(TEXT), draw(st.just("") | st.just(str(day)))] for _, day in visits
        ]
        if not visits:
            rows.append(customer + [""] * 5)
        for n, ((kind, day), extra) in enumerate(zip(visits, details, strict=True)):
            cells = customer if n == 0 or draw(st.booleans()) else customer[:1] + [""] * 11
            cells = [*cells[:3], customer[3], *cells[4:]]  # every row keeps its keys
            rows.append([*cells, kind, str(day), *extra])
    return as_csv(rows)


@HYPOTHESIS
@given(content=valid_files())
async def test_importing_twice_is_importing_once(
    db: Database, cn: Settings, clock: ManualClock, tmp_path: Path, content: str
) -> None:
    await wipe(db)
    path = write(tmp_path / "valid.csv", content)
    first = await import_csv(db, path, cn, now=clock.now())
    assert first.problems == []
    once = await snapshot(db)

    again = await import_csv(db, path, cn, now=clock.now() + timedelta(hours=1))

    assert again.problems == []
    assert (again.customers_created, again.customers_updated) == (0, 0)
    assert (again.services_created, again.services_updated) == (0, 0)
    assert await snapshot(db) == once

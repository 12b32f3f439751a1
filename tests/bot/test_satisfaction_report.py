"""The monthly satisfaction report against a fixture whose every figure is computed by hand.

The business is in Asia/Shanghai (UTC+8), so a rating at 00:30 on 1 November local time
(16:30 UTC on 31 October) belongs to November, and one at 23:00 on 31 October does not.
Fixture, November 2026 (service kind, staff, score, RATER detail):

    s1  oil change    Li Na     5            rated 11-01 00:30 local; asked 10-29
    s2  oil change    Li Na     4
    s3  oil change    Wang Lei  4
    s4  oil change    Wang Lei  3  rel 3, ass 4, tan 4, emp 2, res 3
    s5  tyre change   Li Na     5
    s6  tyre change   Wang Lei  2  rel 2, ass 3, tan 4, emp 1, res 2   -> rating ticket T4
    s7  tyre change   Li Na     4
    s8  brake repair  Wang Lei  1  rel 1, ass 2, tan 3, emp 1, res 1   -> rating ticket T5
    s9  brake repair  Li Na     4  rel 4, emp 5
    s10 brake repair  (nobody)  5
    ticket handling: T1 rated 3, T2 rated 4

Not November: p (oil change, Li Na, 1) rated 10-31 23:00 local with its rating ticket T3;
n (brake repair, Wang Lei, 1) rated 12-01 00:30 local (asked 11-27, so an answered November
question); j (tyre change, Li Na, 5) rated in June.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import struct
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bot.reports.satisfaction import (
    QuestionRow,
    RatingRow,
    headline,
    lowest_rated,
    month_bounds,
    monthly,
    parse_month,
    rater_averages,
)
from bot.storage.database import Database
from bot.storage.models import (
    Customer,
    OutboxMessage,
    Rating,
    RatingRequest,
    ServiceRecord,
    Ticket,
)
from tests.conftest import concierge

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOVEMBER = date(2026, 11, 1)
BAD = {"reliability": 3, "assurance": 4, "tangibles": 4, "empathy": 2, "responsiveness": 3}
WORSE = {"reliability": 2, "assurance": 3, "tangibles": 4, "empathy": 1, "responsiveness": 2}
WORST = {"reliability": 1, "assurance": 2, "tangibles": 3, "empathy": 1, "responsiveness": 1}
# name: kind, staff, score, rated at (local), rating question sent at (local), RATER detail
RATED: dict[str, tuple[str, str | None, int, str, str | None, dict[str, int]]] = {
    "s1": ("oil change", "Li Na", 5, "2026-11-01 00:30", "2026-10-29 10:00", {}),
    "s2": ("oil change", "Li Na", 4, "2026-11-03 12:00", "2026-11-02 10:00", {}),
    "s3": ("oil change", "Wang Lei", 4, "2026-11-05 12:00", "2026-11-04 10:00", {}),
    "s4": ("oil change", "Wang Lei", 3, "2026-11-07 12:00", "2026-11-06 10:00", BAD),
    "s5": ("tyre change", "Li Na", 5, "2026-11-09 12:00", "2026-11-08 10:00", {}),
    "s6": ("tyre change", "Wang Lei", 2, "2026-11-11 12:00", "2026-11-10 10:00", WORSE),
    "s7": ("tyre change", "Li Na", 4, "2026-11-13 12:00", "2026-11-12 10:00", {}),
    "s8": ("brake repair", "Wang Lei", 1, "2026-11-15 12:00", "2026-11-14 10:00", WORST),
    "s9": ("brake repair", "Li Na", 4, "2026-11-17 12:00", "2026-11-16 10:00",
           {"reliability": 4, "empathy": 5}),
    "s10": ("brake repair", None, 5, "2026-11-30 23:59", "2026-11-18 10:00", {}),
    "p": ("oil change", "Li Na", 1, "2026-10-31 23:00", "2026-10-28 10:00", {}),
    "n": ("brake repair", "Wang Lei", 1, "2026-12-01 00:30", "2026-11-27 10:00", {}),
    "j": ("tyre change", "Li Na", 5, "2026-06-15 12:00", None, {}),
}  # fmt: skip
# Services asked and never rated: (status of the question, sent at local)
UNANSWERED = {
    "u1": ("sent", "2026-11-20 10:00"),
    "u2": ("unknown", "2026-11-21 10:00"),  # may have arrived: counts as asked
    "u3": ("skipped", None),  # never went out
    "u4": ("failed", None),
    "u5": ("sent", "2026-12-01 01:00"),  # 17:00 UTC on 30 November: December's
}


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


async def seed(session: AsyncSession) -> dict[str, int]:
    """The fixture above; returns the ticket numbers by name (T1...T6)."""
    made = local("2026-01-01 09:00")
    customer = Customer(name="Zhang Wei", created_at=made)
    session.add(customer)
    await session.flush()
    services: dict[str, ServiceRecord] = {}
    for day, name in enumerate([*RATED, *UNANSWERED]):
        kind, staff = RATED[name][:2] if name in RATED else ("tyre change", "Li Na")
        services[name] = ServiceRecord(
            customer_id=customer.id,
            kind=kind,
            performed_at=date(2026, 1, 1) + timedelta(days=day),
            performed_by=staff,
            created_at=made,
        )
    session.add_all(services.values())
    await session.flush()

    def ask(key: str, status: str, sent: str | None, service: str | None = None) -> None:
        session.add(
            OutboxMessage(
                dedupe_key=key,
                category="service",
                customer_id=customer.id,
                text="How did it go?",
                status=status,
                not_before=made,
                created_at=made,
                sent_at=local(sent) if sent else None,
            )
        )
        if service is not None:
            session.add(
                RatingRequest(
                    customer_id=customer.id,
                    service_record_id=services[service].id,
                    outbox_key=key,
                    created_at=made,
                )
            )

    for name, (_, _, score, rated, sent, dimensions) in RATED.items():
        service_id = services[name].id
        if sent is not None:
            ask(f"followup:first:{service_id}", "sent", sent, name)
        session.add(
            Rating(
                customer_id=customer.id,
                service_record_id=service_id,
                score=score,
                dimensions=dimensions,
                channel="telegram",
                created_at=local(rated),
            )
        )
    for name, (status, sent) in UNANSWERED.items():
        ask(f"followup:first:{services[name].id}", status, sent, name)
    # A second follow-up is not a rating question.
    ask(f"followup:second:{services['s2'].id}", "sent", "2026-11-09 10:00")

    tickets = {
        "T1": ("complaint", "2026-10-10 10:00", None),
        "T2": ("human", "2026-11-03 10:00", None),
        "T3": ("rating", "2026-10-31 23:05", "p"),  # 15:05 UTC, still October locally
        "T4": ("rating", "2026-11-11 12:01", "s6"),
        "T5": ("rating", "2026-11-15 12:01", "s8"),
        "T6": ("complaint", "2026-11-15 13:00", None),
    }
    numbers: dict[str, int] = {}
    for name, (kind, opened, service) in tickets.items():
        ticket = Ticket(
            customer_id=customer.id,
            kind=kind,
            subject=name,
            channel="telegram",
            chat_id="1",
            opened_at=local(opened),
            due_at=local(opened) + timedelta(hours=4),
            service_record_id=services[service].id if service else None,
        )
        session.add(ticket)
        await session.flush()
        numbers[name] = ticket.id
    for name, score, rated in (("T1", 3, "2026-11-08 12:00"), ("T2", 4, "2026-11-20 12:00")):
        session.add(
            Rating(
                customer_id=customer.id,
                ticket_id=numbers[name],
                score=score,
                channel="telegram",
                created_at=local(rated),
            )
        )
    # The question about T2's handling went out in November: not a service rating question.
    ask("rating:ticket:2", "sent", "2026-11-19 10:00")
    session.add(
        RatingRequest(
            customer_id=customer.id,
            ticket_id=numbers["T2"],
            outbox_key="rating:ticket:2",
            status="rated",
            created_at=made,
        )
    )
    await session.flush()
    return numbers


async def test_the_month_figures_match_the_hand_computed_ones(db: Database) -> None:
    async with db.transaction() as session:
        tickets = await seed(session)
    async with db.sessions() as session:
        report = await monthly(session, date(2026, 11, 17), SHANGHAI, target=93.0)

    h = report.headline
    assert report.month == NOVEMBER
    assert h.ratings == 10  # s1..s10; T1, T2 are ticket ratings; p is October's, n December's
    # Scores 5+4+4+3+5+2+4+1+4+5 = 37.
    assert h.satisfied == 7  # s1, s2, s3, s5, s7, s9, s10
    assert h.csat == pytest.approx(70.0)  # 7 / 10
    assert h.average == pytest.approx(3.7)  # 37 / 10
    assert h.index == pytest.approx(67.5)  # (3.7 - 1) / 4 * 100
    assert report.gap == pytest.approx(-25.5)  # 67.5 - 93
    assert report.target_met is False
    # Went out in November: s2..s10 (9), n (answered in December), u1 (sent), u2 (unknown) = 12;
    # not s1 (October), u3 (skipped), u4 (failed), u5 (December locally), second follow-ups,
    # ticket questions. Answered: s2..s10 and n = 10 -> 10 / 12 = 83.33 %.
    assert (h.questions, h.answered) == (12, 10)
    assert h.response_rate == pytest.approx(100 * 10 / 12)
    rater = {d.name: (d.average, d.count) for d in report.rater}
    assert rater == {
        "reliability": (pytest.approx(2.5), 4),  # (3 + 2 + 1 + 4) / 4
        "assurance": (pytest.approx(3.0), 3),  # (4 + 3 + 2) / 3
        "tangibles": (pytest.approx(11 / 3), 3),  # (4 + 4 + 3) / 3
        "empathy": (pytest.approx(2.25), 4),  # (2 + 1 + 1 + 5) / 4
        "responsiveness": (pytest.approx(2.0), 3),  # (3 + 2 + 1) / 3
    }
    # brake repair (1 + 4 + 5) / 3 = 3.33; tyre change (5 + 2 + 4) / 3 = 3.67;
    # oil change (5 + 4 + 4 + 3) / 4 = 4.0.
    assert [(g.name, round(g.average or 0, 2), g.count) for g in report.lowest_kinds] == [
        ("brake repair", 3.33, 3),
        ("tyre change", 3.67, 3),
        ("oil change", 4.0, 4),
    ]
    # Wang Lei (4 + 3 + 2 + 1) / 4 = 2.5; Li Na (5 + 4 + 5 + 4 + 4) / 5 = 4.4; s10 has nobody.
    assert [(g.name, g.average, g.count) for g in report.lowest_staff] == [
        ("Wang Lei", pytest.approx(2.5), 4),
        ("Li Na", pytest.approx(4.4), 5),
    ]
    assert report.complaints == (tickets["T4"], tickets["T5"])  # not T3 (October), T6 (complaint)
    assert (report.ticket_handling.average, report.ticket_handling.count) == (3.5, 2)  # (3+4)/2

    trend = {f"{m.month:%Y-%m}": m for m in report.trend}
    assert list(trend) == [f"{2025 + (11 + k) // 12}-{(11 + k) % 12 + 1:02}" for k in range(12)]
    assert trend["2026-11"] == h
    october = trend["2026-10"]  # p only, scored 1; asked: p and s1, both rated
    assert (october.ratings, october.csat, october.average, october.index) == (1, 0.0, 1.0, 0.0)
    assert october.response_rate == 100.0
    june = trend["2026-06"]  # j only, scored 5, never asked
    assert (june.ratings, june.csat, june.index, june.response_rate) == (1, 100.0, 100.0, None)
    assert all(trend[m].ratings == 0 and trend[m].csat is None for m in ("2026-07", "2025-12"))


def test_months_are_in_the_business_time_zone() -> None:
    start, end = month_bounds(NOVEMBER, SHANGHAI)

    assert start == datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
    assert end == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    assert parse_month(" 2026-1 ") == date(2026, 1, 1)
    for wrong in ("2026-13", "2026/11", "november", "2026-00", ""):
        with pytest.raises(ValueError, match="write it as YYYY-MM"):
            parse_month(wrong)


def test_figures_from_plain_rows() -> None:
    at = datetime(2026, 11, 5, tzinfo=UTC)
    rows = [
        RatingRow(4, at, kind="a", staff="x", dimensions={"empathy": 4, "tangibles": True}),
        RatingRow(2, at, kind="b", staff="x", dimensions={"empathy": 9, "unknown": 1}),
        RatingRow(2, at, kind="c", dimensions={"empathy": 2}),
        RatingRow(2, at, kind="c"),
        RatingRow(1, at, about_ticket=True),
    ]
    month = headline(NOVEMBER, rows, [QuestionRow(at, True), QuestionRow(at, False)])
    empty = headline(NOVEMBER, [], [])

    assert (month.ratings, month.satisfied, month.csat, month.average) == (4, 1, 25.0, 2.5)
    assert (month.index, month.response_rate) == (37.5, 50.0)  # (2.5 - 1) / 4 * 100; 1 of 2
    assert (empty.csat, empty.average, empty.index, empty.response_rate) == (None,) * 4
    # Bools and scores outside 1-5 are not scores; unknown dimensions are ignored.
    assert {d.name: (d.average, d.count) for d in rater_averages(rows)}["empathy"] == (3.0, 2)
    assert {d.name: d.count for d in rater_averages(rows)}["tangibles"] == 0
    # b and c both average 2: c, with more ratings, is the surer of the two and comes first.
    ranked = lowest_rated(rows[:4], lambda r: r.kind, limit=2)
    assert [(g.name, g.count) for g in ranked] == [("c", 2), ("b", 1)]


@pytest.fixture
def home(cli_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI's SQLite file holding the fixture, in a Shanghai business called Star Motors."""
    monkeypatch.setenv("CONCIERGE_TIMEZONE", "Asia/Shanghai")
    monkeypatch.setenv("CONCIERGE_BUSINESS_NAME", "Star Motors")

    async def _seed() -> None:
        database = Database(f"sqlite+aiosqlite:///{cli_home / 'cli.db'}")
        try:
            await database.upgrade()
            async with database.transaction() as session:
                await seed(session)
        finally:
            await database.dispose()

    asyncio.run(_seed())
    return cli_home


def flat(text: str) -> str:
    return " ".join(text.split())


def test_the_table_a_supervisor_reads(home: Path) -> None:
    result = concierge("report", "satisfaction", "--month", "2026-11")

    assert result.exit_code == 0, result.output
    shown = flat(result.stdout)
    for expected in (
        "Customer satisfaction · Star Motors · November 2026",
        "Satisfaction index 67.5 ✗ target 93 missed by 25.5 points",
        "CSAT (rated 4-5) 70.0% 7 of 10 service ratings",
        "Average score 3.70 out of 5",
        "Follow-up response 83.3% 10 of 12 rating questions answered",
        "Complaints from ratings 2 tickets #4, #5",
        "Ticket handling 3.50 from 2 ratings",
        "empathy │ 2.25 │ 4",
        "brake repair │ 3.33 │ 3",
        "Wang Lei │ 2.50 │ 4",
        "2026-10 │ 1 │ 0.0% │ 1.00 │ 0.0 │ 100.0%",
        "2026-11 │ 10 │ 70.0% │ 3.70 │ 67.5 │ 83.3%",
        "satisfaction index = (average score - 1) / 4 x 100",
    ):
        assert expected in shown
    assert result.stderr == ""


def test_json_and_csv_exports_hold_every_figure(home: Path) -> None:
    as_json = concierge("report", "satisfaction", "--month", "2026-11", "--format", "json")
    as_csv = concierge("report", "satisfaction", "--month", "2026-11", "--format", "csv")

    assert as_json.exit_code == 0, as_json.output
    report: dict[str, Any] = json.loads(as_json.stdout)
    assert report["month"] == "2026-11"
    assert report["time_zone"] == "Asia/Shanghai"
    assert report["headline"] == {
        "month": "2026-11",
        "service_ratings": 10,
        "satisfied": 7,
        "csat_percent": 70.0,
        "average_score": 3.7,
        "satisfaction_index": 67.5,
        "rating_questions": 12,
        "rating_questions_answered": 10,
        "response_rate_percent": 83.33,
        "target_met": False,
        "gap_points": -25.5,
    }
    assert report["complaints_from_ratings"] == {"count": 2, "tickets": [4, 5]}
    assert report["ticket_handling"] == {"ratings": 2, "average_score": 3.5}
    assert report["rater"][0] == {"dimension": "reliability", "average": 2.5, "ratings": 4}
    assert report["lowest_rated_staff"][0] == {"staff": "Wang Lei", "average": 2.5, "ratings": 4}
    assert [m["month"] for m in report["trend"]][-2:] == ["2026-10", "2026-11"]
    assert report["trend"][0]["csat_percent"] is None

    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert rows[0] == ["section", "item", "metric", "value"]
    for row in (
        ["report", "", "target", "93.0"],
        ["headline", "", "csat_percent", "70.0"],
        ["headline", "", "target_met", "false"],
        ["complaints_from_ratings", "", "tickets", "4 5"],
        ["rater", "tangibles", "average", "3.67"],
        ["lowest_rated_kinds", "brake repair", "ratings", "3"],
        ["trend", "2026-06", "satisfaction_index", "100.0"],
        ["trend", "2026-07", "csat_percent", ""],
    ):
        assert row in rows
    # 4 report fields, 11 headline, 2 + 2 sections, (5 rater + 3 kinds + 2 staff) x 2, 12 x 8.
    assert len(rows) == 1 + 4 + 11 + 4 + 20 + 96


def test_a_month_without_ratings_and_a_bad_month(home: Path) -> None:
    quiet = concierge("report", "satisfaction", "--month", "2026-08")
    wrong = concierge("report", "satisfaction", "--month", "2026-13")

    assert quiet.exit_code == 0, quiet.output
    assert flat(quiet.stdout) == "No ratings in 2026-08."
    assert wrong.exit_code == 2
    assert wrong.stdout == ""
    assert flat(wrong.stderr) == (
        "error: '2026-13' is not a month; write it as YYYY-MM, e.g. 2026-11"
    )


def test_the_trend_chart_is_a_png(home: Path) -> None:
    result = concierge(
        "report", "satisfaction", "--month", "2026-11", "--format", "json", "--chart", "trend.png"
    )

    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # the chart's note goes to stderr, the export stays clean
    assert "Chart written to trend.png." in result.stderr
    png = (home / "trend.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert (width, height) == (1200, 672)  # 10 x 5.6 inches at 120 dpi
    assert 20_000 < len(png) < 1_000_000

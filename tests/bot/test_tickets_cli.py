"""`concierge staff ...` and `concierge tickets ...`, run for real against a SQLite file.

Tickets are opened the way customers open them (a complaint in chat, through the engine) in
the same database the commands use; what the customer will receive is read from the outbox.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest

from bot.clock import ManualClock
from bot.config import Settings
from bot.engine import Engine
from bot.storage.database import Database
from dialogs.types import Inbound
from scheduler.sla import check_tickets
from tests.conftest import concierge

T = TypeVar("T")
ZONE = "Asia/Shanghai"


@pytest.fixture
def home(cli_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONCIERGE_TIMEZONE", ZONE)
    return cli_home


def flat(text: str) -> str:
    return " ".join(text.split())


def cells(output: str, after: str = "") -> list[list[str]]:
    """The body rows of the Rich table printed after the line containing `after`, by cell."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in lines[start:] if "│" in line]
    return rows  # the header's rule is ┃, not │


def on_cli_database(work: Callable[[Database, Settings], Awaitable[T]]) -> T:
    """Run `work` against the database the CLI uses (the test's own event loop is not used)."""

    async def go() -> T:
        settings = Settings()
        database = Database(settings.database_url)
        try:
            await database.upgrade()
            return await work(database, settings)
        finally:
            await database.dispose()

    return asyncio.run(go())


def customer_writes(chat: int, name: str, text: str, ago: timedelta = timedelta(0)) -> None:
    async def write(database: Database, settings: Settings) -> None:
        clock = ManualClock(datetime.now(UTC) - ago)
        await Engine(database, clock, settings).handle(
            Inbound("telegram", str(chat), str(chat), text, clock.now(), name)
        )

    on_cli_database(write)


def add_the_team() -> None:
    for args in (
        ("Ada", "--role", "agent", "--telegram-id", "501", "--username", "@ada_helps"),
        ("Sam", "--role", "supervisor", "--telegram-id", "502"),
        ("Mia", "--role", "marketing", "--telegram-id", "503"),
    ):
        result = concierge("staff", "add", *args)
        assert result.exit_code == 0, result.output


def test_staff_are_added_listed_removed_and_come_back(home: Path) -> None:
    add_the_team()
    bad_role = concierge("staff", "add", "Bo", "--role", "boss")
    taken = concierge("staff", "add", "Eve", "--role", "agent", "--telegram-id", "501")
    unknown = concierge("staff", "remove", "999")
    removed = concierge("staff", "remove", "502")  # by Telegram id
    again = concierge("staff", "remove", "2")  # by id
    listed = concierge("staff", "list")
    everyone = concierge("staff", "list", "--all")
    back = concierge("staff", "add", "Sam Lee", "--role", "supervisor", "--telegram-id", "502")

    assert bad_role.exit_code == 1
    assert flat(bad_role.stderr) == (
        "error: unknown role 'boss'; use one of: agent, supervisor, marketing, admin"
    )
    assert taken.exit_code == 1
    assert "Telegram id 501 is already registered as staff 1 (Ada, agent)" in flat(taken.stderr)
    assert unknown.exit_code == 1
    assert "no staff member with id or Telegram id 999" in flat(unknown.stderr)
    assert removed.exit_code == 0, removed.output
    assert "Removed staff 2: Sam (supervisor, Telegram 502)." in flat(removed.stdout)
    assert again.exit_code == 1
    assert "staff 2 (Sam) was already removed on" in flat(again.stderr)
    assert [row[:5] for row in cells(listed.stdout)] == [
        ["1", "Ada", "agent", "501", "@ada_helps"],
        ["3", "Mia", "marketing", "503", ""],
    ]
    assert "Sam" in everyone.stdout
    assert "removed" in everyone.stdout
    assert back.exit_code == 0, back.output
    assert "Re-activated staff 2: Sam Lee (supervisor, Telegram 502)." in flat(back.stdout)


def test_a_number_that_is_both_an_id_and_a_telegram_id_must_be_told_apart(home: Path) -> None:
    add_the_team()
    assert concierge("staff", "add", "Tiny", "--role", "agent", "--telegram-id", "1").exit_code == 0

    ambiguous = concierge("staff", "remove", "1")
    by_telegram = concierge("staff", "remove", "tg:1")

    assert ambiguous.exit_code == 1
    assert flat(ambiguous.stderr) == (
        "error: 1 is staff 1's id and staff 4's Telegram id; say id:1 or tg:1"
    )
    assert "Removed staff 4: Tiny (agent, Telegram 1)." in flat(by_telegram.stdout)


def outbox(home: Path, number: int) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(home / "cli.db") as connection:
        return connection.execute(
            "SELECT dedupe_key, chat_id, text, buttons FROM outbox WHERE dedupe_key LIKE ?"
            " OR dedupe_key = ? ORDER BY id",
            (f"ticket:{number}:%", f"rating:ticket:{number}"),
        ).fetchall()


def test_the_queue_from_the_terminal_list_assign_resolve_and_the_full_timeline(
    home: Path,
) -> None:
    add_the_team()
    customer_writes(42, "Anna", "I want to make a complaint", ago=timedelta(days=7))
    customer_writes(42, "Anna", "Any news? The noise is still there.", ago=timedelta(days=6))
    customer_writes(43, "Bob", "I want to make a complaint")

    listed = concierge("tickets", "list")
    overdue = concierge("tickets", "list", "--overdue")
    resolved = concierge("tickets", "list", "--status", "resolved")
    bogus = concierge("tickets", "list", "--status", "pending")

    assert listed.exit_code == 0, listed.output
    # number, customer, kind, priority, status, assigned, ..., escalations; the most urgent first
    assert [(r[0], r[1], r[2], r[4], r[5], r[8]) for r in cells(listed.stdout)] == [
        ("1", "Anna", "complaint", "open (overdue)", "", "0"),
        ("2", "Bob", "complaint", "open", "", "0"),
    ]
    assert [r[1] for r in cells(overdue.stdout)] == ["Anna"]
    assert "No tickets match." in resolved.stdout
    assert bogus.exit_code == 1
    assert "unknown status 'pending'" in flat(bogus.stderr)

    on_cli_database(
        lambda database, settings: check_tickets(database, ManualClock(datetime.now(UTC)), settings)
    )
    refused = concierge("tickets", "assign", "1", "503")  # Mia is marketing
    assigned = concierge("tickets", "assign", "1", "501")
    missing = concierge("tickets", "assign", "99", "501")
    refused_resolution = concierge("tickets", "resolve", "1", "--note", "Done.", "--as", "503")
    note = "We replaced the belt, free of charge."
    resolution = concierge("tickets", "resolve", "1", "--note", note, "--as", "501")
    twice = concierge("tickets", "resolve", "1", "--note", "Again.")

    assert refused.exit_code == 1
    assert flat(refused.stderr) == (
        "error: ticket #1 not assigned: Mia (marketing) may not take; "
        "only admin, agent, supervisor may take tickets"
    )
    assert assigned.exit_code == 0, assigned.output
    assert "Ticket #1 assigned to Ada." in assigned.stdout
    assert missing.exit_code == 1
    assert flat(missing.stderr) == "error: there is no ticket #99"
    assert refused_resolution.exit_code == 1
    assert "Mia (marketing) may not resolve" in flat(refused_resolution.stderr)
    assert resolution.exit_code == 0, resolution.output
    assert twice.exit_code == 1
    assert flat(twice.stderr) == "error: ticket #1 is already resolved"

    keys_and_texts = [
        (key.split(":")[2], chat, text, buttons) for key, chat, text, buttons in outbox(home, 1)
    ]
    assert keys_and_texts == [
        ("resolved", "42", f"Update on your ticket #1: {note}", "[]"),
        (
            "1",
            "42",
            "How would you rate how we handled your request #1? Please rate us from 1 to 5.",
            '["5 \\u2b50 Excellent", "4 Good", "3 Okay", "2 Poor", "1 Very poor"]',
        ),
    ]

    with sqlite3.connect(home / "cli.db") as connection:
        told = connection.execute(
            "SELECT text FROM staff_notices WHERE ticket_id = 1"
            " AND kind IN ('assigned', 'resolved') ORDER BY id"
        ).fetchall()
    assert told == [("✋ #1 taken by Ada.",), (f"✅ #1 resolved by Ada: {note}",)]  # the group

    shown = concierge("tickets", "show", "1")
    assert shown.exit_code == 0, shown.output
    text = shown.stdout
    assert "Ticket #1" in text
    assert f"time ({ZONE})" in text
    assert "resolved" in text
    assert note in text
    events = cells(text, "Timeline")
    assert [(actor, kind) for _, actor, kind, _ in events] == [
        ("customer (Anna)", "created"),
        ("customer (Anna)", "customer_message"),
        ("system", "escalated"),
        ("cli", "refused"),
        ("cli", "assigned"),
        ("cli", "refused"),
        ("Ada", "resolved"),
        ("system", "rating_requested"),
    ]
    opened = datetime.now(UTC) - timedelta(days=7)
    assert events[0][0][:10] == f"{opened.astimezone(ZoneInfo(ZONE)):%Y-%m-%d}"
    assert events[0][3].startswith("I want to make a complaint (priority=normal")
    assert "level=2" in events[2][3]
    assert events[6][3] == note

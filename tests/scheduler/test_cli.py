"""`concierge campaign ...` and `concierge service add`, run for real on a SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import concierge
from tests.fakes.telegram_api import FakeTelegramAPI

CUSTOMERS = (
    "external_id,name,phone,language,tags,marketing_consent,service_kind,service_date\n"
    "C1,Zhang Wei,138 0013 8000,zh,vip,yes,oil change,2025-10-01\n"
    "C2,Anna Smith,+1 201 555 0123,en,,yes,,\n"
)


@pytest.fixture
def home(cli_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tmp_path = cli_home
    monkeypatch.setenv("CONCIERGE_QUIET_HOURS_START", "00:00")  # any hour will do
    monkeypatch.setenv("CONCIERGE_QUIET_HOURS_END", "00:00")
    (tmp_path / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    (tmp_path / "offer.txt").write_text("Hello {name}, winter tyres -20%!\n", encoding="utf-8")
    assert concierge("customers", "import", "customers.csv").exit_code == 0
    return tmp_path


@pytest.fixture
def bot_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTelegramAPI]:
    """The fake Bot API server on a thread of its own (the CLI runs its own event loop)."""
    api = FakeTelegramAPI()
    ready, stop = threading.Event(), threading.Event()

    async def serve() -> None:
        async with api.running():
            ready.set()
            await asyncio.get_running_loop().run_in_executor(None, stop.wait)

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert ready.wait(10)
    monkeypatch.setenv("CONCIERGE_TELEGRAM_TOKEN", api.token)
    monkeypatch.setenv("CONCIERGE_TELEGRAM_API_URL", api.url)
    yield api
    stop.set()
    thread.join(10)


def link_chats(path: Path, chats: dict[str, int]) -> None:
    """Give imported customers a Telegram chat, as sharing their phone number in chat does."""
    with sqlite3.connect(path) as connection:
        for external_id, chat in chats.items():
            connection.execute(
                "INSERT INTO channel_identities (channel, external_id, chat_id, customer_id,"
                " created_at) SELECT 'telegram', ?, ?, id, '2026-01-01 00:00:00' FROM customers"
                " WHERE external_ref = ?",
                (str(chat), str(chat), external_id),
            )


def flat(text: str) -> str:
    return " ".join(text.split())


def test_create_preview_list_and_cancel_a_campaign(home: Path) -> None:
    created = concierge(
        "campaign", "create", "--text", "offer.txt", "--segment", "language=zh,tag=vip",
        "--at", "2030-12-01 10:00",
    )  # fmt: skip
    preview = concierge("campaign", "preview", "1")
    listed = concierge("campaign", "list")
    cancelled = concierge("campaign", "cancel", "1")

    assert created.exit_code == 0, created.output
    assert flat(created.stdout).startswith(
        "Campaign 1 created: Hello {name}, winter tyres -20%!, to language=zh,tag=vip, "
        "at 2030-12-01 10:00 (UTC)."
    )
    assert preview.exit_code == 0, preview.output
    assert "Customers in the segment: 1; with a chat the bot can write to: 0;" in flat(
        preview.stdout
    )
    assert "scheduled" in listed.stdout
    assert cancelled.exit_code == 0
    assert "Campaign 1 cancelled" in cancelled.stdout
    assert "cancelled" in concierge("campaign", "list").stdout


def test_a_bad_segment_or_text_is_refused_with_the_reason(home: Path) -> None:
    (home / "bad.txt").write_text("Hi {first_name}", encoding="utf-8")

    segment = concierge("campaign", "create", "--text", "offer.txt", "--segment", "lang=fr")
    text = concierge("campaign", "create", "--text", "bad.txt", "--at", "now")
    neither = concierge("campaign", "create", "--text", "offer.txt")
    missing = concierge("campaign", "status", "7")

    assert segment.exit_code == 1
    assert "language is one of en, zh" in segment.stderr
    assert text.exit_code == 1
    assert "unknown placeholder {first_name}" in text.stderr
    assert neither.exit_code == 1
    assert "--at" in neither.stderr
    assert missing.exit_code == 1
    assert "no campaign with id 7" in missing.stderr


def test_send_wait_sends_from_the_terminal_and_status_counts(
    home: Path, bot_api: FakeTelegramAPI
) -> None:
    link_chats(home / "cli.db", {"C1": 501, "C2": 502})
    assert concierge("campaign", "create", "--text", "offer.txt", "--at", "now").exit_code == 0

    sent = concierge("campaign", "send", "1", "--wait")
    status = concierge("campaign", "status", "1")

    assert sent.exit_code == 0, sent.output
    assert "Campaign 1: 2 messages queued." in sent.stdout
    assert "Sending from this terminal" in sent.stdout
    assert "Campaign 1: 2 sent." in flat(sent.stdout)
    assert sorted(m.text.splitlines()[0] for m in bot_api.sent) == [
        "Hello Anna Smith, winter tyres -20%!",
        "Hello Zhang Wei, winter tyres -20%!",
    ]
    assert "│ sent │ 2 │" in flat(status.stdout)


def test_service_add_records_services_and_appointments(home: Path) -> None:
    done = concierge("service", "add", "C2", "--kind", "tyres", "--date", "2026-01-05",
                     "--next-due", "2026-07-05", "--by", "Li Na")  # fmt: skip
    booked = concierge("service", "add", "1", "--kind", "oil change",
                       "--appointment", "2030-03-04 09:30")  # fmt: skip
    nobody = concierge("service", "add", "C9", "--kind", "x", "--date", "2026-01-01")
    neither = concierge("service", "add", "C1", "--kind", "x")
    past = concierge("service", "add", "C1", "--kind", "x", "--appointment", "2001-01-01 10:00")

    assert done.exit_code == 0, done.output
    assert flat(done.stdout) == (
        "Service recorded for Anna Smith: tyres on 2026-01-05, next due 2026-07-05."
    )
    assert booked.exit_code == 0, booked.output
    assert "Appointment booked for Zhang Wei: oil change on 2030-03-04 09:30 (UTC)" in flat(
        booked.stdout
    )
    shown = flat(concierge("customers", "show", "2").stdout)
    assert "2026-07-05" in shown
    assert nobody.exit_code == 1
    assert "no customer with id or external id 'C9'" in nobody.stderr
    assert neither.exit_code == 2
    assert past.exit_code == 1
    assert "in the past" in past.stderr

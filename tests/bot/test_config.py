"""Settings: environment and .env, async drivers, validation, masking."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.config import Settings
from scheduler.followups import first_days, second_days


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "TELEGRAM_TOKEN", "GREETING_GAP", "TIMEZONE", "TELEGRAM_API_URL"):
        monkeypatch.delenv(f"CONCIERGE_{name}", raising=False)


def test_defaults_need_no_configuration() -> None:
    settings = Settings()
    assert settings.database_url == "sqlite+aiosqlite:///concierge.db"
    assert (settings.web_host, settings.web_port) == ("127.0.0.1", 8080)
    assert settings.greeting_gap == timedelta(hours=6)
    assert settings.telegram_token is None
    assert settings.telegram_api_url == "https://api.telegram.org"


def test_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "CONCIERGE_GREETING_GAP=PT2H\nCONCIERGE_DEFAULT_LANGUAGE=zh\n", encoding="utf-8"
    )
    monkeypatch.setenv("CONCIERGE_DATABASE_URL", "postgresql://bot:pw@db.local/concierge")
    monkeypatch.setenv("CONCIERGE_TELEGRAM_API_URL", "http://127.0.0.1:8081/bot/")
    settings = Settings()
    assert settings.greeting_gap == timedelta(hours=2)
    assert settings.default_language == "zh"
    assert settings.database_url == "postgresql+asyncpg://bot:pw@db.local/concierge"
    assert settings.telegram_api_url == "http://127.0.0.1:8081"


def test_secrets_and_passwords_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONCIERGE_TELEGRAM_TOKEN", "123:very-secret")
    monkeypatch.setenv("CONCIERGE_DATABASE_URL", "postgresql://bot:hunter2@db.local/concierge")
    shown = repr(Settings().masked())
    assert "very-secret" not in shown
    assert "hunter2" not in shown
    assert "********" in shown


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TIMEZONE", "Mars/Olympus", "unknown time zone"),
        ("GREETING_GAP", "-PT1H", "positive"),
        ("WEB_PORT", "http", "integer"),
        ("DEFAULT_LANGUAGE", "fr", "'en' or 'zh'"),
        ("FOLLOW_UP_DAYS_BY_KIND", '{"tyre change": 99}', "give 0 to 60 days"),
        ("FOLLOW_UP_SECOND_DAYS_BY_KIND", '{"tyre change": 0}', "give 1 to 60 days"),
    ],
)
def test_bad_values_are_explained(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(f"CONCIERGE_{name}", value)
    with pytest.raises(ValidationError, match=message):
        Settings()


def test_follow_up_days_per_kind_ignore_case_and_spacing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONCIERGE_FOLLOW_UP_DAYS_BY_KIND", '{"Tyre  Change": 5}')
    monkeypatch.setenv("CONCIERGE_FOLLOW_UP_SECOND_DAYS_BY_KIND", '{"TYRE CHANGE": 14}')
    settings = Settings(_env_file=None)

    assert (first_days("tyre change ", settings), second_days("Tyre change", settings)) == (5, 14)
    assert (first_days("oil change", settings), second_days("oil change", settings)) == (3, 7)

"""The one settings object: `CONCIERGE_*` environment variables or a `.env` file."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dialogs.types import Language, Persona

OFFICIAL_TELEGRAM_API = "https://api.telegram.org"


class Settings(BaseSettings):
    """Effective configuration. Every field can be set as `CONCIERGE_<FIELD NAME>`."""

    model_config = SettingsConfigDict(
        env_prefix="CONCIERGE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        "sqlite+aiosqlite:///concierge.db",
        description="SQLAlchemy URL; plain postgresql:// and sqlite:// URLs get async drivers.",
    )
    telegram_token: SecretStr | None = Field(None, description="Bot token from @BotFather.")
    telegram_api_url: str = Field(
        OFFICIAL_TELEGRAM_API, description="Bot API server root, for self-hosted servers."
    )
    telegram_library: Literal["ptb", "aiogram"] = "ptb"
    telegram_poll_timeout: int = Field(30, ge=0, le=50, description="Long-polling seconds.")
    web_host: str = "127.0.0.1"
    web_port: int = Field(8080, ge=0, le=65535)
    greeting_gap: timedelta = Field(
        timedelta(hours=6), description="How long away counts as returning (e.g. PT6H or 21600)."
    )
    long_absence: timedelta = Field(
        timedelta(days=30), description="Absence worth mentioning in the welcome back."
    )
    default_language: Language = "en"
    timezone: str = "UTC"
    phone_region: str = Field(
        "US", description="Region for phone numbers written without a country code."
    )
    business_name: str = "Concierge"
    log_level: str = "INFO"

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        for plain, driver in (
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgres://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if url.startswith(plain):
                return driver + url.removeprefix(plain)
        return url

    @field_validator("telegram_api_url")
    @classmethod
    def _api_root(cls, url: str) -> str:
        url = url.rstrip("/")
        return url.removesuffix("/bot")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {name!r}; use an IANA name such as Asia/Shanghai"
            ) from None
        return name

    @field_validator("greeting_gap", "long_absence")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration")
        return value

    @property
    def persona(self) -> Persona:
        return Persona(
            business_name=self.business_name,
            default_language=self.default_language,
            greeting_gap=self.greeting_gap,
            long_absence=self.long_absence,
        )

    def masked(self) -> dict[str, Any]:
        """The settings as printable values, secrets and database passwords hidden."""
        shown: dict[str, Any] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                value = "********" if value.get_secret_value() else ""
            elif name == "database_url":
                from sqlalchemy.engine import make_url

                value = make_url(value).render_as_string(hide_password=True)
            shown[name] = value
        return shown

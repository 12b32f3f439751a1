"""The one settings object: `CONCIERGE_*` environment variables or a `.env` file."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.business_hours import BusinessHours, parse_days
from dialogs.types import Language, Persona, RatingSetup


def service_kind_key(kind: str) -> str:
    """How a service kind is looked up in per-kind settings: "Tyre change " is "tyre change"."""
    return " ".join(kind.split()).casefold()


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
    telegram_library: Literal["ptb"] = Field(
        "ptb",
        description="Telegram client library; only python-telegram-bot so far (aiogram: planned).",
    )
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
    cache_dir: Path = Field(
        Path(".concierge-cache"), description="Where knowledge-base embeddings are cached."
    )
    log_level: str = "INFO"

    # Proactive messages (scheduler/): contact policy, schedules, delivery rate, dispatcher.
    quiet_hours_start: time = Field(
        time(21, 0), description="Customer's local time from which marketing and reminders wait."
    )
    quiet_hours_end: time = Field(time(9, 0), description="Customer's local time they resume.")
    marketing_cap: int = Field(
        2, ge=0, description="At most this many marketing messages per customer per period."
    )
    marketing_cap_period: timedelta = Field(timedelta(days=7), description="The cap's period.")
    birthday_hour: int = Field(9, ge=0, le=23, description="Local hour birthday greetings go.")
    reminder_lead_days: int = Field(
        7, ge=0, le=365, description="Days before a service is due that the customer is told."
    )
    event_lead_days: int = Field(
        14, ge=0, le=365, description="Days before an event that its invitation goes out."
    )
    rate_limit_per_second: float = Field(
        30.0, gt=0, le=1000, description="Messages per second over all chats (Telegram: 30)."
    )
    rate_limit_chat_per_second: float = Field(
        1.0, gt=0, description="Messages per second to one private chat (Telegram: 1)."
    )
    rate_limit_group_per_minute: float = Field(
        20.0, gt=0, description="Messages per minute to one group chat (Telegram: 20)."
    )
    paid_broadcast: bool = Field(
        False, description="Telegram paid broadcasts: pay Stars to send above 30 messages/s."
    )
    paid_broadcast_per_second: float = Field(
        1000.0, gt=0, le=1000, description="Messages per second with paid broadcasts on."
    )
    dispatcher_interval: float = Field(
        1.0, gt=0, description="Seconds between the outbox dispatcher's looks for due messages."
    )
    dispatcher_lease: timedelta = Field(
        timedelta(seconds=60), description="How long claimed outbox rows belong to a dispatcher."
    )
    dispatcher_batch: int = Field(200, ge=1, le=10_000, description="Rows claimed at a time.")
    dispatcher_concurrency: int = Field(
        100, ge=1, le=1000, description="Messages in flight to the channel at once."
    )
    sweep_interval: timedelta = Field(
        timedelta(minutes=10), description="How often birthdays, reminders and campaigns are due."
    )
    leader_lock: str = Field(
        "concierge-scheduler", description="PostgreSQL advisory lock naming the scheduler role."
    )
    leader_retry_interval: float = Field(
        5.0, gt=0, le=30, description="Seconds between tries to take over the scheduler role."
    )

    # The human queue (bot/tickets.py, bot/staff/): staff group, business hours, SLA.
    staff_chat_id: str | None = Field(
        None, description="Telegram group where staff see tickets and answer customers."
    )
    business_days: str = Field("mon-fri", description="Working days, e.g. mon-fri or mon-sat.")
    business_opens: time = Field(time(9, 0), description="Local time staff start.")
    business_closes: time = Field(time(18, 0), description="Local time staff leave.")
    ticket_sla: timedelta = Field(
        timedelta(hours=4), description="Business time within which staff answer a ticket."
    )
    ticket_second_escalation: timedelta = Field(
        timedelta(days=2), description="Unanswered this long: escalated to supervisors again."
    )
    supervisor_direct_messages: bool = Field(
        True, description="Escalations also go to supervisors' private chats with the bot."
    )
    ticket_reopen_window: timedelta = Field(
        timedelta(days=7), description="How long after resolution the customer can reopen."
    )

    # Post-service follow-ups and ratings (scheduler/followups.py, dialogs/rating.py).
    follow_up_first_days: int = Field(
        3, ge=0, le=60, description="Days after a service that the rating question goes."
    )
    follow_up_second_days: int = Field(
        7, ge=1, le=60, description="Days after the first follow-up that the second goes."
    )
    follow_up_days_by_kind: dict[str, int] = Field(
        default_factory=dict,
        description='First follow-up per service kind, JSON: {"tyre change": 5}.',
    )
    follow_up_second_days_by_kind: dict[str, int] = Field(
        default_factory=dict,
        description="Second follow-up per service kind (days after the first), JSON.",
    )
    rating_rater: Literal["off", "low", "always"] = Field(
        "low", description="RATER detail questions: off, after a low score (1-3), or always."
    )
    review_link: str | None = Field(None, description="Offered to customers who rate 5.")
    csat_target: float = Field(93.0, gt=0, le=100, description="Satisfaction index target, %.")
    api_key: SecretStr | None = Field(
        None, description="Key the business's systems send (X-API-Key) to the HTTP API."
    )

    @field_validator("follow_up_days_by_kind", "follow_up_second_days_by_kind")
    @classmethod
    def _follow_up_days(cls, days: dict[str, int], info: ValidationInfo) -> dict[str, int]:
        """Kinds are matched ignoring case and spaces around them, as spreadsheets vary."""
        least = 1 if info.field_name == "follow_up_second_days_by_kind" else 0
        keyed: dict[str, int] = {}
        for kind, value in days.items():
            if not least <= value <= 60:
                raise ValueError(
                    f"{kind!r}: {value} days; give {least} to 60 days per service kind"
                )
            keyed[service_kind_key(kind)] = value
        return keyed

    @field_validator("business_days")
    @classmethod
    def _known_days(cls, spec: str) -> str:
        parse_days(spec)
        return spec

    @model_validator(mode="after")
    def _hours_make_sense(self) -> Settings:
        _ = self.business_hours  # raises BusinessHoursError (a ValueError) naming the problem
        return self

    @property
    def business_hours(self) -> BusinessHours:
        return BusinessHours(
            parse_days(self.business_days),
            self.business_opens,
            self.business_closes,
            ZoneInfo(self.timezone),
        )

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

    @field_validator(
        "greeting_gap",
        "long_absence",
        "marketing_cap_period",
        "dispatcher_lease",
        "sweep_interval",
        "ticket_sla",
        "ticket_second_escalation",
        "ticket_reopen_window",
    )
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
            rating=RatingSetup(rater=self.rating_rater, review_link=self.review_link),
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

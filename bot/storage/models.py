"""The tables, as typed SQLAlchemy models. Migrations in `migrations/versions` must match them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database (SQLite stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[str]: JSON}


class Customer(Base):
    """A person the business serves, met in chat or imported from its records."""

    __tablename__ = "customers"
    __table_args__ = (Index(None, "birthday_month", "birthday_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    external_ref: Mapped[str | None] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    address_as: Mapped[str | None] = mapped_column(String(100))
    language: Mapped[str | None] = mapped_column(String(8))
    timezone: Mapped[str | None] = mapped_column(String(64))
    birthday_month: Mapped[int | None]
    birthday_day: Mapped[int | None]
    birth_year: Mapped[int | None]
    phone: Mapped[str | None] = mapped_column(String(32), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    notes: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(default=list)
    preferences: Mapped[dict[str, Any]] = mapped_column(default=dict)
    marketing_consent: Mapped[bool] = mapped_column(default=False)
    marketing_consent_at: Mapped[datetime | None]
    marketing_opt_out_at: Mapped[datetime | None]  # /stop; cleared by /start
    on_file: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime | None]
    visit_count: Mapped[int] = mapped_column(default=0)


class ChannelIdentity(Base):
    """Who a customer is on one channel: (channel, external id) is unique."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(128))
    chat_id: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    display_name: Mapped[str | None] = mapped_column(String(200))
    blocked_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class ServiceRecord(Base):
    """Something the business did for a customer, and when it is due again."""

    __tablename__ = "service_records"
    __table_args__ = (
        UniqueConstraint("customer_id", "kind", "performed_at"),
        Index(None, "performed_at"),  # the follow-up sweep reads the last few days' services
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    performed_at: Mapped[date]
    performed_by: Mapped[str | None] = mapped_column(String(200))
    next_due_at: Mapped[date | None] = mapped_column(index=True)
    created_at: Mapped[datetime]


class ConversationState(Base):
    """The dialog step a customer is in, if any; `version` guards concurrent writers."""

    __tablename__ = "conversation_states"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    dialog: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[datetime]

    __mapper_args__ = {"version_id_col": version}


class MessageLog(Base):
    """Every contact, both directions, with what the inbound message was understood as.

    `inbound_key` ("telegram:12345") is the platform's message id: a redelivered message
    finds its earlier row instead of being handled twice. A Telegram reply ("out") with no
    `delivered_at` was committed but not yet sent: it is sent again after a restart.
    """

    __tablename__ = "message_log"
    __table_args__ = (Index(None, "customer_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(3))  # "in" | "out"
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None]
    inbound_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    reply_to_id: Mapped[int | None] = mapped_column(
        ForeignKey("message_log.id", ondelete="CASCADE"), index=True
    )
    buttons: Mapped[list[str]] = mapped_column(default=list)
    contact_button: Mapped[str | None] = mapped_column(String(100))
    topic: Mapped[str | None] = mapped_column(String(64))  # knowledge-base entry answered
    created_at: Mapped[datetime]
    # When a Telegram reply reached the platform (`bot.channels.reply_sender`). Other channels
    # leave it NULL: the web chat hands its replies back in the HTTP response.
    delivered_at: Mapped[datetime | None]


class Appointment(Base):
    """A booked visit in the future; the customer is reminded the day before."""

    __tablename__ = "appointments"
    __table_args__ = (UniqueConstraint("customer_id", "kind", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime] = mapped_column(index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class Campaign(Base):
    """A message marketing sends to a segment of customers at a set time.

    `segment` is the filter as written ("language=zh,tag=vip"); `event_on` makes the campaign
    an event invitation. `status` is scheduled -> queued (outbox rows written) or cancelled.
    """

    __tablename__ = "campaigns"
    __table_args__ = (Index(None, "status", "send_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    segment: Mapped[str] = mapped_column(String(500), default="")
    event_on: Mapped[date | None]
    send_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    created_at: Mapped[datetime]
    queued_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]


class OutboxMessage(Base):
    """One proactive message: queued, then sent, skipped (reason), failed (error) or unknown.

    `dedupe_key` ("birthday:2026:42", "campaign:7:42") makes every job idempotent. A row is
    marked `sending` and committed before the channel is called; a row still `sending` after
    a crash becomes `unknown` and is never sent again. `lease_owner`/`lease_until` mark rows
    a dispatcher has claimed.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index(None, "status", "not_before"),
        Index(None, "customer_id", "category", "sent_at"),
        Index(None, "campaign_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    category: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    reason: Mapped[str | None] = mapped_column(Text)
    not_before: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    channel: Mapped[str | None] = mapped_column(String(32))
    chat_id: Mapped[str | None] = mapped_column(String(128))
    delivery_id: Mapped[str | None] = mapped_column(String(64))
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    buttons: Mapped[list[str]] = mapped_column(default=list)  # quick replies sent with the text
    sent_at: Mapped[datetime | None]  # when it was handed to the channel
    finished_at: Mapped[datetime | None]


class ChannelPause(Base):
    """A channel asked us to wait (Telegram 429 retry_after) until `paused_until`."""

    __tablename__ = "channel_pauses"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    paused_until: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text, default="")


class KnowledgeEntryRow(Base):
    """One entry of the imported knowledge base, stored as the loaders produced it."""

    __tablename__ = "knowledge_entries"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int]
    data: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class Staff(Base):
    """A person of the business who works the human queue or runs campaigns.

    `role` is agent, supervisor, marketing or admin. Removing staff keeps the row (the audit
    trail refers to it) and sets `removed_at`; only active staff are authorised.
    """

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    telegram_user_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    telegram_username: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]


class Ticket(Base):
    """A complaint or a request for a person: the human queue. The id is the ticket number.

    `status` goes open -> assigned -> waiting (for the customer) -> resolved -> closed; a
    customer who writes "still not fixed" soon after reopens it. `due_at` is when a staff
    answer is due (the SLA); `escalation_level` counts the escalations to supervisors so far.
    """

    __tablename__ = "tickets"
    __table_args__ = (Index(None, "customer_id", "status"), Index(None, "status", "due_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # complaint | human | rating
    priority: Mapped[str] = mapped_column(String(8), default="normal")  # normal | high
    status: Mapped[str] = mapped_column(String(16), default="open")
    subject: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    language: Mapped[str] = mapped_column(String(8), default="en")
    opened_at: Mapped[datetime]
    due_at: Mapped[datetime]
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    first_response_at: Mapped[datetime | None]
    escalation_level: Mapped[int] = mapped_column(default=0)
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None]
    reopened_count: Mapped[int] = mapped_column(default=0)
    service_record_id: Mapped[int | None] = mapped_column(
        ForeignKey("service_records.id", ondelete="SET NULL")
    )


class TicketEvent(Base):
    """One line of a ticket's audit trail: what happened, when, and who did it.

    `actor` is "customer", "system" or "staff:<id>"; `kind` is created, posted, assigned,
    customer_message, staff_message, escalated, resolved, reopened, closed, refused, ...
    """

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    # For writing only: an event can be added with a ticket not yet flushed (no number yet).
    ticket: Mapped[Ticket] = relationship(lazy="raise")
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(24))
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class StaffNotice(Base):
    """A post for the staff group, queued in the customer's transaction so none is lost.

    The staff notifier posts queued notices at the group's rate limit; a burst larger than the
    limit allows is posted as digests. `message_id` is the group message it went out in.
    """

    __tablename__ = "staff_notices"
    __table_args__ = (Index(None, "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    ticket: Mapped[Ticket | None] = relationship(lazy="raise")  # as TicketEvent.ticket
    kind: Mapped[str] = mapped_column(String(24))
    chat_id: Mapped[str | None] = mapped_column(String(64))  # None: the staff group
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued|posted|failed
    created_at: Mapped[datetime]
    posted_at: Mapped[datetime | None]
    message_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)


class StaffPost(Base):
    """A message the bot posted in a staff chat, and the ticket it belongs to (None: digest).

    A staff member replying to any of them answers that ticket's customer.
    """

    __tablename__ = "staff_posts"

    chat_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]


class RatingRequest(Base):
    """A question "how did it go?" about a service (or a ticket's handling).

    The request is pending from the moment its outbox message went out until the customer
    answers (`rated`), declines, or it expires; `reasked_at` records the one reminder allowed.
    """

    __tablename__ = "rating_requests"
    __table_args__ = (
        Index(None, "customer_id", "status"),
        Index(None, "status", "created_at"),  # the sweep finds lapsing pending requests
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    service_record_id: Mapped[int | None] = mapped_column(
        ForeignKey("service_records.id", ondelete="CASCADE"), unique=True
    )
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), unique=True
    )
    outbox_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime]
    reasked_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]


class Rating(Base):
    """A customer's 1-5 rating of a service or of how a complaint was handled.

    `dimensions` holds the optional RATER scores (reliability, assurance, tangibles, empathy,
    responsiveness), each 1-5.
    """

    __tablename__ = "ratings"
    __table_args__ = (Index(None, "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    service_record_id: Mapped[int | None] = mapped_column(
        ForeignKey("service_records.id", ondelete="CASCADE"), unique=True
    )
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), unique=True
    )
    score: Mapped[int]
    comment: Mapped[str | None] = mapped_column(Text)
    dimensions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    channel: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]

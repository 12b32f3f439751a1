"""The data that crosses the boundary between the runtime (`bot`) and the dialogs.

Everything here is an immutable dataclass: the runtime builds a `Turn`, a dialog returns an
`Outcome`, and neither side can reach into the other's state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from dialogs.faq import Knowledge

Language = Literal["en", "zh"]
LANGUAGES: tuple[Language, ...] = ("en", "zh")


class MessageKind(StrEnum):
    """What the customer sent, as far as the dialogs care."""

    TEXT = "text"
    CONTACT = "contact"  # a verified phone number of the sender (Telegram's contact button)
    FOREIGN_CONTACT = "foreign_contact"  # somebody else's contact card
    UNSUPPORTED = "unsupported"  # sticker, photo, voice, ...


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message from a customer, already mapped from the platform's update.

    `external_user_id` identifies the person on `channel`; `chat_id` is where replies go.
    `message_id` is the platform's id of this message: the same id seen twice is one message.
    """

    channel: str
    external_user_id: str
    chat_id: str
    text: str
    received_at: datetime
    display_name: str | None = None
    language_hint: str | None = None
    kind: MessageKind = MessageKind.TEXT
    contact_phone: str | None = None
    message_id: str | None = None
    can_share_contact: bool = False


@dataclass(frozen=True, slots=True)
class Reply:
    """Something the bot says. Rendering (keyboards, HTML, ...) is the channel's business."""

    text: str
    buttons: tuple[str, ...] = ()
    contact_button: str | None = None  # label of a "share my phone number" button, if offered


@dataclass(frozen=True, slots=True)
class ServiceSummary:
    """The last service the business did for the customer."""

    kind: str
    description: str
    performed_at: date
    next_due_at: date | None = None


@dataclass(frozen=True, slots=True)
class CustomerView:
    """A read-only snapshot of the customer, as the dialogs may see it."""

    id: int
    name: str | None
    address_as: str | None
    language: Language | None
    is_new: bool
    previous_seen_at: datetime | None
    visit_count: int
    on_file: bool = False  # imported from the business's records rather than met in chat
    just_linked: bool = False  # this very message linked the chat to a record on file
    last_service: ServiceSummary | None = None
    preferences: Mapping[str, str] = field(default_factory=dict)
    marketing_opted_out: bool = False  # said /stop: no marketing until /start

    @property
    def salutation(self) -> str | None:
        """How the bot addresses the customer: their chosen form, else their name."""
        return self.address_as or self.name


@dataclass(frozen=True, slots=True)
class ConversationState:
    """Where the customer is in a multi-step dialog (e.g. waiting for a confirmation)."""

    dialog: str
    step: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Persona:
    """Business-wide facts and knobs the dialogs need, taken from the settings."""

    business_name: str = "Concierge"
    default_language: Language = "en"
    greeting_gap: timedelta = timedelta(hours=6)
    long_absence: timedelta = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Turn:
    """Everything a dialog may look at to answer one message."""

    inbound: Inbound
    customer: CustomerView
    now: datetime
    language: Language
    state: ConversationState | None = None
    persona: Persona = field(default_factory=Persona)
    knowledge: Knowledge | None = None  # the FAQ knowledge base, when the bot has one

    @property
    def text(self) -> str:
        return self.inbound.text


# --- Effects: what a dialog asks the runtime to change, applied in the message's transaction.


@dataclass(frozen=True, slots=True)
class SetState:
    dialog: str
    step: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClearState:
    pass


@dataclass(frozen=True, slots=True)
class SetAddress:
    address_as: str


@dataclass(frozen=True, slots=True)
class SetLanguage:
    language: Language


@dataclass(frozen=True, slots=True)
class EraseCustomer:
    """Erase every piece of personal data the business holds about the customer."""


@dataclass(frozen=True, slots=True)
class SetMarketingOptOut:
    """Stop (True) or resume (False) marketing messages; consent on file is left as it is."""

    opted_out: bool


Effect = SetState | ClearState | SetAddress | SetLanguage | EraseCustomer | SetMarketingOptOut


@dataclass(frozen=True, slots=True)
class Outcome:
    """A dialog's answer: what to say, what to change, and what the message was understood as."""

    replies: tuple[Reply, ...] = ()
    effects: tuple[Effect, ...] = ()
    intent: str = "unknown"
    confidence: float = 1.0
    topic: str | None = None  # the knowledge-base entry the answer came from

    def then(self, other: Outcome) -> Outcome:
        """This outcome followed by `other`; the intent is the later, more specific one."""
        return Outcome(
            replies=self.replies + other.replies,
            effects=self.effects + other.effects,
            intent=other.intent,
            confidence=other.confidence,
            topic=other.topic,
        )

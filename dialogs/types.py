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
    from dialogs.dissatisfaction import ComplaintModel
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
class TicketView:
    """The customer's live ticket with a person, or one resolved recently enough to reopen."""

    number: int
    status: str  # open | assigned | waiting | resolved
    kind: str  # complaint | human | rating
    opened_at: datetime
    resolved_at: datetime | None = None
    customer_messages: int = 0  # messages the customer added since opening it

    @property
    def live(self) -> bool:
        return self.status in {"open", "assigned", "waiting"}


@dataclass(frozen=True, slots=True)
class PendingRating:
    """A "how did it go?" question the customer was sent and has not answered yet.

    `subject` is "service" (a follow-up after a service) or "ticket" (how a complaint was
    handled); `reasked` is True once the bot has reminded them (it does so at most once).
    """

    request_id: int
    subject: Literal["service", "ticket"]
    asked_at: datetime
    reasked: bool = False
    service_kind: str | None = None
    service_date: date | None = None
    ticket_number: int | None = None


@dataclass(frozen=True, slots=True)
class RatingSetup:
    """The business's rating options (from the settings)."""

    rater: Literal["off", "low", "always"] = "low"  # RATER detail: never, after 1-3, always
    review_link: str | None = None  # offered after a 5


@dataclass(frozen=True, slots=True)
class Persona:
    """Business-wide facts and knobs the dialogs need, taken from the settings."""

    business_name: str = "Concierge"
    default_language: Language = "en"
    greeting_gap: timedelta = timedelta(hours=6)
    long_absence: timedelta = timedelta(days=30)
    rating: RatingSetup = field(default_factory=RatingSetup)


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
    ticket: TicketView | None = None  # live, or resolved within the reopening window
    pending_rating: PendingRating | None = None
    complaint_model: ComplaintModel | None = None  # reads complaints the lexicon misses

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


@dataclass(frozen=True, slots=True)
class OpenTicket:
    """Open a ticket in the human queue; the runtime adds the confirmation with its number.

    `kind` is complaint, human (asked for a person) or rating (a low rating or bad comment).
    `cues` are what made the message a complaint, kept on the ticket for the audit trail.
    """

    kind: Literal["complaint", "human", "rating"]
    subject: str
    priority: Literal["normal", "high"] = "normal"
    cues: tuple[str, ...] = ()
    rating_request_id: int | None = None  # the rating that opened it, if any


@dataclass(frozen=True, slots=True)
class AddToTicket:
    """The customer's message goes to their live ticket (and to the staff thread)."""

    number: int
    text: str


@dataclass(frozen=True, slots=True)
class ReopenTicket:
    """The customer says a resolved problem is not solved: the ticket is live again."""

    number: int
    text: str


@dataclass(frozen=True, slots=True)
class RecordRating:
    """Store the customer's answer to a rating request (score 1-5; RATER scores optional).

    Recording again for the same request updates the rating (e.g. a comment after the score).
    """

    request_id: int
    score: int
    comment: str | None = None
    dimensions: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MarkRatingReasked:
    """The bot reminded the customer of a pending rating (allowed once)."""

    request_id: int


@dataclass(frozen=True, slots=True)
class CloseRatingRequest:
    """Stop asking: the customer declined, or the question lapsed."""

    request_id: int
    status: Literal["declined", "expired"] = "declined"


Effect = (
    SetState
    | ClearState
    | SetAddress
    | SetLanguage
    | EraseCustomer
    | SetMarketingOptOut
    | OpenTicket
    | AddToTicket
    | ReopenTicket
    | RecordRating
    | MarkRatingReasked
    | CloseRatingRequest
)


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

"""The pure dialogs: what the bot answers for a turn, with no database and no clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from dialogs import respond
from dialogs.cleaning import MAX_TEXT_LENGTH, clean_text
from dialogs.language import choose_language, detect_language, language_from_hint
from dialogs.router import command_name
from dialogs.types import (
    ClearState,
    ConversationState,
    CustomerView,
    EraseCustomer,
    Inbound,
    Language,
    MessageKind,
    OpenTicket,
    ServiceSummary,
    SetAddress,
    SetLanguage,
    SetState,
    Turn,
)

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def turn(
    text: str,
    *,
    new: bool = False,
    seen: timedelta | None = timedelta(minutes=5),
    state: ConversationState | None = None,
    language: Language = "en",
    kind: MessageKind = MessageKind.TEXT,
    **customer: object,
) -> Turn:
    view = CustomerView(
        id=1,
        name=customer.pop("name", "Anna Li"),  # type: ignore[arg-type]
        address_as=customer.pop("address_as", None),  # type: ignore[arg-type]
        language=language,
        is_new=new,
        previous_seen_at=None if seen is None else NOW - seen,
        visit_count=1,
        **customer,  # type: ignore[arg-type]
    )
    inbound = Inbound("web", "u", "u", text, NOW, kind=kind)
    return Turn(inbound=inbound, customer=view, now=NOW, language=language, state=state)


def texts(t: Turn) -> str:
    return "\n".join(reply.text for reply in respond(t).replies)


def test_the_answer_to_how_should_i_address_you_is_saved() -> None:
    asked = ConversationState("profile", "ask_address")
    outcome = respond(turn("Dr. Li", state=asked))
    assert SetAddress("Dr. Li") in outcome.effects
    assert ClearState() in outcome.effects


def test_a_question_instead_of_a_name_is_answered_and_the_step_dropped() -> None:
    asked = ConversationState("profile", "ask_address")
    outcome = respond(turn("Do you repair electric cars?", state=asked))
    assert not any(isinstance(effect, SetAddress) for effect in outcome.effects)
    assert ClearState() in outcome.effects
    assert outcome.intent == "faq.not_ready"  # these turns carry no knowledge base


def test_while_the_knowledge_base_loads_the_bot_says_so_and_offers_a_person() -> None:
    outcome = respond(turn("Do you repair electric cars?"))
    assert outcome.intent == "faq.not_ready"
    (reply,) = outcome.replies
    assert "again in a minute" in reply.text
    assert reply.buttons == ("Talk to a person",)
    (remember,) = [e for e in outcome.effects if isinstance(e, SetState)]
    asked = ConversationState(remember.dialog, remember.step, remember.data)
    tapped = respond(turn("Talk to a person", state=asked))
    assert tapped.intent == "ticket.human"
    (ticket,) = [e for e in tapped.effects if isinstance(e, OpenTicket)]
    assert ticket.subject == "Do you repair electric cars?"  # staff see the question
    assert "请一分钟后再问" in texts(turn("你们修电动车吗", language="zh"))


def test_next_due_date_is_mentioned_only_when_still_ahead() -> None:
    service = ServiceSummary("maintenance", "oil change", date(2026, 5, 2), date(2027, 5, 2))
    welcome = texts(turn("hi", seen=timedelta(days=200), address_as="Anna", last_service=service))
    assert "Your next maintenance is due on May 2, 2027." in welcome
    past = ServiceSummary("maintenance", "oil change", date(2025, 5, 2), date(2025, 11, 2))
    assert "next" not in texts(turn("hi", seen=timedelta(days=200), last_service=past))


def test_language_command_and_button() -> None:
    asked = respond(turn("/language"))
    assert asked.replies[0].buttons == ("English", "中文")
    chosen = respond(turn("中文", state=ConversationState("language", "choose")))
    assert SetLanguage("zh") in chosen.effects
    assert "中文" in chosen.replies[0].text


def test_erase_needs_an_explicit_yes() -> None:
    waiting = ConversationState("forget", "confirm")
    assert EraseCustomer() in respond(turn("yes", state=waiting)).effects
    assert EraseCustomer() in respond(turn("确定，删除我的数据", state=waiting)).effects
    other = respond(turn("what are your opening hours?", state=waiting))
    assert EraseCustomer() not in other.effects
    assert ClearState() in other.effects


def test_foreign_contact_is_refused_and_the_button_offered_again() -> None:
    outcome = respond(turn("", kind=MessageKind.FOREIGN_CONTACT))
    assert "your own phone number" in outcome.replies[0].text
    assert outcome.replies[0].contact_button


def test_commands_with_bot_suffix_and_arguments() -> None:
    assert command_name("/help@concierge_bot") == "/help"
    assert command_name("/LANGUAGE zh") == "/language"
    assert command_name("hello /help") is None
    assert command_name("/") is None


def test_language_detection_by_script_and_hint() -> None:
    assert detect_language("我的宝马什么时候保养？BMW") == "zh"
    assert detect_language("When is my next service?") == "en"
    assert detect_language("123 👍") is None
    assert language_from_hint("zh-hans") == "zh"
    assert language_from_hint("fr") is None
    assert choose_language("👍", None, "zh-CN", "en") == "zh"
    assert choose_language("👍", "en", "zh-CN", "zh") == "en"


@given(st.text(max_size=12_000))
def test_any_text_gets_an_answer_and_never_crashes(raw: str) -> None:
    text = clean_text(raw)
    assert len(text) <= MAX_TEXT_LENGTH
    assert not any(ord(ch) < 32 and ch not in "\n\t" for ch in text)
    for new in (True, False):
        outcome = respond(turn(text, new=new, seen=timedelta(days=40)))
        assert outcome.replies
        assert all(reply.text for reply in outcome.replies)


@given(st.text(max_size=200), st.sampled_from(["profile", "language", "forget", "gone"]))
def test_any_text_in_any_dialog_step_gets_an_answer(raw: str, dialog: str) -> None:
    outcome = respond(turn(clean_text(raw), state=ConversationState(dialog, "x")))
    assert outcome.replies

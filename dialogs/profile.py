"""What the customer tells us about themselves: how to address them, language, phone, erasure."""

from __future__ import annotations

import re

from dialogs.cleaning import fold
from dialogs.consent import asks_to_stop
from dialogs.greeting import remembered
from dialogs.smalltalk import small_talk_kind
from dialogs.texts import t
from dialogs.types import (
    ClearState,
    EraseCustomer,
    Language,
    Outcome,
    Reply,
    SetAddress,
    SetLanguage,
    SetState,
    Turn,
)

MAX_ADDRESS_LENGTH = 40
LANGUAGE_BUTTONS: dict[str, Language] = {"English": "en", "中文": "zh"}
_LANGUAGE_WORDS: dict[str, Language] = {
    "english": "en", "en": "en", "英文": "en", "英语": "en",
    "中文": "zh", "chinese": "zh", "zh": "zh", "汉语": "zh", "普通话": "zh",
}  # fmt: skip
_YES = {"yes", "y", "yes please", "sure", "ok", "okay", "是", "是的", "确定", "确认", "好", "好的"}
_NO = {"no", "n", "no thanks", "cancel", "不", "不要", "否", "取消", "算了"}
_ERASE_PHRASES = re.compile(
    r"\b(delete|erase|remove|wipe)\b.*\b(my|all)\b.*\b(data|information|info|details)\b"
    r"|\bforget (about )?me\b"
    r"|(删除|清除|抹去|删掉).{0,4}(我的)?(数据|信息|资料|记录)|忘记我",
    re.IGNORECASE,
)
_QUESTION = re.compile(r"[?？]|^(what|how|when|where|why|who|can|do|does|is|are)\b", re.IGNORECASE)


def looks_like_address(text: str) -> bool:
    """Whether a reply to "how should I address you?" is plausibly a name, not a question."""
    words = text.split()
    return (
        0 < len(text) <= MAX_ADDRESS_LENGTH
        and len(words) <= 4
        and not _QUESTION.search(text)
        and not any(ch.isdigit() for ch in text)
        and not text.startswith("/")
        and not asks_to_erase(text)
        and not asks_to_stop(text)
        and small_talk_kind(text) is None
    )


def asks_to_erase(text: str) -> bool:
    """Plain-words requests to delete personal data, in English or Chinese."""
    return bool(_ERASE_PHRASES.search(text))


# --- how to address the customer


def ask_name(turn: Turn) -> Outcome:
    return Outcome(
        replies=(Reply(t(turn.language, "profile.name_prompt")),),
        effects=(SetState("profile", "ask_name"),),
        intent="profile.ask_name",
    )


def continue_profile(turn: Turn) -> Outcome | None:
    """The answer to "how should I address you?"; declines when it is something else."""
    assert turn.state is not None
    text = turn.text
    if turn.state.step == "ask_name" and len(text) > MAX_ADDRESS_LENGTH:
        return Outcome(
            replies=(Reply(t(turn.language, "profile.name_too_long", limit=MAX_ADDRESS_LENGTH)),),
            intent="profile.ask_name",
        )
    if not looks_like_address(text):
        return None
    return Outcome(
        replies=(Reply(t(turn.language, "greeting.address_saved", name=text)),),
        effects=(SetAddress(text), ClearState()),
        intent="profile.address",
    )


def contact_shared(turn: Turn) -> Outcome:
    """The customer shared their own phone number; the runtime already looked it up on file."""
    lang, customer = turn.language, turn.customer
    if customer.just_linked:
        text = " ".join(
            [t(lang, "profile.linked", name=customer.salutation or ""), *remembered(turn)]
        )
        return Outcome(replies=(Reply(text),), effects=(ClearState(),), intent="profile.linked")
    replies = [Reply(t(lang, "profile.contact_saved"))]
    if turn.state is not None and turn.state.dialog == "profile":
        replies.append(Reply(t(lang, "profile.name_prompt")))
    return Outcome(replies=tuple(replies), intent="profile.contact")


def foreign_contact(turn: Turn) -> Outcome:
    return Outcome(
        replies=(
            Reply(
                t(turn.language, "profile.foreign_contact"),
                contact_button=t(turn.language, "greeting.share_contact_button"),
            ),
        ),
        intent="profile.foreign_contact",
    )


# --- language


def ask_language(turn: Turn) -> Outcome:
    argument = turn.text.split(maxsplit=1)[1:] if turn.text.startswith("/") else []
    if argument and (chosen := _LANGUAGE_WORDS.get(fold(argument[0]))):
        return language_chosen(chosen)
    return Outcome(
        replies=(Reply(t(turn.language, "language.choose"), tuple(LANGUAGE_BUTTONS)),),
        effects=(SetState("language", "choose"),),
        intent="language.ask",
    )


def continue_language(turn: Turn) -> Outcome | None:
    chosen = LANGUAGE_BUTTONS.get(turn.text) or _LANGUAGE_WORDS.get(fold(turn.text))
    return language_chosen(chosen) if chosen else None


def language_chosen(language: Language) -> Outcome:
    return Outcome(
        replies=(Reply(t(language, "language.set")),),
        effects=(SetLanguage(language), ClearState()),
        intent="language.set",
    )


# --- erasure


def ask_erase(turn: Turn) -> Outcome:
    lang = turn.language
    buttons = (t(lang, "forget.yes_button"), t(lang, "forget.no_button"))
    return Outcome(
        replies=(Reply(t(lang, "forget.confirm"), buttons),),
        effects=(SetState("forget", "confirm"),),
        intent="forget.ask",
    )


def continue_erase(turn: Turn) -> Outcome | None:
    """Erase only on an explicit yes; anything else keeps the data."""
    answer = fold(turn.text)
    if turn.text in {t(lang, "forget.yes_button") for lang in ("en", "zh")} or answer in _YES:
        return Outcome(
            replies=(Reply(t(turn.language, "forget.done")),),
            effects=(EraseCustomer(),),
            intent="forget.done",
        )
    if turn.text in {t(lang, "forget.no_button") for lang in ("en", "zh")} or answer in _NO:
        return Outcome(
            replies=(Reply(t(turn.language, "forget.kept")),),
            effects=(ClearState(),),
            intent="forget.kept",
        )
    return None

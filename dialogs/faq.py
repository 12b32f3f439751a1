"""Answering questions from the knowledge base: answer, ask "did you mean …?", or admit it.

The matcher lives in `knowledge`; this module turns its verdict into what the customer reads:
the entry's answer in their language (or the other language with a note), up to three
"did you mean" buttons when the matcher hesitates, and an honest "I don't know" with the way
to a person when nothing fits. Buttons are remembered in the conversation state, so a tap
maps to its entry exactly instead of being matched again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from dialogs.texts import t
from dialogs.types import Language, Outcome, Reply, SetState, Turn
from knowledge.entries import Entry, KnowledgeBase
from knowledge.matcher import Decision, Match

DIALOG = "faq"
MAX_OPTIONS = 3


class MatcherLike(Protocol):
    def match(self, text: str, language: Language | None = None, top_k: int = 3) -> Match: ...


@dataclass(frozen=True, slots=True)
class Knowledge:
    """The knowledge base the bot answers from, with its built matcher."""

    base: KnowledgeBase
    matcher: MatcherLike


def label(entry: Entry, language: Language) -> str:
    """How an entry is named on a button: its title, else its first question."""
    for lang in (language, *sorted(entry.titles), *sorted(entry.questions)):
        if entry.titles.get(lang):
            return entry.titles[lang]
        if entry.questions.get(lang):
            return entry.questions[lang][0]
    return entry.id


def answer_question(turn: Turn) -> Outcome | None:
    """The FAQ route: None when the bot has no knowledge base at all."""
    knowledge = turn.knowledge
    if knowledge is None:
        return None
    match = knowledge.matcher.match(turn.text, turn.language, top_k=MAX_OPTIONS)
    best = match.best
    confidence = best.score if best is not None else 0.0
    if match.decision is Decision.ANSWER and best is not None:
        entry = knowledge.base.get(best.entry_id)
        if entry is not None:
            return answer_entry(turn, knowledge.base, entry, confidence)
    if match.decision is Decision.DID_YOU_MEAN:
        entries = [knowledge.base.get(c.entry_id) for c in match.candidates[:MAX_OPTIONS]]
        options = {label(e, turn.language): e.id for e in entries if e is not None}
        if options:
            return _did_you_mean(turn, options, confidence)
    return not_known(turn, confidence)


def answer_entry(turn: Turn, base: KnowledgeBase, entry: Entry, confidence: float) -> Outcome:
    """The entry's answer, with its follow-ups as buttons."""
    lang = turn.language
    found = entry.answer_in(lang)
    text = found[1] if found else ""
    if found and found[0] != lang:
        text = f"{t(lang, 'faq.other_language_note')}\n\n{text}"
    for link in entry.links:
        text += f"\n{link.title}: {link.url}"
    follow_ups = [base.get(i) for i in entry.follow_ups]
    options = {label(e, lang): e.id for e in follow_ups[:MAX_OPTIONS] if e is not None}
    effects = (SetState(DIALOG, "follow_ups", {"options": options}),) if options else ()
    return Outcome(
        replies=(Reply(text, tuple(options)),),
        effects=effects,
        intent="faq.answer",
        confidence=confidence,
        topic=entry.id,
    )


def _did_you_mean(turn: Turn, options: Mapping[str, str], confidence: float) -> Outcome:
    lang = turn.language
    buttons = (*options, t(lang, "faq.none_of_these"))
    return Outcome(
        replies=(Reply(t(lang, "faq.did_you_mean"), buttons),),
        effects=(SetState(DIALOG, "did_you_mean", {"options": dict(options)}),),
        intent="faq.did_you_mean",
        confidence=confidence,
    )


def not_ready(turn: Turn) -> Outcome:
    """The knowledge base is still being indexed: ask again shortly, or talk to a person."""
    lang = turn.language
    return Outcome(
        replies=(Reply(t(lang, "faq.not_ready"), (t(lang, "faq.talk_to_person"),)),),
        effects=(SetState(DIALOG, "unknown", {"question": turn.text}),),
        intent="faq.not_ready",
        confidence=0.0,
    )


def not_known(turn: Turn, confidence: float = 0.0) -> Outcome:
    """Say honestly that the knowledge base has no answer, and offer a person."""
    lang = turn.language
    return Outcome(
        replies=(Reply(t(lang, "faq.unknown"), (t(lang, "faq.talk_to_person"),)),),
        # Kept so that "talk to a person" hands staff the question, not the button's label.
        effects=(SetState(DIALOG, "unknown", {"question": turn.text}),),
        intent="faq.unknown",
        confidence=confidence,
    )


def continue_faq(turn: Turn) -> Outcome | None:
    """A tap on one of the buttons the FAQ offered; anything else goes back to the router."""
    knowledge, state = turn.knowledge, turn.state
    if knowledge is None or state is None:
        return None
    options = state.data.get("options", {})
    entry_id = options.get(turn.text) if isinstance(options, Mapping) else None
    if isinstance(entry_id, str) and (entry := knowledge.base.get(entry_id)) is not None:
        return answer_entry(turn, knowledge.base, entry, 1.0)
    if state.step == "did_you_mean" and turn.text in {
        t(lang, "faq.none_of_these") for lang in ("en", "zh")
    }:
        return not_known(turn)
    return None

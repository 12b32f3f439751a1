"""Which out-of-scope examples the bot's matcher learns for a knowledge base, and building it.

The matcher can learn example questions the knowledge base must not answer as a class of their
own (`build_matcher(..., out_of_scope=...)`). The bot gives it:

1. the knowledge base's own examples (`out_of_scope:` in its file), when it has any;
2. otherwise, with `tuning.USE_DEFAULT_OUT_OF_SCOPE`, the default set shipped in
   `knowledge.samples` (chit-chat and off-topic questions), less any question that is also one
   of the base's entries' questions (the business answers it).

Either way only the examples in languages the entries have questions in. Examples in another
language teach the matcher that the language itself means "out of scope": with the default set's
Chinese examples, an English-only base rejected 84 % of the sample workshop's Chinese questions
and answered none, though their best entry was right 93 % of the time (`bench/faq_report.md`,
"Questions in a language the knowledge base lacks"). The multilingual encoders still place a
Chinese "tell me a joke" next to the English one, so such questions stay out of scope.

Not done: also leaving out the defaults that the matcher built without examples answers
outright. On the car-workshop KBs those are the confident wrong answers the set exists to stop
("What happened in the news today?" -> opening hours), not topics the business covers.

`build_bot_matcher` is the one way the bot, `concierge kb ask/eval` and the evaluation hook
build a matcher, so all of them answer alike.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from knowledge import tuning
from knowledge.encoder import EmbeddingCache, Encoder
from knowledge.entries import KnowledgeBase, Language, question_key
from knowledge.matcher import Matcher, build_matcher
from knowledge.samples import default_out_of_scope


class Source(enum.Enum):
    OWN = "the knowledge base's own"
    DEFAULT = "the default set"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class OutOfScope:
    """The examples a matcher learns, where they come from, and the defaults left out."""

    examples: tuple[str, ...]
    source: Source
    #: default examples left out because an entry of the knowledge base asks them
    yielded: tuple[str, ...] = ()
    #: languages whose examples were left out: no entry has questions in them
    unused_languages: tuple[Language, ...] = ()


def choose_examples(
    kb: KnowledgeBase, use_default: bool = tuning.USE_DEFAULT_OUT_OF_SCOPE
) -> OutOfScope:
    """The out-of-scope examples the bot's matcher learns for `kb`."""
    own, unused = _in_languages_of(kb, kb.out_of_scope)
    if own:  # else the base has none, or none in its questions' languages
        return OutOfScope(tuple(q for qs in own.values() for q in qs), Source.OWN, (), unused)
    if not use_default:
        return OutOfScope((), Source.NONE)
    asked = {question_key(q) for entry in kb for _, q in entry.all_questions()}
    defaults, unused = _in_languages_of(kb, default_out_of_scope())
    kept: list[str] = []
    yielded: list[str] = []
    for questions in defaults.values():
        for question in questions:
            (yielded if question_key(question) in asked else kept).append(question)
    return OutOfScope(tuple(kept), Source.DEFAULT, tuple(yielded), unused)


def _in_languages_of(
    kb: KnowledgeBase, examples: Mapping[Language, Sequence[str]]
) -> tuple[dict[Language, Sequence[str]], tuple[Language, ...]]:
    """`examples` in the languages of `kb`'s questions (sorted), and the other languages."""
    kept = {
        lang: examples[lang] for lang in sorted(examples) if lang in kb.languages and examples[lang]
    }
    return kept, tuple(lang for lang in sorted(examples) if lang not in kept and examples[lang])


def build_bot_matcher(
    kb: KnowledgeBase,
    encoders: Sequence[Encoder] | None = None,
    cache: EmbeddingCache | None = None,
    use_titles: bool = tuning.USE_TITLES,
    use_default: bool = tuning.USE_DEFAULT_OUT_OF_SCOPE,
) -> tuple[Matcher, OutOfScope]:
    """The matcher the bot answers with, and the out-of-scope examples it learned."""
    chosen = choose_examples(kb, use_default)
    return build_matcher(kb, encoders, cache, use_titles, chosen.examples), chosen

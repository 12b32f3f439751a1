"""Which out-of-scope examples the bot's matcher learns for a knowledge base, and building it.

The matcher can learn example questions the knowledge base must not answer as a class of their
own (`build_matcher(..., out_of_scope=...)`). The bot gives it:

1. the knowledge base's own examples (`out_of_scope:` in its file), when it has any;
2. otherwise, with `tuning.USE_DEFAULT_OUT_OF_SCOPE`, the default set shipped in
   `knowledge.samples` (chit-chat and off-topic questions), less any question that is also one
   of the base's entries' questions (the business answers it).

Either way in proportion to the languages of the entries' questions. Examples in a language the
entries lack teach the matcher that the language itself means "out of scope": with the default
set's Chinese examples, an English-only base rejected 84 % of the sample workshop's Chinese
questions and answered none, though their best entry was right 93 % of the time. So a
language's examples are thinned (evenly, keeping their order) to its share of the questions
relative to the most-asked language: none for a language without questions, all for a base as
Chinese as it is English, and a tenth of the Chinese ones for a base with ten English questions
to each Chinese one. An English base with 2 of its 32 entries also in Chinese: Chinese
questions to the other entries 31 -> 47 % answered right with the shares (`bench/faq.py
languages`; `bench/faq_report.md`, "Questions in a language the knowledge base lacks"). The
multilingual encoders still place a Chinese "tell me a joke" next to the English one, so such
questions stay out of scope.

Not done: also leaving out the defaults that the matcher built without examples answers
outright. On the car-workshop KBs those are the confident wrong answers the set exists to stop
("What happened in the news today?" -> opening hours), not topics the business covers.

`build_bot_matcher` is the one way the bot, `concierge kb ask/eval` and the evaluation hook
build a matcher, so all of them answer alike.
"""

from __future__ import annotations

import enum
from collections import Counter
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
    #: (language, how many of its examples were not learnt), where the entries have fewer
    #: questions in it than in their most-asked language
    left_out: tuple[tuple[Language, int], ...] = ()


def choose_examples(
    kb: KnowledgeBase, use_default: bool = tuning.USE_DEFAULT_OUT_OF_SCOPE
) -> OutOfScope:
    """The out-of-scope examples the bot's matcher learns for `kb`."""
    own, left_out = _in_proportion(kb, kb.out_of_scope)
    if own:  # else the base has none, or none in its questions' languages
        return OutOfScope(own, Source.OWN, (), left_out)
    if not use_default:
        return OutOfScope((), Source.NONE)
    asked = {question_key(q) for entry in kb for _, q in entry.all_questions()}
    defaults: dict[Language, list[str]] = {}
    yielded: list[str] = []
    for language, questions in sorted(default_out_of_scope().items()):
        for question in questions:
            if question_key(question) in asked:
                yielded.append(question)
            else:
                defaults.setdefault(language, []).append(question)
    kept, left_out = _in_proportion(kb, defaults)
    return OutOfScope(kept, Source.DEFAULT, tuple(yielded), left_out)


def _in_proportion(
    kb: KnowledgeBase, examples: Mapping[Language, Sequence[str]]
) -> tuple[tuple[str, ...], tuple[tuple[Language, int], ...]]:
    """`examples` thinned to the languages' shares of `kb`'s questions, and what was left out.

    A language gets its share of its examples relative to the language the entries ask most
    in (at least one example if it has any questions), spread evenly over its list.
    """
    asked = Counter(language for entry in kb for language, _ in entry.all_questions())
    most = max(asked.values(), default=0)
    kept: list[str] = []
    left_out: list[tuple[Language, int]] = []
    for language in sorted(examples):
        questions = examples[language]
        share = asked[language] / most if most else 0.0
        n = min(len(questions), max(1, round(len(questions) * share))) if share else 0
        kept += (questions[i * len(questions) // n] for i in range(n))
        if n < len(questions):
            left_out.append((language, len(questions) - n))
    return tuple(kept), tuple(left_out)


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

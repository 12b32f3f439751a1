"""Out-of-scope examples: questions the knowledge base must not answer become their own class.

Also which examples the bot learns (`knowledge.out_of_scope`): the knowledge base's own, else the
shipped default set less what the knowledge base answers itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.encoder import EmbeddingCache
from knowledge.entries import Entry, KnowledgeBase
from knowledge.matcher import Decision, Matcher, build_matcher
from knowledge.out_of_scope import OutOfScope, Source, build_bot_matcher, choose_examples
from knowledge.samples import car_workshop, default_out_of_scope
from tests.knowledge.conftest import Counting
from tests.knowledge.workshop_kb import HELD_OUT, UNRELATED, workshop_kb

CHIT_CHAT = (
    "how are you today",
    "what is your name",
    "are you a robot or a person",
    "do you like music",
    "i am bored, talk to me",
    "what do you do for fun",
    "你好吗",
    "你叫什么名字",
    "你是机器人吗",
    "你喜欢听什么歌",
    "我好无聊，陪我聊聊天",
    "你平时喜欢干什么",
)


@pytest.fixture(scope="module")
def guarded(encoders: Counting, shared_cache_dir: Path) -> Matcher:
    cache = EmbeddingCache(shared_cache_dir)
    return build_matcher(workshop_kb(), encoders, cache, out_of_scope=CHIT_CHAT)


#: Off-topic questions written for this test, none of them in the default set.
OFF_TOPIC = (
    "can you tell me a funny story",
    "who is going to win the next election",
    "what's the square root of 144",
    "do you like pizza",
    "are you an AI?",
    "which football team is the best",
    "给我说个段子",
    "你喜欢看电影吗",
    "明天会下雪吗",
    "你是真人吗",
    "帮我算一下三加五",
    "周杰伦最新的歌叫什么",
)


@pytest.fixture(scope="module")
def bot_built(encoders: Counting, shared_cache_dir: Path) -> tuple[Matcher, OutOfScope]:
    """The workshop KB as the bot builds it: it has no examples, so the default set."""
    return build_bot_matcher(workshop_kb(), encoders, EmbeddingCache(shared_cache_dir))


@pytest.fixture(scope="module")
def defaulted(bot_built: tuple[Matcher, OutOfScope]) -> Matcher:
    return bot_built[0]


def test_a_knowledge_base_without_examples_learns_the_default_set(
    bot_built: tuple[Matcher, OutOfScope],
) -> None:
    chosen = bot_built[1]
    assert chosen.source is Source.DEFAULT
    assert chosen.yielded == ()  # no entry of a car workshop asks any of them
    defaults = default_out_of_scope()
    # the test workshop asks 38 questions in English and 27 in Chinese: 27/38 of the Chinese
    zh = round(len(defaults["zh"]) * 27 / 38)
    assert chosen.left_out == (("zh", len(defaults["zh"]) - zh),)
    assert chosen.examples[: len(defaults["en"])] == defaults["en"]
    chinese = chosen.examples[len(defaults["en"]) :]
    assert len(chinese) == zh
    assert set(chinese) <= set(defaults["zh"])
    assert chinese[0] == defaults["zh"][0]
    assert chinese[-1] in defaults["zh"][-3:]  # spread over the whole list


def test_own_examples_win_and_the_default_set_yields_to_the_entries_questions() -> None:
    base = car_workshop()
    own = KnowledgeBase(base.entries, {"zh": ("你几岁？",), "en": ("Sing!",)})
    assert choose_examples(own) == OutOfScope(("Sing!", "你几岁？"), Source.OWN)
    assert choose_examples(base, use_default=False) == OutOfScope((), Source.NONE)
    jokes = Entry("jokes", questions={"en": ("tell me a joke!",)}, answers={"en": "Ha."})
    chosen = choose_examples(KnowledgeBase((*base.entries, jokes)))
    assert chosen.yielded == ("Tell me a joke",)  # the business answers it
    # 149 English questions to 148 Chinese now: one Chinese example fewer
    assert chosen.left_out == (("zh", 1),)
    assert len(chosen.examples) + 2 == sum(len(qs) for qs in default_out_of_scope().values())


def test_examples_are_learnt_in_proportion_to_the_entries_languages() -> None:
    english = car_workshop().with_questions_in("en")
    defaults = default_out_of_scope()
    chosen = choose_examples(english)
    assert chosen == OutOfScope(defaults["en"], Source.DEFAULT, (), (("zh", len(defaults["zh"])),))
    # the base's own examples likewise; with none in its languages, the default set's are used
    own = KnowledgeBase(english.entries, {"en": ("Sing!",), "zh": ("你几岁？",)})
    assert choose_examples(own) == OutOfScope(("Sing!",), Source.OWN, (), (("zh", 1),))
    only_chinese = KnowledgeBase(english.entries, {"zh": ("你几岁？",)})
    assert choose_examples(only_chinese) == chosen
    # a base as Chinese as it is English learns both whole
    assert choose_examples(car_workshop()).left_out == ()
    # two of 32 entries also in Chinese (10 of 158 questions): 10/148 of the Chinese ones
    full = car_workshop()
    mostly = KnowledgeBase((*full.entries[:2], *english.entries[2:]))
    few = choose_examples(mostly)
    kept = round(len(defaults["zh"]) * 10 / 148)
    assert few.left_out == (("zh", len(defaults["zh"]) - kept),)
    assert len(few.examples) == len(defaults["en"]) + kept


def test_the_default_set_rejects_off_topic_questions_it_does_not_contain(
    defaulted: Matcher,
) -> None:
    rejected = [
        q for q in (*OFF_TOPIC, *UNRELATED) if _decision(defaulted, q) is Decision.OUT_OF_SCOPE
    ]
    assert len(rejected) >= len(OFF_TOPIC) + len(UNRELATED) - 2
    assert all(_decision(defaulted, q) is not Decision.ANSWER for q in (*OFF_TOPIC, *UNRELATED))


def test_with_the_default_set_the_entries_are_still_answered(defaulted: Matcher) -> None:
    right = [q for q, expected in HELD_OUT if _answered(defaulted, q) == expected]
    assert len(right) >= 0.8 * len(HELD_OUT)


def test_questions_like_the_examples_are_out_of_scope(guarded: Matcher) -> None:
    for question in ("how are you doing", "what's your name?", "你今天心情好吗"):
        match = guarded.match(question)
        assert match.decision is Decision.OUT_OF_SCOPE, question
        assert match.best is not None
        assert match.best.entry_id in guarded.entry_ids  # candidates are real entries only


def test_the_entries_are_still_answered(guarded: Matcher) -> None:
    right = [q for q, expected in HELD_OUT if _answered(guarded, q) == expected]
    assert len(right) >= 0.8 * len(HELD_OUT)


def test_without_examples_there_is_no_out_of_scope_class(workshop_matcher: Matcher) -> None:
    assert workshop_matcher.components("how are you doing").out_of_scope is None


def _decision(matcher: Matcher, question: str) -> Decision:
    return matcher.match(question).decision


def _answered(matcher: Matcher, question: str) -> str | None:
    match = matcher.match(question)
    if match.decision is Decision.ANSWER and match.best is not None:
        return match.best.entry_id
    return None

"""The samples shipped in the package: the car-workshop knowledge base `make run` answers from,
and the default out-of-scope examples the bot learns when a knowledge base has none of its own.
"""

from __future__ import annotations

import re
from importlib import resources

import pytest

from dialogs.dissatisfaction import detect
from dialogs.smalltalk import small_talk_kind
from knowledge.entries import KnowledgeBase, question_key
from knowledge.loaders import load_knowledge_base, parse_yaml_kb
from knowledge.loaders.drafts import detect_language
from knowledge.samples import (
    CAR_WORKSHOP,
    OUT_OF_SCOPE,
    car_workshop,
    default_out_of_scope,
)

# A line of an answer ends a sentence: a YAML `|` block wrapped mid-sentence would show the
# customer a broken line.
_SENTENCE_END = re.compile(r"[.!?:)。！？：）]$")


@pytest.fixture(scope="module")
def sample() -> KnowledgeBase:
    return car_workshop()


def test_the_sample_loads_with_about_thirty_entries(sample: KnowledgeBase) -> None:
    assert len(sample) >= 28
    assert len({entry.id for entry in sample}) == len(sample)
    assert sample.languages == {"en", "zh"}


def test_every_entry_is_written_in_english_and_chinese(sample: KnowledgeBase) -> None:
    for entry in sample:
        assert set(entry.questions) == {"en", "zh"}, entry.id
        assert set(entry.answers) == {"en", "zh"}, entry.id
        assert set(entry.titles) == {"en", "zh"}, entry.id
        for language, questions in entry.questions.items():
            assert 3 <= len(questions) <= 6, (entry.id, language)
        assert entry.tags, entry.id


def test_follow_ups_name_other_entries(sample: KnowledgeBase) -> None:
    assert sum(bool(entry.follow_ups) for entry in sample) >= 10
    for entry in sample:
        assert all(other in sample and other != entry.id for other in entry.follow_ups)


def test_no_example_question_belongs_to_two_entries(sample: KnowledgeBase) -> None:
    seen: dict[str, str] = {}
    for entry in sample:
        for _, question in entry.all_questions():
            key = question.casefold()
            assert seen.setdefault(key, entry.id) == entry.id, (question, seen[key])


def test_answers_do_not_break_lines_mid_sentence(sample: KnowledgeBase) -> None:
    for entry in sample:
        for language, answer in entry.answers.items():
            for line in filter(None, answer.split("\n")):
                assert _SENTENCE_END.search(line), (entry.id, language, line)


def test_the_sample_has_links_and_covers_the_topics_customers_ask_about(
    sample: KnowledgeBase,
) -> None:
    assert any(entry.links for entry in sample)
    for topic in ("opening-hours", "book-appointment", "complaints", "breakdown", "contact"):
        assert topic in sample


def test_the_packaged_file_is_the_one_the_loader_reads() -> None:
    path = resources.files("knowledge.samples").joinpath(CAR_WORKSHOP)
    with resources.as_file(path) as file:
        assert load_knowledge_base(file) == car_workshop()


def test_the_default_out_of_scope_set_is_60_to_200_questions_per_language() -> None:
    examples = default_out_of_scope()
    assert set(examples) == {"en", "zh"}
    for language, questions in examples.items():
        assert 60 <= len(questions) <= 200, language
        assert len({question_key(q) for q in questions}) == len(questions), language
        assert all(detect_language([q]) == language for q in questions), language


def test_the_default_set_leaves_small_talk_and_complaints_to_their_routes() -> None:
    for language, questions in default_out_of_scope().items():
        for question in questions:
            assert small_talk_kind(question) is None, (language, question)
            assert detect(question) is None, (language, question)  # not a complaint or "a person"


def test_the_default_set_asks_nothing_the_sample_answers(sample: KnowledgeBase) -> None:
    asked = {question_key(q) for entry in sample for _, q in entry.all_questions()}
    assert not asked & {question_key(q) for qs in default_out_of_scope().values() for q in qs}


def test_the_packaged_out_of_scope_file_loads_as_part_of_a_knowledge_base() -> None:
    path = resources.files("knowledge.samples").joinpath(OUT_OF_SCOPE)
    entries = "entries:\n  - id: a\n    questions: {en: [Hi]}\n    answers: {en: Hi.}\n"
    kb = parse_yaml_kb(path.read_text(encoding="utf-8") + entries, "kb.yaml")
    assert kb.out_of_scope == default_out_of_scope()  # a business may copy it into its own file

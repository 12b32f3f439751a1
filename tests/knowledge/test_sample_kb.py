"""The car-workshop sample knowledge base: shipped in the package, answered from by `make run`."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from knowledge.entries import KnowledgeBase
from knowledge.loaders import load_knowledge_base
from knowledge.samples import CAR_WORKSHOP, car_workshop

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

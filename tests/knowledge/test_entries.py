"""The data model and the faq-kb/1 loader, on good and bad documents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from knowledge.entries import (
    Entry,
    KnowledgeBase,
    KnowledgeBaseError,
    KnowledgeFileError,
    loads_faq_kb,
    parse_faq_kb,
    read_faq_kb,
)


def _doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": "faq-kb/1",
        "language": "zh",
        "entries": [
            {
                "id": "hours",
                "title": "营业时间",
                "answer": "每天 9 点到 18 点。",
                "examples": ["你们几点开门？", "  周六  营业吗？ "],
            },
            {"id": "price", "answer": "请来电询价。", "examples": ["多少钱？"]},
        ],
    }
    doc.update(overrides)
    return doc


def test_loads_entries_in_the_documents_language() -> None:
    kb = parse_faq_kb(_doc())
    assert [e.id for e in kb] == ["hours", "price"]
    hours = kb.get("hours")
    assert hours is not None
    assert hours.questions == {"zh": ("你们几点开门？", "周六 营业吗？")}
    assert hours.answers == {"zh": "每天 9 点到 18 点。"}
    assert hours.titles == {"zh": "营业时间"}
    assert kb.languages == frozenset({"zh"})
    assert "price" in kb
    assert "nope" not in kb
    assert len(kb) == 2


def test_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "kb.json"
    path.write_text(json.dumps(_doc(), ensure_ascii=False), encoding="utf-8")
    assert [e.id for e in read_faq_kb(path)] == ["hours", "price"]


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (_doc(format="faq-kb/2"), "format"),
        (_doc(language=""), "language"),
        (_doc(entries={"id": "x"}), "entries"),
        (_doc(entries=[{"id": "", "examples": ["a"]}]), "id"),
        (_doc(entries=[{"id": "a", "examples": "one question"}]), "examples"),
        (_doc(entries=[{"id": "a", "examples": ["ok", 3]}]), "examples[1]"),
        (
            _doc(entries=[{"id": "a", "examples": ["q"]}, {"id": "a", "examples": ["r"]}]),
            "two entries",
        ),
    ],
)
def test_bad_documents_say_where_and_why(doc: dict[str, Any], reason: str) -> None:
    with pytest.raises(KnowledgeFileError) as err:
        parse_faq_kb(doc, source="kb.json")
    assert str(err.value).startswith("kb.json")
    assert reason in str(err.value)


def test_invalid_json_reports_the_line() -> None:
    with pytest.raises(KnowledgeFileError) as err:
        loads_faq_kb('{\n "format": "faq-kb/1",\n oops\n}', source="kb.json")
    assert err.value.line == 3
    assert err.value.source == "kb.json"


def test_duplicate_ids_are_rejected_by_the_model() -> None:
    with pytest.raises(KnowledgeBaseError):
        KnowledgeBase((Entry("a"), Entry("a")))


def test_answer_falls_back_to_another_language() -> None:
    entry = Entry("a", answers={"zh": "你好", "en": "hello"})
    assert entry.answer_in("en") == ("en", "hello")
    assert entry.answer_in("fr") == ("en", "hello")
    assert Entry("b").answer_in("en") is None


def test_with_questions_in_keeps_one_languages_questions_and_every_answer() -> None:
    entry = Entry(
        "hours",
        questions={"en": ("When are you open?",), "zh": ("几点开门？",)},
        answers={"en": "8 to 6", "zh": "八点到六点"},
        titles={"en": "Opening hours", "zh": "营业时间"},
    )
    base = KnowledgeBase((entry,), {"en": ("Sing!",)})
    english = base.with_questions_in("en")
    assert english.languages == {"en"}
    only = english.get("hours")
    assert only is not None
    assert only.questions == {"en": ("When are you open?",)}
    assert only.titles == {"en": "Opening hours"}
    assert only.answers == entry.answers
    assert english.out_of_scope == base.out_of_scope

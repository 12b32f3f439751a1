"""Out-of-scope examples in the knowledge-base files: every format, good and bad, and fuzzing."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from knowledge.entries import Entry, KnowledgeBase, KnowledgeFileError, question_key
from knowledge.loaders import (
    load_knowledge_base,
    parse_csv_kb,
    parse_knowledge_base,
    parse_markdown_kb,
    parse_yaml_kb,
)
from knowledge.loaders.yaml_file import parse_yaml_out_of_scope
from tests.knowledge.test_loaders import (
    _HAN,
    _TEXT,
    _WORD,
    EXPECTED,
    FUZZ,
    GOOD_CSV,
    GOOD_MARKDOWN,
    GOOD_YAML,
    ROUND_TRIP,
    _phrase,
    as_csv,
    as_markdown,
    as_yaml,
    knowledge_bases,
    load_error,
    write,
)

OUT_OF_SCOPE = {"en": ("Tell me a joke", "Who won the match?"), "zh": ("你是机器人吗？",)}
WITH_EXAMPLES = KnowledgeBase(EXPECTED.entries, OUT_OF_SCOPE)

YAML_EXAMPLES = """\
out_of_scope:
  en:
    - Tell me a joke
    - Who won the match?
    - tell me  a JOKE  # the same question again: kept once
  zh: 你是机器人吗？
"""


def test_yaml_takes_out_of_scope_examples_per_language(tmp_path: Path) -> None:
    text = GOOD_YAML + YAML_EXAMPLES.replace("  - tell me  a JOKE", "  - Tell me a joke")
    assert load_knowledge_base(write(tmp_path, "kb.yaml", text)) == WITH_EXAMPLES
    before = YAML_EXAMPLES.replace("tell me  a JOKE", "Tell me a joke") + GOOD_YAML.replace(
        "# comments are fine\n", ""
    )
    assert parse_yaml_kb(before, "kb.yaml") == WITH_EXAMPLES  # the order of the fields is free


def test_yaml_without_examples_or_with_an_empty_language_has_none() -> None:
    assert parse_yaml_kb(GOOD_YAML, "kb.yaml").out_of_scope == {}
    text = GOOD_YAML + "out_of_scope:\n  en: [Tell me a joke]\n  zh:\n"
    assert parse_yaml_kb(text, "kb.yaml").out_of_scope == {"en": ("Tell me a joke",)}


def test_a_file_of_out_of_scope_examples_alone() -> None:
    text = YAML_EXAMPLES.replace("tell me  a JOKE", "Tell me a joke")
    assert parse_yaml_out_of_scope(text, "oos.yaml") == OUT_OF_SCOPE


def test_csv_rows_with_the_id_out_of_scope_hold_examples(tmp_path: Path) -> None:
    text = GOOD_CSV + (
        'out-of-scope,"Tell me a joke\nWho won the match?",,,你是机器人吗？,,,,,,a note\n'
        "Out of scope,Tell me a joke,,,,,,,,,\n"
    )
    assert load_knowledge_base(write(tmp_path, "kb.csv", text)) == WITH_EXAMPLES


def test_markdown_out_of_scope_sections_list_one_question_per_line(tmp_path: Path) -> None:
    text = (
        "## [Out of scope]\n- Tell me a joke\n\n* Who won the match?\n"
        + GOOD_MARKDOWN
        + "\n## [out of scope] {lang=zh}\n你是机器人吗？\n"
    )
    assert load_knowledge_base(write(tmp_path, "kb.md", text)) == WITH_EXAMPLES


def test_markdown_detects_each_lines_language_and_keeps_a_dash_inside_a_question() -> None:
    text = "## Hi?\nHello.\n\n## [out of scope]\n你是机器人吗？\n1. What is 17 - 3?\n"
    kb = parse_markdown_kb(text, "kb.md")
    assert kb.out_of_scope == {"en": ("What is 17 - 3?",), "zh": ("你是机器人吗？",)}
    assert [e.id for e in kb] == ["hi"]


def test_json_out_of_scope_is_our_extension_of_faq_kb(tmp_path: Path) -> None:
    doc = {
        "format": "faq-kb/1",
        "language": "en",
        "entries": [{"id": "hours", "answer": "8 to 6.", "examples": ["When are you open?"]}],
        "out_of_scope": ["Tell me a joke", " Who won  the match? "],
    }
    kb = load_knowledge_base(write(tmp_path, "kb.json", json.dumps(doc)))
    assert kb.out_of_scope == {"en": ("Tell me a joke", "Who won the match?")}


def test_the_model_refuses_a_question_both_answered_and_out_of_scope() -> None:
    entry = Entry("hours", questions={"en": ("When are you open?",)}, answers={"en": "8-6."})
    with pytest.raises(ValueError, match="also an example question of the entry 'hours'"):
        KnowledgeBase((entry,), {"zh": ("when are you OPEN?",)})


# Bad files ----------------------------------------------------------------------------------

ENTRY = "entries:\n  - id: a\n    questions: {en: [hi]}\n    answers: {en: Hello.}\n"

BAD_YAML = [
    (ENTRY + "out_of_scope: [a joke]\n", 5, r"out_of_scope must list questions per language"),
    (ENTRY + "out_of_scope:\n  fr: [blague]\n", 6, r"'fr' is not a known language code"),
    (
        ENTRY + "out_of_scope:\n  en:\n    - {a: b}\n",
        7,
        r"out-of-scope examples: out_of_scope\.en must be text, not a set",
    ),
    (ENTRY + "out_of_scope:\n  en: ['', x]\n", 6, r"out_of_scope\.en is empty"),
    (
        ENTRY + "out_of_scope:\n  en:\n    - x\n    - HI\n",
        8,
        r"'HI' is also an example question of entry 'a' \(line 2\)",
    ),
    (ENTRY + "out_of_scop: {en: [x]}\n", 5, r"unknown field 'out_of_scop' \(did you mean"),
    ("out_of_scope: {en: [x]}\n", 1, r"the file has no 'entries:' list"),
    (ENTRY + "out_of_scope:\n  en: [x]\n  EN: [y]\n", 7, r"gives en twice"),
]


@pytest.mark.parametrize(("text", "line", "reason"), BAD_YAML)
def test_bad_yaml_out_of_scope_says_where_and_why(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    error = load_error(tmp_path, "kb.yaml", text)
    assert (error.line, re.search(reason, error.reason) is not None) == (line, True), error.reason


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("", 1, r"the file is empty"),
        ("entries: []\n", 1, r"unknown field 'entries'"),
        ("out_of_scope:\n", 1, r"has no 'out_of_scope:' questions"),
        ("out_of_scope:\n  en: [x, [y]]\n", 2, r"must be text, not a list"),
    ],
)
def test_a_bad_file_of_out_of_scope_examples(text: str, line: int, reason: str) -> None:
    with pytest.raises(KnowledgeFileError) as caught:
        parse_yaml_out_of_scope(text, "oos.yaml")
    error = caught.value
    assert (error.line, re.search(reason, error.reason) is not None) == (line, True), error.reason


HEADER = "id,questions_en,answer_en,tags\n"

BAD_CSV = [
    (
        HEADER + "a,hi,Hi.\nout-of-scope,a joke,Ha ha.\n",
        3,
        r"the out-of-scope row: leave answer_en empty: this row lists questions the bot does not",
    ),
    (HEADER + "a,hi,Hi.\nout_of_scope,a joke,,fun\n", 3, r"leave tags empty"),
    (HEADER + "a,hi,Hi.\nout-of-scope,,\n", 3, r"the out-of-scope row: it has no questions"),
    (
        HEADER + "a,hi,Hi.\nout-of-scope,a joke|Hi\n",
        3,
        r"'Hi' is also an example question of entry 'a' \(line 2\)",
    ),
    (HEADER + "out-of-scope,a joke,\n", 1, r"the file has no entries"),
]


@pytest.mark.parametrize(("text", "line", "reason"), BAD_CSV)
def test_bad_csv_out_of_scope_says_where_and_why(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    error = load_error(tmp_path, "kb.csv", text)
    assert (error.line, re.search(reason, error.reason) is not None) == (line, True), error.reason


BAD_MARKDOWN = [
    ("## Hi?\nHello.\n\n## [out of scope]\n\n", 4, r"has no questions below it"),
    ("## [out of scope]\n## Hi?\nHello.\n", 1, r"has no questions below it"),
    ("## Hi?\nHello.\n## [out of scope] {#x}\na joke\n", 3, r"takes no \{#id\}"),
    ("## Hi?\nHello.\n## [out of scope] {lang=fr}\nune blague\n", 3, r"'fr' is not a known"),
    (
        "## Hi?\nHello.\n## [out of scope]\n- a joke\n- hi\n",
        5,
        r"'hi' is also an example question of entry 'hi' \(line 1\)",
    ),
    ("## [out of scope]\na joke\n", 1, r"the file has no entries"),
    ("## Hi?\n## [out of scope]\na joke\n", 1, r"the question here has no answer below it"),
]


@pytest.mark.parametrize(("text", "line", "reason"), BAD_MARKDOWN)
def test_bad_markdown_out_of_scope_says_where_and_why(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    error = load_error(tmp_path, "kb.md", text)
    assert (error.line, re.search(reason, error.reason) is not None) == (line, True), error.reason


@pytest.mark.parametrize(
    ("examples", "reason"),
    [
        ("Tell me a joke", r'"out_of_scope" must be a list of strings'),
        (["ok", 3], r"out_of_scope\[1\]: must be a non-empty string"),
        (["  "], r"out_of_scope\[0\]: must be a non-empty string"),
        (["when are you open?"], r"also an example question of the entry 'hours'"),
    ],
)
def test_bad_json_out_of_scope_says_why(examples: object, reason: str) -> None:
    doc = {
        "format": "faq-kb/1",
        "language": "en",
        "entries": [{"id": "hours", "answer": "8 to 6.", "examples": ["When are you open?"]}],
        "out_of_scope": examples,
    }
    with pytest.raises(KnowledgeFileError, match=reason) as caught:
        parse_knowledge_base(json.dumps(doc).encode(), "kb.json")
    assert str(caught.value).startswith("kb.json")


# Properties ---------------------------------------------------------------------------------


@st.composite
def with_out_of_scope(draw: st.DrawFn) -> KnowledgeBase:
    """A valid knowledge base that also has out-of-scope examples none of its entries asks."""
    kb = draw(knowledge_bases())
    asked = {question_key(q) for e in kb for _, q in e.all_questions()}
    examples: dict[str, tuple[str, ...]] = {}
    for lang in draw(st.sampled_from([("en",), ("zh",), ("en", "zh")])):
        word, end = _TEXT[lang]
        phrases = st.lists(_phrase(word, end), min_size=1, max_size=4, unique_by=question_key)
        found = tuple(q for q in draw(phrases) if question_key(q) not in asked)
        if found:
            examples[lang] = found
    return KnowledgeBase(kb.entries, examples)


def yaml_with_out_of_scope(kb: KnowledgeBase) -> str:
    doc = yaml.safe_load(as_yaml(kb))
    doc["out_of_scope"] = {lang: list(qs) for lang, qs in kb.out_of_scope.items()}
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def csv_with_out_of_scope(kb: KnowledgeBase, delimiter: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    for lang, questions in kb.out_of_scope.items():
        cells = ["out-of-scope"] + [""] * 9  # the columns as_csv writes, id first
        cells[1 if lang == "en" else 4] = "\n".join(questions)
        writer.writerow(cells)
    return as_csv(kb, delimiter) + out.getvalue()


def markdown_with_out_of_scope(kb: KnowledgeBase) -> str:
    if not kb.out_of_scope:
        return as_markdown(kb)
    lines = ["## [out of scope]"]  # each line's language comes from its script
    lines += [f"- {q}" for _, q in kb.out_of_scope_questions()]
    return as_markdown(kb) + "\n" + "\n".join(lines) + "\n"


@ROUND_TRIP
@given(with_out_of_scope(), st.sampled_from(",;\t"))
def test_out_of_scope_round_trip_in_every_format(kb: KnowledgeBase, delimiter: str) -> None:
    assert parse_yaml_kb(yaml_with_out_of_scope(kb), "kb.yaml") == kb
    assert parse_csv_kb(csv_with_out_of_scope(kb, delimiter), "kb.csv") == kb
    assert parse_markdown_kb(markdown_with_out_of_scope(kb), "kb.md") == kb


# Any YAML value in the out_of_scope place: only file errors, never a crash.
YAML_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8), _WORD, _HAN),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["en", "zh", "fr", "EN", "x"]), inner, max_size=3),
    ),
    max_leaves=8,
)


@FUZZ
@given(YAML_VALUES)
def test_yaml_arbitrary_out_of_scope_raises_only_file_errors(value: object) -> None:
    doc = {"entries": [{"id": "a", "questions": {"en": ["hi"]}, "answers": {"en": "Hi."}}]}
    text = yaml.safe_dump({**doc, "out_of_scope": value}, allow_unicode=True)
    with contextlib.suppress(KnowledgeFileError):
        parse_yaml_kb(text, "fuzz.yaml")
    with contextlib.suppress(KnowledgeFileError):
        parse_yaml_out_of_scope(yaml.safe_dump({"out_of_scope": value}), "fuzz.yaml")

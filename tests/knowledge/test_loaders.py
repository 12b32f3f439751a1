"""Knowledge-base loaders: good files in every format, bad files with line and reason, fuzzing."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import string
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge.entries import Entry, KnowledgeBase, KnowledgeFileError, Link
from knowledge.loaders import (
    load_knowledge_base,
    parse_csv_kb,
    parse_knowledge_base,
    parse_markdown_kb,
    parse_yaml_kb,
)

HOURS = Entry(
    id="opening-hours",
    questions={
        "en": ("When are you open?", "What are your opening hours?"),
        "zh": ("你们几点开门？", "周六营业吗？"),
    },
    answers={
        "en": "We are open 08:00–18:00.\n\nClosed on Sundays.",
        "zh": "我们 08:00–18:00 营业。",
    },
    titles={"en": "Opening hours", "zh": "营业时间"},
    tags=("hours", "visit"),
    links=(Link("Map", "https://example.com/map"),),
    follow_ups=("location",),
)
LOCATION = Entry(
    id="location",
    questions={"en": ("Where are you?",), "zh": ("你们在哪里？",)},
    answers={"en": "12 Sample Road.", "zh": "样例路12号。"},
)
EXPECTED = KnowledgeBase((HOURS, LOCATION))
ENTRY = (
    "- id: a\n  questions: {en: [hi]}\n  answers: {en: Hello.}\n"  # the smallest good YAML entry
)

GOOD_YAML = """\
# comments are fine
entries:
  - id: opening-hours
    titles: {en: Opening hours, zh: 营业时间}
    questions:
      en:
        - When are you open?
        - What are your opening hours?
      zh: [你们几点开门？, 周六营业吗？]
    answers:
      en: |
        We are open 08:00–18:00.

        Closed on Sundays.
      zh: 我们 08:00–18:00 营业。
    tags: [hours, visit]
    links:
      - title: Map
        url: https://example.com/map
    follow_ups: [location]
  - id: location
    titles: {zh: }  # a language left empty is one not written yet
    questions: {en: "Where are you?", zh: 你们在哪里？}
    answers: {en: 12 Sample Road., zh: 样例路12号。}
"""

GOOD_CSV = """\
id,questions_en,answer_en,title_en,questions_zh,answer_zh,title_zh,tags,links,follow_ups,# notes
opening-hours,"When are you open?
What are your opening hours?","We are open 08:00–18:00.

Closed on Sundays.",Opening hours,你们几点开门？ | 周六营业吗？,我们 08:00–18:00 营业。,营业时间,\
"hours, visit",Map https://example.com/map,location,check prices
location,Where are you?,12 Sample Road.,,你们在哪里？,样例路12号。,,,,,
"""

GOOD_MARKDOWN = """\
# Visiting us

Introductions like this one are not part of any answer.

## When are you open? {#opening-hours}
## What are your opening hours?

We are open 08:00–18:00.

Closed on Sundays.

Title: Opening hours
Tags: hours, visit
Links: [Map](https://example.com/map)
Follow-ups: location

## 你们几点开门？ {#opening-hours}

## 周六营业吗？
我们 08:00–18:00 营业。
Title: 营业时间

## Where are you? {#location}
12 Sample Road.

## 你们在哪里？ {#location lang=zh}
样例路12号。
"""


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def load_error(tmp_path: Path, name: str, content: str | bytes) -> KnowledgeFileError:
    path = write(tmp_path, name, content)
    with pytest.raises(KnowledgeFileError) as caught:
        load_knowledge_base(path)
    assert caught.value.source == str(path)
    return caught.value


# Good files ---------------------------------------------------------------------------------


def test_yaml_loads_every_field(tmp_path: Path) -> None:
    assert load_knowledge_base(write(tmp_path, "kb.yaml", GOOD_YAML)) == EXPECTED


def test_yaml_may_be_a_plain_list_of_entries(tmp_path: Path) -> None:
    text = GOOD_YAML.replace("entries:\n", "").replace("\n  ", "\n")
    assert load_knowledge_base(write(tmp_path, "kb.yml", text)) == EXPECTED


def test_yaml_keeps_text_as_typed() -> None:
    text = "- id: x\n  questions: {en: [yes, '1.0']}\n  answers: {en: 8:00, zh: no}\n"
    entry = parse_yaml_kb(text, "kb.yaml").entries[0]
    assert entry.questions == {"en": ("yes", "1.0")}
    assert entry.answers == {"en": "8:00", "zh": "no"}


def test_yaml_tags_and_follow_ups_may_be_one_line() -> None:
    text = ENTRY + "  tags: hours, visit\n  follow_ups: b\n" + ENTRY.replace("id: a", "id: b")
    entry = parse_yaml_kb(text, "kb.yaml").entries[0]
    assert (entry.tags, entry.follow_ups) == (("hours", "visit"), ("b",))


def test_csv_loads_every_field(tmp_path: Path) -> None:
    assert load_knowledge_base(write(tmp_path, "kb.csv", GOOD_CSV)) == EXPECTED


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_csv_reads_semicolons_tabs_and_a_byte_order_mark(tmp_path: Path, delimiter: str) -> None:
    rows = list(csv.reader(io.StringIO(GOOD_CSV, newline="")))
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows(rows)
    data = b"\xef\xbb\xbf" + out.getvalue().encode()
    assert parse_knowledge_base(data, "kb.csv") == EXPECTED


def test_csv_makes_an_id_from_the_first_question_when_the_cell_is_empty() -> None:
    text = "ID,Question EN,Answer-EN\n,What's the Wi-Fi password?,At reception.\n"
    assert [e.id for e in parse_csv_kb(text, "kb.csv")] == ["what-s-the-wi-fi-password"]


def test_markdown_loads_every_field(tmp_path: Path) -> None:
    assert load_knowledge_base(write(tmp_path, "kb.md", GOOD_MARKDOWN)) == EXPECTED


def test_markdown_language_from_front_matter_or_script() -> None:
    text = "---\nlanguage: zh\n---\n## Wi-Fi?\nYes.\n"
    assert parse_markdown_kb(text, "kb.md").entries[0].answers == {"zh": "Yes."}
    mixed = "## 可以用Apple Pay吗？\n可以。\n\n## Do you speak Chinese (中文)?\nYes.\n"
    kb = parse_markdown_kb(mixed, "kb.md")
    assert [sorted(e.questions) for e in kb] == [["zh"], ["en"]]
    assert [e.id for e in kb] == ["可以用apple-pay吗", "do-you-speak-chinese-中文"]


def test_markdown_keeps_code_and_subheadings_in_the_answer() -> None:
    text = "## How do I reset the light?\n\n### Steps\n```\n## not a question\n```\nDone.\n"
    entry = parse_markdown_kb(text, "kb.md").entries[0]
    assert entry.answers["en"] == "### Steps\n```\n## not a question\n```\nDone."


def test_json_is_the_faq_kb_format(tmp_path: Path) -> None:
    doc = {
        "format": "faq-kb/1",
        "language": "en",
        "entries": [{"id": "hours", "answer": "8 to 6.", "examples": ["When are you open?"]}],
    }
    kb = load_knowledge_base(write(tmp_path, "kb.json", json.dumps(doc)))
    assert kb.entries == (
        Entry("hours", questions={"en": ("When are you open?",)}, answers={"en": "8 to 6."}),
    )


# Bad files ----------------------------------------------------------------------------------

BAD_YAML = [
    ("", 1, r"the file is empty"),
    ("# only a comment\n", 1, r"the file is empty"),
    ("- id: a\n  questions: {en: [hi]}\n", 1, r"entry 'a' has no answer"),
    ("- id: a\n  answers: {en: Hi.}\n", 1, r"entry 'a' has no example questions"),
    (
        ENTRY + ENTRY.replace("id: a", "id: b") + ENTRY,
        7,
        r"two entries have the id 'a' \(lines 1 and 7\)",
    ),
    (ENTRY + "  follow_ups:\n    - nowhere\n", 5, r"entry 'a': follow-up 'nowhere' is not the id"),
    (ENTRY + "  follow_ups: [a]\n", 4, r"names the entry itself"),
    ("- id: a\n  questions:\n    fr: [salut]\n", 3, r"'fr' is not a known language code: use en"),
    (
        ENTRY + "- id: b\n  questions: {en: [x]}\n  answers:\n    zh:\n      - a list\n",
        8,
        r"entry 'b': answers\.zh must be text, not a list",
    ),
    ("- id: a\n  answer: {en: Hi.}\n", 2, r"unknown field 'answer' \(did you mean 'answers'\?\)"),
    (
        "- id: a\n  questions: {en: [hi]\n",
        2,
        r"not valid YAML: a '\[' or '\{' here is never closed",
    ),
    ("- id: a\n\tquestions: x\n", 2, r"not valid YAML.*tabs"),
    ("- id: a\n  answers: {en: Open: 8 to 6}\n", 2, r"not valid YAML"),
    ("- id: a\n  id: b\n", 2, r"entry 1 has 'id' twice \(also on line 1\)"),
    ("- id: opening hours\n", 1, r"'opening hours' may contain only.*'opening-hours'"),
    ("- questions: {en: [hi]}\n", 1, r"entry 1 has no id"),
    (ENTRY + "  links: [www.example.com]\n", 4, r"links .*must start with https://"),
    ("- just text\n", 1, r"entry 1 must be a set of 'key: value' lines"),
    ("title: Our FAQ\n", 1, r"unknown field 'title'"),
    ("a: [\n", 2, r"not valid YAML"),
    ('- id: a\n  answers: {en: "\x07"}\n', 2, r"character YAML does not allow"),
]


@pytest.mark.parametrize(("text", "line", "reason"), BAD_YAML)
def test_a_bad_yaml_file_says_where_and_why(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    error = load_error(tmp_path, "cars.yaml", text)
    assert (error.line, re.search(reason, error.reason) is not None) == (line, True), error.reason
    assert str(error).startswith(f"{tmp_path / 'cars.yaml'}:{line}: ")


HEADER = "id,questions_en,answer_en,follow_ups\n"

BAD_CSV = [
    ("", 1, r"the file is empty: the first line names the columns"),
    (HEADER, 1, r"the file has no entries"),
    (HEADER + "a,hi,\n", 2, r"entry 'a' has no answer"),
    (HEADER + "a,,Hello.\n", 2, r"entry 'a' has no example questions"),
    (
        HEADER + "a,hi,Hi.\nb,yo,Yo.\na,hey,Hey.\n",
        4,
        r"two entries have the id 'a' \(lines 2 and 4\)",
    ),
    (HEADER + "a,hi,Hi.,nowhere\n", 2, r"follow-up 'nowhere' is not the id of any entry"),
    ("id,questions_fr,answer_fr\n", 1, r"column 'questions_fr': 'fr' is not a known language code"),
    ("id,question,answer\n", 1, r"column 'question' needs a language: name it question_en"),
    (
        "id,questions_en,anwser_en\n",
        1,
        r"unknown column 'anwser_en' \(did you mean 'answer_en'\?\)",
    ),
    ("id,answer_en\n", 1, r"no questions_en or questions_zh column"),
    ("id,questions_en,answer_en,questions_en\n", 1, r"column questions_en appears twice"),
    (HEADER + 'a,hi,"Hello.\n', 2, r"unclosed quote"),
    (
        HEADER + 'a,"hi\nthere",Hi.\nb,yo,Yo.,,extra\n',
        4,
        r"5 cells .* header names 4.*row 3 in a spr",
    ),
    (HEADER + "a b,hi,Hi.\n", 2, r"id 'a b' may contain only"),
    (HEADER + "a,hi,Hi.,b c\n", 2, r"follow-up 'b' is not the id"),
]


@pytest.mark.parametrize(("text", "line", "reason"), BAD_CSV)
def test_a_bad_csv_file_says_where_and_why(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    error = load_error(tmp_path, "faq.csv", text)
    assert (error.line, re.search(reason, error.reason) is not None) == (line, True), error.reason


BAD_MARKDOWN = [
    ("\n\n", 1, r"the file is empty"),
    ("Just a paragraph.\n", 1, r"the file has no questions: write each question as a '## '"),
    ("## Hi?\nHello.\n\n## Bye?\n\n", 4, r"the question here has no answer below it"),
    ("## Hi?\nTags: x\n## Bye?\nBye.\n", 1, r"no answer below it"),
    ("## Hi? {#a}\nHello.\n## Hey? {#a}\nHey.\n", 3, r"two English sections .* \(lines 1 and 3\)"),
    ("## Hi?\nHello.\n## Hi!\nHey.\n", 3, r"two entries have the id 'hi' \(lines 1 and 3\)"),
    ("language: fr\n## Hi?\nHello.\n", 1, r"'fr' is not a known language code"),
    ("## Hi? {lang=de}\nHello.\n", 1, r"'de' is not a known language code"),
    ("## Hi? {.red}\nHello.\n", 1, r"unknown setting '\.red'"),
    (
        "## Hi?\nHello.\n\nFollow-ups: nowhere\n",
        4,
        r"entry 'hi': follow-up 'nowhere' is not the id",
    ),
    ("## Hi?\nHello.\nLinks: [Map](www.map)\n", 3, r"entry 'hi': 'www\.map' is not a link"),
    ("## ???\nWhat?\n", 1, r"cannot make an id"),
    ("## {#a}\nWhat?\n", 1, r"this heading has no question"),
    ("## Hi? {#a}\n## Hey? {#b}\nHello.\n", 2, r"another id than the one above \('a'\)"),
    ("## Hi?\nHello.\nTitle: A\nTitle: B\n", 4, r"second Title line"),
    ("## Hi?\n````\n```\n## Bye?\nBye.\n", 2, r"code block opened here with ```` is never"),
]


@pytest.mark.parametrize(("text", "line", "reason"), BAD_MARKDOWN)
def test_a_bad_markdown_file_says_where_and_why(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    error = load_error(tmp_path, "faq.md", text)
    assert (error.line, re.search(reason, error.reason) is not None) == (line, True), error.reason


@pytest.mark.parametrize("name", ["kb.yaml", "kb.csv", "kb.md"])
def test_a_file_that_is_not_utf8_is_refused_at_the_first_bad_line(
    tmp_path: Path, name: str
) -> None:
    data = b"id,questions_en,answer_en\n" + "a,café?,Oui.\n".encode("latin-1")
    error = load_error(tmp_path, name, data)
    assert error.line == 2
    assert "not UTF-8" in error.reason
    assert "CSV UTF-8" in error.reason


def test_an_unknown_extension_or_a_missing_file_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeFileError, match=r"unknown kind of file '\.txt'"):
        load_knowledge_base(write(tmp_path, "kb.txt", "hi"))
    with pytest.raises(KnowledgeFileError, match="cannot read the file"):
        load_knowledge_base(tmp_path / "missing.yaml")
    with pytest.raises(KnowledgeFileError, match="NUL character"):
        load_knowledge_base(write(tmp_path, "kb.md", b"## hi\x00\n"))


# Properties ---------------------------------------------------------------------------------

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROUND_TRIP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Lines that steer arbitrary text into the loaders' deeper paths.
MARKDOWN_LINES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "## Hi?", "## 你好 {#hi}", "## x {lang=zh}", "# Title", "```", "~~~"]),
    st.sampled_from(["Tags: a, b", "Follow-ups: hi", "Links: [a](https://a.b)", "Title: t"]),
    st.sampled_from(["language: zh", "---", "## {#}", "## a {#b lang=en}", "## ？？"]),
    st.sampled_from(["## [out of scope]", "## [Out of scope] {lang=zh}", "- Hi?", "1. joke"]),
)
CSV_CELLS = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["id", "questions_en", "answer_zh", "tags", "links", "follow_ups", "# x"]),
    st.sampled_from(["a", "hi?", "你好", "x https://e.com", "a|b", "", '"', "a\nb"]),
    st.sampled_from(["out-of-scope", "Out of scope", "hi?|joke"]),
)


@FUZZ
@given(st.text())
def test_csv_arbitrary_text_raises_only_file_errors(text: str) -> None:
    with contextlib.suppress(KnowledgeFileError):
        parse_csv_kb(text, "fuzz.csv")


@FUZZ
@given(st.lists(st.lists(CSV_CELLS, max_size=6), max_size=6), st.sampled_from(",;\t"))
def test_csv_arbitrary_rows_raise_only_file_errors(rows: list[list[str]], sep: str) -> None:
    out = io.StringIO()
    csv.writer(out, delimiter=sep).writerows(rows)
    with contextlib.suppress(KnowledgeFileError):
        parse_csv_kb(out.getvalue(), "fuzz.csv")


@FUZZ
@given(st.lists(MARKDOWN_LINES, max_size=12))
def test_markdown_arbitrary_text_raises_only_file_errors(lines: list[str]) -> None:
    with contextlib.suppress(KnowledgeFileError):
        parse_markdown_kb("\n".join(lines), "fuzz.md")


@FUZZ
@given(st.binary(max_size=200), st.sampled_from(["f.csv", "f.md", "f.yaml", "f.json"]))
def test_arbitrary_bytes_raise_only_file_errors(data: bytes, name: str) -> None:
    with contextlib.suppress(KnowledgeFileError):
        parse_knowledge_base(data, name)


@FUZZ
@given(st.text(max_size=200))
def test_yaml_arbitrary_text_raises_only_file_errors(text: str) -> None:
    with contextlib.suppress(KnowledgeFileError):
        parse_yaml_kb(text, "fuzz.yaml")


# A valid knowledge base, in text every format can carry: English in Latin script, Chinese in Han
# characters (so Markdown's script detection agrees), no separators inside a question.
_WORD = st.text(string.ascii_letters + string.digits, min_size=1, max_size=8)
_HAN = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=1, max_size=6)


def _phrase(word: st.SearchStrategy[str], end: str) -> st.SearchStrategy[str]:
    join = " " if word is _WORD else ""
    return st.builds(
        lambda words, mark: join.join(words) + mark,
        st.lists(word, min_size=1, max_size=5),
        st.sampled_from(["", end, "!", "."]),
    )


def _answer(word: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    lines = st.lists(st.one_of(_phrase(word, "."), st.just("")), min_size=1, max_size=4)
    return st.builds(lambda ls: "\n".join(ls).strip(), lines).filter(bool)


_TEXT = {"en": (_WORD, "?"), "zh": (_HAN, "？")}
_IDS = st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True)


@st.composite
def knowledge_bases(draw: st.DrawFn) -> KnowledgeBase:
    ids = draw(st.lists(_IDS, min_size=1, max_size=5, unique=True))
    entries = []
    for entry_id in ids:
        languages = draw(st.sampled_from([("en",), ("zh",), ("en", "zh")]))
        questions, answers, titles = {}, {}, {}
        for lang in languages:
            word, end = _TEXT[lang]
            questions[lang] = tuple(
                draw(st.lists(_phrase(word, end), min_size=1, max_size=4, unique=True))
            )
            answers[lang] = draw(_answer(word))
            if draw(st.booleans()):
                titles[lang] = draw(_phrase(word, ""))
        tags = draw(st.lists(_phrase(_WORD, ""), max_size=3, unique=True))
        links = draw(
            st.lists(
                st.builds(
                    Link, _phrase(_WORD, ""), st.builds("https://example.com/{}".format, _WORD)
                ),
                max_size=2,
                unique=True,
            )
        )
        others = [i for i in ids if i != entry_id]
        follow_ups = draw(st.lists(st.sampled_from(others), unique=True)) if others else []
        entries.append(
            Entry(
                entry_id, questions, answers, titles, tuple(tags), tuple(links), tuple(follow_ups)
            )
        )
    return KnowledgeBase(tuple(entries))


def as_csv(kb: KnowledgeBase, delimiter: str) -> str:
    """The knowledge base as a spreadsheet would save it in the documented CSV format."""
    per_language = [
        f"{field}_{lang}" for lang in ("en", "zh") for field in ("questions", "answer", "title")
    ]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(["id", *per_language, "tags", "links", "follow_ups"])
    for e in kb:
        cells = [e.id]
        for lang in ("en", "zh"):
            join = "\n" if lang == "en" else " | "
            cells += [join.join(e.questions.get(lang, ())), e.answers.get(lang, "")]
            cells.append(e.titles.get(lang, ""))
        cells.append(", ".join(e.tags))
        cells.append("\n".join(f"{link.title} {link.url}" for link in e.links))
        cells.append(" ".join(e.follow_ups))
        writer.writerow(cells)
    return out.getvalue()


def as_markdown(kb: KnowledgeBase) -> str:
    """The knowledge base in the documented Markdown format: one section per language."""
    lines = ["# Our questions", ""]
    for e in kb:
        for n, lang in enumerate(sorted(e.answers)):
            first, *more = e.questions[lang]
            lines += [f"## {first} {{#{e.id}}}", *(f"## {q}" for q in more), ""]
            lines += [e.answers[lang], ""]
            if lang in e.titles:
                lines.append(f"Title: {e.titles[lang]}")
            if n == 0 and e.tags:
                lines.append(f"Tags: {', '.join(e.tags)}")
            if n == 0 and e.links:
                lines.append("Links: " + " | ".join(f"[{x.title}]({x.url})" for x in e.links))
            if n == 0 and e.follow_ups:
                lines.append(f"Follow-ups: {', '.join(e.follow_ups)}")
            lines.append("")
    return "\n".join(lines)


def as_yaml(kb: KnowledgeBase) -> str:
    entries = [
        {
            "id": e.id,
            "questions": {lang: list(qs) for lang, qs in e.questions.items()},
            "answers": e.answers,
            "titles": e.titles,
            "tags": list(e.tags),
            "links": [{"title": x.title, "url": x.url} for x in e.links],
            "follow_ups": list(e.follow_ups),
        }
        for e in kb
    ]
    return yaml.safe_dump({"entries": entries}, allow_unicode=True, sort_keys=False)


@ROUND_TRIP
@given(knowledge_bases(), st.sampled_from(",;\t"))
def test_csv_round_trip(kb: KnowledgeBase, delimiter: str) -> None:
    assert parse_csv_kb(as_csv(kb, delimiter), "kb.csv") == kb


@ROUND_TRIP
@given(knowledge_bases())
def test_markdown_round_trip(kb: KnowledgeBase) -> None:
    assert parse_markdown_kb(as_markdown(kb), "kb.md") == kb


@ROUND_TRIP
@given(knowledge_bases())
def test_yaml_round_trip(kb: KnowledgeBase) -> None:
    assert parse_yaml_kb(as_yaml(kb), "kb.yaml") == kb


def test_the_three_formats_agree_on_the_sample_entries() -> None:
    text = {"csv": as_csv(EXPECTED, ","), "md": as_markdown(EXPECTED), "yaml": as_yaml(EXPECTED)}
    for name, content in text.items():
        assert parse_knowledge_base(content.encode(), f"kb.{name}") == EXPECTED, name

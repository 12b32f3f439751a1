"""The knowledge base's data model and the loader for the `faq-kb/1` JSON format.

An `Entry` is one thing the business can answer: an id, example questions and an answer per
language, plus optional tags, links and quick-reply follow-ups. A `KnowledgeBase` is an ordered,
id-unique collection of entries, plus optional out-of-scope examples per language: questions
customers ask that the business does not answer (chit-chat, off-topic), which the matcher learns
as a class of their own. Every loader (this module's JSON one; YAML, CSV and Markdown
ones live beside it) produces these same frozen values and reports a bad file with a
`KnowledgeFileError` naming the file, the line (when known) and the reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

#: A language code as used across Concierge: "en", "zh", ...
Language = str

FAQ_KB_FORMAT = "faq-kb/1"


class KnowledgeBaseError(ValueError):
    """The knowledge base is inconsistent (e.g. two entries share an id)."""


class KnowledgeFileError(KnowledgeBaseError):
    """A knowledge-base file cannot be read: says which file, where, and why."""

    def __init__(self, source: str, reason: str, line: int | None = None) -> None:
        self.source = source
        self.reason = reason
        self.line = line
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True, slots=True)
class Link:
    """A link shown under an answer."""

    title: str
    url: str


@dataclass(frozen=True, slots=True)
class Entry:
    """One answerable topic of the knowledge base.

    `questions` and `answers` are keyed by language; an entry may lack a language (the FAQ
    dialog then answers in another one with a note). `follow_ups` are ids of other entries
    offered as quick-reply buttons after the answer.
    """

    id: str
    questions: dict[Language, tuple[str, ...]] = field(default_factory=dict)
    answers: dict[Language, str] = field(default_factory=dict)
    titles: dict[Language, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()
    follow_ups: tuple[str, ...] = ()

    def all_questions(self) -> Iterator[tuple[Language, str]]:
        """Every example question with its language, in a stable order."""
        for language in sorted(self.questions):
            for question in self.questions[language]:
                yield language, question

    def answer_in(self, language: Language) -> tuple[Language, str] | None:
        """The answer in `language`, else in any other language the entry has (sorted)."""
        if language in self.answers:
            return language, self.answers[language]
        for other in sorted(self.answers):
            return other, self.answers[other]
        return None


@dataclass(frozen=True, slots=True)
class KnowledgeBase:
    """An ordered collection of entries with unique ids, and questions it must not answer.

    `out_of_scope` holds example questions per language that no entry answers (chit-chat,
    off-topic); a question cannot be both an entry's example and out of scope.
    """

    entries: tuple[Entry, ...] = ()
    out_of_scope: dict[Language, tuple[str, ...]] = field(default_factory=dict)
    _by_id: dict[str, Entry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id: dict[str, Entry] = {}
        for entry in self.entries:
            if entry.id in by_id:
                raise KnowledgeBaseError(f"two entries have the id {entry.id!r}")
            by_id[entry.id] = entry
        object.__setattr__(self, "_by_id", by_id)
        if self.out_of_scope:
            owners = {question_key(q): e.id for e in self.entries for _, q in e.all_questions()}
            for _, question in self.out_of_scope_questions():
                if (owner := owners.get(question_key(question))) is not None:
                    raise KnowledgeBaseError(
                        f"the out-of-scope example {question!r} is also an example question "
                        f"of the entry {owner!r}: a question is either answered or not"
                    )

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._by_id

    def get(self, entry_id: str) -> Entry | None:
        return self._by_id.get(entry_id)

    @property
    def languages(self) -> frozenset[Language]:
        """Languages that have at least one example question."""
        return frozenset(lang for e in self.entries for lang, qs in e.questions.items() if qs)

    def with_questions_in(self, language: Language) -> KnowledgeBase:
        """The same entries with their questions and titles in `language` only.

        Answers and out-of-scope examples stay. What a business that wrote its questions in one
        language has: `bench/faq.py languages` and the tests ask it the other language's.
        """
        entries = tuple(
            replace(
                entry,
                questions={k: v for k, v in entry.questions.items() if k == language},
                titles={k: v for k, v in entry.titles.items() if k == language},
            )
            for entry in self.entries
        )
        return KnowledgeBase(entries, self.out_of_scope)

    def out_of_scope_questions(self) -> Iterator[tuple[Language, str]]:
        """Every out-of-scope example with its language, in a stable order."""
        for language in sorted(self.out_of_scope):
            for question in self.out_of_scope[language]:
                yield language, question


def question_key(question: str) -> str:
    """What makes two questions the same one: case, spacing and a closing mark do not count."""
    return " ".join(question.casefold().rstrip("?？!！.。 ").split())


def parse_faq_kb(doc: object, source: str = "<faq-kb>") -> KnowledgeBase:
    """Build a knowledge base from an already-decoded `faq-kb/1` document.

    The document's "language" applies to every entry's examples, answer and title. Our
    extension: an optional "out_of_scope" list of questions (in that language) the knowledge
    base must not answer; the format allows extra top-level fields, so the shared scorer and
    other readers of `faq-kb/1` ignore it.
    """
    if not isinstance(doc, Mapping):
        raise KnowledgeFileError(source, "the document is not a JSON object")
    if doc.get("format") != FAQ_KB_FORMAT:
        raise KnowledgeFileError(source, f'"format" must be {FAQ_KB_FORMAT!r}')
    language = doc.get("language")
    if not isinstance(language, str) or not language:
        raise KnowledgeFileError(source, '"language" must be a non-empty string like "en"')
    raw_entries = doc.get("entries")
    if not isinstance(raw_entries, Sequence) or isinstance(raw_entries, str):
        raise KnowledgeFileError(source, '"entries" must be a list')
    entries = [
        _parse_entry(raw, language, f"{source}: entries[{i}]") for i, raw in enumerate(raw_entries)
    ]
    raw_rejects = doc.get("out_of_scope", [])
    if not isinstance(raw_rejects, Sequence) or isinstance(raw_rejects, str):
        raise KnowledgeFileError(source, '"out_of_scope" must be a list of strings')
    rejects = [_text(q, f"{source}: out_of_scope[{j}]") for j, q in enumerate(raw_rejects)]
    out_of_scope = {language: tuple(dict.fromkeys(rejects))} if rejects else {}
    try:
        return KnowledgeBase(tuple(entries), out_of_scope)
    except KnowledgeBaseError as err:
        raise KnowledgeFileError(source, str(err)) from err


def loads_faq_kb(text: str, source: str = "<faq-kb>") -> KnowledgeBase:
    """Parse `faq-kb/1` JSON text."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise KnowledgeFileError(source, f"invalid JSON: {err.msg}", err.lineno) from err
    return parse_faq_kb(doc, source)


def read_faq_kb(path: Path) -> KnowledgeBase:
    """Read a `faq-kb/1` JSON file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise KnowledgeFileError(str(path), f"cannot read the file: {err}") from err
    return loads_faq_kb(text, str(path))


def _parse_entry(raw: object, language: Language, where: str) -> Entry:
    if not isinstance(raw, Mapping):
        raise KnowledgeFileError(where, "an entry must be a JSON object")
    entry_id = raw.get("id")
    if not isinstance(entry_id, str) or not entry_id.strip():
        raise KnowledgeFileError(where, '"id" must be a non-empty string')
    examples = raw.get("examples", [])
    if not isinstance(examples, Sequence) or isinstance(examples, str):
        raise KnowledgeFileError(where, '"examples" must be a list of strings')
    questions = tuple(_text(q, f"{where}.examples[{j}]") for j, q in enumerate(examples))
    answer = raw.get("answer")
    title = raw.get("title")
    tags = raw.get("tags", [])
    if not isinstance(tags, Sequence) or isinstance(tags, str):
        raise KnowledgeFileError(where, '"tags" must be a list of strings')
    return Entry(
        id=entry_id.strip(),
        questions={language: questions} if questions else {},
        answers={language: _text(answer, f"{where}.answer")} if answer is not None else {},
        titles={language: _text(title, f"{where}.title")} if title is not None else {},
        tags=tuple(_text(t, f"{where}.tags") for t in tags),
    )


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise KnowledgeFileError(where, "must be a non-empty string")
    return " ".join(value.split())

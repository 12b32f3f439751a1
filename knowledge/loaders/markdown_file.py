"""The Markdown knowledge-base format: `## question` headings with the answer below.

Consecutive `##` headings (only blank lines between them) are example questions of one entry;
the text under the last one, up to the next heading, is its answer. Closing lines `Tags: ...`,
`Follow-ups: ...`, `Links: ...` and `Title: ...` describe the entry instead of answering. A
heading may end with `{#some-id}` (the entry's id, else a slug of its first question) and
`{lang=zh}`. A section's language is, in order: that setting, the file's `language: xx` line
before the first question, or the script its text is written in. Two sections with the same
`{#id}` in different languages are one bilingual entry. `# Titles` only group sections.

A `## [out of scope]` heading is not a question: each line below it (a `- ` in front is fine) is
an example of what the business does not answer (chit-chat, off-topic); a line's language is
the heading's `{lang=..}`, the file's, or its script's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from knowledge.entries import KnowledgeBase, KnowledgeFileError, Language, Link
from knowledge.loaders import drafts
from knowledge.loaders.drafts import Draft, Rejected

EXAMPLE: Final = "write each question as a '## ' heading with its answer below it"
_HEADING: Final = re.compile(r" {0,3}(#{1,2})(?:[ \t]+(.*))?")
_FENCE: Final = re.compile(r" {0,3}(`{3,}|~{3,})")
_LANGUAGE_LINE: Final = re.compile(r"\s*lang(?:uage)?\s*[:：]\s*(\S+)\s*", re.IGNORECASE)
_META: Final = re.compile(r"\s*(tags?|links?|follow[- _]?ups?|title)\s*[:：](.*)", re.IGNORECASE)
_SETTINGS: Final = re.compile(r"\{([^{}]*)\}\s*$")
_MARKDOWN_LINK: Final = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_LANGUAGE_NAMES: Final = {"en": "English", "zh": "Chinese"}
_OUT_OF_SCOPE: Final = re.compile(r"\[\s*out[\s_-]+of[\s_-]+scope\s*\]", re.IGNORECASE)
_LIST_MARK: Final = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")


@dataclass(slots=True)
class _Section:
    """Consecutive `##` questions and the lines below them."""

    line: int
    questions: list[str] = field(default_factory=list)
    id: str | None = None
    language: Language | None = None
    body: list[tuple[int, str]] = field(default_factory=list)  # (line number, text)
    out_of_scope: bool = False  # a `## [out of scope]` section: its lines are not answered


def parse_markdown_kb(text: str, source: str) -> KnowledgeBase:
    """A knowledge base from Markdown text; errors name the line of the heading or setting."""
    if not text.strip():
        raise KnowledgeFileError(source, f"the file is empty: {EXAMPLE}", 1)
    file_language, sections = _sections(text, source)
    merged: dict[str, Draft] = {}  # entries given an explicit {#id}, open to more languages
    parts: dict[tuple[str, Language], int] = {}  # (id, language) -> line of its section
    entries: list[Draft] = []
    rejected: list[Rejected] = []
    for section in sections:
        if section.out_of_scope:
            rejected += _rejected(section, file_language, source)
            continue
        answer, meta = _split_meta(section.body)
        if not answer:
            reason = f"the question here has no answer below it; {EXAMPLE}"
            raise KnowledgeFileError(source, reason, section.line)
        language = section.language or file_language
        language = language or drafts.detect_language([*section.questions, answer])
        entry_id = section.id or drafts.slug(section.questions[0])
        if not entry_id:
            reason = "cannot make an id from this question: give one, as in '## Question {#my-id}'"
            raise KnowledgeFileError(source, reason, section.line)
        if section.id is not None and entry_id in merged:
            draft = merged[entry_id]
            if (entry_id, language) in parts:
                first = parts[entry_id, language]
                reason = (
                    f"two {_LANGUAGE_NAMES[language]} sections have the id {entry_id!r} "
                    f"(lines {first} and {section.line}): every entry needs its own id"
                )
                raise KnowledgeFileError(source, reason, section.line)
        else:
            draft = Draft(entry_id, section.line)
            entries.append(draft)
            if section.id is not None:
                merged[entry_id] = draft
        parts.setdefault((entry_id, language), section.line)
        draft.questions[language] = section.questions
        draft.answers[language] = answer
        _apply_meta(draft, language, meta, source)
    return drafts.assemble(entries, source, EXAMPLE, rejected)


def _rejected(section: _Section, file_language: Language | None, source: str) -> list[Rejected]:
    """The out-of-scope examples of a `## [out of scope]` section, one per line."""
    rejected = []
    for number, line in section.body:
        if text := drafts.one_line(_LIST_MARK.sub("", line, count=1)):
            language = section.language or file_language or drafts.detect_language([text])
            rejected.append(Rejected(language, text, number))
    if not rejected:
        reason = (
            "the [out of scope] heading here has no questions below it: write one question the "
            "bot should not answer per line"
        )
        raise KnowledgeFileError(source, reason, section.line)
    return rejected


def _sections(text: str, source: str) -> tuple[Language | None, list[_Section]]:
    file_language: Language | None = None
    sections: list[_Section] = []
    current: _Section | None = None  # None before the first question and under '# ' titles
    fence, fence_line = "", 0  # the open code block's marker (``` or ~~~) and its line
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for number, line in enumerate(lines, 1):
        opening = None if fence else _FENCE.match(line)
        in_code = bool(fence or opening)  # a '## ' line in a code block is not a question
        if opening is not None:
            fence, fence_line = opening[1], number
        elif fence and line.strip().startswith(fence):
            fence = ""
        if in_code:
            if current is not None:
                current.body.append((number, line))
            continue
        heading = _HEADING.fullmatch(line)
        if heading is None:
            if current is not None:
                current.body.append((number, line))
            elif not sections and (setting := _LANGUAGE_LINE.fullmatch(line)):
                file_language = _language(setting[1], source, number)
            continue
        if heading[1] == "#":
            current = None
            continue
        question, entry_id, language = _heading(heading[2] or "", source, number)
        if _OUT_OF_SCOPE.fullmatch(question):
            if entry_id is not None:
                reason = "an [out of scope] heading takes no {#id}: it is not an entry"
                raise KnowledgeFileError(source, reason, number)
            current = _Section(number, language=language, out_of_scope=True)
            sections.append(current)
            continue
        if current is None or current.out_of_scope or any(b.strip() for _, b in current.body):
            current = _Section(number)
            sections.append(current)
        current.body.clear()
        current.questions.append(question)
        for name, value, given in (
            ("id", entry_id, current.id),
            ("language", language, current.language),
        ):
            if value is not None and given is not None and value != given:
                reason = f"this question gives another {name} than the one above ({given!r})"
                raise KnowledgeFileError(source, reason, number)
        current.id = current.id or entry_id
        current.language = current.language or language
    if fence:
        reason = f"the code block opened here with {fence} is never closed: close it with {fence}"
        raise KnowledgeFileError(source, reason, fence_line)
    if not sections:
        raise KnowledgeFileError(source, f"the file has no questions: {EXAMPLE}", 1)
    return file_language, sections


def _heading(text: str, source: str, line: int) -> tuple[str, str | None, Language | None]:
    """The question, id and language of a `##` heading's text."""
    text = re.sub(r"(?:^|[ \t]+)#+[ \t]*$", "", text)  # an optional closing '##'
    entry_id: str | None = None
    language: Language | None = None
    if settings := _SETTINGS.search(text):
        text = text[: settings.start()]
        for setting in settings[1].split():
            name, equals, value = setting.partition("=")
            if setting.startswith("#"):
                try:
                    entry_id = drafts.entry_id(setting[1:])
                except ValueError as error:
                    raise KnowledgeFileError(source, f"the id {error}", line) from None
            elif equals and name.lower() in ("lang", "language"):
                language = _language(value, source, line)
            else:
                reason = f"unknown setting {setting!r} in {{...}}: use {{#some-id}} or {{lang=zh}}"
                raise KnowledgeFileError(source, reason, line)
    question = drafts.one_line(text)
    if not question:
        raise KnowledgeFileError(source, "this heading has no question", line)
    return question, entry_id, language


def _language(value: str, source: str, line: int) -> Language:
    try:
        return drafts.language_code(value)
    except ValueError as error:
        raise KnowledgeFileError(source, str(error), line) from None


def _split_meta(body: list[tuple[int, str]]) -> tuple[str, list[tuple[int, str, str]]]:
    """The answer, and the `Tags:`-style lines that close the section: (line, name, value)."""
    end = len(body)
    meta: list[tuple[int, str, str]] = []
    while end and (not body[end - 1][1].strip() or _META.fullmatch(body[end - 1][1])):
        number, line = body[end - 1]
        if match := _META.fullmatch(line):
            name = re.sub(r"[- _]|s$", "", match[1].lower())  # tags -> tag, follow-ups -> followup
            meta.insert(0, (number, name, match[2].strip()))
        end -= 1
    return drafts.paragraphs("\n".join(line for _, line in body[:end])), meta


def _apply_meta(
    draft: Draft, language: Language, meta: list[tuple[int, str, str]], source: str
) -> None:
    for line, name, value in meta:
        try:
            if name == "tag":
                draft.tags += drafts.split_list(value)
            elif name == "followup":
                draft.follow_ups += [(drafts.entry_id(i), line) for i in drafts.split_ids(value)]
            elif name == "link":
                draft.links += _links(value)
            elif language in draft.titles:
                raise ValueError("the section has a second Title line")
            elif title := drafts.one_line(value):
                draft.titles[language] = title
        except ValueError as error:
            raise KnowledgeFileError(source, f"entry {draft.id!r}: {error}", line) from None


def _links(value: str) -> list[Link]:
    """`[Title](https://...)` links, or `Title https://...` separated by `|`."""
    links = [Link(drafts.one_line(t), drafts.url(u)) for t, u in _MARKDOWN_LINK.findall(value)]
    for part in _MARKDOWN_LINK.sub("|", value).split("|"):
        if part := drafts.one_line(part).strip(",; "):
            title, _, address = part.rpartition(" ")
            links.append(Link(title or address, drafts.url(address)))
    return links

"""What the knowledge-base file formats share: decoding, clean text, and the whole-file checks.

Each format module reads its file into `Draft`s (entries as written, with the line each part
came from) and `Rejected` out-of-scope examples, and `assemble` checks them together: every
entry has questions and an answer, ids are unique, follow-ups name real entries, no out-of-scope
example is also an entry's question. Only then is the frozen `KnowledgeBase` built, so a bad
file yields an error and never a partial knowledge base. Text is cleaned the same way in every
format, so an entry reads the same whichever format it was written in.
"""

from __future__ import annotations

import codecs
import difflib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from knowledge.entries import (
    Entry,
    KnowledgeBase,
    KnowledgeFileError,
    Language,
    Link,
    question_key,
)

#: The languages an entry may be written in.
LANGUAGES: Final = ("en", "zh")
MAX_ID_LENGTH: Final = 64
_LANGUAGE_NAMES: Final = {"english": "en", "英文": "en", "chinese": "zh", "中文": "zh"}
_ID = re.compile(r"\w[\w.-]*")  # \w is Unicode-aware: Chinese ids are fine
_URL = re.compile(r"(?:https?://|mailto:|tel:)\S+", re.IGNORECASE)
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")
SAVE_AS_UTF8: Final = (
    "save it as UTF-8 (in Excel: Save As > 'CSV UTF-8'; in a text editor: Encoding > UTF-8)"
)


@dataclass(slots=True)
class Draft:
    """An entry as read from a file, before the checks that need the whole file."""

    id: str
    line: int  # where the entry starts: errors about the entry as a whole point here
    questions: dict[Language, list[str]] = field(default_factory=dict)
    answers: dict[Language, str] = field(default_factory=dict)
    titles: dict[Language, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    follow_ups: list[tuple[str, int]] = field(default_factory=list)  # (id, line naming it)
    note: str = ""  # appended to reasons about this entry, e.g. "(row 7 in a spreadsheet)"


@dataclass(frozen=True, slots=True)
class Rejected:
    """An out-of-scope example as read from a file: a question the bot must not answer."""

    language: Language
    text: str
    line: int


def out_of_scope(examples: Sequence[Rejected]) -> dict[Language, tuple[str, ...]]:
    """The examples by language (sorted), each question once, in the order written."""
    by_language: dict[Language, list[str]] = {}
    for example in examples:
        by_language.setdefault(example.language, []).append(example.text)
    return {lang: tuple(dict.fromkeys(qs)) for lang, qs in sorted(by_language.items())}


def decode(data: bytes, source: str) -> str:
    """The file's text: UTF-8 with or without a byte-order mark, and no NUL characters."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise KnowledgeFileError(
            source, f"the file is not UTF-8 text from this line on; {SAVE_AS_UTF8}", line
        ) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise KnowledgeFileError(source, "the file contains a NUL character: is it text?", line)
    return text


def language_code(raw: str) -> Language:
    """ "en", "EN", "en-GB", "zh_CN", "Chinese" -> the code; ValueError names the allowed ones."""
    code = raw.strip().lower().replace("_", "-").split("-")[0]
    code = _LANGUAGE_NAMES.get(code, code)
    if code not in LANGUAGES:
        raise ValueError(
            f"{raw.strip()!r} is not a known language code: use en (English) or zh (Chinese)"
        )
    return code


def one_line(text: str) -> str:
    """A question, title or tag: whitespace runs (newlines included) become one space."""
    return " ".join(text.split())


def paragraphs(text: str) -> str:
    """An answer: line breaks kept, trailing spaces and blank lines at either end dropped."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(lines).strip()


def entry_id(raw: str) -> str:
    """A checked id; ValueError says what is wrong with it and suggests a fix."""
    value = raw.strip()
    if not value:
        raise ValueError("is empty")
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"is {len(value)} characters long; at most {MAX_ID_LENGTH} fit")
    if _ID.fullmatch(value) is None:
        suggestion = slug(value)
        hint = f" (for example {suggestion!r})" if suggestion else ""
        raise ValueError(f"{value!r} may contain only letters, digits, '-', '_' and '.'{hint}")
    return value


def slug(text: str) -> str:
    """An id made from a question: "Where can I park?" -> "where-can-i-park"."""
    words = re.findall(r"\w+", unicodedata.normalize("NFKC", text).lower())
    value = ""
    for word in words:
        candidate = f"{value}-{word}" if value else word
        if len(candidate) > 40:
            break
        value = candidate
    return value or (words[0][:40] if words else "")


def url(raw: str) -> str:
    """A link's address; ValueError when it is not a web, mail or phone link."""
    value = raw.strip()
    if _URL.fullmatch(value) is None:
        raise ValueError(
            f"{value!r} is not a link: it must start with https:// (or http://, mailto:, tel:)"
        )
    return value


def split_list(text: str) -> list[str]:
    """Tags or ids in one cell or line: separated by commas, semicolons, '|' or new lines."""
    return [item for item in (one_line(p) for p in re.split(r"[,;|\n，、；]", text)) if item]


def split_ids(text: str) -> list[str]:
    """Entry ids in one cell or line: as `split_list`, and spaces separate them too."""
    return [item for item in re.split(r"[\s,;|，、；]+", text) if item]


def detect_language(texts: Iterable[str]) -> Language:
    """zh when Chinese characters outnumber Latin-script words, else en.

    Counting words rather than letters keeps "可以用Apple Pay吗？" Chinese and
    "Do you speak Chinese (中文)?" English.
    """
    joined = "\n".join(texts)
    han = len(_HAN.findall(joined))
    return "zh" if han and han >= len(_LATIN_WORD.findall(joined)) else "en"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """ " (did you mean 'answers'?)" when `word` looks like a typo of a choice, else ""."""
    close = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def assemble(
    drafts: list[Draft], source: str, empty_hint: str, rejected: Sequence[Rejected] = ()
) -> KnowledgeBase:
    """The knowledge base, after the checks that need every entry of the file."""
    if not drafts:
        raise KnowledgeFileError(source, f"the file has no entries: {empty_hint}", 1)
    first_line: dict[str, int] = {}
    for draft in drafts:
        label = f"entry {draft.id!r}"
        if not any(draft.questions.values()):
            reason = f"{label} has no example questions: give it at least one"
            raise KnowledgeFileError(source, reason + draft.note, draft.line)
        if not draft.answers:
            reason = f"{label} has no answer: give it one in en or zh"
            raise KnowledgeFileError(source, reason + draft.note, draft.line)
        if draft.id in first_line:
            reason = (
                f"two entries have the id {draft.id!r} (lines {first_line[draft.id]} and "
                f"{draft.line}): every entry needs its own id"
            )
            raise KnowledgeFileError(source, reason + draft.note, draft.line)
        first_line[draft.id] = draft.line
    for draft in drafts:
        for other, line in draft.follow_ups:
            if other == draft.id:
                reason = f"entry {draft.id!r}: a follow-up names the entry itself"
                raise KnowledgeFileError(source, reason + draft.note, line)
            if other not in first_line:
                hint = did_you_mean(other, first_line)
                reason = f"entry {draft.id!r}: follow-up {other!r} is not the id of any entry"
                raise KnowledgeFileError(source, reason + hint + draft.note, line)
    owners = {question_key(q): d for d in drafts for qs in d.questions.values() for q in qs}
    for example in rejected:
        if (owner := owners.get(question_key(example.text))) is not None:
            reason = (
                f"the out-of-scope example {example.text!r} is also an example question of "
                f"entry {owner.id!r} (line {owner.line}): a question is either answered or not"
            )
            raise KnowledgeFileError(source, reason, example.line)
    return KnowledgeBase(tuple(_entry(draft) for draft in drafts), out_of_scope(rejected))


def _entry(draft: Draft) -> Entry:
    return Entry(
        id=draft.id,
        questions={
            lang: tuple(dict.fromkeys(qs)) for lang, qs in sorted(draft.questions.items()) if qs
        },
        answers=dict(sorted(draft.answers.items())),
        titles=dict(sorted(draft.titles.items())),
        tags=tuple(dict.fromkeys(draft.tags)),
        links=tuple(dict.fromkeys(draft.links)),
        follow_ups=tuple(dict.fromkeys(other for other, _ in draft.follow_ups)),
    )

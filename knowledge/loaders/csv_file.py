"""The CSV knowledge-base format: one row per entry, a column pair per language.

Columns (the header names them, in any order): `id`, `questions_en`, `answer_en`,
`questions_zh`, `answer_zh`, and optionally `title_en`, `title_zh`, `tags`, `links`,
`follow_ups`. Several questions share a cell, one per line or separated by `|`. A spreadsheet
keeps this shape naturally: one topic per row, the translation beside the original. Columns whose
name starts with `#` are the author's own notes and are skipped.

A row whose id is `out-of-scope` is not an entry: its questions are examples of what the business
does not answer (chit-chat, off-topic), and its other cells stay empty. There may be several.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from knowledge.entries import KnowledgeBase, KnowledgeFileError, Link
from knowledge.loaders import drafts
from knowledge.loaders.drafts import Draft, Rejected

EXAMPLE: Final = (
    "the first line names the columns, e.g. id,questions_en,answer_en,questions_zh,answer_zh"
)
# Header name -> field; plural and singular both work, as people write either.
_PLAIN: Final = {
    **{"id": "id", "tags": "tags", "tag": "tags", "links": "links", "link": "links"},
    **{"follow_ups": "follow_ups", "follow_up": "follow_ups", "followups": "follow_ups"},
}
_PER_LANGUAGE: Final = {
    **{"question": "questions", "questions": "questions", "answer": "answer"},
    **{"answers": "answer", "title": "title", "titles": "title"},
}
#: The id of the rows that hold out-of-scope examples ("Out of scope" and "out_of_scope" too).
OUT_OF_SCOPE_ID: Final = "out-of-scope"
COLUMNS: Final = (
    *("id", "questions_en", "answer_en", "questions_zh", "answer_zh", "title_en", "title_zh"),
    *("tags", "links", "follow_ups"),
)


@dataclass(frozen=True, slots=True)
class _Column:
    field: str  # id, questions, answer, title, tags, links, follow_ups; "" for a skipped column
    language: str = ""


@dataclass(frozen=True, slots=True)
class _Record:
    line: int  # where the record starts, as a text editor counts lines
    row: int  # its row in a spreadsheet, where a cell spanning lines is still one row
    cells: list[str]


def parse_csv_kb(text: str, source: str) -> KnowledgeBase:
    """A knowledge base from CSV text (`,`, `;` or tab separated); errors name the line."""
    records = _records(text, source, _delimiter(text))
    header = next((r for r in records if any(c.strip() for c in r.cells)), None)
    if header is None:
        raise KnowledgeFileError(source, f"the file is empty: {EXAMPLE}", 1)
    columns = _columns(header, source)
    entries: list[Draft] = []
    rejected: list[Rejected] = []
    for record in records:
        if any(cell.strip() for cell in record.cells):
            row = _Row(record, columns, source)
            if _is_out_of_scope(row.cells.get("id", "")):
                rejected += _out_of_scope(row)
            else:
                entries.append(_entry(row))
    return drafts.assemble(entries, source, "add one row per entry under the header", rejected)


def _delimiter(text: str) -> str:
    """The separator the header uses most: Excel writes ';' where ',' is the decimal mark."""
    header = next((line for line in io.StringIO(text) if line.strip()), "")
    return max(",;\t", key=header.count)  # a tie (one column) goes to ','


def _records(text: str, source: str, delimiter: str) -> Iterator[_Record]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    line = 1
    row = 0
    while True:
        row += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            reason = (
                f"the file cannot be read from the row starting here ({error}): look for a "
                'stray or unclosed quote (") in a cell'
            )
            raise KnowledgeFileError(source, reason, line) from None
        yield _Record(line, row, cells)
        line = reader.line_num + 1


def _columns(header: _Record, source: str) -> list[_Column]:
    columns: list[_Column] = []
    for cell in header.cells:
        name = re.sub(r"[\s-]+", "_", cell.strip().lower())
        if not name or name.startswith("#"):
            columns.append(_Column(""))
        elif name in _PLAIN:
            columns.append(_Column(_PLAIN[name]))
        elif name in _PER_LANGUAGE:
            reason = f"column {cell.strip()!r} needs a language: name it {name}_en or {name}_zh"
            raise KnowledgeFileError(source, reason, header.line)
        elif (field := name.partition("_")[0]) in _PER_LANGUAGE:
            try:
                language = drafts.language_code(name.partition("_")[2])
            except ValueError as error:
                reason = f"column {cell.strip()!r}: {error}"
                raise KnowledgeFileError(source, reason, header.line) from None
            columns.append(_Column(_PER_LANGUAGE[field], language))
        else:
            hint = drafts.did_you_mean(name, COLUMNS)
            reason = (
                f"unknown column {cell.strip()!r}{hint}; the columns are {', '.join(COLUMNS)} "
                "(start a column's name with # to keep your own notes in it)"
            )
            raise KnowledgeFileError(source, reason, header.line)
    named = [c for c in columns if c.field]
    if twice := sorted({_name(c) for c in named if named.count(c) > 1}):
        raise KnowledgeFileError(source, f"column {twice[0]} appears twice", header.line)
    if not any(c.field == "questions" for c in columns):
        reason = f"there is no questions_en or questions_zh column: {EXAMPLE}"
        raise KnowledgeFileError(source, reason, header.line)
    return columns


def _name(column: _Column) -> str:
    return f"{column.field}_{column.language}" if column.language else column.field


class _Row:
    """One record's cells by column name, checked for stray cells and NUL characters."""

    def __init__(self, record: _Record, columns: list[_Column], source: str) -> None:
        self.record, self.columns, self.source = record, columns, source
        self.note = f" (row {record.row} in a spreadsheet)" if record.row != record.line else ""
        self.label = "the entry on this row"
        cells = record.cells
        if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns) :]):
            extra = f"this row has {len(cells)} cells but the header names {len(columns)}"
            raise self.fail(f"{extra} (look for a missing or extra separator)")
        self.cells = {_name(c): v.strip() for c, v in zip(columns, cells, strict=False) if c.field}
        if "\x00" in "".join(self.cells.values()):
            raise self.fail("a cell contains a NUL character")
        self.questions = {
            c.language: [q for q in (drafts.one_line(p) for p in re.split(r"[|\n]", v)) if q]
            for c in columns
            if c.field == "questions" and (v := self.cells.get(_name(c), ""))
        }

    def fail(self, reason: str) -> KnowledgeFileError:
        return KnowledgeFileError(
            self.source, f"{self.label}: {reason}{self.note}", self.record.line
        )


def _is_out_of_scope(raw_id: str) -> bool:
    return re.sub(r"[\s_-]+", "-", raw_id.strip().lower()) == OUT_OF_SCOPE_ID


def _out_of_scope(row: _Row) -> list[Rejected]:
    row.label = f"the {OUT_OF_SCOPE_ID} row"
    for column in row.columns:
        if column.field not in ("", "id", "questions") and row.cells.get(_name(column)):
            reason = (
                f"leave {_name(column)} empty: this row lists questions the bot does not answer"
            )
            raise row.fail(reason)
    if not row.questions:
        raise row.fail("it has no questions: put the questions the bot should not answer there")
    line = row.record.line
    return [Rejected(lang, q, line) for lang, qs in sorted(row.questions.items()) for q in qs]


def _entry(row: _Row) -> Draft:
    raw_id = row.cells.get("id", "")
    if not raw_id:
        first = next((qs[0] for _, qs in sorted(row.questions.items()) if qs), "")
        raw_id = drafts.slug(first)
        if not raw_id:
            raise row.fail("it has no id and no question to make one from")
    try:
        entry_id = drafts.entry_id(raw_id)
    except ValueError as error:
        raise row.fail(f"id {error}") from None
    row.label, draft = f"entry {entry_id!r}", Draft(entry_id, row.record.line, note=row.note)
    draft.questions = row.questions
    for column in row.columns:
        value = row.cells.get(_name(column), "")
        if column.field == "answer" and (answer := drafts.paragraphs(value)):
            draft.answers[column.language] = answer
        elif column.field == "title" and (title := drafts.one_line(value)):
            draft.titles[column.language] = title
    draft.tags = drafts.split_list(row.cells.get("tags", ""))
    try:
        draft.links = _links(row.cells.get("links", ""))
    except ValueError as error:
        raise row.fail(f"links: {error}; write 'Title https://...'") from None
    try:
        for other in drafts.split_ids(row.cells.get("follow_ups", "")):
            draft.follow_ups.append((drafts.entry_id(other), row.record.line))
    except ValueError as error:
        raise row.fail(f"follow_ups: the id {error}") from None
    return draft


def _links(cell: str) -> list[Link]:
    """`Title https://...` per line or between `|`; a bare address is its own title."""
    links = []
    for part in (drafts.one_line(p) for p in re.split(r"[|\n]", cell)):
        if part:
            title, _, address = part.rpartition(" ")
            links.append(Link(title or address, drafts.url(address)))
    return links

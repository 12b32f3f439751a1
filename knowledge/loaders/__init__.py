"""Reading a knowledge base from the files a business writes: YAML, CSV, Markdown or JSON.

`load_knowledge_base(path)` picks the format by the file's extension; `parse_knowledge_base`
does the same for bytes already in hand (an upload). Every format yields the same
`KnowledgeBase` and reports a bad file with one `KnowledgeFileError` naming the file, the line
and a reason a non-programmer can act on; a file with any error yields no knowledge base at all.
The formats are documented for authors in README.md ("Writing the knowledge base").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Final

from knowledge.entries import KnowledgeBase, KnowledgeFileError, loads_faq_kb
from knowledge.loaders.csv_file import parse_csv_kb
from knowledge.loaders.drafts import LANGUAGES, decode
from knowledge.loaders.markdown_file import parse_markdown_kb
from knowledge.loaders.yaml_file import parse_yaml_kb

__all__ = [
    "FORMATS",
    "LANGUAGES",
    "load_knowledge_base",
    "parse_csv_kb",
    "parse_knowledge_base",
    "parse_markdown_kb",
    "parse_yaml_kb",
]

#: File extension -> the parser of that format's text (text, source name) -> knowledge base.
FORMATS: Final[dict[str, Callable[[str, str], KnowledgeBase]]] = {
    ".yaml": parse_yaml_kb,
    ".yml": parse_yaml_kb,
    ".csv": parse_csv_kb,
    ".md": parse_markdown_kb,
    ".markdown": parse_markdown_kb,
    ".json": loads_faq_kb,
}


def load_knowledge_base(path: str | Path) -> KnowledgeBase:
    """Read a knowledge-base file, its format chosen by its extension."""
    path = Path(path)
    _parser(str(path))  # an unsupported extension is reported before reading the file
    try:
        data = path.read_bytes()
    except OSError as error:
        reason = f"cannot read the file: {error.strerror or error}"
        raise KnowledgeFileError(str(path), reason) from None
    return parse_knowledge_base(data, str(path))


def parse_knowledge_base(data: bytes, source: str) -> KnowledgeBase:
    """A knowledge base from a file's bytes; the extension of its name `source` says the format."""
    parse = _parser(source)
    return parse(decode(data, source), source)


def _parser(source: str) -> Callable[[str, str], KnowledgeBase]:
    suffix = PurePath(source).suffix.lower()
    if suffix not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        reason = f"unknown kind of file {suffix or '(no extension)'!r}: use one of {known}"
        raise KnowledgeFileError(source, reason)
    return FORMATS[suffix]

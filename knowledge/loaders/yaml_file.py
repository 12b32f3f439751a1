"""The YAML knowledge-base format: a list of entries, each with questions and answers per language.

The file is either that list, or a mapping with `entries:` (the list) and optionally
`out_of_scope:`: per language, questions the business does not answer (chit-chat, off-topic),
which the bot learns to recognise and answers with "I don't know" and the offer of a person.
`parse_yaml_out_of_scope` reads a file that holds only `out_of_scope:` (the shipped default set).

The file is read as a YAML node tree (`yaml.compose`), not as Python values, for two reasons:
every node carries its line, so errors point at the exact place; and text stays the text the
author typed (YAML would otherwise turn `8:00` into 480 and `no` into False).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, NoReturn, TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from knowledge.entries import KnowledgeBase, KnowledgeFileError, Language, Link
from knowledge.loaders import drafts
from knowledge.loaders.drafts import Draft, Rejected

T = TypeVar("T")

FIELDS: Final = ("id", "questions", "answers", "titles", "tags", "links", "follow_ups")
_NULL: Final = "tag:yaml.org,2002:null"
EXAMPLE: Final = "each entry starts with '- id: ...' (see the sample knowledge base)"
OUT_OF_SCOPE_EXAMPLE: Final = "like 'en: [Tell me a joke, ...]' and 'zh: [给我讲个笑话, ...]'"
# What PyYAML says -> what the author most likely did.
_HINTS: Final = {
    "mapping values are not allowed": "put text that contains ': ' in quotes",
    "cannot start any token": "indent with spaces, not tabs",
    "expected <block end>": "check the indentation of this line and the one above",
    "could not find expected ':'": "a 'key: value' line is missing its ':'",
    "found undefined alias": "a '*' at the start of text must be in quotes",
    "expected ',' or": "inside [...] or {...} put text with '?' or ':' in quotes",
}


def parse_yaml_kb(text: str, source: str) -> KnowledgeBase:
    """A knowledge base from YAML text; `KnowledgeFileError` names the line of any problem."""
    root = _compose(text, source)
    if root is None:
        raise KnowledgeFileError(source, f"the file is empty: {EXAMPLE}", 1)
    items = root
    rejected: list[Rejected] = []
    if isinstance(root, MappingNode):
        fields = _Fields(source, "the file", root)
        fields.only(("entries", "out_of_scope"))
        if (examples := fields.get("out_of_scope")) is not None:
            rejected = _out_of_scope(source, examples)
        items = fields.get("entries") or _fail(source, root, "the file has no 'entries:' list")
    if not isinstance(items, SequenceNode):
        _fail(source, items, f"the file must be a list of entries: {EXAMPLE}")
    entries = [_entry(source, node, number) for number, node in enumerate(items.value, 1)]
    return drafts.assemble(entries, source, EXAMPLE, rejected)


def parse_yaml_out_of_scope(text: str, source: str) -> dict[Language, tuple[str, ...]]:
    """Out-of-scope examples by language from a file whose only field is `out_of_scope:`."""
    root = _compose(text, source)
    if root is None:
        raise KnowledgeFileError(
            source, f"the file is empty: give 'out_of_scope:' questions {OUT_OF_SCOPE_EXAMPLE}", 1
        )
    fields = _Fields(source, "the file", root)
    fields.only(("out_of_scope",))
    node = fields.get("out_of_scope") or fields.fail(root, "has no 'out_of_scope:' questions")
    return drafts.out_of_scope(_out_of_scope(source, node))


def _compose(text: str, source: str) -> Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "unreadable"
        hint = next((h for key, h in _HINTS.items() if key in problem), "")
        reason = f"this is not valid YAML: {problem}" + (f" ({hint})" if hint else "")
        if "<stream end>" in problem and "flow" in (error.context or ""):
            mark, reason = (
                error.context_mark,
                "this is not valid YAML: a '[' or '{' here is never closed",
            )
        raise KnowledgeFileError(source, reason, mark.line + 1 if mark else None) from None
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        reason = f"the file contains a character YAML does not allow ({error.character!r})"
        raise KnowledgeFileError(source, reason, line) from None
    except yaml.YAMLError as error:
        raise KnowledgeFileError(source, f"this is not valid YAML: {error}") from None
    except RecursionError:
        reason = "the file is nested too deeply to be a knowledge base"
        raise KnowledgeFileError(source, reason) from None


def _fail(source: str, node: Node, reason: str) -> NoReturn:
    raise KnowledgeFileError(source, reason, node.start_mark.line + 1)


class _Fields:
    """The keys of one YAML mapping, checked for duplicates and typos."""

    def __init__(self, source: str, label: str, node: Node) -> None:
        self.source, self.label = source, label
        if not isinstance(node, MappingNode):
            self.fail(node, "must be a set of 'key: value' lines")
        self.node = node
        self.values: dict[str, Node] = {}
        self.keys: dict[str, Node] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                self.fail(key, "has a key that is not a plain word")
            if key.value in self.values:
                first = self.keys[key.value].start_mark.line + 1
                self.fail(key, f"has {key.value!r} twice (also on line {first})")
            self.values[key.value], self.keys[key.value] = value, key

    def fail(self, node: Node, reason: str) -> NoReturn:
        _fail(self.source, node, f"{self.label} {reason}")

    def only(self, allowed: tuple[str, ...]) -> None:
        for name, key in self.keys.items():
            if name not in allowed:
                hint = drafts.did_you_mean(name, allowed)
                self.fail(
                    key, f"has an unknown field {name!r}{hint}; allowed: {', '.join(allowed)}"
                )

    def get(self, name: str) -> Node | None:
        node = self.values.get(name)
        return None if node is None or _is_null(node) else node


class _EntryReader:
    """Reads one entry's fields, naming the entry and the field in every error."""

    def __init__(self, source: str, label: str) -> None:
        self.source, self.label = source, label

    def fail(self, node: Node, path: str, reason: str) -> NoReturn:
        _fail(self.source, node, f"{self.label}: {path} {reason}")

    def text(self, node: Node, path: str, clean: Callable[[str], str] = drafts.one_line) -> str:
        if not isinstance(node, ScalarNode):
            self.fail(node, path, f"must be text, not a {_kind(node)}")
        value = clean(node.value) if not _is_null(node) else ""
        if not value:
            self.fail(node, path, "is empty")
        return value

    def checked(self, node: Node, path: str, check: Callable[[str], T]) -> T:
        value = self.text(node, path)
        try:
            return check(value)
        except ValueError as error:
            self.fail(node, path, str(error))

    def items(self, node: Node, path: str) -> list[Node]:
        """A list; a single text counts as a list of one."""
        if isinstance(node, ScalarNode):
            return [node]
        if not isinstance(node, SequenceNode):
            self.fail(node, path, "must be a list ('- ...' lines or [a, b])")
        return list(node.value)

    def by_language(self, node: Node, path: str) -> dict[str, Node]:
        """Values by language code; a language left empty (`zh:`) is one not written yet."""
        if not isinstance(node, MappingNode):
            self.fail(node, path, "must give one line per language, like 'en: ...' and 'zh: ...'")
        fields = _Fields(self.source, f"{self.label}: {path}", node)
        result: dict[str, Node] = {}
        for name, key in fields.keys.items():
            code = self.checked(key, path, drafts.language_code)
            if code in result:
                self.fail(key, path, f"gives {code} twice")
            if (value := fields.get(name)) is not None:
                result[code] = value
        return result


def _entry(source: str, node: Node, number: int) -> Draft:
    fields = _Fields(source, f"entry {number}", node)
    fields.only(FIELDS)
    id_node = fields.get("id") or fields.fail(fields.node, "has no id: add 'id: some-name'")
    reader = _EntryReader(source, f"entry {number}")
    draft = Draft(reader.checked(id_node, "id", drafts.entry_id), node.start_mark.line + 1)
    reader.label = f"entry {draft.id!r}"
    if (questions := fields.get("questions")) is not None:
        for lang, value in reader.by_language(questions, "questions").items():
            path = f"questions.{lang}"
            draft.questions[lang] = [reader.text(q, path) for q in reader.items(value, path)]
    if (answers := fields.get("answers")) is not None:
        for lang, value in reader.by_language(answers, "answers").items():
            draft.answers[lang] = reader.text(value, f"answers.{lang}", drafts.paragraphs)
    if (titles := fields.get("titles")) is not None:
        for lang, value in reader.by_language(titles, "titles").items():
            draft.titles[lang] = reader.text(value, f"titles.{lang}")
    if (tags := fields.get("tags")) is not None:  # a list, or one text: "hours, visit"
        for tag in reader.items(tags, "tags"):
            draft.tags += drafts.split_list(reader.text(tag, "tags"))
    if (links := fields.get("links")) is not None:
        draft.links = [_link(reader, link) for link in reader.items(links, "links")]
    if (follow_ups := fields.get("follow_ups")) is not None:
        for item in reader.items(follow_ups, "follow_ups"):
            for other in drafts.split_ids(reader.text(item, "follow_ups")):
                try:
                    entry_id = drafts.entry_id(other)
                except ValueError as error:
                    reader.fail(item, "follow_ups", f"names an id that {error}")
                draft.follow_ups.append((entry_id, item.start_mark.line + 1))
    return draft


def _out_of_scope(source: str, node: Node) -> list[Rejected]:
    if not isinstance(node, MappingNode):
        reason = f"out_of_scope must list questions per language, {OUT_OF_SCOPE_EXAMPLE}"
        _fail(source, node, reason)
    reader = _EntryReader(source, "the out-of-scope examples")
    rejected = []
    for lang, value in reader.by_language(node, "out_of_scope").items():
        path = f"out_of_scope.{lang}"
        for item in reader.items(value, path):
            rejected.append(Rejected(lang, reader.text(item, path), item.start_mark.line + 1))
    return rejected


def _link(reader: _EntryReader, node: Node) -> Link:
    if isinstance(node, ScalarNode):  # a bare address: its own title
        address = reader.checked(node, "links", drafts.url)
        return Link(address, address)
    fields = _Fields(reader.source, f"{reader.label}: a link", node)
    fields.only(("title", "url"))
    url_node = fields.get("url") or fields.fail(node, "has no url")
    title_node = fields.get("title") or fields.fail(node, "has no title")
    title = reader.text(title_node, "links.title")
    return Link(title, reader.checked(url_node, "links.url", drafts.url))


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


def _kind(node: Node) -> str:
    return "list" if isinstance(node, SequenceNode) else "set of 'key: value' lines"

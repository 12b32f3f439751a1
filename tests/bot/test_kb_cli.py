"""`concierge kb ...` against a real database: import, list, ask, eval, gaps; bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.samples import default_out_of_scope
from tests.conftest import concierge

DEFAULT_COUNT = sum(len(questions) for questions in default_out_of_scope().values())


@pytest.fixture(autouse=True)
def shared_cache(
    cli_home: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One embedding cache for the module's commands: the default set is encoded once."""
    del cli_home  # its settings first, then this one on top
    folder = tmp_path_factory.getbasetemp() / "kb-cli-cache"
    monkeypatch.setenv("CONCIERGE_CACHE_DIR", str(folder))


GOOD = """\
- id: opening-hours
  questions:
    en: [When are you open, What are your opening hours]
    zh: [你们几点开门]
  answers:
    en: We are open 07:30 to 19:00 every day.
    zh: 我们每天7:30到19:00营业。
- id: parking
  questions:
    en: [Where can I park, Is there parking]
  answers:
    en: Park in front of the workshop, it is free.
"""

BAD = """\
- id: broken
  questions:
    en: [Anything]
"""


def test_import_replaces_the_knowledge_base_and_list_shows_it(cli_home: Path) -> None:
    (cli_home / "kb.yaml").write_text(GOOD, encoding="utf-8")
    imported = concierge("kb", "import", "kb.yaml")
    assert imported.exit_code == 0, imported.output
    assert "Imported 2 entries (en, zh)" in imported.output
    listed = concierge("kb", "list")
    assert "opening-hours" in listed.output
    assert "parking" in listed.output
    assert "(imported)" in listed.output


WITH_EXAMPLES = (
    "entries:\n"
    + "".join(f"  {line}\n" for line in GOOD.splitlines())
    + "out_of_scope:\n  en: [Tell me about the football, Do you sell ice cream]\n  zh: 你几岁了\n"
)


def test_import_stores_out_of_scope_examples_and_list_counts_them(cli_home: Path) -> None:
    listed = concierge("kb", "list")
    assert f"out-of-scope examples: {DEFAULT_COUNT} (the default set)" in listed.output
    (cli_home / "kb.yaml").write_text(WITH_EXAMPLES, encoding="utf-8")
    imported = concierge("kb", "import", "kb.yaml")
    assert imported.exit_code == 0, imported.output
    assert "Imported 2 entries (en, zh) and 3 out-of-scope examples" in imported.output
    listed = concierge("kb", "list")
    assert "out-of-scope examples: 3 (the knowledge base's own)" in listed.output
    assert "[out of scope]" not in listed.output  # the reserved row is not an entry
    asked = concierge("kb", "ask", "do you sell ice cream?")
    assert asked.exit_code == 0, asked.output
    assert "out_of_scope" in asked.output
    assert "out-of-scope examples: 3 (the knowledge base's own)" in asked.output


def test_an_import_without_examples_learns_the_default_set(cli_home: Path) -> None:
    (cli_home / "kb.yaml").write_text(GOOD, encoding="utf-8")
    assert concierge("kb", "import", "kb.yaml").exit_code == 0
    asked = concierge("kb", "ask", "tell me a joke about cats")
    assert asked.exit_code == 0, asked.output
    assert "out_of_scope" in asked.output
    # GOOD asks 4 questions in English and 1 in Chinese: a quarter of the Chinese examples
    chinese = len(default_out_of_scope()["zh"])
    learnt, left = DEFAULT_COUNT - chinese + round(chinese / 4), chinese - round(chinese / 4)
    expected = (
        f"out-of-scope examples: {learnt} (the default set; "
        f"{left} in zh not learnt (the entries ask fewer questions in it))"
    )
    assert expected in asked.output


ENGLISH_ONLY = """\
entries:
  - id: opening-hours
    questions:
      en: [When are you open, What are your opening hours]
    answers:
      en: Monday to Friday, 8 to 18.
out_of_scope:
  en: [Tell me about the football, Do you sell ice cream]
  zh: 你几岁了
"""


def test_examples_in_a_language_no_entry_asks_in_are_not_learnt(cli_home: Path) -> None:
    (cli_home / "kb.yaml").write_text(ENGLISH_ONLY, encoding="utf-8")
    assert concierge("kb", "import", "kb.yaml").exit_code == 0
    listed = concierge("kb", "list")
    expected = (
        "out-of-scope examples: 2 (the knowledge base's own; "
        "1 in zh not learnt (the entries ask fewer questions in it))"
    )
    assert expected in listed.output


def test_a_bad_out_of_scope_part_says_where(cli_home: Path) -> None:
    bad = WITH_EXAMPLES.replace("zh: 你几岁了", "fr: [Quel âge as-tu]")
    (cli_home / "kb.yaml").write_text(bad, encoding="utf-8")
    failed = concierge("kb", "import", "kb.yaml")
    assert failed.exit_code == 1
    assert "kb.yaml:16:" in failed.stderr
    assert "'fr' is not a known language code" in failed.stderr


def test_a_bad_file_says_where_and_changes_nothing(cli_home: Path) -> None:
    (cli_home / "kb.yaml").write_text(GOOD, encoding="utf-8")
    assert concierge("kb", "import", "kb.yaml").exit_code == 0
    (cli_home / "bad.yaml").write_text(BAD, encoding="utf-8")
    failed = concierge("kb", "import", "bad.yaml")
    assert failed.exit_code == 1
    assert "bad.yaml:1" in failed.stderr
    assert "answer" in failed.stderr
    assert "parking" in concierge("kb", "list").output  # the old knowledge base is still there


def test_before_any_import_the_sample_is_used(cli_home: Path) -> None:
    listed = concierge("kb", "list")
    assert "sample car-workshop" in listed.output
    assert "opening-hours" in listed.output


def test_ask_shows_the_best_matches_with_scores(cli_home: Path) -> None:
    (cli_home / "kb.yaml").write_text(GOOD, encoding="utf-8")
    assert concierge("kb", "import", "kb.yaml").exit_code == 0
    asked = concierge("kb", "ask", "when do you open?")
    assert asked.exit_code == 0, asked.output
    lines = [line for line in asked.output.splitlines() if "opening-hours" in line]
    assert lines
    assert "1" in lines[0].split("opening-hours")[0]  # ranked first


def test_gaps_is_empty_on_a_new_database(cli_home: Path) -> None:
    assert "No unanswered questions" in concierge("kb", "gaps").output


def _queries(*items: str) -> str:
    body = ",\n    ".join(items)
    head = '{\n  "format": "faq-queries/1",\n  "language": "en",\n  "queries": [\n    '
    return head + body + "\n  ]\n}\n"


QUERIES = _queries(
    '{"qid": "a", "text": "what time do you open", "expected": "opening-hours"}',
    '{"qid": "b", "text": "is there a place to park my car", "expected": "parking"}',
    '{"qid": "c", "text": "你们几点开门？", "expected": "opening-hours"}',
    '{"qid": "d", "text": "who painted the mona lisa", "expected": null}',
)


def test_eval_prints_accuracy_oos_and_latency(cli_home: Path) -> None:
    (cli_home / "kb.yaml").write_text(GOOD, encoding="utf-8")
    (cli_home / "q.json").write_text(QUERIES, encoding="utf-8")
    result = concierge("kb", "eval", "--kb", "kb.yaml", "--queries", "q.json")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "3 in scope, 1 out of scope" in out
    for metric in ("in-scope accuracy", "closed-set accuracy", "OOS recall", "OOS precision"):
        assert metric in out
    assert "100.00 %" in out  # closed-set: the three in-scope questions land on their entry
    assert "p50 / p95" in out
    assert " ms" in out


def test_eval_names_file_line_and_reason_of_a_bad_query(cli_home: Path) -> None:
    (cli_home / "kb.yaml").write_text(GOOD, encoding="utf-8")
    bad = _queries(
        '{"qid": "a", "text": "what time do you open", "expected": "opening-hours"}',
        '{"qid": "b", "text": "where to park", "expected": "parkin"}',
    )
    (cli_home / "q.json").write_text(bad, encoding="utf-8")
    result = concierge("kb", "eval", "--kb", "kb.yaml", "--queries", "q.json")
    assert result.exit_code == 1
    message = result.stderr.strip()
    assert message.count("\n") == 0
    assert "q.json:6:" in message
    assert "'parkin' is not the id of any entry" in message


def test_eval_reports_invalid_json_and_a_bad_kb(cli_home: Path) -> None:
    (cli_home / "kb.yaml").write_text(GOOD, encoding="utf-8")
    (cli_home / "q.json").write_text('{"format": "faq-queries/1",\n "queries": [}\n', "utf-8")
    result = concierge("kb", "eval", "--kb", "kb.yaml", "--queries", "q.json")
    assert result.exit_code == 1
    assert "q.json:2: invalid JSON" in result.stderr
    (cli_home / "bad.yaml").write_text(BAD, encoding="utf-8")
    (cli_home / "q.json").write_text(QUERIES, encoding="utf-8")
    result = concierge("kb", "eval", "--kb", "bad.yaml", "--queries", "q.json")
    assert result.exit_code == 1
    assert "bad.yaml:1" in result.stderr

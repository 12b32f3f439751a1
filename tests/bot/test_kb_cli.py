"""`concierge kb ...` on a real database: import, list, ask, gaps; a bad file changes nothing."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import concierge

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

"""The `concierge` command line, run for real against a SQLite file in a temporary directory.

Every test runs with the temporary directory as its working directory and without any
CONCIERGE_* variable from the developer's shell, so neither a `.env` file nor the environment
of whoever runs the suite can change what the commands see.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import concierge

GOOD = (
    "external_id,name,phone,birthday,service_kind,service_date,service_description,next_due\n"
    "C1,Zhang Wei,138 0013 8000,1985-07-14,oil change,2026-03-02,Synthetic 5W-30,2026-09-02\n"
    "C2,Anna Smith,+1 201 555 0123,--02-29,,,,\n"
)


@pytest.fixture
def home(cli_home: Path) -> Path:
    return cli_home


def flat(text: str) -> str:
    """The output with line breaks and runs of spaces folded, as a person reads it."""
    return " ".join(text.split())


def test_import_then_list_and_show_the_customers(home: Path) -> None:
    (home / "customers.csv").write_text(GOOD, encoding="utf-8")

    imported = concierge("customers", "import", "customers.csv")
    listed = concierge("customers", "list")
    shown = concierge("customers", "show", "1")

    assert imported.exit_code == 0, imported.output
    assert flat(imported.stdout) == (
        "Imported 2 customers (2 new, 0 updated) and 1 service record (1 new, 0 updated)."
    )
    assert imported.stderr == ""
    assert listed.exit_code == 0
    assert "Zhang Wei" in listed.stdout
    assert "Anna Smith" in listed.stdout
    assert shown.exit_code == 0
    profile = flat(shown.stdout)
    for expected in ("Zhang Wei", "+8613800138000", "1985-07-14", "C1", "oil change"):
        assert expected in profile
    assert "Synthetic 5W-30" in profile
    assert "2026-09-02" in profile


def test_import_reports_bad_rows_by_line_and_exits_1(home: Path) -> None:
    (home / "mixed.csv").write_text(
        GOOD + "C3,Bad Birthday,,02-30,,,,\nC4,Bad Phone,12345,,,,,\n", encoding="utf-8"
    )

    result = concierge("customers", "import", "mixed.csv")

    assert result.exit_code == 1
    problems = flat(result.stderr)
    assert "mixed.csv:4: birthday '02-30' is not a date: day is out of range for month" in problems
    assert "mixed.csv:5: phone '12345' is not a valid phone number" in problems
    assert flat(result.stdout) == (
        "Imported 2 customers (2 new, 0 updated) and 1 service record (1 new, 0 updated); "
        "2 rows skipped with errors."
    )
    assert "Zhang Wei" in concierge("customers", "list").stdout


def test_import_of_a_file_without_header_exits_1_and_imports_nothing(home: Path) -> None:
    (home / "no-header.csv").write_text("13800138000,Zhang Wei\n", encoding="utf-8")

    result = concierge("customers", "import", "no-header.csv")

    assert result.exit_code == 1
    assert "no-header.csv:1: line 1 is not a header row" in flat(result.stderr)
    assert flat(result.stdout).startswith("Nothing imported")


def test_import_of_a_missing_file_is_a_usage_error(home: Path) -> None:
    result = concierge("customers", "import", "nowhere.csv")

    assert result.exit_code == 2
    assert "nowhere.csv" in result.stderr


def test_cells_that_look_like_markup_are_printed_as_written(home: Path) -> None:
    (home / "markup.csv").write_text("external_id,phone\nA,[/x]\nB,[red]x\n", encoding="utf-8")

    result = concierge("customers", "import", "markup.csv")

    assert result.exit_code == 1
    assert "phone '[/x]'" in result.stderr
    assert "phone '[red]x'" in result.stderr


def test_show_of_a_missing_customer_says_so(home: Path) -> None:
    result = concierge("customers", "show", "99")

    assert result.exit_code == 1
    assert "no customer with id 99" in result.stderr


def test_config_masks_the_telegram_token(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONCIERGE_TELEGRAM_TOKEN", "123:secret")

    result = concierge("config")

    assert result.exit_code == 0
    assert "secret" not in result.output
    assert "CONCIERGE_TELEGRAM_TOKEN" in result.stdout
    assert "********" in result.stdout


def test_config_reads_the_env_file_of_the_working_directory(home: Path) -> None:
    (home / ".env").write_text("CONCIERGE_BUSINESS_NAME=Dotenv Motors\n", encoding="utf-8")

    result = concierge("config")

    assert result.exit_code == 0
    assert "Dotenv Motors" in result.stdout


def test_db_upgrade_creates_the_tables_in_an_empty_file(home: Path) -> None:
    result = concierge("db", "upgrade")

    assert result.exit_code == 0, result.output
    assert "is up to date" in flat(result.stdout)
    with sqlite3.connect(home / "cli.db") as connection:
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master")}
    assert {"customers", "service_records", "alembic_version"} <= tables


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CONCIERGE_WEB_PORT", "abc", "CONCIERGE_WEB_PORT: Input should be a valid integer"),
        ("CONCIERGE_TIMEZONE", "Mars/Base", "CONCIERGE_TIMEZONE: Value error, unknown time zone"),
    ],
)
def test_an_invalid_setting_is_a_clear_error_with_exit_code_2(
    home: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)

    result = concierge("config")

    assert result.exit_code == 2
    assert message in flat(result.stderr)
    assert "Traceback" not in result.output

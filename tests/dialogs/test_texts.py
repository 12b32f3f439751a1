"""The text catalogs: every key in both languages, with the same placeholders."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from dialogs.texts import MissingTextError, catalog, day, duration, placeholders, t


def test_every_text_exists_in_english_and_chinese_with_the_same_placeholders() -> None:
    english, chinese = catalog("en"), catalog("zh")
    assert english.keys() == chinese.keys()
    for key, template in english.items():
        assert placeholders(template) == placeholders(chinese[key]), key


def test_a_missing_text_says_which_file_to_edit() -> None:
    with pytest.raises(MissingTextError, match=r"dialogs/texts/zh\.yaml"):
        t("zh", "no.such.key")


@pytest.mark.parametrize(
    ("days", "language", "expected"),
    [(150, "en", "5 months"), (150, "zh", "5个月"), (1, "en", "1 day"), (400, "zh", "1年")],
)
def test_durations_follow_each_languages_plural_rules(
    days: int, language: str, expected: str
) -> None:
    assert duration(timedelta(days=days), language) == expected  # type: ignore[arg-type]


def test_dates_are_written_the_local_way() -> None:
    assert day(date(2026, 6, 12), "en") == "June 12, 2026"
    assert day(date(2026, 6, 12), "zh") == "2026年6月12日"

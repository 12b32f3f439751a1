"""The complaint dialog's own rules: what reopens a ticket, and how answer times are worded."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialogs.complaint import is_still_broken, ticket_opened
from dialogs.texts import t


@pytest.mark.parametrize(
    "text",
    [
        "still not fixed",
        "It's still broken",
        "the noise is back again, same problem",
        "your repair didn't fix it",
        "the problem is back",
        "还是不行",
        "问题还在",
        "又坏了",
        "还没修好",
        "根本没解决",
    ],
)
def test_these_reopen_a_resolved_ticket(text: str) -> None:
    assert is_still_broken(text)


@pytest.mark.parametrize(
    "text", ["thanks, all good now", "it works perfectly", "谢谢，已经好了", "when do you open?"]
)
def test_these_do_not(text: str) -> None:
    assert not is_still_broken(text)


@given(st.text())
def test_reopening_check_never_fails(text: str) -> None:
    assert is_still_broken(text) in (True, False)


def test_answer_times_say_today_tomorrow_or_the_day() -> None:
    now = datetime(2026, 5, 1, 10, 0)
    today = ticket_opened("en", 7, datetime(2026, 5, 1, 14, 0), now, None)
    assert today.text == t("en", "ticket.opened_open_now", number=7, due="today at 14:00")
    tomorrow = ticket_opened("zh", 7, datetime(2026, 5, 2, 13, 0), now, datetime(2026, 5, 2, 9))
    assert tomorrow.text == t(
        "zh", "ticket.opened_closed_now", number=7, back="明天 09:00", due="明天 13:00"
    )
    later = ticket_opened("en", 7, datetime(2026, 5, 4, 13, 0), now, datetime(2026, 5, 4, 9))
    assert "Monday 4 May, 09:00" in later.text
    assert "Monday 4 May, 13:00" in later.text

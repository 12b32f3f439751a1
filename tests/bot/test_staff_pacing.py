"""The staff group's pacing: the post budget, digest packing, and the notifier as a leader job."""

from __future__ import annotations

import random
from collections.abc import Sequence

from bot.clock import ManualClock
from bot.config import Settings
from bot.staff.pacing import HOLD, DigestLine, PostBudget, pack, utf16_length
from bot.staff.telegram import Button
from bot.storage.database import Database
from scheduler.runtime import ProactiveRuntime


def test_the_budget_never_allows_more_than_the_limit_in_any_window() -> None:
    budget = PostBudget(20, 61.0)
    spent: list[float] = []
    now = 0.0
    rng = random.Random(7)
    while now < 600:
        if budget.available(now):
            budget.spend(now)
            spent.append(now)
        now += rng.choice([0.0, 0.1, 0.5, 2.0, 7.0])
    assert all(sum(1 for s in spent if start <= s < start + 61.0) <= 20 for start in spent)
    assert len(spent) >= 20 * 9  # and it does allow the limit, window after window


def test_spacing_spreads_the_tokens_left_until_the_first_returns() -> None:
    budget = PostBudget(20, 61.0)
    assert budget.spacing(0.0) == HOLD
    for _ in range(10):
        budget.spend(0.0)
    assert budget.spacing(1.0) == 6.0  # 60 s until a token returns, 10 tokens left
    budget.exhaust(1.0, 5.0)  # a 429 said: wait 5 s
    assert budget.available(5.9) == 0
    assert budget.wait(1.0) == 5.0
    assert budget.available(6.0) == 20


def test_digests_keep_every_line_in_order_within_the_length_limit() -> None:
    lines = [
        DigestLine(f"#{n} ❗ Customer {n}: the brakes squeal again 😠 after the repair…", (n,), n)
        for n in range(1, 1001)
    ]
    lines.append(DigestLine("x" * 5000, (1001,), None))  # far too long: shortened
    digests = pack(lines, lambda count: f"📋 {count} tickets", lambda n: f"/ticket {n}", 4096)

    assert all(utf16_length(d.text) <= 4096 for d in digests)
    assert [i for d in digests for i in d.notice_ids] == list(range(1, 1002))
    assert [d.full for d in digests[:-1]] == [True] * (len(digests) - 1)
    assert len(digests) <= 17  # 1000 tickets in well under 20 posts
    assert digests[0].text.startswith("📋 ")
    assert digests[0].text.endswith("/ticket 1")


def test_the_notifier_is_a_job_of_the_leader_only_with_telegram(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    class Chat:
        async def post(
            self,
            chat_id: str,
            text: str,
            *,
            reply_to: str | None = None,
            buttons: Sequence[Button] = (),
        ) -> str:
            return "1"

        async def answer_button(self, query_id: str, text: str, *, alert: bool = False) -> None:
            return None

    with_telegram = ProactiveRuntime(db, clock, settings, {}, staff_chat=Chat())
    assert with_telegram._scheduler().get_job("staff notices") is not None
    assert ProactiveRuntime(db, clock, settings, {})._scheduler().get_job("staff notices") is None

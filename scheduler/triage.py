"""Triage of a claimed batch: each row to send (and where), to skip (why) or to hold (until).

Pure: the claimed rows and what the store knows about their customers go in, decisions come
out. The contact policy decides per row; on top, a row whose channel asked us to pause waits
for the pause, and the marketing going out in this very batch counts against the frequency cap
of the rows after it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from scheduler.claims import Claimed, Facts, RowUpdate
from scheduler.localtime import zone
from scheduler.outbox import Status
from scheduler.policy import Category, ContactPolicy, Delay, Due, Recipient, Skip, decide

QUIET_HOURS = "quiet hours"
PAUSED = "channel paused"


@dataclass(frozen=True, slots=True)
class Ready:
    """A row cleared to go, and the chat it goes to."""

    row: Claimed
    channel: str
    chat_id: str


@dataclass(slots=True)
class Triage:
    ready: list[Ready] = field(default_factory=list)
    updates: list[RowUpdate] = field(default_factory=list)  # skipped or held rows
    skipped: Counter[str] = field(default_factory=Counter)
    delayed: int = 0


def triage(
    claimed: Sequence[Claimed],
    facts: Mapping[int, Facts],
    now: datetime,
    policy: ContactPolicy,
    default_timezone: str,
    paused: Mapping[str, datetime],
    channels: Collection[str],
) -> Triage:
    """Decide every claimed row; `channels` are those the dispatcher can send on."""
    result = Triage()
    marketing_now: Counter[int] = Counter()
    for row in claimed:
        fact = facts.get(row.customer_id)
        if row.channel and row.chat_id:  # addressed to one chat (or sent there before a retry)
            route = (row.channel, row.chat_id) if row.channel in channels else None
            known = False
        else:  # the customer's newest chat that is not blocked
            route = fact.route if fact else None
            known = bool(fact and fact.has_identity)
        recent = (fact.recent_marketing if fact else 0) + marketing_now[row.customer_id]
        recipient = Recipient(
            zone=zone(fact.timezone if fact else None, default_timezone),
            has_channel=route is not None or known,
            blocked=route is None and known,
            marketing_consent=bool(fact and fact.marketing_consent),
            opted_out=bool(fact and fact.opted_out),
            recent_marketing=recent,
        )
        decision = decide(Due(row.category, now, row.expires_at), recipient, policy)
        if isinstance(decision, Skip):
            result.skipped[decision.reason] += 1
            result.updates.append(RowUpdate(row.id, Status.SKIPPED, decision.reason.value))
        elif isinstance(decision, Delay):
            result.delayed += 1
            result.updates.append(
                RowUpdate(row.id, Status.QUEUED, QUIET_HOURS, None, decision.until)
            )
        elif route is not None and route[0] in paused:
            result.updates.append(RowUpdate(row.id, Status.QUEUED, PAUSED, None, paused[route[0]]))
        elif route is not None:
            if row.category is Category.MARKETING:
                marketing_now[row.customer_id] += 1
            result.ready.append(Ready(row, *route))
    return result

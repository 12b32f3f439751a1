"""Complaint burst: 1 000 customers complain at once; how soon does the staff group see each?

    .venv/bin/python bench/complaints.py [--complaints 1000] [--postgres URL]

The fake Bot API server (tests/fakes/telegram_api.py) runs in a child process with Telegram's
flood limits on (30 messages/s overall, 1/s per private chat, 20/min per group: 429 with
retry_after beyond them). It queues one complaint from each of N customers on file at the same
moment. This process runs the bot's Telegram side as `concierge run` does: the long-polling
loop (real python-telegram-bot client -> engine -> tickets, one transaction per getUpdates
round) and the staff notifier, a pass every `STAFF_NOTICES_INTERVAL` second as the scheduler
runs it.

Measured, on the fake server's clock, from each customer's message being queued to the arrival
of the staff-group post that first shows its ticket (its card, or the digest it is in):
p50/p95/p99 (goal p99 <= 5 s). "Lost" counts complaints with no ticket and tickets in no post;
each is also looked for by number in the texts the group received. The split "ticket opened"
shows how much of it is the engine's share (polling, handling, replies under the limits).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.fakes and bench

from pydantic import SecretStr
from sqlalchemy import func, insert, select

from bench.broadcast import fresh_database
from bot.channels.reply_sender import SenderStats
from bot.channels.telegram_poller import build_poller
from bot.clock import SystemClock
from bot.config import Settings
from bot.engine import Engine
from bot.staff.notifier import NotifierStats, StaffNotifier
from bot.staff.telegram import TelegramStaffChat
from bot.storage.database import Database
from bot.storage.models import ChannelIdentity, Customer, StaffNotice, Ticket
from scheduler.runtime import STAFF_NOTICES_INTERVAL
from tests.fakes.telegram_api import FakeTelegramAPI, TelegramLimits

TOKEN = "123456789:TEST-fake-token"
GROUP = -1001234567890
FIRST_CHAT = 100_001
GOAL_P99 = 5.0  # seconds
SHOWN = re.compile(r"(?m)^(?:🆕 Ticket )?#(\d+)")  # a card's title or a digest's line
TEXTS = [
    "I want to make a complaint: the brakes squeal since your repair",
    "This is unacceptable, my car still leaks oil after the service",
    "I need to talk to a manager about the bill, it is wrong",
    "我要投诉，修完车以后刹车还是有异响",
]


def serve_fake(pipe: Connection, limits: TelegramLimits) -> None:
    """The child process: the fake server; pushes the burst on request, reports at the end."""

    async def main() -> None:
        api = FakeTelegramAPI(token=TOKEN, limits=limits)
        arrivals: dict[int, float] = {}  # message id -> when the server accepted it
        accept = api._handlers["sendmessage"]

        async def timed(params: dict[str, Any]) -> dict[str, Any]:
            result = await accept(params)
            arrivals[result["message_id"]] = time.time()
            return result

        api._handlers["sendmessage"] = timed
        loop = asyncio.get_running_loop()
        async with api.running():
            pipe.send(api.url)
            count = await loop.run_in_executor(None, pipe.recv)
            pushed_at = time.time()
            for n in range(count):
                chat = FIRST_CHAT + n
                api.push_text(chat, TEXTS[n % len(TEXTS)], first_name=f"Customer{n}")
            pipe.send(pushed_at)
            await loop.run_in_executor(None, pipe.recv)
        group = [(arrivals[m.message_id], m.message_id, m.text) for m in api.sent_to(GROUP)]
        pipe.send(
            {
                "group": group,
                "private": len(api.sent) - len(group),
                "rate_limited": api.rate_limited,
            }
        )

    asyncio.run(main())


async def populate(database: Database, count: int) -> None:
    """Customers on file, each with a Telegram chat (chat id = FIRST_CHAT + n)."""
    await database.upgrade()
    now = datetime.now(UTC)
    async with database.transaction() as session:
        await session.execute(
            insert(Customer),
            [
                {"id": n + 1, "name": f"Customer {n}", "language": "en", "tags": [],
                 "preferences": {}, "on_file": True, "visit_count": 1, "created_at": now,
                 "last_seen_at": now}
                for n in range(count)
            ],
        )  # fmt: skip
        await session.execute(
            insert(ChannelIdentity),
            [
                {"channel": "telegram", "external_id": str(FIRST_CHAT + n),
                 "chat_id": str(FIRST_CHAT + n), "customer_id": n + 1, "created_at": now}
                for n in range(count)
            ],
        )  # fmt: skip


async def unposted(database: Database, count: int, only_opened: bool = False) -> bool:
    async with database.sessions() as session:
        opened = await session.scalar(select(func.count()).select_from(Ticket)) or 0
        waiting = await session.scalar(
            select(func.count()).where(
                StaffNotice.kind == "new_ticket", StaffNotice.status != "posted"
            )
        )
    return opened < count or (bool(waiting) and not only_opened)


async def wait_until_done(database: Database, count: int, only_opened: bool = False) -> None:
    deadline = time.time() + 300
    while time.time() < deadline:
        if not await unposted(database, count, only_opened):
            return
        await asyncio.sleep(0.2)
    raise TimeoutError("the burst was not through within 300 s")


async def run(
    database: Database,
    settings: Settings,
    count: int,
    send: Callable[[int], float],
    queued: bool,
) -> tuple[float, float, float, SenderStats, NotifierStats]:
    """The bot's side during the burst; returns when every ticket's notice is posted and every
    reply to the customers is out.

    With `queued` the notifier starts only once every ticket is open: its backlog is the
    whole burst. Returns when the burst was sent, when the notifier started, when the last
    reply went out, and the stats.
    """
    clock = SystemClock()
    engine = Engine(database, clock, settings)
    poller = build_poller(engine, settings)
    notifier = StaffNotifier(database, clock, TelegramStaffChat(poller.bot), settings)

    async def notify() -> None:
        while True:
            await notifier.drain()
            await asyncio.sleep(STAFF_NOTICES_INTERVAL)

    async with poller.bot:
        tasks = [asyncio.create_task(poller.run())]
        if not queued:
            tasks.append(asyncio.create_task(notify()))
        pushed_at = await asyncio.to_thread(send, count)
        notifying_from = pushed_at
        if queued:
            await wait_until_done(database, count, only_opened=True)
            notifying_from = time.time()
            tasks.append(asyncio.create_task(notify()))
        await wait_until_done(database, count)
        await poller.replies.idle()
        replied_at = time.time()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return pushed_at, notifying_from, replied_at, poller.replies.stats, notifier.stats


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def figures(values: list[float]) -> str:
    if not values:
        return "-"
    shares = "   ".join(f"p{p} {percentile(values, p / 100):5.2f} s" for p in (50, 95, 99))
    return f"{shares}   max {max(values):5.2f} s"


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--complaints", type=int, default=1_000)
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL instead of SQLite")
    parser.add_argument(
        "--queued",
        action="store_true",
        help="start the notifier only once all tickets are open (its backlog: the whole burst)",
    )
    parser.add_argument(
        "--group-limit-only",
        action="store_true",
        help="lift the 30/s and 1/s-per-chat limits on the replies to customers",
    )
    args = parser.parse_args()
    count = args.complaints
    limits = TelegramLimits()
    if args.group_limit_only:
        limits = TelegramLimits(per_second=1_000_000, chat_per_second=1_000_000)

    here, there = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(target=serve_fake, args=(there, limits))
    server.start()

    def send(n: int) -> float:
        here.send(n)
        return float(here.recv())

    try:
        url = here.recv()
        async with fresh_database(args.postgres) as database:
            settings = Settings(
                _env_file=None,
                database_url=database.engine.url.render_as_string(False),
                telegram_token=SecretStr(TOKEN),
                telegram_api_url=url,
                telegram_poll_timeout=1,
                staff_chat_id=str(GROUP),
                timezone="UTC",
                business_days="mon-sun",
                business_opens="00:00",
                business_closes="23:59",
            )
            await populate(database, count)
            started = time.perf_counter()
            pushed_at, notifying_from, replied_at, replied, notified = await run(
                database, settings, count, send, args.queued
            )
            seconds = time.perf_counter() - started
            async with database.sessions() as session:
                tickets = dict(
                    (int(chat), (number, opened))
                    for number, chat, opened in await session.execute(
                        select(Ticket.id, Ticket.chat_id, Ticket.opened_at)
                    )
                )
                posted_in = dict(
                    (ticket, int(message))
                    for ticket, message in await session.execute(
                        select(StaffNotice.ticket_id, StaffNotice.message_id).where(
                            StaffNotice.kind == "new_ticket", StaffNotice.status == "posted"
                        )
                    )
                )
    finally:
        here.send("stop")
        seen = here.recv()
        server.join()

    arrival = {message: at for at, message, _ in seen["group"]}
    shown = {int(n) for _, _, text in seen["group"] for n in SHOWN.findall(text)}
    latencies, opened_after, notifier_share, backlog = [], [], [], []
    for n in range(count):
        ticket = tickets.get(FIRST_CHAT + n)
        if ticket is None or ticket[0] not in posted_in:
            continue
        posted_at = arrival[posted_in[ticket[0]]]
        latencies.append(posted_at - pushed_at)
        opened_after.append(ticket[1].timestamp() - pushed_at)
        notifier_share.append(posted_at - ticket[1].timestamp())
        backlog.append(posted_at - notifying_from)
    lost = count - len(latencies)
    missing_in_texts = {number for number, _ in tickets.values()} - shown
    store = "PostgreSQL" if args.postgres else "SQLite"
    which = "group 20/min only" if args.group_limit_only else "30/s, 1/s per chat, group 20/min"
    print(f"{count} complaints at once, {store}, Telegram's flood limits on ({which}):")
    print(f"  message -> group post    {figures(latencies)}   (goal p99 <= {GOAL_P99:.0f} s)")
    print(f"  message -> ticket opened {figures(opened_after)}   (polling, engine, replies)")
    if args.queued:
        print(f"  notifier start -> post   {figures(backlog)}   (all {count} queued at once)")
    else:
        print(f"  ticket  -> group post    {figures(notifier_share)}   (the staff notifier)")
    print(f"  group posts              {len(seen['group'])} ({notified.digests} digests, "
          f"{notified.posts - notified.digests} cards) for {notified.notices} notices")  # fmt: skip
    print(f"  lost                     {lost} (tickets {len(tickets)}/{count}; "
          f"numbers missing from the group's texts: {len(missing_in_texts)})")  # fmt: skip
    print(f"  429s                     {seen['rate_limited']} (staff posts: "
          f"{notified.rate_limited}); replies to customers delivered {seen['private']}, "
          f"given up {replied.undelivered}; the last {replied_at - pushed_at:.1f} s "
          "after the burst")  # fmt: skip
    print(f"  mean                     {statistics.fmean(latencies):.2f} s; run {seconds:.1f} s")


if __name__ == "__main__":
    asyncio.run(main())

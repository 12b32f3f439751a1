"""`concierge campaign ...`: create, preview, list, cancel, send and follow marketing campaigns."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot.cli.common import console, errors, load_settings, migrated
from bot.clock import SystemClock
from bot.config import Settings
from bot.storage.database import Database
from bot.storage.models import Campaign
from scheduler.campaign_reports import (
    CampaignReport,
    campaign_progress,
    campaign_report,
    list_campaigns,
)
from scheduler.campaigns import (
    CampaignError,
    Preview,
    cancel_campaign,
    create_campaign,
    get_campaign,
    preview,
    send_now,
)
from scheduler.localtime import parse_local, zone
from scheduler.outbox import Status
from scheduler.policy import SKIP_EXPLANATIONS, SkipReason

campaigns_app = typer.Typer(help="Marketing campaigns to customer segments.", no_args_is_help=True)

STATUSES = [s.value for s in Status]
# `campaign send --wait` sending from the terminal waits out pauses and retries this close.
FOLLOW_WAITING_FOR = timedelta(minutes=2)


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(1)


def _local(moment: datetime, settings: Settings) -> str:
    return (
        f"{moment.astimezone(zone(None, settings.timezone)):%Y-%m-%d %H:%M} ({settings.timezone})"
    )


@campaigns_app.command("create")
def campaign_create(
    text: Annotated[
        Path,
        typer.Option(exists=True, dir_okay=False, readable=True, help="UTF-8 file with the text."),
    ],
    segment: Annotated[
        str,
        typer.Option(help='Who gets it, e.g. "language=zh,tag=vip,last_visit_before=2026-01-01".'),
    ] = "",
    at: Annotated[
        str | None, typer.Option(help='When, in CONCIERGE_TIMEZONE: "2026-12-01 10:00" or "now".')
    ] = None,
    event: Annotated[
        str | None,
        typer.Option(
            help="Event date (YYYY-MM-DD): an invitation sent CONCIERGE_EVENT_LEAD_DAYS before."
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="A name for the list.")] = None,
) -> None:
    """Create a campaign from a text file; {name} in it becomes each customer's name."""
    settings = load_settings()
    now = SystemClock().now()
    try:
        send_at = (
            None
            if at is None
            else now
            if at == "now"
            else parse_local(at, zone(None, settings.timezone))
        )
        event_on = None if event is None else date.fromisoformat(event)
    except ValueError as error:
        raise _fail(str(error)) from None
    body = text.read_text(encoding="utf-8-sig")

    async def _create() -> Campaign:
        async with migrated(settings) as database, database.transaction() as session:
            return await create_campaign(
                session,
                text=body,
                segment=segment,
                send_at=send_at,
                event_on=event_on,
                name=name,
                settings=settings,
                now=now,
            )

    try:
        campaign = asyncio.run(_create())
    except CampaignError as error:
        raise _fail(str(error)) from None
    console.print(
        f"Campaign {campaign.id} created: {escape(campaign.name)}, "
        f"to {escape(campaign.segment or 'all customers')}, "
        f"at {_local(campaign.send_at, settings)}.",
        soft_wrap=True,
    )
    console.print(f"Check it with `concierge campaign preview {campaign.id}`.")


@campaigns_app.command("preview")
def campaign_preview(
    campaign_id: Annotated[int, typer.Argument(help="The campaign's id.")],
    samples: Annotated[int, typer.Option(min=0, max=20, help="How many texts to show.")] = 3,
) -> None:
    """How many customers a campaign reaches, and its text as a few of them will read it."""
    settings = load_settings()

    async def _preview() -> tuple[Campaign, Preview]:
        async with migrated(settings) as database, database.sessions() as session:
            campaign = await get_campaign(session, campaign_id)
            return campaign, await preview(session, campaign, settings, samples)

    try:
        campaign, shown = asyncio.run(_preview())
    except CampaignError as error:
        raise _fail(str(error)) from None
    console.print(
        f"Campaign {campaign.id} ({escape(campaign.segment or 'all customers')}), "
        f"{campaign.status}, at {_local(campaign.send_at, settings)}:",
        soft_wrap=True,
    )
    console.print(
        f"Customers in the segment: {shown.matched}; with a chat the bot can write to: "
        f"{shown.reachable}; of those, with marketing consent and not opted out: {shown.eligible}.",
        soft_wrap=True,
    )
    for sample in shown.samples:
        title = f"customer {sample.customer_id}" + (f" ({sample.name})" if sample.name else "")
        console.print(Panel(escape(sample.text), title=escape(title), expand=False))


@campaigns_app.command("list")
def campaign_list(limit: Annotated[int, typer.Option(min=1)] = 50) -> None:
    """The latest campaigns with their messages counted by status."""
    settings = load_settings()

    async def _list() -> list[tuple[Campaign, Counter[str]]]:
        async with migrated(settings) as database, database.sessions() as session:
            return await list_campaigns(session, limit)

    table = Table("id", "name", "segment", "status", "send at", *STATUSES)
    for campaign, counts in asyncio.run(_list()):
        table.add_row(
            str(campaign.id),
            escape(campaign.name),
            escape(campaign.segment or "all"),
            campaign.status,
            _local(campaign.send_at, settings),
            *(str(counts.get(status, 0)) for status in STATUSES),
        )
    console.print(table)


@campaigns_app.command("cancel")
def campaign_cancel(campaign_id: Annotated[int, typer.Argument(help="The campaign's id.")]) -> None:
    """Cancel a campaign: its messages not sent yet are skipped."""
    settings = load_settings()

    async def _cancel() -> int:
        async with migrated(settings) as database, database.transaction() as session:
            return await cancel_campaign(session, campaign_id, SystemClock().now())

    try:
        skipped = asyncio.run(_cancel())
    except CampaignError as error:
        raise _fail(str(error)) from None
    console.print(f"Campaign {campaign_id} cancelled; {skipped} messages will not be sent.")


@campaigns_app.command("status")
def campaign_status(campaign_id: Annotated[int, typer.Argument(help="The campaign's id.")]) -> None:
    """Messages queued, sent, skipped (why), failed (error) and unknown (who)."""
    settings = load_settings()

    async def _report() -> CampaignReport:
        async with migrated(settings) as database, database.sessions() as session:
            return await campaign_report(session, campaign_id)

    try:
        report = asyncio.run(_report())
    except CampaignError as error:
        raise _fail(str(error)) from None
    campaign = report.campaign
    console.print(
        f"Campaign {campaign.id}: {escape(campaign.name)} — {campaign.status}, "
        f"at {_local(campaign.send_at, settings)}; {report.total} messages.",
        soft_wrap=True,
    )
    table = Table("status", "messages", title="Messages")
    for status in STATUSES:
        table.add_row(status, str(report.by_status.get(status, 0)))
    console.print(table)
    if report.skipped:
        table = Table("reason", "messages", "meaning", title="Skipped")
        for reason, count in report.skipped.most_common():
            known = reason in {r.value for r in SkipReason}
            meaning = SKIP_EXPLANATIONS[SkipReason(reason)] if known else ""
            table.add_row(reason, str(count), meaning)
        console.print(table)
    if report.failed:
        table = Table("error", "messages", title="Failed")
        for problem, count in report.failed.most_common():
            table.add_row(escape(problem), str(count))
        console.print(table)
    if report.unknown:
        table = Table(
            "customer",
            "name",
            "chat",
            "handed over at",
            "why",
            title="Unknown: may or may not have arrived; never sent again",
        )
        for row in report.unknown:
            table.add_row(
                str(row.customer_id),
                escape(row.name or ""),
                row.chat or "",
                f"{row.sent_at:%Y-%m-%d %H:%M:%S}" if row.sent_at else "",
                escape(row.reason or ""),
            )
        console.print(table)


@campaigns_app.command("send")
def campaign_send(
    campaign_id: Annotated[int, typer.Argument(help="The campaign's id.")],
    wait: Annotated[bool, typer.Option("--wait", help="Stay and show the progress.")] = False,
) -> None:
    """Send a campaign now instead of at its time.

    With --wait, this command sends it itself when no `concierge run` holds the scheduler role
    (else it shows how the running bot gets on), with a progress bar, until every message is
    sent, skipped or failed, or waits for the customers' morning.
    """
    settings = load_settings()

    async def _send() -> int:
        async with migrated(settings) as database:
            async with database.transaction() as session:
                queued = await send_now(session, campaign_id, settings, SystemClock().now())
            console.print(f"Campaign {campaign_id}: {queued} messages queued.")
            if wait:
                await _follow(database, settings, campaign_id)
            return queued

    try:
        asyncio.run(_send())
    except CampaignError as error:
        raise _fail(str(error)) from None


async def _follow(database: Database, settings: Settings, campaign_id: int) -> None:
    """Show the progress until nothing of the campaign is due soon; dispatch here if the
    scheduler role is free (no `concierge run` holds it)."""
    from scheduler.dispatcher import Dispatcher
    from scheduler.leader import leader_lock
    from scheduler.telegram_sender import dispatch_channels

    clock = SystemClock()
    lock = leader_lock(database, settings.leader_lock)
    async with dispatch_channels(settings, clock) as channels:
        leading = bool(channels) and await lock.acquire()
        dispatcher = Dispatcher(database, clock, channels, settings)
        if leading:
            await dispatcher.recover()
            console.print("Sending from this terminal (no running bot holds the scheduler role).")
        elif not channels:
            console.print("No Telegram token here: a running `concierge run` sends the messages.")
        else:
            console.print("A running `concierge run` sends the messages; following its progress.")
        columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        tick: asyncio.Task[object] | None = None
        try:
            with Progress(*columns, console=console) as bar:
                task = bar.add_task("sending", total=None)
                while True:
                    if leading and (tick is None or tick.done()):
                        tick = asyncio.create_task(dispatcher.dispatch_due())
                    async with database.sessions() as session:
                        now = clock.now()
                        progress = await campaign_progress(session, campaign_id, now)
                    bar.update(task, total=progress.total, completed=progress.finished)
                    soon = progress.next_due is not None and (
                        leading and progress.next_due - now < FOLLOW_WAITING_FOR
                    )
                    if progress.due == 0 and not soon:
                        break
                    await asyncio.sleep(0.5)
        finally:
            dispatcher.stop()
            if tick is not None:
                await tick
            await lock.release()
    async with database.sessions() as session:
        report = await campaign_report(session, campaign_id)
    parts = [f"{report.by_status[s]} {s}" for s in STATUSES if report.by_status.get(s)]
    console.print(f"Campaign {campaign_id}: " + (", ".join(parts) or "no messages") + ".")
    if progress.waiting:
        console.print(
            f"{progress.waiting} messages wait for the customers' morning (quiet hours) or a"
            " pause; `concierge run` sends them when they are due."
        )

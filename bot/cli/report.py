"""`concierge report satisfaction`: the supervisor's monthly satisfaction report.

The terminal rendering (Rich panel and tables) lives here; the figures come from
`bot.reports.satisfaction`, the CSV/JSON exports from `bot.reports.exports` (their formats are
documented there) and the PNG trend chart from `bot.reports.chart`.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bot.cli.common import console, errors, load_settings, migrated
from bot.clock import SystemClock
from bot.reports.exports import as_dict, csv_text
from bot.reports.satisfaction import (
    INDEX_DEFINITION,
    Average,
    SatisfactionReport,
    add_months,
    month_of,
    monthly,
    parse_month,
)

report_app = typer.Typer(help="Reports for supervisors.", no_args_is_help=True)

BAR_WIDTH = 20


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _bar(average: float | None) -> str:
    """A bar of the score on the 1-5 scale, in eighths of a character."""
    if average is None:
        return ""
    eighths = round((average - 1) / 4 * BAR_WIDTH * 8)
    return "█" * (eighths // 8) + " ▏▎▍▌▋▊▉"[eighths % 8].strip()


def _versus_target(report: SatisfactionReport) -> Text:
    if report.target_met is None or report.gap is None:
        return Text(f"no ratings (target {report.target:g})", style="dim")
    if report.target_met:
        return Text(f"✓ target {report.target:g} met (+{report.gap:.1f} points)", style="green")
    return Text(f"✗ target {report.target:g} missed by {-report.gap:.1f} points", style="red")


def _headline(report: SatisfactionReport, business: str) -> Panel:
    h = report.headline
    good = {True: "green", False: "red", None: "default"}[report.target_met]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(justify="right")
    grid.add_column()
    index = "—" if h.index is None else f"{h.index:.1f}"
    grid.add_row("Satisfaction index", Text(index, style=f"bold {good}"), _versus_target(report))
    grid.add_row("CSAT (rated 4-5)", _pct(h.csat), f"{h.satisfied} of {h.ratings} service ratings")
    grid.add_row("Average score", _score(h.average), "out of 5")
    grid.add_row(
        "Follow-up response",
        _pct(h.response_rate),
        f"{h.answered} of {h.questions} rating questions answered",
    )
    tickets = ", ".join(f"#{n}" for n in report.complaints)
    grid.add_row(
        "Complaints from ratings", str(len(report.complaints)), tickets and f"tickets {tickets}"
    )
    handling = report.ticket_handling
    grid.add_row(
        "Ticket handling",
        _score(handling.average),
        f"from {handling.count} rating{'s' * (handling.count != 1)} of how tickets were handled",
    )
    title = f"Customer satisfaction · {escape(business)} · {report.month:%B %Y}"
    return Panel(
        grid, title=f"[bold]{title}[/bold]", title_align="left", border_style=good, expand=False
    )


def _group_table(title: str, column: str, groups: tuple[Average, ...]) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold")
    table.add_column(column)
    table.add_column("average", justify="right")
    table.add_column("ratings", justify="right")
    table.add_column("1 … 5", style="cyan", min_width=BAR_WIDTH)
    for group in groups:
        style = "red" if group.average is not None and group.average < 3 else None
        table.add_row(
            escape(group.name),
            _score(group.average),
            str(group.count),
            _bar(group.average),
            style=style,
        )
    return table


def _trend(report: SatisfactionReport) -> Table:
    table = Table(title="Last 12 months", title_justify="left", title_style="bold")
    for name in ("month", "ratings", "CSAT", "average", "index", "response"):
        table.add_column(name, justify="left" if name == "month" else "right")
    for h in report.trend:
        index = Text("—")
        if h.index is not None:
            good = h.index >= report.target
            index = Text(f"{h.index:.1f}", style="green" if good else "red")
        table.add_row(
            f"{h.month:%Y-%m}",
            str(h.ratings) if h.ratings else "·",
            _pct(h.csat),
            _score(h.average),
            index,
            _pct(h.response_rate),
            style="bold" if h.month == report.month else None,
        )
    return table


def _print_table(report: SatisfactionReport, business: str) -> None:
    if report.empty:
        h = report.headline
        asked = f"; {h.questions} rating questions went out, {h.answered} answered" * bool(
            h.questions
        )
        console.print(f"No ratings in {report.month:%Y-%m}{asked}.")
        return
    console.print(_headline(report, business))
    if any(d.count for d in report.rater):
        console.print(_group_table("RATER dimensions", "dimension", report.rater))
    if report.lowest_kinds or report.lowest_staff:
        side_by_side = Table.grid(padding=(0, 4))
        side_by_side.add_row(
            _group_table("Lowest-rated service kinds", "kind", report.lowest_kinds),
            _group_table("Lowest-rated staff", "staff", report.lowest_staff),
        )
        console.print(side_by_side)
    console.print(_trend(report))
    console.print(
        Group(
            Text(f"{INDEX_DEFINITION}; CSAT = share of service ratings of 4 or 5.", style="dim"),
            Text(
                f"Months in {report.zone}; a rating counts in the month it was given; response ="
                " rating questions sent in the month that have a rating.",
                style="dim",
            ),
        )
    )


def _last_month(zone: ZoneInfo) -> date:
    return add_months(month_of(SystemClock().now(), zone), -1)


@report_app.command("satisfaction")
def satisfaction(
    month: Annotated[
        str | None, typer.Option(help="YYYY-MM in CONCIERGE_TIMEZONE; default: last month.")
    ] = None,
    output: Annotated[
        Format,
        typer.Option("--format", help="table (terminal), csv (section,item,metric,value) or json."),
    ] = Format.table,
    chart: Annotated[
        Path | None,
        typer.Option(dir_okay=False, help="Also draw the 12-month trend into this PNG file."),
    ] = None,
    target: Annotated[
        float | None,
        typer.Option(min=0, max=100, help="Index target, % (default CONCIERGE_CSAT_TARGET)."),
    ] = None,
) -> None:
    """CSAT, average score and satisfaction index against the target, response rate, RATER
    averages, complaints from ratings, the lowest-rated services and staff, and the trend."""
    settings = load_settings()
    zone = ZoneInfo(settings.timezone)
    try:
        chosen = _last_month(zone) if month is None else parse_month(month)
    except ValueError as error:
        errors.print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(2) from None

    async def _report() -> SatisfactionReport:
        async with migrated(settings) as database, database.sessions() as session:
            return await monthly(
                session, chosen, zone, settings.csat_target if target is None else target
            )

    report = asyncio.run(_report())
    if output is Format.json:
        typer.echo(json.dumps(as_dict(report), ensure_ascii=False, indent=2))
    elif output is Format.csv:
        typer.echo(csv_text(report), nl=False)
    else:
        _print_table(report, settings.business_name)
    if chart is not None:
        from bot.reports.chart import draw_trend

        try:
            draw_trend(report, settings.business_name, chart)
        except OSError as error:
            errors.print(
                f"[red]error:[/red] cannot write {escape(str(chart))}: "
                f"{escape(error.strerror or str(error))}",
                soft_wrap=True,
            )
            raise typer.Exit(1) from None
        (console if output is Format.table else errors).print(
            f"Chart written to {escape(str(chart))}."
        )

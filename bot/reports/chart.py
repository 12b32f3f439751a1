"""The satisfaction trend as a PNG: twelve months of CSAT and the index against the target.

Drawn on a bare matplotlib `Figure` rendered by Agg (no pyplot, no display, no global state):
CSAT and the satisfaction index as lines with markers on a % axis, the target as a dashed
line, and the number of service ratings as bars on a second axis. A month without ratings is
a gap in the lines, never a zero.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from bot.reports.satisfaction import SatisfactionReport

CSAT_COLOUR = "#1f77b4"
INDEX_COLOUR = "#2ca02c"
TARGET_COLOUR = "#d62728"
BARS_COLOUR = "#c7c7c7"


def _or_gap(value: float | None) -> float:
    return math.nan if value is None else value


Corner = Literal["left", "right"]
Side = Literal["top", "bottom"]
_LABEL_PLACES: tuple[tuple[Corner, Side], ...] = (
    ("right", "top"),
    ("right", "bottom"),
    ("left", "top"),
    ("left", "bottom"),
)


def _target_label_place(
    target: float, span: float, csat: list[float], index: list[float]
) -> tuple[Corner, Side]:
    """An end of the target line, and a side of it, where the label hides no point or value.

    Heights are fractions of the axis `span`: the label is about 5 % high, a CSAT point with
    its value written above reaches from 2 % below to 7 % above it, an index point 2 % each way.
    """
    for corner, side in _LABEL_PLACES:
        end = -1 if corner == "right" else 0
        low, high = (
            (target, target + 0.05 * span) if side == "top" else (target - 0.05 * span, target)
        )
        reaches = [(csat[end] - 0.02 * span, csat[end] + 0.07 * span)]
        reaches.append((index[end] - 0.02 * span, index[end] + 0.02 * span))
        if not any(bottom <= high and top >= low for bottom, top in reaches):  # NaN: a gap
            return corner, side
    return "left", "top"


def draw_trend(report: SatisfactionReport, business_name: str, path: Path) -> None:
    """Write the report's trend chart to `path` as a PNG."""
    trend = report.trend
    x = list(range(len(trend)))
    labels = [
        f"{h.month:%b}\n{h.month:%Y}" if i == 0 or h.month.month == 1 else f"{h.month:%b}"
        for i, h in enumerate(trend)
    ]
    csat = [_or_gap(h.csat) for h in trend]
    index = [_or_gap(h.index) for h in trend]
    counts = [h.ratings for h in trend]

    figure = Figure(figsize=(10, 5.6), dpi=120, layout="constrained")
    percent = figure.add_subplot()
    volume = percent.twinx()
    # The lines are drawn over the bars: the % axes goes on top, with a see-through background.
    percent.set_zorder(volume.get_zorder() + 1)
    percent.patch.set_visible(False)

    volume.bar(x, counts, width=0.6, color=BARS_COLOUR, label="service ratings (right axis)")
    volume.set_ylim(0, max(max(counts, default=0), 1) * 2.6)  # bars keep to the lower part
    volume.yaxis.set_major_locator(MaxNLocator(integer=True))
    volume.set_ylabel("service ratings per month (count)", color="#555555")

    percent.axhline(
        report.target,
        color=TARGET_COLOUR,
        linestyle="--",
        linewidth=1.4,
        label=f"target {report.target:g}%",
    )
    shown = [v for v in csat + index if not math.isnan(v)] + [report.target]
    floor = max(0.0, math.floor((min(shown) - 10) / 10) * 10)
    percent.set_ylim(floor, 103)
    corner, side = _target_label_place(report.target, 103 - floor, csat, index)
    percent.annotate(
        f"target {report.target:g}%",
        (-0.5 if corner == "left" else x[-1] + 0.5, report.target),
        xytext=(0, 3 if side == "top" else -3),
        textcoords="offset points",
        color=TARGET_COLOUR,
        ha=corner,
        va="bottom" if side == "top" else "top",
        fontsize=9,
    )
    percent.plot(
        x, csat, marker="o", color=CSAT_COLOUR, linewidth=2, label="CSAT: share of ratings 4-5 (%)"
    )
    percent.plot(
        x,
        index,
        marker="s",
        color=INDEX_COLOUR,
        linewidth=2,
        markersize=5,
        label="satisfaction index (0-100)",
    )
    for i, value in enumerate(csat):
        if not math.isnan(value):
            percent.annotate(
                f"{value:.0f}%",
                (i, value),
                textcoords="offset points",
                xytext=(0, 7),
                ha="center",
                fontsize=8,
                color=CSAT_COLOUR,
                bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none"},
            )

    percent.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    percent.set_ylabel("CSAT and satisfaction index (%)")
    percent.set_xticks(x, labels)
    percent.set_xlim(-0.6, x[-1] + 0.6)
    percent.set_xlabel(f"month ({report.zone})")
    percent.grid(axis="y", color="#e5e5e5")
    percent.spines[["top"]].set_visible(False)
    volume.spines[["top"]].set_visible(False)
    if not any(counts):
        percent.text(
            0.5,
            0.5,
            "no ratings in these months",
            transform=percent.transAxes,
            ha="center",
            va="center",
            fontsize=14,
            color="#777777",
        )

    first, last = trend[0].month, trend[-1].month
    percent.set_title(
        f"Customer satisfaction, {business_name}, {first:%b %Y}–{last:%b %Y}",
        fontsize=13,
        fontweight="bold",
    )
    handles, names = percent.get_legend_handles_labels()
    more_handles, more_names = volume.get_legend_handles_labels()
    figure.legend(
        handles + more_handles,
        names + more_names,
        loc="outside lower center",
        ncols=4,
        fontsize=9,
        frameon=False,
    )
    figure.savefig(path, format="png")

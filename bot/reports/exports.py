"""The satisfaction report as machine-readable exports: one JSON object, or CSV rows.

JSON: one object (`as_dict`); percentages and averages are rounded to two decimals, a figure
that does not exist (no ratings, no questions) is null. CSV (`csv_text`): the same object
flattened to one row per figure, with the columns `section,item,metric,value`:

- `report,,month,2026-11` - the report's own fields (month, time_zone, target, definitions);
- `headline,,csat_percent,70.0` - the month's headline, likewise `complaints_from_ratings`
  (its ticket numbers joined by spaces) and `ticket_handling`;
- `rater,empathy,average,2.25`, `lowest_rated_kinds,brake repair,ratings,3`,
  `lowest_rated_staff,...` and `trend,2026-10,csat_percent,0.0`: one row per figure of each
  item of a list, `item` naming it.

An empty `value` is a null; booleans are `true`/`false`.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from bot.reports.satisfaction import INDEX_DEFINITION, Average, Headline, SatisfactionReport

CSV_COLUMNS = ("section", "item", "metric", "value")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _month(headline: Headline) -> str:
    return f"{headline.month:%Y-%m}"


def headline_dict(headline: Headline) -> dict[str, Any]:
    return {
        "month": _month(headline),
        "service_ratings": headline.ratings,
        "satisfied": headline.satisfied,
        "csat_percent": _round(headline.csat),
        "average_score": _round(headline.average),
        "satisfaction_index": _round(headline.index),
        "rating_questions": headline.questions,
        "rating_questions_answered": headline.answered,
        "response_rate_percent": _round(headline.response_rate),
    }


def _group(key: str, group: Average) -> dict[str, Any]:
    return {key: group.name, "average": _round(group.average), "ratings": group.count}


def as_dict(report: SatisfactionReport) -> dict[str, Any]:
    """Every figure of the report as one JSON-ready object."""
    return {
        "month": f"{report.month:%Y-%m}",
        "time_zone": report.zone,
        "target": report.target,
        "definitions": INDEX_DEFINITION + "; CSAT = share of service ratings of 4-5, %",
        "headline": {
            **headline_dict(report.headline),
            "target_met": report.target_met,
            "gap_points": _round(report.gap),
        },
        "complaints_from_ratings": {
            "count": len(report.complaints),
            "tickets": list(report.complaints),
        },
        "ticket_handling": {
            "ratings": report.ticket_handling.count,
            "average_score": _round(report.ticket_handling.average),
        },
        "rater": [_group("dimension", g) for g in report.rater],
        "lowest_rated_kinds": [_group("kind", g) for g in report.lowest_kinds],
        "lowest_rated_staff": [_group("staff", g) for g in report.lowest_staff],
        "trend": [headline_dict(h) for h in report.trend],
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


def csv_rows(report: SatisfactionReport) -> list[tuple[str, str, str, str]]:
    """The JSON object flattened: one (section, item, metric, value) row per figure."""
    rows: list[tuple[str, str, str, str]] = []
    for section, content in as_dict(report).items():
        if isinstance(content, dict):
            rows += [(section, "", metric, _cell(v)) for metric, v in content.items()]
        elif isinstance(content, list):
            for entry in content:
                name_key, *metrics = entry
                item = str(entry[name_key])
                rows += [(section, item, metric, _cell(entry[metric])) for metric in metrics]
        else:
            rows.append(("report", "", section, _cell(content)))
    return rows


def csv_text(report: SatisfactionReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_rows(report))
    return buffer.getvalue()

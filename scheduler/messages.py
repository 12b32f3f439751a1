"""What proactive messages say: catalog texts filled in for one customer, dates by Babel.

Birthday greetings and reminders come from `dialogs/texts/<language>.yaml` like everything else
the bot says; a campaign's text is marketing's own, with `{name}` (and `{date}` for an event)
filled in and the catalog's "send /stop" line added.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import date, datetime

from babel.dates import format_time

from dialogs.texts import BABEL_LOCALES, day, t
from dialogs.types import Language

# The same locales as dialogs.texts uses for dates.
CAMPAIGN_PLACEHOLDERS = frozenset({"name"})
EVENT_PLACEHOLDERS = frozenset({"name", "date"})
MAX_CAMPAIGN_TEXT = 3_800  # leaves room for the opt-out line within Telegram's 4096


class TemplateError(ValueError):
    """A campaign text that cannot be filled in; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Addressee:
    """Who a message is for, as far as its wording goes."""

    language: Language
    salutation: str | None  # how they like to be addressed, else their name


def addressee(
    language: str | None, address_as: str | None, name: str | None, default: Language
) -> Addressee:
    lang: Language = "zh" if language == "zh" else "en" if language == "en" else default
    return Addressee(lang, address_as or name or None)


def _named(key: str, who: Addressee, **values: object) -> str:
    if who.salutation:
        return t(who.language, key, name=who.salutation, **values)
    return t(who.language, f"{key}_anonymous", **values)


def birthday_greeting(who: Addressee, business: str) -> str:
    return _named("proactive.birthday", who, business=business)


def maintenance_reminder(who: Addressee, business: str, kind: str, due: date) -> str:
    return _named(
        "proactive.maintenance_due", who, business=business, kind=kind, date=day(due, who.language)
    )


def appointment_reminder(who: Addressee, business: str, kind: str, starts: datetime) -> str:
    """`starts` in the customer's local time."""
    moment = format_time(starts, format="short", locale=BABEL_LOCALES[who.language])
    return _named(
        "proactive.appointment",
        who,
        business=business,
        kind=kind,
        date=day(starts.date(), who.language),
        time=moment,
    )


def check_campaign_text(text: str, event: bool) -> None:
    """Refuse texts that cannot be sent: empty, too long, or with unknown placeholders."""
    if not text.strip():
        raise TemplateError("the campaign text is empty")
    if len(text) > MAX_CAMPAIGN_TEXT:
        raise TemplateError(
            f"the campaign text has {len(text)} characters; at most {MAX_CAMPAIGN_TEXT} fit"
            " in one Telegram message with the opt-out line"
        )
    allowed = EVENT_PLACEHOLDERS if event else CAMPAIGN_PLACEHOLDERS
    try:
        used = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as error:
        raise TemplateError(
            f"the campaign text has a stray brace ({error}); write {{{{ and }}}} for braces"
        ) from None
    unknown = sorted(used - allowed)
    if unknown:
        names = ", ".join(f"{{{name}}}" for name in sorted(allowed))
        raise TemplateError(f"unknown placeholder {{{unknown[0]}}}; use {names}")


def campaign_text(text: str, who: Addressee, event_on: date | None = None) -> str:
    """The campaign's text for one customer, with the opt-out line in their language."""
    name = who.salutation or t(who.language, "campaign.name_fallback")
    values: dict[str, str] = {"name": name}
    if event_on is not None:
        values["date"] = day(event_on, who.language)
    body = text.strip().format_map(values)
    return f"{body}\n\n{t(who.language, 'campaign.opt_out_hint')}"

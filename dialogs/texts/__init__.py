"""The text catalog: every sentence a customer reads, one YAML file per language.

The YAML files next to this module are meant to be edited by people who do not program; the
code only refers to keys. Durations and dates are formatted with Babel, so plurals and
date order follow each language's rules.
"""

from __future__ import annotations

import string
from datetime import date, timedelta
from functools import cache
from importlib import resources
from typing import Final

import yaml
from babel.dates import format_date, format_timedelta

from dialogs.types import LANGUAGES, Language

BABEL_LOCALES: Final[dict[Language, str]] = {"en": "en", "zh": "zh_Hans_CN"}  # for Babel


class MissingTextError(KeyError):
    """A text key is absent from a language's catalog: add it to dialogs/texts/<lang>.yaml."""


@cache
def catalog(language: Language) -> dict[str, str]:
    """The texts of one language, loaded once from the package's YAML file."""
    source = resources.files(__package__).joinpath(f"{language}.yaml").read_text("utf-8")
    loaded = yaml.safe_load(source)
    if not isinstance(loaded, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()
    ):
        raise ValueError(f"dialogs/texts/{language}.yaml must map text keys to strings")
    return loaded


def placeholders(template: str) -> set[str]:
    """The `{names}` a template expects."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def t(language: Language, key: str, **values: object) -> str:
    """The text `key` in `language`, with its placeholders filled from `values`."""
    try:
        template = catalog(language)[key]
    except KeyError:
        raise MissingTextError(
            f"text {key!r} is missing from dialogs/texts/{language}.yaml"
        ) from None
    return template.format_map(values)


def duration(delta: timedelta, language: Language) -> str:
    """A rounded, human duration such as "5 months" or "5个月"."""
    return format_timedelta(delta, threshold=1.0, locale=BABEL_LOCALES[language])


def day(value: date, language: Language) -> str:
    """A date as people write it in `language`, e.g. "June 12, 2026" or "2026年6月12日"."""
    return format_date(value, format="long", locale=BABEL_LOCALES[language])


__all__ = ["LANGUAGES", "MissingTextError", "catalog", "day", "duration", "placeholders", "t"]

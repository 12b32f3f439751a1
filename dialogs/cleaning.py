"""Making raw customer text safe to store and match: control characters out, length bounded."""

from __future__ import annotations

import re
import unicodedata

MAX_TEXT_LENGTH = 10_000
_SPACES = re.compile(r"[ \t]+")


def clean_text(raw: str) -> str:
    """The customer's text without control or format characters, trimmed and NFC-normalised.

    Newlines survive (customers write addresses in several lines); anything beyond
    MAX_TEXT_LENGTH characters is cut, since no real question is that long.
    """
    normalised = unicodedata.normalize("NFC", raw)
    kept = "".join(
        ch
        for ch in normalised
        if ch in "\n\t" or unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Co", "Cn"}
    )
    lines = (_SPACES.sub(" ", line).strip() for line in kept.replace("\r", "\n").split("\n"))
    return "\n".join(line for line in lines if line)[:MAX_TEXT_LENGTH]


def fold(text: str) -> str:
    """A form of the text for matching phrases: lower case, no punctuation at the ends."""
    return text.casefold().strip(" \t\n.!?,;:~。！？，；：～")

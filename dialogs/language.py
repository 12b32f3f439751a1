"""Which language to answer in: the script of the message, the customer's choice, the hints."""

from __future__ import annotations

from dialogs.types import LANGUAGES, Language
from knowledge.encoder import script_counts


def detect_language(text: str) -> Language | None:
    """The language a message is plainly written in, or None when the script does not say.

    Han characters mean Chinese unless Latin words clearly outnumber them (a Chinese message
    often carries a model name such as "BMW"); two or more Latin words and no Han mean English.
    """
    han, latin_words = script_counts(text)
    if han and han >= latin_words:
        return "zh"
    if latin_words >= 1 and not han:
        return "en"
    return None


def language_from_hint(hint: str | None) -> Language | None:
    """A platform's language tag ("zh-hans", "en-US", "zh_CN") mapped to a supported language."""
    if not hint:
        return None
    base = hint.replace("_", "-").split("-")[0].lower()
    return next((lang for lang in LANGUAGES if lang == base), None)


def choose_language(
    text: str, chosen: Language | None, hint: str | None, default: Language
) -> Language:
    """Answer in the message's own script when it is plain, else the customer's choice.

    The customer's stored choice wins over the platform hint; the hint wins over the default.
    """
    return detect_language(text) or chosen or language_from_hint(hint) or default

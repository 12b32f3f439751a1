"""Phone numbers in one canonical form (E.164), so a Telegram contact finds the imported record."""

from __future__ import annotations

import phonenumbers


class InvalidPhoneError(ValueError):
    """The text is not a valid phone number (say which region applies to local numbers)."""


def normalize_phone(raw: str, region: str) -> str:
    """`raw` as E.164 ("+8613800138000"); numbers without a country code are read in `region`."""
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException as error:
        raise InvalidPhoneError(f"{raw!r} is not a phone number ({error})") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneError(f"{raw!r} is not a valid phone number for region {region}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_shared_contact(raw: str, region: str) -> str:
    """A number from Telegram's contact button: international digits, often without the '+'."""
    digits = raw.strip()
    return normalize_phone(digits if digits.startswith("+") else "+" + digits, region)

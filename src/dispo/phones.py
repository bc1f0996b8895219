"""Phone numbers in E.164 (``+14155550123``): what audiences, campaigns and numbers store.

Spaces, dashes, dots and brackets are forgiven, and so is a missing ``+`` (``14155550123``); the
result must be a valid number for its country according to ``phonenumbers``.
"""

from __future__ import annotations

import phonenumbers

EXAMPLE = "+14155550123"
_SEPARATORS = str.maketrans("", "", " -.()\u00a0\t")


def to_e164(value: str) -> str | None:
    """``value`` as E.164, or ``None`` when it is not a valid phone number."""
    text = value.strip().translate(_SEPARATORS)
    if text.startswith("00"):
        text = "+" + text[2:]
    elif text.isdigit():
        text = "+" + text
    if not text.startswith("+") or not text[1:].isdigit() or not 8 <= len(text) <= 16:
        return None
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def country_of(e164: str) -> str | None:
    """The ISO 3166 region of an E.164 number (``US``, ``IN``), or ``None`` if it has none."""
    region = phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    return region if region and region != "ZZ" else None


def parse_list(text: str) -> list[str]:
    """A comma-separated list of numbers as E.164, in order, without repeats.

    Raises ``ValueError`` naming every entry that is not a valid number.
    """
    numbers: list[str] = []
    bad: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        number = to_e164(item)
        if number is None:
            bad.append(repr(item))
        elif number not in numbers:
            numbers.append(number)
    if bad:
        raise ValueError(
            f"{', '.join(bad)} {'is not a valid phone number' if len(bad) == 1 else 'are not valid phone numbers'}: "
            f"write numbers in E.164 with the country code, e.g. {EXAMPLE}, separated by commas."
        )
    return numbers

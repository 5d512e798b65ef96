"""Phone numbers: E.164 normalisation, number type and time zones (``phonenumbers``).

Addresses with a channel prefix (``whatsapp:+1415...``) keep the prefix; only
the number part is normalised.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import PhoneNumber, PhoneNumberFormat, PhoneNumberType
from phonenumbers import timezone as pn_timezone

_PREFIX = re.compile(r"^([a-z][a-z0-9+.-]*):(?!//)", re.IGNORECASE)
_UNKNOWN_ZONE = "Etc/Unknown"

_KINDS = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "landline",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "landline_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
}


def _split_prefix(raw: str) -> tuple[str, str]:
    """Split ``whatsapp:+1...`` into (``whatsapp:``, ``+1...``); no prefix gives ``""``."""
    match = _PREFIX.match(raw)
    if match and match.group(1).lower() != "tel":
        return match.group(0), raw[match.end() :]
    if match:  # tel: URIs are plain numbers
        return "", raw[match.end() :]
    return "", raw


def parse(raw: str | None, default_region: str | None = None) -> PhoneNumber | None:
    """Parse ``raw`` into a valid ``PhoneNumber``, or None.

    Without a usable region, a number with no ``+`` is retried as ``+digits``
    (so ``14155550100`` parses as a NANP number).
    """
    if not raw or not raw.strip():
        return None
    text = raw.strip()
    region = default_region.upper() if default_region else None
    attempts: list[tuple[str, str | None]] = [(text, region)]
    digits = re.sub(r"\D", "", text)
    if not text.startswith("+") and digits:
        attempts.append(("+" + digits, None))
    for candidate, reg in attempts:
        try:
            number = phonenumbers.parse(candidate, reg)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return number
    return None


def normalise(raw: str | None, default_region: str | None = None) -> str | None:
    """``raw`` in E.164 (``+14155550100``), or None when it is not a valid number.

    A channel prefix such as ``whatsapp:`` is kept in front of the number.
    """
    if not raw:
        return None
    prefix, rest = _split_prefix(raw.strip())
    number = parse(rest, default_region)
    if number is None:
        return None
    return prefix + phonenumbers.format_number(number, PhoneNumberFormat.E164)


def address(raw: str | None, default_region: str | None = None) -> str:
    """``normalise(raw)``, or ``raw`` stripped when it is not a valid number.

    For identifiers a provider hands over (short codes, alphanumeric senders)
    that must be kept even when they are not phone numbers.
    """
    return normalise(raw, default_region) or (raw or "").strip()


def region(e164: str) -> str | None:
    """The ISO 3166 region of the number (``US``, ``GB``), or None."""
    number = parse(_split_prefix(e164)[1])
    return phonenumbers.region_code_for_number(number) if number else None


def kind(e164: str) -> str:
    """The number type: mobile, landline, landline_or_mobile, toll_free, voip, ... or unknown."""
    number = parse(_split_prefix(e164)[1])
    if number is None:
        return "unknown"
    return _KINDS.get(phonenumbers.number_type(number), "unknown")


def timezones(e164: str) -> list[str]:
    """The IANA time zones ``phonenumbers`` gives for the number (empty when unknown)."""
    number = parse(_split_prefix(e164)[1])
    if number is None:
        return []
    zones = pn_timezone.time_zones_for_number(number)
    return [z for z in zones if z != _UNKNOWN_ZONE]


def _zone(name: str) -> ZoneInfo | None:
    """``ZoneInfo(name)``, or None when the zone is unknown here."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _same_clock(zones: list[ZoneInfo], year: int) -> bool:
    """True when all ``zones`` show the same UTC offset all through ``year`` (sampled weekly)."""
    start = datetime(year, 1, 1, 12, tzinfo=UTC)
    for week in range(53):
        instant = start + timedelta(days=7 * week)
        if len({instant.astimezone(z).utcoffset() for z in zones}) > 1:
            return False
    return True


def customer_timezone(e164: str, fallback_tz: str, at: datetime | None = None) -> str:
    """The time zone to use for the customer's local time (quiet hours).

    The number's zone when ``phonenumbers`` gives exactly one. When it gives
    several that keep the same clock all year (a UK mobile: London, Jersey,
    Guernsey, Isle of Man), the first of them. Otherwise ``fallback_tz``
    (typically the inbox's zone). ``at`` picks the year compared (default now).
    """
    return _customer_timezone(e164, fallback_tz, (at or datetime.now(UTC)).year)


@lru_cache(maxsize=4096)
def _customer_timezone(e164: str, fallback_tz: str, year: int) -> str:
    """:func:`customer_timezone`, cached: conversation lists ask for every row."""
    names = timezones(e164)
    zones = [z for z in (_zone(n) for n in names) if z is not None]
    if not zones or len(zones) != len(names):
        return fallback_tz
    if len(zones) == 1:
        return names[0]
    return names[0] if _same_clock(zones, year) else fallback_tz

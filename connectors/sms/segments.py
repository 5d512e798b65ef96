"""SMS segment counting for the composer counter and cost estimates.

A message is sent GSM-7 when every character is in the GSM 03.38 basic table or
its extension table, else UCS-2 (UTF-16 on the wire, as every modern handset
decodes it). One character outside GSM-7 (a curly quote, an emoji, ``ç``)
switches the whole message to UCS-2.

Limits: GSM-7 160 septets in one segment, 153 per part when concatenated
(the 6-byte UDH costs 7 septets); UCS-2 70 code units, 67 per part.

Units: GSM-7 counts septets, extension characters (``^{}\\[~]|€`` and form
feed) cost 2 (escape + code). UCS-2 counts UTF-16 code units, so an emoji
outside the Basic Multilingual Plane costs 2.

Splitting (our choice, as carriers and Twilio do): a unit pair is never split
across parts. A surrogate pair (UCS-2) or an escape sequence (GSM-7) that
would straddle a part boundary moves whole to the next part, leaving the
previous part one unit short. So 66 BMP characters, an emoji and 66 more
(134 units, exactly 2 x 67) take 3 parts, not 2.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

GSM7 = "GSM-7"
UCS2 = "UCS-2"

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67

# GSM 03.38 basic character set in code-point order (0x00-0x7F). Position 0x1B
# is the escape to the extension table, not a character, so it is left out: a
# literal U+001B in a text cannot be sent as GSM-7.
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# Extension table characters: each is sent as ESC + code, two septets.
GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")


@dataclass(frozen=True)
class SegmentInfo:
    """How a text will be sent: encoding, size in units, segments and what is left."""

    encoding: str  # "GSM-7" | "UCS-2"
    units: int  # GSM-7 septets or UTF-16 code units
    segments: int  # 0 for an empty text
    remaining: int  # units still free in the last segment
    per_segment: int  # the limit that applies: 160/153 (GSM-7) or 70/67 (UCS-2)
    ucs2_chars: tuple[str, ...] = ()  # distinct characters that forced UCS-2, in order

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (for the composer API)."""
        data = asdict(self)
        data["ucs2_chars"] = list(self.ucs2_chars)
        return data


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` can be sent as GSM-7."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def non_gsm7_chars(text: str) -> tuple[str, ...]:
    """The distinct characters of ``text`` that are not GSM-7, in order of appearance."""
    seen: dict[str, None] = {}
    for ch in text:
        if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION:
            seen.setdefault(ch, None)
    return tuple(seen)


def _unit_costs(text: str, gsm: bool) -> list[int]:
    """Per-character costs: septets (GSM-7) or UTF-16 code units (UCS-2)."""
    if gsm:
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _pack(costs: list[int], per_part: int) -> tuple[int, int]:
    """Fill parts of ``per_part`` units without splitting a character.

    Returns (number of parts, units used in the last part).
    """
    parts, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            parts, used = parts + 1, 0
        used += cost
    return parts, used


def count(text: str) -> SegmentInfo:
    """Count the encoding, units and segments ``text`` needs as one SMS."""
    bad = non_gsm7_chars(text)
    gsm = not bad
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if gsm else (UCS2_SINGLE, UCS2_MULTI)
    encoding = GSM7 if gsm else UCS2
    costs = _unit_costs(text, gsm)
    units = sum(costs)
    if units == 0:
        return SegmentInfo(encoding, 0, 0, single, single, bad)
    if units <= single:
        return SegmentInfo(encoding, units, 1, single - units, single, bad)
    parts, used = _pack(costs, multi)
    return SegmentInfo(encoding, units, parts, multi - used, multi, bad)

"""SMS consent keywords: opt-out (STOP and friends), opt-in, help.

The lists are Twilio's default long-code handling, which follows the US
carrier (CTIA) list. Twilio matches the whole message as one word, case
insensitive; we also accept trailing punctuation ("Stop.", "STOP!"), so an
opt-out is honoured rather than missed. "stop please" is not a keyword.
"""

from __future__ import annotations

import enum

OPT_OUT_KEYWORDS: frozenset[str] = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "CANCEL", "REVOKE", "OPTOUT"}
)
OPT_IN_KEYWORDS: frozenset[str] = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS: frozenset[str] = frozenset({"HELP", "INFO"})

_TRAILING_PUNCTUATION = ".!?,;:"


class Consent(enum.StrEnum):
    """What a keyword message means for the contact's consent."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


def keyword(text: str | None) -> str | None:
    """The keyword ``text`` consists of, upper-cased, or None.

    The whole message, trimmed and with trailing punctuation removed, must be
    a single word of one of the lists.
    """
    if not text:
        return None
    word = text.strip().rstrip(_TRAILING_PUNCTUATION).strip().upper()
    if word in OPT_OUT_KEYWORDS or word in OPT_IN_KEYWORDS or word in HELP_KEYWORDS:
        return word
    return None


def classify(text: str | None) -> Consent | None:
    """OPT_OUT, OPT_IN or HELP when ``text`` is a consent keyword, else None."""
    word = keyword(text)
    if word is None:
        return None
    if word in OPT_OUT_KEYWORDS:
        return Consent.OPT_OUT
    if word in OPT_IN_KEYWORDS:
        return Consent.OPT_IN
    return Consent.HELP

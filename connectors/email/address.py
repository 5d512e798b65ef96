"""One spelling per email address, so one sender is one contact.

``josé@example.com`` may arrive precomposed (NFC, U+00E9) from one client and
decomposed (NFD, ``e`` + U+0301) from another, in any case: both are the same
mailbox and must be the same contact identity. :func:`normalize_address` is the
key every address is stored and looked up by: surrounding white space and angle
brackets removed, NFC, lowercased, NFC again (lowercasing can decompose).

The whole address is lowercased, local part included, as the parser always did:
RFC 5321 lets a server treat local parts case-sensitively, but no mail provider
in use does, and two contacts for ``Anna@`` and ``anna@`` help no one. The
domain is not converted between Unicode and ``xn--`` (IDNA 2003 and 2008 map some
names differently, e.g. ``ß``, so a conversion could point at another domain).
"""

from __future__ import annotations

import unicodedata

__all__ = ["normalize_address"]


def normalize_address(address: str | None) -> str:
    """The canonical form of ``address`` (see the module docstring); "" for None."""
    if not address:
        return ""
    value = unicodedata.normalize("NFC", str(address).strip().strip("<>").strip())
    return unicodedata.normalize("NFC", value.lower())

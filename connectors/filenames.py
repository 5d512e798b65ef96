"""Attachment filenames from outside, made fit to show, to download and to save.

A filename is shown to agents and offered as the name of a download, so it must
look like what it is. Right-to-left overrides and isolates (U+202A-U+202E,
U+2066-U+2069, U+200E/U+200F, U+061C) can make ``invoice<U+202E>fdp.exe`` read
``invoiceexe.pdf``; zero-width and other format characters hide differences
between names. :func:`clean_filename` removes every control (``Cc``), format
(``Cf``), surrogate (``Cs``) and line/paragraph separator (``Zl``/``Zp``) character
and Unicode noncharacters, keeping only ZWNJ and ZWJ (U+200C/U+200D), which
Persian and Indic spellings and emoji sequences need and which reorder nothing.
Runs of white space become one space, and the result is NFC, so a name typed
on different systems is one name.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["clean_filename"]

_DROP_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_JOINERS = frozenset({"\u200c", "\u200d"})


def _kept(ch: str) -> bool:
    if ch in _JOINERS:
        return True
    code = ord(ch)
    if 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE:  # noncharacters
        return False
    return unicodedata.category(ch) not in _DROP_CATEGORIES


def clean_filename(name: str | None, max_length: int = 200) -> str:
    """The last path component of ``name``, without invisible or reordering characters, NFC.

    ``\\`` counts as a path separator. Returns "" when nothing is left; callers
    choose their own default.
    """
    if not name:
        return ""
    name = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if _kept(ch))
    name = unicodedata.normalize("NFC", re.sub(r"\s+", " ", name)).strip()
    return name[:max_length].rstrip()

"""Mail body and header bytes -> text: MIME charset labels and their usual lies.

:func:`decode_bytes` never raises: it reads the declared charset, repairs the
common mislabels (see its docstring) and replaces what cannot be decoded.
"""

from __future__ import annotations

import codecs
import re

__all__ = ["decode_bytes"]

_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "gb_2312-80": "gb18030",
    "cn-gb": "gb18030",
    "euc-cn": "gb18030",
    "iso-8859-1": "cp1252",  # WHATWG: the latin1 label means windows-1252
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "windows-31j": "cp932",
    "big5": "big5hkscs",
    "tis-620": "cp874",
    "iso-8859-11": "cp874",
    "windows-874": "cp874",
    "iso-8859-8-i": "iso-8859-8",
    "macintosh": "mac_roman",
    "x-mac-roman": "mac_roman",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
}
# Text codecs Python has that no mail charset names: they raise where a charset replaces.
_NOT_CHARSETS = {"idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined"}
_UNKNOWN_CHARSETS = {"", "unknown-8bit", "x-unknown", "unknown", "default", "charset", "none"}
_ASCII_NAMES = {"us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "us"}
_SINGLE_BYTE_WESTERN = {"cp1252", "iso8859-15", "ascii", "cp1250", "iso8859-2", "mac-roman"}
_META_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_SURROGATE_RE = re.compile(r"[\udc80-\udcff]")


def _codec(name: str | None) -> str | None:
    """A Python codec name for a MIME charset label, or None when unknown."""
    if not name:
        return None
    label = str(name).strip().strip("\"'").lower()
    if label in _UNKNOWN_CHARSETS:
        return None
    if label in _ASCII_NAMES:
        return "ascii"
    label = _CHARSET_ALIASES.get(label, label)
    if len(label) > 40 or not label.isascii() or not label.isprintable():
        return None  # "utf-8\x00" made codecs.lookup raise ValueError
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        return None  # base64, rot13, idna ...: codecs, but no mail charset
    return info.name


def decode_bytes(
    data: bytes, charset: str | None = None, is_html: bool = False, guess: bool = True
) -> str:
    """Decode body bytes, repairing common charset lies; never raises.

    - unknown/missing charset: HTML ``<meta charset>``, else UTF-8, else a
      ``charset_normalizer`` guess (bodies over 200 bytes, when installed and
      ``guess``), else windows-1252;
    - ``us-ascii``/``iso-8859-1``/``windows-1252`` labels on bytes that are
      valid UTF-8 with non-ASCII sequences are read as UTF-8 (mislabelled
      mail from webmail forms is common);
    - ``gb2312``/``gbk`` are read as their superset GB18030, ``shift_jis`` as
      cp932, ``ks_c_5601-1987`` as cp949, ``iso-8859-1`` as windows-1252;
    - a UTF-8 label on bytes without a single valid multi-byte sequence is read
      as windows-1252; otherwise invalid bytes become U+FFFD.
    """
    if not data:
        return ""
    codec = _codec(charset)
    if codec is None and is_html:
        m = _META_CHARSET_RE.search(data[:4096])
        codec = _codec(m.group(1).decode("ascii", "ignore")) if m else None
    has_high = any(b > 0x7F for b in data)
    if not has_high and codec in (None, "ascii", "utf-8", "cp1252"):
        return data.decode("ascii", "replace")
    if codec is None or codec == "ascii" or (codec in _SINGLE_BYTE_WESTERN and has_high):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        if codec is None or codec == "ascii":
            guessed = _guess_charset(data) if guess and len(data) > 200 else None
            codec = guessed or "cp1252"
    try:
        return data.decode(codec)
    except (UnicodeError, LookupError):
        pass
    if codec != "utf-8":
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        try:
            return data.decode(codec, "replace")
        except (UnicodeError, LookupError):  # a codec whose errors "replace" cannot mend
            return data.decode("utf-8", "replace")
    replaced = data.decode("utf-8", "replace")
    if not any(ord(c) > 0x7F and c != "\ufffd" for c in replaced):
        return data.decode("cp1252", "replace")  # not UTF-8 at all: a single-byte charset
    return replaced


def _guess_charset(data: bytes) -> str | None:
    """A charset guess for undeclared non-UTF-8 bytes (charset_normalizer if installed)."""
    try:
        from charset_normalizer import from_bytes
    except ImportError:
        return None
    try:
        best = from_bytes(data[:200_000]).best()
    except Exception:
        return None
    return best.encoding if best is not None else None


def _to_bytes(text: str) -> bytes:
    """Text the email package read from bytes -> those bytes again; never raises.

    The parser keeps raw 8-bit bytes as surrogates (``surrogateescape``); they come
    back as they were. Real non-ASCII text (a decoded header in a re-parsed part)
    becomes UTF-8, and any other lone surrogate ``?`` (``.encode("ascii", ...)``
    raised ``UnicodeEncodeError`` on both).
    """
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _fix_surrogates(value: str) -> str:
    """Raw 8-bit header bytes (kept as surrogates by the parser) -> text."""
    if not _SURROGATE_RE.search(value):
        return value
    raw = _to_bytes(value)
    return decode_bytes(raw, None, guess=False)

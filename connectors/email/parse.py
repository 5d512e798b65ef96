"""Raw RFC 822 bytes -> :class:`ParsedEmail` -> an inbound event.

:func:`parse_email` never raises on messy mail. It parses with the stdlib
``email`` package and ``policy.default`` (falling back to ``compat32`` when
that raises), reads every header defensively (an unreadable header is decoded
from its raw bytes instead: UTF-8, else windows-1252, then RFC 2047), decodes
bodies with the declared charset but repairs the usual lies (see
:func:`decode_bytes`), and replaces undecodable bytes rather than failing.

Decisions, so callers can rely on them:

- ``message_id`` is the bare id without ``<>`` (see ``threads``); a message
  without one gets a stable synthetic id ``synthetic.<sha256 of the raw
  bytes>@switchboard.invalid`` (``message_id_synthetic`` is True), so a replay
  of the same bytes dedupes.
- ``from_address`` (and ``to``, ``cc`` ...) is :func:`normalize_address`-ed
  (NFC, lowercased); when no sender can be found it is
  ``unknown@unknown.invalid``. ``from_name`` is None when absent or equal to
  the address.
- ``date`` is timezone-aware UTC. A missing, unparsable, pre-1980 or more than
  a day in the future ``Date`` is replaced by ``received_at`` (or now).
- ``text`` is the whole plain text (``format=flowed`` undone; built from the
  HTML when there is no text part), capped at ``max_text_chars`` (1 MB);
  ``html`` is sanitised HTML (``cid:`` srcs kept for the domain to map) or None
  when the mail has no HTML part; ``reply_text`` is :func:`quotes.extract_reply`.
- Attachments larger than ``max_attachment_bytes`` are dropped and listed in
  ``dropped_attachments`` (filename, content type, size).
- ``thread_refs`` of the event: ``In-Reply-To`` ids first, then ``References``
  newest first, deduplicated: the first stored match is the closest ancestor.
- No string of the result holds a NUL (dropped) or a lone surrogate (U+FFFD):
  no database stores either.
- A bounce that names the original Message-ID becomes a
  :class:`StatusUpdate`; any other message (automated ones too, flagged) an
  :class:`InboundMessage`.
"""

from __future__ import annotations

import codecs
import dataclasses
import email.header
import email.utils
import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import Message
from email.parser import BytesParser
from typing import Any

from connectors.base import (
    AttachmentRef,
    DeliveryState,
    InboundMessage,
    StatusUpdate,
)
from connectors.email import automated as automated_mod
from connectors.email.address import normalize_address
from connectors.email.bounces import BounceInfo, parse_bounce
from connectors.email.quotes import extract_reply
from connectors.email.sanitize import has_remote_images, html_to_text, sanitize_html
from connectors.email.threads import normalize_message_id, parse_id_list
from connectors.filenames import clean_filename

__all__ = [
    "UNKNOWN_SENDER",
    "ParsedEmail",
    "decode_bytes",
    "parse_email",
]

UNKNOWN_SENDER = "unknown@unknown.invalid"
DEFAULT_MAX_TEXT_CHARS = 1_000_000
DEFAULT_MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
_MAX_HTML_CHARS = 5_000_000
_MAX_PARTS = 500
_MAX_DEPTH = 30
_MAX_PARSED_HEADER = 2000  # characters; longer header values skip the email package's parser

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
_UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")  # NUL, lone surrogates: no database takes them
_MIME_TYPE_RE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}")
_MAX_ADDRESS = 254  # RFC 5321: longer is no mailbox (and no contact id)
_CONTROL_RE = re.compile(r"[\x00\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Starts only where a run of address characters starts, and never backtracks into it:
# searching 100 kB of such characters without an "@" took half a minute before.
_ADDR_RE = re.compile(
    r"(?<![A-Za-z0-9!#$%&'*+/=?^_`{|}~.-])[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]++@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
)


# --------------------------------------------------------------------------- result


@dataclass
class ParsedEmail:
    """One inbound email, fully decoded; see the module docstring for the rules."""

    inbox_key: str
    message_id: str
    from_address: str
    subject: str
    date: datetime
    text: str
    reply_text: str
    html: str | None = None
    from_name: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)
    delivered_to: list[str] = field(default_factory=list)
    attachments: list[AttachmentRef] = field(default_factory=list)
    dropped_attachments: list[dict[str, Any]] = field(default_factory=list)
    automated: bool = False
    automated_reason: str | None = None
    auto_submitted: str | None = None
    is_bounce: bool = False
    bounce: BounceInfo | None = None
    x_loop: list[str] = field(default_factory=list)
    is_loop: bool = False
    message_id_synthetic: bool = False
    date_from_header: bool = True
    text_truncated: bool = False
    remote_images: bool = False
    content_type: str = "text/plain"
    defects: list[str] = field(default_factory=list)

    @property
    def thread_refs(self) -> tuple[str, ...]:
        """In-Reply-To first, then References newest first; deduplicated bare ids."""
        ids = [self.in_reply_to] if self.in_reply_to else []
        ids += list(reversed(self.references))
        seen: set[str] = set()
        out = []
        for i in ids:
            if i and i not in seen and i != self.message_id:
                seen.add(i)
                out.append(i)
        return tuple(out)

    def to_event(self) -> InboundMessage | StatusUpdate:
        """The normalised event: a StatusUpdate for a bounce we can attribute, else a message."""
        if self.bounce is not None and self.bounce.original_message_id:
            if self.bounce.delivered:
                return StatusUpdate(
                    inbox_key=self.inbox_key,
                    status=DeliveryState.DELIVERED,
                    external_id=self.bounce.original_message_id,
                    contact_id=self.bounce.recipient,
                )
            if self.is_bounce:
                return StatusUpdate(
                    inbox_key=self.inbox_key,
                    status=DeliveryState.FAILED,
                    external_id=self.bounce.original_message_id,
                    contact_id=self.bounce.recipient,
                    error=self.bounce.to_send_error(),
                )
        context: dict[str, Any] = {
            "full_text": self.text,
            "to": list(self.to),
            "cc": list(self.cc),
            "message_id": self.message_id,
        }
        optional: dict[str, Any] = {
            # the headers a reply to this message builds its own References from
            "in_reply_to": self.in_reply_to,
            "references": list(self.references),
            "reply_to": self.reply_to,
            "delivered_to": self.delivered_to,
            "dropped_attachments": self.dropped_attachments,
            "automated_reason": self.automated_reason,
            "auto_submitted": self.auto_submitted,
            "x_loop": self.x_loop,
            "loop": self.is_loop,
            "message_id_synthetic": self.message_id_synthetic,
            "text_truncated": self.text_truncated,
            "remote_images": self.remote_images,
        }
        context.update({key: value for key, value in optional.items() if value})
        if not self.date_from_header:
            context["date_from_header"] = False  # sent_at is the time we received it
        if self.bounce is not None:  # a bounce we cannot tie to one of our messages
            context["bounce"] = {
                "recipient": self.bounce.recipient,
                "status": self.bounce.status,
                "transient": self.bounce.transient,
                "diagnostic": self.bounce.primary.diagnostic if self.bounce.primary else None,
            }
        if self.from_address == UNKNOWN_SENDER:
            context["sender_unknown"] = True
        return InboundMessage(
            inbox_key=self.inbox_key,
            external_id=self.message_id,
            contact_id=self.from_address,
            sent_at=self.date,
            text=self.reply_text if self.reply_text.strip() else self.text,
            html=self.html,
            contact_name=self.from_name,
            subject=self.subject,
            attachments=tuple(self.attachments),
            thread_refs=self.thread_refs,
            automated=self.automated,
            context=context,
        )


# --------------------------------------------------------------------------- decoding


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


def _decode_rfc2047(value: str) -> str:
    """Decode encoded-words manually (unknown charsets and bad encodings tolerated)."""
    value = _fix_surrogates(value)
    if "=?" not in value:
        return value
    try:
        chunks = email.header.decode_header(value)
    except Exception:
        return value
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, bytes):
            out.append(decode_bytes(chunk, charset, guess=False))
        else:
            out.append(chunk)
    return "".join(out)


def _unfold(value: str) -> str:
    return _CONTROL_RE.sub("", re.sub(r"\r?\n[ \t]*", " ", value or "")).strip()


class _Headers:
    """Safe, decoded access to one message's headers."""

    def __init__(self, msg: Message) -> None:
        self.msg = msg
        try:
            self.raw = [(str(k), str(v)) for k, v in msg.raw_items()]
        except Exception:
            try:
                self.raw = [(str(k), str(v)) for k, v in msg._headers]
            except Exception:
                self.raw = []
        self.by_name: dict[str, list[str]] = {}
        for k, v in self.raw:
            self.by_name.setdefault(k.strip().lower(), []).append(v)

    def raw_values(self, name: str) -> list[str]:
        return self.by_name.get(name.lower(), [])

    def parseable(self, name: str) -> bool:
        """False when a value of ``name`` is too long for the email package's parser.

        Its structured-header parser takes quadratic time: a 20 kB ``From`` of
        quotes or dots took seconds. Longer values use the tolerant decoding.
        """
        return all(len(v) <= _MAX_PARSED_HEADER for v in self.raw_values(name))

    def text(self, name: str) -> str | None:
        """The first value of ``name`` decoded to text, or None when absent."""
        raws = self.raw_values(name)
        if not raws:
            return None
        value: str | None = None
        try:
            parsed = self.msg.get(name) if self.parseable(name) else None
            value = str(parsed) if parsed is not None else None
        except Exception:
            value = None
        if value is None or "\ufffd" in value or _SURROGATE_RE.search(value):
            value = _decode_rfc2047(raws[0])
        return _unfold(value)

    def all_text(self, name: str) -> list[str]:
        return [_unfold(_decode_rfc2047(v)) for v in self.raw_values(name)]

    def decoded_mapping(self) -> dict[str, list[str]]:
        """Every header, decoded, keyed by lowercase name (for automated.detect)."""
        return {k: [_unfold(_decode_rfc2047(v)) for v in vs] for k, vs in self.by_name.items()}

    def addresses(self, name: str) -> list[tuple[str, str]]:
        """``(display name, lowercased address)`` pairs of every ``name`` header.

        The email package's parser is used when it reports no defect; otherwise
        (e.g. an unquoted ``alice@x <bob@x>`` display name) a tolerant splitter.
        Addresses over 254 characters (RFC 5321) are left out.
        """
        raws = self.raw_values(name)
        if not raws:
            return []
        out: list[tuple[str, str]] = []
        try:
            if not self.parseable(name):
                raise ValueError("header too long for the email package's parser")
            for header in self.msg.get_all(name) or []:
                if any(
                    type(d).__name__ in ("InvalidHeaderDefect", "ObsoleteHeaderDefect")
                    for d in getattr(header, "defects", ())
                ):
                    raise ValueError("defective address header")
                for addr in getattr(header, "addresses", ()):
                    spec = (addr.addr_spec or "").strip()
                    if "@" not in spec or " " in spec or not spec.isprintable():
                        raise ValueError("unusable address")  # NUL, raw bytes: the tolerant way
                    display = addr.display_name or ""
                    if "\ufffd" in display or _SURROGATE_RE.search(display):
                        raise ValueError("undecodable display name")
                    out.append((display, normalize_address(spec)))
        except Exception:
            out = []
            for raw in raws:
                out.extend(_split_addresses(_unfold(_decode_rfc2047(raw))))
        return [(display, addr) for display, addr in out if len(addr) <= _MAX_ADDRESS]


def _split_addresses(value: str) -> list[tuple[str, str]]:
    """A forgiving address-list splitter for headers the email package rejects."""
    chunks: list[str] = []
    buf, quoted, angle = "", False, 0
    for ch in value:
        if ch == '"' and not angle:
            quoted = not quoted
        elif ch == "<" and not quoted:
            angle += 1
        elif ch == ">" and not quoted and angle:
            angle -= 1
        if ch in ",;" and not quoted and not angle:
            chunks.append(buf)
            buf = ""
            continue
        buf += ch
    chunks.append(buf)
    out = []
    for chunk in chunks:
        chunk = chunk.strip()
        if ":" in chunk and "<" not in chunk.split(":", 1)[0] and '"' not in chunk.split(":", 1)[0]:
            chunk = chunk.split(":", 1)[1].strip()  # group syntax "Team: a@x"
        m = re.search(r"<\s*([^<>\s]+@[^<>\s]+)\s*>", chunk)
        if m:
            display = chunk[: m.start()].strip().strip('"').strip()
            out.append((display, normalize_address(m.group(1))))
            continue
        m = _ADDR_RE.search(chunk)
        if m:
            out.append(("", normalize_address(m.group(0))))
    return out


# --------------------------------------------------------------------------- MIME walk


@dataclass
class _Collected:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[AttachmentRef] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    parts: int = 0


def _safe(fn, default=None):
    try:
        return fn()
    except Exception:
        return default


def _content_type(part: Message) -> str:
    """``type/subtype`` in lower case; ``text/plain`` (RFC 2045's default) when it is no such thing."""
    ctype = _safe(part.get_content_type, "text/plain") or "text/plain"
    ctype = _CONTROL_RE.sub("", str(ctype)).lower()
    return ctype if _MIME_TYPE_RE.fullmatch(ctype) else "text/plain"


def _charset(part: Message) -> str | None:
    value = _safe(lambda: part.get_param("charset"), None)
    if isinstance(value, tuple):  # RFC 2231 encoded parameter
        value = value[2]
    return str(value) if value else None


def _payload_bytes(part: Message) -> bytes:
    """The transfer-decoded payload; bad base64/QP yields what could be decoded."""
    data = _safe(lambda: part.get_payload(decode=True), None)
    if isinstance(data, bytes):
        return data
    raw = _safe(part.get_payload, "")
    if isinstance(raw, str):
        return _to_bytes(raw)
    if isinstance(raw, bytes):
        return raw
    return b""


def _unflow(text: str, delsp: bool) -> str:
    """Undo RFC 3676 ``format=flowed`` soft line breaks."""
    out: list[str] = []
    buf = ""
    buf_depth: int | None = None
    for line in text.split("\n"):
        line = line.rstrip("\r")
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]  # space-stuffing
        if buf_depth is not None and depth != buf_depth:
            out.append(">" * buf_depth + (" " if buf_depth else "") + buf)
            buf, buf_depth = "", None
        flowed = content.endswith(" ") and content != "-- "
        if flowed:
            buf += content[:-1] if delsp else content
            buf_depth = depth
            continue
        buf += content
        out.append(">" * depth + (" " if depth and buf else "") + buf)
        buf, buf_depth = "", None
    if buf_depth is not None:
        out.append(">" * buf_depth + (" " if buf_depth else "") + buf)
    return "\n".join(out)


def _filename(part: Message) -> str | None:
    name = _safe(part.get_filename, None)
    if not name:
        name = _safe(lambda: part.get_param("name"), None)
        if isinstance(name, tuple):  # RFC 2231 (charset, lang, value)
            name = _safe(lambda: email.utils.collapse_rfc2231_value(name), None)
    if not name:
        return None
    return clean_filename(_decode_rfc2047(str(name))) or None


def _kind(ctype: str) -> str:
    major = ctype.split("/", 1)[0]
    return major if major in ("image", "video", "audio") else "file"


def _add_attachment(
    part: Message, ctype: str, content: bytes, acc: _Collected, max_bytes: int
) -> None:
    filename = _filename(part)
    cid = _safe(lambda: part.get("Content-ID"), None)
    cid = normalize_message_id(str(cid)) if cid else None
    disposition = (_safe(part.get_content_disposition, None) or "").lower() or None
    if not filename:
        if ctype in ("message/rfc822", "message/global"):
            filename = "message.eml"
        elif ctype.endswith("delivery-status"):
            filename = "delivery-status.txt"
        elif ctype.endswith("rfc822-headers"):
            filename = "headers.txt"
        elif ctype.startswith("message/"):
            filename = f"{ctype.split('/', 1)[1]}.txt"
        else:
            ext = mimetypes.guess_extension(ctype) or ".bin"
            filename = f"attachment-{len(acc.attachments) + len(acc.dropped) + 1}{ext}"
    if len(content) > max_bytes:
        acc.dropped.append(
            {
                "filename": filename,
                "content_type": ctype,
                "size": len(content),
                "reason": f"larger than {max_bytes} bytes",
            }
        )
        return
    acc.attachments.append(
        AttachmentRef(
            kind=_kind(ctype),
            content=content,
            content_type=ctype,
            filename=filename,
            content_id=cid,
            extra={
                "size": len(content),
                "inline": disposition == "inline" or (disposition is None and bool(cid)),
            },
        )
    )


def _message_bytes(part: Message) -> bytes:
    """Bytes of an attached ``message/*`` part (its inner message re-serialised)."""
    payload = _safe(part.get_payload, None)
    if isinstance(payload, list) and payload:
        inner = payload[0]
        for fn in (
            lambda: inner.as_bytes(policy=policy.compat32),
            lambda: inner.as_string(policy=policy.compat32).encode("utf-8", "surrogateescape"),
        ):
            data = _safe(fn, None)
            if data:
                return data
    return _payload_bytes(part)


def _salvage_multipart(part: Message, ctype: str) -> Message | None:
    """Re-parse a multipart whose declared boundary never appears (spam does this)."""
    payload = _safe(part.get_payload, None)
    if not isinstance(payload, str):
        return None
    m = re.search(r"^--([^\s]{1,200}?)(?:--)?\s*$", payload, re.M)
    if not m:
        return None
    header = f'Content-Type: {ctype}; boundary="{m.group(1)}"\n\n'
    data = _to_bytes(header + payload)
    fixed = _safe(lambda: BytesParser(policy=policy.default).parsebytes(data), None)
    if fixed is not None and fixed.is_multipart():
        return fixed
    return None


def _walk(
    part: Message,
    acc: _Collected,
    max_bytes: int,
    depth: int = 0,
    in_alternative: bool = False,
    salvaged: bool = False,
) -> None:
    acc.parts += 1
    if depth > _MAX_DEPTH or acc.parts > _MAX_PARTS:
        return
    ctype = _content_type(part)
    maintype, _, subtype = ctype.partition("/")
    if maintype == "message":
        _add_attachment(part, ctype, _message_bytes(part), acc, max_bytes)
        return
    if maintype == "multipart":
        subparts = _safe(part.get_payload, None)
        if isinstance(subparts, list):
            for sub in subparts:
                if isinstance(sub, Message):
                    _walk(sub, acc, max_bytes, depth + 1, subtype == "alternative")
            return
        fixed = None if salvaged else _salvage_multipart(part, ctype)
        if fixed is not None:
            _walk(fixed, acc, max_bytes, depth + 1, in_alternative, salvaged=True)
            return
        # unrecoverable: treat the payload as text (HTML when it looks like it)
        data = _payload_bytes(part)
        is_html = b"<html" in data[:5000].lower() or b"<body" in data[:5000].lower()
        (acc.html if is_html else acc.plain).append(decode_bytes(data, _charset(part), is_html))
        return
    disposition = (_safe(part.get_content_disposition, None) or "").lower()
    filename = _filename(part)
    is_body = maintype == "text" and subtype in ("plain", "html") and not filename
    if is_body and disposition != "attachment":
        data = _payload_bytes(part)
        text = decode_bytes(data, _charset(part), is_html=subtype == "html")
        if subtype == "html":
            acc.html.append(text)
        else:
            fmt = (_safe(lambda: part.get_param("format"), "") or "").lower()
            if fmt == "flowed":
                delsp = (_safe(lambda: part.get_param("delsp"), "") or "").lower() == "yes"
                text = _unflow(text, delsp)
            acc.plain.append(text)
        return
    if in_alternative and maintype == "text" and disposition != "attachment" and not filename:
        return  # text/enriched, text/watch-html ...: other renderings of the same body
    _add_attachment(part, ctype, _payload_bytes(part), acc, max_bytes)


# --------------------------------------------------------------------------- public


def _parse_bytes(raw: bytes) -> tuple[Message, list[str]]:
    defects: list[str] = []
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # pragma: no cover - stdlib rarely raises here
        defects.append(f"policy.default failed: {type(exc).__name__}")
        msg = BytesParser(policy=policy.compat32).parsebytes(raw)
    return msg, defects


def _parse_date(value: str | None, fallback: datetime) -> tuple[datetime, bool]:
    if value:
        try:
            dt = email.utils.parsedate_to_datetime(value)
        except Exception:
            dt = None
        if dt is not None:
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            dt = dt.astimezone(UTC)
            if datetime(1980, 1, 1, tzinfo=UTC) <= dt <= fallback + timedelta(days=1):
                return dt, True
    return fallback, False


def _storable_text(value: str) -> str:
    if not _UNSTORABLE_RE.search(value):
        return value
    return _UNSTORABLE_RE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", value)


def _storable(value: Any) -> Any:
    """``value`` with every string made storable: NUL dropped, lone surrogates U+FFFD.

    Walks lists, tuples, dicts and dataclasses (attachments, bounce details);
    bytes, numbers and datetimes are left as they are.
    """
    if isinstance(value, str):
        return _storable_text(value)
    if isinstance(value, list | tuple):
        return type(value)(_storable(v) for v in value)
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return dataclasses.replace(
            value, **{f.name: _storable(getattr(value, f.name)) for f in fields}
        )
    return value


def _dedupe(values: list[str]) -> list[str]:
    seen: set[str] = set()
    return [v for v in values if v and not (v in seen or seen.add(v))]


def parse_email(
    raw: bytes,
    inbox_key: str,
    received_at: datetime | None = None,
    *,
    our_address: str | None = None,
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    languages: list[str] | None = None,
) -> ParsedEmail:
    """Parse raw RFC 822 bytes into a :class:`ParsedEmail`; never raises on bad mail.

    ``received_at`` (timezone-aware; naive is taken as UTC) replaces a missing or
    bad ``Date``; ``our_address`` enables ``X-Loop`` detection; ``languages``
    narrows the quote-stripping patterns.
    """
    if isinstance(raw, str):
        raw = _to_bytes(raw)
    raw = bytes(raw or b"")
    now = received_at or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    now = now.astimezone(UTC)

    msg, defects = _parse_bytes(raw)
    hdr = _Headers(msg)
    for d in _safe(lambda: list(msg.defects), []) or []:
        defects.append(type(d).__name__)

    # identity and threading
    message_id = normalize_message_id(hdr.text("Message-ID") or "")
    if len(message_id) > 995 or any(c.isspace() for c in message_id):
        message_id = ""
    synthetic = not message_id
    if synthetic:
        message_id = f"synthetic.{hashlib.sha256(raw).hexdigest()[:40]}@switchboard.invalid"
    in_reply_to_ids = parse_id_list(" ".join(hdr.all_text("In-Reply-To")))
    references = parse_id_list(" ".join(hdr.all_text("References")))

    # people
    senders = hdr.addresses("From") or hdr.addresses("Sender") or hdr.addresses("Reply-To")
    return_path_raw = hdr.text("Return-Path")
    if not senders and return_path_raw and "@" in return_path_raw:
        senders = [("", normalize_address(normalize_message_id(return_path_raw)))]
    from_name, from_address = senders[0] if senders else ("", UNKNOWN_SENDER)
    from_name = " ".join((from_name or "").split()) or None
    if from_name and from_name.strip("'\"<> ").lower() == from_address:
        from_name = None
    to = _dedupe([a for _, a in hdr.addresses("To")])
    cc = _dedupe([a for _, a in hdr.addresses("Cc")])
    reply_to = _dedupe([a for _, a in hdr.addresses("Reply-To")])
    delivered_to = _dedupe(
        [
            a
            for name in ("Delivered-To", "X-Original-To", "Envelope-To")
            for _, a in hdr.addresses(name)
        ]
    )
    subject = hdr.text("Subject") or ""
    date, date_ok = _parse_date(hdr.text("Date"), now)

    # bodies and attachments
    acc = _Collected()
    _walk(msg, acc, max_attachment_bytes)
    plain = "\n".join(p for p in acc.plain if p is not None)
    html_raw = "\n".join(acc.html)[:_MAX_HTML_CHARS] if acc.html else None
    text = plain if plain.strip() else (html_to_text(html_raw) if html_raw else plain)
    text = text.replace("\r\n", "\n").replace("\x00", "")
    truncated = len(text) > max_text_chars
    if truncated:
        text = text[:max_text_chars]
    html = sanitize_html(html_raw) if html_raw and html_raw.strip() else None
    if plain.strip():
        reply = extract_reply(text, None, languages)
    else:
        reply = extract_reply(None, html_raw, languages) if html_raw else ""
    reply = reply[:max_text_chars]

    # machines, lists, loops and bounces
    headers = hdr.decoded_mapping()
    ctype = _content_type(msg)
    null_sender = return_path_raw is not None and not normalize_message_id(return_path_raw)
    reason = automated_mod.detect(headers, from_address, ctype)
    x_loop = hdr.all_text("X-Loop")
    loop = automated_mod.is_loop(headers, our_address)
    if loop:
        reason = reason or "x-loop"
    bounce = parse_bounce(msg, from_address, subject, text, null_sender)
    is_bounce = bounce is not None and not bounce.delivered
    if bounce is not None:
        reason = reason or "bounce"
    auto_submitted = hdr.text("Auto-Submitted")

    parsed = ParsedEmail(
        inbox_key=inbox_key,
        message_id=message_id,
        from_address=from_address,
        from_name=from_name,
        subject=subject,
        date=date,
        text=text,
        reply_text=reply,
        html=html or None,
        in_reply_to=in_reply_to_ids[0] if in_reply_to_ids else None,
        references=references,
        to=to,
        cc=cc,
        reply_to=reply_to,
        delivered_to=delivered_to,
        attachments=acc.attachments,
        dropped_attachments=acc.dropped,
        automated=reason is not None,
        automated_reason=reason,
        auto_submitted=auto_submitted,
        is_bounce=is_bounce,
        bounce=bounce,
        x_loop=x_loop,
        is_loop=loop,
        message_id_synthetic=synthetic,
        date_from_header=date_ok,
        text_truncated=truncated,
        remote_images=has_remote_images(html),
        content_type=ctype,
        defects=defects,
    )
    return _storable(parsed)

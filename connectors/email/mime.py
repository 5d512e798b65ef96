"""Walking a message's MIME tree: body texts, attachments, dropped attachments.

Bodies are decoded with :func:`~.charsets.decode_bytes` (``format=flowed``
undone); every other part becomes an :class:`~connectors.base.AttachmentRef`,
or an entry of ``dropped`` when it is over the size cap.
"""

from __future__ import annotations

import email.utils
import mimetypes
import re
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.parser import BytesParser
from typing import Any

from connectors.base import AttachmentRef
from connectors.email.charsets import _to_bytes, decode_bytes
from connectors.email.headers import _CONTROL_RE, _decode_rfc2047
from connectors.email.threads import normalize_message_id
from connectors.filenames import clean_filename

_MAX_PARTS = 500
_MAX_DEPTH = 30
_MIME_TYPE_RE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}")


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

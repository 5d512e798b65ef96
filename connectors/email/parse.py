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

import dataclasses
import email.utils
import functools
import hashlib
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
from connectors.email.charsets import _to_bytes, decode_bytes
from connectors.email.headers import _Headers
from connectors.email.mime import _Collected, _content_type, _safe, _walk
from connectors.email.quotes import extract_reply
from connectors.email.sanitize import has_remote_images, html_to_text, sanitize_html
from connectors.email.threads import normalize_message_id, parse_id_list

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
_UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")  # NUL, lone surrogates: no database takes them


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


# --------------------------------------------------------------------------- public


class _ParseOncePolicy(policy.EmailPolicy):
    """``policy.default`` that parses each distinct header value once.

    The stdlib parses a header again on every read (``msg.get``,
    ``get_content_type``, ``get_param``), building a new header class each time:
    a message's ``Content-Type`` was parsed about fifteen times, and header
    parsing was a third of the time spent ingesting a mail. A parsed header is an
    immutable string that depends only on its name and value, so it is shared.
    """

    def header_fetch_parse(self, name, value):
        if hasattr(value, "name"):
            return value
        return _parsed_header(name, value)


_POLICY = _ParseOncePolicy()


@functools.lru_cache(maxsize=4096)
def _parsed_header(name: str, value: str):
    return policy.EmailPolicy.header_fetch_parse(_POLICY, name, value)


def _parse_bytes(raw: bytes) -> tuple[Message, list[str]]:
    defects: list[str] = []
    try:
        msg = BytesParser(policy=_POLICY).parsebytes(raw)
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

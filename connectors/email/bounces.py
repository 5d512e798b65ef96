"""Delivery Status Notifications (bounces): which message failed, for whom, why.

Standard bounces are RFC 3464 DSNs: ``multipart/report;
report-type=delivery-status`` with a ``message/delivery-status`` part (one
block of per-message fields, then one block per recipient: ``Final-Recipient``,
``Action``, ``Status``, ``Diagnostic-Code``, ``Remote-MTA``) and the original
message or its headers (``message/rfc822``, ``text/rfc822-headers``,
``message/global[-headers]``) from which the original ``Message-ID`` is read.

Non-standard bounces (qmail, old Exim/Sendmail, Exchange NDR text) are common:
:func:`parse_bounce` falls back to a heuristic when the sender is
``MAILER-DAEMON``/``postmaster`` (or the return path is null) and the subject
looks like a delivery failure: ``X-Failed-Recipients``, DSN-style fields found
anywhere in the text, ``<addr>:`` lines, enhanced status codes (``5.1.1``) and
the original headers quoted in the body.

A ``4.x.x`` status, or ``Action: delayed``, is *transient*: the remote MTA is
still retrying or the mailbox is temporarily unavailable, so the domain should
show the problem but not resend. ``5.x.x`` is permanent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

from connectors.base import ErrorKind, SendError
from connectors.email.address import normalize_address
from connectors.email.threads import normalize_message_id, parse_id_list

__all__ = ["BounceInfo", "BounceRecipient", "looks_like_bounce", "parse_bounce"]

_STATUS_RE = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE_RE = re.compile(r"(?<![\d.])([45]\d\d)(?:[ -]|$)")
# Starts only where a run of address characters starts, and never backtracks into it:
# searching 100 kB of such characters without an "@" took half a minute before.
_ADDR_RE = re.compile(
    r"(?<![A-Za-z0-9!#$%&'*+/=?^_`{|}~.-])[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]++@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
)
_BOUNCE_SUBJECT_RE = re.compile(
    r"undeliver|undelivered|delivery (?:status|failure|failed|has failed|problem|notification)"
    r"|mail delivery|returned mail|failure notice|could not be delivered|returned to sender"
    r"|nondeliverable|non-delivery|rejected|unzustellbar|non remis|non distribuibile"
    r"|no se puede entregar|não entregue|mensagem não|onbestelbaar|olevererbart",
    re.IGNORECASE,
)
_DAEMON_RE = re.compile(r"^(?:mailer-daemon|postmaster|mail-daemon|bounce[s]?)(?:[-+.].*)?$", re.I)
_FIELD_RE = re.compile(r"^([A-Za-z][A-Za-z-]*)[ \t]*:[ \t]*(.*)$")
_TRANSIENT_HINT_RE = re.compile(
    r"will (?:retry|continue|keep trying)|delayed|temporar|not yet been delivered|try again later",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class BounceRecipient:
    """One recipient's outcome in a DSN."""

    address: str | None
    action: str | None = None  # failed | delayed | delivered | relayed | expanded
    status: str | None = None  # enhanced status code, e.g. "5.1.1"
    diagnostic: str | None = None  # e.g. "smtp; 550 5.1.1 User unknown"
    remote_mta: str | None = None

    @property
    def transient(self) -> bool:
        """True for ``4.x.x`` statuses and ``delayed`` actions (the MTA still retries)."""
        if self.status:
            return self.status.startswith("4")
        return (self.action or "").lower() == "delayed"


@dataclass(frozen=True)
class BounceInfo:
    """What a bounce says about a message we sent."""

    original_message_id: str | None  # bare, as stored by the domain
    recipients: tuple[BounceRecipient, ...] = ()
    reporting_mta: str | None = None
    standard: bool = True  # RFC 3464 DSN (False: heuristic match)
    original_headers: dict[str, str] = field(default_factory=dict)

    @property
    def primary(self) -> BounceRecipient | None:
        """The recipient to report: the first that failed, else delayed, else the first."""
        for wanted in ("failed", "delayed"):
            for r in self.recipients:
                if (r.action or "").lower() == wanted:
                    return r
        return self.recipients[0] if self.recipients else None

    @property
    def recipient(self) -> str | None:
        """The failed recipient address (lowercased), when known."""
        p = self.primary
        return p.address if p else None

    @property
    def status(self) -> str | None:
        """The enhanced status code of the primary recipient."""
        p = self.primary
        return p.status if p else None

    @property
    def transient(self) -> bool:
        """True when the failure is temporary (see the module docstring)."""
        p = self.primary
        return bool(p and p.transient)

    @property
    def delivered(self) -> bool:
        """True for a positive DSN (every recipient delivered/relayed/expanded)."""
        actions = {(r.action or "").lower() for r in self.recipients}
        return bool(actions) and actions <= {"delivered", "relayed", "expanded"}

    def to_send_error(self) -> SendError:
        """The failure as a :class:`SendError` (TRANSIENT for 4.x.x, else UNDELIVERABLE)."""
        p = self.primary
        status = p.status if p else None
        message = (p.diagnostic if p else None) or ""
        if not message and p and p.action:
            message = f"{p.action} ({status})" if status else p.action
        if not message:
            message = "The message could not be delivered."
        kind = ErrorKind.TRANSIENT if self.transient else ErrorKind.UNDELIVERABLE
        return SendError(kind=kind, code=status, message=message[:1000])


def _clean_value(value: object) -> str:
    return " ".join(str(value).split())


def _addr_field(value: str | None) -> str | None:
    """``rfc822; Bob@Example.com`` -> ``bob@example.com``."""
    if not value:
        return None
    value = value.split(";", 1)[1] if ";" in value else value
    m = _ADDR_RE.search(value)
    return normalize_address(m.group(0) if m else value) or None


def _status_field(value: str | None) -> str | None:
    if not value:
        return None
    m = _STATUS_RE.search(value)
    return ".".join(m.groups()) if m else None


def _blocks_from_part(part: Message) -> list[dict[str, str]]:
    """Field blocks of a ``message/delivery-status`` part, however the parser left it."""
    blocks: list[dict[str, str]] = []
    try:
        payload = part.get_payload()
    except Exception:
        payload = None
    if isinstance(payload, list):
        for sub in payload:
            try:
                block = {str(k).lower(): _clean_value(v) for k, v in sub.items()}
            except Exception:
                continue
            # the parser sometimes leaves later blocks in the body of the first
            body = sub.get_payload() if not sub.is_multipart() else ""
            if block:
                blocks.append(block)
            if isinstance(body, str) and body.strip():
                blocks.extend(_blocks_from_text(body))
        return blocks
    if isinstance(payload, str | bytes):
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        return _blocks_from_text(text)
    return blocks


def _blocks_from_text(text: str) -> list[dict[str, str]]:
    """Parse "Field: value" blocks separated by blank lines (continuations folded)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last: str | None = None
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
            current, last = {}, None
            continue
        if line[:1] in (" ", "\t") and last:
            current[last] = f"{current[last]} {line.strip()}"
            continue
        m = _FIELD_RE.match(line)
        if m:
            last = m.group(1).lower()
            current[last] = m.group(2).strip()
    if current:
        blocks.append(current)
    return blocks


def _recipients_from_blocks(blocks: list[dict[str, str]]) -> list[BounceRecipient]:
    out = []
    for b in blocks:
        if "final-recipient" not in b and "original-recipient" not in b:
            continue
        out.append(
            BounceRecipient(
                address=_addr_field(b.get("final-recipient") or b.get("original-recipient")),
                action=(b.get("action") or "").split()[0].lower() if b.get("action") else None,
                status=_status_field(b.get("status")),
                diagnostic=b.get("diagnostic-code") or _status_comment(b.get("status")),
                remote_mta=_addr_or_host(b.get("remote-mta")),
            )
        )
    return out


def _status_comment(value: str | None) -> str | None:
    """``4.2.2 (mailbox full)`` -> the whole value when it says more than the code."""
    if value and _STATUS_RE.sub("", value).strip(" ()"):
        return value
    return None


def _addr_or_host(value: str | None) -> str | None:
    if not value:
        return None
    return value.split(";", 1)[1].strip() if ";" in value else value.strip()


def _original_headers(part: Message) -> dict[str, str]:
    """Headers of the returned message from a ``message/rfc822``-ish or headers part."""
    ctype = part.get_content_type()
    try:
        if ctype in ("message/rfc822", "message/global") or ctype.endswith("rfc822-headers"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                return {str(k).lower(): _clean_value(v) for k, v in payload[0].items()}
        raw = part.get_payload(decode=True)
        if raw is None:
            raw = str(part.get_payload()).encode("utf-8", "surrogateescape")
        text = raw.decode("utf-8", "replace")
        parsed = HeaderParser(policy=compat32).parsestr(text)
        return {str(k).lower(): _clean_value(v) for k, v in parsed.items()}
    except Exception:
        return {}


def _iter_parts(msg: Message, depth: int = 0):
    """Parts of ``msg`` without descending into attached messages."""
    yield msg
    if depth > 10 or not msg.is_multipart():
        return
    if msg.get_content_maintype() == "message":
        return
    try:
        subparts = msg.get_payload()
    except Exception:
        return
    for sub in subparts if isinstance(subparts, list) else []:
        if isinstance(sub, Message):
            yield from _iter_parts(sub, depth + 1)


def looks_like_bounce(from_address: str | None, subject: str | None, null_sender: bool) -> bool:
    """Heuristic: a daemon sender or null return path, with a failure-like subject."""
    local = (from_address or "").rsplit("@", 1)[0]
    daemon = bool(_DAEMON_RE.match(local))
    if daemon and not subject:
        return True
    return (daemon or null_sender) and bool(_BOUNCE_SUBJECT_RE.search(subject or ""))


def parse_bounce(
    msg: Message,
    from_address: str | None = None,
    subject: str | None = None,
    body_text: str = "",
    null_sender: bool = False,
) -> BounceInfo | None:
    """Bounce details from ``msg``, or None when it is not a bounce.

    ``body_text`` (the decoded plain text, for the heuristic), ``from_address``,
    ``subject`` and ``null_sender`` come from the caller's own safe parsing.
    Read receipts (``report-type=disposition-notification``) are not bounces.
    """
    try:
        return _parse_bounce(msg, from_address, subject, body_text, null_sender)
    except Exception:  # never let a malformed bounce break ingestion
        return None


def _parse_bounce(
    msg: Message,
    from_address: str | None,
    subject: str | None,
    body_text: str,
    null_sender: bool,
) -> BounceInfo | None:
    ctype = msg.get_content_type()
    report_type = (msg.get_param("report-type") or "") if ctype == "multipart/report" else ""
    report_type = str(report_type).lower()
    if ctype == "multipart/report" and report_type and report_type != "delivery-status":
        return None  # MDN read receipt, ARF feedback report ...

    blocks: list[dict[str, str]] = []
    original: dict[str, str] = {}
    for part in _iter_parts(msg):
        ptype = part.get_content_type()
        if ptype in ("message/delivery-status", "message/global-delivery-status"):
            blocks.extend(_blocks_from_part(part))
        elif not original and (
            ptype in ("message/rfc822", "message/global", "message/global-headers")
            or ptype.endswith("rfc822-headers")
        ):
            original = _original_headers(part)

    recipients = _recipients_from_blocks(blocks)
    reporting = next((b.get("reporting-mta") for b in blocks if b.get("reporting-mta")), None)
    original_id = normalize_message_id(original.get("message-id")) or None
    if not original_id:
        for name in ("x-original-message-id", "original-message-id"):
            original_id = next((normalize_message_id(b[name]) for b in blocks if b.get(name)), None)
            if original_id:
                break

    if recipients:
        if not original_id:
            original_id = _id_from_text(body_text) or _id_from_refs(msg)
        return BounceInfo(
            original_message_id=original_id,
            recipients=tuple(recipients),
            reporting_mta=_addr_or_host(reporting),
            standard=True,
            original_headers=original,
        )

    # ---- heuristic for non-standard bounces
    if not (ctype == "multipart/report" or looks_like_bounce(from_address, subject, null_sender)):
        return None
    text = body_text or ""
    text_blocks = _blocks_from_text(text)
    recipients = _recipients_from_blocks(text_blocks)
    if not recipients:
        address = _failed_address(msg, text, original, from_address)
        status = None
        m = _STATUS_RE.search(text)
        if m:
            status = ".".join(m.groups())
        else:
            code = _SMTP_CODE_RE.search(text)
            if code:
                status = f"{code.group(1)[0]}.0.0"
        if status is None and _TRANSIENT_HINT_RE.search(text):
            status = "4.0.0"
        recipients = [
            BounceRecipient(
                address=address,
                action="delayed" if status and status.startswith("4") else "failed",
                status=status,
                diagnostic=_diagnostic_line(text, status),
            )
        ]
    original_id = original_id or _id_from_text(text) or _id_from_refs(msg)
    if not original_id and not any(r.address for r in recipients):
        return None
    return BounceInfo(
        original_message_id=original_id,
        recipients=tuple(recipients),
        reporting_mta=None,
        standard=False,
        original_headers=original,
    )


def _id_from_text(text: str) -> str | None:
    m = re.search(r"^[ \t>]*Message-ID:[ \t]*(<[^<>\s]+>|\S+@\S+)", text or "", re.I | re.M)
    return normalize_message_id(m.group(1)) if m else None


def _id_from_refs(msg: Message) -> str | None:
    """Some MTAs thread the bounce to the original: use its In-Reply-To/References."""
    for name in ("In-Reply-To", "References"):
        try:
            ids = parse_id_list(str(msg.get(name) or ""))
        except Exception:
            ids = []
        if ids:
            return ids[-1]
    return None


def _failed_address(
    msg: Message, text: str, original: dict[str, str], from_address: str | None
) -> str | None:
    try:
        failed = msg.get("X-Failed-Recipients")
    except Exception:
        failed = None
    if failed:
        m = _ADDR_RE.search(str(failed))
        if m:
            return normalize_address(m.group(0))
    exclude = {normalize_address(from_address)}
    for pattern in (
        r"^<([^<>\s@]+@[^<>\s]+)>:",  # qmail
        r"(?:failed|unknown|rejected|not found|does not exist)[^\n]{0,40}?<?([^<>\s@]+@[^<>\s,;]+)>?",
        r"^\s*<?([^<>\s@]+@[^<>\s]+?)>?\s*$",  # a lone address line (Exim)
        r"addressed to\s+<?([^<>\s@)]+@[^<>\s)]+)>?",
    ):
        for m in re.finditer(pattern, text, re.I | re.M):
            addr = normalize_address(m.group(1).strip(".,;:"))
            if addr not in exclude and not _DAEMON_RE.match(addr.split("@")[0]):
                return addr
    to = original.get("to")
    if to:
        m = _ADDR_RE.search(to)
        if m:
            return normalize_address(m.group(0))
    return None


def _diagnostic_line(text: str, status: str | None) -> str | None:
    lines = [x.strip() for x in (text or "").splitlines() if x.strip()]
    if status:
        major = status.split(".")[0]
        for line in lines:
            if status in line or re.search(rf"(?<![\d.]){major}\d\d[ -]", line):
                return line[:500]
    for line in lines:
        if re.search(r"fail|error|unknown|reject|denied|not exist|quota|full", line, re.I):
            return line[:500]
    return lines[0][:500] if lines else None

"""Outbound email: build the MIME message and hand it to an SMTP server.

:func:`build_message` turns an :class:`OutboundMessage` into an
:class:`email.message.EmailMessage`; :func:`send_message` delivers it with
``smtplib`` and classifies every failure into a :class:`SendError` (it never
raises for server or network problems). :func:`config_from_url` reads an
``smtp://`` URL (the instance's notification server) into the same settings,
so other mail the app writes goes through this one client too.

Headers written (options are what the domain put in ``OutboundMessage.options``):

- ``From``: the inbox address, with ``agent_name`` (or ``options["from_name"]``)
  as display name when given; ``To``: ``contact_id``;
- ``Subject``: ``message.subject`` as given (the domain passes it already
  prefixed), else :func:`threads.reply_subject` of ``options["original_subject"]``;
- ``Message-ID``: ``options["message_id"]`` (the domain's
  :func:`threads.make_message_id`), else one derived from ``message.reference``
  (stable across retries), else ``make_msgid``;
- ``In-Reply-To`` / ``References`` from ``options["in_reply_to"]`` /
  ``options["references"]`` (ids bare or bracketed; References is folded);
- ``Reply-To`` from ``options["reply_to"]``; ``X-Loop``: the inbox address;
- automated sends (``message.automated``) add ``Auto-Submitted:
  auto-replied`` (or ``options["auto_submitted"]``) and
  ``X-Auto-Response-Suppress: All``; human replies never carry them;
- ``options["list_unsubscribe"]`` (an https URL) adds the RFC 8058 one-click
  ``List-Unsubscribe`` + ``List-Unsubscribe-Post`` pair;
- body: ``text/plain`` plus an ``text/html`` alternative (escaped paragraphs
  with ``dir="auto"``, or ``options["html"]`` when the domain rendered one),
  then attachments (bytes, or downloaded from ``url`` within the size cap).

Login: ``smtp_user``/``smtp_password``, or with ``auth: oauth`` SASL ``XOAUTH2`` as
``smtp_user`` (else the address) with ``oauth_access_token``; a token the app could
not refresh (``oauth_error``) is reported by the connector before any connection
(:func:`oauth_failure`).

Error classification: 4xx replies, connection errors and timeouts are
TRANSIENT; 535/534/530 authentication failures and TLS/config problems are
AUTH_FAILED; a recipient refused with 550/551/553 (or a 5.1.x status) is
UNDELIVERABLE; other 5xx replies are PERMANENT. The server's text is kept.
"""

from __future__ import annotations

import contextlib
import html as html_lib
import re
import smtplib
import socket
import ssl
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid, parseaddr, quote
from typing import Any
from urllib.parse import unquote, urlsplit

from connectors.base import ErrorKind, OutboundMessage, SendError, SendResult
from connectors.email.address import normalize_address
from connectors.email.oauth import xoauth2
from connectors.email.threads import (
    bracket,
    build_references,
    normalize_message_id,
    parse_id_list,
    reply_subject,
)

__all__ = [
    "build_message",
    "check_login",
    "classify_smtp_error",
    "config_from_url",
    "render_html",
    "send_message",
]

_ADDRESS_RE = re.compile(r"^[^@\s<>\"(),;:]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]{2,}$")
_UNDELIVERABLE_CODES = {550, 551, 553}
_AUTH_CODES = {530, 534, 535, 538}
_URL_RE = re.compile(r"(https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]])")


def _domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip().lower() or "localhost"


def _safe_header(value: str) -> str:
    """Header injection guard: no CR/LF in values we did not fold ourselves."""
    return " ".join(str(value).replace("\r", " ").replace("\n", " ").split())


def render_html(text: str) -> str:
    """Plain text -> minimal HTML: escaped paragraphs, ``<br>`` line breaks, links."""
    paragraphs = re.split(r"\n\s*\n", (text or "").replace("\r\n", "\n").strip())
    out = []
    for para in paragraphs:
        escaped = html_lib.escape(para)
        escaped = _URL_RE.sub(lambda m: f'<a href="{m.group(1)}">{m.group(1)}</a>', escaped)
        out.append(f'<p dir="auto">{escaped.replace(chr(10), "<br>")}</p>')
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
        f'<body><div dir="auto">{"".join(out)}</div></body></html>'
    )


def _message_id(message: OutboundMessage, address: str) -> str:
    given = message.options.get("message_id")
    if given:
        return bracket(given)
    ref = re.sub(r"[^A-Za-z0-9_-]", "-", message.reference or "")
    if ref:
        return f"<sb.{ref}@{_domain_of(address)}>"
    return make_msgid(domain=_domain_of(address))


def build_message(
    config: dict[str, Any],
    message: OutboundMessage,
    attachment_loader: Callable[[Any], bytes] | None = None,
) -> EmailMessage:
    """The MIME message for ``message`` (see the module docstring for the headers).

    Raises ValueError for an invalid recipient or inbox address; attachments
    without bytes are fetched with ``attachment_loader(attachment)``.
    """
    address = (config.get("address") or "").strip()
    if not _ADDRESS_RE.match(address):
        raise ValueError(f"invalid inbox address {address!r}")
    to = normalize_address(message.contact_id)
    if not _ADDRESS_RE.match(to):
        raise ValueError(f"invalid recipient address {to!r}")
    opts = message.options or {}

    # an internationalised recipient (RFC 6531, josé@...) can only travel as SMTPUTF8;
    # smtplib then asks the server for it, or fails the send with its reason
    msg = EmailMessage(policy=policy.SMTP if to.isascii() else policy.SMTPUTF8)
    name = opts.get("from_name") or message.agent_name
    msg["From"] = formataddr((_safe_header(name), address)) if name else address
    to_name = _safe_header(opts.get("to_name") or "")
    if to_name and to.isascii():
        msg["To"] = formataddr((to_name, to))
    elif to_name:  # formataddr refuses a non-ASCII address
        msg["To"] = f'"{quote(to_name)}" <{to}>'
    else:
        msg["To"] = to
    subject = message.subject
    if not subject and opts.get("original_subject") is not None:
        subject = reply_subject(opts.get("original_subject"))
    msg["Subject"] = _safe_header(subject or "")
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = _message_id(message, address)
    parent = opts.get("in_reply_to")
    if parent:
        msg["In-Reply-To"] = bracket(normalize_message_id(parent))
    refs = opts.get("references")
    if refs:
        if isinstance(refs, str):
            refs = parse_id_list(refs)
        limit = int(opts.get("references_limit", 20))
        msg["References"] = " ".join(build_references(list(refs), parent or "", limit=limit))
    elif parent:
        msg["References"] = bracket(parent)
    reply_to = opts.get("reply_to")
    if reply_to:
        msg["Reply-To"] = _safe_header(reply_to)
    msg["X-Loop"] = address
    msg["MIME-Version"] = "1.0"
    if message.automated:
        msg["Auto-Submitted"] = _safe_header(opts.get("auto_submitted") or "auto-replied")
        msg["X-Auto-Response-Suppress"] = "All"
    unsubscribe = opts.get("list_unsubscribe")
    if unsubscribe:
        msg["List-Unsubscribe"] = f"<{_safe_header(unsubscribe)}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for key, value in (opts.get("headers") or {}).items():  # e.g. X-Switchboard-Ref
        if re.match(r"^X-[A-Za-z0-9-]+$", str(key)):
            msg[str(key)] = _safe_header(value)

    msg.set_content(message.text or "", subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(
        opts.get("html") or render_html(message.text or ""),
        subtype="html",
        charset="utf-8",
        cte="quoted-printable",
    )
    for att in message.attachments:
        content = att.content
        if content is None:
            if attachment_loader is None:
                raise ValueError(f"attachment {att.filename!r} has no content")
            content = attachment_loader(att)
        maintype, _, subtype = (att.content_type or "application/octet-stream").partition("/")
        msg.add_attachment(
            content,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=att.filename or "attachment",
        )
    return msg


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def classify_smtp_error(exc: BaseException, recipient: str | None = None) -> SendError:
    """Map an smtplib/socket/ssl exception to a :class:`SendError` (see module docstring)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = exc.recipients or {}
        code, text = next(iter(refused.values()), (0, b""))
        if recipient and recipient in refused:
            code, text = refused[recipient]
        return _from_code(int(code or 0), _text(text), recipient_refused=True)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return SendError(
            kind=ErrorKind.AUTH_FAILED,
            code=str(exc.smtp_code),
            message=f"SMTP login failed: {_text(exc.smtp_error)}",
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return SendError(kind=ErrorKind.AUTH_FAILED, message=f"SMTP server: {exc}")
    if isinstance(exc, smtplib.SMTPResponseException):
        return _from_code(int(exc.smtp_code or 0), _text(exc.smtp_error))
    if isinstance(exc, ssl.SSLCertVerificationError):
        return SendError(kind=ErrorKind.AUTH_FAILED, message=f"TLS certificate rejected: {exc}")
    if isinstance(exc, ssl.SSLError):
        return SendError(kind=ErrorKind.TRANSIENT, message=f"TLS error: {exc}")
    if isinstance(exc, socket.timeout | TimeoutError):
        return SendError(kind=ErrorKind.TRANSIENT, code="timeout", message="SMTP server timed out")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        if "timed out" in str(exc):  # smtplib turns a read timeout into a disconnect
            return SendError(
                kind=ErrorKind.TRANSIENT, code="timeout", message="SMTP server timed out"
            )
        return SendError(kind=ErrorKind.TRANSIENT, message=f"SMTP server disconnected: {exc}")
    if isinstance(exc, socket.gaierror):
        return SendError(
            kind=ErrorKind.TRANSIENT, code="dns", message=f"SMTP host not found: {exc}"
        )
    if isinstance(exc, OSError | smtplib.SMTPException):
        return SendError(kind=ErrorKind.TRANSIENT, message=f"SMTP connection failed: {exc}")
    return SendError(kind=ErrorKind.PERMANENT, message=f"{type(exc).__name__}: {exc}")


def _from_code(code: int, text: str, recipient_refused: bool = False) -> SendError:
    text = " ".join(text.split()) or f"SMTP error {code}"
    status = re.search(r"\b([245]\.\d{1,3}\.\d{1,3})\b", text)
    if 400 <= code < 500:
        kind = ErrorKind.TRANSIENT
    elif code in _AUTH_CODES:
        kind = ErrorKind.AUTH_FAILED
    elif recipient_refused and (
        code in _UNDELIVERABLE_CODES or (status and status.group(1).startswith("5.1."))
    ):
        kind = ErrorKind.UNDELIVERABLE
    elif 500 <= code < 600:
        kind = ErrorKind.PERMANENT
    else:
        kind = ErrorKind.TRANSIENT
    return SendError(kind=kind, code=str(code) if code else None, message=text[:1000])


def config_from_url(url: str, sender: str | None = None) -> dict[str, Any]:
    """The :func:`send_message` settings of an SMTP URL.

    ``smtp://[user:pass@]host[:port]`` (plain), ``smtp+starttls://`` or
    ``smtps://``; the port defaults to 25, 587 or 465. ``sender`` (a From
    header value) gives the envelope sender. Raises ``ValueError`` for
    another scheme.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    security = {"smtp": "none", "smtp+starttls": "starttls", "smtps": "ssl"}.get(scheme)
    if security is None:
        raise ValueError("an SMTP URL must start with smtp://, smtp+starttls:// or smtps://")
    return {
        "smtp_host": parts.hostname or "127.0.0.1",
        "smtp_port": parts.port or 0,
        "smtp_security": security,
        "smtp_user": unquote(parts.username) if parts.username else None,
        "smtp_password": unquote(parts.password) if parts.password else None,
        "envelope_from": parseaddr(sender or "")[1],
    }


def _connect(config: dict[str, Any], timeout: float) -> smtplib.SMTP:
    host = config.get("smtp_host") or "localhost"
    port = int(config.get("smtp_port") or 0)
    security = (config.get("smtp_security") or "starttls").lower()
    context = ssl.create_default_context()
    if security == "ssl":
        server: smtplib.SMTP = smtplib.SMTP_SSL(host, port or 465, timeout=timeout, context=context)
    else:
        server = smtplib.SMTP(
            host, port or (587 if security == "starttls" else 25), timeout=timeout
        )
    try:
        server.ehlo_or_helo_if_needed()
        if security == "starttls":
            server.starttls(context=context)
            server.ehlo()
        user = config.get("smtp_user")
        if config.get("auth") == "oauth":
            _login_oauth(server, user or config.get("address") or "", config)
        elif user:
            server.login(user, config.get("smtp_password") or "")
    except BaseException:
        _quit(server)
        raise
    return server


def _login_oauth(server: smtplib.SMTP, user: str, config: dict[str, Any]) -> None:
    """``AUTH XOAUTH2`` with the inbox's access token; a refused token answers an empty line."""
    initial = xoauth2(user, config.get("oauth_access_token") or "")

    def respond(challenge: bytes | None = None) -> str:
        return initial if challenge is None else ""  # the error challenge ends the exchange

    server.auth("XOAUTH2", respond)


def oauth_failure(config: dict[str, Any]) -> SendError | None:
    """The error of a sign-in token the app could not refresh (``oauth_error``), if any.

    ``oauth_error_kind`` "transient" (the sign-in server was unreachable) retries;
    anything else needs a new sign-in.
    """
    if config.get("auth") != "oauth" or not config.get("oauth_error"):
        return None
    transient = config.get("oauth_error_kind") == "transient"
    return SendError(
        kind=ErrorKind.TRANSIENT if transient else ErrorKind.AUTH_FAILED,
        code=config.get("oauth_error_code") or ("oauth" if transient else "invalid_grant"),
        message=str(config["oauth_error"]),
    )


def _quit(server: smtplib.SMTP) -> None:
    try:
        server.quit()
    except Exception:
        with contextlib.suppress(Exception):
            server.close()


def check_login(config: dict[str, Any], timeout: float = 20.0) -> SendError | None:
    """Connect, start TLS and log in as a send would, then quit; the error, or None."""
    try:
        server = _connect(config, timeout)
    except Exception as exc:
        return classify_smtp_error(exc)
    _quit(server)
    return None


def send_message(
    config: dict[str, Any],
    msg: EmailMessage,
    recipients: Iterable[str],
    timeout: float = 20.0,
) -> SendResult:
    """Deliver ``msg`` over SMTP; the result carries the bare Message-ID or the error."""
    recipients = list(recipients)
    envelope_from = (config.get("envelope_from") or config.get("address") or "").strip()
    message_id = normalize_message_id(str(msg.get("Message-ID") or ""))
    try:
        server = _connect(config, timeout)
    except Exception as exc:
        return SendResult(error=classify_smtp_error(exc))
    try:
        refused = server.send_message(msg, from_addr=envelope_from, to_addrs=recipients)
    except Exception as exc:
        _quit(server)
        return SendResult(error=classify_smtp_error(exc, recipients[0] if recipients else None))
    _quit(server)
    if refused:  # some recipients refused while others were accepted
        return SendResult(
            external_id=message_id,
            external_ids=(message_id,),
            extra={"refused": {k: [v[0], _text(v[1])] for k, v in refused.items()}},
        )
    return SendResult(external_id=message_id, external_ids=(message_id,))

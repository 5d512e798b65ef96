"""Sending through Microsoft Graph ``sendMail``: for Microsoft 365 tenants without SMTP AUTH.

Microsoft lets a tenant (or one mailbox) turn SMTP AUTH off; ``AUTH XOAUTH2``
is then refused with ``535 5.7.139 ... SmtpClientAuthentication is disabled``.
Graph still sends for the signed-in user: ``POST /me/sendMail``, or
``POST /users/{mailbox}/sendMail`` for a shared mailbox the user may send as.
The request body is our own MIME message in base64 (``Content-Type: text/plain``),
so Message-ID, In-Reply-To and References go out as built; Graph answers
``202 Accepted`` with no body. The bearer token is a Graph token
(``oauth_graph_token``: scope ``Mail.Send``), not the one the mail servers take.

Errors keep Graph's own words (``error.code``: ``error.message``): 401 is a
token Graph refused (reconnect), 403 a mailbox the account may not send as,
429 and 5xx pass (with ``Retry-After``), anything else is the message itself.
"""

from __future__ import annotations

import base64
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

import requests

from connectors.base import (
    DEFAULT_TIMEOUT,
    ErrorKind,
    SendError,
    SendResult,
    retry_after,
)
from connectors.download import never_reached
from connectors.email.threads import normalize_message_id

#: Graph takes a request of at most 4 MB; base64 makes the MIME a third larger.
MAX_MIME_BYTES = 3 * 1024 * 1024
#: The SMTP refusal that means "this tenant or mailbox has SMTP AUTH turned off".
SMTP_AUTH_DISABLED = ("5.7.139", "smtpclientauthentication is disabled")


def smtp_auth_disabled(message: str) -> bool:
    """True when an SMTP login refusal says SMTP AUTH is off (Graph may still send)."""
    text = message.lower()
    return any(mark in text for mark in SMTP_AUTH_DISABLED)


def sendmail_url(config: dict[str, Any]) -> str:
    """``/me/sendMail``, or ``/users/{address}/sendMail`` when the inbox's address is not
    the signed-in account's own (a shared mailbox)."""
    base = str(config.get("graph_url") or "https://graph.microsoft.com/v1.0").rstrip("/")
    address = str(config.get("address") or "").strip().lower()
    account = str(config.get("oauth_account") or "").strip().lower()
    if address and account and address != account:
        return f"{base}/users/{quote(address, safe='@')}/sendMail"
    return f"{base}/me/sendMail"


def send_message(
    http: requests.Session,
    config: dict[str, Any],
    msg: EmailMessage,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
) -> SendResult:
    """Deliver ``msg`` through Graph; the result carries the bare Message-ID or the error."""
    token = config.get("oauth_graph_token")
    if not token:
        why = config.get("oauth_graph_error") or "no Microsoft Graph token was granted"
        return SendResult(
            error=SendError(
                ErrorKind.AUTH_FAILED,
                "graph_token",
                f"Microsoft Graph cannot send for this mailbox: {why}. Sign in again.",
            )
        )
    raw = msg.as_bytes()
    if len(raw) > MAX_MIME_BYTES:
        return SendResult(
            error=SendError(
                ErrorKind.PERMANENT,
                "too_large",
                f"Microsoft Graph sends messages of at most {MAX_MIME_BYTES // 1024 // 1024} MB "
                "with their attachments; this one is larger.",
            )
        )
    try:
        resp = http.post(
            sendmail_url(config),
            data=base64.b64encode(raw),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
            timeout=timeout,
        )
    except requests.RequestException as exc:
        if never_reached(exc):
            text = f"Could not reach Microsoft Graph ({type(exc).__name__}); will retry."
            return SendResult(error=SendError(ErrorKind.TRANSIENT, "network", text))
        return SendResult(
            error=SendError(
                ErrorKind.UNKNOWN,
                "no_answer",
                f"Microsoft Graph did not answer ({type(exc).__name__}): the message may or "
                "may not have gone out.",
            )
        )
    if resp.status_code in (200, 202):
        message_id = normalize_message_id(str(msg.get("Message-ID") or ""))
        return SendResult(
            external_id=message_id, external_ids=(message_id,), extra={"sent_with": "graph"}
        )
    return SendResult(error=classify(resp))


def classify(resp: requests.Response) -> SendError:
    """A Graph error response as a classified send error, in Graph's own words."""
    try:
        error = resp.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    code = str(error.get("code") or resp.status_code)
    said = str(error.get("message") or resp.reason or "").strip()
    message = f"Microsoft Graph: {code}: {said}" if said else f"Microsoft Graph: {code}"
    status = resp.status_code
    if status == 401:
        return SendError(ErrorKind.AUTH_FAILED, code, message)
    if status == 403:
        return SendError(
            ErrorKind.AUTH_FAILED,
            code,
            message + " (the signed-in account may not send as this mailbox)",
        )
    if status == 429 or status >= 500:
        return SendError(
            ErrorKind.TRANSIENT, code, message, retry_after(resp.headers.get("Retry-After"))
        )
    return SendError(ErrorKind.PERMANENT, code, message)

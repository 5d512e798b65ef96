"""Cloud API errors (a send's answer, a ``failed`` status) as :class:`~connectors.base.SendError`."""

from __future__ import annotations

from typing import Any

from connectors.base import ErrorKind, SendError, retry_after

from .constants import (
    AUTH_CODES,
    BLOCKED_CODES,
    RATE_LIMIT_CODES,
    TRANSIENT_CODES,
    UNDELIVERABLE_CODES,
    UNSUPPORTED_CODES,
    WINDOW_CODES,
)

#: What each known code means for the agent, beside Meta's own text.
EXPLAINED = {
    131047: "More than 24 hours have passed since the customer last wrote: only an approved "
    "template can be sent now.",
    131026: "WhatsApp could not deliver the message to this number (not on WhatsApp, an old "
    "app version, or the customer has not accepted WhatsApp's terms).",
    131056: "Too many messages to this customer in a short time; sending again shortly.",
    130429: "The number's sending rate limit was reached; sending again shortly.",
    190: "The access token has expired or was revoked: reconnect the inbox with a new token.",
    368: "Meta has temporarily blocked this WhatsApp Business account for policy violations.",
    131051: "WhatsApp does not support this message type.",
}


def classify(status: int, body: Any, headers: Any = None) -> SendError:
    """A failed Graph call from its HTTP status, JSON body (``{"error": {...}}``) and headers."""
    error = body.get("error") if isinstance(body, dict) else None
    return classify_error(error if isinstance(error, dict) else {}, status, headers)


def classify_error(error: dict[str, Any], status: int = 200, headers: Any = None) -> SendError:
    """One Cloud API error object (``code``, ``title``, ``message``, ``error_data.details``).

    ``code`` of the result is Meta's code as text (``http_<status>`` without one); its
    ``message`` is Meta's own words, with what the code means to the agent where known.
    """
    headers = headers or {}
    code = _int(error.get("code"))
    data = error.get("error_data") if isinstance(error.get("error_data"), dict) else {}
    texts = [
        str(t)
        for t in (error.get("title"), error.get("message"), data.get("details"))
        if isinstance(t, str) and t.strip()
    ]
    words = " ".join(dict.fromkeys(t.rstrip(".") + "." for t in texts)) or (
        f"The WhatsApp Cloud API answered HTTP {status}."
    )
    if code in EXPLAINED:
        words = f"{EXPLAINED[code]} (Meta: {words.rstrip('.')})"
    if code in WINDOW_CODES:
        kind = ErrorKind.WINDOW_CLOSED
    elif code in UNDELIVERABLE_CODES:
        kind = ErrorKind.UNDELIVERABLE
    elif code in AUTH_CODES:
        kind = ErrorKind.AUTH_FAILED
    elif code in TRANSIENT_CODES or status >= 500 or status == 429:
        kind = ErrorKind.TRANSIENT
    elif code is None and status in (401, 403):
        kind = ErrorKind.AUTH_FAILED
    else:  # 368 (blocked), 131051 (unsupported type), 100 (bad parameter), anything unknown
        kind = ErrorKind.PERMANENT
    wait = None
    if kind is ErrorKind.TRANSIENT:
        wait = retry_after(headers.get("Retry-After"))
        if wait is None and code in RATE_LIMIT_CODES:
            wait = 60.0 if code == 131056 else None  # Meta: wait before writing that user again
    code_text = str(code) if code is not None else f"http_{status}"
    return SendError(kind=kind, code=code_text, message=words, retry_after=wait)


def is_blocked(error: SendError) -> bool:
    """True for the account restrictions (368): nothing can go out until Meta lifts them."""
    return error.code is not None and error.code.isdigit() and int(error.code) in BLOCKED_CODES


def is_unsupported(error: SendError) -> bool:
    """True for 131051, a message type WhatsApp does not take."""
    return error.code is not None and error.code.isdigit() and int(error.code) in UNSUPPORTED_CODES


def _int(value: Any) -> int | None:
    """Codes as ints (they may arrive as strings)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None

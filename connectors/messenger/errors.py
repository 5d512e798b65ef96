"""Graph API error classification for the Send API."""

from __future__ import annotations

import json
from typing import Any

from connectors.base import ErrorKind, SendError, retry_after

from .constants import (
    _AUTH_CODES,
    _RATE_LIMIT_CODES,
    _TRANSIENT_CODES,
    _UNDELIVERABLE_CODES,
    _WINDOW_CODES,
    _WINDOW_SUBCODES,
)
from .inbound import _truthy


def classify_graph_error(status: int, body: Any, headers: Any = None) -> SendError:
    """Classify a failed Graph call from its HTTP status, JSON body and headers.

    ``code`` is ``"<code>/<subcode>"`` (``"<code>"`` without a subcode, ``"http_<status>"``
    without a Graph error object); ``message`` is Meta's own text.
    """
    headers = headers or {}
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = _int_or_none(error.get("code"))
    subcode = _int_or_none(error.get("error_subcode"))
    message = (
        error.get("message") or error.get("error_user_msg") or f"Graph API answered HTTP {status}"
    )
    if code is None:
        code_text = f"http_{status}"
    else:
        code_text = f"{code}/{subcode}" if subcode is not None else str(code)

    if code in _WINDOW_CODES or subcode in _WINDOW_SUBCODES:
        kind = ErrorKind.WINDOW_CLOSED
    elif code in _UNDELIVERABLE_CODES:
        kind = ErrorKind.UNDELIVERABLE
    elif code in _AUTH_CODES:
        kind = ErrorKind.AUTH_FAILED
    elif code in _TRANSIENT_CODES or status >= 500 or status == 429:
        kind = ErrorKind.TRANSIENT
    elif code is None and status in (401, 403):
        kind = ErrorKind.AUTH_FAILED
    elif code is not None and code not in (100, 368) and _truthy(error.get("is_transient")):
        kind = ErrorKind.TRANSIENT
    else:  # 100 (incl. 2018001 and the retired tags), 368, anything unknown
        kind = ErrorKind.PERMANENT

    wait = None
    if kind is ErrorKind.TRANSIENT:
        wait = retry_after(headers.get("Retry-After"))
        if wait is None and code in _RATE_LIMIT_CODES:
            wait = _buc_wait(headers.get("X-Business-Use-Case-Usage"))
    return SendError(kind=kind, code=code_text, message=str(message), retry_after=wait)


def _int_or_none(value: Any) -> int | None:
    """Graph codes as ints (they may arrive as strings)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _buc_wait(value: Any) -> float | None:
    """Seconds until access returns, from ``X-Business-Use-Case-Usage`` (minutes there)."""
    if not value or not isinstance(value, str):
        return None
    try:
        usage = json.loads(value)
        minutes = [
            float(item.get("estimated_time_to_regain_access") or 0)
            for items in usage.values()
            for item in items
            if isinstance(item, dict)
        ]
    except (ValueError, TypeError, AttributeError):
        return None
    longest = max(minutes, default=0.0)
    return longest * 60 if longest > 0 else None

"""GBM outbound helpers: representatives, attachment content and HTTP error classification."""

from __future__ import annotations

from typing import Any

import requests

from connectors.base import (
    ErrorKind,
    OutboundAttachment,
    SendError,
    SendResult,
    retry_after,
)

from .inbound import _str


def _representative(name: Any, avatar: Any, automated: bool) -> dict[str, Any]:
    rep: dict[str, Any] = {"representativeType": "BOT" if automated else "HUMAN"}
    if name:
        rep["displayName"] = str(name)
    if avatar:
        rep["avatarImage"] = str(avatar)
    return rep


def _attachment_content(attachment: OutboundAttachment) -> tuple[dict[str, Any], str]:
    """Images as GBM ``image`` content; other files as a text link."""
    url = attachment.url or ""
    label = f"{attachment.filename}: {url}" if attachment.filename else url
    if (attachment.content_type or "").lower().startswith("image/"):
        return {"image": {"contentInfo": {"fileUrl": url, "forceRefresh": False}}}, label
    return {"text": label}, label


def _classify(resp: requests.Response) -> SendError:
    """Map a GBM error response to a SendError (``message`` is Google's)."""
    status = resp.status_code
    google_status, google_message = None, ""
    try:
        payload = resp.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        google_status = _str(payload["error"].get("status"))
        google_message = str(payload["error"].get("message") or "")
    message = google_message or f"HTTP {status} from Business Messages"
    code = google_status or str(status)
    if status == 401 or google_status == "UNAUTHENTICATED":
        return SendError(ErrorKind.AUTH_FAILED, code, f"{message} (reconnect needed)")
    if status in (403, 404) or google_status in ("PERMISSION_DENIED", "NOT_FOUND"):
        return SendError(ErrorKind.UNDELIVERABLE, code, message)
    if (
        status == 429
        or status >= 500
        or google_status in ("RESOURCE_EXHAUSTED", "UNAVAILABLE", "ABORTED")
    ):
        return SendError(
            ErrorKind.TRANSIENT, code, message, retry_after(resp.headers.get("Retry-After"))
        )
    return SendError(ErrorKind.PERMANENT, code, message)


def _failed(kind: ErrorKind, code: str, message: str) -> SendResult:
    return SendResult(error=SendError(kind, code, message))


def _is_failed_precondition(result: SendResult) -> bool:
    """400 FAILED_PRECONDITION: the device cannot render the content."""
    error = result.error
    return (
        error is not None
        and error.kind is ErrorKind.PERMANENT
        and error.code == "FAILED_PRECONDITION"
    )


def _first_arg(exc: BaseException) -> str:
    return str(exc.args[0]) if exc.args else type(exc).__name__

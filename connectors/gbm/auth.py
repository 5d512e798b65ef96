"""GBM OAuth2 tokens: service-account loading and a per-account credentials cache."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

import google.auth.exceptions
import google.auth.transport.requests
import requests
from google.oauth2 import service_account

# --------------------------------------------------------------------------- auth tokens


@dataclass
class _CachedCredentials:
    credentials: service_account.Credentials
    lock: threading.Lock


_CREDENTIALS: dict[tuple[str, str], _CachedCredentials] = {}
_CREDENTIALS_LOCK = threading.Lock()


def clear_token_cache() -> None:
    """Forget every cached access token (tests; after rotating a key)."""
    with _CREDENTIALS_LOCK:
        _CREDENTIALS.clear()


def _forget_credentials(info: dict[str, Any]) -> None:
    with _CREDENTIALS_LOCK:
        _CREDENTIALS.pop(_cache_key(info), None)


def _cache_key(info: dict[str, Any]) -> tuple[str, str]:
    return (str(info.get("client_email", "")), str(info.get("private_key_id", "")))


class _TokenRequest(google.auth.transport.requests.Request):
    """google-auth's requests transport on our session, with our timeout.

    google-auth calls the token endpoint without a timeout (its default is 120 s)
    and closes the session when the transport is garbage-collected; neither suits
    a session the connector owns.
    """

    def __init__(self, session: requests.Session, timeout: Any) -> None:
        super().__init__(session=session)
        self._timeout = timeout

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Make the request with the connector's timeout unless one is given."""
        return super().__call__(
            url,
            method=method,
            body=body,
            headers=headers,
            timeout=timeout or self._timeout,
            **kwargs,
        )

    def __del__(self) -> None:  # the session belongs to the connector
        pass


def load_service_account(value: Any) -> dict[str, Any]:
    """The service-account JSON from config (a dict or a JSON string).

    Raises ValueError when it is missing or lacks the fields google-auth needs.
    """
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError("service_account is not valid JSON") from exc
    if not isinstance(value, dict):
        raise ValueError("service_account must be the service-account JSON")
    missing = [k for k in ("client_email", "private_key", "token_uri") if not value.get(k)]
    if missing:
        raise ValueError(f"service_account lacks {', '.join(missing)}")
    return value

"""OAuth 2.0 for mailboxes: Microsoft 365 and Google, authorization code with PKCE.

Pure wire code: no database, no ``app`` import. The two providers are data
(:data:`PROVIDERS`), not branches: authorize and token URLs, scopes, the extra
authorize parameters that make each one hand out a refresh token, and the
IMAP/SMTP servers that take the access token with SASL ``XOAUTH2``. Every URL
and host can be overridden (``Provider.configured``), so a deployment in a
national cloud, or a test, points them elsewhere.

Flow:

1. :func:`new_pkce` makes a verifier and its S256 challenge; :func:`authorize_url`
   builds the consent page's address with the state and the challenge.
2. The provider redirects back with ``code`` (or ``error``); :func:`exchange_code`
   trades it, with the verifier, for a :class:`TokenSet`.
3. :func:`refresh` trades the refresh token for a new access token. Microsoft
   returns a new refresh token each time (rotation: keep the newest); Google
   usually none (the old one stays good); :func:`refresh` keeps the old one then.

Errors raise :class:`OAuthError`: ``reconnect`` is True when only a new sign-in
helps (``invalid_grant``: expired, revoked or inactive grant; ``invalid_client``:
a wrong or expired client secret; consent or MFA required), False for a passing
problem (network, 5xx, ``temporarily_unavailable``). The message keeps the
provider's own words (Microsoft's AADSTS code included).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests

from connectors.base import DEFAULT_TIMEOUT

__all__ = [
    "PROVIDERS",
    "OAuthError",
    "Provider",
    "TokenSet",
    "authorize_url",
    "exchange_code",
    "new_pkce",
    "refresh",
    "xoauth2",
]


@dataclass(frozen=True)
class Provider:
    """One identity provider and the mail servers its tokens open."""

    name: str
    label: str
    authorize_url: str  # ``{tenant}`` is replaced by the tenant (Microsoft)
    token_url: str
    scopes: tuple[str, ...]
    imap_host: str
    imap_port: int
    smtp_host: str
    smtp_port: int
    smtp_security: str
    imap_security: str = "ssl"
    authorize_params: tuple[tuple[str, str], ...] = ()
    graph_url: str | None = None  # Microsoft Graph, for sendMail
    # Consented at sign-in beside ``scopes`` but granted as a token of their own (another
    # resource): Graph's Mail.Send, for tenants that turned SMTP AUTH off.
    send_scopes: tuple[str, ...] = ()
    tenant: str = "common"

    def configured(self, **overrides: Any) -> Provider:
        """A copy with the given fields replaced (``None`` and empty values are ignored)."""
        known = {f.name for f in dataclasses.fields(self)}
        changes = {k: v for k, v in overrides.items() if k in known and v not in (None, "")}
        return dataclasses.replace(self, **changes)

    def url(self, template: str) -> str:
        """An endpoint with the tenant filled in."""
        return template.replace("{tenant}", self.tenant or "common")

    @property
    def scope(self) -> str:
        """The mail servers' scopes as the ``scope`` parameter spells them."""
        return " ".join(self.scopes)

    @property
    def consent_scope(self) -> str:
        """Every scope the admin consents to at sign-in (the send scopes too)."""
        return " ".join((*self.scopes, *self.send_scopes))

    @property
    def send_scope(self) -> str:
        """The scope of the send token (empty when the provider has none)."""
        return " ".join((*self.send_scopes, "offline_access")) if self.send_scopes else ""

    def server_config(self) -> dict[str, Any]:
        """The inbox's IMAP and SMTP settings for this provider's mailboxes (and Graph's
        address where replies may go out through it)."""
        graph = {"graph_url": self.graph_url} if self.send_scopes and self.graph_url else {}
        return {
            **graph,
            "imap_host": self.imap_host,
            "imap_port": self.imap_port,
            "imap_security": self.imap_security,
            "smtp_host": self.smtp_host,
            "smtp_port": self.smtp_port,
            "smtp_security": self.smtp_security,
        }


#: The providers Switchboard signs in with. ``openid email`` only name the account.
PROVIDERS: dict[str, Provider] = {
    "microsoft": Provider(
        name="microsoft",
        label="Microsoft 365",
        authorize_url="https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
        token_url="https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        scopes=(
            "https://outlook.office.com/IMAP.AccessAsUser.All",
            "https://outlook.office.com/SMTP.Send",
            "offline_access",
            "openid",
            "email",
        ),
        imap_host="outlook.office365.com",
        imap_port=993,
        smtp_host="smtp.office365.com",
        smtp_port=587,
        smtp_security="starttls",
        authorize_params=(("response_mode", "query"), ("prompt", "select_account")),
        graph_url="https://graph.microsoft.com/v1.0",
        send_scopes=("https://graph.microsoft.com/Mail.Send",),
    ),
    "google": Provider(
        name="google",
        label="Google",
        authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
        token_url="https://oauth2.googleapis.com/token",
        scopes=("https://mail.google.com/", "openid", "email"),
        imap_host="imap.gmail.com",
        imap_port=993,
        smtp_host="smtp.gmail.com",
        smtp_port=587,
        smtp_security="starttls",
        # offline + consent: a refresh token on every sign-in, not only the first
        authorize_params=(("access_type", "offline"), ("prompt", "consent")),
    ),
}

#: Token endpoint errors that only a new sign-in mends (RFC 6749 5.2, OpenID Connect).
RECONNECT_ERRORS = frozenset(
    {
        "invalid_grant",
        "invalid_client",
        "unauthorized_client",
        "interaction_required",
        "consent_required",
        "login_required",
        "access_denied",
        "invalid_scope",
    }
)


class OAuthError(Exception):
    """The provider refused or could not be reached; ``str(err)`` keeps its words."""

    def __init__(self, message: str, code: str = "", reconnect: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.reconnect = reconnect


@dataclass(frozen=True)
class TokenSet:
    """What a token endpoint granted."""

    access_token: str
    refresh_token: str | None
    expires_at: datetime
    scope: str = ""
    account: str | None = None  # the signed-in account's address (the id token's email)


def new_pkce() -> tuple[str, str]:
    """A PKCE verifier (43+ characters) and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(
    provider: Provider,
    client_id: str,
    redirect_uri: str,
    state: str,
    challenge: str,
    login_hint: str | None = None,
) -> str:
    """The consent page to send the admin to."""
    params = {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": provider.consent_scope,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **dict(provider.authorize_params),
    }
    if login_hint:
        params["login_hint"] = login_hint
    return provider.url(provider.authorize_url) + "?" + urlencode(params)


def exchange_code(
    http: requests.Session,
    provider: Provider,
    client_id: str,
    client_secret: str,
    code: str,
    verifier: str,
    redirect_uri: str,
    now: datetime | None = None,
) -> TokenSet:
    """Trade an authorization code (and the PKCE verifier) for tokens."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        "client_id": client_id,
        "client_secret": client_secret,
    }
    if provider.send_scopes:  # consent covered two resources: this token is the mail servers'
        data["scope"] = provider.scope
    tokens = _token_call(http, provider, data, now)
    if not tokens.refresh_token:
        raise OAuthError(
            f"{provider.label} granted no refresh token: the scopes must include "
            "offline access (sign in again and accept every permission).",
            code="no_refresh_token",
            reconnect=True,
        )
    return tokens


def refresh(
    http: requests.Session,
    provider: Provider,
    client_id: str,
    client_secret: str,
    refresh_token: str,
    now: datetime | None = None,
    scope: str | None = None,
) -> TokenSet:
    """A new access token (for ``scope``, else the mail servers'); the refresh token is
    the rotated one, else the one given."""
    data = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": client_id,
        "client_secret": client_secret,
        "scope": scope or provider.scope,
    }
    tokens = _token_call(http, provider, data, now)
    if not tokens.refresh_token:
        tokens = dataclasses.replace(tokens, refresh_token=refresh_token)
    return tokens


def _token_call(
    http: requests.Session, provider: Provider, data: dict, now: datetime | None
) -> TokenSet:
    url = provider.url(provider.token_url)
    try:
        response = http.post(
            url, data=data, headers={"Accept": "application/json"}, timeout=DEFAULT_TIMEOUT
        )
    except requests.RequestException as exc:
        raise OAuthError(f"{provider.label} sign-in server unreachable: {exc}") from exc
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.status_code >= 400 or "error" in body:
        raise _error(provider, response.status_code, body)
    access = body.get("access_token")
    if not access:
        raise OAuthError(f"{provider.label} answered without an access token.")
    at = now or datetime.now(UTC)
    try:
        lifetime = int(body.get("expires_in") or 3600)
    except (TypeError, ValueError):
        lifetime = 3600
    return TokenSet(
        access_token=str(access),
        refresh_token=body.get("refresh_token") or None,
        expires_at=at + timedelta(seconds=lifetime),
        scope=str(body.get("scope") or ""),
        account=_account(body.get("id_token")),
    )


def _error(provider: Provider, status: int, body: dict) -> OAuthError:
    code = str(body.get("error") or "")
    said = " ".join(str(body.get("error_description") or "").split())
    said = said.split(" Trace ID:")[0]  # Microsoft appends trace and correlation ids
    text = f"{code}: {said}" if code and said else (code or said or f"HTTP {status}")
    reconnect = code in RECONNECT_ERRORS
    if reconnect:
        return OAuthError(f"{provider.label} refused the sign-in: {text}", code, True)
    return OAuthError(f"{provider.label} sign-in server error: {text}", code or str(status))


def _account(id_token: Any) -> str | None:
    """The ``email`` (or ``preferred_username``) claim of an id token, for display.

    The token came straight from the token endpoint over TLS, so its signature is
    not checked (OpenID Connect Core 3.1.3.7); it only names the signed-in account.
    """
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        return None
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(claims, dict):
        return None
    account = claims.get("email") or claims.get("preferred_username")
    return str(account).strip().lower() if account else None


def xoauth2(user: str, access_token: str) -> str:
    """The SASL XOAUTH2 initial response (before base64), for IMAP and SMTP."""
    return f"user={user}\x01auth=Bearer {access_token}\x01\x01"

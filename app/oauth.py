"""Inboxes connected by signing in (OAuth): the app side of :mod:`connectors.email.oauth`.

Infrastructure beside :mod:`app.connections`: the providers as this server is
configured for them (client id and secret, tenant, endpoints: the app's
settings), the sign-in's pending state, storing the tokens on the inbox and
refreshing them before they expire.

- :func:`begin` makes the state, the PKCE verifier and the consent URL; the web
  layer keeps the pending attempt in the admin's session (:mod:`app.web.oauth`).
- :func:`complete` trades the code for tokens and connects the inbox: the one
  being reconnected (paused replies resume), the inbox that already has the
  address, or a new one. Tokens are stored sealed (:mod:`app.sealed`) in
  ``Inbox.config`` (``oauth_access_token``, ``oauth_refresh_token``; never
  returned: :func:`app.inbox.credentials.public_config` leaves out every
  ``*token*`` key) with ``oauth_expires_at`` and ``oauth_account``.
- :func:`fresh_config` is what a connector gets for an inbox that talks to its
  provider now: the access token opened, refreshed first when it expires within
  :data:`REFRESH_MARGIN`. The refresh runs under a lock (a process lock, plus
  ``SELECT ... FOR UPDATE`` on the inbox row on PostgreSQL) and re-reads the
  tokens inside it, so two workers never refresh the same grant at once and a
  rotated refresh token is always the one kept. A refusal that only a new
  sign-in mends (``invalid_grant``, revoked consent, an expired client secret)
  marks the inbox "needs reconnecting" with the provider's words and is kept in
  ``oauth_error`` (the provider is not asked again until the admin signs in);
  the connectors report it as a failed login, so replies stay queued.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
import time
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

import requests
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import channels
from app.clock import aware, now
from app.db import lock_for_update
from app.inbox.credentials import reconnect
from app.models import Inbox
from app.sealed import Unreadable, seal, unseal
from connectors.email import oauth as wire

log = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=5)  # refresh when the access token expires within this
SECRET_WARNING = timedelta(days=14)  # admins are told this long before a client secret expires
PENDING_TTL = 15 * 60  # seconds an admin has to consent
MAX_PENDING = 5  # sign-ins waiting in one browser session
RECONNECT = "Reconnect needed: "  # inbox.last_error, as the worker writes it
ENDPOINTS = (
    "authorize_url",
    "token_url",
    "graph_url",
    "imap_host",
    "imap_port",
    "imap_security",
    "smtp_host",
    "smtp_port",
    "smtp_security",
    "tenant",
)
TOKEN_KEYS = ("oauth_access_token", "oauth_refresh_token", "oauth_expires_at", "oauth_account")
GRAPH_KEYS = ("oauth_graph_token", "oauth_graph_expires_at", "oauth_graph_error")
ERROR_KEYS = ("oauth_error", "oauth_error_code")


class SignInError(Exception):
    """The sign-in cannot go on; ``str(err)`` says why, for the admin."""


# --------------------------------------------------------------------------- providers


def provider(name: str, settings: Mapping[str, Any]) -> wire.Provider:
    """The provider ``name`` with this server's endpoints; raises SignInError if unknown."""
    base = wire.PROVIDERS.get(str(name))
    if base is None:
        raise SignInError(f"No sign-in provider {name!r}.")
    prefix = base.name.upper()
    overrides: dict[str, Any] = {key: settings.get(f"{prefix}_{key.upper()}") for key in ENDPOINTS}
    for key in ("imap_port", "smtp_port"):
        if overrides[key]:
            overrides[key] = int(overrides[key])
    return base.configured(**overrides)


def client(prov: wire.Provider, settings: Mapping[str, Any]) -> tuple[str, str]:
    """The app registration's client id and secret; SignInError naming the settings if unset."""
    prefix = prov.name.upper()
    client_id = settings.get(f"{prefix}_CLIENT_ID")
    client_secret = settings.get(f"{prefix}_CLIENT_SECRET")
    if not client_id or not client_secret:
        raise SignInError(
            f"Signing in with {prov.label} needs {prefix}_CLIENT_ID and {prefix}_CLIENT_SECRET "
            "in the server's settings."
        )
    return str(client_id), str(client_secret)


def secret_expiry(prov: wire.Provider, settings: Mapping[str, Any]) -> date | None:
    """The day the app registration's client secret expires, when the server was told
    (``MICROSOFT_CLIENT_SECRET_EXPIRES`` / ``GOOGLE_CLIENT_SECRET_EXPIRES``: YYYY-MM-DD)."""
    value = settings.get(f"{prov.name.upper()}_CLIENT_SECRET_EXPIRES")
    if not value:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        log.warning("oauth: %s_CLIENT_SECRET_EXPIRES is not a date: %r", prov.name.upper(), value)
        return None


def expiring_secrets(settings: Mapping[str, Any], at: datetime) -> list[dict[str, Any]]:
    """Configured providers whose client secret expires within :data:`SECRET_WARNING`
    (or has expired): name, label, ``expires`` (ISO day) and ``days_left``."""
    out = []
    for name in wire.PROVIDERS:
        prov = provider(name, settings)
        expires = secret_expiry(prov, settings)
        if expires is None:
            continue
        days_left = (expires - at.date()).days
        if days_left <= SECRET_WARNING.days:
            out.append(
                {
                    "name": name,
                    "label": prov.label,
                    "expires": expires.isoformat(),
                    "days_left": days_left,
                }
            )
    return out


def redirect_uri(base: str, name: str) -> str:
    """The URL to register with the provider (its "redirect URI"), under our public URL."""
    return f"{base.rstrip('/')}/oauth/{name}/callback"


def providers(settings: Mapping[str, Any], base: str) -> list[dict[str, Any]]:
    """Every provider: label, whether its app is configured, the redirect URI to register,
    and when its client secret expires (``secret_expires``, ``secret_expiring``)."""
    out = []
    expiring = {e["name"] for e in expiring_secrets(settings, now())}
    for name in wire.PROVIDERS:
        prov = provider(name, settings)
        expires = secret_expiry(prov, settings)
        try:
            client(prov, settings)
            configured = True
        except SignInError:
            configured = False
        out.append(
            {
                "name": name,
                "label": prov.label,
                "configured": configured,
                "redirect_uri": redirect_uri(base, name),
                "secret_expires": expires.isoformat() if expires else None,
                "secret_expiring": name in expiring,
            }
        )
    return out


def _adapter(name: str) -> type[channels.Channel]:
    for adapter in channels.all_channels():
        if name in adapter.sign_in:
            return adapter
    raise SignInError(f"No channel signs in with {name!r}.")


# --------------------------------------------------------------------------- signing in


def begin(
    name: str,
    settings: Mapping[str, Any],
    base: str,
    inbox: Inbox | None = None,
    address: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """The consent URL and the pending attempt to keep in the admin's session.

    ``inbox``: the inbox to reconnect (None: a new one); ``address``: the mailbox
    to open when it is not the signed-in account's own (a shared mailbox).
    """
    prov = provider(name, settings)
    client_id, _ = client(prov, settings)
    adapter = _adapter(prov.name)
    if inbox is not None and inbox.channel != adapter.name:
        raise SignInError("This inbox is not connected by signing in.")
    if inbox is not None and not address:
        address = (inbox.config or {}).get("address")
    verifier, challenge = wire.new_pkce()
    state = secrets.token_urlsafe(32)
    pending = {
        "state": state,
        "provider": prov.name,
        "verifier": verifier,
        "inbox": inbox.id if inbox is not None else None,
        "address": (address or "").strip() or None,
        "at": time.time(),
    }
    url = wire.authorize_url(
        prov, client_id, redirect_uri(base, prov.name), state, challenge, login_hint=address
    )
    return url, pending


def keep_pending(stored: list | None, pending: dict[str, Any]) -> list[dict[str, Any]]:
    """The session's pending sign-ins with ``pending`` added (stale and excess ones dropped)."""
    fresh = [p for p in (stored or []) if isinstance(p, dict) and not _stale(p)]
    return [*fresh, pending][-MAX_PENDING:]


def take_pending(
    stored: list | None, name: str, state: str | None
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The pending sign-in the provider's ``state`` names (once), and the rest to keep."""
    found = None
    rest = []
    for p in stored or []:
        if not isinstance(p, dict) or _stale(p):
            continue
        if (
            found is None
            and state
            and p.get("provider") == name
            and secrets.compare_digest(str(p.get("state")), str(state))
        ):
            found = p
        else:
            rest.append(p)
    return found, rest


def _stale(pending: dict) -> bool:
    return time.time() - float(pending.get("at") or 0) > PENDING_TTL


def complete(
    session: Session,
    pending: dict[str, Any],
    code: str,
    settings: Mapping[str, Any],
    base: str,
    http: requests.Session,
) -> tuple[Inbox, int]:
    """Trade the code for tokens and connect the inbox; returns it and the replies resumed.

    Raises :class:`SignInError` or :class:`connectors.email.oauth.OAuthError`;
    nothing is stored then. The caller commits.
    """
    prov = provider(pending["provider"], settings)
    client_id, client_secret = client(prov, settings)
    adapter = _adapter(prov.name)
    tokens = wire.exchange_code(
        http,
        prov,
        client_id,
        client_secret,
        code,
        pending["verifier"],
        redirect_uri(base, prov.name),
    )
    graph = _graph_tokens(http, prov, client_id, client_secret, tokens)
    if graph is not None and graph.refresh_token:
        tokens = dataclasses.replace(tokens, refresh_token=graph.refresh_token)  # the newest
    account = tokens.account or ""
    address = pending.get("address") or account
    if not address:
        raise SignInError(f"{prov.label} did not say which mailbox signed in; give its address.")
    values = adapter.sign_in_config(prov.name, prov.server_config(), address, account)
    resumed = 0
    inbox = session.get(Inbox, pending["inbox"]) if pending.get("inbox") else None
    if pending.get("inbox") and inbox is None:
        raise SignInError("The inbox being reconnected no longer exists.")
    named = {f.name for f in adapter.fields}
    own = {k: v for k, v in values.items() if k not in named}  # the connector's own (Graph)
    config = {**adapter.clean_config({k: v for k, v in values.items() if k in named}), **own}
    route_key, alt_route_key = adapter.route_keys(config)
    if inbox is None:
        inbox = session.scalars(
            sa.select(Inbox)
            .where(Inbox.channel == adapter.name, Inbox.route_key == route_key)
            .order_by(Inbox.active.desc(), Inbox.id)
        ).first()
    if inbox is None:
        inbox = Inbox(
            channel=adapter.name,
            name=address,
            config=config,
            settings=adapter.inbox_settings(config),
            state={},
        )
        session.add(inbox)
    else:
        kept = {k: v for k, v in (inbox.config or {}).items() if k not in ERROR_KEYS}
        if kept.get("imap_folder"):
            config["imap_folder"] = kept["imap_folder"]
        changes = {k: v for k, v in config.items() if kept.get(k) != v}
        changes |= {k: None for k in ("smtp_password", "imap_password") if kept.get(k)}
        inbox.config = kept
        resumed = reconnect(session, inbox, changes)
        inbox.active = True
    inbox.route_key, inbox.alt_route_key = route_key, alt_route_key
    inbox.needs_reconnect, inbox.last_error = False, None
    kept = {k: v for k, v in (inbox.config or {}).items() if k not in GRAPH_KEYS}
    inbox.config = {**kept, **_sealed(settings, tokens), **_graph_sealed(settings, prov, graph)}
    session.flush()
    return inbox, resumed


def _graph_tokens(
    http: requests.Session,
    prov: wire.Provider,
    client_id: str,
    client_secret: str,
    tokens: wire.TokenSet,
) -> wire.TokenSet | wire.OAuthError | None:
    """The send token (Graph's ``Mail.Send``) from the grant's refresh token, where the
    provider has one; its refusal is kept (SMTP may still send), None without one."""
    if not prov.send_scopes or not tokens.refresh_token:
        return None
    try:
        return wire.refresh(
            http, prov, client_id, client_secret, tokens.refresh_token, now(), prov.send_scope
        )
    except wire.OAuthError as exc:
        log.warning("oauth: no Graph token for sending: %s", exc)
        return exc


def _graph_sealed(
    settings: Mapping[str, Any], prov: wire.Provider, graph: wire.TokenSet | wire.OAuthError | None
) -> dict[str, Any]:
    if graph is None:
        return {}
    if isinstance(graph, wire.OAuthError):
        return {"oauth_graph_error": str(graph)}
    return {
        "oauth_graph_token": seal(settings, graph.access_token),
        "oauth_graph_expires_at": graph.expires_at.isoformat(),
    }


def _sealed(settings: Mapping[str, Any], tokens: wire.TokenSet) -> dict[str, Any]:
    return {
        "oauth_access_token": seal(settings, tokens.access_token),
        "oauth_refresh_token": seal(settings, tokens.refresh_token or ""),
        "oauth_expires_at": tokens.expires_at.isoformat(),
        "oauth_account": tokens.account,
    }


# --------------------------------------------------------------------------- tokens

_locks: dict[int, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(inbox_id: int) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(inbox_id, threading.Lock())


def _expiring(config: dict, at: datetime) -> bool:
    """True when the mail servers' token (or the Graph send token, where there is one)
    expires within :data:`REFRESH_MARGIN`."""
    keys = ["oauth_expires_at"]
    if config.get("oauth_graph_expires_at"):
        keys.append("oauth_graph_expires_at")
    for key in keys:
        try:
            expires = aware(datetime.fromisoformat(str(config.get(key))))
        except ValueError:
            return True
        if expires - at < REFRESH_MARGIN:
            return True
    return False


def _opened(config: dict, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The connector's view: the access token in the clear, no refresh token."""
    out = {k: v for k, v in config.items() if k != "oauth_refresh_token"}
    try:
        out["oauth_access_token"] = unseal(settings, config.get("oauth_access_token"))
        if config.get("oauth_graph_token"):
            out["oauth_graph_token"] = unseal(settings, config["oauth_graph_token"])
    except Unreadable as exc:
        out["oauth_error"] = f"{exc}: sign in again."
    return out


def fresh_config(
    session: Session, inbox: Inbox, settings: Mapping[str, Any], http: requests.Session
) -> dict[str, Any]:
    """The inbox's settings to talk to its provider now (see the module docstring).

    Settings without ``auth: oauth`` come back as stored. A refresh commits the
    session (the new tokens, or the inbox marked "needs reconnecting").
    """
    config = dict(inbox.config or {})
    if config.get("auth") != "oauth":
        return config
    if config.get("oauth_error") or not _expiring(config, now()):
        return _opened(config, settings)
    with _lock(inbox.id):
        session.commit()  # the row lock below starts a transaction of its own
        row = session.scalars(
            lock_for_update(session, sa.select(Inbox).where(Inbox.id == inbox.id)),
            execution_options={"populate_existing": True},
        ).one()
        config = dict(row.config or {})
        if config.get("oauth_error") or not _expiring(config, now()):
            session.commit()  # another worker refreshed while this one waited
            return _opened(config, settings)
        try:
            prov = provider(config.get("oauth_provider") or "", settings)
            client_id, client_secret = client(prov, settings)
            refresh_token = unseal(settings, config.get("oauth_refresh_token")) or ""
            tokens = wire.refresh(http, prov, client_id, client_secret, refresh_token, now())
        except wire.OAuthError as exc:
            if not exc.reconnect:  # the provider may answer next time: retried, not marked
                session.rollback()
                log.warning("oauth: inbox %s: refresh failed: %s", inbox.id, exc)
                return {
                    **_opened(config, settings),
                    "oauth_error": str(exc),
                    "oauth_error_code": exc.code,
                    "oauth_error_kind": "transient",
                }
            return _needs_reconnect(session, row, config, str(exc), exc.code, settings)
        except (SignInError, Unreadable) as exc:
            return _needs_reconnect(session, row, config, str(exc), "config", settings)
        if config.get("oauth_graph_expires_at"):
            graph = _graph_tokens(http, prov, client_id, client_secret, tokens)
            if isinstance(graph, wire.TokenSet):
                tokens = dataclasses.replace(
                    tokens, refresh_token=graph.refresh_token or tokens.refresh_token
                )
                config.update(_graph_sealed(settings, prov, graph))
                config.pop("oauth_graph_error", None)
            elif graph is not None and config.get("send_via") == "graph":
                if graph.reconnect:  # replies have no other way out
                    return _needs_reconnect(session, row, config, str(graph), graph.code, settings)
                # passing: the old Graph token stays, and the next use tries again
            elif graph is not None:  # SMTP sends; Graph is not asked again until a sign-in
                for key in GRAPH_KEYS:
                    config.pop(key, None)
                config["oauth_graph_error"] = str(graph)
        config.update(_sealed(settings, tokens))
        config["oauth_account"] = tokens.account or config.get("oauth_account")
        row.config = config
        session.commit()
        log.info("oauth: inbox %s: access token refreshed", inbox.id)
        return _opened(config, settings)


def _needs_reconnect(
    session: Session,
    row: Inbox,
    config: dict,
    message: str,
    code: str,
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    """Keep the refusal; the inbox needs a new sign-in (replies wait, polling reports it)."""
    config.update(oauth_error=message, oauth_error_code=code or "invalid_grant")
    row.config = config
    row.needs_reconnect = True
    row.last_error = RECONNECT + message
    row.last_error_at = now()
    session.commit()
    log.warning("oauth: inbox %s needs a new sign-in: %s", row.id, message)
    return _opened(config, settings)

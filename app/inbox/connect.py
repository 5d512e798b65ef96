"""Connecting, checking, repairing and disconnecting inboxes; their connection health. No Flask.

The channel's adapter says what its settings are, checks them live against the
provider (``Channel.check``) and configures the provider's side
(``Channel.provision``); this module holds the order of things:

- :func:`create`: validate the settings, check them live (refused: nothing is
  stored), store the inbox, then provision. A provisioning failure keeps the
  inbox: its checks say what to set by hand (the ``setup`` items show how).
  Settings naming a disconnected inbox's route (the same Page, number, address)
  connect that inbox again, with its history.
- :func:`update_config`: rotate or change settings; a secret left empty keeps the
  stored one. Checked first (refused: the old settings stay); accepted, it clears
  "needs reconnecting" and makes the paused replies due at once.
- :func:`disconnect`: the inbox stops taking webhooks (they are acknowledged and
  ignored) and sending; its conversations stay readable.
- health in ``Inbox.state``: the last send, the provider's verification handshake,
  the last check (:func:`health` is what the admin inbox object shows).

Connectors are built by the caller (``build(channel, config)``, the web layer's
:mod:`app.connections`), so provider base URLs stay the app's settings.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app import channels
from app.channels import InvalidConfig
from app.channels.base import Check
from app.clock import aware, iso, now
from app.inbox.credentials import reconnect
from app.inbox.health import inbox_recovered
from app.models import Inbox
from connectors import base as cb

Build = Callable[[str, dict], cb.Connector]

#: A send is stamped on the inbox at most this often (not one UPDATE per reply).
SENT_STAMP_EVERY = timedelta(minutes=1)


class CheckFailed(Exception):
    """The provider refused the settings: ``checks`` says which check, and why."""

    def __init__(self, checks: list[Check]) -> None:
        super().__init__("; ".join(c.message for c in checks if not c.ok))
        self.checks = checks


def passed(checks: list[Check]) -> bool:
    """True when every check passed (warnings pass)."""
    return all(c.ok for c in checks)


def _adapter(channel: Any) -> type[channels.Channel]:
    try:
        return channels.get(str(channel or ""))
    except KeyError:
        raise InvalidConfig({"channel": "is not a channel this server knows"}) from None


def _same_route(session, adapter, route_key: str, other_than: int | None = None) -> Inbox | None:
    q = sa.select(Inbox).where(Inbox.channel == adapter.name, Inbox.route_key == route_key)
    if other_than is not None:
        q = q.where(Inbox.id != other_than)
    return session.scalars(q.order_by(Inbox.active.desc(), Inbox.id)).first()


def _record_check(inbox: Inbox, checks: list[Check]) -> None:
    """Stamp the check on the inbox and keep what the checks found out (``Check.learned``)."""
    learned = {k: v for c in checks if c.ok and c.learned for k, v in c.learned.items()}
    if learned and any((inbox.config or {}).get(k) != v for k, v in learned.items()):
        inbox.config = {**(inbox.config or {}), **learned}
    state = dict(inbox.state or {})
    state["last_check"] = {"at": iso(now()), "ok": passed(checks)}
    inbox.state = state


def create(
    session, channel: Any, name: Any, values: Any, build: Build, base: str
) -> tuple[Inbox, list[Check]]:
    """A new inbox (or a disconnected one connected again): checked, stored, provisioned.

    Raises :class:`InvalidConfig` (per field, ``name`` and ``channel`` included) or
    :class:`CheckFailed`; returns the inbox (flushed, not committed) and every check,
    provisioning's included.
    """
    adapter = _adapter(channel)
    problems: dict[str, str] = {}
    name = str(name or "").strip()
    if not name:
        problems["name"] = "is required"
    elif len(name) > Inbox.name.type.length:
        problems["name"] = f"is longer than {Inbox.name.type.length} characters"
    config: dict = {}
    if not isinstance(values, dict):
        problems["config"] = "must be an object of settings"
    else:
        try:
            config = adapter.clean_config(values)
        except InvalidConfig as exc:
            problems.update(adapter.by_field(exc.fields))
    if problems:
        raise InvalidConfig(problems)
    route_key, alt_route_key = adapter.route_keys(config)
    existing = _same_route(session, adapter, route_key)
    checks = _vetted(adapter, config, build, existing)
    inbox = existing or Inbox(channel=adapter.name, settings={}, state={})
    inbox.name, inbox.config = name, config
    inbox.route_key, inbox.alt_route_key = route_key, alt_route_key
    inbox.settings = {**(inbox.settings or {}), **adapter.inbox_settings(config)}
    inbox.active, inbox.needs_reconnect, inbox.last_error = True, False, None
    if existing is not None:  # connected again with settings that passed: its incident ends
        inbox_recovered(session, existing)
    inbox.state = {k: v for k, v in (inbox.state or {}).items() if k != "disconnected_at"}
    if existing is None:
        session.add(inbox)
    session.flush()
    checks += adapter.provision(build(adapter.name, config), inbox, base)
    _record_check(inbox, checks)
    return inbox, checks


def _vetted(adapter, config: dict, build: Build, same_route: Inbox | None) -> list[Check]:
    """The live checks of settings about to be stored; refused when another active inbox
    has their route (:class:`InvalidConfig`) or the provider refuses them (:class:`CheckFailed`)."""
    if same_route is not None and same_route.active:
        why = f"is already connected as the inbox {same_route.name!r} (id {same_route.id})"
        raise InvalidConfig({adapter.route_field: why})
    checks = adapter.check(build(adapter.name, config))
    if not passed(checks):
        raise CheckFailed(checks)
    return checks


def update_config(
    session, inbox: Inbox, values: Any, build: Build, base: str
) -> tuple[int, list[Check]]:
    """Change an inbox's settings (rotate credentials); returns (paused replies resumed, checks).

    Only the settings given change; a secret given empty keeps the stored one.
    Raises :class:`InvalidConfig` or :class:`CheckFailed` (nothing changes then).
    """
    adapter = _adapter(inbox.channel)
    if not isinstance(values, dict):
        raise InvalidConfig({"config": "must be an object of settings"})
    fields = {f.name: f for f in adapter.fields}
    unknown = {k: "unknown setting" for k in values if k not in fields}
    if unknown:
        raise InvalidConfig(unknown)
    stored = dict(inbox.config or {})
    merged = {k: v for k, v in stored.items() if k in fields}
    for key, value in values.items():
        if fields[key].secret and (value is None or (isinstance(value, str) and not value.strip())):
            continue  # write-only: an empty secret keeps the stored one
        merged[key] = value
    try:
        config = adapter.clean_config(merged)
    except InvalidConfig as exc:
        raise InvalidConfig(adapter.by_field(exc.fields)) from None
    route_key, alt_route_key = adapter.route_keys(config)
    other = _same_route(session, adapter, route_key, other_than=inbox.id)
    checks = _vetted(adapter, config, build, other)
    kept = {k: v for k, v in stored.items() if k not in fields}  # the connector's own
    changes = {k: v for k, v in config.items() if stored.get(k) != v}
    changes |= {k: None for k in stored if k in fields and k not in config}
    resumed = reconnect(session, inbox, changes)
    if adapter.handshake_field in changes:  # the provider must verify the new token
        inbox.state = {k: v for k, v in (inbox.state or {}).items() if k != "webhook_verified_at"}
    inbox.config = {**kept, **config}
    inbox.route_key, inbox.alt_route_key = route_key, alt_route_key
    inbox.settings = {**(inbox.settings or {}), **adapter.inbox_settings(config)}
    session.flush()
    checks += adapter.provision(build(adapter.name, inbox.config), inbox, base)
    _record_check(inbox, checks)
    return resumed, checks


def check(inbox: Inbox, build: Build, config: dict | None = None) -> list[Check]:
    """The live checks of a stored inbox, plus the provider's handshake when it takes one.

    ``config``: the settings to check with, when they differ from the stored ones (a
    sign-in token refreshed just now); else the inbox's own.
    """
    adapter = _adapter(inbox.channel)
    checks = adapter.check(
        build(inbox.channel, dict(inbox.config or {}) if config is None else config)
    )
    if adapter.takes_handshake():
        verified = (inbox.state or {}).get("webhook_verified_at")
        if verified:
            checks.append(Check("webhook", True, f"The provider verified our URL at {verified}."))
        else:
            checks.append(Check("webhook", True, adapter.waiting_for_handshake, warning=True))
    _record_check(inbox, checks)
    return checks


def disconnect(inbox: Inbox) -> None:
    """Stop the inbox: webhooks for it are acknowledged and ignored, nothing is sent.

    Conversations and messages stay (readable); adding the same route again
    connects this inbox again.
    """
    inbox.active = False
    state = dict(inbox.state or {})
    state["disconnected_at"] = iso(now())
    inbox.state = state


# --------------------------------------------------------------------------- health


def handshake_received(inbox: Inbox, at: datetime | None = None) -> None:
    """The provider's subscription handshake arrived with this inbox's token."""
    state = dict(inbox.state or {})
    state["webhook_verified_at"] = iso(at or now())
    inbox.state = state


def mark_sent(inbox: Inbox, at: datetime | None = None) -> None:
    """A reply went out through the inbox (stamped at most every :data:`SENT_STAMP_EVERY`)."""
    at = at or now()
    last = (inbox.state or {}).get("last_sent_at")
    if last and at - aware(datetime.fromisoformat(last)) < SENT_STAMP_EVERY:
        return
    inbox.state = {**(inbox.state or {}), "last_sent_at": iso(at)}


def health(inbox: Inbox) -> dict:
    """The inbox's connection health, as the admin inbox object shows it (``health``)."""
    state = inbox.state or {}
    try:
        adapter = channels.get(inbox.channel)
    except KeyError:
        adapter = None
    handshake = bool(adapter and adapter.takes_handshake())
    verified = state.get("webhook_verified_at")
    return {
        "active": inbox.active,
        "needs_reconnect": inbox.needs_reconnect,
        "last_event_at": iso(inbox.last_event_at),
        "last_sent_at": state.get("last_sent_at"),
        "last_error": inbox.last_error,
        "last_error_at": iso(inbox.last_error_at),
        "last_check": state.get("last_check"),
        "webhook": {
            "handshake": handshake,
            "verified_at": verified,
            "waiting": adapter.waiting_for_handshake if handshake and not verified else None,
        },
    }

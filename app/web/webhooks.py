"""Webhooks the providers call: route, authenticate, store, answer: one view for all.

The URLs come from the channel adapters (``webhook_paths``), each answered as the
adapter's :class:`~app.channels.base.Webhook` says; the wire formats come from the
connectors' webhook contract (``connectors.base.Connector``: handshake, route keys,
verification, parsing). Every request follows the same order: the handshake, if
the URL takes one; route the request to inboxes of the adapter's channel; verify
it (a forged request gets 403, or what the URL answers instead, and stores
nothing); store the raw body in the intake (committed before we answer 2xx),
threaded at once when this process is idle; answer as the provider wants. The
intake parses stored bodies with the adapter's ``parse_stored``.

Bodies are read with the connectors' strict readers (``connectors.base.read_json``,
``routing_key``): a routing value reaches SQL only as a short string, and a body
that cannot be read never answers 5xx. Unsigned, it gets 400 (or 403 where the
signature is checked first); authentic but malformed, it is logged, acknowledged
so the provider does not retry forever, and kept in the intake as ``failed``.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify, request

from app import channels
from app.channels import Channel
from app.channels.base import Answer, Webhook, pack
from app.connections import build_connector
from app.extensions import csrf, db, limiter
from app.inbox.connect import handshake_received
from app.inbox.receipts import awaiting_id
from app.models import Inbox, Message
from app.runtime import intake
from connectors.base import UnreadableBody

log = logging.getLogger("switchboard.webhooks")

bp = Blueprint("webhooks", __name__)
csrf.exempt(bp)
limiter.exempt(bp)

#: Route keys looked up per query (PostgreSQL takes at most 65,535 parameters).
MAX_PAGES = 1000
TOKEN_LENGTH = Inbox.inbound_token.type.length
#: How long another process's change to an inbox (its secret, a disconnection) may take to
#: reach this process's routes; a change made in this process applies at once.
ROUTE_SECONDS = 5.0


# --------------------------------------------------------------------------- helpers


def same(a: str | None, b: str | None) -> bool:
    """Constant-time string comparison that is False for missing values."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode(), b.encode())


def request_url() -> str:
    """The URL the provider called: ``PUBLIC_URL`` + path (behind proxies), else the request's."""
    public = current_app.config.get("PUBLIC_URL")
    if public:
        full = request.full_path if request.query_string else request.path
        return public.rstrip("/") + full
    return request.url


def respond(answer: Answer):
    """The HTTP answer: JSON for a dict body, else text of the answer's content type."""
    if isinstance(answer.body, dict):
        return jsonify(answer.body), answer.status
    return answer.body, answer.status, {"Content-Type": answer.content_type}


_OF: dict[str, sa.Select] = {}


def _of(adapter: type[Channel]):
    """The inboxes of the adapter's channel (a query to narrow, built once per channel)."""
    q = _OF.get(adapter.name)
    if q is None:
        q = _OF[adapter.name] = sa.select(Inbox).where(Inbox.channel == adapter.name)
    return q


# --------------------------------------------------------------------------- route cache


@dataclass
class Route:
    """What a webhook needs of an inbox: its keys, whether it is connected, its verifier.

    Kept per route key for :data:`ROUTE_SECONDS` (a query and an ORM object per
    request were most of a single webhook's cost), and dropped as soon as this
    process writes to the inboxes table.
    """

    id: int
    channel: str
    active: bool
    route_key: str | None
    alt_route_key: str | None
    inbound_token: str | None
    config: dict
    _connector: object = field(default=None, repr=False)

    @classmethod
    def of(cls, inbox: Inbox) -> Route:
        return cls(
            inbox.id,
            inbox.channel,
            bool(inbox.active),
            inbox.route_key,
            inbox.alt_route_key,
            inbox.inbound_token,
            dict(inbox.config or {}),
        )

    def connector(self):
        if self._connector is None:
            self._connector = build_connector(self.channel, self.config)
        return self._connector


_routes: dict[tuple, tuple[float, list[Route]]] = {}
_routes_guard = threading.Lock()


def _forget_routes() -> None:
    with _routes_guard:
        _routes.clear()


@sa.event.listens_for(sa.engine.Engine, "after_cursor_execute")
def _inbox_written(conn, _cursor, statement, _params, _context, _executemany) -> None:
    """A write to the inboxes table: forget the routes now and again at its commit."""
    if "inboxes" in statement and statement.lstrip()[:6].upper() != "SELECT":
        conn.info["sb_inboxes_written"] = True
        _forget_routes()


@sa.event.listens_for(sa.engine.Engine, "commit")
def _inbox_committed(conn) -> None:
    if conn.info.pop("sb_inboxes_written", False):
        _forget_routes()


def _cached(key: tuple, find) -> list[Route]:
    """The routes of ``key``, found (``find()``: inboxes) at most ROUTE_SECONDS ago."""
    now = time.monotonic()
    hit = _routes.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    found = [Route.of(inbox) for inbox in find()]
    with _routes_guard:
        if len(_routes) > 10_000:
            _routes.clear()
        _routes[key] = (now + ROUTE_SECONDS, found)
    return found


def _keep(
    adapter: type[Channel], hook: Webhook, raw: bytes, args: dict, inbox_ids: list[int]
) -> intake.DrainResult | None:
    """Store the verified body (with the URL's kept arguments) in the intake; thread it
    now when this process is idle."""
    body = pack({a: args[a] for a in hook.args if a in args}, raw) if hook.args else raw
    with intake.receiving():
        return intake.accept(intake.store(adapter.stream(hook.kind), body, inbox_ids))


def _handshake(adapter: type[Channel], raw: bytes, refused: Answer):
    """The provider's subscription check: echo its answer when an inbox owns the token."""
    shake = adapter.connector().webhook_handshake(raw, request.args)
    if shake is None:
        return None
    token, answer = shake
    inboxes = db.session.scalars(_of(adapter).where(Inbox.active.is_(True)))
    owners = [i for i in inboxes if adapter.connector().accepts_handshake(i.config or {}, token)]
    if owners:
        for inbox in owners:  # "waiting for the verification call" turns green
            handshake_received(inbox)
        db.session.commit()
        return answer, 200, {"Content-Type": "text/plain; charset=utf-8"}
    log.warning("%s: handshake with an unknown token", adapter.name)
    return respond(refused)


# --------------------------------------------------------------------------- routing


def _by_message(adapter: type[Channel], hook: Webhook, sid: str, args: dict) -> Route | None:
    """A receipt's inbox: the one that sent the message (its provider id, else our ``ref``)."""
    msg = None
    if sid:
        msg = db.session.scalars(
            sa.select(Message)
            .join(Inbox, Inbox.id == Message.inbox_id)
            .where(Inbox.channel == adapter.name, Message.provider_id == sid)
        ).first()
    msg = msg or awaiting_id(db.session, args.get(hook.by_message), sid)
    inbox = db.session.get(Inbox, msg.inbox_id) if msg is not None else None
    return Route.of(inbox) if inbox is not None and inbox.channel == adapter.name else None


def _routed(adapter: type[Channel], hook: Webhook, keys: list[str], args: dict) -> list[Route]:
    """:func:`_find` of the route keys, kept a few seconds (not for receipts)."""
    if hook.by_message:
        return _find(adapter, hook, keys, args)
    key = (adapter.name, hook.by_token, hook.every_inbox, tuple(keys))
    return _cached(key, lambda: _find_inboxes(adapter, hook, keys))


def _find(adapter: type[Channel], hook: Webhook, keys: list[str], args: dict) -> list[Route]:
    """The inboxes the route keys name: every one, or the first key's (its alternative
    route key first), or the one that sent a receipt's message."""
    if hook.by_message:
        inbox = _by_message(adapter, hook, keys[0] if keys else "", args)
        if inbox is not None:
            return [inbox]
        keys = keys[1:]
    return [Route.of(inbox) for inbox in _find_inboxes(adapter, hook, keys)]


def _find_inboxes(adapter: type[Channel], hook: Webhook, keys: list[str]) -> list[Inbox]:
    """The inboxes the route keys name (see :func:`_routed`)."""
    q = _of(adapter)
    if hook.by_token:
        keys = [k for k in keys if len(k) <= TOKEN_LENGTH]
        found = db.session.scalars(q.where(Inbox.inbound_token.in_(keys))) if keys else []
        return [i for i in found if any(same(k, i.inbound_token) for k in keys)][:1]
    keys = [k for k in keys if k]
    found = [
        inbox
        for at in range(0, len(keys), MAX_PAGES)
        for some in [keys[at : at + MAX_PAGES]]
        for inbox in db.session.scalars(
            q.where(
                Inbox.route_key.in_(some)
                if hook.every_inbox
                else sa.or_(Inbox.route_key.in_(some), Inbox.alt_route_key.in_(some))
            )
        )
    ]
    # a connected inbox wins over a disconnected one with the same key; a disconnected
    # one is still routed (its bodies are verified, acknowledged and ignored)
    found.sort(key=lambda inbox: not inbox.active)
    if hook.every_inbox:
        return found
    for key in keys:
        for column in ("alt_route_key", "route_key"):
            for inbox in found:
                if getattr(inbox, column) == key:
                    return [inbox]
    return []


# --------------------------------------------------------------------------- the view


def webhook(adapter: type[Channel], hook: Webhook, **url_args: str):
    """Answer one webhook request as ``hook`` says (see the module docstring)."""
    connector = adapter.connector()
    raw = request.get_data(cache=True)
    args = {**request.args.to_dict(), **url_args}
    if hook.handshake is not None and (request.method == "GET" or "GET" not in hook.methods):
        answer = _handshake(adapter, raw, hook.handshake)
        if answer is not None:
            return answer
        if request.method == "GET":  # a GET is only ever the handshake
            log.warning("%s: verification with a wrong token or mode", adapter.name)
            return respond(hook.handshake)
    url = request_url()

    def verifies(inbox: Route) -> bool:
        return hook.by_token or inbox.connector().verify_webhook(raw, url, request.headers)

    try:
        keys = connector.webhook_route_keys(raw, args, hook.kind)
    except UnreadableBody as exc:
        everyone = [] if hook.by_token else map(Route.of, db.session.scalars(_of(adapter)))
        signed = [i.id for i in everyone if verifies(i)]
        if not signed:
            log.warning("%s: unreadable body refused (%s)", adapter.name, exc)
            return respond(hook.unsigned_unreadable)
        log.warning("%s: signed body cannot be read (%s); kept as failed", adapter.name, exc)
        _keep(adapter, hook, raw, args, sorted(signed))
        return respond(hook.malformed)
    # Before the signature is checked, only the first keys are looked up.
    routes = _routed(adapter, hook, keys[:MAX_PAGES], args)
    if not routes and hook.unknown is not None:
        log.warning("%s: no inbox for route keys %s", adapter.name, keys[:20])
        return respond(hook.unknown)
    candidates = routes or [Route.of(i) for i in db.session.scalars(_of(adapter))]
    verified = [i for i in candidates if verifies(i)]
    if not verified:
        log.warning("%s: bad or missing signature (%d bytes)", adapter.name, len(raw))
        return respond(hook.forged)
    if len(keys) > MAX_PAGES:  # authentic: route the other keys too, each verified
        routes = _routed(adapter, hook, keys, args)
        verified = [i for i in routes if verifies(i)]
    routed_ids = {i.id for i in routes}
    ids = sorted(i.id for i in verified if i.id in routed_ids and i.active)
    if not ids:
        if any(i.id in routed_ids for i in verified):
            log.info("%s: a body for a disconnected inbox acknowledged, ignored", adapter.name)
        else:
            log.warning("%s: events for unknown route keys %s ignored", adapter.name, keys[:20])
        return respond(hook.stored(intake.DrainResult()))
    if hook.blank is not None and not raw.strip():
        return respond(hook.blank)
    return respond(hook.stored(_keep(adapter, hook, raw, args, ids)))


# --------------------------------------------------------------------------- routes


def _route(state, adapter: type[Channel], path: str, hook: Webhook) -> None:
    """Answer ``path`` (``{name}`` placeholders become URL variables) as ``hook`` says."""

    def endpoint(**kwargs):
        return webhook(adapter, hook, **kwargs)

    name = f"{adapter.name}_{hook.kind or 'webhook'}"
    endpoint.__name__ = name
    state.add_url_rule(
        path.replace("{", "<").replace("}", ">"), name, endpoint, methods=hook.methods
    )


@bp.record
def _channel_routes(state) -> None:
    """Each app gets the routes of the channels registered when it registers the blueprint."""
    for adapter in channels.all_channels():
        for path, hook in zip(adapter.webhook_paths, adapter.webhooks, strict=True):
            _route(state, adapter, path, hook)

"""Webhooks the providers call: route, authenticate, store, answer.

The URLs come from the channel adapters (``webhook_paths``, answered as their
``webhook_views`` say); the wire formats from the connectors' webhook contract
(``connectors.base.Connector``: handshake, route keys, verification, parsing).
Every view follows the same order: route the request to inboxes of the adapter's
channel, verify it (a forged request gets 403 and stores nothing), store the raw
body in the intake (committed before we answer 2xx), answer as the provider wants.
The intake parses stored bodies with the adapter's ``parse_stored``.

Bodies are read with the connectors' strict readers (``connectors.base.read_json``,
``routing_key``): a routing value reaches SQL only as a short string, and a body
that cannot be read never answers 5xx. Unsigned, it gets 400 (or 403 where the
signature is checked first); authentic but malformed, it is logged, acknowledged
so the provider does not retry forever, and kept in the intake as ``failed``.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
from collections.abc import Callable
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify, request

from app import channels
from app.channels import Channel
from app.clock import now
from app.connections import connector_for
from app.extensions import csrf, db, limiter
from app.inbox.ingest import ingest
from app.models import Inbox, Message
from app.runtime import intake
from connectors.base import UnreadableBody, routing_key
from connectors.sms import get_provider

log = logging.getLogger("switchboard.webhooks")

bp = Blueprint("webhooks", __name__)
csrf.exempt(bp)
limiter.exempt(bp)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
#: Route keys looked up per query (PostgreSQL takes at most 65,535 parameters).
MAX_PAGES = 1000
TOKEN_LENGTH = Inbox.inbound_token.type.length


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


def store(inbox: Inbox, events: list, received_at=None):
    """Ingest and commit; a database failure propagates as 500 so the provider retries."""
    try:
        return ingest(db.session, inbox, events, received_at)
    except Exception:
        db.session.rollback()
        log.exception("ingest failed for inbox %s", inbox.id)
        raise


def text(body: str, status: int = 200, content_type: str = "text/plain; charset=utf-8"):
    """A plain response."""
    return body, status, {"Content-Type": content_type}


def _of(adapter: type[Channel]):
    """The inboxes of the adapter's channel (a query to narrow)."""
    return sa.select(Inbox).where(Inbox.channel == adapter.name)


def _keep(adapter: type[Channel], raw: bytes, inbox_ids: list[int]) -> intake.DrainResult | None:
    """Store the verified body in the intake; thread it now when this process is idle."""
    with intake.receiving():
        return intake.accept(intake.store(adapter.name, raw, inbox_ids))


def _stored(result: intake.DrainResult | None):
    """The JSON answer after storing: what was threaded, or that it waits in the intake."""
    if result is None:  # stored; this process's drainer threads it in a moment
        return jsonify({"status": "ok", "queued": True})
    return jsonify({"status": "ok", "stored": len(result.created), "duplicates": result.duplicates})


def _handshake(adapter: type[Channel], raw: bytes, refused: str):
    """The provider's subscription check: echo its answer when an inbox owns the token."""
    shake = adapter.connector().webhook_handshake(raw, request.args)
    if shake is None:
        return None
    token, answer = shake
    inboxes = db.session.scalars(_of(adapter))
    if any(adapter.connector().accepts_handshake(i.config or {}, token) for i in inboxes):
        return text(answer)
    log.warning("%s: handshake with an unknown token", adapter.name)
    return text(refused, 403)


# --------------------------------------------------------------------------- views


def signed_batch(adapter: type[Channel]):
    """GET: the subscription handshake. POST: a signed batch of events for many route keys.

    The body is signed with a secret several inboxes may share; it is accepted
    when a routed inbox verifies it. A forged body gets 403 whatever it holds. A
    signed body that cannot be read is acknowledged, so the provider does not
    resend it, and kept in the intake, where it fails once and waits for an admin
    (``flask intake retry``).
    """
    connector = adapter.connector()
    if request.method == "GET":
        answer = _handshake(adapter, b"", "verification failed")
        if answer is None:
            log.warning("%s: verification with a wrong token or mode", adapter.name)
            return text("verification failed", 403)
        return answer
    raw = request.get_data(cache=True)
    try:
        keys = connector.webhook_route_keys(raw, request.args)
        readable = True
    except UnreadableBody:
        keys, readable = [], False

    def routed(some: list[str]) -> list[Inbox]:
        return [
            inbox
            for at in range(0, len(some), MAX_PAGES)
            for inbox in db.session.scalars(
                _of(adapter).where(Inbox.route_key.in_(some[at : at + MAX_PAGES]))
            )
        ]

    # Before the signature is checked, only the first keys are looked up.
    routes = routed(keys[:MAX_PAGES])
    candidates = routes or list(db.session.scalars(_of(adapter)))
    url = request_url()
    verified = [i for i in candidates if connector_for(i).verify_webhook(raw, url, request.headers)]
    if not verified:
        log.warning("%s: bad or missing signature (%d bytes)", adapter.name, len(raw))
        return text("invalid signature", 403)
    if not readable:
        log.warning("%s: signed body cannot be read; kept as failed, acknowledged", adapter.name)
        _keep(adapter, raw, sorted(i.id for i in verified))
        return jsonify({"status": "ignored", "reason": "malformed"}), 200
    if len(keys) > MAX_PAGES:  # authentic: route the other keys too, each verified
        routes = routed(keys)
        verified = [i for i in routes if connector_for(i).verify_webhook(raw, url, request.headers)]
    routed_ids = {i.id for i in routes}
    ids = sorted(i.id for i in verified if i.id in routed_ids)
    if not ids:
        log.warning("%s: events for unknown route keys %s ignored", adapter.name, keys[:20])
        return jsonify({"status": "ok", "stored": 0, "duplicates": 0})
    return _stored(_keep(adapter, raw, ids))


def signed_event(adapter: type[Channel]):
    """The handshake (in the body), or one signed event for the inbox its route key names.

    The inbox is found by a key inside the body, so the body is read before it
    can be verified. A body without a key that can name an inbox is refused with
    400 unless one of the channel's inboxes signed it: then it is acknowledged
    (the provider would retry it for days) and kept in the intake as failed.
    """
    raw = request.get_data(cache=True)
    answer = _handshake(adapter, raw, "unknown client token")
    if answer is not None:
        return answer
    url = request_url()
    try:
        [key] = adapter.connector().webhook_route_keys(raw, request.args)
    except UnreadableBody as exc:
        signed_by = [
            i.id
            for i in db.session.scalars(_of(adapter))
            if connector_for(i).verify_webhook(raw, url, request.headers)
        ]
        if not signed_by:
            log.warning("%s: unreadable body refused (%s)", adapter.name, exc)
            return text("unreadable body", 400)
        log.warning("%s: signed body cannot be read (%s); kept as failed", adapter.name, exc)
        _keep(adapter, raw, signed_by)
        return jsonify({"status": "ignored", "reason": "malformed"}), 200
    inbox = db.session.scalars(_of(adapter).where(Inbox.route_key == key)).first()
    if inbox is None:
        # cannot be verified without an inbox; acknowledge so the provider stops retrying
        log.warning("%s: event for unknown route key %r ignored", adapter.name, key)
        return jsonify({"status": "ignored", "reason": "unknown agent"}), 200
    if not connector_for(inbox).verify_webhook(raw, url, request.headers):
        log.warning("%s: bad or missing signature for inbox %s", adapter.name, inbox.id)
        return text("invalid signature", 403)
    return _stored(_keep(adapter, raw, [inbox.id]))


def _routed_by_form(adapter: type[Channel], service: str | None, number: str | None):
    """Route by the alternative key (a Messaging Service) first, then by the route key.

    Both are :func:`~connectors.base.routing_key` strings (or None) by now.
    """
    q = _of(adapter).where(Inbox.active.is_(True))
    if service:
        inbox = db.session.scalars(q.where(Inbox.alt_route_key == service)).first()
        if inbox is not None:
            return inbox
    if number:
        return db.session.scalars(q.where(Inbox.route_key == number)).first()
    return None


def _form_verified(inbox: Inbox) -> bool:
    return connector_for(inbox).verify(request_url(), request.form, request.headers)


def form(adapter: type[Channel]):
    """An inbound text: verify, keep the request in the intake, answer empty TwiML."""
    service_sid, to = get_provider(None).routing_keys(request.form)
    inbox = _routed_by_form(adapter, service_sid, to)
    if inbox is None:
        log.warning("%s: no inbox for MessagingServiceSid=%s To=%s", adapter.name, service_sid, to)
        return text("no inbox for this number", 404)
    if not _form_verified(inbox):
        log.warning("%s: bad or missing signature for inbox %s", adapter.name, inbox.id)
        return text("invalid signature", 403)
    # Stored even when it cannot be read (no MessageSid): the intake keeps such a
    # request as failed, once; the provider gets its empty answer either way.
    body = urlencode(list(request.form.items(multi=True))).encode()
    _keep(adapter, body, [inbox.id])
    return text(EMPTY_TWIML, content_type="text/xml; charset=utf-8")


def _awaiting_sid(adapter: type[Channel], ref: str | None, sid: str | None) -> Message | None:
    """Our reply named by the callback URL's ``ref`` whose provider id is not recorded yet.

    A receipt can arrive before the worker has stored the SID the provider answered
    with; the ``ref`` we put in the status callback URL (covered by the signature)
    still finds the message. A SID we already gave up on (re-sent) is ignored.
    """
    if not ref or not ref.isascii() or not ref.isdigit() or len(ref) > 18 or not sid:
        return None  # not one of our message ids (they fit a BIGINT)
    msg = db.session.get(Message, int(ref))
    if msg is None or msg.direction != "outbound" or msg.provider_id is not None:
        return None
    if sid in (msg.meta or {}).get("previous_provider_ids", []):
        return None
    inbox = db.session.get(Inbox, msg.inbox_id)
    return msg if inbox is not None and inbox.channel == adapter.name else None


def form_status(adapter: type[Channel]):
    """A delivery status callback: verify against the sending inbox, apply without downgrading."""
    fields = request.form
    sid = routing_key(fields.get("MessageSid")) or routing_key(fields.get("SmsSid"))
    msg = None
    if sid:
        msg = db.session.scalars(
            sa.select(Message)
            .join(Inbox, Inbox.id == Message.inbox_id)
            .where(Inbox.channel == adapter.name, Message.provider_id == sid)
        ).first()
    early = None if msg is not None else _awaiting_sid(adapter, request.args.get("ref"), sid)
    msg = msg or early
    inbox = db.session.get(Inbox, msg.inbox_id) if msg is not None else None
    if inbox is None:
        inbox = _routed_by_form(
            adapter, routing_key(fields.get("MessagingServiceSid")), routing_key(fields.get("From"))
        )
    if inbox is None:
        log.warning("%s: status for unknown message %s", adapter.name, sid)
        return text("unknown message", 404)
    if not _form_verified(inbox):
        log.warning(
            "%s: bad or missing signature on a status callback for inbox %s", adapter.name, inbox.id
        )
        return text("invalid signature", 403)
    try:
        update = get_provider(None).parse_status(fields)
    except ValueError as exc:
        log.info("%s: status callback ignored: %s", adapter.name, exc)
        return text("", 204)
    update = dataclasses.replace(update, inbox_key=inbox.route_key)
    if early is not None:  # found by our reference: ingest looks ``sb:<id>`` up
        update = dataclasses.replace(update, external_id=early.reference)
    store(inbox, [update])
    return text("", 204)


def raw_mime(adapter: type[Channel], token: str):
    """One raw RFC 822 message for the inbox the URL's token belongs to (404 otherwise).

    The body is the message exactly as received (any content type: pipes and
    providers differ). The answer is 2xx only once the message is committed; a
    database error answers 500 so the sender retries, and a replay stores nothing
    new. A message whose values the database refuses (``DataError``: it would fail
    the same way on every retry) is kept as an unreadable stand-in, the original
    attached.
    """
    inbox = None
    key = routing_key(token, max_length=TOKEN_LENGTH)  # never NUL or 3,000 characters into SQL
    if key is not None:
        inbox = db.session.scalars(_of(adapter).where(Inbox.inbound_token == key)).first()
    if inbox is None or not same(token, inbox.inbound_token):
        return text("not found", 404)
    raw = request.get_data(cache=False)
    if not raw.strip():
        return text("empty message", 400)
    from app.inbox import email_ingest

    try:
        result = email_ingest.ingest_raw(db.session, inbox, [raw], now())
    except sa.exc.DataError:  # refused the same way on every retry: keep it unreadable, once
        db.session.rollback()
        log.exception(
            "%s: the database refused a message for inbox %s; kept as unreadable",
            adapter.name,
            inbox.id,
        )
        result = email_ingest.keep_unreadable(db.session, inbox, raw, now())
    except Exception:
        db.session.rollback()
        log.exception("%s: storing a message for inbox %s failed", adapter.name, inbox.id)
        raise
    if result is None:
        log.info("%s: message for inbox %s dropped (mail loop)", adapter.name, inbox.id)
        return jsonify({"status": "dropped", "reason": "loop"}), 200
    return jsonify(
        {
            "status": "ok",
            "stored": len(result.created),
            "duplicates": result.duplicates,
            "updated": result.updated,
        }
    ), 200


# --------------------------------------------------------------------------- routes

VIEWS: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "signed_batch": (signed_batch, ("GET", "POST")),
    "signed_event": (signed_event, ("POST",)),
    "form": (form, ("POST",)),
    "form_status": (form_status, ("POST",)),
    "raw_mime": (raw_mime, ("POST",)),
}


def _route(adapter: type[Channel], path: str, kind: str) -> None:
    """Answer ``path`` (``{name}`` placeholders become URL variables) with view ``kind``."""
    view, methods = VIEWS[kind]

    def endpoint(**kwargs):
        return view(adapter, **kwargs)

    name = f"{adapter.name}_{kind}"
    endpoint.__name__ = name
    bp.add_url_rule(path.replace("{", "<").replace("}", ">"), name, endpoint, methods=methods)


for _adapter in channels.all_channels():
    for _path, _kind in zip(_adapter.webhook_paths, _adapter.webhook_views, strict=True):
        _route(_adapter, _path, _kind)

"""``/webhooks/messenger``: the verify handshake and batched Page events.

A verified body is stored in the webhook intake and answered at once; the
intake threads it (in this request when the process is idle, else in bulk).
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import jsonify, request

from app.extensions import db
from app.inbox import intake
from app.models import Inbox
from app.web.webhooks import bp, log, text
from connectors import messenger
from connectors.base import UnreadableBody, read_json

# Built once, on the table (plain rows, no ORM layer): the webhook is the hottest path there is.
_INBOXES = Inbox.__table__
_ALL_ROUTES = sa.select(_INBOXES.c.id, _INBOXES.c.route_key, _INBOXES.c.config).where(
    _INBOXES.c.channel == "messenger"
)
#: Page ids looked up per query (PostgreSQL takes at most 65,535 parameters).
MAX_PAGES = 1000
_ROUTED = _ALL_ROUTES.where(_INBOXES.c.route_key.in_(sa.bindparam("pages", expanding=True)))


@bp.get("/messenger")
def messenger_verify():
    """Meta's subscription handshake: echo ``hub.challenge`` when the verify token matches."""
    args = request.args
    given = args.get("hub.verify_token")
    if args.get("hub.mode") == "subscribe" and given:
        inboxes = db.session.scalars(sa.select(Inbox).where(Inbox.channel == "messenger"))
        if any(
            messenger.verify_token_matches(given, i.config.get("verify_token") or "")
            for i in inboxes
        ):
            return text(args.get("hub.challenge", ""))
    log.warning("messenger: verification with a wrong token or mode")
    return text("verification failed", 403)


def _routes(page_ids: list[str]) -> list[sa.Row]:
    """The Messenger inboxes of these Pages, a query per :data:`MAX_PAGES` ids."""
    conn = db.session.connection()
    return [
        route
        for at in range(0, len(page_ids), MAX_PAGES)
        for route in conn.execute(_ROUTED, {"pages": page_ids[at : at + MAX_PAGES]})
    ]


@bp.post("/messenger")
def messenger_events():
    """Verify ``X-Hub-Signature-256`` over the raw body, route each entry by Page id, store.

    A forged body gets 403 whatever it holds. A signed body that cannot be read
    (not a JSON object, nested too deep ...) is acknowledged, so Meta does not
    resend it, and kept in the intake, where it fails once and waits for an admin
    (``flask intake retry``).
    """
    raw = request.get_data(cache=True)
    header = request.headers.get("X-Hub-Signature-256")
    try:
        payload = read_json(raw)
    except UnreadableBody:
        payload = None
    page_ids = messenger.page_ids(payload) if isinstance(payload, dict) else []
    # Before the signature is checked, only the first Pages are looked up.
    routes = _routes(page_ids[:MAX_PAGES])
    # The body is signed with the app secret; accept it if a routed inbox's secret verifies it.
    candidates = routes or db.session.connection().execute(_ALL_ROUTES).all()
    secrets = {r.config.get("app_secret") for r in candidates}
    verified = {s for s in secrets if s and messenger.check_signature(raw, header, s)}
    if not verified:
        log.warning("messenger: bad or missing X-Hub-Signature-256 (%d bytes)", len(raw))
        return text("invalid signature", 403)
    if not isinstance(payload, dict):
        log.warning("messenger: signed body cannot be read; kept as failed, acknowledged")
        signed_by = sorted(r.id for r in candidates if r.config.get("app_secret") in verified)
        with intake.receiving():
            intake.accept(intake.store("messenger", raw, signed_by))
        return jsonify({"status": "ignored", "reason": "malformed"}), 200
    if len(page_ids) > MAX_PAGES:  # authentic: route the other Pages too
        routes = _routes(page_ids)
    routed = sorted(r.id for r in routes if r.config.get("app_secret") in verified)
    if not routed:
        log.warning("messenger: events for unknown Pages %s ignored", page_ids[:20])
        return jsonify({"status": "ok", "stored": 0, "duplicates": 0})
    with intake.receiving():
        result = intake.accept(intake.store("messenger", raw, routed))
    if result is None:  # stored; this process's drainer threads it in a moment
        return jsonify({"status": "ok", "queued": True})
    return jsonify({"status": "ok", "stored": len(result.created), "duplicates": result.duplicates})

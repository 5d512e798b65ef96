"""``/webhooks/messenger``: the verify handshake and batched Page events.

A verified body is stored in the webhook intake and answered at once; the
intake threads it (in this request when the process is idle, else in bulk).
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from flask import jsonify, request

from app.extensions import db
from app.inbox import intake
from app.models import Inbox
from app.web.webhooks import bp, log, text
from connectors import messenger

# Built once, on the table (plain rows, no ORM layer): the webhook is the hottest path there is.
_INBOXES = Inbox.__table__
_ALL_ROUTES = sa.select(_INBOXES.c.id, _INBOXES.c.route_key, _INBOXES.c.config).where(
    _INBOXES.c.channel == "messenger"
)
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


@bp.post("/messenger")
def messenger_events():
    """Verify ``X-Hub-Signature-256`` over the raw body, route each entry by Page id, store."""
    raw = request.get_data(cache=True)
    header = request.headers.get("X-Hub-Signature-256")
    try:
        payload = json.loads(raw or b"null")
    except ValueError:
        payload = None
    page_ids = messenger.page_ids(payload) if isinstance(payload, dict) else []
    routes = db.session.connection().execute(_ROUTED, {"pages": page_ids}).all() if page_ids else []
    # The body is signed with the app secret; accept it if a routed inbox's secret verifies it.
    secrets = (
        {r.config.get("app_secret") for r in routes}
        if routes
        else {r.config.get("app_secret") for r in db.session.connection().execute(_ALL_ROUTES)}
    )
    verified = {s for s in secrets if s and messenger.check_signature(raw, header, s)}
    if not verified:
        log.warning("messenger: bad or missing X-Hub-Signature-256 (%d bytes)", len(raw))
        return text("invalid signature", 403)
    if not isinstance(payload, dict):
        log.warning("messenger: signed body is not a JSON object; acknowledged")
        return jsonify({"status": "ignored", "reason": "malformed"}), 200
    routed = sorted(r.id for r in routes if r.config.get("app_secret") in verified)
    if not routed:
        log.warning("messenger: events for unknown Pages %s ignored", page_ids)
        return jsonify({"status": "ok", "stored": 0, "duplicates": 0})
    with intake.receiving():
        result = intake.accept(intake.store("messenger", raw, routed))
    if result is None:  # stored; this process's drainer threads it in a moment
        return jsonify({"status": "ok", "queued": True})
    return jsonify({"status": "ok", "stored": len(result.created), "duplicates": result.duplicates})


@intake.parser("messenger")
def parse_stored(row, inboxes: dict[int, Inbox]) -> dict[int, list]:
    """A stored Messenger body -> events per verified inbox (other Pages are logged, skipped)."""
    by_page = {i.route_key: i for i in inboxes.values()}
    grouped: dict[int, list] = {}
    unknown = set()
    for ev in messenger.parse(json.loads(row.body)):
        inbox = by_page.get(ev.inbox_key)
        if inbox is None:
            unknown.add(ev.inbox_key)
            continue
        grouped.setdefault(inbox.id, []).append(ev)
    if unknown:
        log.warning("messenger: events for unknown Pages %s ignored", sorted(unknown))
    return grouped

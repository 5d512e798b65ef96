"""``/webhooks/sms/twilio`` (inbound SMS/MMS) and ``.../status`` (delivery receipts)."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import request

from app.extensions import db
from app.inbox import intake
from app.inbox.connections import connector_for
from app.models import Inbox, Message
from app.web.webhooks import bp, log, request_url, store, text
from connectors.base import routing_key
from connectors.sms import get_provider

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
TWILIO = get_provider("twilio")


def _inbox_for(service_sid: str | None, number: str | None) -> Inbox | None:
    """Route by Messaging Service first, falling back to the number (pools share a service).

    Both are :func:`~connectors.base.routing_key` strings (or None) by now.
    """
    q = sa.select(Inbox).where(Inbox.channel == "sms", Inbox.active.is_(True))
    if service_sid:
        inbox = db.session.scalars(q.where(Inbox.alt_route_key == service_sid)).first()
        if inbox is not None:
            return inbox
    if number:
        return db.session.scalars(q.where(Inbox.route_key == number)).first()
    return None


def _verified(inbox: Inbox) -> bool:
    return connector_for(inbox).verify(request_url(), request.form, request.headers)


@bp.post("/sms/twilio")
def twilio_inbound():
    """An inbound SMS/MMS: verify, keep the request in the intake, answer empty TwiML."""
    service_sid, to = TWILIO.routing_keys(request.form)
    inbox = _inbox_for(service_sid, to)
    if inbox is None:
        log.warning("sms: no inbox for MessagingServiceSid=%s To=%s", service_sid, to)
        return text("no inbox for this number", 404)
    if not _verified(inbox):
        log.warning("sms: bad or missing X-Twilio-Signature for inbox %s", inbox.id)
        return text("invalid signature", 403)
    # Stored even when it cannot be read (no MessageSid): the intake keeps such a
    # request as failed, once; Twilio gets its empty answer either way.
    body = urlencode(list(request.form.items(multi=True))).encode()
    with intake.receiving():  # stored, then threaded like Messenger bodies (app.inbox.intake)
        intake.accept(intake.store("sms", body, [inbox.id]))
    return text(EMPTY_TWIML, content_type="text/xml; charset=utf-8")


def _awaiting_sid(ref: str | None, sid: str | None) -> Message | None:
    """Our reply named by the callback URL's ``ref`` whose Twilio SID is not recorded yet.

    A receipt can arrive before the worker has stored the SID Twilio answered
    with; the ``ref`` we put in ``StatusCallback`` (covered by the signature)
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
    return msg if inbox is not None and inbox.channel == "sms" else None


@bp.post("/sms/twilio/status")
def twilio_status():
    """A delivery status callback: verify against the sending inbox, apply without downgrading."""
    form = request.form
    sid = routing_key(form.get("MessageSid")) or routing_key(form.get("SmsSid"))
    msg = None
    if sid:
        msg = db.session.scalars(
            sa.select(Message)
            .join(Inbox, Inbox.id == Message.inbox_id)
            .where(Inbox.channel == "sms", Message.provider_id == sid)
        ).first()
    early = None if msg is not None else _awaiting_sid(request.args.get("ref"), sid)
    msg = msg or early
    inbox = db.session.get(Inbox, msg.inbox_id) if msg is not None else None
    if inbox is None:
        inbox = _inbox_for(
            routing_key(form.get("MessagingServiceSid")), routing_key(form.get("From"))
        )
    if inbox is None:
        log.warning("sms: status for unknown message %s", sid)
        return text("unknown message", 404)
    if not _verified(inbox):
        log.warning("sms: bad or missing signature on a status callback for inbox %s", inbox.id)
        return text("invalid signature", 403)
    try:
        update = TWILIO.parse_status(request.form)
    except ValueError as exc:
        log.info("sms: status callback ignored: %s", exc)
        return text("", 204)
    update = dataclasses.replace(update, inbox_key=inbox.route_key)
    if early is not None:  # found by our reference: ingest looks ``sb:<id>`` up
        update = dataclasses.replace(update, external_id=early.reference)
    store(inbox, [update])
    return text("", 204)

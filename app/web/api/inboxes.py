"""Inboxes: the list, their settings (leads and admins), their members, and connecting,
checking, repairing and disconnecting them (admins; the work is :mod:`app.inbox.connect`)."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import current_app, jsonify, request
from flask_login import current_user

from app.channels import InvalidConfig
from app.clock import now
from app.connections import build_connector, live_config
from app.extensions import db
from app.inbox import connect, events, signals
from app.inbox import settings as inbox_settings
from app.models import Inbox, InboxMember, User
from app.urls import public_base_url
from app.web.api.base import bp, json_body, need_admin
from app.web.api.errors import ApiError
from app.web.schemas import inbox_admin_dict, inbox_dict

log = logging.getLogger("switchboard.inboxes")


def _inbox(inbox_id: int) -> Inbox:
    inbox = db.session.get(Inbox, inbox_id)
    if inbox is None:
        raise ApiError(404, "not_found", "No such inbox.")
    return inbox


def _base() -> str:
    return public_base_url(current_app.config, request.host_url)


def _refused(exc: Exception) -> ApiError:
    """422 ``invalid`` (per field) or ``check_failed`` (the provider's checks)."""
    db.session.rollback()
    if isinstance(exc, InvalidConfig):
        return ApiError(422, "invalid", "Some settings are missing or wrong.", fields=exc.fields)
    checks = [c.to_dict() for c in exc.checks]
    return ApiError(422, "check_failed", "The provider refused the settings.", checks=checks)


def _changed(inbox: Inbox) -> None:
    events.publish(db.session, "inbox.updated", {"id": inbox.id}, ("inbox", inbox.id))


@bp.post("/inboxes")
def inbox_create():
    """Connect an inbox: fields validated, checked live with the provider, stored, provisioned."""
    need_admin()
    data = json_body()
    try:
        inbox, checks = connect.create(
            db.session,
            data.get("channel"),
            data.get("name"),
            data.get("config"),
            build_connector,
            _base(),
        )
    except (InvalidConfig, connect.CheckFailed) as exc:
        raise _refused(exc) from exc
    _changed(inbox)
    db.session.commit()
    log.info("inbox %s (%s) connected by user %s", inbox.id, inbox.channel, current_user.id)
    body = inbox_admin_dict(inbox, True)
    body["checks"] = [c.to_dict() for c in checks]
    return jsonify(body), 201


@bp.post("/inboxes/<int:inbox_id>/check")
def inbox_check(inbox_id: int):
    """Run the live checks against the provider: ``{"ok", "checks"}`` (never 5xx for theirs)."""
    need_admin()
    inbox = _inbox(inbox_id)
    checks = connect.check(inbox, build_connector, live_config(inbox))
    db.session.commit()
    return jsonify({"ok": connect.passed(checks), "checks": [c.to_dict() for c in checks]})


@bp.delete("/inboxes/<int:inbox_id>")
def inbox_disconnect(inbox_id: int):
    """Disconnect: webhooks for it are acknowledged and ignored; its history stays readable."""
    need_admin()
    inbox = _inbox(inbox_id)
    connect.disconnect(inbox)
    _changed(inbox)
    db.session.commit()
    log.info("inbox %s disconnected by user %s", inbox.id, current_user.id)
    return jsonify(inbox_admin_dict(inbox, True))


@bp.get("/inboxes")
def inboxes_list():
    """Inboxes the user can see, with their members (the people a conversation can go to)."""
    q = sa.select(Inbox).order_by(Inbox.id)
    if not current_user.is_lead:
        q = q.join(InboxMember, InboxMember.inbox_id == Inbox.id).where(
            InboxMember.user_id == current_user.id
        )
    return jsonify({"items": [inbox_dict(i, True) for i in db.session.scalars(q)]})


@bp.get("/inboxes/<int:inbox_id>")
def inbox_get(inbox_id: int):
    """One inbox: for admins with its settings form, setup and health; else as in the list."""
    inbox = db.session.get(Inbox, inbox_id)
    member = inbox is not None and db.session.get(
        InboxMember, {"inbox_id": inbox.id, "user_id": current_user.id}
    )
    if inbox is None or not (current_user.is_lead or member):
        raise ApiError(404, "not_found", "No such inbox.")
    if current_user.is_admin:
        return jsonify(inbox_admin_dict(inbox, True))
    return jsonify(inbox_dict(inbox, current_user.is_lead))


@bp.patch("/inboxes/<int:inbox_id>")
def inbox_patch(inbox_id: int):
    """Change inbox settings (team leads and admins); ``config`` (admins) rotates credentials.

    With ``config`` the answer is the admin inbox object with ``checks`` and ``resumed``
    (paused replies due again).
    """
    if not current_user.is_lead:
        raise ApiError(403, "forbidden", "Only team leads and admins change inbox settings.")
    inbox = _inbox(inbox_id)
    data = json_body()
    values = data.pop("config", None)
    if values is not None:
        need_admin()
    if data:
        try:
            inbox_settings.update(db.session, inbox, data)
        except inbox_settings.InvalidSetting as exc:
            raise ApiError(422, "invalid", str(exc)) from exc
    if values is None:
        db.session.commit()
        return jsonify(inbox_dict(inbox, True))
    try:
        resumed, checks = connect.update_config(db.session, inbox, values, build_connector, _base())
    except (InvalidConfig, connect.CheckFailed) as exc:
        raise _refused(exc) from exc
    _changed(inbox)
    db.session.commit()
    log.info(
        "inbox %s settings changed by user %s; %d replies resume",
        inbox.id,
        current_user.id,
        resumed,
    )
    body = inbox_admin_dict(inbox, True)
    body.update(checks=[c.to_dict() for c in checks], resumed=resumed)
    return jsonify(body)


@bp.put("/inboxes/<int:inbox_id>/members")
def inbox_members(inbox_id: int):
    """Replace the inbox's members with ``user_ids`` (admins)."""
    need_admin()
    inbox = db.session.get(Inbox, inbox_id)
    if inbox is None:
        raise ApiError(404, "not_found", "No such inbox.")
    ids = json_body().get("user_ids")
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise ApiError(422, "invalid", "user_ids must be a list of user ids.")
    known = set(db.session.scalars(sa.select(User.id).where(User.id.in_(ids))))
    if known != set(ids):
        raise ApiError(422, "invalid", "Some user ids do not exist.")
    current = set(
        db.session.scalars(sa.select(InboxMember.user_id).where(InboxMember.inbox_id == inbox.id))
    )
    for uid in current - known:
        db.session.delete(db.session.get(InboxMember, {"inbox_id": inbox.id, "user_id": uid}))
    for uid in known - current:
        db.session.add(InboxMember(inbox_id=inbox.id, user_id=uid, created_at=now()))
    db.session.commit()
    for uid in current ^ known:
        signals.access_changed.send(uid)
    return jsonify(inbox_admin_dict(inbox, True))

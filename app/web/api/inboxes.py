"""Inboxes: the list, their settings (leads and admins) and their members (admins)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import jsonify
from flask_login import current_user

from app.clock import now
from app.extensions import db
from app.inbox import settings as inbox_settings
from app.inbox import signals
from app.models import Inbox, InboxMember, User
from app.web.api.base import bp, json_body, need_admin
from app.web.api.errors import ApiError
from app.web.schemas import inbox_admin_dict, inbox_dict


@bp.get("/inboxes")
def inboxes_list():
    """Inboxes the user can see."""
    q = sa.select(Inbox).order_by(Inbox.id)
    if not current_user.is_lead:
        q = q.join(InboxMember, InboxMember.inbox_id == Inbox.id).where(
            InboxMember.user_id == current_user.id
        )
    return jsonify({"items": [inbox_dict(i, current_user.is_lead) for i in db.session.scalars(q)]})


@bp.patch("/inboxes/<int:inbox_id>")
def inbox_patch(inbox_id: int):
    """Change inbox settings (team leads and admins)."""
    if not current_user.is_lead:
        raise ApiError(403, "forbidden", "Only team leads and admins change inbox settings.")
    inbox = db.session.get(Inbox, inbox_id)
    if inbox is None:
        raise ApiError(404, "not_found", "No such inbox.")
    data = json_body()
    try:
        inbox_settings.update(db.session, inbox, data)
    except inbox_settings.InvalidSetting as exc:
        raise ApiError(422, "invalid", str(exc)) from exc
    db.session.commit()
    return jsonify(inbox_dict(inbox, True))


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

"""Inboxes: the list and their settings (leads and admins)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import jsonify
from flask_login import current_user

from app.extensions import db
from app.inbox import settings as inbox_settings
from app.models import Inbox, InboxMember
from app.web.api.base import bp, json_body
from app.web.api.errors import ApiError
from app.web.schemas import inbox_dict


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

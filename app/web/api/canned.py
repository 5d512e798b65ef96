"""Canned replies: everyone may read those of their inboxes; leads and admins edit them."""

from __future__ import annotations

import sqlalchemy as sa
from flask import jsonify, request
from flask_login import current_user

from app.clock import now
from app.extensions import db
from app.inbox.queries import visible_inbox_ids
from app.models import CannedReply, Inbox
from app.web.api.base import bp, json_body, need_lead
from app.web.api.errors import ApiError


def _visible_canned():
    """Canned replies in the inboxes the user sees, and the global ones."""
    q = sa.select(CannedReply)
    visible = visible_inbox_ids(current_user)
    if visible is not None:
        q = q.where(sa.or_(CannedReply.inbox_id.is_(None), CannedReply.inbox_id.in_(visible)))
    return q


@bp.get("/canned-replies")
def canned_list():
    """Canned replies the user may use; ``inbox_id`` narrows to that inbox's and the global ones."""
    q = _visible_canned()
    if request.args.get("inbox_id"):
        try:
            inbox_id = int(request.args["inbox_id"])
        except ValueError as exc:
            raise ApiError(400, "bad_request", "inbox_id must be a number.") from exc
        q = q.where(sa.or_(CannedReply.inbox_id.is_(None), CannedReply.inbox_id == inbox_id))
    rows = db.session.scalars(q.order_by(CannedReply.shortcut, CannedReply.id))
    return jsonify({"items": [r.to_dict() for r in rows]})


def _canned_fields(data: dict, row: CannedReply) -> None:
    """Check and set the fields given in ``data``."""
    if "shortcut" in data:
        shortcut = str(data.get("shortcut") or "").strip().lstrip("/").lower()
        if not shortcut or len(shortcut) > 40 or any(c.isspace() for c in shortcut):
            raise ApiError(422, "invalid", "shortcut must be one word of at most 40 characters.")
        row.shortcut = shortcut
    if "title" in data:
        title = str(data.get("title") or "").strip()
        if not title:
            raise ApiError(422, "invalid", "title is required.")
        row.title = title[:120]
    if "body" in data:
        body = str(data.get("body") or "").strip()
        if not body:
            raise ApiError(422, "invalid", "body is required.")
        row.body = body[:5000]
    if "inbox_id" in data:
        inbox_id = data.get("inbox_id")
        if inbox_id is not None and (
            not isinstance(inbox_id, int) or db.session.get(Inbox, inbox_id) is None
        ):
            raise ApiError(422, "invalid", "inbox_id must be an inbox id or null.")
        row.inbox_id = inbox_id


def _canned_clash(row: CannedReply) -> None:
    """409 when another reply of the same inbox (or global) has the shortcut."""
    clash = db.session.scalar(
        sa.select(CannedReply.id).where(
            CannedReply.shortcut == row.shortcut,
            CannedReply.inbox_id.is_(None)
            if row.inbox_id is None
            else CannedReply.inbox_id == row.inbox_id,
            CannedReply.id != (row.id or 0),
        )
    )
    if clash:
        raise ApiError(409, "duplicate", f"The shortcut /{row.shortcut} is already taken.")


@bp.post("/canned-replies")
def canned_create():
    """Add a canned reply (team leads and admins)."""
    need_lead()
    data = json_body()
    for key in ("shortcut", "title", "body"):
        data.setdefault(key, "")
    row = CannedReply(created_by_id=current_user.id, created_at=now())
    _canned_fields(data, row)
    _canned_clash(row)
    db.session.add(row)
    db.session.commit()
    return jsonify(row.to_dict()), 201


def _canned_row(reply_id: int) -> CannedReply:
    """The canned reply, or 404."""
    row = db.session.get(CannedReply, reply_id)
    if row is None:
        raise ApiError(404, "not_found", "No such canned reply.")
    return row


@bp.patch("/canned-replies/<int:reply_id>")
def canned_update(reply_id: int):
    """Change a canned reply (team leads and admins)."""
    need_lead()
    row = _canned_row(reply_id)
    _canned_fields(json_body(), row)
    _canned_clash(row)
    db.session.commit()
    return jsonify(row.to_dict())


@bp.delete("/canned-replies/<int:reply_id>")
def canned_delete(reply_id: int):
    """Remove a canned reply (team leads and admins)."""
    need_lead()
    db.session.delete(_canned_row(reply_id))
    db.session.commit()
    return "", 204

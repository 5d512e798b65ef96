"""Invitations (admins): invite by email, the pending ones, resend and revoke.

The link is mailed through ``NOTIFY_SMTP_URL`` by the outbox worker; without mail,
the answer that made or renewed it carries it (``link``) for the admin to hand over.
That answer is the only place a link ever appears.
"""

from __future__ import annotations

from flask import current_app, jsonify, request
from flask_login import current_user

from app.clock import now
from app.extensions import db
from app.inbox import accounts
from app.models import Invite
from app.urls import public_base_url
from app.web.api.base import bp, json_body, need_admin
from app.web.api.errors import ApiError
from app.web.schemas import invite_dict
from connectors.email.address import normalize_address


def _mail_on() -> bool:
    return bool(current_app.config.get("NOTIFY_SMTP_URL"))


def _base_url() -> str:
    return public_base_url(current_app.config, request.host_url)


def _answer(row: Invite, token: str, status: int):
    data = invite_dict(row, _mail_on(), now())
    if not _mail_on():
        data["link"] = f"{_base_url()}/invite/{token}"
    return jsonify(data), status


def _pending(invite_id: int) -> Invite:
    row = db.session.get(Invite, invite_id)
    if row is None or not row.pending:
        raise ApiError(404, "not_found", "No such pending invitation.")
    return row


@bp.post("/users/invite")
def invite_create():
    """Invite ``{"email", "role", "name"?}``: 201, or 200 when it renews a pending invitation."""
    need_admin()
    data = json_body()
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise ApiError(422, "invalid", "name must be text.")
    try:
        issued = accounts.invite(
            db.session,
            email=normalize_address(str(data.get("email") or "")),
            role=data.get("role") or "agent",
            name=(name or "").strip() or None,
            by=current_user,
            at=now(),
            secret=current_app.config["SECRET_KEY"],
            mail=_mail_on(),
            base_url=_base_url(),
        )
    except accounts.AccountError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    db.session.commit()
    return _answer(issued.invite, issued.token, 201 if issued.created else 200)


@bp.get("/invites")
def invites_list():
    """The pending invitations (expired ones too: resend renews them), newest first."""
    need_admin()
    at = now()
    rows = accounts.pending_invites(db.session)
    return jsonify({"items": [invite_dict(r, _mail_on(), at) for r in rows], "mail": _mail_on()})


@bp.post("/invites/<int:invite_id>/resend")
def invite_resend(invite_id: int):
    """A new link (the old one stops working), valid 7 more days, mailed again."""
    need_admin()
    row = _pending(invite_id)
    try:
        token = accounts.resend(
            db.session, row, now(), current_app.config["SECRET_KEY"], _mail_on(), _base_url()
        )
    except accounts.AccountError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    db.session.commit()
    return _answer(row, token, 200)


@bp.delete("/invites/<int:invite_id>")
def invite_revoke(invite_id: int):
    """Withdraw a pending invitation: its link stops working."""
    need_admin()
    accounts.revoke(_pending(invite_id), now())
    db.session.commit()
    return "", 204

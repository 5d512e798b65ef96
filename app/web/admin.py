"""Admin pages: inboxes, users and roles, canned replies, labels.

Pages (``/admin/...``) are server-rendered shells; the forms on them call the JSON
API (:mod:`app.web.api`: inboxes, users, canned, team). Admins manage everything;
team leads edit inbox settings, canned replies and labels and see the rest read-only.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app import oauth
from app.clock import now
from app.extensions import db
from app.inbox.assignment import open_load
from app.inbox.labels import PALETTE as label_palette
from app.models import Inbox, User
from app.models.user import ROLES
from app.web.schemas import inbox_admin_dict, user_admin_dict

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _page_lead() -> None:
    if not current_user.is_lead:
        abort(403)


def _page_admin() -> None:
    if not current_user.is_admin:
        abort(403)


@bp.get("/")
@login_required
def index():
    """Admin home: the inboxes."""
    return redirect(url_for("admin.inboxes"))


@bp.get("/inboxes")
@login_required
def inboxes():
    """Every inbox with its webhook URLs, tokens and connection health."""
    _page_lead()
    rows = db.session.scalars(sa.select(Inbox).order_by(Inbox.id))
    items = [inbox_admin_dict(i, current_user.is_admin) for i in rows]
    expiring = oauth.expiring_secrets(current_app.config, now()) if current_user.is_admin else []
    return render_template(
        "admin/inboxes.html", inboxes=items, section="inboxes", expiring_secrets=expiring
    )


@bp.get("/inboxes/new")
@login_required
def inbox_new():
    """Add an inbox (admins): pick a channel, fill the form its fields generate, connect."""
    _page_admin()
    return render_template("admin/inbox_new.html", section="inboxes")


@bp.get("/inboxes/<int:inbox_id>")
@login_required
def inbox_settings(inbox_id: int):
    """One inbox: hours, greeting and away texts, reply-window and response-due settings.

    Admins also see its health, the live checks, the credentials form (``#reconnect``)
    and Disconnect; ``?connected=1``, ``?saved=1`` and ``?disconnected=1`` say what the
    last action did.
    """
    _page_lead()
    inbox = db.session.get(Inbox, inbox_id)
    if inbox is None:
        abort(404)
    users = [
        u.to_dict()
        for u in db.session.scalars(
            sa.select(User).where(User.active.is_(True)).order_by(User.name)
        )
    ]
    return render_template(
        "admin/inbox_settings.html",
        inbox=inbox_admin_dict(inbox, current_user.is_admin),
        users=users,
        section="inboxes",
        done=next((k for k in ("connected", "saved", "disconnected") if request.args.get(k)), None),
    )


@bp.get("/users")
@login_required
def users():
    """Users and roles (admins edit; team leads read)."""
    _page_lead()
    rows = list(db.session.scalars(sa.select(User).order_by(User.active.desc(), User.name)))
    load = open_load(db.session, [u.id for u in rows])
    items = [user_admin_dict(u, load.get(u.id, 0)) for u in rows]
    return render_template(
        "admin/users.html",
        users=items,
        roles=ROLES,
        section="users",
        mail_on=bool(current_app.config.get("NOTIFY_SMTP_URL")),
    )


@bp.get("/canned")
@login_required
def canned():
    """Canned replies (team leads and admins edit)."""
    _page_lead()
    inboxes_ = [i.ref() for i in db.session.scalars(sa.select(Inbox).order_by(Inbox.id))]
    return render_template("admin/canned.html", inboxes=inboxes_, section="canned")


@bp.get("/labels")
@login_required
def labels():
    """Labels agents put on conversations (team leads and admins keep the list)."""
    _page_lead()
    return render_template("admin/labels.html", palette=label_palette, section="labels")

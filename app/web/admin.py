"""Admin pages and their JSON endpoints: inboxes, users and roles, members, canned replies,
and the team lead overview.

Pages (``/admin/...``) are server-rendered shells; the forms on them call the JSON
endpoints below (``/api/v1/...``), which share the API's authentication, CSRF check and
error format. Admins manage everything; team leads edit inbox settings and canned
replies and see the rest read-only; agents may read canned replies.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app import channels
from app.clock import aware, iso, now
from app.extensions import csrf, db
from app.inbox import assignment, signals
from app.inbox.assignment import open_load
from app.inbox.queries import visible_inbox_ids
from app.inbox.serialize import conversation_dict
from app.models import CannedReply, Conversation, Inbox, InboxMember, User
from app.models.user import AVAILABILITY, ROLES, password_problem
from app.web import api as api_module
from app.web.api import ApiError
from app.web.auth import end_sign_ins
from connectors.email.address import normalize_address

bp = Blueprint("admin", __name__, url_prefix="/admin")
api_bp = Blueprint("admin_api", __name__, url_prefix="/api/v1")
csrf.exempt(api_bp)
api_bp.before_request(api_module._auth_and_csrf)
api_bp.register_error_handler(ApiError, api_module._api_error)

AT_RISK_WINDOW = timedelta(hours=2)


def _json() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "Send a JSON object body.")
    return data


def _need_lead() -> None:
    if not current_user.is_lead:
        raise ApiError(403, "forbidden", "Only team leads and admins can do this.")


def _need_admin() -> None:
    if not current_user.is_admin:
        raise ApiError(403, "forbidden", "Only admins can do this.")


# --------------------------------------------------------------------------- connection details


def public_base() -> str:
    """The base URL providers call: ``PUBLIC_URL`` when set, else this request's host."""
    return (current_app.config.get("PUBLIC_URL") or request.host_url).rstrip("/")


def connection_details(inbox: Inbox, with_secrets: bool) -> list[dict]:
    """What to paste into the provider's console for ``inbox`` (its channel adapter says).

    Values that are secrets (verify token, client token, the email inbound URL) are only
    included for admins; others see them as ``None`` with ``secret`` set.
    """
    items = channels.get(inbox.channel).setup(inbox, public_base())
    return [
        {
            **item.to_dict(with_secrets),
            "label": _(item.label),
            "help": _(item.help) if item.help else "",
        }
        for item in items
    ]


def inbox_admin_dict(inbox: Inbox, with_secrets: bool) -> dict:
    """An inbox for the admin pages: settings, members, health and connection details."""
    data = api_module.inbox_dict(inbox, with_members=True)
    data["last_error_at"] = iso(inbox.last_error_at)
    data["connection"] = connection_details(inbox, with_secrets)
    return data


# --------------------------------------------------------------------------- pages


def _page_lead() -> None:
    if not current_user.is_lead:
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
    return render_template("admin/inboxes.html", inboxes=items, section="inboxes")


@bp.get("/inboxes/<int:inbox_id>")
@login_required
def inbox_settings(inbox_id: int):
    """One inbox: hours, greeting and away texts, reply-window and response-due settings."""
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
    )


@bp.get("/users")
@login_required
def users():
    """Users and roles (admins edit; team leads read)."""
    _page_lead()
    rows = list(db.session.scalars(sa.select(User).order_by(User.active.desc(), User.name)))
    load = open_load(db.session, [u.id for u in rows])
    items = [user_admin_dict(u, load.get(u.id, 0)) for u in rows]
    return render_template("admin/users.html", users=items, roles=ROLES, section="users")


@bp.get("/canned")
@login_required
def canned():
    """Canned replies (team leads and admins edit)."""
    _page_lead()
    inboxes_ = [i.ref() for i in db.session.scalars(sa.select(Inbox).order_by(Inbox.id))]
    return render_template("admin/canned.html", inboxes=inboxes_, section="canned")


def user_admin_dict(user: User, load: int = 0) -> dict:
    """A user for the admin page."""
    return {
        **user.to_dict(),
        "active": user.active,
        "locale": user.locale,
        "open_assigned": load,
        "last_seen_at": iso(user.last_seen_at),
    }


# --------------------------------------------------------------------------- canned replies


def _visible_canned():
    q = sa.select(CannedReply)
    visible = visible_inbox_ids(current_user)
    if visible is not None:
        q = q.where(sa.or_(CannedReply.inbox_id.is_(None), CannedReply.inbox_id.in_(visible)))
    return q


@api_bp.get("/canned-replies")
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


@api_bp.post("/canned-replies")
def canned_create():
    """Add a canned reply (team leads and admins)."""
    _need_lead()
    data = _json()
    for key in ("shortcut", "title", "body"):
        data.setdefault(key, "")
    row = CannedReply(created_by_id=current_user.id, created_at=now())
    _canned_fields(data, row)
    _canned_clash(row)
    db.session.add(row)
    db.session.commit()
    return jsonify(row.to_dict()), 201


def _canned_row(reply_id: int) -> CannedReply:
    row = db.session.get(CannedReply, reply_id)
    if row is None:
        raise ApiError(404, "not_found", "No such canned reply.")
    return row


@api_bp.patch("/canned-replies/<int:reply_id>")
def canned_update(reply_id: int):
    """Change a canned reply (team leads and admins)."""
    _need_lead()
    row = _canned_row(reply_id)
    _canned_fields(_json(), row)
    _canned_clash(row)
    db.session.commit()
    return jsonify(row.to_dict())


@api_bp.delete("/canned-replies/<int:reply_id>")
def canned_delete(reply_id: int):
    """Remove a canned reply (team leads and admins)."""
    _need_lead()
    db.session.delete(_canned_row(reply_id))
    db.session.commit()
    return "", 204


# --------------------------------------------------------------------------- users and members


def _user_fields(data: dict, user: User, creating: bool) -> None:
    if "name" in data or creating:
        name = str(data.get("name") or "").strip()
        if not name:
            raise ApiError(422, "invalid", "name is required.")
        user.name = name[:120]
    if "email" in data or creating:
        email = normalize_address(str(data.get("email") or ""))
        if "@" not in email or len(email) > 254:
            raise ApiError(422, "invalid", "email must be an email address.")
        taken = db.session.scalar(
            sa.select(User.id).where(sa.func.lower(User.email) == email, User.id != (user.id or 0))
        )
        if taken:
            raise ApiError(409, "duplicate", "Someone already uses that email address.")
        user.email = email
    if "role" in data or creating:
        role = data.get("role") or "agent"
        if role not in ROLES:
            raise ApiError(422, "invalid", "role must be agent, lead or admin.")
        if user.id == current_user.id and role != "admin":
            raise ApiError(422, "invalid", "You cannot remove your own admin role.")
        user.role = role
    if "capacity" in data:
        cap = data["capacity"]
        if not isinstance(cap, int) or isinstance(cap, bool) or not 0 <= cap <= 1000:
            raise ApiError(422, "invalid", "capacity must be a whole number from 0 to 1000.")
        user.capacity = cap
    if "availability" in data:
        if data["availability"] not in AVAILABILITY:
            raise ApiError(422, "invalid", "availability must be online, away or busy.")
        user.availability = data["availability"]
    if "active" in data:
        if not isinstance(data["active"], bool):
            raise ApiError(422, "invalid", "active must be true or false.")
        if user.id == current_user.id and not data["active"]:
            raise ApiError(422, "invalid", "You cannot deactivate yourself.")
        user.active = data["active"]
    if "password" in data or creating:
        password = data.get("password") or ""
        problem = password_problem(str(password), user.email)
        if problem:
            raise ApiError(422, "invalid", problem)
        user.set_password(password)


@api_bp.post("/users")
def user_create():
    """Add a user (admins)."""
    _need_admin()
    user = User(created_at=now())
    _user_fields(_json(), user, creating=True)
    db.session.add(user)
    db.session.commit()
    return jsonify(user_admin_dict(user)), 201


@api_bp.patch("/users/<int:user_id>")
def user_update(user_id: int):
    """Change a user's name, role, capacity, availability, password or deactivate them."""
    _need_admin()
    user = db.session.get(User, user_id)
    if user is None:
        raise ApiError(404, "not_found", "No such user.")
    data = _json()
    _user_fields(data, user, creating=False)
    if "password" in data or not user.active:
        end_sign_ins(user.id)  # every browser signed in as them must sign in again
    if "active" in data and not user.active:
        # a deactivated agent's open conversations return to the queue
        for conv in db.session.scalars(
            sa.select(Conversation).where(
                Conversation.assignee_id == user.id, Conversation.status != "closed"
            )
        ):
            assignment.assign(db.session, conv, None, by=current_user)
    db.session.commit()
    if {"password", "active", "role"} & data.keys():
        signals.access_changed.send(user.id)
    load = open_load(db.session, [user.id]).get(user.id, 0)
    return jsonify(user_admin_dict(user, load))


@api_bp.put("/inboxes/<int:inbox_id>/members")
def inbox_members(inbox_id: int):
    """Replace the inbox's members with ``user_ids`` (admins)."""
    _need_admin()
    inbox = db.session.get(Inbox, inbox_id)
    if inbox is None:
        raise ApiError(404, "not_found", "No such inbox.")
    ids = _json().get("user_ids")
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


# --------------------------------------------------------------------------- team overview


@api_bp.get("/team")
def team_overview():
    """Team leads' view: each agent's load against capacity, conversations at risk, the queue."""
    _need_lead()
    at = now()
    people = list(
        db.session.scalars(sa.select(User).where(User.active.is_(True)).order_by(User.name))
    )
    load = open_load(db.session, [u.id for u in people])
    live = Conversation.status.in_(("open", "pending"))
    risky = sa.or_(
        sa.and_(
            Conversation.window_expires_at.is_not(None),
            Conversation.window_expires_at > at,
            Conversation.window_expires_at <= at + AT_RISK_WINDOW,
            Conversation.waiting_since.is_not(None),
        ),
        Conversation.response_due_at <= at,
    )
    at_risk = list(
        db.session.scalars(
            sa.select(Conversation)
            .where(live, risky)
            .order_by(
                sa.func.coalesce(Conversation.window_expires_at, Conversation.response_due_at)
            )
            .limit(50)
        ).unique()
    )
    overdue = {
        uid: n
        for uid, n in db.session.execute(
            sa.select(Conversation.assignee_id, sa.func.count())
            .where(live, Conversation.response_due_at <= at, Conversation.assignee_id.is_not(None))
            .group_by(Conversation.assignee_id)
        )
    }
    unassigned = Conversation.assignee_id.is_(None)
    queue_count, oldest = db.session.execute(
        sa.select(
            sa.func.count(),
            sa.func.min(sa.func.coalesce(Conversation.waiting_since, Conversation.created_at)),
        ).where(Conversation.status == "open", unassigned)
    ).one()
    oldest_items = list(
        db.session.scalars(
            sa.select(Conversation)
            .where(Conversation.status == "open", unassigned)
            .order_by(
                sa.func.coalesce(Conversation.waiting_since, Conversation.created_at),
                Conversation.id,
            )
            .limit(10)
        ).unique()
    )
    return jsonify(
        {
            "agents": [
                {
                    **u.to_dict(),
                    "open_assigned": load.get(u.id, 0),
                    "overdue": overdue.get(u.id, 0),
                    "last_seen_at": iso(u.last_seen_at),
                }
                for u in people
                if u.role in ("agent", "lead") or load.get(u.id)
            ],
            "at_risk": [conversation_dict(c, at) for c in at_risk],
            "unassigned": {
                "count": int(queue_count or 0),
                "oldest_since": iso(oldest),
                "oldest_seconds": int((at - _aware(oldest)).total_seconds()) if oldest else None,
                "items": [conversation_dict(c, at) for c in oldest_items],
            },
            "generated_at": iso(at),
        }
    )


def _aware(dt):
    return aware(dt)

"""Connecting a mailbox by signing in with Microsoft or Google (OAuth 2.0 with PKCE).

``GET /oauth/<provider>/start?inbox=<id or new>[&address=<mailbox>]`` (admins)
keeps a pending sign-in (state, PKCE verifier, which inbox) in the admin's
session and sends the browser to the provider's consent page.
``GET /oauth/<provider>/callback`` takes the provider's answer: the state must
name a sign-in this session started (else 400, nothing stored), the code is
traded for tokens and the inbox connected (:func:`app.oauth.complete`), then the
admin lands on the inbox's page. A refusal shows the provider's words and the
redirect URI to register. The flow itself is :mod:`app.oauth`.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app import oauth
from app.connections import oauth_http
from app.extensions import db
from app.models import Inbox
from app.urls import public_base_url
from connectors.email.oauth import PROVIDERS, OAuthError

bp = Blueprint("oauth", __name__, url_prefix="/oauth")

SESSION_KEY = "oauth_pending"


def _admin() -> None:
    if not current_user.is_admin:
        abort(403)


def _base() -> str:
    return public_base_url(current_app.config, request.host_url)


def _failed(name: str, problem: str, again: str | None = None, status: int = 400):
    return (
        render_template(
            "oauth/failed.html",
            problem=problem,
            redirect_uri=oauth.redirect_uri(_base(), name) if name in PROVIDERS else None,
            again=again,
            back=url_for("admin.inboxes"),
        ),
        status,
    )


@bp.get("/<name>/start")
@login_required
def start(name: str):
    """Send the admin to the provider's consent page for a new inbox or a reconnect."""
    _admin()
    target = request.args.get("inbox", "new")
    inbox = None
    if target != "new":
        inbox = db.session.get(Inbox, int(target)) if target.isdigit() else None
        if inbox is None:
            abort(404)
    try:
        url, pending = oauth.begin(
            name, current_app.config, _base(), inbox, request.args.get("address")
        )
    except oauth.SignInError as exc:
        return _failed(name, str(exc))
    session[SESSION_KEY] = oauth.keep_pending(session.get(SESSION_KEY), pending)
    return redirect(url)


@bp.get("/<name>/callback")
@login_required
def callback(name: str):
    """The provider's answer: connect the inbox, or say why not."""
    _admin()
    pending, rest = oauth.take_pending(session.get(SESSION_KEY), name, request.args.get("state"))
    session[SESSION_KEY] = rest
    if pending is None:
        problem = _(
            "This sign-in was not started from this browser session, or it took too long. "
            "Start it again from the inbox."
        )
        return _failed(name, problem)
    again = url_for(
        "oauth.start",
        name=name,
        inbox=pending.get("inbox") or "new",
        address=pending.get("address") or None,
    )
    if request.args.get("error") or not request.args.get("code"):
        said = " ".join(
            str(request.args.get(k) or "") for k in ("error", "error_description")
        ).strip()
        return _failed(name, _("The provider did not grant access: %(said)s", said=said), again)
    try:
        inbox, _resumed = oauth.complete(
            db.session, pending, request.args["code"], current_app.config, _base(), oauth_http()
        )
    except (oauth.SignInError, OAuthError, ValueError) as exc:
        db.session.rollback()
        return _failed(name, str(exc), again)
    db.session.commit()
    return redirect(url_for("admin.inbox_settings", inbox_id=inbox.id, connected=1, signed_in=name))

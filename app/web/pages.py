"""Server-rendered pages: the inbox and the files providers fetch."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, render_template, request, session
from flask_login import current_user, login_required

from app import urls
from app.extensions import db, limiter
from app.models import Attachment
from app.web import files
from app.web.ui import template_context

bp = Blueprint("pages", __name__)


@bp.app_context_processor
def _ui_context() -> dict:
    return template_context()


@bp.before_app_request
def _remember_language() -> None:
    """``?lang=xx`` sticks for the session (the sign-in page's language links)."""
    lang = request.args.get("lang")
    if lang and lang in current_app.config["LANGUAGES"]:
        session["lang"] = lang


@bp.get("/")
@login_required
def index():
    """The live inbox."""
    return render_template("inbox.html")


@bp.get("/team")
@login_required
def team():
    """The team lead view: availability, load against capacity, risks, the queue."""
    if not current_user.is_lead:
        abort(403)
    return render_template("team.html")


@bp.get("/reports")
@login_required
def reports():
    """Reports for leads and admins: volumes, response times, missed windows, badges.

    The page reads its filters from the query string and the figures from the reports API.
    """
    if not current_user.is_lead:
        abort(403)
    return render_template("reports.html")


@bp.get("/healthz")
@limiter.exempt
def healthz():
    """Liveness and database check (no auth)."""
    try:
        db.session.execute(sa.text("SELECT 1"))
        database = "ok"
    except Exception:  # noqa: BLE001 - report, never raise
        database = "error"
    status = "ok" if database == "ok" else "degraded"
    return {"status": status, "database": database}, (200 if database == "ok" else 503)


@bp.get("/files/<token>/<path:name>")
def public_file(token: str, name: str):
    """A reply's attachment for the provider that sends it, at a signed URL that expires
    (:func:`app.urls.public_file_url`); ``name`` is the file's name, for show."""
    ref = urls.public_file_ref(current_app.config, token)
    att = db.session.get(Attachment, ref[0]) if ref else None
    if att is None or not att.storage_key or att.storage_key.rsplit("/", 1)[-1] != ref[1]:
        abort(404)
    if att.message is None or att.message.direction != "outbound":
        abort(404)
    return files.send_attachment(att, private=False)

"""Reports for team leads and admins (``contract.md``, "Reports"): JSON, or ``format=csv``."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Response, jsonify, request

from app.clock import iso, now
from app.extensions import db
from app.inbox import report_badges, report_csv, reports
from app.web.api.base import bp, need_lead
from app.web.api.errors import ApiError


def _int(name: str) -> int | None:
    value = request.args.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise ApiError(422, "invalid", f"{name} must be a number.") from exc


def _date(name: str, default: date) -> date:
    value = request.args.get(name)
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ApiError(422, "invalid", f"{name} must be a date (YYYY-MM-DD).") from exc


def _period() -> reports.Period:
    """The request's period and filters; by default the last 7 days in UTC."""
    need_lead()
    tz = request.args.get("tz") or "UTC"
    today = now().date()
    end = _date("to", today)
    start = _date("from", end - timedelta(days=6))
    try:
        return reports.make_period(
            db.session,
            start,
            end,
            tz,
            inbox_id=_int("inbox"),
            channel=request.args.get("channel") or None,
            agent_id=_int("agent"),
        )
    except reports.InvalidPeriod as exc:
        raise ApiError(422, "invalid", str(exc)) from exc


def _csv(text: str, name: str, p: reports.Period | None = None) -> Response:
    span = f"-{p.start.isoformat()}-{p.end.isoformat()}" if p else ""
    return Response(
        text.encode("utf-8"),
        mimetype="text/csv",
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}{span}.csv"',
        },
    )


def _wants_csv() -> bool:
    return (request.args.get("format") or "").lower() == "csv"


@bp.get("/reports/overview")
def reports_overview():
    """Volumes, first response and resolution times, missed windows and breaches."""
    p = _period()
    report = reports.overview(db.session, p)
    if _wants_csv():
        return _csv(report_csv.overview_csv(report), "overview", p)
    return jsonify(report)


@bp.get("/reports/agents")
def reports_agents():
    """Per agent: assigned, closed, replies, first response and resolution times."""
    p = _period()
    rows = reports.agents(db.session, p)
    if _wants_csv():
        return _csv(report_csv.agents_csv(rows), "agents", p)
    return jsonify({"agents": rows})


@bp.get("/reports/badges")
def reports_badges():
    """Per inbox whose platform judges response times, where it stands now."""
    p = _period()
    at = now()
    rows = report_badges.badges(db.session, at, p.inbox_ids)
    if _wants_csv():
        return _csv(report_csv.badges_csv(rows), "badges")
    return jsonify({"inboxes": rows, "generated_at": iso(at)})

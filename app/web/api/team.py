"""The team lead's overview: each agent's load, conversations at risk, the unassigned queue."""

from __future__ import annotations

from flask import jsonify, request

from app.clock import aware, iso, now
from app.extensions import db
from app.inbox import team
from app.web.api.base import bp, need_lead
from app.web.api.errors import ApiError
from app.web.schemas import conversation_dict


@bp.get("/team")
def team_overview():
    """Team leads' view: each agent's load against capacity, conversations at risk, the queue.

    ``online`` is a browser of the agent connected now; ``available`` is their own
    availability setting (``availability`` says which). The queue's first page is here,
    waiting longest first; ``unassigned.next_cursor`` fetches the rest from ``/team/queue``.
    """
    need_lead()
    report = team.overview(db.session, now())
    at, oldest = report.at, report.oldest_since
    return jsonify(
        {
            "agents": [
                {
                    **u.to_dict(),
                    "online": u.id in report.connected,
                    "available": u.availability == "online",
                    "open_assigned": report.load.get(u.id, 0),
                    "overdue": report.overdue.get(u.id, 0),
                    "last_seen_at": iso(u.last_seen_at),
                }
                for u in report.agents
            ],
            "at_risk": [conversation_dict(c, at) for c in report.at_risk],
            "unassigned": {
                "count": report.queue_count,
                "oldest_since": iso(oldest),
                "oldest_seconds": int((at - aware(oldest)).total_seconds()) if oldest else None,
                "items": [conversation_dict(c, at) for c in report.oldest],
                "next_cursor": report.next_cursor,
            },
            "generated_at": iso(at),
        }
    )


@bp.get("/team/queue")
def team_queue():
    """The whole unassigned queue, a page at a time: ``?cursor=&limit=`` (up to 100)."""
    need_lead()
    try:
        limit = int(request.args.get("limit") or team.QUEUE_PAGE)
        items, next_cursor = team.queue_page(db.session, request.args.get("cursor"), limit)
    except ValueError as exc:
        raise ApiError(400, "bad_request", "cursor and limit must come from this API.") from exc
    at = now()
    return jsonify({"items": [conversation_dict(c, at) for c in items], "next_cursor": next_cursor})

"""The team lead's overview: each agent's load, conversations at risk, the unassigned queue."""

from __future__ import annotations

from flask import jsonify

from app.clock import aware, iso, now
from app.extensions import db
from app.inbox import team
from app.web.api.base import bp, need_lead
from app.web.schemas import conversation_dict


@bp.get("/team")
def team_overview():
    """Team leads' view: each agent's load against capacity, conversations at risk, the queue."""
    need_lead()
    report = team.overview(db.session, now())
    at, oldest = report.at, report.oldest_since
    return jsonify(
        {
            "agents": [
                {
                    **u.to_dict(),
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
            },
            "generated_at": iso(at),
        }
    )

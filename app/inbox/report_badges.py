"""The platforms' badges for team leads: where each inbox stands as Meta or Google judge it.

Each channel's adapter names its rule (:mod:`app.channels.badges`); the rule reads the
inbox's customer waits (``report_waits``) over its own period.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import channels
from app.channels.badges import Wait
from app.clock import aware
from app.inbox.rows import fetch
from app.models import Inbox, ReportWait


def badges(session: Session, at: datetime, inbox_ids: tuple[int, ...] | None = None) -> list[dict]:
    """Per inbox whose platform judges response times: where it stands, as of ``at``."""
    inboxes = session.scalars(
        sa.select(Inbox).where(Inbox.active.is_(True)).order_by(Inbox.name, Inbox.id)
    )
    out = []
    for inbox in inboxes:
        rule = _badge_rule(inbox)
        if rule is None or (inbox_ids is not None and inbox.id not in inbox_ids):
            continue
        rows = fetch(
            session,
            sa.select(
                ReportWait.started_at,
                ReportWait.answered_at,
                ReportWait.wait_s,
                ReportWait.business_s,
            ).where(
                ReportWait.inbox_id == inbox.id,
                ReportWait.started_at >= at - rule.period,
                ReportWait.started_at <= at,
            ),
        )
        waits = [Wait(_instant(s), a is not None, w, b) for s, a, w, b in rows]
        out.append({"inbox": inbox.ref(), **rule.evaluate(waits, at)})
    return out


def _instant(value) -> datetime | None:
    """A stored UTC time as the driver returns it (SQLite: ISO text) -> aware datetime."""
    if value is None or isinstance(value, datetime):
        return aware(value)
    return aware(datetime.fromisoformat(value))


def _badge_rule(inbox: Inbox):
    try:
        return channels.get(inbox.channel).badge
    except KeyError:
        return None

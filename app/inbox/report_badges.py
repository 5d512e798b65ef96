"""The platforms' badges for team leads: where each inbox stands as Meta or Google judge it.

Each channel's adapter names its rule (:mod:`app.channels.badges`); the rule reads the
inbox's customer waits (``report_waits``) over its own period.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import channels
from app.channels.badges import Waits
from app.inbox.report_stats import epoch_seconds, int_columns
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
        started, answered, wait_s, business_s = int_columns(
            session,
            sa.select(
                epoch_seconds(ReportWait.started_at),
                sa.case((ReportWait.answered_at.is_(None), 0), else_=1),
                sa.func.coalesce(ReportWait.wait_s, 0),
                sa.func.coalesce(ReportWait.business_s, 0),
            ).where(
                ReportWait.inbox_id == inbox.id,
                ReportWait.started_at >= at - rule.period,
                ReportWait.started_at <= at,
            ),
        )
        age = int(at.timestamp()) - started
        waits = Waits(age, answered.astype(bool), wait_s, business_s)
        out.append({"inbox": inbox.ref(), **rule.evaluate(waits)})
    return out


def _badge_rule(inbox: Inbox):
    try:
        return channels.get(inbox.channel).badge
    except KeyError:
        return None

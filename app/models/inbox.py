"""Inboxes (one connected account of a channel) and who works in them."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import now
from app.extensions import db
from app.models.types import JSONType, UTCDateTime

#: The one table of inbox setting defaults (``Inbox.settings`` keys; null or missing: these).
DEFAULT_SETTINGS: dict[str, Any] = {
    "assignment": "manual",  # manual | round_robin | least_loaded
    "agents_assign_others": True,  # agents hand conversations to teammates (else: take only)
    "reply_assigns": True,  # replying to an unassigned conversation gives it to the replier
    "response_due_hours": 24,
    "reopen_days": 7,
    "human_agent": False,
    "quiet_hours": {"start": "21:00", "end": "08:00"},
    "timezone": "UTC",
    "business_hours": None,  # {"timezone": ..., "days": {"mon": [["09:00","17:00"]], ...}, "holidays": [...]}
    "greeting": None,
    "away_message": None,
    "window_warnings_minutes": [120, 30],
    # a sender flood (email): past this many new conversations from one contact within
    # sender_window_minutes, new-thread mail from them joins their latest open conversation
    "sender_new_conversations": 5,  # 0 = no cap
    "sender_window_minutes": 10,
    # automation (app.inbox.automation)
    "away_interval_hours": 12,  # at most one away message per conversation in this period
    "away_skip_minutes": 5,  # no away message when an agent replied this recently
    "follow_up_hours": 24,  # our reply was last and the customer is quiet this long
    "follow_up_reminders": True,  # remind the assignee
    "follow_up_auto": False,  # send follow_up_message instead, when the window allows
    "follow_up_message": None,
    "inactive_days": 15,  # no interaction this long: inactive (Google Local Services)
    "auto_close_pending_days": None,  # off by default
    "response_warning_minutes": 60,  # warn this long before the response target; 0 = off
    "return_to_queue_when_away": False,
    # another conversation of the contact got an automatic message this recently: no away now
    "auto_reply_interval_minutes": 60,  # 0 = off
    # health (app.runtime.jobs.silence): a busy inbox that received nothing this long is failing
    "silence_alert_hours": 24,  # 0 = off
}

SETTING_KEYS = tuple(DEFAULT_SETTINGS)


class Inbox(db.Model):
    """A Facebook Page, a GBM agent, a phone number or a mailbox.

    ``config`` holds the connector's fields, secrets included; it is never
    returned by the API nor logged. ``route_key`` (and ``alt_route_key``) are
    what webhooks are routed by: Page id, phone number / Messaging Service,
    GBM agent, email address.
    """

    __tablename__ = "inboxes"
    __table_args__ = (
        sa.Index("ix_inboxes_route", "channel", "route_key"),
        sa.Index("ix_inboxes_alt_route", "channel", "alt_route_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str] = mapped_column(sa.String(120))
    route_key: Mapped[str | None] = mapped_column(sa.String(255))
    alt_route_key: Mapped[str | None] = mapped_column(sa.String(255))
    inbound_token: Mapped[str] = mapped_column(
        sa.String(64), unique=True, default=lambda: secrets.token_urlsafe(24)
    )
    config: Mapped[dict] = mapped_column(JSONType, default=dict)
    settings: Mapped[dict] = mapped_column(JSONType, default=dict)
    state: Mapped[dict] = mapped_column(JSONType, default=dict)  # cursors, health
    needs_reconnect: Mapped[bool] = mapped_column(default=False)
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    def setting(self, key: str) -> Any:
        """An inbox setting; null or missing: the default of :data:`DEFAULT_SETTINGS`."""
        value = (self.settings or {}).get(key)
        return DEFAULT_SETTINGS.get(key) if value is None else value

    def effective_settings(self) -> dict[str, Any]:
        """Every setting with defaults filled in (the API's ``settings``)."""
        return {key: self.setting(key) for key in SETTING_KEYS}

    def ref(self) -> dict[str, Any]:
        """The short form embedded in conversation objects."""
        return {"id": self.id, "channel": self.channel, "name": self.name}


class InboxMember(db.Model):
    """An agent who works in an inbox."""

    __tablename__ = "inbox_members"

    inbox_id: Mapped[int] = mapped_column(
        sa.ForeignKey("inboxes.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


# --------------------------------------------------------------------------- state, merged

# ``Inbox.state`` holds keys that different processes write on their own: the IMAP
# poller's cursor, the worker's ``last_sent_at``, health incidents, checks. Each writer
# reads the document, changes its keys and assigns a new dict; written back whole, a copy
# read before another process's commit would undo that commit's keys. So a flush writes
# only the keys this session changed, merged into the row as it is when the UPDATE runs.


def _state_merged(dialect: str, patch: dict, removed: list[str], dumps):
    """SQL: the stored state with ``patch``'s top-level keys set and ``removed`` dropped."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql as pg

        expr = sa.func.coalesce(Inbox.state, sa.text("'{}'::jsonb")).op("||")(
            sa.bindparam("state_patch", patch, type_=pg.JSONB)
        )
        if removed:
            expr = expr.op("-")(sa.bindparam("state_removed", removed, type_=pg.ARRAY(sa.Text)))
        return expr
    expr = sa.func.coalesce(Inbox.state, sa.literal("{}"))
    if patch:  # json(): the value goes in as JSON, not as a quoted string
        paths = [(f'$."{key}"', sa.func.json(dumps(value))) for key, value in patch.items()]
        expr = sa.func.json_set(expr, *[part for pair in paths for part in pair])
    if removed:
        expr = sa.func.json_remove(expr, *[f'$."{key}"' for key in removed])
    return expr


@sa.event.listens_for(sa.orm.Session, "before_flush")
def _merge_states(session, _context, _instances) -> None:
    for inbox in [o for o in session.dirty if isinstance(o, Inbox)]:
        history = sa.inspect(inbox).attrs.state.history
        if not history.added:
            continue
        new = history.added[0] or {}
        old = (history.deleted[0] if history.deleted else None) or {}
        patch = {k: v for k, v in new.items() if k not in old or old[k] != v}
        removed = [k for k in old if k not in new]
        sa.orm.attributes.set_committed_value(inbox, "state", old)  # not written whole
        if not patch and not removed:
            continue
        bind = session.get_bind()
        dumps = getattr(bind.dialect, "_json_serializer", None) or json.dumps
        merged = _state_merged(bind.dialect.name, patch, removed, dumps)
        stored = session.execute(
            sa.update(Inbox)
            .where(Inbox.id == inbox.id)
            .values(state=merged)
            .returning(Inbox.state),
            execution_options={"synchronize_session": False},
        ).scalar_one_or_none()
        sa.orm.attributes.set_committed_value(inbox, "state", stored if stored is not None else new)

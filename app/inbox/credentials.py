"""An inbox's provider credentials: shown without secrets, replaced on reconnect. No Flask.

Building a connector from them (with the process's provider settings) is
:mod:`app.connections`.
"""

from __future__ import annotations

import sqlalchemy as sa

import connectors
from app import channels
from app.clock import now
from app.inbox import health
from app.models import Inbox, Message, OutboxItem


def public_config(inbox: Inbox) -> dict:
    """The inbox's connector config without secrets: safe for the API and logs."""
    try:
        secret = channels.get(inbox.channel).secret_fields()
    except KeyError:
        secret = set()
    secret |= {"inbound_token"}
    return {
        k: v
        for k, v in (inbox.config or {}).items()
        if k not in secret and not any(s in k for s in ("secret", "token", "password", "key"))
    }


def reconnect(session, inbox: Inbox, changes: dict) -> int:
    """New credentials for an inbox (e.g. a fresh Page token after Meta error 190).

    Updates the connector config, clears "reconnect needed" and makes the replies that
    were paused for it due now. Returns how many paused sends resume. Raises
    ``ValueError`` for a field the channel does not have or an incomplete config.
    """
    cls = connectors.get(inbox.channel)
    known = {f.name for f in cls.fields}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ValueError(f"{inbox.channel} inboxes have no setting {', '.join(unknown)}")
    config = {**(inbox.config or {}), **changes}
    problems = cls.validate_config(config)
    if problems:
        raise ValueError("; ".join(problems))
    inbox.config = config
    inbox.needs_reconnect = False
    inbox.last_error = None
    health.inbox_recovered(session, inbox)  # whatever failed gets its chance again
    at = now()
    not_scheduled = sa.select(Message.id).where(
        Message.inbox_id == inbox.id, sa.or_(Message.send_after.is_(None), Message.send_after <= at)
    )
    resumed = session.execute(
        sa.update(OutboxItem)
        .where(
            OutboxItem.inbox_id == inbox.id,
            OutboxItem.state == "pending",
            OutboxItem.kind == "send",
            OutboxItem.message_id.in_(not_scheduled),
        )
        .values(next_attempt_at=at)
        .execution_options(synchronize_session=False)
    ).rowcount
    return resumed or 0

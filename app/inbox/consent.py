"""Whether a customer can be reached: opt-out and opt-in keywords, and what send errors say.

An opt-out (SMS ``STOP`` ...) blocks replies until the customer opts back in; a
provider error may say the same (opted out) or that the address cannot receive
messages at all (undeliverable, cleared when the customer writes). No Flask here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.clock import aware
from app.inbox import activity, windows
from app.inbox.activity import add_activity
from app.inbox.threading import find_or_create_identity, latest_conversation
from app.models import ContactIdentity, Conversation, Inbox
from connectors import base as cb


def mark_identity(
    session: Session, ident: ContactIdentity, error: cb.SendError, at: datetime
) -> None:
    """Record what a provider error says about the recipient (opted out, undeliverable)."""
    if error.kind is cb.ErrorKind.OPTED_OUT and ident.opted_out_at is None:
        ident.opted_out_at = at
    elif error.kind is cb.ErrorKind.UNDELIVERABLE and not ident.undeliverable_reason:
        ident.undeliverable_reason = (error.message or "This address cannot receive messages")[:300]


def record_consent(
    session: Session, inbox: Inbox, ev: cb.OptOut | cb.OptIn, at: datetime
) -> Conversation | None:
    """Apply an opt-out or opt-in keyword; returns the conversation that shows it (None: none).

    Nothing changes when the customer is already in that state. The latest
    conversation gets an activity line; an opt-out also ends its response-due timer.
    """
    ident, _ = find_or_create_identity(session, inbox, ev.contact_id, None)
    opt_out = isinstance(ev, cb.OptOut)
    if opt_out == (ident.opted_out_at is not None):
        return None
    ident.opted_out_at = (aware(ev.at) or at) if opt_out else None
    conv = latest_conversation(session, inbox.id, ident.contact_id)
    if conv is not None:
        said = activity.line(
            activity.OPTED_OUT if opt_out else activity.OPTED_IN, keyword=ev.keyword
        )
        add_activity(session, conv, said, event="opted_out" if opt_out else "opted_in")
        if opt_out:  # nothing can be answered now: no response-due timer to breach
            conv.waiting_since = None
            windows.refresh_timers(conv, inbox)
    return conv

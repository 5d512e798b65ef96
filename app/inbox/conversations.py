"""Conversation state: open, pending, snoozed, closed; read state; what a customer message changes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.clock import aware, now
from app.inbox import activity, events, signals, windows
from app.inbox.activity import Line, add_activity
from app.inbox.context import keep_context
from app.inbox.messages import set_last_message
from app.models import ContactIdentity, Conversation, Inbox, User
from app.models.conversation import STATUSES
from connectors import base as cb


class InvalidStatus(ValueError):
    """An impossible status change (unknown status, snooze without a future time)."""


def set_status(
    session: Session,
    conv: Conversation,
    status: str | None,
    by: User | None,
    snooze_until: datetime | None = None,
    note: Line | None = None,
) -> bool:
    """Change the status; writes an activity line and publishes. Returns True if changed.

    ``note`` replaces the activity text (closed automatically, declined ...). Sends
    :data:`~app.inbox.signals.status_changed`: closing an assigned conversation frees
    capacity, and assignment offers the unassigned queue to it.
    """
    if status not in STATUSES:
        raise InvalidStatus(f"status must be one of {', '.join(STATUSES)}")
    at = now()
    who = by.name if by else "Switchboard"
    if status == "snoozed":
        if snooze_until is None or snooze_until <= at:
            raise InvalidStatus("snooze_until must be a time in the future.")
        conv.snooze_until = snooze_until
        said = activity.line(activity.SNOOZED, who=who, until=f"{snooze_until:%Y-%m-%d %H:%M}")
    else:
        if conv.status == status:
            return False
        conv.snooze_until = None
        template = {
            "open": activity.REOPENED,
            "pending": activity.PENDING,
            "closed": activity.CLOSED,
        }
        said = activity.line(template[status], who=who)
    previous = conv.status
    conv.status = status
    conv.closed_at = at if status == "closed" else None
    conv.last_activity_at = at
    add_activity(session, conv, note or said, event=status, previous=previous)
    events.changed(session, "conversation.updated", conv, ("inbox", conv.inbox_id))
    events.publish(session, "counts.updated", {"inbox_id": conv.inbox_id}, ("inbox", conv.inbox_id))
    # the channel's hooks (GBM: the representative left), then the freed capacity is used
    signals.status_changed.send(conv, session=session, previous=previous, by=by)
    return True


def apply_customer_message(
    session: Session,
    inbox: Inbox,
    conv: Conversation,
    ident: ContactIdentity,
    ev: cb.InboundMessage,
    sent_at: datetime,
    received_at: datetime,
    language: str | None = None,
) -> None:
    """A customer's message is stored in ``conv``: timers, context, waiting, unread, snippet.

    The reply window counts from the platform's own send time (out-of-order
    deliveries keep the latest). A person writing (not their machine) can be
    reached again, starts the wait for an answer and wakes a snoozed or pending
    conversation (no status signal: nobody set it). A conversation a machine started
    (auto-reply, mailing list) is ``automated`` until a person writes in it. The message's ``language``
    (detected with confidence) becomes the conversation's when it is the latest.
    """
    latest = conv.last_inbound_at is None or sent_at >= aware(conv.last_inbound_at)
    if conv.last_inbound_at is None and conv.last_outbound_at is None:  # it starts here
        conv.automated = bool(ev.automated)
    elif not ev.automated:
        conv.automated = False
    if language and latest and not ev.automated:
        conv.language = language
    if conv.last_inbound_at is None or sent_at > aware(conv.last_inbound_at):
        conv.last_inbound_at = sent_at
        keep_context(conv, ev.context)
        referral = (ev.context or {}).get("referral")
        if isinstance(referral, dict):  # the ad, link or QR code the customer came from
            conv.context = {**(conv.context or {}), "referral": referral}
    if not ev.automated:
        if ident.undeliverable_reason:  # they wrote: they can be reached again (unblocked)
            ident.undeliverable_reason = None
        if conv.waiting_since is None or sent_at < aware(conv.waiting_since):
            conv.waiting_since = sent_at
        if conv.status in ("snoozed", "pending"):
            woken = activity.WOKEN_SNOOZED if conv.status == "snoozed" else activity.WOKEN_PENDING
            add_activity(session, conv, activity.line(woken), event="woken")
            conv.status = "open"
            conv.snooze_until = None
    conv.unread_count = (conv.unread_count or 0) + 1
    shown = [a for a in ev.attachments if a.kind != "original"]  # email: the raw .eml
    preview = ev.text or (f"[{shown[0].kind}]" if shown else "")
    set_last_message(conv, "inbound", preview, received_at)
    windows.refresh_timers(conv, inbox)


def mark_read(session: Session, conv: Conversation) -> None:
    """Clear the unread count (the customer is not told: no 'seen' is sent)."""
    if conv.unread_count:
        conv.unread_count = 0
        events.changed(session, "conversation.updated", conv, ("inbox", conv.inbox_id))

"""System lines in a conversation's thread (assigned, closed, opted out ...), in every language.

A line is stored twice over: its English text is the message body (what the
API, search and exports show) and its template with the values goes in the
message's ``meta`` (``text``, ``values``), so the browser shows it in the
agent's language: ``t(meta.text, meta.values)``. Every template is a constant
here, marked ``N_`` for ``pybabel extract``; :data:`TEMPLATES` hands them to the
browser's strings and ``tests/web/test_i18n.py`` checks each is translated.
Values are names, reasons and times, shown as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from app.clock import now
from app.inbox import events
from app.models import Conversation, Message


def N_(text: str) -> str:  # noqa: N802 - gettext's "mark only" name, a pybabel keyword
    """Mark ``text`` for translation; it is translated where it is shown."""
    return text


SNOOZE_ENDED = N_("Snooze ended: back to open")
WOKEN_SNOOZED = N_("Back to open: the customer wrote (snoozed)")
WOKEN_PENDING = N_("Back to open: the customer wrote (pending)")
REOPENED_BY_CUSTOMER = N_("Reopened by a new customer message")
SNOOZED = N_("{who} snoozed this until {until} UTC")
REOPENED = N_("{who} reopened this")
PENDING = N_("{who} set this to pending")
CLOSED = N_("{who} closed this")
AUTO_CLOSED = N_("Closed automatically: pending for {days} days with no activity")
INACTIVE = N_("Inactive: no interaction for {days} days")
DECLINED = N_("{who} declined this: {reason}")
REACTIVATED = N_("{who} reactivated this (was declined: {reason})")
UNDECLINED = N_("No longer declined: the customer wrote again (was declined: {reason})")
ASSIGNED = N_("{who} assigned this to {name}")
TOOK = N_("{who} took this conversation")
AUTO_ASSIGNED = N_("Automatic assignment assigned this to {name}")
UNASSIGNED = N_("{who} unassigned this")
AUTO_UNASSIGNED = N_("Automatic assignment unassigned this")
LABEL_ADDED = N_("{who} added label {label}")
LABEL_REMOVED = N_("{who} removed label {label}")
BACK_TO_QUEUE = N_("Back to the queue: {name} is away and the customer wrote")
OPTED_OUT = N_("The customer opted out of messages ({keyword}). Replies are blocked.")
OPTED_IN = N_("The customer opted back in ({keyword}).")
LIVE_AGENT = N_("The customer asked to talk to a person")
SURVEY = N_("The customer answered the survey")
SCHEDULED = N_("Reply scheduled for {when} UTC")
SCHEDULED_CANCELLED = N_("Scheduled reply cancelled: the customer wrote again before it went out")
SCHEDULED_CANCELLED_MANY = N_(
    "Scheduled replies cancelled: the customer wrote again before they went out"
)
CONTACT_MERGED = N_("{who} merged the contact {other} into {name}")
CONTACT_ERASED = N_("{who} erased the contact's messages and details (data-protection request)")
DELIVERY_DELAYED = N_("Delivery to {recipient} is delayed; the mail server keeps trying: {reason}")

#: Every template, for the browser's translated strings (app.web.ui.js_msgids).
TEMPLATES = tuple(
    value for name, value in dict(globals()).items() if name.isupper() and isinstance(value, str)
)


@dataclass(frozen=True)
class Line:
    """One of the templates above with its values."""

    template: str
    values: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """In English, as stored in the message body."""
        return self.template.format(**self.values)


def line(template: str, **values) -> Line:
    """A line of ``template``; values are shown as text (None as "-")."""
    if template not in TEMPLATES:
        raise ValueError(f"not an activity template: {template!r}")
    return Line(template, {k: "-" if v is None else str(v) for k, v in values.items()})


def add_activity(session: Session, conv: Conversation, what: Line, **meta) -> Message:
    """Write a system line into the thread; ``meta`` says what happened (``event`` ...)."""
    msg = Message(
        conversation_id=conv.id,
        inbox_id=conv.inbox_id,
        direction="activity",
        body=what.text,
        status="received",
        meta={**meta, "text": what.template, "values": what.values},
        created_at=now(),
    )
    session.add(msg)
    session.flush()
    events.changed(session, "message.created", msg, ("inbox", conv.inbox_id))
    return msg

"""Replies and notes: the send-time rules, the queued reply and its outbox row.

Posting a reply checks every rule the platform would enforce (reply window,
opt-out, undeliverable recipient, quiet hours) and refuses with a reason the
agent understands, without contacting the provider. An accepted reply is a
message in ``queued`` state plus an outbox row, written in one transaction;
the worker (``app.runtime.worker``) sends it. Nothing here talks to a provider.
Scheduled replies are checked for their own time; a failed one can be retried.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import channels
from app.clock import aware, now
from app.inbox import activity, events, health, hooks, signals, uploads, windows
from app.inbox.activity import add_activity
from app.inbox.hours import QUIET_GRACE, quiet_hours_state
from app.models import ContactIdentity, Conversation, Message, OutboxItem, User

log = logging.getLogger(__name__)


TEMPLATE_NEEDED = (
    " A template is needed: only an approved message template can be sent now "
    "(choose one in the composer), until the customer writes again."
)


class SendRefused(Exception):
    """The channel cannot take this message now; nothing was sent."""

    def __init__(self, code: str, message: str, **details) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class InvalidMessage(ValueError):
    """The request itself is wrong (empty body, too long ...)."""


@dataclass(frozen=True)
class SendPlan:
    """What the checks decided: the platform rule used and channel options."""

    window: windows.WindowState
    options: dict


def _identity(session: Session, conv: Conversation) -> ContactIdentity | None:
    if conv.identity_id is None:
        return None
    return session.get(ContactIdentity, conv.identity_id)


def check_send(
    session: Session,
    conv: Conversation,
    at: datetime,
    *,
    send_after: datetime | None = None,
    quiet_hours: bool = True,
    identity: ContactIdentity | None = None,
    template: bool = False,
) -> SendPlan:
    """Apply every send-time rule for a send at ``at``; raises :class:`SendRefused` with a code.

    Quiet hours (SMS) are judged when the agent posts or schedules the reply;
    the worker passes ``quiet_hours=False`` so a reply that was accepted is not
    held back later (a scheduled one was checked for its own time). Passing
    ``send_after`` also skips the quiet-hours rule. ``identity`` is the recipient when
    the conversation is not stored yet (a business-initiated one being considered).
    ``template``: the send is one of the platform's approved templates, which channels
    with ``templates`` take outside their reply window.
    """
    inbox = conv.inbox
    takes_templates = channels.get(inbox.channel).templates
    outside_window_ok = template and takes_templates
    if not inbox.active:
        raise SendRefused("undeliverable", "This inbox is disconnected.")
    human_agent = bool(inbox.setting("human_agent"))
    window = windows.reply_window(inbox.channel, conv.last_inbound_at, human_agent, at)
    if window.state == "closed" and not outside_window_ok:
        rule = windows.policy(inbox.channel)
        if (
            rule is not None
            and rule.human_agent is not None
            and not human_agent
            and conv.last_inbound_at
            and (at < aware(conv.last_inbound_at) + rule.human_agent)
        ):
            hint = (
                f" {rule.human_label.replace(' window', '')} replies are possible only where "
                "Meta approved the app for the HUMAN_AGENT tag (inbox setting)."
            )
        elif takes_templates:
            hint = TEMPLATE_NEEDED
        else:
            hint = " You can leave a private note; the reply becomes possible when the customer writes again."
        raise SendRefused(
            "window_closed",
            f"The {window.rule.replace(' has ended', '')} has closed.{hint}",
            expires_at=window.expires_at,
        )
    if (
        window.state != "none"
        and not outside_window_ok
        and windows.closed_by_platform(conv.context, conv.last_inbound_at)
    ):
        raise SendRefused(
            "window_closed",
            "The platform refused the last reply as outside its reply window."
            + (
                TEMPLATE_NEEDED
                if takes_templates
                else " You can leave a private note; the reply becomes possible when the "
                "customer writes again."
            ),
        )
    ident = identity if identity is not None else _identity(session, conv)
    if ident is not None and ident.opted_out_at is not None:
        raise SendRefused(
            "opted_out",
            "The customer opted out of messages from this number (they texted STOP). "
            "They must text START to receive replies again.",
        )
    if ident is not None and ident.undeliverable_reason:
        raise SendRefused(
            "undeliverable", f"This customer cannot receive messages: {ident.undeliverable_reason}"
        )
    options: dict = {}
    if window.state == "human_agent":
        options["tag"] = "HUMAN_AGENT"
    if quiet_hours and send_after is None:
        quiet = quiet_hours_state(conv, ident, at)
        if quiet and quiet["quiet"]:
            last_in = aware(conv.last_inbound_at)
            if not (last_in and at - last_in <= QUIET_GRACE):
                ends = quiet["ends_at"]
                raise SendRefused(
                    "quiet_hours",
                    f"It is quiet hours for this customer ({quiet['timezone']}). "
                    f"Schedule the reply for {ends.astimezone(ZoneInfo(quiet['timezone'])):%H:%M} "
                    "their time instead.",
                    send_after=ends,
                    timezone=quiet["timezone"],
                )
    return SendPlan(window=window, options=options)


MAX_BODY = 20000


def post_message(
    session: Session,
    conv: Conversation,
    user: User | None,
    body: str,
    *,
    private: bool = False,
    client_id: str | None = None,
    send_after: datetime | None = None,
    automated: bool = False,
    attachment_ids: list[int] | None = None,
    template: dict | None = None,
) -> tuple[Message, bool]:
    """Store a note or queue a reply. Returns (message, created).

    Same ``client_id`` on the same conversation returns the first message.
    Refused sends raise :class:`SendRefused` and store nothing. ``attachment_ids``
    are the user's own unsent uploads (:mod:`app.inbox.uploads`); a reply's files
    must fit the channel's limits (``attachment_refused``). ``template`` (``{"name",
    "language", "params"}``) sends one of the platform's approved templates, ``body``
    being the text it shows; it is allowed outside the reply window where the channel
    takes templates.
    """
    if template is not None and (private or attachment_ids):
        raise InvalidMessage("A template is sent on its own, never as a note or with files.")
    body = (body or "").strip("\n")
    if not body.strip() and not attachment_ids:
        raise InvalidMessage("The message is empty.")
    if len(body) > MAX_BODY:
        raise InvalidMessage(f"The message is longer than {MAX_BODY} characters.")
    if client_id:
        existing = session.scalars(
            sa.select(Message).where(
                Message.conversation_id == conv.id, Message.client_id == client_id
            )
        ).first()
        if existing is not None:
            return existing, False
    try:
        files = uploads.claim(session, user, attachment_ids or [])
    except uploads.NotAnUpload as exc:
        raise InvalidMessage(str(exc)) from exc
    at = now()
    if send_after is not None:
        send_after = aware(send_after)
        if send_after <= at:
            send_after = None
    sender_name = user.name if user else "Switchboard"
    if private:
        msg = Message(
            conversation_id=conv.id,
            inbox_id=conv.inbox_id,
            direction="note",
            body=body,
            sender_user_id=user.id if user else None,
            sender_name=sender_name,
            client_id=client_id,
            status="received",
            meta={},
            created_at=at,
        )
        msg.attachments.extend(files)
        session.add(msg)
        session.flush()
        conv.last_activity_at = at
        events.changed(session, "message.created", msg, ("inbox", conv.inbox_id))
        events.changed(session, "conversation.updated", conv, ("inbox", conv.inbox_id))
        signals.note_added.send(conv, session=session, message=msg, by=user)  # mentions
        return msg, True
    is_template = template is not None
    if send_after is None:
        plan = check_send(session, conv, at, template=is_template)
    else:
        # allowed now (opt-out ...), and still allowed when it goes out: inside the
        # reply window and outside the customer's quiet hours at that time
        check_send(session, conv, at, quiet_hours=False, template=is_template)
        plan = check_send(session, conv, send_after, template=is_template)
    refused = uploads.refusal(conv.inbox, files) if files else None
    if refused is not None:
        raise SendRefused("attachment_refused", refused.message, **refused.to_dict())
    if user is not None and not automated:
        signals.reply_posted.send(conv, session=session, by=user)  # the replier may take it
    superseded_before = aware(conv.last_inbound_at)
    # an automatic message (greeting, away) never cancels an agent's scheduled reply
    if superseded_before is not None and not automated:
        cancel_scheduled(session, conv, before=superseded_before)
    msg = Message(
        conversation_id=conv.id,
        inbox_id=conv.inbox_id,
        direction="outbound",
        body=body,
        sender_user_id=user.id if user else None,
        sender_name=sender_name,
        client_id=client_id,
        status="queued",
        automated=automated,
        send_after=send_after,
        meta={
            "kind": "template" if is_template else "message",
            **({"tag": plan.options["tag"]} if "tag" in plan.options else {}),
            **({"template": template} if is_template else {}),
        },
        created_at=at,
    )
    msg.attachments.extend(files)
    session.add(msg)
    session.flush()
    if send_after is None and not automated:
        hooks.replying(session, conv, user, at)  # Messenger: "seen" goes out before the reply
    session.add(
        OutboxItem(
            kind="send",
            inbox_id=conv.inbox_id,
            message_id=msg.id,
            next_attempt_at=send_after or at,
            payload={},
        )
    )
    if send_after is None:
        if user is not None and not automated:
            health.answered_waiting(msg, conv)
        record_outbound_activity(conv, msg, user, at)
        if conv.inbox.needs_reconnect:  # paused: it cannot answer the customer yet
            health.hold_reply(session, msg, conv)
    else:
        conv.last_activity_at = at
        add_activity(
            session,
            conv,
            activity.line(activity.SCHEDULED, when=f"{send_after:%Y-%m-%d %H:%M}"),
            event="scheduled",
            message_id=msg.id,
        )
    session.flush()
    events.changed(session, "message.created", msg, ("inbox", conv.inbox_id))
    events.changed(session, "conversation.updated", conv, ("inbox", conv.inbox_id))
    events.publish(session, "counts.updated", {"inbox_id": conv.inbox_id}, ("inbox", conv.inbox_id))
    return msg, True


def record_outbound_activity(
    conv: Conversation, msg: Message, user: User | None, at: datetime
) -> None:
    """A reply resets what waits for an answer (only a human's reply answers)."""
    conv.last_outbound_at = at
    if user is not None and not msg.automated:
        conv.waiting_since = None
        conv.unread_count = 0
        signals.agent_replied.send(conv, at=at, by=user)  # breaches answered, follow-up timer
    conv.last_message_direction = "outbound"
    conv.last_message_body = (msg.body or "")[:280]
    conv.last_message_at = at
    conv.last_activity_at = at
    windows.refresh_timers(conv, conv.inbox)


def cancel_scheduled(session: Session, conv: Conversation, before: datetime | None = None) -> int:
    """Cancel scheduled replies of ``conv`` that are still waiting; returns how many.

    With ``before``, only replies written before that time. ``post_message``
    calls it with the customer's latest message time whenever the agent sends
    another reply: a reply scheduled before the customer wrote again, followed
    by a newer reply, is out of date and must not go out in the morning. A
    reply scheduled after the customer's latest message is kept.
    """
    q = sa.select(Message).where(
        Message.conversation_id == conv.id,
        Message.direction == "outbound",
        Message.status == "queued",
        Message.send_after.is_not(None),
    )
    if before is not None:
        q = q.where(Message.created_at < before)
    rows = list(session.scalars(q))
    for msg in rows:
        msg.status = "failed"
        msg.error_code = "cancelled"
        msg.error_message = (
            "Not sent: the customer wrote again before the scheduled time and a newer reply "
            "was sent."
        )
        session.execute(
            sa.update(OutboxItem)
            .where(OutboxItem.message_id == msg.id, OutboxItem.state == "pending")
            .values(state="cancelled")
        )
        events.changed(session, "message.updated", msg, ("inbox", conv.inbox_id))
    if rows:
        add_activity(
            session,
            conv,
            activity.line(
                activity.SCHEDULED_CANCELLED
                if len(rows) == 1
                else activity.SCHEDULED_CANCELLED_MANY
            ),
            event="scheduled_cancelled",
            message_ids=[m.id for m in rows],
        )
    return len(rows)


def retry_message(session: Session, msg: Message, user: User) -> Message:
    """Queue a failed reply again, after checking the rules once more.

    Also a reply whose delivery is ``unknown`` (the provider did not answer): the
    agent has decided to send it again.
    """
    conv = session.get(Conversation, msg.conversation_id)
    if msg.direction != "outbound" or msg.status not in ("failed", "unknown"):
        raise InvalidMessage(
            "Only a reply that failed or whose delivery is unknown can be retried."
        )
    check_send(session, conv, now(), template=bool((msg.meta or {}).get("template")))
    msg.status = "queued"
    msg.error_code = msg.error_message = None
    if (msg.meta or {}).get("maybe_sent_since"):
        msg.meta = {k: v for k, v in msg.meta.items() if k != "maybe_sent_since"}
    session.add(OutboxItem(kind="send", inbox_id=msg.inbox_id, message_id=msg.id, payload={}))
    session.flush()
    events.changed(session, "message.updated", msg, ("inbox", conv.inbox_id))
    return msg

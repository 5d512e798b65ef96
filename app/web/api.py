"""The JSON API (``/api/v1``) of ``contract.md``. Thin: the domain does the work."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Blueprint, abort, jsonify, request
from flask_login import current_user

from app.channels import all_channels
from app.clock import aware, iso, now
from app.extensions import csrf, db
from app.inbox import assignment, automation, conversations, replies, signals
from app.inbox.connections import public_config
from app.inbox.queries import BadFilter, ListFilter, can_see, list_conversations
from app.inbox.serialize import conversation_dict, message_dict
from app.models import (
    ApiToken,
    Attachment,
    Conversation,
    Inbox,
    InboxMember,
    LoginSession,
    Message,
    Notification,
    User,
)
from app.web import files

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str, **extra) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    body = {"error": {"code": exc.code, "message": exc.message, **exc.extra}}
    return jsonify(body), exc.status


@bp.before_request
def _auth_and_csrf():
    """A valid bearer token needs no CSRF token; every cookie-authenticated write does.

    (Any ``Authorization`` header, even a bogus one, used to skip the check.)
    """
    if not current_user.is_authenticated:
        raise ApiError(401, "unauthorized", "Log in or send a bearer token.")
    from app.web.auth import token_authenticated

    if request.method not in ("GET", "HEAD", "OPTIONS") and not token_authenticated():
        from flask_wtf.csrf import CSRFError

        try:
            csrf.protect()
        except CSRFError as exc:
            raise ApiError(403, "csrf_failed", exc.description) from exc


def _json() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "Send a JSON object body.")
    return data


def _conversation(conversation_id: int) -> Conversation:
    conv = db.session.get(Conversation, conversation_id)
    if conv is None or not can_see(db.session, current_user, conv.inbox_id):
        raise ApiError(404, "not_found", "No such conversation.")
    return conv


def _parse_time(value, field: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ApiError(422, "invalid", f"{field} must be an ISO 8601 time.") from exc
    return aware(dt) if dt.tzinfo else aware(dt)


# --------------------------------------------------------------------------- conversations


@bp.get("/conversations")
def conversations_list():
    """The list with filters, sort, cursor and the three counts."""
    try:
        f = ListFilter.from_args(request.args)
        page = list_conversations(db.session, current_user, f)
    except BadFilter as exc:
        raise ApiError(400, "bad_filter", str(exc)) from exc
    at = now()
    return jsonify(
        {
            "items": [conversation_dict(c, at) for c in page["items"]],
            "counts": page["counts"],
            "next_cursor": page["next_cursor"],
        }
    )


@bp.get("/conversations/<int:conversation_id>")
def conversation_get(conversation_id: int):
    """One conversation."""
    return jsonify(conversation_dict(_conversation(conversation_id)))


@bp.get("/conversations/<int:conversation_id>/messages")
def messages_list(conversation_id: int):
    """Messages oldest first; ``before`` (a message id) pages back through history."""
    conv = _conversation(conversation_id)
    try:
        limit = max(1, min(200, int(request.args.get("limit") or 50)))
        before = int(request.args["before"]) if request.args.get("before") else None
    except ValueError as exc:
        raise ApiError(400, "bad_request", "limit and before must be numbers.") from exc
    q = sa.select(Message).where(Message.conversation_id == conv.id)
    if before:
        q = q.where(Message.id < before)
    rows = list(db.session.scalars(q.order_by(Message.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = list(reversed(rows[:limit]))
    return jsonify({"items": [message_dict(m) for m in rows], "has_more": more})


@bp.post("/conversations/<int:conversation_id>/messages")
def messages_post(conversation_id: int):
    """Queue a reply (202) or store a private note (201); refused sends answer 409."""
    conv = _conversation(conversation_id)
    data = _json()
    body = data.get("body")
    if body is not None and not isinstance(body, str):
        raise ApiError(422, "invalid", "body must be text.")
    client_id = data.get("client_id")
    if client_id is not None and (not isinstance(client_id, str) or len(client_id) > 100):
        raise ApiError(422, "invalid", "client_id must be text of at most 100 characters.")
    private = bool(data.get("private"))
    send_after = _parse_time(data.get("send_after"), "send_after")
    att_ids = data.get("attachment_ids") or []
    if not isinstance(att_ids, list) or not all(isinstance(i, int) for i in att_ids):
        raise ApiError(422, "invalid", "attachment_ids must be a list of ids.")
    _guard_new_activity(conv, data, client_id)
    try:
        msg, created = replies.post_message(
            db.session,
            conv,
            current_user,
            body or "",
            private=private,
            client_id=client_id,
            send_after=send_after,
            attachment_ids=att_ids,
        )
    except replies.InvalidMessage as exc:
        db.session.rollback()
        raise ApiError(422, "invalid", str(exc)) from exc
    except replies.SendRefused as exc:
        db.session.rollback()
        extra = {
            k: (v.isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v)
            for k, v in exc.details.items()
        }
        raise ApiError(409, exc.code, exc.message, **extra) from exc
    db.session.commit()
    status = 201 if msg.direction == "note" else 202
    return jsonify(message_dict(msg)), (status if created else 200)


def _guard_new_activity(conv: Conversation, data: dict, client_id) -> None:
    """Help Scout's guard: refuse (409 ``new_activity``) a post written without seeing
    a newer customer message or someone else's reply, unless ``force`` is true.

    Only applies when the client says what it saw (``seen_message_id``); a repeated
    ``client_id`` is answered by ``post_message`` with the first message instead.
    """
    seen = data.get("seen_message_id")
    if seen is None or data.get("force") is True:
        return
    if not isinstance(seen, int) or isinstance(seen, bool):
        raise ApiError(422, "invalid", "seen_message_id must be a message id.")
    if client_id and db.session.scalar(
        sa.select(Message.id).where(
            Message.conversation_id == conv.id, Message.client_id == client_id
        )
    ):
        return
    newer = list(
        db.session.scalars(
            sa.select(Message)
            .where(
                Message.conversation_id == conv.id,
                Message.id > seen,
                sa.or_(
                    Message.direction == "inbound",
                    sa.and_(
                        Message.direction == "outbound",
                        Message.automated.is_(False),
                        sa.or_(
                            Message.sender_user_id.is_(None),
                            Message.sender_user_id != current_user.id,
                        ),
                    ),
                ),
            )
            .order_by(Message.id)
            .limit(20)
        )
    )
    if newer:
        inbound = any(m.direction == "inbound" for m in newer)
        text = (
            "The customer wrote again since you last looked."
            if inbound
            else "A teammate replied since you last looked."
        )
        raise ApiError(
            409,
            "new_activity",
            text + " Review it, then send again.",
            messages=[message_dict(m) for m in newer],
        )


@bp.post("/conversations/<int:conversation_id>/messages/<int:message_id>/retry")
def message_retry(conversation_id: int, message_id: int):
    """Queue a failed reply again."""
    conv = _conversation(conversation_id)
    msg = db.session.get(Message, message_id)
    if msg is None or msg.conversation_id != conv.id:
        raise ApiError(404, "not_found", "No such message.")
    try:
        replies.retry_message(db.session, msg, current_user)
    except replies.InvalidMessage as exc:
        raise ApiError(409, "not_retryable", str(exc)) from exc
    except replies.SendRefused as exc:
        db.session.rollback()
        raise ApiError(409, exc.code, exc.message) from exc
    db.session.commit()
    return jsonify(message_dict(msg)), 202


@bp.get("/conversations/<int:conversation_id>/messages/<int:message_id>/original")
def message_original(conversation_id: int, message_id: int):
    """The full original text of a message (email with its quoted history)."""
    conv = _conversation(conversation_id)
    msg = db.session.get(Message, message_id)
    if msg is None or msg.conversation_id != conv.id:
        raise ApiError(404, "not_found", "No such message.")
    shown = message_dict(msg)  # html with cid: images resolved; the raw .eml as received
    original = shown["original"]
    return jsonify(
        {
            "id": msg.id,
            "full_body": msg.full_body or msg.body,
            "html": shown["html"],
            "eml_url": original["url"] if original else None,
        }
    )


@bp.post("/conversations/<int:conversation_id>/assign")
def conversation_assign(conversation_id: int):
    """Assign (agents: themselves only; leads and admins: anyone who can see the inbox)."""
    conv = _conversation(conversation_id)
    data = _json()
    if "assignee_id" not in data:
        raise ApiError(422, "invalid", "assignee_id is required (null to unassign).")
    target_id = data["assignee_id"]
    target = None
    if target_id is not None:
        if not isinstance(target_id, int):
            raise ApiError(422, "invalid", "assignee_id must be a user id or null.")
        target = db.session.get(User, target_id)
        if target is None or not target.active:
            raise ApiError(422, "invalid", "No such user.")
        if not can_see(db.session, target, conv.inbox_id):
            raise ApiError(422, "invalid", f"{target.name} is not a member of this inbox.")
    if not current_user.is_lead:
        own = target is not None and target.id == current_user.id
        unassign_self = target is None and conv.assignee_id == current_user.id
        if not (own or unassign_self):
            raise ApiError(403, "forbidden", "Agents can assign conversations only to themselves.")
    assignment.assign(db.session, conv, target, by=current_user)
    db.session.commit()
    return jsonify(conversation_dict(conv))


@bp.post("/conversations/<int:conversation_id>/status")
def conversation_status(conversation_id: int):
    """Open, pending, snooze (until a time) or close."""
    conv = _conversation(conversation_id)
    data = _json()
    status = data.get("status")
    snooze_until = _parse_time(data.get("snooze_until"), "snooze_until")
    try:
        conversations.set_status(db.session, conv, status, current_user, snooze_until)
    except conversations.InvalidStatus as exc:
        raise ApiError(422, "invalid", str(exc)) from exc
    db.session.commit()
    return jsonify(conversation_dict(conv))


@bp.post("/conversations/<int:conversation_id>/read")
def conversation_read(conversation_id: int):
    """The agent has seen the thread: clear the unread count (nothing is sent to the customer)."""
    conv = _conversation(conversation_id)
    conversations.mark_read(db.session, conv)
    db.session.commit()
    return jsonify(conversation_dict(conv))


@bp.post("/conversations/<int:conversation_id>/mark-seen")
def conversation_mark_seen(conversation_id: int):
    """Tell the customer their messages were seen (Messenger ``mark_seen``), on request only."""
    from app.inbox import hooks

    conv = _conversation(conversation_id)
    if not hooks.mark_seen(db.session, conv):
        raise ApiError(409, "unsupported", "This channel cannot show the customer a seen mark.")
    db.session.commit()
    return jsonify({"queued": True, "conversation_id": conv.id}), 202


@bp.post("/conversations/bulk")
def conversations_bulk():
    """Assign or change the status of many conversations at once."""
    data = _json()
    ids = data.get("ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, int) for i in ids):
        raise ApiError(422, "invalid", "ids must be a non-empty list of conversation ids.")
    if len(ids) > 500:
        raise ApiError(422, "invalid", "At most 500 conversations at once.")
    action = data.get("action")
    convs = [_conversation(i) for i in ids]
    left: list[int] = []
    if action == "assign" and data.get("assignee_id") == "auto":
        # distribute the unassigned ones by each inbox's mode (round robin in manual inboxes)
        if not current_user.is_lead:
            raise ApiError(403, "forbidden", "Only team leads can assign in bulk.")
        left = assignment.distribute(db.session, convs, by=current_user)
    elif action == "assign":
        if not current_user.is_lead:
            raise ApiError(403, "forbidden", "Only team leads can assign in bulk.")
        target = db.session.get(User, data.get("assignee_id")) if data.get("assignee_id") else None
        for conv in convs:
            if target is None or can_see(db.session, target, conv.inbox_id):
                assignment.assign(db.session, conv, target, by=current_user)
    elif action == "status":
        try:
            for conv in convs:
                conversations.set_status(
                    db.session,
                    conv,
                    data.get("status"),
                    current_user,
                    _parse_time(data.get("snooze_until"), "snooze_until"),
                )
        except conversations.InvalidStatus as exc:
            db.session.rollback()
            raise ApiError(422, "invalid", str(exc)) from exc
    else:
        raise ApiError(422, "invalid", "action must be assign or status.")
    db.session.commit()
    return jsonify({"items": [conversation_dict(c) for c in convs], "unassigned_ids": left})


@bp.post("/conversations/<int:conversation_id>/decline")
def conversation_decline(conversation_id: int):
    """Decline with a reason: the conversation is closed and flagged (``status=declined``)."""
    conv = _conversation(conversation_id)
    try:
        automation.decline(db.session, conv, _json().get("reason"), current_user)
    except automation.InvalidDecline as exc:
        raise ApiError(422, "invalid", str(exc)) from exc
    db.session.commit()
    return jsonify(conversation_dict(conv))


@bp.post("/conversations/<int:conversation_id>/undecline")
def conversation_undecline(conversation_id: int):
    """Reactivate a declined conversation: the flag is cleared and it is open again."""
    conv = _conversation(conversation_id)
    try:
        automation.undecline(db.session, conv, current_user)
    except automation.InvalidDecline as exc:
        raise ApiError(409, "not_declined", str(exc)) from exc
    db.session.commit()
    return jsonify(conversation_dict(conv))


@bp.get("/contacts/<int:contact_id>/conversations")
def contact_conversations(contact_id: int):
    """The contact's conversations (with contacts merged into it) in inboxes the user sees."""
    from app.inbox.queries import visible_inbox_ids
    from app.models import Contact

    contact = db.session.get(Contact, contact_id)
    if contact is None:
        raise ApiError(404, "not_found", "No such contact.")
    merged = sa.select(Contact.id).where(Contact.merged_into_id == contact.id)
    q = sa.select(Conversation).where(
        sa.or_(Conversation.contact_id == contact.id, Conversation.contact_id.in_(merged))
    )
    visible = visible_inbox_ids(current_user)
    if visible is not None:
        q = q.where(Conversation.inbox_id.in_(visible))
    rows = list(
        db.session.scalars(
            q.order_by(Conversation.last_activity_at.desc(), Conversation.id.desc()).limit(50)
        ).unique()
    )
    if not rows and visible is not None:
        raise ApiError(404, "not_found", "No such contact.")
    at = now()
    return jsonify({"contact": contact.ref(), "items": [conversation_dict(c, at) for c in rows]})


# --------------------------------------------------------------------------- SMS


@bp.post("/sms/segments")
def sms_segments():
    """How a draft goes out as SMS: encoding, units, segments, what is left in the last one."""
    from connectors.sms import segments

    body = _json().get("body", "")
    if not isinstance(body, str):
        raise ApiError(422, "invalid", "body must be text.")
    return jsonify(segments.count(body).to_dict())


# --------------------------------------------------------------------------- inboxes & users


def inbox_dict(inbox: Inbox, with_members: bool = False) -> dict:
    """An inbox for the API: settings and identifiers, never a secret."""
    data = {
        **inbox.ref(),
        "identifiers": public_config(inbox),
        "settings": automation.effective_settings(inbox),
        "needs_reconnect": inbox.needs_reconnect,
        "last_event_at": inbox.last_event_at.isoformat() if inbox.last_event_at else None,
        "last_error": inbox.last_error,
        "last_error_at": inbox.last_error_at.isoformat() if inbox.last_error_at else None,
        "active": inbox.active,
    }
    imap = (inbox.state or {}).get("imap")
    if imap:  # mailbox polling health: last success, retry time
        data["imap"] = {
            k: imap.get(k)
            for k in ("last_ok_at", "last_error", "last_error_at", "failures", "retry_at")
        }
    if with_members:
        data["member_ids"] = list(
            db.session.scalars(
                sa.select(InboxMember.user_id).where(InboxMember.inbox_id == inbox.id)
            )
        )
    return data


@bp.get("/channels")
def channels_list():
    """Every channel kind the server knows: its settings' fields and what it can do (no secrets)."""
    return jsonify([channel.describe() for channel in all_channels()])


@bp.get("/inboxes")
def inboxes_list():
    """Inboxes the user can see."""
    q = sa.select(Inbox).order_by(Inbox.id)
    if not current_user.is_lead:
        q = q.join(InboxMember, InboxMember.inbox_id == Inbox.id).where(
            InboxMember.user_id == current_user.id
        )
    return jsonify({"items": [inbox_dict(i, current_user.is_lead) for i in db.session.scalars(q)]})


@bp.patch("/inboxes/<int:inbox_id>")
def inbox_patch(inbox_id: int):
    """Change inbox settings (team leads and admins)."""
    if not current_user.is_lead:
        raise ApiError(403, "forbidden", "Only team leads and admins change inbox settings.")
    inbox = db.session.get(Inbox, inbox_id)
    if inbox is None:
        raise ApiError(404, "not_found", "No such inbox.")
    data = _json()
    from app.inbox import settings as inbox_settings

    try:
        inbox_settings.update(db.session, inbox, data)
    except inbox_settings.InvalidSetting as exc:
        raise ApiError(422, "invalid", str(exc)) from exc
    db.session.commit()
    return jsonify(inbox_dict(inbox, True))


@bp.get("/users")
def users_list():
    """Everyone on the team (names, roles, availability; no secrets)."""
    users = db.session.scalars(sa.select(User).where(User.active.is_(True)).order_by(User.name))
    return jsonify({"items": [u.to_dict() for u in users]})


@bp.get("/me")
def me():
    """The signed-in user."""
    return jsonify(current_user.to_dict())


@bp.patch("/me")
def me_patch():
    """Change my availability or language."""
    data = _json()
    from app.models.user import AVAILABILITY

    if "availability" in data:
        if data["availability"] not in AVAILABILITY:
            raise ApiError(422, "invalid", "availability must be online, away or busy.")
        current_user.availability = data["availability"]
        if data["availability"] == "online":  # back: the unassigned queue may have waited
            db.session.flush()
            assignment.capacity_freed(db.session, current_user.id)
    if "locale" in data:
        from flask import current_app

        if data["locale"] not in current_app.config["LANGUAGES"]:
            raise ApiError(422, "invalid", "Unsupported language.")
        current_user.locale = data["locale"]
    from app.inbox import events

    events.publish(db.session, "presence.updated", {"user": current_user.to_dict()}, ("all", 0))
    db.session.commit()
    return jsonify(current_user.to_dict())


# --------------------------------------------------------------------------- my sign-ins and tokens


@bp.get("/me/tokens")
def my_tokens():
    """My API tokens (names and dates; a token itself is shown only when created)."""
    rows = db.session.scalars(
        sa.select(ApiToken).where(ApiToken.user_id == current_user.id).order_by(ApiToken.id)
    )
    return jsonify({"items": [row.to_dict() for row in rows]})


@bp.post("/me/tokens")
def my_token_create():
    """A new API token for me: ``{"name", "expires_in_days"?}``; the token is in this answer only."""
    data = _json()
    name = str(data.get("name") or "api").strip()[:80] or "api"
    days = data.get("expires_in_days")
    expires_at = None
    if days is not None:
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 3650:
            raise ApiError(422, "invalid", "expires_in_days must be a whole number from 1 to 3650.")
        expires_at = now() + timedelta(days=days)
    row, clear = ApiToken.issue(current_user, name=name, expires_at=expires_at)
    db.session.add(row)
    db.session.commit()
    return jsonify({**row.to_dict(), "token": clear}), 201


@bp.delete("/me/tokens/<int:token_id>")
def my_token_delete(token_id: int):
    """Revoke one of my API tokens: it stops working at once (live connections included)."""
    row = db.session.get(ApiToken, token_id)
    if row is None or row.user_id != current_user.id:
        raise ApiError(404, "not_found", "No such token.")
    db.session.delete(row)
    db.session.commit()
    signals.access_changed.send(current_user.id)
    return "", 204


@bp.get("/me/sessions")
def my_sessions():
    """Where I am signed in (browser sign-ins); ``current`` marks this one."""
    from app.models.user import hash_token

    key = current_user.login_key
    mine = hash_token(key) if key else None
    rows = db.session.scalars(
        sa.select(LoginSession)
        .where(LoginSession.user_id == current_user.id)
        .order_by(LoginSession.id)
    )
    items = [
        {
            "id": row.id,
            "created_at": iso(row.created_at),
            "user_agent": row.user_agent,
            "current": row.key_hash == mine,
        }
        for row in rows
    ]
    return jsonify({"items": items})


@bp.delete("/me/sessions")
def my_sessions_end():
    """Sign out everywhere: every browser sign-in of mine ends, this one too."""
    from app.web.auth import end_sign_ins

    end_sign_ins(current_user.id)
    db.session.commit()
    signals.access_changed.send(current_user.id)
    return "", 204


# --------------------------------------------------------------------------- notifications


@bp.get("/me/notification-settings")
def notification_settings_get():
    """Which kinds notify me in the app, as a desktop notification, and by email when offline."""
    from app.inbox import notifications

    return jsonify(notifications.settings_dict(current_user))


@bp.patch("/me/notification-settings")
def notification_settings_patch():
    """Change ``{"kinds": {"assigned": {"in_app": true, "desktop": true, "email": false}}}``."""
    from app.inbox import notifications

    try:
        notifications.update_settings(current_user, _json())
    except notifications.InvalidSettings as exc:
        raise ApiError(422, "invalid", str(exc)) from exc
    db.session.commit()
    return jsonify(notifications.settings_dict(current_user))


@bp.get("/notifications")
def notifications_list():
    """My notifications, newest first; ``unread=1`` for unread only."""
    q = sa.select(Notification).where(Notification.user_id == current_user.id)
    if request.args.get("unread") in ("1", "true"):
        q = q.where(Notification.read_at.is_(None))
    rows = db.session.scalars(q.order_by(Notification.id.desc()).limit(100))
    return jsonify({"items": [n.to_dict() for n in rows]})


@bp.post("/notifications/read")
def notifications_read():
    """Mark some (``ids``) or all of my notifications read."""
    data = request.get_json(silent=True) or {}
    q = sa.update(Notification).where(
        Notification.user_id == current_user.id, Notification.read_at.is_(None)
    )
    if isinstance(data.get("ids"), list):
        q = q.where(Notification.id.in_([i for i in data["ids"] if isinstance(i, int)]))
    db.session.execute(q.values(read_at=now()))
    db.session.commit()
    return jsonify({"ok": True})


# --------------------------------------------------------------------------- files


@bp.get("/attachments/<int:attachment_id>")
def attachment_file(attachment_id: int):
    """An attachment's bytes, to logged-in users who can see its conversation."""
    att = db.session.get(Attachment, attachment_id)
    if att is None or not att.storage_key:
        abort(404)
    _conversation(att.message.conversation_id)
    return files.send_attachment(att, private=True)

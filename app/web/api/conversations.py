"""Conversations: the list with its counts, one conversation, assigning, status, bulk changes."""

from __future__ import annotations

from flask import current_app, jsonify, request
from flask_login import current_user

from app.clock import now
from app.extensions import db
from app.inbox import assignment, automation, conversations, hooks, labels
from app.inbox.queries import BadFilter, ListFilter, can_see, list_conversations
from app.models import User
from app.web.api.base import bp, json_body, parse_time, visible_conversation
from app.web.api.errors import ApiError
from app.web.api.labels import resolve
from app.web.schemas import conversation_dict


@bp.get("/conversations")
def conversations_list():
    """The list with filters, sort, cursor and the three counts."""
    at = now()  # before the read: a copy is never newer than its "as_of" says
    try:
        f = ListFilter.from_args(
            request.args, region=current_app.config.get("DEFAULT_PHONE_REGION")
        )
        page = list_conversations(db.session, current_user, f)
    except BadFilter as exc:
        raise ApiError(400, "bad_filter", str(exc)) from exc
    matches = page["matches"]  # a search: the message each conversation was found by
    return jsonify(
        {
            "items": [
                conversation_dict(c, at) | ({"match": matches[c.id]} if c.id in matches else {})
                for c in page["items"]
            ],
            "counts": page["counts"],
            "next_cursor": page["next_cursor"],
        }
    )


@bp.get("/conversations/<int:conversation_id>")
def conversation_get(conversation_id: int):
    """One conversation."""
    return jsonify(conversation_dict(visible_conversation(conversation_id)))


@bp.post("/conversations/<int:conversation_id>/assign")
def conversation_assign(conversation_id: int):
    """Assign to anyone who can see the inbox (agents: see ``assignment.check_may_assign``)."""
    conv = visible_conversation(conversation_id)
    data = json_body()
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
    try:
        assignment.check_may_assign(current_user, conv, target)
    except assignment.AssignRefused as exc:
        raise ApiError(403, "forbidden", str(exc)) from exc
    assignment.assign(db.session, conv, target, by=current_user)
    db.session.commit()
    return jsonify(conversation_dict(conv))


@bp.post("/conversations/<int:conversation_id>/status")
def conversation_status(conversation_id: int):
    """Open, pending, snooze (until a time) or close."""
    conv = visible_conversation(conversation_id)
    data = json_body()
    status = data.get("status")
    snooze_until = parse_time(data.get("snooze_until"), "snooze_until")
    try:
        conversations.set_status(db.session, conv, status, current_user, snooze_until)
    except conversations.InvalidStatus as exc:
        raise ApiError(422, "invalid", str(exc)) from exc
    db.session.commit()
    return jsonify(conversation_dict(conv))


@bp.post("/conversations/<int:conversation_id>/read")
def conversation_read(conversation_id: int):
    """The agent has seen the thread: clear the unread count (nothing is sent to the customer)."""
    conv = visible_conversation(conversation_id)
    conversations.mark_read(db.session, conv)
    db.session.commit()
    return jsonify(conversation_dict(conv))


@bp.post("/conversations/<int:conversation_id>/mark-seen")
def conversation_mark_seen(conversation_id: int):
    """Tell the customer their messages were seen (Messenger ``mark_seen``), on request only."""
    conv = visible_conversation(conversation_id)
    if not hooks.mark_seen(db.session, conv):
        raise ApiError(409, "unsupported", "This channel cannot show the customer a seen mark.")
    db.session.commit()
    return jsonify({"queued": True, "conversation_id": conv.id}), 202


@bp.post("/conversations/bulk")
def conversations_bulk():
    """Assign, change the status of, or label many conversations at once."""
    data = json_body()
    ids = data.get("ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, int) for i in ids):
        raise ApiError(422, "invalid", "ids must be a non-empty list of conversation ids.")
    if len(ids) > 500:
        raise ApiError(422, "invalid", "At most 500 conversations at once.")
    action = data.get("action")
    convs = [visible_conversation(i) for i in ids]
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
                    parse_time(data.get("snooze_until"), "snooze_until"),
                )
        except conversations.InvalidStatus as exc:
            db.session.rollback()
            raise ApiError(422, "invalid", str(exc)) from exc
    elif action == "labels":
        add = resolve(data.get("add_labels") or [], "add_labels")
        remove = resolve(data.get("remove_labels") or [], "remove_labels")
        if not add and not remove:
            raise ApiError(422, "invalid", "Give add_labels or remove_labels (label names).")
        for conv in convs:
            labels.change(db.session, conv, add=add, remove=remove, by=current_user)
    else:
        raise ApiError(422, "invalid", "action must be assign, status or labels.")
    db.session.commit()
    return jsonify({"items": [conversation_dict(c) for c in convs], "unassigned_ids": left})


@bp.post("/conversations/<int:conversation_id>/decline")
def conversation_decline(conversation_id: int):
    """Decline with a reason: the conversation is closed and flagged (``status=declined``)."""
    conv = visible_conversation(conversation_id)
    try:
        automation.decline(db.session, conv, json_body().get("reason"), current_user)
    except automation.InvalidDecline as exc:
        raise ApiError(422, "invalid", str(exc)) from exc
    db.session.commit()
    return jsonify(conversation_dict(conv))


@bp.post("/conversations/<int:conversation_id>/undecline")
def conversation_undecline(conversation_id: int):
    """Reactivate a declined conversation: the flag is cleared and it is open again."""
    conv = visible_conversation(conversation_id)
    try:
        automation.undecline(db.session, conv, current_user)
    except automation.InvalidDecline as exc:
        raise ApiError(409, "not_declined", str(exc)) from exc
    db.session.commit()
    return jsonify(conversation_dict(conv))

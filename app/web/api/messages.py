"""A conversation's messages: history, replies and notes (with the new-activity guard),
retries, the original text, and how a draft goes out as SMS."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask import jsonify, request
from flask_login import current_user

from app import channels
from app.extensions import db
from app.inbox import guards, replies
from app.models import Conversation, Message
from app.web.api import templates
from app.web.api.base import bp, json_body, parse_time, visible_conversation
from app.web.api.errors import ApiError
from app.web.schemas import message_dict
from connectors.sms import segments


@bp.get("/conversations/<int:conversation_id>/messages")
def messages_list(conversation_id: int):
    """Messages oldest first; ``before`` (a message id) pages back through history."""
    conv = visible_conversation(conversation_id)
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
    conv = visible_conversation(conversation_id)
    data = json_body()
    body = data.get("body")
    if body is not None and not isinstance(body, str):
        raise ApiError(422, "invalid", "body must be text.")
    client_id = data.get("client_id")
    if client_id is not None and (not isinstance(client_id, str) or len(client_id) > 100):
        raise ApiError(422, "invalid", "client_id must be text of at most 100 characters.")
    private = bool(data.get("private"))
    send_after = parse_time(data.get("send_after"), "send_after")
    att_ids = data.get("attachment_ids") or []
    if not isinstance(att_ids, list) or not all(isinstance(i, int) for i in att_ids):
        raise ApiError(422, "invalid", "attachment_ids must be a list of ids.")
    template = _template(conv, data.get("template"))
    if template is not None:
        body = template.pop("text")
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
            template=template,
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


#: What the composer says of a template the inbox cannot fill (``unsupported``).
UNSUPPORTED = {
    "media_header": "its header is an image, a video, a document or a location",
    "button_params": "a button takes a value for each send",
    "named_params": "its parameters are named, not numbered",
}


def _texts(raw, key: str) -> list[str]:
    values = raw.get(key) or []
    if not isinstance(values, list) or not all(
        isinstance(p, str | int | float) and not isinstance(p, bool) for p in values
    ):
        raise ApiError(422, "invalid", f"template {key} must be a list of texts.")
    return [str(p).strip() for p in values]


def _template(conv: Conversation, raw) -> dict | None:
    """``{"name", "language", "params", "header_params"}`` of a template send, checked
    against the inbox's approved templates, with ``text``: what the customer reads. None
    for other sends."""
    if raw is None:
        return None
    if not channels.get(conv.inbox.channel).templates:
        raise ApiError(422, "invalid", "This channel has no message templates.")
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise ApiError(422, "invalid", "template must be an object with a name.")
    language = raw.get("language") or "en_US"
    if not isinstance(language, str):
        raise ApiError(422, "invalid", "template language must be text.")
    params, header_params = _texts(raw, "params"), _texts(raw, "header_params")
    found = templates.find(conv.inbox, raw["name"], language)
    if found is None:
        raise ApiError(
            422, "invalid", f"No approved template {raw['name']} in {language} for this inbox."
        )
    if found.get("unsupported"):
        why = UNSUPPORTED.get(found["unsupported"], found["unsupported"])
        raise ApiError(
            422,
            "template_unsupported",
            f"The template {found['name']} cannot be sent from the inbox: {why}. "
            "Send it from the platform's own tools.",
        )
    wanted = (
        ("body", params, found["params"]),
        ("header", header_params, found.get("header_params", 0)),
    )
    for where, given, count in wanted:
        if len(given) != count or not all(given):
            raise ApiError(
                422,
                "invalid",
                f"The template {found['name']} takes {count} {where} parameter(s), each filled.",
            )
    text = channels.get(conv.inbox.channel).template_text(found, params)
    out = {"name": found["name"], "language": language, "params": params, "text": text}
    return out | ({"header_params": header_params} if header_params else {})


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
    newer = guards.unseen_activity(db.session, conv.id, seen, current_user.id, client_id)
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
    conv = visible_conversation(conversation_id)
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
    conv = visible_conversation(conversation_id)
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


@bp.post("/sms/segments")
def sms_segments():
    """How a draft goes out as SMS: encoding, units, segments, what is left in the last one."""
    body = json_body().get("body", "")
    if not isinstance(body, str):
        raise ApiError(422, "invalid", "body must be text.")
    return jsonify(segments.count(body).to_dict())

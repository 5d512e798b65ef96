"""Attachments' bytes, for users who can see their conversation; agents' uploads of files
to send (``POST /api/v1/uploads``), and taking back one not sent yet."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, jsonify, request
from flask_login import current_user

from app.extensions import db
from app.inbox import uploads
from app.inbox.queries import visible_inbox_ids
from app.models import Attachment, Conversation, Inbox
from app.web import files
from app.web.api.base import bp, visible_conversation
from app.web.api.errors import ApiError
from app.web.schemas import attachment_dict


@bp.get("/attachments/<int:attachment_id>")
def attachment_file(attachment_id: int):
    """An attachment's bytes, to logged-in users who can see its conversation (an upload
    not sent yet: to its uploader only)."""
    att = db.session.get(Attachment, attachment_id)
    if att is None or not att.storage_key:
        abort(404)
    if att.message_id is None:
        if att.uploaded_by_id != current_user.id:
            abort(404)
    else:
        visible_conversation(att.message.conversation_id)
    return files.send_attachment(att, private=True)


def _sending_inboxes() -> list[Inbox]:
    """The inboxes an upload may go out from: the conversation's when the form names one,
    else every active inbox the user sees."""
    conv_id = request.form.get("conversation_id")
    if conv_id:
        try:
            conv: Conversation = visible_conversation(int(conv_id))
        except ValueError as exc:
            raise ApiError(422, "invalid", "conversation_id must be a number.") from exc
        return [conv.inbox]
    q = sa.select(Inbox).where(Inbox.active.is_(True))
    visible = visible_inbox_ids(current_user)
    if visible is not None:
        q = q.where(Inbox.id.in_(visible))
    return list(db.session.scalars(q))


@bp.post("/uploads")
def upload_create():
    """Store a file to send (multipart field ``file``): 201 with the upload, 422
    ``attachment_refused`` when no inbox it could go out from takes it (type or size)."""
    sent = request.files.get("file")
    if sent is None:
        raise ApiError(400, "bad_request", "Send the file as the multipart field 'file'.")
    content = sent.read()
    if not content:
        raise ApiError(422, "invalid", "The file is empty.")
    try:
        att = uploads.store(
            db.session,
            current_user,
            sent.filename,
            sent.mimetype,
            content,
            _sending_inboxes(),
        )
    except uploads.UploadRefused as exc:
        db.session.rollback()
        raise ApiError(422, "attachment_refused", exc.message, **exc.refusal.to_dict()) from exc
    db.session.commit()
    return jsonify(attachment_dict(att)), 201


@bp.delete("/uploads/<int:attachment_id>")
def upload_delete(attachment_id: int):
    """Take back an upload not sent yet (204); only its uploader may."""
    key = uploads.discard(db.session, current_user, attachment_id)
    if key is None:
        raise ApiError(404, "not_found", "No such upload waiting to be sent.")
    db.session.commit()
    uploads.delete_files([key])
    return "", 204

"""Attachments' bytes, for users who can see their conversation."""

from __future__ import annotations

from flask import abort

from app.extensions import db
from app.models import Attachment
from app.web import files
from app.web.api.base import bp, visible_conversation


@bp.get("/attachments/<int:attachment_id>")
def attachment_file(attachment_id: int):
    """An attachment's bytes, to logged-in users who can see its conversation."""
    att = db.session.get(Attachment, attachment_id)
    if att is None or not att.storage_key:
        abort(404)
    visible_conversation(att.message.conversation_id)
    return files.send_attachment(att, private=True)

"""Contacts: a contact's conversations across the inboxes the user sees."""

from __future__ import annotations

import sqlalchemy as sa
from flask import jsonify
from flask_login import current_user

from app.clock import now
from app.extensions import db
from app.inbox.queries import visible_inbox_ids
from app.models import Contact, Conversation
from app.web.api.base import bp
from app.web.api.errors import ApiError
from app.web.schemas import conversation_dict


@bp.get("/contacts/<int:contact_id>/conversations")
def contact_conversations(contact_id: int):
    """The contact's conversations (with contacts merged into it) in inboxes the user sees."""
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

"""Contacts: one contact with its conversations across the inboxes the user sees, editing,
search, merge suggestions, merging, and the data-protection export and erasure."""

from __future__ import annotations

import json
import logging

from flask import Response, current_app, jsonify, request
from flask_login import current_user

from app import storage
from app.clock import now
from app.extensions import db
from app.inbox import contacts, erasure, merge, outreach, replies
from app.models import Contact
from app.web.api.base import bp, json_body, need_admin, need_lead
from app.web.api.errors import ApiError
from app.web.schemas import contact_dict, contact_summary, conversation_dict, message_dict

log = logging.getLogger(__name__)


def visible_contact(contact_id: int) -> Contact:
    """The contact, when the user may see it; 404 otherwise (whether or not it exists)."""
    contact = db.session.get(Contact, contact_id)
    if contact is None or not contacts.can_see_contact(db.session, current_user, contact):
        raise ApiError(404, "not_found", "No such contact.")
    return contact


def _contact_response(contact: Contact):
    convs = contacts.conversations_of(db.session, current_user, contact.id)
    return jsonify(contact_dict(contact, convs, now()))


def _other_id() -> int:
    raw = request.args.get("other_id") if request.method == "GET" else json_body().get("other_id")
    try:
        if isinstance(raw, bool):
            raise ValueError
        return int(raw)
    except (TypeError, ValueError) as exc:
        raise ApiError(422, "invalid", "other_id must be a contact id.") from exc


@bp.get("/contacts")
def contacts_search():
    """Contacts the user sees whose name, email, phone or identity holds ``q`` ("Merge with...")."""
    try:
        limit = max(1, min(50, int(request.args.get("limit") or contacts.SEARCH_LIMIT)))
        exclude = int(request.args["exclude"]) if request.args.get("exclude") else None
    except ValueError as exc:
        raise ApiError(400, "bad_request", "limit and exclude must be numbers.") from exc
    found = contacts.search(
        db.session, current_user, request.args.get("q") or "", exclude=exclude, limit=limit
    )
    return jsonify({"items": [contact_summary(c) for c in found]})


@bp.get("/contacts/<int:contact_id>")
def contact_get(contact_id: int):
    """The contact: details, identities, notes, attributes and the conversations the user sees."""
    return _contact_response(visible_contact(contact_id))


@bp.patch("/contacts/<int:contact_id>")
def contact_patch(contact_id: int):
    """Edit name, email, phone (stored in E.164), notes and attributes; 422 names wrong fields."""
    contact = visible_contact(contact_id)
    data = json_body()
    try:
        contacts.update_details(
            db.session, contact, data, region=current_app.config.get("DEFAULT_PHONE_REGION")
        )
    except contacts.InvalidContact as exc:
        db.session.rollback()
        message = "; ".join(f"{k} {v}" for k, v in exc.fields.items())
        raise ApiError(
            422, "invalid", message[:1].upper() + message[1:], fields=exc.fields
        ) from exc
    db.session.commit()
    return _contact_response(contact)


@bp.get("/contacts/<int:contact_id>/conversations")
def contact_conversations(contact_id: int):
    """The contact's conversations in inboxes the user sees (``{contact, items}``)."""
    contact = visible_contact(contact_id)
    rows = contacts.conversations_of(db.session, current_user, contact.id, limit=50)
    at = now()
    return jsonify({"contact": contact.ref(), "items": [conversation_dict(c, at) for c in rows]})


@bp.get("/contacts/<int:contact_id>/suggestions")
def contact_suggestions(contact_id: int):
    """Other contacts that share an email address or a phone number with this one."""
    contact = visible_contact(contact_id)
    found = contacts.suggestions(db.session, current_user, contact)
    return jsonify(
        {
            "items": [
                {**contact_summary(s.contact), "shared": {"kind": s.kind, "value": s.address}}
                for s in found
            ]
        }
    )


def _merge_pair(contact_id: int) -> tuple[Contact, Contact]:
    survivor = visible_contact(contact_id)
    other = visible_contact(_other_id())
    return survivor, other


@bp.get("/contacts/<int:contact_id>/merge")
def contact_merge_preview(contact_id: int):
    """What merging ``other_id`` into this contact moves (nothing changes)."""
    survivor, other = _merge_pair(contact_id)
    try:
        plan = merge.plan(db.session, current_user, survivor, other)
    except merge.MergeRefused as exc:
        raise ApiError(409, "merge_refused", str(exc)) from exc
    at = now()
    return jsonify(
        {
            "survivor": contact_summary(survivor),
            "other": contact_summary(other),
            "identities": [i.to_dict() for i in plan.identities],
            "conversations": [conversation_dict(c, at) for c in plan.conversations],
            "hidden_conversations": plan.hidden_conversations,
            "details": plan.details,
        }
    )


@bp.post("/contacts/<int:contact_id>/merge")
def contact_merge(contact_id: int):
    """Move ``other_id``'s identities and conversations to this contact and delete it."""
    survivor, other = _merge_pair(contact_id)
    try:
        moved = merge.merge(db.session, current_user, survivor, other)
    except merge.MergeRefused as exc:
        db.session.rollback()
        raise ApiError(409, "merge_refused", str(exc)) from exc
    db.session.commit()
    response = _contact_response(survivor)
    body = response.get_json()
    body["moved_conversation_ids"] = sorted(c.id for c in moved)
    return jsonify(body)


@bp.get("/contacts/<int:contact_id>/export")
def contact_export(contact_id: int):
    """Everything stored about the contact, as a JSON download (leads and admins; audited)."""
    need_lead()
    contact = visible_contact(contact_id)
    data = erasure.export(db.session, contact, current_user)
    db.session.commit()
    body = json.dumps(data, ensure_ascii=False, indent=2)
    return Response(
        body,
        mimetype="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="contact-{contact.id}.json"',
            "Cache-Control": "no-store",
        },
    )


@bp.delete("/contacts/<int:contact_id>")
def contact_erase(contact_id: int):
    """Erase the contact's messages, files, identities and details (admins; audited)."""
    need_admin()
    contact = visible_contact(contact_id)
    done = erasure.erase(db.session, contact, current_user)
    db.session.commit()
    for key in done.storage_keys:  # the rows are gone: now the files
        try:
            storage.path_for(key).unlink(missing_ok=True)
        except (OSError, ValueError):
            log.exception("could not delete the erased file %s", key)
    return _contact_response(db.session.get(Contact, contact_id))


@bp.get("/contacts/<int:contact_id>/reach")
def contact_reach(contact_id: int):
    """The inboxes (and addresses) the user may start a conversation with the contact from."""
    contact = visible_contact(contact_id)
    return jsonify(
        {
            "items": [
                {
                    "inbox": r.inbox.ref(),
                    "address": r.address,
                    "identity": r.identity is not None,
                    "allowed": r.allowed,
                    "code": r.code,
                    "reason": r.reason,
                    "subject": r.subject,
                }
                for r in outreach.options(db.session, current_user, contact)
            ]
        }
    )


@bp.post("/contacts/<int:contact_id>/conversations")
def contact_start(contact_id: int):
    """Start a conversation: ``{inbox_id, address, body, subject?, client_id?}``; 201, or 409."""
    contact = visible_contact(contact_id)
    data = json_body()
    inbox_id, address, body = data.get("inbox_id"), data.get("address"), data.get("body")
    if not isinstance(inbox_id, int) or isinstance(inbox_id, bool):
        raise ApiError(422, "invalid", "inbox_id must be an inbox id.")
    if not isinstance(address, str) or not isinstance(body, str):
        raise ApiError(422, "invalid", "address and body must be text.")
    subject, client_id = data.get("subject"), data.get("client_id")
    if subject is not None and not isinstance(subject, str):
        raise ApiError(422, "invalid", "subject must be text.")
    if client_id is not None and (not isinstance(client_id, str) or len(client_id) > 100):
        raise ApiError(422, "invalid", "client_id must be text of at most 100 characters.")
    try:
        conv, msg = outreach.start(
            db.session,
            current_user,
            contact,
            inbox_id,
            address,
            body,
            subject=subject,
            client_id=client_id,
        )
    except outreach.CannotStart as exc:
        db.session.rollback()
        raise ApiError(409, exc.code, exc.message) from exc
    except replies.InvalidMessage as exc:
        db.session.rollback()
        raise ApiError(422, "invalid", str(exc)) from exc
    except replies.SendRefused as exc:
        db.session.rollback()
        raise ApiError(409, exc.code, exc.message) from exc
    db.session.commit()
    return jsonify({"conversation": conversation_dict(conv), "message": message_dict(msg)}), 201

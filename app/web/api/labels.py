"""Labels: everyone reads the list; leads and admins keep it; agents label what they can see."""

from __future__ import annotations

from flask import jsonify, request
from flask_login import current_user

from app.extensions import db
from app.inbox import labels
from app.models import Label
from app.web.api.base import bp, json_body, need_lead, visible_conversation
from app.web.api.errors import ApiError
from app.web.schemas import conversation_dict


def resolve(names, field: str = "labels") -> list[Label]:
    """The labels called ``names``; 422 ``unknown_label`` (naming them) for names not in the list."""
    if not isinstance(names, list):
        raise ApiError(422, "invalid", f"{field} must be a list of label names.")
    try:
        return labels.by_names(db.session, names)
    except labels.InvalidLabel as exc:
        raise ApiError(422, "invalid", str(exc)) from exc
    except labels.UnknownLabels as exc:
        raise ApiError(
            422,
            "unknown_label",
            f"No label named {', '.join(exc.names)}. Team leads and admins add labels.",
            labels=exc.names,
        ) from exc


def _label(label_id: int) -> Label:
    label = db.session.get(Label, label_id)
    if label is None:
        raise ApiError(404, "not_found", "No such label.")
    return label


@bp.get("/labels")
def labels_list():
    """Every label, by name; ``?usage=1`` adds how many conversations carry each."""
    items = [label.to_dict() for label in labels.all_labels(db.session)]
    if request.args.get("usage"):
        used = labels.usage(db.session)
        for item in items:
            item["conversations"] = used.get(item["id"], 0)
    return jsonify({"items": items})


@bp.post("/labels")
def label_create():
    """Add a label ``{"name", "color"?}`` (team leads and admins)."""
    need_lead()
    data = json_body()
    try:
        label = labels.create(db.session, data.get("name"), data.get("color"))
    except labels.InvalidLabel as exc:
        raise ApiError(422, "invalid", str(exc)) from exc
    except labels.LabelTaken as exc:
        raise ApiError(409, "duplicate", str(exc)) from exc
    db.session.commit()
    return jsonify(label.to_dict()), 201


@bp.patch("/labels/<int:label_id>")
def label_update(label_id: int):
    """Rename or recolour a label ``{"name"?, "color"?}`` (team leads and admins)."""
    need_lead()
    label = _label(label_id)
    data = json_body()
    try:
        labels.update(db.session, label, data.get("name"), data.get("color"))
    except labels.InvalidLabel as exc:
        raise ApiError(422, "invalid", str(exc)) from exc
    except labels.LabelTaken as exc:
        raise ApiError(409, "duplicate", str(exc)) from exc
    db.session.commit()
    return jsonify(label.to_dict())


@bp.delete("/labels/<int:label_id>")
def label_delete(label_id: int):
    """Delete a label; conversations lose it (team leads and admins)."""
    need_lead()
    labels.delete(db.session, _label(label_id))
    db.session.commit()
    return "", 204


@bp.post("/conversations/<int:conversation_id>/labels")
def conversation_labels_set(conversation_id: int):
    """Set a conversation's labels ``{"labels": [name, ...]}`` (anyone who can see it)."""
    conv = visible_conversation(conversation_id)
    wanted = resolve(json_body().get("labels"))
    labels.set_labels(db.session, conv, wanted, by=current_user)
    db.session.commit()
    return jsonify(conversation_dict(conv))

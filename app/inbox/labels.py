"""Labels: the team's list of them (leads and admins keep it) and putting them on conversations.

Names are matched whatever their case ("VIP" is "vip") with runs of spaces made one.
Putting a label on a conversation or taking it off writes a line in the thread
("Ana added label refund") and sends ``conversation.updated``; a change to the list
itself sends ``labels.updated`` to everyone signed in (``{"items", "change"}``), so
pickers and filters follow, and a renamed or deleted label's chips are refreshed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.inbox import activity, events
from app.inbox.activity import add_activity
from app.models import Conversation, Label, User, conversation_labels

MAX_NAME = 40
#: Colours a new label gets in turn when none is chosen (they read well as chips).
PALETTE = (
    "#3657d6",
    "#0f8a5f",
    "#c2410c",
    "#b91c1c",
    "#7c3aed",
    "#0e7490",
    "#a16207",
    "#be185d",
    "#4b5563",
    "#15803d",
)
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_SPACES = re.compile(r"\s+")


class InvalidLabel(ValueError):
    """A name or colour that cannot be a label's."""


class LabelTaken(ValueError):
    """Another label already has this name (whatever its case)."""


class UnknownLabels(LookupError):
    """Names that are no label of the list; ``names`` says which."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


def clean_name(name) -> str:
    """A label's name as stored: trimmed, one space between words, at most 40 characters."""
    if not isinstance(name, str):
        raise InvalidLabel("A label's name must be text.")
    text = _SPACES.sub(" ", name).strip()
    if not text:
        raise InvalidLabel("A label needs a name.")
    if len(text) > MAX_NAME:
        raise InvalidLabel(f"A label's name has at most {MAX_NAME} characters.")
    if any(not ch.isprintable() for ch in text):
        raise InvalidLabel("A label's name cannot hold control characters.")
    return text


def name_key(name: str) -> str:
    """What names are matched by: the cleaned name, case-folded."""
    return _SPACES.sub(" ", name).strip().casefold()


def clean_color(color) -> str:
    """A colour as ``#rrggbb`` (lower case)."""
    if not isinstance(color, str) or not _COLOR.match(color.strip()):
        raise InvalidLabel("A label's colour is a hex colour such as #3657d6.")
    return color.strip().lower()


def all_labels(session: Session) -> list[Label]:
    """Every label, by name."""
    return list(session.scalars(sa.select(Label).order_by(Label.name_key)))


def usage(session: Session) -> dict[int, int]:
    """How many conversations carry each label (labels on none are absent)."""
    cl = conversation_labels.c
    rows = session.execute(sa.select(cl.label_id, sa.func.count()).group_by(cl.label_id))
    return {label_id: n for label_id, n in rows}


def by_names(session: Session, names: Iterable) -> list[Label]:
    """The labels named ``names`` (any case), in the order given; UnknownLabels for the rest."""
    wanted: dict[str, str] = {}
    for name in names:
        if not isinstance(name, str):
            raise InvalidLabel("Labels are given by their names.")
        if name_key(name):
            wanted.setdefault(name_key(name), name.strip())
    if not wanted:
        return []
    found = {
        label.name_key: label
        for label in session.scalars(sa.select(Label).where(Label.name_key.in_(list(wanted))))
    }
    missing = [shown for key, shown in wanted.items() if key not in found]
    if missing:
        raise UnknownLabels(missing)
    return [found[key] for key in wanted]


def _check_free(session: Session, key: str, label_id: int | None) -> None:
    clash = session.scalar(
        sa.select(Label.name).where(Label.name_key == key, Label.id != (label_id or 0))
    )
    if clash is not None:
        raise LabelTaken(f"There is already a label named {clash}.")


def _catalog_changed(session: Session, action: str, label: Label, previous: str | None) -> None:
    """Tell every signed-in browser the list changed (after commit)."""
    change = {"action": action, "label": label.to_dict(), "previous_name": previous}
    items = [lb.to_dict() for lb in all_labels(session)]
    events.publish(session, "labels.updated", {"items": items, "change": change}, ("all", 0))


def create(session: Session, name, color=None) -> Label:
    """A new label; without a colour it takes the next one of :data:`PALETTE`."""
    name = clean_name(name)
    key = name_key(name)
    _check_free(session, key, None)
    if color in (None, ""):
        count = session.scalar(sa.select(sa.func.count()).select_from(Label)) or 0
        color = PALETTE[count % len(PALETTE)]
    label = Label(name=name, name_key=key, color=clean_color(color))
    session.add(label)
    session.flush()
    _catalog_changed(session, "created", label, None)
    return label


def update(session: Session, label: Label, name=None, color=None) -> bool:
    """Rename or recolour ``label`` (conversations keep it). Returns True if anything changed."""
    previous = label.name
    changed = False
    if name is not None:
        name = clean_name(name)
        key = name_key(name)
        if key != label.name_key:
            _check_free(session, key, label.id)
        if name != label.name:
            label.name, label.name_key, changed = name, key, True
    if color is not None:
        color = clean_color(color)
        if color != label.color:
            label.color, changed = color, True
    if changed:
        session.flush()
        renamed = label.name != previous
        _catalog_changed(session, "renamed" if renamed else "updated", label, previous)
    return changed


def delete(session: Session, label: Label) -> None:
    """Remove ``label`` from the list and from every conversation that had it."""
    session.execute(conversation_labels.delete().where(conversation_labels.c.label_id == label.id))
    session.delete(label)
    session.flush()
    for obj in list(session.identity_map.values()):  # loaded conversations forget it too
        if isinstance(obj, Conversation):
            session.expire(obj, ["labels"])
    _catalog_changed(session, "deleted", label, label.name)


def change(
    session: Session,
    conv: Conversation,
    add: Iterable[Label] = (),
    remove: Iterable[Label] = (),
    by: User | None = None,
) -> bool:
    """Put ``add`` on ``conv`` and take ``remove`` off; one thread line per label changed.

    Labels it already has (or lacks) are left alone. Returns True when something changed
    (then ``conversation.updated`` goes out after commit).
    """
    who = by.name if by else "Switchboard"
    had = {label.id for label in conv.labels}
    taking = {label.id for label in remove}
    done = False
    for label in remove:
        if label.id in had:
            conv.labels.remove(label)
            had.discard(label.id)
            line = activity.line(activity.LABEL_REMOVED, who=who, label=label.name)
            add_activity(session, conv, line, event="unlabeled", label_id=label.id)
            done = True
    for label in add:
        if label.id not in had and label.id not in taking:
            conv.labels.append(label)
            had.add(label.id)
            line = activity.line(activity.LABEL_ADDED, who=who, label=label.name)
            add_activity(session, conv, line, event="labeled", label_id=label.id)
            done = True
    if done:
        events.changed(session, "conversation.updated", conv, ("inbox", conv.inbox_id))
    return done


def set_labels(
    session: Session, conv: Conversation, labels: Iterable[Label], by: User | None = None
) -> bool:
    """Make ``labels`` exactly the labels of ``conv`` (see :func:`change`)."""
    wanted = list(labels)
    keep = {label.id for label in wanted}
    return change(
        session,
        conv,
        add=wanted,
        remove=[label for label in conv.labels if label.id not in keep],
        by=by,
    )

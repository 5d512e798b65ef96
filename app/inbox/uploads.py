"""Files agents upload to send: stored first, attached to one reply or note later.

``POST /api/v1/uploads`` stores the file (:func:`store`) when at least one of the
inboxes it could go out from takes it; until a message carries it, the upload
belongs to its uploader alone. Posting the message claims it (:func:`claim`):
only the uploader's own unsent uploads, each once. Each channel's limits
(:mod:`app.channels.attachments`) are checked again for the conversation the
reply goes to (:func:`refusal`). Uploads never sent are dropped after
:data:`UNSENT_TTL` (:func:`drop_unsent`, a scheduler job).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import channels, storage
from app.channels.attachments import AttachmentRules, Refusal
from app.models import Attachment, Inbox, User

#: How long an upload no message carries is kept.
UNSENT_TTL = timedelta(hours=24)


class UploadRefused(Exception):
    """No inbox the file could go out from takes it; ``refusal`` says why."""

    def __init__(self, message: str, refusal: Refusal) -> None:
        super().__init__(message)
        self.message = message
        self.refusal = refusal


class NotAnUpload(ValueError):
    """An attachment id that is not one of the user's unsent uploads."""


@dataclass(frozen=True)
class _Candidate:
    filename: str | None
    content_type: str | None
    size: int | None


def channel_rules(inbox: Inbox) -> tuple[AttachmentRules, str]:
    """The rules for files sent from ``inbox`` and the channel's name, as messages say it."""
    adapter = channels.get(inbox.channel)
    return adapter.attachment_rules(inbox), str(adapter.short_label or adapter.label)


def refusal(inbox: Inbox, files: Sequence[Attachment]) -> Refusal | None:
    """Why ``files`` cannot go out together from ``inbox`` (None: they can)."""
    rules, name = channel_rules(inbox)
    return rules.refusal(files, name)


def _kind(content_type: str) -> str:
    major = content_type.split("/", 1)[0]
    if major in ("image", "audio", "video") and storage.is_inline_type(content_type):
        return major
    return "file"


def store(
    session: Session,
    user: User,
    filename: str | None,
    claimed_type: str | None,
    content: bytes,
    inboxes: Iterable[Inbox],
) -> Attachment:
    """Keep an agent's file for a later message; raises :class:`UploadRefused`.

    The recorded type is the one the bytes bear out (:func:`app.storage.stored_type`),
    so a channel's type rule judges what the file is, not what it claims. ``inboxes``
    are the ones it may go out from: one of them must take it (every channel's own
    rules when there are none).
    """
    name = storage.safe_filename(filename)
    claimed = (claimed_type or "").strip()
    if not claimed or claimed == "application/octet-stream":
        claimed = mimetypes.guess_type(name)[0] or claimed
    ctype = storage.stored_type(content, claimed) or "application/octet-stream"
    candidate = _Candidate(name, ctype, len(content))
    rule_sets = {channel_rules(inbox) for inbox in inboxes} or {
        (adapter.attachment_rules(), str(adapter.short_label or adapter.label))
        for adapter in channels.all_channels()
    }
    refusals = [rules.file_refusal(candidate, label) for rules, label in sorted(rule_sets, key=str)]
    if all(r is not None for r in refusals):
        found = [r for r in refusals if r is not None]
        if len(found) == 1:
            message = found[0].message
        else:
            message = "None of your inboxes can send this file. " + " ".join(
                dict.fromkeys(r.message for r in found)
            )
        raise UploadRefused(message, found[0])
    key = storage.save(content)
    att = Attachment(
        message_id=None,
        uploaded_by_id=user.id,
        kind=_kind(ctype),
        filename=name,
        content_type=ctype,
        size=len(content),
        storage_key=key,
        state="stored",
        extra={},
    )
    session.add(att)
    session.flush()
    return att


def claim(session: Session, user: User | None, ids: Sequence[int]) -> list[Attachment]:
    """The uploads ``ids`` for a message ``user`` is posting, in the order given.

    Raises :class:`NotAnUpload` unless each is the user's own upload that no
    message carries yet (so each goes out once).
    """
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    if user is None:
        raise NotAnUpload("Only an agent's own uploads can be attached.")
    rows = {
        a.id: a
        for a in session.scalars(
            sa.select(Attachment).where(Attachment.id.in_(wanted)).with_for_update()
        )
    }
    for att_id in wanted:
        att = rows.get(att_id)
        if att is None or att.uploaded_by_id != user.id or att.message_id is not None:
            raise NotAnUpload(
                f"Attachment {att_id} is not one of your uploads, or it was already sent. "
                "Upload the file again."
            )
    return [rows[i] for i in wanted]


def discard(session: Session, user: User, attachment_id: int) -> str | None:
    """Delete one of ``user``'s unsent uploads (the composer's remove button).

    Returns its storage key, for :func:`delete_files` once the deletion is
    committed; None when it is not such an upload.
    """
    att = session.get(Attachment, attachment_id)
    if att is None or att.uploaded_by_id != user.id or att.message_id is not None:
        return None
    session.delete(att)
    return att.storage_key or ""


def drop_unsent(session: Session, at: datetime, batch: int = 500) -> list[str]:
    """Delete uploads no message carried within :data:`UNSENT_TTL` (at most ``batch``).

    Returns their storage keys, for :func:`delete_files` once it is committed.
    """
    rows = list(
        session.scalars(
            sa.select(Attachment)
            .where(Attachment.message_id.is_(None), Attachment.created_at < at - UNSENT_TTL)
            .order_by(Attachment.id)
            .limit(batch)
        )
    )
    for att in rows:
        session.delete(att)
    return [att.storage_key for att in rows if att.storage_key]


def delete_files(keys: Iterable[str]) -> None:
    """Remove the stored files of deleted uploads."""
    for key in keys:
        storage.delete(key)

"""Dropping the files agents uploaded and never sent (after ``app.inbox.uploads.UNSENT_TTL``)."""

from __future__ import annotations

import logging

from app.clock import now
from app.extensions import db
from app.inbox import uploads

log = logging.getLogger(__name__)


def drop_unsent_uploads() -> int:
    """Delete unsent uploads past their time, rows first, then their files; returns how many."""
    dropped = 0
    while True:
        keys = uploads.drop_unsent(db.session, now())
        db.session.commit()
        uploads.delete_files(keys)
        dropped += len(keys)
        if len(keys) < 500:
            break
    if dropped:
        log.info("dropped %d uploads never sent", dropped)
    return dropped

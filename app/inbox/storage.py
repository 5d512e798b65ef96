"""Attachment files on disk, under ``UPLOAD_DIR``, addressed by an opaque key."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from flask import current_app

from app.clock import now
from connectors.filenames import clean_filename


def _root() -> Path:
    return Path(current_app.config["UPLOAD_DIR"])


def safe_filename(name: str | None, default: str = "file") -> str:
    """A filename fit for a Content-Disposition header, a file system and an agent's eyes.

    No path, no control, format or bidi characters (see :mod:`connectors.filenames`),
    NFC, no leading or trailing dots.
    """
    return clean_filename(name).strip(". ") or default


def save(content: bytes) -> str:
    """Write ``content`` and return its storage key."""
    today = now()
    key = f"{today:%Y/%m}/{uuid.uuid4().hex}"
    path = _root() / key
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(content)
    os.replace(tmp, path)
    return key


def path_for(key: str) -> Path:
    """The file for a storage key (keys never contain '..')."""
    if ".." in key or key.startswith("/"):
        raise ValueError("bad storage key")
    return _root() / key

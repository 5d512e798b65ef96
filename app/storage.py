"""Attachment files on disk, under ``UPLOAD_DIR``, addressed by an opaque key.

Infrastructure beside :mod:`app.db` and :mod:`app.urls`: the directory is the
running app's setting, so :func:`save` and :func:`path_for` need an app
context; the rest (safe names, content types) are plain functions.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import filetype
from flask import current_app

from app.clock import now
from connectors.filenames import clean_filename


def _root() -> Path:
    """``UPLOAD_DIR`` of the running app."""
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


def delete(key: str | None) -> None:
    """Remove a stored file (nothing when it is already gone)."""
    if key:
        path_for(key).unlink(missing_ok=True)


def path_for(key: str) -> Path:
    """The file for a storage key (keys never contain '..')."""
    if ".." in key or key.startswith("/"):
        raise ValueError("bad storage key")
    return _root() / key


# Types a browser may show inline from our origin: none of them can run script there.
# SVG, HTML, XML and everything else is served as a download.
INLINE_IMAGE_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "image/bmp",
        "image/avif",
        "image/heic",
        "image/heif",
        "image/tiff",
        "image/x-icon",
    }
)


def is_inline_type(content_type: str | None) -> bool:
    """True for raster images, audio, video and PDF: the types shown in the page itself."""
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    return (
        mime in INLINE_IMAGE_TYPES
        or mime == "application/pdf"
        or (mime.startswith(("audio/", "video/")) and "xml" not in mime)
    )


def sniff_bytes(head: bytes) -> str | None:
    """The type bytes say they are (magic numbers), whatever the sender claimed."""
    kind = filetype.guess(head[:8192])
    return kind.mime if kind is not None else None


def sniff(path: Path) -> str | None:
    """The type a stored file's bytes say it is."""
    with open(path, "rb") as fh:
        return sniff_bytes(fh.read(8192))


def stored_type(content: bytes, claimed: str | None) -> str | None:
    """The content type to record for a file: the bytes' own when they show inline.

    A claim of an inline type the bytes do not bear out (an SVG sent as
    ``image/png``) is recorded as ``application/octet-stream``, so the inbox
    offers it as a download, as the file response will.
    """
    sniffed = sniff_bytes(content)
    if is_inline_type(sniffed):
        return sniffed
    if is_inline_type(claimed):
        return "application/octet-stream"
    return claimed

"""Serving stored files without letting them run in the app's origin.

A customer chooses an attachment's bytes and its claimed type, so the type we
serve comes from the bytes: only raster images, audio, video and PDF that
really are what they claim are shown inline; everything else (SVG, HTML, XML,
unknown) is a download, labelled ``application/octet-stream`` when its claimed
type is one a browser could run. Every file response
forbids sniffing and carries a sandboxing CSP, so even a file opened directly
gets no script and no same-origin access.
"""

from __future__ import annotations

from flask import send_file

from app import storage
from app.models import Attachment

FILE_CSP = "default-src 'none'; sandbox"


_ACTIVE = ("html", "xml", "svg", "script", "xsl")


def download_type(claimed: str | None) -> str:
    """The type a download is labelled with: the sender's claim unless a browser could run it."""
    mime = (claimed or "").split(";", 1)[0].strip().lower()
    if not mime or "/" not in mime or any(word in mime for word in _ACTIVE):
        return "application/octet-stream"
    return mime


def send_attachment(att: Attachment, private: bool):
    """The response for a stored attachment; ``private`` ones are never cached by proxies."""
    path = storage.path_for(att.storage_key)
    sniffed = storage.sniff(path)
    inline = storage.is_inline_type(sniffed)
    response = send_file(
        path,
        mimetype=sniffed if inline else download_type(att.content_type),
        as_attachment=not inline,
        download_name=storage.safe_filename(att.filename, f"attachment-{att.id}"),
        max_age=3600,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = FILE_CSP
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin" if private else "cross-origin"
    if private:
        response.cache_control.public = False
        response.cache_control.private = True
    return response

"""Security headers on every response.

Pages get a strict Content-Security-Policy: scripts and styles only from our
origin (styles may be inline attributes), no plugins, never framed by another
site. Images may be remote because a customer's avatar lives on the provider's
CDN; an email's own HTML is shown in a sandboxed frame whose own policy blocks
remote images until the agent asks for them. File responses set their own,
stricter policy (:mod:`app.web.files`).
"""

from __future__ import annotations

from flask import Flask, Response

PAGE_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob: https: http:",
        "media-src 'self' blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "frame-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def security_headers(response: Response) -> Response:
    """``nosniff`` everywhere; the page policy on HTML; file responses keep their own."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html" and "Content-Security-Policy" not in headers:
        headers["Content-Security-Policy"] = PAGE_CSP
        headers.setdefault("X-Frame-Options", "DENY")
    return response


def init_app(app: Flask) -> None:
    """Add the headers to every response of ``app``."""
    app.after_request(security_headers)

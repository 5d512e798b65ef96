"""Which web pages may open the live feed: the app's own, by the Origin header.

A browser sends this host's session cookie with a WebSocket opened by any page
of the same site, another port included (cookies do not tell ports apart), and
browsers apply no CORS rule to WebSockets: without this check a page served at
``http://127.0.0.1:8000`` could read the live feed of an agent logged in at
``http://127.0.0.1:5000``. Engine.IO calls :func:`origin_check`'s function for
every request that has an Origin header and refuses the request when it says no;
a request without one (a script with an API token) is no page and goes through.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Flask

DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise(url: str | None) -> str | None:
    """``scheme://host[:port]`` in lower case without the default port, or None."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _first(value: str) -> str:
    return value.split(",")[0].strip()


def request_origins(environ: dict) -> set[str]:
    """The origins a request was addressed to: its own scheme and Host, and what a proxy says.

    A proxy's ``X-Forwarded-Proto``/``X-Forwarded-Host`` are taken as Engine.IO
    takes them: a page cannot add them to a WebSocket handshake, and a
    cross-origin request that carries them needs a preflight, which this check
    refuses for its Origin.
    """
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    found = {normalise(f"{scheme}://{host}")}
    if "HTTP_X_FORWARDED_PROTO" in environ or "HTTP_X_FORWARDED_HOST" in environ:
        fwd_scheme = _first(environ.get("HTTP_X_FORWARDED_PROTO", scheme))
        fwd_host = _first(environ.get("HTTP_X_FORWARDED_HOST", host))
        found.add(normalise(f"{fwd_scheme}://{fwd_host}"))
    found.discard(None)
    return found  # type: ignore[return-value]


def configured_origins(config) -> set[str]:
    """``PUBLIC_URL``'s origin and those listed in ``SOCKETIO_CORS_ORIGINS``."""
    extra = config.get("SOCKETIO_CORS_ORIGINS") or []
    if isinstance(extra, str):
        extra = extra.split(",")
    found = {normalise(url) for url in [config.get("PUBLIC_URL"), *extra]}
    found.discard(None)
    return found  # type: ignore[return-value]


def origin_check(app: Flask) -> Callable[[str | None, dict], bool]:
    """Engine.IO's ``cors_allowed_origins``: True for the app's own origins only.

    Reads the settings at each request, so a test (or a reload) that changes
    ``PUBLIC_URL`` is honoured.
    """

    def allowed(origin: str | None, environ: dict) -> bool:
        wanted = normalise(origin)
        if wanted is None:
            return False
        return wanted in request_origins(environ) or wanted in configured_origins(app.config)

    return allowed

"""The one answer to "at which URL do people and providers reach this server?".

Providers call webhooks and fetch attachments there, setup instructions and
sign-in hints print it. ``PUBLIC_URL`` wins when set (production sets it: behind
a proxy the request's host may be an internal one); otherwise the host of the
request being served, else the URL this process was last called at (for work
done outside a request, such as the delivery worker), else where ``python
wsgi.py`` serves (``HOST`` and ``PORT``).

Plain functions over the app's config and values: no Flask request here, so the
domain may use them too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import quote

#: Where :func:`remember_seen` keeps the URL this process was first called at
#: (a key of ``app.extensions``).
SEEN_KEY = "switchboard_seen_base_url"


def local_base_url() -> str:
    """Where ``python wsgi.py`` serves (``HOST`` and ``PORT`` as it reads them)."""
    return f"http://{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"


def public_base_url(
    config: Mapping[str, Any], request_host_url: str | None = None, seen: str | None = None
) -> str:
    """The external base URL, without a trailing slash.

    ``config`` is the app's config (``PUBLIC_URL``); ``request_host_url`` the
    host URL of the request being served, if any; ``seen`` the URL this process
    was called at before (:func:`seen_base_url`).
    """
    for candidate in (config.get("PUBLIC_URL"), request_host_url, seen):
        if candidate:
            return candidate.rstrip("/")
    return local_base_url()


def remember_seen(extensions: MutableMapping[str, Any], request_host_url: str) -> None:
    """Keep the first URL this process is called at (in ``app.extensions``)."""
    if SEEN_KEY not in extensions:
        extensions[SEEN_KEY] = request_host_url.rstrip("/")


def seen_base_url(extensions: Mapping[str, Any]) -> str | None:
    """The URL kept by :func:`remember_seen`, if any request came in yet."""
    return extensions.get(SEEN_KEY)


def app_path(config: Mapping[str, Any], path: str) -> str:
    """``path`` (``/api/v1/...``) under the app's mount point, ``APPLICATION_ROOT``.

    The same answer inside and outside a request, so an API object built for a
    live event (in the worker, say) carries the URLs the API answers with.
    """
    root = (config.get("APPLICATION_ROOT") or "/").rstrip("/")
    return f"{root}/{path.lstrip('/')}"


def attachment_path(config: Mapping[str, Any], attachment_id: int) -> str:
    """Where logged-in users fetch an attachment's bytes: ``/api/v1/attachments/<id>``."""
    return app_path(config, f"/api/v1/attachments/{attachment_id}")


#: How long a provider may fetch an outbound file at the URL a send gave it. Each
#: attempt to send builds a fresh one, so a retry never hands out a dead link.
PUBLIC_FILE_MAX_AGE = 24 * 3600
_FILE_SALT = "switchboard.public-file"


def _file_signer(config: Mapping[str, Any]):
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(config["SECRET_KEY"], salt=_FILE_SALT)


def public_file_url(
    config: Mapping[str, Any], base_url: str, attachment_id: int, storage_key: str, filename: str
) -> str:
    """An outbound file's URL for the provider that fetches it: no login, signed with
    ``SECRET_KEY``, good for :data:`PUBLIC_FILE_MAX_AGE`; ends with the file's name
    (Messenger and phones show it)."""
    token = _file_signer(config).dumps([attachment_id, storage_key.rsplit("/", 1)[-1]])
    return f"{base_url.rstrip('/')}/files/{token}/{quote(filename or 'file', safe='')}"


def public_file_ref(config: Mapping[str, Any], token: str) -> tuple[int, str] | None:
    """The attachment id and storage key tail a :func:`public_file_url` token names;
    None when it is forged or expired."""
    from itsdangerous import BadSignature

    try:
        value = _file_signer(config).loads(token, max_age=PUBLIC_FILE_MAX_AGE)
    except BadSignature:  # SignatureExpired is one too
        return None
    if (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], int)
        and isinstance(value[1], str)
    ):
        return value[0], value[1]
    return None

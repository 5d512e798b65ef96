"""Secrets at rest: inbox credentials encrypted with a key the database does not hold.

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) with keys derived by
HKDF-SHA256 from the ``INBOX_SECRETS_KEY`` setting, else from ``SECRET_KEY``.
``INBOX_SECRETS_KEY`` may list several keys, comma-separated: the first seals,
every one opens (rotate by putting the new key first; values sealed with an old
key are resealed with the new one the next time they are written). No Flask:
callers pass the app's settings.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "sealed:"  # a sealed value, told apart from a plain one stored before sealing


class Unreadable(ValueError):
    """A sealed value no configured key opens (the key changed and the old one is gone)."""


@functools.lru_cache(maxsize=8)
def _fernet(material: str) -> MultiFernet:
    keys = [m.strip() for m in material.split(",") if m.strip()]
    return MultiFernet([Fernet(_derive(key)) for key in keys])


def _derive(secret: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"switchboard inbox secrets")
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode("utf-8")))


def _keys(settings: Mapping[str, Any]) -> MultiFernet:
    material = settings.get("INBOX_SECRETS_KEY") or settings.get("SECRET_KEY") or ""
    if not str(material).strip():
        raise RuntimeError("SECRET_KEY (or INBOX_SECRETS_KEY) must be set to store secrets")
    return _fernet(str(material))


def seal(settings: Mapping[str, Any], value: str) -> str:
    """``value`` encrypted (a text safe for JSON columns)."""
    return PREFIX + _keys(settings).encrypt(value.encode("utf-8")).decode("ascii")


def unseal(settings: Mapping[str, Any], stored: str | None) -> str | None:
    """The plain value of :func:`seal`'s output; raises :class:`Unreadable` when no key opens it."""
    if stored is None or not str(stored).startswith(PREFIX):
        return stored
    try:
        return _keys(settings).decrypt(str(stored)[len(PREFIX) :].encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise Unreadable("a stored secret cannot be decrypted with the configured keys") from None

"""Reading webhook bodies strictly: JSON the databases can store, routing values SQL can take.

The web layer reads every webhook body with :func:`read_json` and every value
that routes a request to an inbox with :func:`routing_key`, before the request
is authenticated; anything else is an :class:`UnreadableBody`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_JSON_DEPTH = 64  # real webhook bodies nest about 10 deep
MAX_ROUTING_KEY = 255  # the inbox route columns' length


class UnreadableBody(ValueError):
    """A webhook body (or its routing value) that is not what the channel sends.

    The web layer answers 400 when nobody signed it; a signed one is kept for an
    admin to look at, never parsed again by itself.
    """


def _reject_constant(name: str) -> Any:
    raise UnreadableBody(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UnreadableBody(f"number {text[:20]}... does not fit a float")
    return value


def read_json(raw: bytes | str) -> Any:
    """The JSON value of a webhook body; raises :class:`UnreadableBody` for anything else.

    Stricter than ``json.loads``, so that what it returns can be stored and
    serialised again: UTF-8 only; no ``NaN``/``Infinity``; no number that overflows
    a float or has more digits than Python converts (4,300); nesting at most
    :data:`MAX_JSON_DEPTH` deep (100,000 nested ``[`` raised ``RecursionError``).
    Text the databases refuse, ``\\u0000`` and lone surrogates (half an emoji cut
    by a client), becomes U+FFFD.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else str(raw)
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except UnreadableBody:
        raise
    except (ValueError, TypeError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise UnreadableBody(f"not JSON: {type(exc).__name__}") from None
    if _too_deep(value, MAX_JSON_DEPTH):
        raise UnreadableBody(f"JSON nested deeper than {MAX_JSON_DEPTH}")
    if _ESCAPED_TROUBLE.search(text):
        value = _scrub(value)
    return value


# A NUL or a surrogate can only reach a parsed string through a \u escape.
_ESCAPED_TROUBLE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_TROUBLE = re.compile("[\x00\ud800-\udfff]")  # pairs were joined by json: these are alone


def _clean(text: str) -> str:
    return _TROUBLE.sub("\ufffd", text)


def _scrub(value: Any) -> Any:
    """``value`` with :data:`_TROUBLE` replaced in every string and key (in place)."""
    if isinstance(value, str):
        return _clean(value)
    stack = [value]
    while stack:
        item = stack.pop()
        pairs = list(item.items()) if isinstance(item, dict) else list(enumerate(item))
        if isinstance(item, dict):
            item.clear()
        for key, child in pairs:
            if isinstance(child, str):
                child = _clean(child)
            elif isinstance(child, dict | list):
                stack.append(child)
            item[_clean(key) if isinstance(key, str) else key] = child
    return value


def _too_deep(value: Any, limit: int) -> bool:
    """True when containers nest more than ``limit`` deep (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def routing_key(value: Any, max_length: int = MAX_ROUTING_KEY) -> str | None:
    """``value`` when it can name an inbox (a Page id, an agent, a number), else None.

    Routing values go into SQL before a request is authenticated, so only a
    non-empty string of at most ``max_length`` characters without control
    characters passes (PostgreSQL refuses NUL and compares text with numbers only
    by error). Surrounding whitespace is stripped.
    """
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > max_length or not value.isprintable():
        return None
    return value

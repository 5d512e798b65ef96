"""The one retry back-off: how long to wait before attempt ``n + 1``.

Exponential from a base, optionally capped, optionally jittered, and a
provider's ``Retry-After`` wins when it asks for longer. A pure function of
its arguments (like :mod:`app.clock`), so the domain (a provider's "try again"
receipt) and the runtime (outbox worker, intake, IMAP polls, notification mail)
share it; each caller keeps its own base and cap.
"""

from __future__ import annotations

import random
from datetime import timedelta


def backoff(
    attempt: int,
    base: float,
    cap: float | None = None,
    *,
    jitter: bool = False,
    retry_after: float | None = None,
) -> timedelta:
    """The pause after the ``attempt``-th failure (1 for the first): ``base * 2**(attempt-1)``.

    ``base`` and ``cap`` are seconds; ``cap`` bounds the exponential part.
    ``jitter`` picks uniformly between half and all of it, so workers that
    failed together do not retry together. ``retry_after`` (seconds, from the
    provider) wins when longer.
    """
    delay = base * 2 ** max(0, attempt - 1)
    if cap is not None:
        delay = min(cap, delay)
    if jitter:
        delay = random.uniform(delay / 2, delay)
    if retry_after:
        delay = max(delay, float(retry_after))
    return timedelta(seconds=delay)

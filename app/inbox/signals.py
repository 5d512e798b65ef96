"""What happened in the domain, for whoever listens (blinker; no Flask here).

A module that changes something sends a signal after the change is committed;
others (the live connections, notifications) connect to it instead of being
imported by the module that changed it.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

access_changed = _signals.signal(
    "access_changed",
    doc="""A user's access changed (deactivated, signed out everywhere, a token revoked, role or
    inbox memberships changed). Sender: the user id. Sent after the commit.""",
)

"""What happened in the domain, told to whoever listens (blinker signals, as indico does).

A module that changes something sends a signal once the change is committed;
the modules that care (the live feed, ...) connect to it, so neither imports
the other. Receivers read the new state from the database: a signal says what
changed, not what it changed to. No Flask here.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

access_changed = _signals.signal(
    "access-changed",
    doc="""What a user may see changed; sender: the user's id.

    Sent after commit when the user is deactivated (or reactivated), their role
    changes, their password changes, they sign out everywhere, they join or leave
    an inbox, or one of their API tokens is revoked.
    The live feed re-checks that user's open sockets in every process: those
    that may no longer connect are closed, the others follow the new inboxes.
    """,
)

"""The client-secret watch: tell admins before a sign-in app's client secret expires.

A Microsoft app registration's client secret lasts at most two years; once it
expires every refresh is refused (``invalid_client``) and each mailbox signed in
through that app stops. The server cannot read the expiry itself (that needs
directory permissions no mailbox app should hold), so the admin sets it beside
the secret (``MICROSOFT_CLIENT_SECRET_EXPIRES``, ``GOOGLE_CLIENT_SECRET_EXPIRES``)
and, from :data:`app.oauth.SECRET_WARNING` (14 days) before that day, every admin
is told once per secret (in the app, on the desktop and by e-mail as their
settings say) and the inbox pages show it until the secret is replaced.
"""

from __future__ import annotations

from flask import current_app

from app import oauth
from app.clock import now
from app.extensions import db
from app.inbox import notifications


def watch_client_secrets() -> int:
    """The ``watch_client_secrets`` job: notify admins of each secret about to expire."""
    session = db.session
    told = 0
    for found in oauth.expiring_secrets(current_app.config, now()):
        if found["days_left"] < 0:
            text = f"The {found['label']} sign-in app's client secret expired on {found['expires']}"
        else:
            text = f"The {found['label']} sign-in app's client secret expires on {found['expires']}"
        told += notifications.notify_many(
            session,
            notifications.admins(session),
            "client_secret_expiring",
            None,
            f"client_secret:{found['name']}:{found['expires']}",
            provider=found["label"],
            expires=found["expires"],
            days_left=found["days_left"],
            url="/admin/inboxes",
            text=text + ": create a new secret and set it on the server.",
        )
    session.commit()
    return told

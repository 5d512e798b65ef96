"""API objects the web layer builds from models: inboxes and users as the API and the
admin pages show them. (Conversations and messages come from :mod:`app.inbox.serialize`,
which the live events share.)
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, request
from flask_babel import gettext as _

from app import channels
from app.clock import iso
from app.extensions import db
from app.inbox.connect import health
from app.inbox.credentials import public_config
from app.models import Inbox, InboxMember, User
from app.urls import public_base_url


def inbox_dict(inbox: Inbox, with_members: bool = False) -> dict:
    """An inbox for the API: settings and identifiers, never a secret."""
    data = {
        **inbox.ref(),
        "identifiers": public_config(inbox),
        "settings": inbox.effective_settings(),
        "needs_reconnect": inbox.needs_reconnect,
        "last_event_at": inbox.last_event_at.isoformat() if inbox.last_event_at else None,
        "last_error": inbox.last_error,
        "last_error_at": inbox.last_error_at.isoformat() if inbox.last_error_at else None,
        "active": inbox.active,
    }
    imap = (inbox.state or {}).get("imap")
    if imap:  # mailbox polling health: last success, retry time
        data["imap"] = {
            k: imap.get(k)
            for k in ("last_ok_at", "last_error", "last_error_at", "failures", "retry_at")
        }
    if with_members:
        data["member_ids"] = list(
            db.session.scalars(
                sa.select(InboxMember.user_id).where(InboxMember.inbox_id == inbox.id)
            )
        )
    return data


def connection_details(inbox: Inbox, with_secrets: bool) -> list[dict]:
    """What to paste into the provider's console for ``inbox`` (its channel adapter says).

    Values that are secrets (verify token, client token, the email inbound URL) are only
    included for admins; others see them as ``None`` with ``secret`` set.
    """
    base = public_base_url(current_app.config, request.host_url)
    return [
        {
            **item.to_dict(with_secrets),
            "label": _(item.label),
            "help": _(item.help) if item.help else "",
        }
        for item in channels.get(inbox.channel).setup(inbox, base)
    ]


def inbox_admin_dict(inbox: Inbox, with_secrets: bool) -> dict:
    """An inbox for the admin pages: settings, members, health and connection details."""
    data = inbox_dict(inbox, with_members=True)
    data["last_error_at"] = iso(inbox.last_error_at)
    data["connection"] = connection_details(inbox, with_secrets)
    data["setup"] = data["connection"]
    data["health"] = health(inbox)
    data["config"], data["secrets"] = config_form(inbox)
    return data


def config_form(inbox: Inbox) -> tuple[dict, dict]:
    """The inbox's settings as the edit form shows them: the values of the channel's fields
    that are not secret, and for each secret only whether it is set."""
    try:
        fields = channels.get(inbox.channel).fields
    except KeyError:
        return {}, {}
    config = inbox.config or {}
    values = {f.name: config.get(f.name) for f in fields if not f.secret}
    return values, {f.name: bool(config.get(f.name)) for f in fields if f.secret}


def user_admin_dict(user: User, load: int = 0) -> dict:
    """A user for the admin page."""
    return {
        **user.to_dict(),
        "active": user.active,
        "locale": user.locale,
        "open_assigned": load,
        "last_seen_at": iso(user.last_seen_at),
    }

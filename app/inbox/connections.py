"""Building a connector for an inbox, with the process-wide provider settings."""

from __future__ import annotations

import requests
import sqlalchemy as sa
from flask import current_app

import connectors
from app import channels
from app.clock import now
from app.models import Inbox, Message, OutboxItem
from connectors import base as cb

_http = requests.Session()
_http.headers["User-Agent"] = "Switchboard/0.1"


def connector_options() -> cb.ConnectorOptions:
    """Provider base URLs and limits from the app config."""
    cfg = current_app.config
    return cb.ConnectorOptions(
        base_urls={
            key: cfg[setting].rstrip("/")
            for channel in channels.all_channels()
            for key, setting in channel.api_urls.items()
        },
        public_url=cfg.get("PUBLIC_URL"),
        max_attachment_bytes=cfg["MAX_ATTACHMENT_BYTES"],
        attachment_hosts=_host_list(cfg.get("ATTACHMENT_HOSTS")),
        extra={"messenger_graph_version": cfg["MESSENGER_GRAPH_VERSION"]},
    )


def _host_list(value) -> tuple[str, ...]:
    """``ATTACHMENT_HOSTS`` as entries: a comma-separated string or a list."""
    items = value.split(",") if isinstance(value, str) else list(value or ())
    return tuple(str(item).strip() for item in items if str(item).strip())


def connector_class(channel: str) -> type[cb.Connector]:
    """The registered connector class for a channel."""
    return connectors.get(channel)


def connector_for(inbox: Inbox) -> cb.Connector:
    """A ready connector for ``inbox`` (its config holds the credentials)."""
    cls = connector_class(inbox.channel)
    return cls(dict(inbox.config or {}), connector_options(), http=_http)


def public_config(inbox: Inbox) -> dict:
    """The inbox's connector config without secrets: safe for the API and logs."""
    try:
        secret = channels.get(inbox.channel).secret_fields()
    except KeyError:
        secret = set()
    secret |= {"inbound_token"}
    return {
        k: v
        for k, v in (inbox.config or {}).items()
        if k not in secret and not any(s in k for s in ("secret", "token", "password", "key"))
    }


def reconnect(session, inbox: Inbox, changes: dict) -> int:
    """New credentials for an inbox (e.g. a fresh Page token after Meta error 190).

    Updates the connector config, clears "reconnect needed" and makes the replies that
    were paused for it due now. Returns how many paused sends resume. Raises
    ``ValueError`` for a field the channel does not have or an incomplete config.
    """
    cls = connector_class(inbox.channel)
    known = {f.name for f in cls.fields}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ValueError(f"{inbox.channel} inboxes have no setting {', '.join(unknown)}")
    config = {**(inbox.config or {}), **changes}
    problems = cls.validate_config(config)
    if problems:
        raise ValueError("; ".join(problems))
    inbox.config = config
    inbox.needs_reconnect = False
    inbox.last_error = None
    at = now()
    not_scheduled = sa.select(Message.id).where(
        Message.inbox_id == inbox.id, sa.or_(Message.send_after.is_(None), Message.send_after <= at)
    )
    resumed = session.execute(
        sa.update(OutboxItem)
        .where(
            OutboxItem.inbox_id == inbox.id,
            OutboxItem.state == "pending",
            OutboxItem.kind == "send",
            OutboxItem.message_id.in_(not_scheduled),
        )
        .values(next_attempt_at=at)
        .execution_options(synchronize_session=False)
    ).rowcount
    return resumed or 0

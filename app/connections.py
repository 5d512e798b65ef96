"""Building a connector for an inbox, with the process-wide provider settings.

Infrastructure beside :mod:`app.storage`: provider base URLs, the attachment
size cap and hosts are the running app's settings (``current_app.config``), so
building a connector needs an app context. The runtime and the web layer build
connectors here; the domain's side of an inbox's credentials (shown
without secrets, replaced on reconnect) is :mod:`app.inbox.credentials`.
"""

from __future__ import annotations

import requests
from flask import current_app

import connectors
from app import channels, oauth
from app.extensions import db
from app.models import Inbox
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
            if cfg.get(setting)  # a channel without its setting must not break the others
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
    return build_connector(inbox.channel, dict(inbox.config or {}))


def build_connector(channel: str, config: dict) -> cb.Connector:
    """A ready connector for settings not stored yet (the live checks of a new inbox)."""
    return connector_class(channel)(config, connector_options(), http=_http)


def live_config(inbox: Inbox) -> dict:
    """The inbox's settings to talk to its provider now: a sign-in token about to expire is
    refreshed first (:func:`app.oauth.fresh_config`; that commits the session)."""
    return oauth.fresh_config(db.session, inbox, current_app.config, _http)


def live_connector(inbox: Inbox) -> cb.Connector:
    """A connector for sending or polling now (:func:`live_config`; may commit the session)."""
    return build_connector(inbox.channel, live_config(inbox))


def oauth_http() -> requests.Session:
    """The HTTP session provider sign-ins use (the one connectors use)."""
    return _http

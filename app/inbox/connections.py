"""Building a connector for an inbox, with the process-wide provider settings."""

from __future__ import annotations

import requests
from flask import current_app

import connectors
from app.models import Inbox
from connectors import base as cb

_http = requests.Session()
_http.headers["User-Agent"] = "Switchboard/0.1"


def connector_options() -> cb.ConnectorOptions:
    """Provider base URLs and limits from the app config."""
    cfg = current_app.config
    return cb.ConnectorOptions(
        base_urls={
            "messenger_graph": cfg["MESSENGER_GRAPH_URL"].rstrip("/"),
            "twilio": cfg["TWILIO_API_URL"].rstrip("/"),
            "gbm": cfg["GBM_API_URL"].rstrip("/"),
        },
        public_url=cfg.get("PUBLIC_URL"),
        max_attachment_bytes=cfg["MAX_ATTACHMENT_BYTES"],
        extra={"messenger_graph_version": cfg["MESSENGER_GRAPH_VERSION"]},
    )


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
        secret = connector_class(inbox.channel).secret_fields()
    except KeyError:
        secret = set()
    secret |= {"inbound_token"}
    return {
        k: v
        for k, v in (inbox.config or {}).items()
        if k not in secret and not any(s in k for s in ("secret", "token", "password", "key"))
    }

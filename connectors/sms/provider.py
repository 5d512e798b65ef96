"""The SMS provider interface: one subclass per provider (Twilio, later Vonage ...).

``SmsConnector`` picks the provider from the inbox config (``provider``,
default ``twilio``) and delegates to it. A provider turns its webhooks into
``connectors.base`` events and sends :class:`OutboundMessage`s. Adding a
provider is one module with a :func:`register_provider` class, imported from
``connectors/sms/__init__.py``, plus its webhook route.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import requests

from connectors.base import (
    ConfigField,
    ConnectorOptions,
    InboundEvent,
    MediaHosts,
    OutboundMessage,
    SendResult,
    StatusUpdate,
)

DEFAULT_PROVIDER = "twilio"


class SmsProvider(abc.ABC):
    """One SMS provider, built per inbox from its config (secrets included)."""

    name: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    fields: ClassVar[tuple[ConfigField, ...]] = ()  # provider-specific inbox settings
    media_hosts: ClassVar[MediaHosts] = MediaHosts()  # where MMS media is downloaded from
    # send() honours options["maybe_sent_since"] (see Connector.checks_before_resending)
    checks_before_resending: ClassVar[bool] = False

    def __init__(
        self, config: Mapping[str, Any], options: ConnectorOptions, http: requests.Session
    ) -> None:
        self.config = config
        self.options = options
        self.http = http

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[str]:
        """Problems with the provider's own settings (empty when valid)."""
        return [
            f"{f.name} is required" for f in cls.fields if f.required and not config.get(f.name)
        ]

    # -- inbound (pure: no config needed, the web layer routes with these) ------
    @classmethod
    @abc.abstractmethod
    def routing_keys(cls, form: Mapping[str, str]) -> tuple[str | None, str]:
        """(service id or None, our number in E.164) to find the inbox of an inbound webhook."""

    @classmethod
    @abc.abstractmethod
    def status_routing_keys(cls, form: Mapping[str, str]) -> tuple[str | None, str]:
        """(service id or None, our number) of a delivery status callback: who sent it."""

    @classmethod
    @abc.abstractmethod
    def status_message_id(cls, form: Mapping[str, str]) -> str | None:
        """The provider's id of our message a status callback is about (a routing key)."""

    @classmethod
    @abc.abstractmethod
    def parse_inbound(cls, form: Mapping[str, str], received_at: datetime) -> list[InboundEvent]:
        """Turn an inbound-message webhook into events (message, then OptOut/OptIn)."""

    @classmethod
    @abc.abstractmethod
    def parse_status(cls, form: Mapping[str, str]) -> StatusUpdate:
        """Turn a delivery-status webhook into a :class:`StatusUpdate`."""

    # -- per inbox ---------------------------------------------------------------
    @abc.abstractmethod
    def verify(self, url: str, params: Any, headers: Mapping[str, str]) -> bool:
        """True when the webhook is authentic; fails closed."""

    @abc.abstractmethod
    def send(self, message: OutboundMessage) -> SendResult:
        """Send ``message``; provider errors are returned classified, never raised."""

    def download_auth(self) -> Any:
        """Credentials for media downloads (None when URLs are public)."""
        return None


_PROVIDERS: dict[str, type[SmsProvider]] = {}


def register_provider(cls: type[SmsProvider]) -> type[SmsProvider]:
    """Class decorator: make ``cls`` the provider named ``cls.name``."""
    if not cls.name:
        raise ValueError("SMS provider class needs a name")
    _PROVIDERS[cls.name] = cls
    return cls


def get_provider(name: str | None) -> type[SmsProvider]:
    """The provider class called ``name`` (default ``twilio``); KeyError when unknown."""
    return _PROVIDERS[(name or DEFAULT_PROVIDER).strip().lower()]


def providers() -> list[str]:
    """Registered provider names."""
    return sorted(_PROVIDERS)

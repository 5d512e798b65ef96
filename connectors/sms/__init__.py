"""The SMS channel: one connector, pluggable providers (Twilio today).

``SmsConnector`` (channel ``sms``) reads ``config["provider"]`` (default
``twilio``) and delegates webhook checks, parsing and sending to that
provider (:mod:`connectors.sms.provider`). Provider-neutral helpers live
beside it: :mod:`.phone` (E.164, number type, time zones), :mod:`.segments`
(GSM-7/UCS-2 counter), :mod:`.consent` (STOP/START keywords) and
:mod:`.quiet` (quiet hours in the customer's time zone).

Web layer, inbound: the webhook contract of :class:`connectors.base.Connector`
(``webhook_route_keys``, ``verify_webhook``, ``parse_webhook``), with ``kind``
``"status"`` for delivery receipts.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import requests
from werkzeug.datastructures import MultiDict

from connectors.base import (
    Check,
    ConfigField,
    Connector,
    ConnectorOptions,
    InboundEvent,
    MediaHosts,
    OutboundMessage,
    SendResult,
    StatusUpdate,
    register,
)

from . import consent, phone, quiet, segments
from . import twilio as twilio  # registers the Twilio provider
from .provider import DEFAULT_PROVIDER, SmsProvider, get_provider, providers, register_provider
from .twilio_setup import TwilioSetup

# The account checks and webhook set-up of each provider, by provider name.
SETUP = {"twilio": TwilioSetup}

__all__ = [
    "SmsConnector",
    "SmsProvider",
    "consent",
    "get_provider",
    "phone",
    "providers",
    "quiet",
    "register_provider",
    "segments",
    "twilio",
]

_COMMON_FIELDS: tuple[ConfigField, ...] = (
    ConfigField("provider", required=False, help="SMS provider: twilio (default)"),
    ConfigField("number", help="The inbox's phone number in E.164 (+14155550100)"),
)


def _all_fields() -> tuple[ConfigField, ...]:
    """Common fields, then every provider's (the default provider's first).

    Other providers' fields are listed as optional here: which ones are
    required depends on the inbox's provider (see ``validate_config``).
    """
    result: dict[str, ConfigField] = {f.name: f for f in _COMMON_FIELDS}
    names = [DEFAULT_PROVIDER] + [p for p in providers() if p != DEFAULT_PROVIDER]
    for name in names:
        for f in get_provider(name).fields:
            if f.name not in result:
                optional = name != DEFAULT_PROVIDER
                result[f.name] = ConfigField(f.name, f.required and not optional, f.secret, f.help)
    return tuple(result.values())


@register
class SmsConnector(Connector):
    """SMS/MMS through the provider named in the inbox config."""

    channel: ClassVar[str] = "sms"
    display_name: ClassVar[str] = "SMS"
    fields: ClassVar[tuple[ConfigField, ...]] = _all_fields()

    def __init__(
        self,
        config: dict[str, Any],
        options: ConnectorOptions | None = None,
        http: requests.Session | None = None,
    ) -> None:
        super().__init__(config, options, http)
        try:
            provider_cls = get_provider(config.get("provider"))
        except KeyError:
            raise ValueError(f"unknown SMS provider: {config.get('provider')!r}") from None
        self.provider: SmsProvider = provider_cls(self.config, self.options, self.http)

    # -- description -----------------------------------------------------------
    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> list[str]:
        """Problems with ``config``: provider known, number valid, provider fields set."""
        name = config.get("provider") or DEFAULT_PROVIDER
        try:
            provider_cls = get_provider(name)
        except KeyError:
            return [f"provider must be one of: {', '.join(providers())}"]
        problems = []
        number = config.get("number")
        if not number:
            problems.append("number is required")
        elif phone.normalise(number) is None:
            problems.append("number must be a valid phone number in E.164 (+14155550100)")
        return problems + provider_cls.validate_config(config)

    @classmethod
    def identifiers(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Routing values (number in E.164, account and service SIDs), never secrets."""
        ids = super().identifiers(config)
        if ids.get("number"):
            ids["number"] = phone.address(ids["number"])
        ids.setdefault("provider", DEFAULT_PROVIDER)
        return ids

    # -- inbound ---------------------------------------------------------------
    def verify(self, url: str, params: Any, headers: Mapping[str, str]) -> bool:
        """True when the webhook is authentic for this inbox (fails closed)."""
        return self.provider.verify(url, params, headers)

    def parse_inbound(self, form: Mapping[str, str], received_at: datetime) -> list[InboundEvent]:
        """Inbound SMS/MMS webhook -> message (+ OptOut/OptIn)."""
        return self.provider.parse_inbound(form, received_at)

    def parse_status(self, form: Mapping[str, str]) -> StatusUpdate:
        """Status callback -> :class:`StatusUpdate` (ValueError when not an outbound status)."""
        return self.provider.parse_status(form)

    # -- inbound: the webhook contract (see connectors.base.Connector) ------------
    # Bodies are form-encoded; the stored body is parsed by the default provider
    # (the one whose URL the provider called). Two URLs: inbound texts (kind "")
    # and delivery receipts (kind "status").
    STATUS = "status"

    @staticmethod
    def webhook_form(body: bytes) -> MultiDict:
        """A form-encoded webhook body as the fields the provider sent, repeats kept."""
        return MultiDict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))

    @classmethod
    def webhook_route_keys(cls, body: bytes, args: dict[str, str], kind: str = "") -> list[str]:
        """Inbound: the Messaging Service (alternative route key) first, then our number.

        A receipt: the provider's id of our message first (``MessageSid``, may be
        empty), then the Messaging Service and the number it was sent from.
        """
        form = cls.webhook_form(body)
        provider = get_provider(None)
        if kind == cls.STATUS:
            service, number = provider.status_routing_keys(form)
            return [provider.status_message_id(form) or "", *(k for k in (service, number) if k)]
        service, number = provider.routing_keys(form)
        return [key for key in (service, number) if key]

    def verify_webhook(self, body: bytes, url: str, headers: Any) -> bool:
        """The provider's signature over the URL called and the form fields."""
        return self.provider.verify(url, self.webhook_form(body), headers)

    @classmethod
    def parse_webhook(
        cls, body: bytes, received_at: datetime, kind: str = ""
    ) -> list[InboundEvent]:
        """An inbound SMS/MMS (the provider sends no time: ``received_at``), or a receipt.

        A receipt that is not about one of our messages (no id, an inbound status)
        has no events.
        """
        form = cls.webhook_form(body)
        if kind == cls.STATUS:
            try:
                return [get_provider(None).parse_status(form)]
            except ValueError:
                return []
        return get_provider(None).parse_inbound(form, received_at)

    # -- outbound --------------------------------------------------------------
    def send(self, message: OutboundMessage) -> SendResult:
        """Send through the provider; errors are returned classified."""
        return self.provider.send(message)

    # -- set-up ------------------------------------------------------------------
    def check_credentials(self) -> list[Check]:
        """The provider's account, number (or Messaging Service) and registration checks."""
        setup = SETUP.get(self.provider.name)
        return setup(self.config, self.options, self.http).check() if setup else []

    def provision(self, urls: dict[str, str]) -> list[Check]:
        """Point the number (or Messaging Service) at our ``inbound`` URL."""
        setup = SETUP.get(self.provider.name)
        return setup(self.config, self.options, self.http).provision(urls) if setup else []

    def checks_before_resending(self) -> bool:
        """Whether the provider looks for an unanswered attempt before sending again."""
        return self.provider.checks_before_resending

    def download_auth(self) -> Any:
        """The provider's media credentials (Twilio: account SID and Auth Token)."""
        return self.provider.download_auth()

    def download_hosts(self) -> MediaHosts:
        """The provider's media hosts."""
        return self.provider.media_hosts

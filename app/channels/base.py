"""The app side of a channel: everything Switchboard knows about one kind of connection.

A connector (``connectors/``) speaks the provider's wire format; its adapter here
says what the inbox needs around it: the settings an inbox of the channel has
(typed, secret or not: the CLI's ``inboxes add`` options, the API's
``GET /api/v1/channels`` and validation come from them), the platform's reply
window, what to paste into the provider's console, the signals the channel can
show the customer (typing, seen, an agent joining) and the send options that
need our own data. Code outside ``app/channels`` asks the adapter; it never
branches on a channel's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlencode

import connectors
from app.channels.attachments import AttachmentRules
from app.clock import aware
from connectors import base as cb
from connectors.base import Check

__all__ = ["Check"]  # re-exported: the adapters' live checks are the connectors' Check

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from app.models import Conversation, Inbox, Message


FIELD_TYPES = ("text", "secret", "number", "bool", "choice", "file", "url", "email", "phone")


def N_(text: str) -> str:  # noqa: N802 - gettext's "mark only" name, a pybabel keyword
    """Mark a string the interface shows translated (labels, window names) for extraction."""
    return text


@dataclass(frozen=True)
class WindowPolicy:
    """How long after the customer's last message a reply can be delivered."""

    standard: timedelta
    human_agent: timedelta | None = None  # longer window for human replies, where approved
    standard_label: str = ""
    human_label: str = ""
    help: str = ""  # what the inbox settings page says about the window


@dataclass(frozen=True)
class Field:
    """One setting of an inbox of a channel, as the admin form and the CLI ask for it.

    ``type`` is one of :data:`FIELD_TYPES`; a ``secret`` is write-only (never
    returned, shown as set or unset). ``file`` fields are read as JSON by the CLI.
    """

    name: str
    label: str
    type: str = "text"
    required: bool = True
    help: str = ""
    choices: tuple[str, ...] = ()
    default: Any = None
    # also an inbox setting (``inbox_settings``): asked when the inbox is added, then
    # changed under the inbox's Settings, not with its credentials
    setting: bool = False

    @property
    def secret(self) -> bool:
        """True for passwords, tokens and keys."""
        return self.type in ("secret", "file")

    @property
    def option(self) -> str:
        """The CLI option: ``page_token`` -> ``--page-token``."""
        return "--" + self.name.replace("_", "-")

    def to_dict(self) -> dict:
        """The API's field object (``GET /api/v1/channels``)."""
        out: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "required": self.required,
        }
        if self.choices:
            out["choices"] = list(self.choices)
        if self.help:
            out["help"] = self.help
        if self.default is not None:
            out["default"] = self.default
        if self.setting:
            out["setting"] = True
        return out


@dataclass(frozen=True)
class SetupItem:
    """One thing to paste into (or read from) the provider's console."""

    label: str
    value: str | None
    help: str = ""
    secret: bool = False

    def to_dict(self, with_secrets: bool) -> dict:
        """The API's setup item; a secret's value only for admins."""
        return {
            "label": self.label,
            "value": self.value if (with_secrets or not self.secret) else None,
            "help": self.help,
            "secret": self.secret,
        }


@dataclass(frozen=True)
class Answer:
    """What a webhook answers: a status and a text or JSON body."""

    status: int
    body: str | dict = ""
    content_type: str = "text/plain; charset=utf-8"


def counts(*extra: str, queued: Answer | None = None) -> Callable[[Any], Answer]:
    """Answer what the intake threaded: ``{"status": "ok", "stored": n, "duplicates": n}``.

    ``extra`` adds more counts (``updated``). A body left to the drainer (no result)
    is answered ``queued`` (default ``{"status": "ok", "queued": true}``).
    """
    waiting = queued or Answer(200, {"status": "ok", "queued": True})

    def answer(result: Any) -> Answer:
        if result is None:
            return waiting
        body = {"status": "ok", "stored": len(result.created), "duplicates": result.duplicates}
        body.update({name: getattr(result, name) for name in extra})
        return Answer(200, body)

    return answer


def always(fixed: Answer) -> Callable[[Any], Answer]:
    """The same answer whatever was threaded (Twilio wants an empty TwiML or 204)."""
    return lambda result: fixed


INVALID_SIGNATURE = Answer(403, "invalid signature")
MALFORMED = Answer(200, {"status": "ignored", "reason": "malformed"})


@dataclass(frozen=True)
class Webhook:
    """How the generic webhook view (``app.web.webhooks``) answers one of the channel's URLs.

    The order is the same for every URL: the handshake (when ``handshake`` is set: a
    GET is only ever one), the route keys of the connector's webhook contract -> the
    inboxes of the channel they name -> verification per inbox -> the body stored in
    the intake (with the query ``args`` named here) -> ``stored(result)``. The
    differences between providers are the fields below.
    """

    kind: str = ""  # which of the channel's URLs, for the connector; "" the main one
    methods: tuple[str, ...] = ("POST",)
    handshake: Answer | None = None  # refused handshake; None: the URL takes none
    every_inbox: bool = False  # route to every inbox the keys name, else the first key's
    # (a disconnected inbox's bodies are verified, acknowledged and ignored on every URL)
    by_message: str | None = None  # receipts: the first key is a message's provider id, and
    # this query argument names our message (its inbox verifies the receipt)
    by_token: bool = False  # the route key is the inbox's secret token: routing authenticates
    unknown: Answer | None = None  # the keys name no inbox; None: answer ``stored`` (nothing
    # threaded) once one of the channel's inboxes verified the body, else ``forged``
    forged: Answer = INVALID_SIGNATURE
    unsigned_unreadable: Answer = INVALID_SIGNATURE  # unreadable and no inbox signed it
    malformed: Answer = MALFORMED  # signed but unreadable: kept as failed, acknowledged
    blank: Answer | None = None  # the answer to an empty body, once routed
    args: tuple[str, ...] = ()  # query arguments stored with the body
    stored: Callable[[Any], Answer] = counts()  # the intake's result (None: queued)


def pack(args: dict[str, str], body: bytes) -> bytes:
    """A body stored with query arguments: ``<url-encoded args>\n<body>``."""
    return urlencode(sorted(args.items())).encode() + b"\n" + body


def unpack(stored: bytes) -> tuple[dict[str, str], bytes]:
    """The query arguments and the body of :func:`pack`."""
    head, _, body = bytes(stored).partition(b"\n")
    return dict(parse_qsl(head.decode("ascii", "replace"))), body


class InvalidConfig(ValueError):
    """Some fields of an inbox's settings are missing or wrong: ``fields`` maps name -> why."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


def _coerce(f: Field, raw: Any) -> Any:
    """A field's value in its type; raises ValueError with the reason."""
    if f.type == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ValueError("must be true or false")
    if f.type == "number":
        if isinstance(raw, bool):
            raise ValueError("must be a whole number")
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ValueError("must be a whole number") from None
    if f.type == "file":
        if isinstance(raw, dict):
            return raw
        raise ValueError("must be a JSON object")
    value = str(raw).strip()
    if f.type == "choice" and value not in f.choices:
        raise ValueError("must be one of " + ", ".join(f.choices))
    return value


class Channel:
    """The adapter of one channel. Subclasses set the class attributes and override hooks."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    short_label: ClassVar[str] = ""  # the name the inbox shows, where shorter ("Messenger")
    # How the inbox draws the channel: SVG shapes on a 20 x 20 grid, filled with
    # currentColor unless they say otherwise, and the colour they take
    icon: ClassVar[str] = ""
    color: ClassVar[str] = ""
    fields: ClassVar[tuple[Field, ...]] = ()
    route_field: ClassVar[str] = ""  # the setting that routes webhooks to the inbox
    alt_route_field: ClassVar[str | None] = None  # a second one (Twilio Messaging Service)
    webhook_paths: ClassVar[tuple[str, ...]] = ()  # the URLs providers call, under our base
    # how app.web.webhooks answers each of webhook_paths, in the same order
    webhooks: ClassVar[tuple[Webhook, ...]] = ()
    api_urls: ClassVar[dict[str, str]] = {}  # connector base-URL key -> the setting naming it
    window: ClassVar[WindowPolicy | None] = None  # None: no platform reply window
    # what the platform shows customers about response times (app.channels.badges)
    badge: ClassVar[Any] = None
    identity_label: ClassVar[str | None] = None  # "Messenger user"; None: the id is readable
    typing_action: ClassVar[str | None] = None  # send_action for "an agent is typing"
    seen_action: ClassVar[str | None] = None  # send_action for "your messages were read"
    joined_action: ClassVar[str | None] = None  # send_action when an agent takes it
    left_action: ClassVar[str | None] = None  # send_action when it is closed
    quiet_hours: ClassVar[bool] = False  # the customer's local quiet hours apply (SMS)
    text_segments: ClassVar[bool] = False  # replies are billed in segments (SMS)
    mail: ClassVar[bool] = False  # threads by headers and subject, has automated mail (email)
    sends_file_bytes: ClassVar[bool] = False  # attachments travel inside the message
    # the files one reply may carry (count, sizes, types); per inbox: attachment_rules()
    attachments: ClassVar[AttachmentRules] = AttachmentRules()
    # the contact detail an identity of the channel is ("email", "phone"; None: an id of the
    # platform's own), and whether the business may write first there (no platform window):
    # the contact panel offers "New conversation" in those inboxes, to those addresses
    contact_address: ClassVar[str | None] = None
    starts_conversations: ClassVar[bool] = False
    # ready-made settings the add form offers (mail providers): {"name", "label", "config",
    # "help", "app_password_url"}
    presets: ClassVar[tuple[dict[str, Any], ...]] = ()
    # what an inbox shows until the provider's subscription handshake arrived (channels
    # whose URLs take one); "" for channels without a handshake
    waiting_for_handshake: ClassVar[str] = N_("Waiting for the provider's verification call")
    handshake_field: ClassVar[str | None] = None  # the setting the handshake presents
    # identity providers an inbox can be connected with by signing in (OAuth), by name
    sign_in: ClassVar[tuple[str, ...]] = ()

    # -- description -----------------------------------------------------------
    @classmethod
    def connector(cls) -> type[cb.Connector]:
        """The channel's connector class."""
        return connectors.get(cls.name)

    @classmethod
    def capabilities(cls) -> dict:
        """What the browser needs to know about the channel (it keeps no copy of its own)."""
        window = cls.window
        return {
            "label": cls.label,
            "short_label": cls.short_label or cls.label,
            "icon": cls.icon,
            "color": cls.color,
            "window": None
            if window is None
            else {
                "standard_s": int(window.standard.total_seconds()),
                "human_agent_s": int(window.human_agent.total_seconds())
                if window.human_agent
                else None,
                "standard_label": window.standard_label,
                "human_label": window.human_label,
                "help": window.help,
            },
            "identity_label": cls.identity_label,
            "typing": cls.typing_action is not None,
            "seen": cls.seen_action is not None,
            "quiet_hours": cls.quiet_hours,
            "segments": cls.text_segments,
            "mail": cls.mail,
            "sign_in": list(cls.sign_in),
            "attachments": cls.attachments.to_dict(),
        }

    @classmethod
    def describe(cls) -> dict:
        """The channel as ``GET /api/v1/channels`` lists it."""
        out = {
            "channel": cls.name,
            "label": cls.label,
            "fields": [f.to_dict() for f in cls.fields],
            "capabilities": cls.capabilities(),
        }
        if cls.presets:
            out["presets"] = [dict(p) for p in cls.presets]
        return out

    @classmethod
    def takes_handshake(cls) -> bool:
        """True when one of the channel's URLs takes the provider's subscription handshake."""
        return any(hook.handshake is not None for hook in cls.webhooks)

    @classmethod
    def secret_fields(cls) -> set[str]:
        """Names of settings never returned or logged."""
        return {f.name for f in cls.fields if f.secret} | cls.connector().secret_fields()

    # -- settings --------------------------------------------------------------
    @classmethod
    def clean_config(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Typed, normalised settings from form, API or CLI values; raises :class:`InvalidConfig`.

        Unknown names are refused; empty optional values are dropped; defaults fill in.
        """
        known = {f.name: f for f in cls.fields}
        errors = {name: "unknown setting" for name in values if name not in known}
        config: dict[str, Any] = {}
        for f in cls.fields:
            raw = values.get(f.name)
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                if f.default is not None:
                    config[f.name] = f.default
                elif f.required:
                    errors[f.name] = "is required"
                continue
            try:
                config[f.name] = _coerce(f, raw)
            except ValueError as exc:
                errors[f.name] = str(exc)
        if not errors:
            errors = cls.check_config(config)
        if errors:
            raise InvalidConfig(errors)
        return config

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> dict[str, str]:
        """Rules across fields (and normalisation in place); name -> why. Override to add."""
        problems = cls.connector().validate_config(config)
        return {"config": "; ".join(problems)} if problems else {}

    @classmethod
    def by_field(cls, problems: dict[str, str]) -> dict[str, str]:
        """``problems`` with the connector's own ones (``config``) moved to the field they name.

        The connector reports ``"service_account lacks client_email"`` as one string;
        shown as ``service_account: lacks client_email`` it points at the setting to fix.
        """
        out = {k: v for k, v in problems.items() if k != "config"}
        rest = []
        for part in filter(None, (p.strip() for p in problems.get("config", "").split("; "))):
            named = next((f.name for f in cls.fields if part.startswith(f.name + " ")), None)
            if named and named not in out:
                out[named] = part[len(named) + 1 :]
            else:
                rest.append(part)
        if rest:
            out["config"] = "; ".join(rest)
        return out

    @classmethod
    def route_keys(cls, config: dict[str, Any]) -> tuple[str, str | None]:
        """The inbox's route key and alternative route key, from its settings."""
        alt = config.get(cls.alt_route_field) if cls.alt_route_field else None
        return str(config[cls.route_field]), (str(alt) if alt else None)

    @classmethod
    def inbox_settings(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Inbox settings implied by the connection (Messenger's human agent approval)."""
        return {}

    @classmethod
    def sign_in_config(
        cls, provider: str, servers: dict[str, Any], address: str, account: str
    ) -> dict[str, Any]:
        """The settings of an inbox connected by signing in with ``provider`` (see ``sign_in``).

        ``servers`` are the provider's hosts, ``address`` the inbox's address,
        ``account`` the account that signed in (another one for a shared mailbox).
        """
        raise NotImplementedError(f"{cls.name} inboxes are not connected by signing in")

    # -- set-up ------------------------------------------------------------------
    @classmethod
    def setup(cls, inbox: Inbox, base: str) -> list[SetupItem]:
        """What to paste into the provider's console for ``inbox``; ``base`` is our public URL."""
        return []

    @classmethod
    def check(cls, connector: cb.Connector) -> list[Check]:
        """Live checks of the settings ``connector`` was built with (token, login, number ...).

        Never raises for a provider's failure: each is a failed :class:`Check`.
        """
        try:
            return list(connector.check_credentials())
        except Exception as exc:  # noqa: BLE001 - a connector bug must not become a 5xx
            return [Check("connection", False, f"The check failed ({type(exc).__name__}).")]

    @classmethod
    def provision(cls, connector: cb.Connector, inbox: Inbox, base: str) -> list[Check]:
        """Configure the provider's side for ``inbox`` where its API allows (webhook URLs,
        subscriptions); ``base`` is our public URL. Nothing by default."""
        return []

    @classmethod
    def address_of(cls, external_id: str) -> str | None:
        """The contact detail (see ``contact_address``) an identity's id stands for, or None."""
        return None

    @classmethod
    def sample_contact_id(cls, n: int) -> str:
        """A made-up customer id for demo data (``flask demo seed``)."""
        return f"{cls.name}-customer-{n}"

    # -- inbound -----------------------------------------------------------------
    @classmethod
    def streams(cls) -> dict[str, Webhook]:
        """The intake's name for the bodies of each URL (``channel`` or ``channel.kind``)."""
        return {cls.stream(hook.kind): hook for hook in cls.webhooks} or {cls.name: Webhook()}

    @classmethod
    def stream(cls, kind: str) -> str:
        """The intake's name for bodies of the URL of ``kind``."""
        return f"{cls.name}.{kind}" if kind else cls.name

    @classmethod
    def stored_body(cls, row: Any) -> tuple[Webhook, dict[str, str], bytes]:
        """The URL a stored body came to, the query arguments kept with it, the body."""
        hook = cls.streams().get(row.channel) or Webhook()
        if hook.args:
            args, body = unpack(row.body)
            return hook, args, body
        return hook, {}, bytes(row.body)

    @classmethod
    def parse_stored(cls, row: Any, inboxes: dict[int, Inbox]) -> dict[int, list[cb.InboundEvent]]:
        """A stored webhook body -> its events per verified inbox (the intake's parser).

        ``row`` is the intake row (``body``, ``received_at``), ``inboxes`` the inboxes
        it was verified for. By default each of them gets every event. Raises
        :class:`~connectors.base.UnreadableBody` for a body the connector cannot
        read: the intake keeps it as failed.
        """
        hook, _args, body = cls.stored_body(row)
        events = cls.connector().parse_webhook(body, aware(row.received_at), hook.kind)
        return {inbox_id: events for inbox_id in inboxes}

    # -- outbound ----------------------------------------------------------------
    @classmethod
    def attachment_rules(cls, inbox: Inbox | None = None) -> AttachmentRules:
        """The files a reply from ``inbox`` may carry (the channel's rules unless its
        settings change them)."""
        return cls.attachments

    @classmethod
    def outbound_options(
        cls, session: Session, msg: Message, conv: Conversation, inbox: Inbox, base: str
    ) -> dict[str, Any]:
        """Send options that need our own data (threading headers, callback URLs)."""
        return {}


@dataclass
class Registry:
    """The known channels, by name."""

    channels: dict[str, type[Channel]] = field(default_factory=dict)

    def register(self, cls: type[Channel]) -> type[Channel]:
        """Class decorator: ``cls`` is the adapter of ``cls.name``."""
        if not cls.name:
            raise ValueError("a channel adapter needs a name")
        self.channels[cls.name] = cls
        return cls

"""The connector interface: normalised events in, normalised sends out.

A connector translates one channel's wire format into the dataclasses below and
turns an :class:`OutboundMessage` into the provider's HTTP call. Connectors never
import ``app`` and never touch the database, so each one can be tested with
recorded payloads and a fake provider alone.

Inbound flow: the web layer authenticates a webhook with the connector's
verification helpers, the connector parses the body into a list of events, and
``app.inbox.ingest`` stores them. Outbound flow: ``app.inbox.outbound`` builds the
:class:`OutboundMessage` of a queued reply, and the worker calls :meth:`Connector.send`.
"""

from __future__ import annotations

import dataclasses
import email.utils
import enum
import math
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import requests

from connectors.bodies import UnreadableBody, read_json, routing_key  # noqa: F401 (re-exported)
from connectors.download import (  # noqa: F401 (re-exported)
    AttachmentTooLarge,
    Downloaded,
    DownloadRefused,
    MediaHosts,
    download_url,
    fetch_capped,
    never_reached,
)

DEFAULT_TIMEOUT = (5, 20)  # connect, read seconds: every outbound call has a timeout


# --------------------------------------------------------------------------- inbound


@dataclass(frozen=True)
class AttachmentRef:
    """An attachment as the provider hands it over.

    Either ``content`` holds the bytes already (email), or ``url`` must be
    downloaded later with :meth:`Connector.download` (Messenger, Twilio, GBM URLs
    expire, so the worker fetches them promptly).
    """

    kind: str = "file"  # image | video | audio | file | location | fallback | sticker
    url: str | None = None
    content: bytes | None = None
    content_type: str | None = None
    filename: str | None = None
    content_id: str | None = None  # email inline images (cid:)
    title: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. location coordinates


@dataclass(frozen=True)
class InboundMessage:
    """A message the customer sent.

    ``inbox_key`` routes it to an inbox (Page id, phone number, GBM agent, ...);
    ``external_id`` is the provider's unique message id and the dedupe key;
    ``sent_at`` is the time the customer sent it, as the platform reports it
    (timezone-aware UTC); reply windows are counted from it.
    """

    inbox_key: str
    external_id: str
    contact_id: str  # PSID, E.164 number, email address, GBM conversation id
    sent_at: datetime
    text: str = ""
    html: str | None = None
    contact_name: str | None = None
    subject: str | None = None
    attachments: tuple[AttachmentRef, ...] = ()
    kind: str = "message"  # message | postback | quick_reply | suggestion
    reply_to_external_id: str | None = None
    thread_refs: tuple[str, ...] = ()  # email: In-Reply-To + References message ids
    automated: bool = False  # auto-replies, bounces, lists: never answered automatically
    context: dict[str, Any] = field(default_factory=dict)  # referral, locale, quick reply ...
    raw: dict[str, Any] | None = None


@dataclass(frozen=True)
class EchoedOutbound:
    """A message the business side sent, reported back by the platform.

    Either our own send (``metadata`` carries our reference) or one made outside
    Switchboard, e.g. in the Page's own inbox.
    """

    inbox_key: str
    external_id: str
    contact_id: str
    sent_at: datetime
    text: str = ""
    attachments: tuple[AttachmentRef, ...] = ()
    metadata: str | None = None
    app_id: str | None = None


class DeliveryState(str, enum.Enum):
    """Provider delivery states, in the order they may advance."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery or read receipt.

    Names one message by ``external_id``, or every outbound message to the
    contact sent at or before ``watermark`` (Messenger watermarks).
    """

    inbox_key: str
    status: DeliveryState
    external_id: str | None = None
    contact_id: str | None = None
    watermark: datetime | None = None
    error: SendError | None = None
    # Our own id of the message as the provider hands it back (the ``ref`` of a
    # callback URL): finds a reply whose provider id is not recorded yet.
    reference: str | None = None


@dataclass(frozen=True)
class OptOut:
    """The customer withdrew consent (SMS STOP and friends)."""

    inbox_key: str
    contact_id: str
    keyword: str
    at: datetime | None = None


@dataclass(frozen=True)
class OptIn:
    """The customer gave consent again (SMS START / UNSTOP)."""

    inbox_key: str
    contact_id: str
    keyword: str
    at: datetime | None = None


@dataclass(frozen=True)
class Typing:
    """The customer started or stopped typing."""

    inbox_key: str
    contact_id: str
    is_typing: bool


@dataclass(frozen=True)
class ConversationContext:
    """Facts about the conversation that are not messages.

    ``requested_live_agent`` (GBM), ``referral`` (Messenger ads/links),
    ``rating`` (GBM survey), ``locale``, ``entry_point`` ... go into ``data``.
    """

    inbox_key: str
    contact_id: str
    data: dict[str, Any]
    external_id: str | None = None  # dedupe key where the provider gives one
    contact_name: str | None = None
    at: datetime | None = None


InboundEvent = (
    InboundMessage | EchoedOutbound | StatusUpdate | OptOut | OptIn | Typing | ConversationContext
)


# --------------------------------------------------------------------------- outbound


class ErrorKind(str, enum.Enum):
    """How the domain should react to a failed send."""

    TRANSIENT = "transient"  # retry with backoff
    WINDOW_CLOSED = "window_closed"  # platform window is over
    OPTED_OUT = "opted_out"  # recipient withdrew consent
    UNDELIVERABLE = "undeliverable"  # recipient can never receive (blocked, landline, gone)
    AUTH_FAILED = "auth_failed"  # inbox credentials invalid: reconnect needed
    PERMANENT = "permanent"  # the request itself is wrong; do not retry
    # No answer after the request went out (read timeout, dropped connection): the provider
    # may have accepted it. Never sent again blindly (see Connector.checks_before_resending).
    UNKNOWN = "unknown"


def retry_after(value: Any) -> float | None:
    """A ``Retry-After`` header in seconds (delta-seconds or HTTP date), or None."""
    if not value or not isinstance(value, str):
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True)
class SendError:
    """Why a send failed, classified; ``message`` is shown to the agent."""

    kind: ErrorKind
    code: str | None = None
    message: str = ""
    retry_after: float | None = None  # seconds, when the provider says


@dataclass(frozen=True)
class OutboundAttachment:
    """A file to send: a public URL (Messenger, Twilio, GBM) or bytes (email)."""

    filename: str
    content_type: str
    url: str | None = None
    content: bytes | None = None


@dataclass(frozen=True)
class OutboundMessage:
    """One message to deliver to a contact.

    ``reference`` is our stable id for the message (used as Messenger
    ``metadata``, GBM ``messageId``, email ``Message-ID`` seed) and is the same
    on every retry. ``options`` carries channel details the domain decided on,
    e.g. ``{"tag": "HUMAN_AGENT"}`` or email threading headers, and what earlier
    attempts left behind: ``sent_parts`` (provider ids of the parts that went
    out) and ``maybe_sent_since`` (ISO time of an attempt that got no answer).
    """

    contact_id: str
    text: str
    reference: str
    attachments: tuple[OutboundAttachment, ...] = ()
    agent_name: str | None = None
    agent_avatar_url: str | None = None
    subject: str | None = None
    automated: bool = False  # greeting / away: email marks it Auto-Submitted
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    """What the provider answered: ``external_id`` on success, else ``error``.

    ``external_ids`` lists every provider id when one message went out in
    several parts (Messenger text over 2,000 characters).
    """

    external_id: str | None = None
    error: SendError | None = None
    external_ids: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the provider accepted the message."""
        return self.error is None


@dataclass(frozen=True)
class ContactProfile:
    """Display details fetched from the provider (Messenger profile, ...)."""

    name: str | None = None
    avatar_url: str | None = None
    locale: str | None = None
    timezone: str | None = None


@dataclass(frozen=True)
class Check:
    """One live check of an inbox's connection, as an admin reads it.

    ``name`` is a stable id (``page_token``, ``smtp_login``, ``inbound_url`` ...);
    ``message`` says what was found, in words an admin can act on (the provider's
    own text included); ``field`` names the setting to fix when the check failed
    because of it; ``warning`` marks a passing check with something to look at
    (a number not registered for A2P 10DLC); ``label`` is what the check is called
    when its id in words would read wrong ("SMTP login"); ``learned`` holds settings the
    check found out, saved on the inbox (never shown). Checks never carry a secret.
    """

    name: str
    ok: bool
    message: str
    field: str | None = None
    warning: bool = False
    label: str | None = None
    # Settings the check found out and the inbox keeps (the send path that works).
    learned: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The API's check object."""
        return {
            "name": self.name,
            "ok": self.ok,
            "message": self.message,
            "field": self.field,
            "warning": self.warning,
            "label": self.label,
        }


@dataclass(frozen=True)
class ConnectorOptions:
    """Process-wide settings a connector may need (from ``config.py``)."""

    base_urls: dict[str, str] = field(
        default_factory=dict
    )  # e.g. {"graph": "...", "twilio": "..."}
    public_url: str | None = None  # external base URL of this Switchboard
    timeout: tuple[float, float] = DEFAULT_TIMEOUT
    max_attachment_bytes: int = 25 * 1024 * 1024
    # More hosts attachments may come from, trusted as named (a media proxy, a test fake):
    # "host", "*.domain", "host:port"; "http://host" allows plain HTTP for that one.
    attachment_hosts: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfigField:
    """One inbox setting a channel needs; ``secret`` ones are never shown."""

    name: str
    required: bool = True
    secret: bool = False
    help: str = ""


class Connector:
    """Base class for a channel connector.

    A subclass sets ``channel`` and ``fields``, and implements ``send``; the
    rest is optional. It is built per inbox from the inbox's ``config`` (a plain
    dict, secrets included) and process-wide ``options``.
    """

    channel: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    fields: ClassVar[tuple[ConfigField, ...]] = ()
    media_hosts: ClassVar[MediaHosts] = MediaHosts()  # where inbound attachments are fetched

    def __init__(
        self,
        config: dict[str, Any],
        options: ConnectorOptions | None = None,
        http: requests.Session | None = None,
    ) -> None:
        self.config = config
        self.options = options or ConnectorOptions()
        self.http = http or requests.Session()

    # -- description -----------------------------------------------------------
    @classmethod
    def secret_fields(cls) -> set[str]:
        """Names of config fields that must never be returned or logged."""
        return {f.name for f in cls.fields if f.secret}

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> list[str]:
        """Return human-readable problems with ``config`` (empty when valid)."""
        return [
            f"{f.name} is required" for f in cls.fields if f.required and not config.get(f.name)
        ]

    @classmethod
    def normalize_contact_id(cls, contact_id: str) -> str:
        """The one spelling a contact's id is stored and looked up by (NFC, trimmed).

        A channel whose ids have more spellings (email addresses: case) extends it.
        """
        return unicodedata.normalize("NFC", str(contact_id or "").strip())

    @classmethod
    def identifiers(cls, config: dict[str, Any]) -> dict[str, Any]:
        """The non-secret values that route webhooks to this inbox."""
        return {
            f.name: config.get(f.name) for f in cls.fields if not f.secret and config.get(f.name)
        }

    # -- inbound: the webhook contract -----------------------------------------
    # The web layer asks these in order: webhook_handshake (a subscription check
    # to answer at once), webhook_route_keys (which inboxes the request names),
    # verify_webhook (per routed inbox, over the raw bytes and the URL called);
    # it stores the raw body, and the intake later calls parse_webhook. A body
    # that cannot be read raises UnreadableBody; nothing here touches a database.
    # ``kind`` names which of the channel's URLs was called when it has more than
    # one ("" the main one; "status" for SMS delivery receipts).
    @classmethod
    def webhook_handshake(cls, body: bytes, args: dict[str, str]) -> tuple[str, str] | None:
        """``(token presented, answer to echo)`` when the request is the provider's
        subscription handshake; None for anything else (channels without one)."""
        return None

    @classmethod
    def accepts_handshake(cls, config: dict[str, Any], token: str) -> bool:
        """True when an inbox with ``config`` owns the handshake's ``token`` (constant time)."""
        return False

    @classmethod
    def webhook_route_keys(cls, body: bytes, args: dict[str, str], kind: str = "") -> list[str]:
        """The route keys (Page ids, agents, numbers ...) the request names, most specific
        first, each a :func:`routing_key` string; raises :class:`UnreadableBody` when the
        body cannot name an inbox."""
        raise UnreadableBody(f"{cls.channel or 'this channel'} takes no routed webhooks")

    def verify_webhook(self, body: bytes, url: str, headers: Any) -> bool:
        """True when the request is authentic for this inbox's config; fails closed."""
        return False

    @classmethod
    def parse_webhook(
        cls, body: bytes, received_at: datetime, kind: str = ""
    ) -> list[InboundEvent]:
        """The events of a stored, verified body; raises :class:`UnreadableBody`."""
        raise UnreadableBody(f"{cls.channel or 'this channel'} stores no webhook bodies")

    # -- outbound --------------------------------------------------------------
    def send(self, message: OutboundMessage) -> SendResult:
        """Deliver ``message``; never raises for provider errors, returns them.

        A request that got no answer once it was sent is :attr:`ErrorKind.UNKNOWN`
        (see :func:`never_reached`), never TRANSIENT: sending it again could
        deliver the message twice.
        """
        raise NotImplementedError

    # -- set-up: live checks and the provider's side ------------------------------
    def check_credentials(self) -> list[Check]:
        """Ask the provider whether this config works (token valid, login accepted ...).

        Never raises for a provider's or the network's failure: each becomes a failed
        :class:`Check` with the provider's message. Channels without a live check
        return nothing.
        """
        return []

    def provision(self, urls: dict[str, str]) -> list[Check]:
        """Point the provider at our webhook ``urls`` (``inbound``, ``status`` ...) where
        its API allows it; one :class:`Check` per change, never raising."""
        return []

    def checks_before_resending(self) -> bool:
        """True when :meth:`send` honours ``options["maybe_sent_since"]``.

        Such a connector first asks the provider whether the unanswered attempt
        went out, answers with it when it did, and sends only when it did not.
        Without this, an UNKNOWN send is left to the agent to decide.
        """
        return False

    def send_action(self, contact_id: str, action: str, **kwargs: Any) -> SendResult:
        """Send a non-message signal (``typing_on``, ``mark_seen``, GBM events).

        Channels without such signals return success and do nothing.
        """
        return SendResult()

    def fetch_profile(self, contact_id: str) -> ContactProfile | None:
        """Fetch the contact's display profile, or None when unsupported/failed."""
        return None

    def download(self, attachment: AttachmentRef) -> Downloaded:
        """Fetch an attachment's bytes from the channel's media hosts, within the size cap.

        Raises :class:`DownloadRefused` when the URL (or a redirect) leads anywhere
        else, :class:`AttachmentTooLarge` past ``options.max_attachment_bytes``.
        """
        if attachment.content is not None:
            return Downloaded(attachment.content, attachment.content_type, attachment.filename)
        if not attachment.url:
            raise ValueError("attachment has neither content nor url")
        return download_url(
            self.http,
            attachment.url,
            self.options,
            auth=self.download_auth(),
            hosts=self.download_hosts(),
        )

    def download_hosts(self) -> MediaHosts:
        """Where this connector's attachments may come from (``media_hosts``)."""
        return self.media_hosts

    def download_auth(self) -> Any:
        """Credentials for attachment downloads (Twilio media needs the account's)."""
        return None


# --------------------------------------------------------------------------- registry

_REGISTRY: dict[str, type[Connector]] = {}


def register(cls: type[Connector]) -> type[Connector]:
    """Class decorator: make ``cls`` the connector for ``cls.channel``."""
    if not cls.channel:
        raise ValueError("connector class needs a channel name")
    _REGISTRY[cls.channel] = cls
    return cls


def get(channel: str) -> type[Connector]:
    """The connector class for ``channel``; KeyError when none is registered."""
    return _REGISTRY[channel]


def channels() -> list[str]:
    """Registered channel names."""
    return sorted(_REGISTRY)


def replace(obj: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` re-exported for connectors' convenience."""
    return dataclasses.replace(obj, **changes)

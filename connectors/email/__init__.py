"""The email channel: raw RFC 822 in, SMTP out, IMAP polling.

Pure: no database, no ``app`` import. Modules:

- :mod:`.parse`: raw bytes -> :class:`~.parse.ParsedEmail` -> ``InboundMessage``
  or ``StatusUpdate`` (bounces), with :mod:`.headers` (decoded headers and
  address lists), :mod:`.charsets` (body bytes -> text) and :mod:`.mime` (the
  MIME walk: bodies and attachments);
- :mod:`.quotes`: the new text of a reply, quotes and signatures stripped;
- :mod:`.threads`: Message-IDs, References, subject normalisation, plus tokens;
- :mod:`.sanitize`: display-safe HTML (nh3) and HTML -> text;
- :mod:`.automated`: auto-reply / list / loop detection;
- :mod:`.bounces`: RFC 3464 DSN parsing with a heuristic fallback;
- :mod:`.smtp`: building and sending replies;
- :mod:`.imap`: UID-cursor polling.

Inbound mail arrives either as one raw message POSTed to
``/webhooks/email/inbound/<token>`` (authenticated by the inbox's
``inbound_token``) or through :class:`~.imap.ImapPoller`; both end in
:meth:`EmailConnector.parse`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors.base import (
    Check,
    ConfigField,
    Connector,
    ErrorKind,
    InboundEvent,
    InboundMessage,
    OutboundAttachment,
    OutboundMessage,
    SendError,
    SendResult,
    StatusUpdate,
    UnreadableBody,
    fetch_capped,
    register,
    routing_key,
)
from connectors.email import graph
from connectors.email.address import normalize_address
from connectors.email.imap import FetchedMail, ImapError, ImapPoller
from connectors.email.parse import ParsedEmail, parse_email
from connectors.email.smtp import build_message, check_login, oauth_failure, send_message

__all__ = [
    "EmailConnector",
    "FetchedMail",
    "ImapError",
    "ImapPoller",
    "ParsedEmail",
    "parse_email",
]

_SECURITY = ("none", "starttls", "ssl")
SMTP, IMAP = "SMTP login", "IMAP login"  # the live checks' names, as admins read them
SENDING = "Sending"


@register
class EmailConnector(Connector):
    """An email inbox: one address, an SMTP server to send, optionally IMAP to poll."""

    channel = "email"
    display_name = "Email"
    fields = (
        ConfigField("address", help="The inbox address customers write to, e.g. support@shop.com"),
        ConfigField("smtp_host", help="SMTP server for replies"),
        ConfigField("smtp_port", help="587 (STARTTLS), 465 (SSL) or 25"),
        ConfigField("smtp_user", required=False, help="SMTP login (empty: no login)"),
        ConfigField("smtp_password", required=False, secret=True),
        ConfigField(
            "smtp_security", required=False, help="none | starttls | ssl (default starttls)"
        ),
        ConfigField("imap_host", required=False, help="IMAP server to poll (empty: webhook only)"),
        ConfigField("imap_port", required=False, help="993 (SSL) or 143"),
        ConfigField("imap_user", required=False, help="IMAP login (default: the address)"),
        ConfigField("imap_password", required=False, secret=True),
        ConfigField("imap_folder", required=False, help="Folder to poll (default INBOX)"),
        ConfigField(
            "imap_security",
            required=False,
            help="none | starttls | ssl (default: ssl on 993, else STARTTLS when offered)",
        ),
        ConfigField(
            "auth", required=False, help="password (default) | oauth: XOAUTH2 with a sign-in token"
        ),
        ConfigField("oauth_provider", required=False, help="microsoft | google (auth oauth)"),
        ConfigField("graph_url", required=False, help="Microsoft Graph, for sendMail (auth oauth)"),
        ConfigField(
            "send_via",
            required=False,
            help="smtp (default) | graph: Microsoft Graph sendMail, where SMTP AUTH is off",
        ),
        ConfigField(
            "inbound_token",
            required=False,
            secret=True,
            help="Secret part of /webhooks/email/inbound/<token>",
        ),
    )

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> list[str]:
        """Required fields plus address, port and security sanity checks."""
        problems = super().validate_config(config)
        address = str(config.get("address") or "")
        if address and ("@" not in address or " " in address.strip()):
            problems.append("address must be an email address")
        for name in ("smtp_port", "imap_port"):
            value = config.get(name)
            if value not in (None, "") and not str(value).isdigit():
                problems.append(f"{name} must be a number")
            elif value not in (None, "") and not 0 < int(value) < 65536:
                problems.append(f"{name} must be between 1 and 65535")
        for name in ("smtp_security", "imap_security"):
            value = config.get(name)
            if value and str(value).lower() not in _SECURITY:
                problems.append(f"{name} must be one of {', '.join(_SECURITY)}")
        if config.get("auth") not in (None, "", "password", "oauth"):
            problems.append("auth must be password or oauth")
        signed_in = config.get("auth") == "oauth"
        if config.get("imap_host") and not signed_in and not config.get("imap_password"):
            problems.append("imap_password is required when imap_host is set")
        return problems

    @classmethod
    def normalize_contact_id(cls, contact_id: str) -> str:
        """An address as every contact identity of an email inbox stores it (NFC, lowercase)."""
        return normalize_address(contact_id)

    # -- inbound: the webhook contract (see connectors.base.Connector) ------------
    # One raw RFC 822 message per request; the URL's token (a secret) names the inbox.
    @classmethod
    def webhook_route_keys(cls, body: bytes, args: dict[str, str], kind: str = "") -> list[str]:
        """The URL's ``token``, when it can be one (a short printable string, as sent)."""
        token = args.get("token")
        if routing_key(token) != token:
            raise UnreadableBody("no usable inbound token")
        return [token]

    @classmethod
    def parse_webhook(
        cls, body: bytes, received_at: datetime, kind: str = ""
    ) -> list[InboundEvent]:
        """The message (or bounce) of a raw message, before the inbox's address is known.

        Threading, loop detection and the original's attachment need the inbox: the
        app's mail ingest parses stored mail with :meth:`parse` per inbox instead.
        """
        return [parse_email(bytes(body or b""), inbox_key="", received_at=received_at).to_event()]

    # -- inbound ---------------------------------------------------------------
    def parse(self, raw: bytes, received_at: datetime | None = None) -> ParsedEmail:
        """Parse one raw message for this inbox (inbox_key = the inbox address)."""
        return parse_email(
            raw,
            inbox_key=self.inbox_key,
            received_at=received_at,
            our_address=self.config.get("address"),
            max_attachment_bytes=self.options.max_attachment_bytes,
        )

    def parse_event(
        self, raw: bytes, received_at: datetime | None = None
    ) -> InboundMessage | StatusUpdate:
        """Shortcut: :meth:`parse` then ``to_event()``."""
        return self.parse(raw, received_at).to_event()

    @property
    def inbox_key(self) -> str:
        """Events are routed by the inbox address (normalised like every address)."""
        return normalize_address(self.config.get("address"))

    def poller(self) -> ImapPoller:
        """An :class:`ImapPoller` for this inbox (raises ImapError without imap_host)."""
        if not self.config.get("imap_host"):
            raise ImapError("This inbox has no IMAP server configured.")
        return ImapPoller(self.config, self.options)

    # -- set-up ------------------------------------------------------------------
    def check_credentials(self) -> list[Check]:
        """SMTP: connect and log in as a reply would; IMAP (when set): log in, open the folder.

        A failure carries the server's own words and the setting to look at.
        """
        checks = [self._check_sending()]
        if self.config.get("imap_host"):
            try:
                status = self.poller().check()
            except ImapError as exc:
                field = "imap_folder" if exc.folder else "imap_host"
                field = "imap_password" if exc.auth_failed else field
                checks.append(Check("imap_login", False, str(exc), field, label=IMAP))
            else:
                folder = self.config.get("imap_folder") or "INBOX"
                text = f"IMAP login accepted; the folder {folder} is there ({status['exists']} messages)."
                checks.append(Check("imap_login", True, text, label=IMAP))
        return checks

    def _check_sending(self) -> Check:
        """The SMTP login a reply would make; where the provider turned SMTP AUTH off and
        a Graph token was granted, the check says replies go out through Graph instead
        and the inbox learns it (``send_via``)."""
        where = f"{self.config.get('smtp_host')}:{self.config.get('smtp_port')}"
        error = check_login(self.config, float(self.options.timeout[1]))
        through_graph = bool(self.config.get("graph_url"))
        if error is None:
            text = f"The SMTP server {where} accepted the login."
            learned = {"send_via": "smtp"} if through_graph else None
            return Check("smtp_login", True, text, label=SMTP, learned=learned)
        if (
            through_graph
            and self.config.get("oauth_graph_token")
            and graph.smtp_auth_disabled(error.message)
        ):
            text = (
                f"SMTP {where} refused the login because SMTP AUTH is turned off for this "
                f"mailbox ({error.message}); replies go out through Microsoft Graph sendMail."
            )
            return Check("smtp_login", True, text, label=SENDING, learned={"send_via": "graph"})
        field = "smtp_password" if error.kind is ErrorKind.AUTH_FAILED else "smtp_host"
        if error.kind is ErrorKind.AUTH_FAILED and not self.config.get("smtp_user"):
            field = "smtp_security"
        return Check("smtp_login", False, f"SMTP {where}: {error.message}", field, label=SMTP)

    # -- outbound --------------------------------------------------------------
    def send(self, message: OutboundMessage) -> SendResult:
        """Build and send ``message`` over SMTP, or through Microsoft Graph where the
        mailbox's SMTP AUTH is off (``send_via: graph``, or learnt from SMTP's refusal);
        errors come back classified."""
        try:
            msg = build_message(self.config, message, attachment_loader=self._load_attachment)
        except ValueError as exc:
            kind = ErrorKind.UNDELIVERABLE if "recipient" in str(exc) else ErrorKind.PERMANENT
            return SendResult(error=SendError(kind=kind, code="invalid", message=str(exc)))
        except Exception as exc:  # attachment download failures and the like
            return SendResult(
                error=SendError(kind=ErrorKind.TRANSIENT, message=f"Preparing the email: {exc}")
            )
        if failure := oauth_failure(self.config):
            return SendResult(error=failure)
        if self.config.get("send_via") == "graph":
            return graph.send_message(self.http, self.config, msg, self.options.timeout)
        result = send_message(
            self.config,
            msg,
            [normalize_address(message.contact_id)],
            timeout=float(self.options.timeout[1]),
        )
        if (
            result.error is not None
            and result.error.kind is ErrorKind.AUTH_FAILED
            and self.config.get("oauth_graph_token")
            and graph.smtp_auth_disabled(result.error.message)
        ):
            return graph.send_message(self.http, self.config, msg, self.options.timeout)
        return result

    def _load_attachment(self, attachment: OutboundAttachment) -> bytes:
        if not attachment.url:
            raise ValueError(f"attachment {attachment.filename!r} has neither content nor url")
        # a URL the app built for one of its own stored files, never one from outside
        return fetch_capped(self.http, attachment.url, self.options).content

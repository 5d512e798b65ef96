"""Email: a mailbox, answered over SMTP, read from IMAP and/or a raw-MIME inbound URL."""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa

from app.channels.attachments import MB, AttachmentRules
from app.channels.base import N_, Answer, Channel, Field, SetupItem, Webhook, counts
from connectors.email import oauth, threads
from connectors.email.address import normalize_address

SECURITY = ("none", "starttls", "ssl")
AUTH = ("password", "oauth")
PROVIDERS = tuple(oauth.PROVIDERS)  # Microsoft 365 and Google, signed in with OAuth
NOT_FOUND = Answer(404, "not found")
#: The attachments of one reply, in MB, unless the inbox's ``attachments_max_mb`` says
#: otherwise: what most mail servers take once base64 has grown the files by a third.
DEFAULT_ATTACHMENTS_MB = 20
MAX_ATTACHMENTS_MB = 100
_counts = counts("updated")


def stored(result) -> Answer:
    """What the sender is told: what was stored, a dropped loop, or queued (202).

    2xx only once the message is committed: a message the intake could not thread
    in the request (another drain held the turn, or it failed and is retried) is
    durably queued, answered 202 ``{"status": "queued"}``, never "stored".
    """
    if result is None:
        return Answer(202, {"status": "queued"})
    if result.dropped and not (result.created or result.duplicates or result.updated):
        return Answer(200, {"status": "dropped", "reason": "loop"})
    return _counts(result)


def _preset(name, label, smtp, imap, url, help_text="") -> dict:
    """A mail provider's settings: ``smtp``/``imap`` are (host, port, security)."""
    return {
        "name": name,
        "label": label,
        "config": {
            "smtp_host": smtp[0],
            "smtp_port": smtp[1],
            "smtp_security": smtp[2],
            "imap_host": imap[0],
            "imap_port": imap[1],
            "imap_security": imap[2],
        },
        # the login is the full address, for SMTP and IMAP: these fields follow it
        "copies": {"smtp_user": "address", "imap_user": "address"},
        "app_password_url": url,
        "help": help_text,
    }


# Hosted mailboxes the add form offers; each needs an app password (not the account's own).
PRESETS = (
    _preset(
        "gmail",
        N_("Gmail / Google Workspace"),
        ("smtp.gmail.com", 587, "starttls"),
        ("imap.gmail.com", 993, "ssl"),
        "https://myaccount.google.com/apppasswords",
        N_("Needs 2-Step Verification on the Google account to make an app password."),
    ),
    _preset(
        "fastmail",
        N_("Fastmail"),
        ("smtp.fastmail.com", 465, "ssl"),
        ("imap.fastmail.com", 993, "ssl"),
        "https://www.fastmail.com/help/clients/apppassword.html",
        N_("Settings > Privacy & Security > Integrations > New app password."),
    ),
    _preset(
        "icloud",
        N_("iCloud Mail"),
        ("smtp.mail.me.com", 587, "starttls"),
        ("imap.mail.me.com", 993, "ssl"),
        "https://account.apple.com/account/manage",
        N_("Sign-In and Security > App-Specific Passwords."),
    ),
    _preset(
        "zoho",
        N_("Zoho Mail"),
        ("smtp.zoho.com", 465, "ssl"),
        ("imap.zoho.com", 993, "ssl"),
        "https://accounts.zoho.com/home#security/app_password",
        N_("Organisation accounts use smtppro.zoho.com and imappro.zoho.com."),
    ),
    _preset(
        "outlook",
        N_("Outlook.com"),
        ("smtp-mail.outlook.com", 587, "starttls"),
        ("outlook.office365.com", 993, "ssl"),
        "https://account.live.com/proofs/AppPassword",
        N_(
            "Microsoft is turning password sign-in off for Outlook.com: if the app password "
            "is refused, forward mail to the inbound URL instead."
        ),
    ),
)


class Email(Channel):
    """One mailbox."""

    name = "email"
    label = N_("Email")
    icon = '<g fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round"><rect x="2.5" y="4.2" width="15" height="11.6" rx="2"/><path d="m3.2 5.5 6.8 5.2 6.8-5.2"/></g>'
    color = "#8a5cf6"
    fields = (
        Field("address", "Address", "email", help="The address customers write to."),
        Field("smtp_host", "SMTP server", help="Replies are sent through it."),
        Field("smtp_port", "SMTP port", "number", help="587 (STARTTLS), 465 (SSL) or 25."),
        Field("smtp_user", "SMTP user", required=False),
        Field("smtp_password", "SMTP password", "secret", required=False),
        Field(
            "smtp_security",
            "SMTP security",
            "choice",
            required=False,
            choices=SECURITY,
            default="starttls",
        ),
        Field("imap_host", "IMAP server", required=False, help="Polled for new mail."),
        Field("imap_port", "IMAP port", "number", required=False, help="993 (SSL) or 143."),
        Field("imap_user", "IMAP user", required=False),
        Field("imap_password", "IMAP password", "secret", required=False),
        Field("imap_folder", "IMAP folder", required=False, default="INBOX"),
        Field("imap_security", "IMAP security", "choice", required=False, choices=SECURITY),
        Field(
            "auth",
            "Sign-in",
            "choice",
            required=False,
            choices=AUTH,
            help="password (default), or oauth: connected by signing in with the provider.",
        ),
        Field("oauth_provider", "Signed in with", "choice", required=False, choices=PROVIDERS),
        Field(
            "attachments_max_mb",
            "Attachments limit (MB)",
            "number",
            required=False,
            help=f"The most a reply's attachments may weigh together; your mail server's "
            f"limit (default {DEFAULT_ATTACHMENTS_MB} MB).",
        ),
    )
    route_field = "address"
    webhook_paths = ("/webhooks/email/inbound/{token}",)
    # one raw RFC 822 message (any content type: pipes and providers differ); the URL's
    # token is the secret that routes and authenticates it
    webhooks = (
        Webhook(
            by_token=True,
            unknown=NOT_FOUND,
            unsigned_unreadable=NOT_FOUND,
            blank=Answer(400, "empty message"),
            stored=stored,
        ),
    )
    mail = True
    sends_file_bytes = True
    attachments = AttachmentRules(
        max_files=20, max_total_bytes=DEFAULT_ATTACHMENTS_MB * MB, types_label=N_("any file")
    )
    contact_address = "email"
    starts_conversations = True  # a business may always write first by mail
    presets = PRESETS
    sign_in = PROVIDERS

    @classmethod
    def address_of(cls, external_id: str) -> str | None:
        """The sender's address (stored in its one spelling)."""
        address = normalize_address(external_id)
        return address if "@" in address else None

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> dict[str, str]:
        """Address in its one spelling; SMTP login complete or absent; IMAP complete if used."""
        errors: dict[str, str] = {}
        address = normalize_address(config.get("address"))
        if "@" not in address:
            errors["address"] = "must be an email address"
        config["address"] = address
        signed_in = config.get("auth") == "oauth"  # a token from signing in, no passwords
        if signed_in and not config.get("oauth_provider"):
            errors["oauth_provider"] = "say which provider the mailbox signs in with"
        if not signed_in and bool(config.get("smtp_user")) != bool(config.get("smtp_password")):
            errors["smtp_password"] = "give both the SMTP user and password, or neither"
        limit = config.get("attachments_max_mb")
        if limit is not None and not 1 <= limit <= MAX_ATTACHMENTS_MB:
            errors["attachments_max_mb"] = f"must be between 1 and {MAX_ATTACHMENTS_MB}"
        if config.get("imap_host"):
            if not signed_in and not (config.get("imap_user") and config.get("imap_password")):
                errors["imap_password"] = "IMAP needs a user and a password"
            config.setdefault("imap_port", 993)
        else:  # no polling: no IMAP settings to keep
            for name in ("imap_port", "imap_folder", "imap_security"):
                config.pop(name, None)
        return errors or super().check_config(config)

    @classmethod
    def attachment_rules(cls, inbox=None) -> AttachmentRules:
        """The channel's rules with the inbox's own total (``attachments_max_mb``), if set."""
        limit = ((inbox.config or {}) if inbox is not None else {}).get("attachments_max_mb")
        if not limit:
            return cls.attachments
        return dataclasses.replace(cls.attachments, max_total_bytes=int(limit) * MB)

    @classmethod
    def sign_in_config(
        cls, provider: str, servers: dict[str, Any], address: str, account: str
    ) -> dict[str, Any]:
        """A mailbox read and answered with the signed-in account's token (XOAUTH2).

        IMAP opens ``address`` (a shared mailbox when it is not the account's own:
        Microsoft lets an account with full access open it so); SMTP logs in as the
        account and sends from ``address`` (which needs "Send As" on a shared one).
        """
        return {
            **servers,
            "address": address,
            "auth": "oauth",
            "oauth_provider": provider,
            "imap_user": address,
            "smtp_user": account or address,
        }

    @classmethod
    def setup(cls, inbox, base: str) -> list[SetupItem]:
        """The inbound URL (its token is the secret), the address, IMAP polling."""
        cfg = inbox.config or {}
        items = [
            SetupItem(
                N_("Inbound URL (raw MIME, POST)"),
                base + cls.webhook_paths[0].format(token=inbox.inbound_token),
                N_(
                    "Forward each message as message/rfc822 (from your mail provider's inbound "
                    "webhook or a pipe); the token in the URL is the secret"
                ),
                secret=True,
            ),
            SetupItem(N_("Address"), cfg.get("address"), N_("Replies are sent from this address")),
        ]
        if cfg.get("imap_host"):
            items.append(
                SetupItem(
                    N_("IMAP polling"),
                    f"{cfg.get('imap_user')}@{cfg.get('imap_host')}:"
                    f"{cfg.get('imap_port') or 993} / {cfg.get('imap_folder') or 'INBOX'}",
                    N_("Polled by the background worker"),
                )
            )
        return items

    @classmethod
    def outbound_options(cls, session, msg, conv, inbox, base: str) -> dict[str, Any]:
        """Threading headers: Message-ID on our domain, In-Reply-To, References, Reply-To.

        The reply answers the customer's latest human-written message (an auto-reply
        only when there is nothing else): ``In-Reply-To`` is its Message-ID,
        ``References`` its own References (or In-Reply-To) plus its id, and the
        subject ``Re: <its subject>`` without stacked prefixes. Message-IDs are stored
        bare; the connector writes the bracketed header form.
        """
        address = inbox.config.get("address", "")
        domain = address.rsplit("@", 1)[-1] if "@" in address else "switchboard.local"
        Message = type(msg)  # noqa: N806  (the model: app.models imports the adapters)
        inbound = (
            sa.select(Message)
            .where(
                Message.conversation_id == conv.id,
                Message.direction == "inbound",
                Message.provider_id.is_not(None),
            )
            .order_by(Message.id.desc())
            .limit(1)
        )
        last_in = session.scalars(inbound.where(Message.automated.is_(False))).first()
        if last_in is None:
            last_in = session.scalars(inbound).first()
        options: dict = {
            "message_id": threads.make_message_id(conv.token, str(msg.id), domain),
            "reply_to": threads.plus_address(address, conv.token) if "@" in address else None,
        }
        if conv.contact is not None and conv.contact.name:
            options["to_name"] = conv.contact.name
        subject = conv.subject or ""
        if last_in is not None:
            ctx = (last_in.meta or {}).get("context") or {}
            parent_refs = list(ctx.get("references") or [])
            if not parent_refs and ctx.get("in_reply_to"):
                parent_refs = [ctx["in_reply_to"]]
            if not ctx.get("message_id_synthetic"):  # the customer's mail had no Message-ID
                options["in_reply_to"] = last_in.provider_id
                options["references"] = threads.build_references(parent_refs, last_in.provider_id)
            elif parent_refs:
                options["references"] = threads.build_references(parent_refs[:-1], parent_refs[-1])
            subject = (last_in.meta or {}).get("subject") or subject
        options["original_subject"] = subject
        options["subject"] = (
            threads.reply_subject(subject) if last_in is not None else (subject or "")
        )
        return options

    @classmethod
    def sample_contact_id(cls, n: int) -> str:
        """A made-up customer for demo data: an address."""
        return f"customer{n}@example.net"

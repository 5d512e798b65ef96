"""WhatsApp (Cloud API): a business phone number, its 24-hour window and approved templates."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from app.channels.attachments import AttachmentRules, Refusal, bare_type, human_size
from app.channels.base import N_, Answer, Channel, Check, Field, SetupItem, Webhook, WindowPolicy
from app.clock import aware
from connectors.whatsapp import MEDIA_LIMITS, render

log = logging.getLogger("switchboard.webhooks")

SUBSCRIPTION_FIELDS = "messages"


@dataclass(frozen=True)
class MediaRules(AttachmentRules):
    """Meta's limits per kind of file: images 5 MB, audio and video 16 MB, documents 100 MB."""

    per_type: tuple[tuple[str, int], ...] = ()  # (MIME type, cap): hashable, as rules are

    def file_refusal(self, f, channel: str) -> Refusal | None:
        """The channel's rule, then the cap of the file's own kind."""
        refused = super().file_refusal(f, channel)
        if refused is not None:
            return refused
        cap = dict(self.per_type).get(bare_type(f.content_type))
        if cap is not None and (f.size or 0) > cap:
            name = f.filename or "file"
            kind = bare_type(f.content_type).split("/")[0]
            return Refusal(
                "file_too_large",
                f"{name} is {human_size(f.size or 0)}: {channel} takes {kind} files up to "
                f"{human_size(cap)}.",
                filename=name,
                limit=cap,
            )
        return None


def _media_rules() -> MediaRules:
    per_type = {t: cap for cap, types in MEDIA_LIMITS.values() for t in types}
    return MediaRules(
        max_files=10,
        max_file_bytes=max(per_type.values()),
        types=tuple(per_type),
        types_label=N_(
            "JPEG or PNG images (5 MB), MP4 video and audio (16 MB), PDF and Office documents"
        ),
        per_type=tuple(per_type.items()),
    )


class WhatsApp(Channel):
    """One WhatsApp business phone number (WhatsApp Cloud API)."""

    name = "whatsapp"
    label = N_("WhatsApp")
    icon = (
        '<path d="M10 1.8a8.2 8.2 0 0 0-7 12.4L1.9 18.2l4.1-1.1A8.2 8.2 0 1 0 10 1.8Zm0 1.6a6.6 '
        "6.6 0 1 1-3.4 12.3l-.3-.2-2.3.6.6-2.2-.2-.4A6.6 6.6 0 0 1 10 3.4Zm-2.9 3c-.2 0-.5 "
        "0-.7.3-.2.3-.9.9-.9 2.1s.9 2.5 1 2.6c.1.2 1.8 2.8 4.4 3.8 2.2.9 2.6.7 3.1.6.5 0 "
        "1.5-.6 1.7-1.2.2-.6.2-1.1.2-1.2-.1-.1-.2-.2-.5-.3l-1.7-.8c-.2-.1-.4-.1-.6.1l-.8 "
        "1c-.1.2-.3.2-.5.1-.3-.1-1.1-.4-2-1.2-.8-.7-1.3-1.5-1.4-1.8-.2-.3 0-.4.1-.5l.4-.5.3-.4"
        'v-.5L7.9 6.8c-.2-.4-.4-.4-.6-.4h-.2Z"/>'
    )
    color = "#25d366"
    fields = (
        Field(
            "phone_number_id",
            "Phone number id",
            help="WhatsApp Manager > Phone numbers: the number's id (routes webhooks).",
        ),
        Field(
            "waba_id",
            "WhatsApp Business Account id",
            help="The account the number belongs to (its message templates).",
        ),
        Field(
            "access_token",
            "Access token",
            "secret",
            help="A system user token with whatsapp_business_messaging and "
            "whatsapp_business_management.",
        ),
        Field("app_secret", "App secret", "secret", help="Checks Meta's webhook signatures."),
        Field("verify_token", "Verify token", "secret", help="You choose it; paste it in Meta."),
    )
    route_field = "phone_number_id"
    webhook_paths = ("/webhooks/whatsapp",)
    # GET: the subscription handshake. POST: a batch for the numbers of one or more
    # accounts, signed with the app secret: accepted when a routed inbox verifies it
    webhooks = (
        Webhook(
            methods=("GET", "POST"),
            handshake=Answer(403, "verification failed"),
            every_inbox=True,
        ),
    )
    api_urls = {"whatsapp_graph": "WHATSAPP_GRAPH_URL"}
    # 24 hours after the customer's last message, by Meta's timestamp; no human agent
    # extension: outside it only an approved template may be sent
    window = WindowPolicy(
        standard=timedelta(hours=24),
        standard_label=N_("WhatsApp 24-hour window"),
        help=N_(
            "WhatsApp allows free-form replies for 24 hours after the customer's last "
            "message; after that only an approved message template can be sent."
        ),
    )
    templates = True
    identity_label = None  # the id is the customer's phone number
    contact_address = "phone"
    attachments = _media_rules()
    sends_file_bytes = True  # uploaded to Meta, so no public URL is needed
    seen_action = "mark_read"
    handshake_field = "verify_token"
    waiting_for_handshake = N_("Waiting for Meta's verification call")

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> dict[str, str]:
        """The phone number and account ids are Meta's numeric ids."""
        problems = super().check_config(config)
        for name in ("phone_number_id", "waba_id"):
            if config.get(name) and not str(config[name]).isdigit():
                problems.setdefault(name, "must be Meta's numeric id (digits only)")
        return problems

    @classmethod
    def setup(cls, inbox, base: str) -> list[SetupItem]:
        """Meta app > WhatsApp > Configuration."""
        cfg = inbox.config or {}
        return [
            SetupItem(
                N_("Callback URL"),
                base + cls.webhook_paths[0],
                N_("Meta app > WhatsApp > Configuration > Callback URL"),
            ),
            SetupItem(
                N_("Verify token"),
                cfg.get("verify_token"),
                N_("The Verify Token field next to it"),
                secret=True,
            ),
            SetupItem(
                N_("Subscription fields"),
                SUBSCRIPTION_FIELDS,
                N_("Webhook fields to subscribe to"),
            ),
            SetupItem(
                N_("Phone number id"),
                cfg.get("phone_number_id"),
                N_("Routes the number's events to this inbox"),
            ),
        ]

    @classmethod
    def provision(cls, connector, inbox, base: str) -> list[Check]:
        """Subscribe the app to the account's webhooks (``POST /{waba-id}/subscribed_apps``)."""
        return connector.provision({})

    @classmethod
    def address_of(cls, external_id: str) -> str | None:
        """The customer's WhatsApp id is their phone number (E.164)."""
        return external_id if external_id.startswith("+") else None

    @classmethod
    def list_templates(cls, connector) -> list[dict[str, Any]]:
        """The approved templates of the inbox's account; raises on Meta's refusal."""
        found, error = connector.fetch_templates()
        if error is not None:
            raise LookupError(error.message)
        return [t for t in found or () if t["status"].upper() == "APPROVED"]

    @classmethod
    def template_text(cls, template: dict[str, Any], params: list[str]) -> str:
        """What the customer reads: the body with its parameters filled."""
        return render(template.get("body") or "", params)

    @classmethod
    def parse_stored(cls, row, inboxes) -> dict[int, list]:
        """A batch's events per verified inbox, by phone number id (others logged, skipped)."""
        by_number = {i.route_key: i for i in inboxes.values()}
        grouped: dict[int, list] = {}
        unknown = set()
        _hook, _args, body = cls.stored_body(row)
        for ev in cls.connector().parse_webhook(body, aware(row.received_at)):
            inbox = by_number.get(ev.inbox_key)
            if inbox is None:
                unknown.add(ev.inbox_key)
                continue
            grouped.setdefault(inbox.id, []).append(ev)
        if unknown:
            log.warning("whatsapp: events for unknown numbers %s ignored", sorted(unknown))
        return grouped

    @classmethod
    def sample_contact_id(cls, n: int) -> str:
        """A made-up customer for demo data: a Brazilian mobile number."""
        return f"+55119{n % 100_000_000:08d}"

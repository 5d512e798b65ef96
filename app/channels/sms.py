"""SMS and MMS (Twilio): a number or a Messaging Service, quiet hours, segments."""

from __future__ import annotations

import dataclasses
from typing import Any

from app.channels.attachments import MB, AttachmentRules
from app.channels.base import N_, Answer, Channel, Check, Field, SetupItem, Webhook, always
from app.clock import aware
from connectors.sms import SmsConnector, phone

# The content types Twilio accepts for MMS media (its "accepted content types for media"):
# JPEG, PNG and GIF are resized for the handset, the rest are passed through as they are.
MMS_TYPES = (
    "image/jpeg",
    "image/jpg",
    "image/png",
    "image/gif",
    "image/bmp",
    "image/tiff",
    "image/heic",
    "image/heif",
    "audio/basic",
    "audio/l24",
    "audio/mp4",
    "audio/mpeg",
    "audio/ogg",
    "audio/vnd.rn-realaudio",
    "audio/vnd.wave",
    "audio/3gpp",
    "audio/3gpp2",
    "audio/ac3",
    "audio/webm",
    "audio/amr-nb",
    "audio/amr",
    "audio/aac",
    "video/mpeg",
    "video/mp4",
    "video/quicktime",
    "video/webm",
    "video/3gpp",
    "video/3gpp2",
    "video/3gpp-tt",
    "video/h261",
    "video/h263",
    "video/h263-1998",
    "video/h263-2000",
    "video/h264",
    "text/vcard",
    "text/x-vcard",
    "text/csv",
    "text/rtf",
    "text/richtext",
    "text/calendar",
    "text/directory",
    "application/pdf",
    "application/vcard",
    "application/vnd.apple.pkpass",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


class Sms(Channel):
    """One phone number (or Messaging Service)."""

    name = "sms"
    label = N_("SMS")
    icon = '<g fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round"><rect x="5" y="1.8" width="10" height="16.4" rx="2.2"/><path d="M8.5 15.2h3"/></g>'
    color = "#0f8a5f"
    fields = (
        Field(
            "provider", "Provider", "choice", required=False, choices=("twilio",), default="twilio"
        ),
        Field("number", "Number", "phone", help="The phone number in E.164, e.g. +14155550100."),
        Field("account_sid", "Account SID", help="Twilio Account SID (AC...)."),
        Field("auth_token", "Auth token", "secret", help="Twilio Auth Token."),
        Field(
            "messaging_service_sid",
            "Messaging Service SID",
            required=False,
            help="MG...: send through the service instead of the number.",
        ),
    )
    route_field = "number"
    alt_route_field = "messaging_service_sid"
    webhook_paths = ("/webhooks/sms/twilio", "/webhooks/sms/twilio/status")
    webhooks = (
        # an inbound text: stored even when it cannot be read (no MessageSid; the intake
        # keeps it as failed, once): Twilio gets its empty TwiML either way
        Webhook(
            unknown=Answer(404, "no inbox for this number"),
            stored=always(Answer(200, EMPTY_TWIML, "text/xml; charset=utf-8")),
        ),
        # a delivery receipt: found by the message's SID, or by the ``ref`` of the
        # callback URL (a receipt that overtakes the worker recording the SID), or
        # by the number (Messaging Service) it was sent from
        Webhook(
            kind=SmsConnector.STATUS,
            by_message="ref",
            args=("ref",),
            unknown=Answer(404, "unknown message"),
            stored=always(Answer(204, "")),
        ),
    )
    api_urls = {"twilio": "TWILIO_API_URL", "twilio_messaging": "TWILIO_MESSAGING_URL"}
    quiet_hours = True
    text_segments = True
    # MMS: up to 10 media of at most 5 MB together, of the types Twilio accepts
    attachments = AttachmentRules(
        max_files=10,
        max_total_bytes=5 * MB,
        types=MMS_TYPES,
        types_label=N_("images, audio, video, PDF, vCard and Office files"),
    )
    contact_address = "phone"
    starts_conversations = True  # within consent and the customer's quiet hours

    @classmethod
    def address_of(cls, external_id: str) -> str | None:
        """The customer's number in E.164 (a short code or sender name is none)."""
        return phone.normalise(external_id)

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> dict[str, str]:
        """A dialable number (stored in E.164) and Twilio's SID prefixes."""
        errors: dict[str, str] = {}
        e164 = phone.normalise(str(config.get("number") or ""))
        if not e164:
            errors["number"] = "is not a valid phone number (use E.164, e.g. +14155550100)"
        else:
            config["number"] = e164
        if not str(config.get("account_sid") or "").startswith("AC"):
            errors["account_sid"] = "starts with AC"
        service = config.get("messaging_service_sid")
        if service and not str(service).startswith("MG"):
            errors["messaging_service_sid"] = "starts with MG"
        return errors or super().check_config(config)

    @classmethod
    def setup(cls, inbox, base: str) -> list[SetupItem]:
        """Twilio console > the number (or Messaging Service) > Messaging configuration."""
        cfg = inbox.config or {}
        items = [
            SetupItem(
                N_("A message comes in (HTTP POST)"),
                base + cls.webhook_paths[0],
                N_(
                    "Twilio console > Phone number (or Messaging Service) > Messaging configuration"
                ),
            ),
            SetupItem(
                N_("Status callback URL"),
                base + cls.webhook_paths[1],
                N_("Sent with every reply automatically; set it on the Messaging Service too"),
            ),
            SetupItem(N_("Number"), cfg.get("number"), N_("Routes inbound texts to this inbox")),
        ]
        if cfg.get("messaging_service_sid"):
            items.append(SetupItem(N_("Messaging Service SID"), cfg.get("messaging_service_sid")))
        return items

    @classmethod
    def provision(cls, connector, inbox, base: str) -> list[Check]:
        """Point the number (or its Messaging Service) at our inbound URL, method POST."""
        return connector.provision(
            {"inbound": base + cls.webhook_paths[0], "status": base + cls.webhook_paths[1]}
        )

    @classmethod
    def outbound_options(cls, session, msg, conv, inbox, base: str) -> dict[str, Any]:
        """Twilio posts delivery receipts to our status URL.

        ``ref`` names the message, so a receipt that overtakes the worker recording
        Twilio's message SID still finds it (the signature covers the query string).
        """
        return {"status_callback": f"{base}{cls.webhook_paths[1]}?ref={msg.id}"}

    @classmethod
    def parse_stored(cls, row, inboxes) -> dict[int, list]:
        """An inbound SMS/MMS request or a receipt -> its events, for each inbox's number.

        Twilio sends no time: the events carry the time the request was received. A
        receipt carries the callback URL's ``ref`` (our message id) for a reply whose
        SID is not recorded yet; one not about our messages is ignored.
        """
        hook, args, body = cls.stored_body(row)
        events = cls.connector().parse_webhook(body, aware(row.received_at), hook.kind)
        if hook.by_message and args.get(hook.by_message):
            events = [dataclasses.replace(ev, reference=args[hook.by_message]) for ev in events]
        return {
            inbox_id: [dataclasses.replace(ev, inbox_key=inbox.route_key) for ev in events]
            for inbox_id, inbox in inboxes.items()
        }

    @classmethod
    def sample_contact_id(cls, n: int) -> str:
        """A made-up customer for demo data: a US number."""
        return f"+1415{n % 10_000_000:07d}"

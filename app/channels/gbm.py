"""Google Business Messages (closed by Google in 2024; kept for archives and RBM-style peers)."""

from __future__ import annotations

from datetime import timedelta

from app.channels.attachments import MB, AttachmentRules
from app.channels.badges import ResponseEstimate
from app.channels.base import N_, Answer, Channel, Field, SetupItem, Webhook, WindowPolicy


class Gbm(Channel):
    """One Business Messages agent."""

    name = "gbm"
    label = N_("Google Business Messages")
    icon = '<path d="M3 4.5A2.5 2.5 0 0 1 5.5 2h9A2.5 2.5 0 0 1 17 4.5v7a2.5 2.5 0 0 1-2.5 2.5H9l-4 3.5V14h.5A2.5 2.5 0 0 1 3 11.5v-7Zm4 3.2a1 1 0 1 0 0 2 1 1 0 0 0 0-2Zm3 0a1 1 0 1 0 0 2 1 1 0 0 0 0-2Zm3 0a1 1 0 1 0 0 2 1 1 0 0 0 0-2Z"/>'
    color = "#1a73e8"
    fields = (
        Field("agent", "Agent", help="brands/BRAND_ID/agents/AGENT_ID"),
        Field(
            "client_token",
            "Client token",
            "secret",
            help="From the webhook settings: handshake check and signature key.",
        ),
        Field(
            "service_account",
            "Service account",
            "file",
            help="The service-account JSON with the businessmessages scope.",
        ),
        Field(
            "partner_key",
            "Partner key",
            "secret",
            required=False,
            help="Older samples signed with a partner key.",
        ),
    )
    route_field = "agent"
    webhook_paths = ("/webhooks/gbm",)
    # the handshake is in the body; the agent named in the body is the route key, so an
    # unknown agent is acknowledged unverified (Google would retry it for days)
    webhooks = (
        Webhook(
            handshake=Answer(403, "unknown client token"),
            unknown=Answer(200, {"status": "ignored", "reason": "unknown agent"}),
            unsigned_unreadable=Answer(400, "unreadable body"),
        ),
    )
    api_urls = {"gbm": "GBM_API_URL"}
    window = WindowPolicy(
        standard=timedelta(days=30),
        standard_label=N_("Google 30-day window"),
        help=N_(
            "Google allows replies up to 30 days after the customer's last message; "
            "answer within 24 hours to keep messaging enabled."
        ),
    )
    # the response-time estimate Google shows (reports show where the agent stands)
    badge = ResponseEstimate()
    identity_label = "Google user"
    # only images travel as images (by URL); a customer's phone renders JPEG and PNG
    attachments = AttachmentRules(
        max_files=10,
        max_file_bytes=5 * MB,
        types=("image/jpeg", "image/png"),
        types_label=N_("JPEG or PNG images"),
    )
    typing_action = "TYPING_STARTED"
    joined_action = "REPRESENTATIVE_JOINED"
    left_action = "REPRESENTATIVE_LEFT"
    handshake_field = "client_token"  # a new one must be verified again
    waiting_for_handshake = N_("Waiting for Google's verification call")

    @classmethod
    def setup(cls, inbox, base: str) -> list[SetupItem]:
        """Business Communications console > Agent > Integrations."""
        cfg = inbox.config or {}
        return [
            SetupItem(
                N_("Webhook URL"),
                base + cls.webhook_paths[0],
                N_("Business Communications console > Agent > Integrations > Webhook"),
            ),
            SetupItem(
                N_("Client token"),
                cfg.get("client_token"),
                N_("Used for the handshake and signatures"),
                secret=True,
            ),
            SetupItem(N_("Agent"), cfg.get("agent"), N_("Routes the agent's events to this inbox")),
        ]

    @classmethod
    def sample_contact_id(cls, n: int) -> str:
        """A made-up customer for demo data: a conversation id."""
        return f"gbm-conv-{n:012d}"

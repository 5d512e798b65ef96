"""Instagram messaging: a professional account, Messenger's 24-hour window and 7-day tag.

Instagram's webhooks and Send API are Messenger's, so the adapter is Messenger's with the
account's settings, its own window names, console steps and attachment rules.
"""

from __future__ import annotations

from datetime import timedelta

from app.channels.attachments import MB, AttachmentRules
from app.channels.base import N_, Check, Field, SetupItem, WindowPolicy
from app.channels.messenger import Messenger
from connectors.instagram import SUBSCRIBED_FIELDS


class Instagram(Messenger):
    """One Instagram professional account (Instagram API with Instagram Login)."""

    name = "instagram"
    label = "Instagram"
    short_label = N_("Instagram")
    icon = (
        '<rect x="3" y="3" width="14" height="14" rx="4" fill="none" stroke="currentColor" '
        'stroke-width="1.6"/><circle cx="10" cy="10" r="3.2" fill="none" stroke="currentColor" '
        'stroke-width="1.6"/><circle cx="14.2" cy="5.8" r="1" fill="currentColor"/>'
    )
    color = "#d62976"
    fields = (
        Field(
            "account_id",
            "Instagram account id",
            help="The professional account's id (routes webhooks to this inbox).",
        ),
        Field(
            "access_token",
            "Access token",
            "secret",
            help="Instagram User token with instagram_business_manage_messages.",
        ),
        Field("app_secret", "App secret", "secret", help="Checks Meta's webhook signatures."),
        Field("verify_token", "Verify token", "secret", help="You choose it; paste it in Meta."),
        Field(
            "human_agent",
            "Human agent tag",
            "bool",
            required=False,
            default=False,
            help="The app is approved for the HUMAN_AGENT tag (7-day window for human replies).",
        ),
    )
    route_field = "account_id"
    webhook_paths = ("/webhooks/instagram",)
    api_urls = {"instagram_graph": "INSTAGRAM_GRAPH_URL"}
    window = WindowPolicy(
        standard=timedelta(hours=24),
        human_agent=timedelta(days=7),
        standard_label=N_("Instagram 24-hour window"),
        human_label=N_("Instagram 7-day human agent window"),
    )
    badge = None  # Meta publishes no responsiveness badge for Instagram accounts
    identity_label = "Instagram user"
    # the Send API takes images, video, audio and PDF files by URL, each up to 25 MB
    # (images up to 8 MB); each file goes out as its own message
    attachments = AttachmentRules(
        max_files=10,
        max_file_bytes=25 * MB,
        types=(
            "image/jpeg",
            "image/png",
            "image/gif",
            "video/mp4",
            "video/quicktime",
            "video/webm",
            "audio/aac",
            "audio/mp4",
            "audio/x-m4a",
            "audio/wav",
            "application/pdf",
        ),
        types_label=N_("images, video, audio and PDF files"),
    )

    @classmethod
    def setup(cls, inbox, base: str) -> list[SetupItem]:
        """Meta app > Instagram > API setup with Instagram login > Webhooks."""
        cfg = inbox.config or {}
        return [
            SetupItem(
                N_("Callback URL"),
                base + cls.webhook_paths[0],
                N_("Meta app > Instagram > API setup > Configure webhooks > Callback URL"),
            ),
            SetupItem(
                N_("Verify token"),
                cfg.get("verify_token"),
                N_("The Verify Token field next to it"),
                secret=True,
            ),
            SetupItem(
                N_("Subscription fields"),
                ", ".join(SUBSCRIBED_FIELDS),
                N_("Subscribe the account to these fields"),
            ),
            SetupItem(
                N_("Instagram account id"),
                cfg.get("account_id"),
                N_("Routes the account's events to this inbox"),
            ),
        ]

    @classmethod
    def provision(cls, connector, inbox, base: str) -> list[Check]:
        """Subscribe the account to the webhook fields (``POST /me/subscribed_apps``)."""
        return connector.provision({"subscribed_fields": ",".join(SUBSCRIBED_FIELDS)})

    @classmethod
    def sample_contact_id(cls, n: int) -> str:
        """A made-up customer for demo data: an Instagram-scoped id."""
        return f"{17_800_000_000_000_000 + n}"

"""Instagram messaging: a professional account, Messenger's 24-hour window and 7-day tag.

Instagram's webhooks and Send API are Messenger's, so the adapter is Messenger's with the
account's settings, its own window names, console steps and attachment rules.
"""

from __future__ import annotations

from datetime import timedelta

from app.channels.attachments import MB, AttachmentRules
from app.channels.base import N_, Field, WindowPolicy
from app.channels.messenger import APP_SECRET, HUMAN_AGENT, VERIFY_TOKEN, Messenger
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
        APP_SECRET,
        VERIFY_TOKEN,
        HUMAN_AGENT,
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
    subscription_fields = ", ".join(SUBSCRIBED_FIELDS)
    console_help = N_("Meta app > Instagram > API setup > Configure webhooks > Callback URL")
    subscription_help = N_("Subscribe the account to these fields")
    route_label = N_("Instagram account id")
    route_help = N_("Routes the account's events to this inbox")

    @classmethod
    def sample_contact_id(cls, n: int) -> str:
        """A made-up customer for demo data: an Instagram-scoped id."""
        return f"{17_800_000_000_000_000 + n}"

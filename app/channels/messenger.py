"""Facebook Messenger: a Page, its 24-hour window and the 7-day human agent tag."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from app.channels.attachments import MB, AttachmentRules
from app.channels.badges import Responsiveness
from app.channels.base import (
    N_,
    Answer,
    Channel,
    Check,
    Field,
    SetupItem,
    Webhook,
    WindowPolicy,
)
from app.clock import aware

log = logging.getLogger("switchboard.webhooks")

SUBSCRIPTION_FIELDS = (
    "messages, message_echoes, message_deliveries, message_reads, messaging_postbacks, "
    "messaging_referrals"
)


# the settings every Meta messaging inbox has (Instagram's too)
APP_SECRET = Field("app_secret", "App secret", "secret", help="Checks Meta's webhook signatures.")
VERIFY_TOKEN = Field(
    "verify_token", "Verify token", "secret", help="You choose it; paste it in Meta."
)
HUMAN_AGENT = Field(
    "human_agent",
    "Human agent tag",
    "bool",
    required=False,
    default=False,
    setting=True,
    help="Meta approved the app for the HUMAN_AGENT tag (7-day window for human replies).",
)


class Messenger(Channel):
    """One Facebook Page."""

    name = "messenger"
    label = "Facebook Messenger"
    short_label = N_("Messenger")
    icon = '<path d="M10 2C5.5 2 2 5.3 2 9.7c0 2.3 1 4.4 2.6 5.8v2.9l2.6-1.4c.9.3 1.8.4 2.8.4 4.5 0 8-3.3 8-7.7S14.5 2 10 2Zm.8 10.3-2-2.2-4 2.2 4.4-4.7 2.1 2.2 3.9-2.2-4.4 4.7Z"/>'
    color = "#0a7cff"
    fields = (
        Field("page_id", "Page id", help="The Facebook Page id (routes webhooks to this inbox)."),
        Field("page_token", "Page access token", "secret", help="With pages_messaging."),
        APP_SECRET,
        VERIFY_TOKEN,
        Field("app_id", "App id", required=False, help="Recognises echoes of your own sends."),
        HUMAN_AGENT,
    )
    route_field = "page_id"
    webhook_paths = ("/webhooks/messenger",)
    # GET: the subscription handshake. POST: a batch for many Pages, signed with a
    # secret several inboxes may share: accepted when a routed inbox verifies it
    webhooks = (
        Webhook(
            methods=("GET", "POST"),
            handshake=Answer(403, "verification failed"),
            every_inbox=True,
        ),
    )
    api_urls = {"messenger_graph": "MESSENGER_GRAPH_URL"}
    window = WindowPolicy(
        standard=timedelta(hours=24),
        human_agent=timedelta(days=7),
        standard_label=N_("Messenger 24-hour window"),
        human_label=N_("Messenger 7-day human agent window"),
    )
    # Meta's "very responsive" badge (reports show where the Page stands)
    badge = Responsiveness()
    identity_label = "Messenger user"
    # the Send API takes image, audio, video and any other file by URL, each up to 25 MB;
    # each file goes out as its own message
    attachments = AttachmentRules(
        max_files=10, max_file_bytes=25 * MB, types_label=N_("images, audio, video and files")
    )
    typing_action = "typing_on"
    seen_action = "mark_seen"
    handshake_field = "verify_token"  # a new one must be verified again
    waiting_for_handshake = N_("Waiting for Meta's verification call")

    @classmethod
    def inbox_settings(cls, config: dict[str, Any]) -> dict[str, Any]:
        """The human agent approval is also the inbox's ``human_agent`` setting."""
        return {"human_agent": bool(config.get("human_agent"))}

    # what the admin pastes into Meta's console (``setup``) and the fields ``provision``
    # subscribes the account to
    subscription_fields = SUBSCRIPTION_FIELDS
    console_help = N_("Meta app > Messenger > Webhooks > Callback URL")
    subscription_help = N_("Subscribe the Page to these fields")
    route_label = N_("Page id")
    route_help = N_("Routes the Page's events to this inbox")

    @classmethod
    def setup(cls, inbox, base: str) -> list[SetupItem]:
        """Meta app > (product) > Webhooks."""
        cfg = inbox.config or {}
        return [
            SetupItem(N_("Callback URL"), base + cls.webhook_paths[0], cls.console_help),
            SetupItem(
                N_("Verify token"),
                cfg.get("verify_token"),
                N_("The Verify Token field next to it"),
                secret=True,
            ),
            SetupItem(N_("Subscription fields"), cls.subscription_fields, cls.subscription_help),
            SetupItem(cls.route_label, cfg.get(cls.route_field), cls.route_help),
        ]

    @classmethod
    def provision(cls, connector, inbox, base: str) -> list[Check]:
        """Subscribe the account to the app's webhook fields (``POST .../subscribed_apps``).

        The callback URL and verify token are the app's, set once in Meta's console
        (``setup``): Graph takes them only with the app token.
        """
        fields = ",".join(f.strip() for f in cls.subscription_fields.split(","))
        return connector.provision({"subscribed_fields": fields})

    @classmethod
    def parse_stored(cls, row, inboxes) -> dict[int, list]:
        """A batch's events per verified inbox, by Page id (other Pages are logged, skipped)."""
        by_page = {i.route_key: i for i in inboxes.values()}
        grouped: dict[int, list] = {}
        unknown = set()
        _hook, _args, body = cls.stored_body(row)
        for ev in cls.connector().parse_webhook(body, aware(row.received_at)):
            inbox = by_page.get(ev.inbox_key)
            if inbox is None:
                unknown.add(ev.inbox_key)
                continue
            grouped.setdefault(inbox.id, []).append(ev)
        if unknown:
            log.warning("%s: events for unknown accounts %s ignored", cls.name, sorted(unknown))
        return grouped

    @classmethod
    def sample_contact_id(cls, n: int) -> str:
        """A made-up customer for demo data: a page-scoped id."""
        return f"{7_000_000_000_000_000 + n}"

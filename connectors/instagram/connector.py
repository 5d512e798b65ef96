"""The Instagram connector: Messenger's Send API and webhooks on the Instagram account."""

from __future__ import annotations

from typing import Any

from connectors.base import Check, ConfigField, MediaHosts, register
from connectors.messenger.connector import MessengerConnector, _refused
from connectors.messenger.inbound import id_text

DEFAULT_GRAPH_URL = "https://graph.instagram.com"
PROFILE_FIELDS = "name,username,profile_pic"
SHARED_FIELDS = ("app_secret", "verify_token", "human_agent")  # as Messenger's
# the webhook fields the account subscribes to (echoes come with "messages")
SUBSCRIBED_FIELDS = (
    "messages",
    "messaging_seen",
    "message_reactions",
    "messaging_postbacks",
    "messaging_referral",
)


@register
class InstagramConnector(MessengerConnector):
    """One Instagram professional account, with an Instagram User access token."""

    channel = "instagram"
    display_name = "Instagram"
    # attachment URLs: lookaside.fbsbx.com, scontent-*.cdninstagram.com, *.fbcdn.net
    media_hosts = MediaHosts(sources=("*.fbcdn.net", "*.fbsbx.com", "*.cdninstagram.com"))
    fields = (
        ConfigField(
            "account_id", help="The Instagram professional account id (routes webhooks here)."
        ),
        ConfigField(
            "access_token", secret=True, help="Instagram User token with instagram_business_*."
        ),
        *(f for f in MessengerConnector.fields if f.name in SHARED_FIELDS),
    )
    token_field = "access_token"
    graph_key = "instagram_graph"
    default_graph_url = DEFAULT_GRAPH_URL
    product = "Instagram"
    app_place = "Instagram"
    token_label = "access token"
    # graph.instagram.com takes the token alone; the Send API has no metadata to echo
    sends_proof = False
    sends_metadata = False
    profile_fields = PROFILE_FIELDS

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> list[str]:
        """The required settings, and an account id that is the number webhooks carry."""
        problems = super().validate_config(config)
        account = str(config.get("account_id") or "")
        if account and not account.isdigit():
            problems.append("account_id must be the account's numeric id, not its @username")
        return problems

    # -- set-up ------------------------------------------------------------------
    def check_credentials(self) -> list[Check]:
        """The token: valid (``GET /me``), for the configured account, and its webhook
        subscription (``GET /me/subscribed_apps``), where Meta lets it be read."""
        if self._credentials_problem() is not None:
            text = "The inbox has no access token."
            return [Check("access_token", False, text, "access_token")]
        account_id = str(self.config.get("account_id") or "")
        data, error = self._call("GET", "me", params={"fields": "user_id,username"})
        if error is not None:
            return [_refused("access_token", "Meta refused the access token", error)]
        data = data or {}
        got, name = id_text(data.get("user_id")) or id_text(data.get("id")), data.get("username")
        shown = f"@{name}" if name else "another account"
        if got != account_id:
            text = f"The token belongs to {shown} ({got}), not to the account {account_id}."
            return [Check("account_id", False, text, "account_id")]
        checks = [Check("access_token", True, f"The access token is valid for {shown} ({got}).")]
        return checks + self._subscription_checks()

    def _subscription_checks(self) -> list[Check]:
        """Whether the account's webhooks include ``messages`` (unreadable: a warning)."""
        data, error = self._call("GET", "me/subscribed_apps")
        rows = (data or {}).get("data") if error is None else None
        if not isinstance(rows, list):
            why = error.message if error is not None else "Meta answered without data"
            text = f"Could not read the webhook subscription ({why}); check it in Meta's console."
            return [Check("subscription", True, text, warning=True)]
        fields = {
            str(f)
            for row in rows
            if isinstance(row, dict)
            for f in row.get("subscribed_fields") or ()
        }
        if "messages" not in fields:
            text = "The account is not subscribed to the messages webhook field."
            return [Check("subscription", False, text)]
        shown = ", ".join(sorted(fields))
        return [Check("subscription", True, f"The account's webhooks are subscribed ({shown}).")]

    def provision(self, urls: dict[str, str]) -> list[Check]:
        """Subscribe the account to the webhook fields: ``POST /me/subscribed_apps``."""
        fields = urls.get("subscribed_fields") or ",".join(SUBSCRIBED_FIELDS)
        data, error = self._call("POST", "me/subscribed_apps", params={"subscribed_fields": fields})
        if error is None and (data or {}).get("success") is not False:
            return [Check("subscription", True, f"The account is subscribed to ({fields}).")]
        text = "Meta refused to subscribe the account to the app's webhooks"
        return [_refused("subscription", text, error, field="access_token")]

"""What the web side learns about channels comes from their adapters: the channel list of
the API, the page's boot data the scripts read, and the inbox settings page."""

from __future__ import annotations

import json
import re

import pytest

from app.channels import all_channels
from app.channels.base import FIELD_TYPES

SECRETS = {
    "messenger": {
        "page_token": "page-token-do-not-show",
        "app_secret": "app-secret-do-not-show",
        "verify_token": "verify-do-not-show",
    },
    "sms": {"auth_token": "auth-token-do-not-show"},
    "email": {"smtp_user": "mailer", "smtp_password": "smtp-password-do-not-show"},
    "gbm": {"client_token": "client-token-do-not-show"},
}


def _sign_in(client, user) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    resp = client.post(
        "/login",
        data={"email": user.email, "password": "correct horse battery", "csrf_token": token},
    )
    assert resp.status_code in (302, 303)


def _boot(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="boot">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


def test_channel_list_describes_every_channel_without_secrets(client, make):
    agent = make.user()
    for channel, secrets in SECRETS.items():
        make.inbox(channel, members=[agent], **secrets)

    resp = client.get("/api/v1/channels", headers=make.headers(agent))

    assert resp.status_code == 200
    body = resp.get_json()
    assert isinstance(body, list)
    assert [c["channel"] for c in body] == [c.name for c in all_channels()]
    for item in body:
        assert item["label"]
        assert item["fields"], item["channel"]
        for field in item["fields"]:
            assert {"name", "label", "type", "required"} <= set(field)
            assert field["type"] in FIELD_TYPES
            if field["type"] == "choice":
                assert field["choices"]
        caps = item["capabilities"]
        assert {"window", "quiet_hours", "segments", "mail", "typing", "seen"} <= set(caps)
    by_name = {c["channel"]: c for c in body}
    assert by_name["messenger"]["capabilities"]["window"]["human_agent_s"] == 7 * 86400
    assert by_name["sms"]["capabilities"]["window"] is None
    assert by_name["sms"]["capabilities"]["segments"] is True
    assert by_name["email"]["capabilities"]["mail"] is True
    text = resp.get_data(as_text=True)
    for secrets in SECRETS.values():
        for value in secrets.values():
            if value.endswith("do-not-show"):
                assert value not in text


def test_channel_list_needs_a_signed_in_user(client, make):
    make.user()
    assert client.get("/api/v1/channels").status_code == 401


def test_pages_hand_the_channels_capabilities_to_the_scripts(client, make):
    agent = make.user()
    make.inbox("messenger", members=[agent], **SECRETS["messenger"])
    _sign_in(client, agent)

    html = client.get("/").get_data(as_text=True)

    boot = _boot(html)
    assert boot["channels"] == {c.name: c.capabilities() for c in all_channels()}
    for value in SECRETS["messenger"].values():
        assert value not in html


@pytest.mark.parametrize(
    ("channel", "present", "absent"),
    [
        ("messenger", ['name="human_agent"', "7-day human agent replies"], ['name="quiet_on"']),
        (
            "sms",
            ['name="quiet_on"', "This channel has no platform reply window."],
            ['name="human_agent"'],
        ),
        (
            "gbm",
            ["Google allows replies up to 30 days after the customer"],
            ['name="human_agent"', 'name="quiet_on"'],
        ),
        (
            "email",
            ["This channel has no platform reply window."],
            ['name="human_agent"', 'name="quiet_on"'],
        ),
    ],
)
def test_inbox_settings_show_the_settings_of_the_channel(client, make, channel, present, absent):
    lead = make.user("lead")
    inbox = make.inbox(channel)
    _sign_in(client, lead)

    html = client.get(f"/admin/inboxes/{inbox.id}").get_data(as_text=True)

    for text in present:
        assert text in html
    for text in absent:
        assert text not in html


def test_admins_see_which_sign_in_apps_are_set_up_and_the_redirect_uri_to_register(
    app, client, make
):
    app.config.update(MICROSOFT_CLIENT_ID="ms-client", MICROSOFT_CLIENT_SECRET="ms-secret")
    _sign_in(client, make.user("admin"))
    email = next(c for c in client.get("/api/v1/channels").get_json() if c["channel"] == "email")
    assert email["oauth"] == ["microsoft", "google"]
    by_name = {p["name"]: p for p in email["sign_in"]}
    assert by_name["microsoft"]["configured"] is True
    assert by_name["google"]["configured"] is False  # its client id and secret are not set
    assert by_name["microsoft"]["redirect_uri"].endswith("/oauth/microsoft/callback")
    assert "ms-secret" not in json.dumps(email)
    other = [c for c in client.get("/api/v1/channels").get_json() if c["channel"] != "email"]
    assert all("sign_in" not in c and "oauth" not in c for c in other)


def test_agents_see_the_sign_in_providers_but_not_the_server_settings(client, make):
    _sign_in(client, make.user("agent"))
    email = next(c for c in client.get("/api/v1/channels").get_json() if c["channel"] == "email")
    assert email["oauth"] == ["microsoft", "google"] and "sign_in" not in email

# ruff: noqa: F811 (the fixtures imported below are test arguments)
"""Connecting, checking, repairing and disconnecting inboxes through the API, against
fake providers: Meta's Graph (``responses``), Twilio's REST API (the harness's
``FakeProvider``), an SMTP server with logins (aiosmtpd) and Dovecot for IMAP."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl

import pytest
import requests
import responses
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from app.models import Inbox, Message
from app.runtime.worker import run_once
from tests.channels.harness import SmtpSink, provider  # noqa: F401 (fixture)
from tests.channels.test_messenger_flow import (  # noqa: F401 (graph is a fixture)
    APP_SECRET,
    PAGE_A,
    U1,
    Api,
    customer_writes,
    entry,
    envelope,
    graph,
    page_inbox,
    post_webhook,
    text,
)
from tests.connectors.imap_server import dovecot, dovecot_available, free_port  # noqa: F401

PAGE_TOKEN = "EAAG-page-token-never-shown"
TWILIO_TOKEN = "twilio-auth-token-never-shown"
SMTP_PASSWORD = "smtp-app-password-never-shown"
SID = "AC" + "a" * 32
NUMBER = "+14155550100"


@pytest.fixture
def admin(make):
    return make.user("admin", name="Ada Admin")


@pytest.fixture
def api(client, make, admin):
    return Api(client, make.headers(admin))


def no_secret(body, *secrets: str) -> None:
    """None of ``secrets`` appears anywhere in the JSON answer."""
    dumped = json.dumps(body)
    for secret in secrets:
        assert secret not in dumped


def create(client, make, admin, channel: str, name: str, config: dict):
    return client.post(
        "/api/v1/inboxes",
        json={"channel": channel, "name": name, "config": config},
        headers=make.headers(admin),
    )


def inbox_count(session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(Inbox))


# --------------------------------------------------------------------------- Messenger


def graph_url(app, path: str) -> str:
    return f"{app.config['MESSENGER_GRAPH_URL']}/{app.config['MESSENGER_GRAPH_VERSION']}/{path}"


def meta_answers(graph, app, me=None, scopes=("pages_messaging", "pages_manage_metadata")):
    """``GET /me``, ``GET /debug_token`` and ``POST /{page}/subscribed_apps`` on the fake Graph."""
    me = me if me is not None else (200, {"id": PAGE_A, "name": "Corner Shop"})
    graph.rsps.add(responses.GET, graph_url(app, "me"), status=me[0], json=me[1])
    graph.rsps.add(
        responses.GET,
        graph_url(app, "debug_token"),
        json={"data": {"is_valid": True, "scopes": list(scopes), "profile_id": PAGE_A}},
    )
    return graph.rsps.add(
        responses.POST, graph_url(app, f"{PAGE_A}/subscribed_apps"), json={"success": True}
    )


def page_config(**changes) -> dict:
    return {
        "page_id": PAGE_A,
        "page_token": PAGE_TOKEN,
        "app_secret": APP_SECRET,
        "verify_token": "my-verify-token",
        **changes,
    }


def test_connecting_a_page_checks_the_token_subscribes_the_page_and_waits_for_meta(
    client, make, admin, app, graph, session
):
    subscribed = meta_answers(graph, app)

    resp = create(client, make, admin, "messenger", "Corner Shop", page_config())

    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["channel"] == "messenger" and body["name"] == "Corner Shop"
    assert [c["name"] for c in body["checks"]] == ["page_token", "permissions", "subscription"]
    assert all(c["ok"] for c in body["checks"])
    # the fake Graph received the subscription, from the Connect call alone
    assert subscribed.call_count == 1
    query = dict(parse_qsl(subscribed.calls[0].request.url.split("?", 1)[1]))
    assert set(query["subscribed_fields"].split(",")) >= {
        "messages",
        "messaging_postbacks",
        "message_deliveries",
        "message_reads",
        "message_echoes",
        "messaging_referrals",
    }
    setup = {item["label"]: item for item in body["setup"]}
    assert setup["Callback URL"]["value"].endswith("/webhooks/messenger")
    assert setup["Verify token"]["value"] == "my-verify-token"  # the one secret shown back
    assert body["health"]["webhook"]["waiting"] == "Waiting for Meta's verification call"
    assert body["secrets"] == {"page_token": True, "app_secret": True, "verify_token": True}
    no_secret(body, PAGE_TOKEN, APP_SECRET)

    # Meta's verification call arrives: the state turns green
    shake = client.get(
        "/webhooks/messenger?hub.mode=subscribe&hub.verify_token=my-verify-token&hub.challenge=77"
    )
    assert shake.status_code == 200 and shake.get_data(as_text=True) == "77"
    now_shown = client.get(f"/api/v1/inboxes/{body['id']}", headers=make.headers(admin))
    webhook = now_shown.get_json()["health"]["webhook"]
    assert webhook["verified_at"] and webhook["waiting"] is None
    checked = client.post(f"/api/v1/inboxes/{body['id']}/check", headers=make.headers(admin))
    assert checked.status_code == 200
    assert checked.get_json()["ok"] is True
    hook = [c for c in checked.get_json()["checks"] if c["name"] == "webhook"][0]
    assert hook["ok"] and not hook["warning"]
    no_secret(checked.get_json(), PAGE_TOKEN, APP_SECRET)

    # a new verify token must be verified again
    changed = client.patch(
        f"/api/v1/inboxes/{body['id']}",
        json={"config": {"verify_token": "another-token"}},
        headers=make.headers(admin),
    )
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["health"]["webhook"]["waiting"]


def test_a_refused_page_token_is_shown_against_the_token_and_nothing_is_stored(
    client, make, admin, app, graph, session
):
    expired = {
        "error": {"message": "Error validating access token: Session has expired", "code": 190}
    }
    subscribed = meta_answers(graph, app, me=(400, expired))

    resp = create(client, make, admin, "messenger", "Corner Shop", page_config())

    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert error["code"] == "check_failed"
    (failed,) = [c for c in error["checks"] if not c["ok"]]
    assert failed["field"] == "page_token"
    assert "The Page token was refused by Meta" in failed["message"]
    assert "Session has expired" in failed["message"]
    assert inbox_count(session) == 0
    assert subscribed.call_count == 0
    no_secret(resp.get_json(), PAGE_TOKEN, APP_SECRET)


def test_a_token_of_another_page_or_without_pages_messaging_is_refused(
    client, make, admin, app, graph, session
):
    meta_answers(graph, app, me=(200, {"id": "999", "name": "Other Page"}))
    resp = create(client, make, admin, "messenger", "Corner Shop", page_config())
    assert resp.status_code == 422
    assert [c["field"] for c in resp.get_json()["error"]["checks"] if not c["ok"]] == ["page_id"]

    graph.rsps.reset()
    meta_answers(graph, app, scopes=("pages_show_list",))
    resp = create(client, make, admin, "messenger", "Corner Shop", page_config())
    assert resp.status_code == 422
    (failed,) = [c for c in resp.get_json()["error"]["checks"] if not c["ok"]]
    assert failed["name"] == "permissions" and "pages_messaging" in failed["message"]
    assert inbox_count(session) == 0


def test_missing_and_wrong_fields_are_named(client, make, admin, session):
    resp = create(client, make, admin, "messenger", "", {"page_id": PAGE_A, "colour": "red"})
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert error["code"] == "invalid"
    assert {"name", "colour", "page_token", "app_secret", "verify_token"} <= set(error["fields"])

    resp = create(client, make, admin, "sms", "Texts", {"number": "12", "account_sid": "XX"})
    fields = resp.get_json()["error"]["fields"]
    assert resp.status_code == 422 and "auth_token" in fields

    resp = create(client, make, admin, "pigeon", "Birds", {})
    assert resp.status_code == 422 and "channel" in resp.get_json()["error"]["fields"]
    assert inbox_count(session) == 0


def test_check_never_answers_5xx_when_meta_cannot_be_reached(client, make, admin, app, graph):
    inbox_id = page_inbox(make)
    graph.rsps.add(
        responses.GET, graph_url(app, "me"), body=requests.ConnectTimeout("connect timed out")
    )
    resp = client.post(f"/api/v1/inboxes/{inbox_id}/check", headers=make.headers(admin))
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["ok"] is False
    assert "Meta could not be reached" in body["checks"][0]["message"]


def test_new_credentials_clear_reconnect_and_the_paused_reply_goes_out(
    client, make, admin, app, graph, session
):
    inbox_id = page_inbox(make)
    headers = make.headers(admin)
    customer_writes(client)
    api = Api(client, headers)
    conv_id = api.conversation_with(U1)["id"]
    graph.send_answers.append(
        (400, {"error": {"message": "Error validating access token: expired.", "code": 190}})
    )
    queued = api.reply(conv_id, "Your order shipped.")
    run_once()
    assert api.inbox(inbox_id)["needs_reconnect"] is True

    # a token Meta refuses: the old one stays, still paused
    graph.rsps.add(
        responses.GET,
        graph_url(app, "me"),
        status=400,
        json={"error": {"message": "Invalid OAuth access token.", "code": 190}},
    )
    refused = client.patch(
        f"/api/v1/inboxes/{inbox_id}", json={"config": {"page_token": "EAAG-bad"}}, headers=headers
    )
    assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "check_failed"
    session.expire_all()
    inbox = session.get(Inbox, inbox_id)
    assert inbox.needs_reconnect and inbox.config["page_token"] == f"EAAG-token-{PAGE_A}"

    graph.rsps.replace(
        responses.GET, graph_url(app, "me"), json={"id": PAGE_A, "name": "Corner Shop"}
    )
    meta_answers(graph, app, me=(200, {"id": PAGE_A, "name": "Corner Shop"}))
    fresh = "EAAG-fresh-token-never-shown"
    # an empty secret keeps the stored one: only the Page token changes
    resp = client.patch(
        f"/api/v1/inboxes/{inbox_id}",
        json={"config": {"page_token": fresh, "app_secret": ""}},
        headers=headers,
    )
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["needs_reconnect"] is False and body["resumed"] == 1
    no_secret(body, fresh, APP_SECRET)
    session.expire_all()
    assert session.get(Inbox, inbox_id).config["app_secret"] == APP_SECRET

    run_once()
    assert graph.sends[-1].token == fresh
    assert api.message(conv_id, queued["id"])["status"] == "sent"
    health = client.get(f"/api/v1/inboxes/{inbox_id}", headers=headers).get_json()["health"]
    assert health["last_sent_at"] and health["last_event_at"] and not health["needs_reconnect"]


def test_a_disconnected_page_acknowledges_webhooks_stores_nothing_and_stays_readable(
    client, make, admin, app, graph, session
):
    inbox_id = page_inbox(make)
    customer_writes(client, body="Before")
    api = Api(client, make.headers(admin))
    conv_id = api.conversation_with(U1)["id"]
    before = session.scalar(sa.select(sa.func.count()).select_from(Message))

    resp = client.delete(f"/api/v1/inboxes/{inbox_id}", headers=make.headers(admin))
    assert resp.status_code == 200 and resp.get_json()["active"] is False

    payload = envelope(entry(PAGE_A, text(PAGE_A, U1, "m_after", "After")))
    answer = post_webhook(client, payload)
    assert answer.status_code == 200
    assert session.scalar(sa.select(sa.func.count()).select_from(Message)) == before
    assert [m["body"] for m in api.messages(conv_id)][-1] == "Before"
    forged = post_webhook(client, payload, secret="not-the-app-secret")
    assert forged.status_code == 403

    # connecting the same Page again brings the inbox back, with its history
    meta_answers(graph, app)
    again = create(client, make, admin, "messenger", "Corner Shop", page_config())
    assert again.status_code == 201 and again.get_json()["id"] == inbox_id


# --------------------------------------------------------------------------- Twilio


def twilio(app, path: str) -> str:
    return f"{app.config['TWILIO_API_URL']}/2010-04-01/Accounts/{SID}{path}"


def messaging(app, path: str) -> str:
    return f"{app.config['TWILIO_MESSAGING_URL']}{path}"


def twilio_answers(provider, app, numbers=None):
    provider.route("GET", twilio(app, ".json"), (200, {"sid": SID, "status": "active"}))
    found = (
        numbers
        if numbers is not None
        else [{"sid": "PN123", "phone_number": NUMBER, "capabilities": {"sms": True}}]
    )
    provider.route(
        "GET",
        twilio(app, "/IncomingPhoneNumbers.json"),
        (200, {"incoming_phone_numbers": found, "page": 0, "uri": "/x"}),
    )


def sms_config(**changes) -> dict:
    return {"number": NUMBER, "account_sid": SID, "auth_token": TWILIO_TOKEN, **changes}


def test_connecting_a_number_sets_its_inbound_url_and_warns_about_registration(
    client,
    make,
    admin,
    app,
    provider,
    session,
):
    twilio_answers(provider, app)
    provider.route("POST", twilio(app, "/IncomingPhoneNumbers/PN123.json"), (200, {"sid": "PN123"}))

    resp = create(client, make, admin, "sms", "Texts", sms_config())

    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    (update,) = provider.to(twilio(app, "/IncomingPhoneNumbers/PN123.json"), "POST")
    form = dict(parse_qsl(update.body.decode()))
    assert form["SmsUrl"].endswith("/webhooks/sms/twilio") and form["SmsMethod"] == "POST"
    checks = {c["name"]: c for c in body["checks"]}
    assert checks["inbound_url"]["ok"]
    assert checks["registration"]["warning"] and "10DLC" in checks["registration"]["message"]
    no_secret(body, TWILIO_TOKEN)
    for call in provider.calls:  # basic auth with the account's credentials
        assert call.headers["Authorization"].startswith("Basic ")


def test_a_messaging_service_gets_the_inbound_url_and_its_campaign_is_read(
    client,
    make,
    admin,
    app,
    provider,
):
    twilio_answers(provider, app)
    service = messaging(app, "/v1/Services/MG123")
    provider.route("GET", service, (200, {"sid": "MG123", "friendly_name": "Shop texts"}))
    provider.route(
        "GET",
        messaging(app, "/v1/Services/MG123/Compliance/Usa2p"),
        (200, {"compliance": [{"campaign_status": "VERIFIED"}], "meta": {"key": "compliance"}}),
    )
    provider.route("POST", service, (200, {"sid": "MG123"}))

    resp = create(client, make, admin, "sms", "Texts", sms_config(messaging_service_sid="MG123"))

    assert resp.status_code == 201, resp.get_json()
    (update,) = provider.to(service, "POST")
    form = dict(parse_qsl(update.body.decode()))
    assert form["InboundRequestUrl"].endswith("/webhooks/sms/twilio")
    assert form["InboundMethod"] == "POST"
    assert form["StatusCallback"].endswith("/webhooks/sms/twilio/status")
    checks = {c["name"]: c for c in resp.get_json()["checks"]}
    assert checks["registration"]["ok"] and not checks["registration"]["warning"]


def test_twilio_refusals_point_at_the_right_field(
    client,
    make,
    admin,
    app,
    provider,
    session,
):
    provider.route("GET", twilio(app, ".json"), (200, {"status": "active"})).queued.append(
        (401, {"code": 20003, "message": "Authenticate"})
    )
    resp = create(client, make, admin, "sms", "Texts", sms_config())
    assert resp.status_code == 422
    (failed,) = resp.get_json()["error"]["checks"]
    assert failed["field"] == "auth_token" and "Authenticate" in failed["message"]

    provider.route(
        "GET", twilio(app, "/IncomingPhoneNumbers.json"), (200, {"incoming_phone_numbers": []})
    )
    resp = create(client, make, admin, "sms", "Texts", sms_config())
    assert resp.status_code == 422
    failed = [c for c in resp.get_json()["error"]["checks"] if not c["ok"]]
    assert [c["field"] for c in failed] == ["number"]
    assert inbox_count(session) == 0
    assert not provider.to(twilio(app, "/IncomingPhoneNumbers/"), "POST")


def test_check_reports_twilio_outages_without_5xx(client, make, admin, app, provider):
    inbox = make.inbox("sms", account_sid=SID, number=NUMBER)
    provider.route("GET", twilio(app, ".json"), (503, {"message": "Service Unavailable"}))
    resp = client.post(f"/api/v1/inboxes/{inbox.id}/check", headers=make.headers(admin))
    assert resp.status_code == 200
    assert resp.get_json()["ok"] is False
    assert "Service Unavailable" in resp.get_json()["checks"][0]["message"]


def test_a_disconnected_number_acknowledges_texts_and_stores_nothing(client, make, admin, session):
    inbox = make.inbox("sms", account_sid=SID, number=NUMBER, auth_token=TWILIO_TOKEN)
    client.delete(f"/api/v1/inboxes/{inbox.id}", headers=make.headers(admin))
    from twilio.request_validator import RequestValidator

    form = {"MessageSid": "SM1", "From": "+14155550199", "To": NUMBER, "Body": "hi"}
    url = "http://localhost/webhooks/sms/twilio"
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, form)
    resp = client.post(url, data=form, headers={"X-Twilio-Signature": signature})
    assert resp.status_code == 200 and b"<Response>" in resp.data
    assert session.scalar(sa.select(sa.func.count()).select_from(Message)) == 0


# --------------------------------------------------------------------------- email


class Logins:
    """aiosmtpd authenticator: one user and password."""

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login == b"support@shop.example"
            and auth_data.password == SMTP_PASSWORD.encode()
        )
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_login():
    """An SMTP server that wants a login (no TLS, so AUTH is allowed in the clear)."""
    port = free_port()
    controller = Controller(
        SmtpSink(),
        hostname="127.0.0.1",
        port=port,
        authenticator=Logins(),
        auth_require_tls=False,
    )
    controller.start()
    yield port
    controller.stop()


def mail_config(port: int, **changes) -> dict:
    return {
        "address": "support@shop.example",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "none",
        "smtp_user": "support@shop.example",
        "smtp_password": SMTP_PASSWORD,
        **changes,
    }


def test_a_mailbox_is_connected_when_the_smtp_server_accepts_the_login(
    client, make, admin, smtp_login, session
):
    wrong = create(
        client, make, admin, "email", "Support", mail_config(smtp_login, smtp_password="nope")
    )
    assert wrong.status_code == 422
    (failed,) = wrong.get_json()["error"]["checks"]
    assert failed["name"] == "smtp_login" and failed["field"] == "smtp_password"
    assert "535" in failed["message"] or "Authentication" in failed["message"]
    assert inbox_count(session) == 0

    resp = create(client, make, admin, "email", "Support", mail_config(smtp_login))
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["checks"][0]["ok"]
    no_secret(resp.get_json(), SMTP_PASSWORD)


def test_an_unreachable_smtp_server_is_named(client, make, admin):
    resp = create(client, make, admin, "email", "Support", mail_config(free_port()))
    assert resp.status_code == 422
    (failed,) = resp.get_json()["error"]["checks"]
    assert failed["field"] == "smtp_host" and "SMTP 127.0.0.1" in failed["message"]


@pytest.mark.skipif(not dovecot_available(), reason="Dovecot is not installed")
def test_imap_login_and_folder_are_checked(client, make, admin, smtp_login, dovecot):
    imap = dovecot.config
    base = mail_config(
        smtp_login,
        imap_host=imap["imap_host"],
        imap_port=imap["imap_port"],
        imap_security="none",
        imap_user=imap["imap_user"],
        imap_password=imap["imap_password"],
    )
    wrong = create(client, make, admin, "email", "Support", {**base, "imap_password": "wrong"})
    assert wrong.status_code == 422
    failed = [c for c in wrong.get_json()["error"]["checks"] if not c["ok"]]
    assert [c["field"] for c in failed] == ["imap_password"]
    assert "refused the login" in failed[0]["message"]

    missing = create(client, make, admin, "email", "Support", {**base, "imap_folder": "Nowhere"})
    failed = [c for c in missing.get_json()["error"]["checks"] if not c["ok"]]
    assert [c["field"] for c in failed] == ["imap_folder"]

    resp = create(client, make, admin, "email", "Support", base)
    assert resp.status_code == 201, resp.get_json()
    assert [c["name"] for c in resp.get_json()["checks"]] == ["smtp_login", "imap_login"]


def test_the_email_channel_offers_presets(client, make, admin):
    channels = client.get("/api/v1/channels", headers=make.headers(admin)).get_json()
    (email,) = [c for c in channels if c["channel"] == "email"]
    presets = {p["name"]: p for p in email["presets"]}
    assert {"gmail", "fastmail", "icloud", "zoho", "outlook"} <= set(presets)
    gmail = presets["gmail"]
    assert gmail["config"]["smtp_host"] == "smtp.gmail.com"
    assert gmail["config"]["imap_port"] == 993
    assert gmail["app_password_url"].startswith("https://")


# --------------------------------------------------------------------------- who may


def test_only_admins_connect_check_rotate_and_disconnect(client, make):
    inbox = make.inbox("messenger")
    for role in ("agent", "lead"):
        headers = make.headers(make.user(role))
        calls = [
            client.post("/api/v1/inboxes", json={"channel": "email"}, headers=headers),
            client.post(f"/api/v1/inboxes/{inbox.id}/check", headers=headers),
            client.delete(f"/api/v1/inboxes/{inbox.id}", headers=headers),
            client.patch(
                f"/api/v1/inboxes/{inbox.id}",
                json={"config": {"page_token": "x"}},
                headers=headers,
            ),
        ]
        assert [r.status_code for r in calls] == [403, 403, 403, 403], role
    lead = make.headers(make.user("lead"))
    shown = client.get(f"/api/v1/inboxes/{inbox.id}", headers=lead).get_json()
    assert "config" not in shown and "health" not in shown
    no_secret(shown, inbox.config["page_token"], inbox.config["verify_token"])
    assert re.search(r'"active": true', json.dumps(shown))

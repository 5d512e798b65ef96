# ruff: noqa: F811 (the fixtures imported below are test arguments)
"""Microsoft 365 mailboxes whose tenant turned SMTP AUTH off: replies go out through Graph.

The mailbox is signed in (tokens the fake sign-in server knows); SMTP is the local
XOAUTH2 server answering Microsoft's ``535 5.7.139 ... SmtpClientAuthentication is
disabled``; Graph's ``sendMail`` is played through ``responses`` and records the MIME.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from email import policy
from email.parser import BytesParser

import pytest
import requests
import responses

from app.clock import now
from app.models import Inbox, InboxMember, Message
from app.sealed import seal, unseal
from connectors.base import ErrorKind
from connectors.email import graph
from tests.channels.harness import Api, run_worker
from tests.channels.oauth_fake import xoauth_smtp as xoauth_smtp  # noqa: F401  (fixture)
from tests.channels.test_email_flow import mail, post
from tests.channels.test_email_oauth import (  # noqa: F401  (fixtures)
    OURS,
    admin,
    browser,
    fake,
    oauth_inbox,
    stored_config,
)

GRAPH = "https://graph.fake.test/v1.0"


@pytest.fixture
def graph_api(fake):
    """Graph's sendMail behind the sign-in fake's ``responses``: records each MIME sent."""
    sent: list[dict] = []

    def send_mail(request):
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in fake.graph_issued and token != "graph-0":
            body = '{"error": {"code": "InvalidAuthenticationToken", "message": "Bad token."}}'
            return 401, {}, body
        mime = BytesParser(policy=policy.default).parsebytes(base64.b64decode(request.body))
        sent.append({"url": request.url, "token": token, "mime": mime})
        return 202, {}, ""

    fake.mock.add_callback(responses.POST, f"{GRAPH}/me/sendMail", callback=send_mail)
    return sent


def graph_inbox(make, app, fake, port, expires_in=3600, **extra):
    """A Microsoft mailbox signed in with a Graph send token beside the mail servers' one."""
    return oauth_inbox(
        make,
        app,
        fake,
        smtp_port=port,
        expires_in=expires_in,
        graph_url=GRAPH,
        oauth_graph_token=seal(app.config, "graph-0"),
        oauth_graph_expires_at=(now() + timedelta(seconds=expires_in)).isoformat(),
        **extra,
    )


def agent_on(make, session, inbox):
    agent = make.user("agent")
    session.add(InboxMember(inbox_id=inbox.id, user_id=agent.id))
    session.commit()
    return agent


def test_the_check_says_replies_go_out_through_graph_and_they_do_with_threading_headers(
    app, make, fake, client, admin, xoauth_smtp, graph_api, session
):
    sink, port = xoauth_smtp
    sink.smtp_auth_off = True
    inbox = graph_inbox(make, app, fake, port)
    checked = Api(client, make.headers(admin)).post(f"/inboxes/{inbox.id}/check").get_json()
    assert "checks" in checked, checked
    (sending,) = [c for c in checked["checks"] if c["name"] == "smtp_login"]
    assert sending["ok"] and "Microsoft Graph" in sending["message"]
    assert "5.7.139" in sending["message"]  # the provider's own words, so the admin knows why
    assert stored_config(session, inbox.id)["send_via"] == "graph"

    agent = agent_on(make, session, inbox)
    assert post(client, inbox, mail(mid="first@mail.example.com")).status_code == 200
    api = Api(client, make.headers(agent))
    conv = api.only_conversation()
    api.reply(conv["id"], "It left our warehouse today.")
    assert run_worker() == 1
    assert sink.received == [] and len(sink.refused) == 1  # only the check tried SMTP
    (sent,) = graph_api
    assert sent["url"] == f"{GRAPH}/me/sendMail" and sent["token"] == "graph-0"
    mime = sent["mime"]
    assert mime["In-Reply-To"] == "<first@mail.example.com>"
    assert "<first@mail.example.com>" in mime["References"]
    assert mime["From"].addresses[0].addr_spec == OURS
    (out,) = api.messages(conv["id"], direction="outbound")
    assert out["status"] == "sent"
    # stored under the Message-ID it went out with, so the customer's answer threads
    assert session.get(Message, out["id"]).provider_id == mime["Message-ID"].strip("<>")


def test_a_tenant_that_turns_smtp_auth_off_later_still_gets_its_reply_sent(
    app, make, fake, client, xoauth_smtp, graph_api, session
):
    sink, port = xoauth_smtp
    inbox = graph_inbox(make, app, fake, port)  # no check since: SMTP is the path it knows
    sink.smtp_auth_off = True
    agent = agent_on(make, session, inbox)
    post(client, inbox, mail(mid="later@mail.example.com"))
    api = Api(client, make.headers(agent))
    conv = api.only_conversation()
    api.reply(conv["id"], "On its way.")
    assert run_worker() == 1
    assert len(sink.refused) == 1 and len(graph_api) == 1, str(api.messages(conv["id"])[-1])
    assert graph_api[0]["mime"]["In-Reply-To"] == "<later@mail.example.com>"
    assert api.messages(conv["id"], direction="outbound")[0]["status"] == "sent"


def test_both_tokens_are_refreshed_before_they_expire_and_the_rotated_grant_kept(
    app, make, fake, client, xoauth_smtp, graph_api, session
):
    sink, port = xoauth_smtp
    inbox = graph_inbox(make, app, fake, port, expires_in=-10, send_via="graph")
    agent = agent_on(make, session, inbox)
    post(client, inbox, mail(mid="expired@mail.example.com"))
    api = Api(client, make.headers(agent))
    conv = api.only_conversation()
    api.reply(conv["id"], "Sorted.")
    assert run_worker() == 1
    mail_refresh, graph_refresh = fake.refreshes()
    assert "Mail.Send" not in mail_refresh["scope"] and "Mail.Send" in graph_refresh["scope"]
    # Microsoft rotates: the Graph refresh used the grant the mail refresh had just given
    assert graph_refresh["refresh_token"] != mail_refresh["refresh_token"]
    (sent,) = graph_api
    assert sent["token"] == fake.graph_issued[-1]
    config = stored_config(session, inbox.id)
    assert unseal(app.config, config["oauth_graph_token"]) == fake.graph_issued[-1]
    grant = fake.grants[-1].refresh_token
    assert unseal(app.config, config["oauth_refresh_token"]) == grant


def test_a_refused_graph_send_keeps_the_reply_with_graphs_words(
    app, make, fake, client, xoauth_smtp, session
):
    sink, port = xoauth_smtp
    inbox = graph_inbox(make, app, fake, port, send_via="graph", address="desk@shop.example")
    fake.mock.add(
        responses.POST,
        f"{GRAPH}/users/desk@shop.example/sendMail",
        status=403,
        json={
            "error": {
                "code": "ErrorSendAsDenied",
                "message": "The user account which was "
                "used to submit this request does not have the right to send mail on "
                "behalf of the specified sending account.",
            }
        },
    )
    agent = agent_on(make, session, inbox)
    post(client, inbox, mail(mid="shared@mail.example.com", to="desk@shop.example"))
    api = Api(client, make.headers(agent))
    conv = api.only_conversation()
    api.reply(conv["id"], "Hello from the desk.")
    run_worker()
    (out,) = api.messages(conv["id"], direction="outbound")
    assert out["status"] != "sent"
    row = session.get(Inbox, inbox.id)
    session.refresh(row)
    said = f"{out.get('error_message')} {row.last_error}"
    assert "ErrorSendAsDenied" in said and "send as this mailbox" in said


# --------------------------------------------------------------------------- the wire


def sendable(**headers):
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = OURS, "ana@example.com", "Re: parcel"
    msg["Message-ID"] = "<sb.1@shop.example>"
    for key, value in headers.items():
        msg[key] = value
    msg.set_content("Hello")
    return msg


@responses.activate
def test_graph_errors_are_classified_in_graphs_words_and_a_large_message_is_refused_first():
    config = {"graph_url": GRAPH, "oauth_graph_token": "t", "address": OURS, "oauth_account": OURS}
    url = f"{GRAPH}/me/sendMail"
    http = requests.Session()
    responses.add(
        responses.POST,
        url,
        status=429,
        headers={"Retry-After": "7"},
        json={"error": {"code": "ApplicationThrottled", "message": "Too many requests."}},
    )
    error = graph.send_message(http, config, sendable()).error
    assert error.kind is ErrorKind.TRANSIENT and error.retry_after == 7.0
    assert "ApplicationThrottled: Too many requests." in error.message
    responses.replace(
        responses.POST,
        url,
        status=400,
        json={"error": {"code": "ErrorMimeContentInvalid", "message": "Invalid MIME content."}},
    )
    error = graph.send_message(http, config, sendable()).error
    assert error.kind is ErrorKind.PERMANENT and "ErrorMimeContentInvalid" in error.message
    responses.replace(
        responses.POST,
        url,
        status=401,
        json={
            "error": {
                "code": "InvalidAuthenticationToken",
                "message": "Lifetime validation failed.",
            }
        },
    )
    assert graph.send_message(http, config, sendable()).error.kind is ErrorKind.AUTH_FAILED
    calls = len(responses.calls)
    big = sendable()
    big.add_attachment(b"x" * (graph.MAX_MIME_BYTES + 1), "application", "pdf", filename="a.pdf")
    error = graph.send_message(http, config, big).error
    assert error.kind is ErrorKind.PERMANENT and "at most 3 MB" in error.message
    assert len(responses.calls) == calls  # refused before any call
    assert (
        graph.send_message(http, {**config, "oauth_graph_token": None}, sendable()).error.kind
        is ErrorKind.AUTH_FAILED
    )
    shared = {**config, "address": "desk@shop.example"}
    assert graph.sendmail_url(shared) == f"{GRAPH}/users/desk@shop.example/sendMail"


def test_only_microsofts_refusal_of_smtp_auth_sends_through_graph():
    assert graph.smtp_auth_disabled(
        "(535, b'5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled "
        "for the Tenant.')"
    )
    assert not graph.smtp_auth_disabled("(535, b'5.7.3 Authentication unsuccessful')")

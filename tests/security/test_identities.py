"""Finding C: ``josé@`` precomposed (NFC) and decomposed (NFD) made two contacts.

The same mailbox, written by different clients (or by an attacker splitting one
customer's history, or slipping past a block on the known contact), must be one
contact identity: addresses are compared NFC and lowercase on the way in, when
searched through the API, and on the way out.
"""

from __future__ import annotations

from email import policy
from email.parser import Parser

import pytest
from aiosmtpd.controller import Controller

from app.runtime import worker
from tests.connectors.imap_server import free_port
from tests.security.mail import OURS, conversations, messages, post, raw_mail

NFC = "jos\u00e9@example.com"
NFD = "jose\u0301@example.com"


class Sink:
    """aiosmtpd handler that keeps what it accepts."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        # the raw RCPT bytes, as UTF-8 (aiosmtpd keeps them surrogate-escaped)
        rcpt = [r.encode("utf-8", "surrogateescape").decode("utf-8") for r in envelope.rcpt_tos]
        self.received.append((rcpt, envelope.content))
        return "250 Message accepted"


@pytest.fixture
def smtp_sink():
    sink, port = Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    yield sink, port
    controller.stop()


@pytest.fixture
def agent(make):
    return make.user("agent", name="Ana Agent")


@pytest.fixture
def auth(make, agent):
    return make.headers(agent)


@pytest.fixture
def inbox(make, agent, smtp_sink):
    return make.inbox("email", members=[agent], address=OURS, smtp_port=smtp_sink[1])


def test_one_mailbox_is_one_contact_however_it_is_spelled(client, inbox, auth):
    for frm, subject in [
        (f"José <{NFC}>", "Order late"),
        (f"José <{NFD}>", "Invoice missing"),
        ("José <JOSÉ@Example.COM>", "Refund"),
        (f"<{NFD.upper()}>", "Re: Order late"),  # no thread headers: joins by contact + subject
    ]:
        assert post(client, inbox.inbound_token, raw_mail(frm, subject)).status_code == 200
    convs = conversations(client, auth)
    assert sorted(c["subject"] for c in convs) == ["Invoice missing", "Order late", "Refund"]
    assert len({c["contact"]["id"] for c in convs}) == 1
    (ident,) = convs[0]["contact"]["identities"]
    assert ident["external_id"] == NFC
    order = next(c for c in convs if c["subject"] == "Order late")
    assert len(messages(client, auth, order["id"])) == 2


def test_search_finds_the_contact_in_either_form(client, inbox, auth):
    post(client, inbox.inbound_token, raw_mail(f"<{NFD}>", "Order late"))
    assert len(conversations(client, auth, q=NFC)) == 1
    assert len(conversations(client, auth, q="jose\u0301@")) == 1


def test_replies_go_to_the_normalised_address(client, inbox, auth, smtp_sink):
    sink, _ = smtp_sink
    post(client, inbox.inbound_token, raw_mail(f"José <{NFD}>", "Order late"))
    (conv,) = conversations(client, auth)
    resp = client.post(
        f"/api/v1/conversations/{conv['id']}/messages", headers=auth, json={"body": "On its way."}
    )
    assert resp.status_code == 202, resp.get_json()
    assert worker.run_once() == 1
    (rcpt_tos, content), *_ = sink.received
    assert rcpt_tos == [NFC]
    sent = Parser(policy=policy.default).parsestr(content.decode("utf-8"))  # sent as SMTPUTF8
    assert sent["To"].addresses[0].addr_spec == NFC
    out = [m for m in messages(client, auth, conv["id"]) if m["direction"] == "outbound"]
    assert [m["status"] for m in out] == ["sent"]

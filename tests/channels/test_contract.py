"""The channel contract, run against every registered channel and a test-only toy channel.

What every channel promises (docs: contract.md, "Webhooks"): an authentic message
is stored once and shows in the inbox as one conversation with its contact; a
replay stores nothing new; a forged request is refused and stores nothing; a
message for a route no inbox has, or a body the channel cannot read, is answered
so that the provider stops retrying, and stores nothing; an agent's reply goes
through the outbox and the worker to the provider, and its status follows.

Each channel's provider is played by its driver (``drivers.py``; the toy's in
``toy.py``); where answers legitimately differ, the driver declares them.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app import channels
from app.extensions import db
from app.models import Contact, Conversation, Message, WebhookIntake
from tests.channels import toy
from tests.channels.drivers import DRIVERS
from tests.channels.harness import Api, Driver, run_worker

ALL_DRIVERS = {**DRIVERS, toy.ToyDriver.channel: toy.ToyDriver}


@pytest.fixture
def app(_toy_channel, app):
    """The app, created while the toy channel is registered."""
    app.config[toy.API_URL_SETTING] = toy.API_URL
    return app


@pytest.fixture
def _toy_channel():
    with toy.registered():
        yield


@pytest.fixture(params=sorted(ALL_DRIVERS))
def driver(request, app, make, provider) -> Driver:
    """The channel's provider, with one inbox connected."""
    cls = ALL_DRIVERS[request.param]
    driver = cls(app, make, provider, **{n: request.getfixturevalue(n) for n in cls.needs})
    driver.agent = make.user("agent", name="Ana Agent")
    driver.inbox_id = driver.connect(members=[driver.agent])
    return driver


@pytest.fixture
def api(client, make, driver) -> Api:
    """The API as the inbox's agent."""
    return Api(client, make.headers(driver.agent))


def stored(session) -> dict[str, int]:
    """How many messages, contacts, conversations and webhook bodies (all, and those still
    waiting to be threaded) there are."""
    session.expire_all()

    def count(model, *where) -> int:
        return session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))

    return {
        "messages": count(Message),
        "contacts": count(Contact),
        "conversations": count(Conversation),
        "bodies": count(WebhookIntake),
        "waiting": count(WebhookIntake, WebhookIntake.state != "failed"),
    }


NOTHING = {"messages": 0, "contacts": 0, "conversations": 0, "bodies": 0, "waiting": 0}


def test_every_registered_channel_has_a_driver(app):
    assert {c.name for c in channels.all_channels()} == set(ALL_DRIVERS)


def test_an_inbound_message_is_one_conversation_with_its_contact(client, driver, api):
    driver.accepted.check(driver.message("Where is my order?", "ext-1").send(client))
    with db.engine.connect() as conn:  # committed before the 2xx: seen from another connection
        assert conn.scalar(sa.select(sa.func.count()).select_from(Message)) == 1

    conv = api.only_conversation()
    assert conv["inbox"]["id"] == driver.inbox_id
    assert conv["inbox"]["channel"] == driver.channel
    identities = [(i["channel"], i["external_id"]) for i in conv["contact"]["identities"]]
    assert identities == [(driver.channel, driver.contact_id)]
    if driver.contact_name is not None:
        assert conv["contact"]["name"] == driver.contact_name
    assert conv["last_message"]["body"] == "Where is my order?"
    assert conv["unread_count"] == 1
    assert conv["reply_window"]["state"] == driver.reply_window
    [msg] = api.messages(conv["id"])
    assert (msg["direction"], msg["body"], msg["status"]) == (
        "inbound",
        "Where is my order?",
        "received",
    )


def test_a_replayed_webhook_stores_one_message(client, driver, api, session):
    webhook = driver.message("Only once please", "ext-replayed")
    driver.accepted.check(webhook.send(client))
    for _ in range(2):  # the provider resends
        driver.replayed.check(webhook.send(client))
    conv = api.only_conversation()
    assert [m["body"] for m in api.messages(conv["id"])] == ["Only once please"]
    assert conv["unread_count"] == 1
    assert stored(session)["messages"] == 1


def test_a_forged_webhook_is_refused_and_stores_nothing(client, driver, api, session):
    forgeries = driver.forgeries("Send me a refund")
    assert forgeries
    for name, webhook in forgeries.items():
        resp = webhook.send(client)
        assert resp.status_code == driver.forged.status, name
        assert b"refund" not in resp.data
    assert stored(session) == NOTHING
    assert api.conversations() == []


def test_a_message_for_an_unknown_route_is_answered_and_stores_nothing(
    client, driver, api, session
):
    driver.unknown_route.check(driver.for_unknown_route("Is anyone there?").send(client))
    assert stored(session) == NOTHING
    assert api.conversations() == []


def test_an_unreadable_body_is_answered_once_and_stores_nothing(client, driver, api, session):
    driver.malformed.check(driver.unreadable().send(client))
    # kept at most as failed, for an admin to look at (``flask intake retry``)
    assert {**stored(session), "bodies": 0} == NOTHING
    # nothing is held back: the next message is stored as usual
    driver.accepted.check(driver.message("Still there?", "ext-after").send(client))
    assert [c["last_message"]["body"] for c in api.conversations()] == ["Still there?"]


def test_an_agent_reply_goes_through_the_worker_to_the_provider(client, driver, api):
    driver.accepted.check(driver.message("Where is my order?", "ext-1").send(client))
    conv = api.only_conversation()

    queued = api.reply(conv["id"], "It left our warehouse today.")
    assert queued["status"] == "queued"
    assert driver.sent_texts() == []  # nothing leaves before the worker runs

    run_worker()

    assert driver.sent_texts() == ["It left our warehouse today."]
    assert api.message(conv["id"], queued["id"])["status"] == "sent"
    assert run_worker() == 0  # sent once
    assert driver.sent_texts() == ["It left our warehouse today."]


def test_a_delivery_receipt_advances_the_reply(client, driver, api):
    driver.accepted.check(driver.message("Where is my order?", "ext-1").send(client))
    conv = api.only_conversation()
    queued = api.reply(conv["id"], "On its way")
    run_worker()
    receipt = driver.delivery_receipt()
    if receipt is None:
        pytest.skip(f"{driver.channel} reports no deliveries")
    driver.receipt_answer.check(receipt.send(client))
    assert api.message(conv["id"], queued["id"])["status"] == "delivered"
    assert len(api.messages(conv["id"], "inbound")) == 1  # a receipt is not a message

"""Twilio receipts and raw email go through the intake like every other webhook body.

A status callback is stored with its callback URL's ``ref`` (our message id) and
applied when it is threaded, still finding a reply whose SID is not recorded yet;
an email is stored raw and threaded by the mail ingest, answered with the same
JSON as before (or 202 ``queued`` when this process could not thread it at once);
bodies left by a stopped process are threaded by the sweep job.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from app.models import Message
from app.runtime import intake
from app.runtime.jobs.registry import run_job

CUSTOMER = "+14155550123"
STATUS_URL = "http://localhost/webhooks/sms/twilio/status"


@pytest.fixture
def busy():
    """This process is already ingesting (its drainer holds the turn) while the block runs."""
    intake._drain_lock.acquire()
    try:
        yield
    finally:
        if intake._drain_lock.locked():
            intake._drain_lock.release()


@pytest.fixture
def number(make):
    return make.inbox("sms", number="+14155550777", auth_token="twilio-token")


@pytest.fixture
def reply(make, session, number):
    """An agent's reply the worker has not recorded Twilio's SID for yet."""
    first = make.inbound(number, contact=CUSTOMER, text="Hi")
    msg = Message(
        conversation_id=first.conversation_id,
        inbox_id=number.id,
        direction="outbound",
        body="Fast lane",
        status="sent",
    )
    session.add(msg)
    session.commit()
    return msg


def receipt(client, number, sid: str, state: str, ref: int | str | None = None):
    form = {"MessageSid": sid, "MessageStatus": state, "From": number.route_key, "To": CUSTOMER}
    url = STATUS_URL + (f"?ref={ref}" if ref is not None else "")
    sig = RequestValidator("twilio-token").compute_signature(url, form)
    return client.post(url.split("localhost", 1)[1], data=form, headers={"X-Twilio-Signature": sig})


def status_of(session, msg: Message) -> str:
    session.expire_all()
    return session.get(Message, msg.id).status


def test_receipt_found_by_ref_is_stored_with_it_and_applied_when_threaded(
    client, session, number, reply, busy
):
    resp = receipt(client, number, "SM" + "e" * 32, "delivered", ref=reply.id)
    assert resp.status_code == 204
    [row] = intake.rows()
    assert row.channel == "sms.status" and row.inbox_ids == [number.id]
    assert status_of(session, reply) == "sent"  # durable, not yet applied
    intake._drain_lock.release()
    assert intake.drain_all().updated == 1
    assert status_of(session, reply) == "delivered" and intake.rows() == []


def test_idle_receipt_is_applied_before_the_answer(client, session, number, reply):
    assert receipt(client, number, "SM" + "f" * 32, "delivered", ref=reply.id).status_code == 204
    assert status_of(session, reply) == "delivered" and intake.rows() == []


def test_receipt_for_a_sid_we_gave_up_on_is_not_applied_by_ref(client, session, number, reply):
    old = "SM" + "1" * 32
    reply.meta = {"previous_provider_ids": [old]}
    session.commit()
    assert receipt(client, number, old, "delivered", ref=reply.id).status_code == 204
    assert status_of(session, reply) == "sent" and intake.rows() == []


def test_forged_receipt_stores_nothing(client, session, number, reply):
    form = {"MessageSid": "SMx", "MessageStatus": "delivered", "From": number.route_key}
    resp = client.post(f"/webhooks/sms/twilio/status?ref={reply.id}", data=form)
    assert resp.status_code == 403
    assert intake.rows() == [] and status_of(session, reply) == "sent"


def test_receipt_not_about_our_messages_is_acknowledged_and_dropped(client, session, number):
    resp = receipt(client, number, "SM" + "2" * 32, "received")
    assert resp.status_code == 204 and intake.rows() == []


# --------------------------------------------------------------------------- email


@pytest.fixture
def mailbox(make):
    return make.inbox("email", address="support@shop.example")


def mail(mid: str, x_loop: str | None = None) -> bytes:
    lines = [
        "From: Anna <anna@example.com>",
        "To: support@shop.example",
        "Subject: Order late",
        f"Message-ID: <{mid}>",
        *([f"X-Loop: {x_loop}"] if x_loop else []),
        "",
        "Where is my order?",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def post_mail(client, mailbox, raw: bytes):
    return client.post(
        f"/webhooks/email/inbound/{mailbox.inbound_token}", data=raw, content_type="message/rfc822"
    )


def inbound_texts(session) -> list[str]:
    session.expire_all()
    return list(
        session.scalars(
            sa.select(Message.body).where(Message.direction == "inbound").order_by(Message.id)
        )
    )


def test_email_goes_through_the_intake_with_the_same_answers(client, session, mailbox):
    raw = mail("a1@mail.example.com")
    first = post_mail(client, mailbox, raw)
    assert first.status_code == 200
    assert first.get_json() == {"status": "ok", "stored": 1, "duplicates": 0, "updated": 0}
    again = post_mail(client, mailbox, raw)
    assert again.get_json() == {"status": "ok", "stored": 0, "duplicates": 1, "updated": 0}
    loop = post_mail(client, mailbox, mail("a2@mail.example.com", x_loop="support@shop.example"))
    assert loop.status_code == 200
    assert loop.get_json() == {"status": "dropped", "reason": "loop"}
    assert inbound_texts(session) == ["Where is my order?"] and intake.rows() == []


def test_busy_process_queues_email_durably_and_answers_202(client, session, mailbox, busy):
    raw = mail("b1@mail.example.com")
    resp = post_mail(client, mailbox, raw)
    assert resp.status_code == 202 and resp.get_json() == {"status": "queued"}
    [row] = intake.rows()
    assert row.channel == "email" and row.body == raw and row.inbox_ids == [mailbox.id]
    assert inbound_texts(session) == []
    intake._drain_lock.release()
    assert len(intake.drain_all().created) == 1
    assert inbound_texts(session) == ["Where is my order?"] and intake.rows() == []


# --------------------------------------------------------------------------- the sweep


def test_receipt_and_email_left_by_a_stopped_process_are_threaded_by_the_sweep(
    app, session, number, reply, mailbox
):
    from urllib.parse import urlencode

    from app.channels.base import pack

    form = urlencode({"MessageSid": "SM" + "3" * 32, "MessageStatus": "delivered"}).encode()
    intake.store("sms.status", pack({"ref": str(reply.id)}, form), [number.id])
    intake.store("email", mail("c1@mail.example.com"), [mailbox.id])
    assert run_job(app, "intake_sweep")
    assert status_of(session, reply) == "delivered"
    assert inbound_texts(session)[-1] == "Where is my order?" and intake.rows() == []

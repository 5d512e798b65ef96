"""Files agents send: the upload, each channel's limits, ownership, the provider's URL, cleanup."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from app import storage, urls
from app.clock import now
from app.extensions import db
from app.models import Attachment, Message, OutboxItem
from tests.files import pdf, png

MB = 1024 * 1024


def upload(client, headers, content: bytes, name: str, ctype: str = "", **form):
    """``POST /api/v1/uploads`` as a browser sends it (the body built in memory: the test
    client would spool a large one to a temporary file it never closes)."""
    sent = FileStorage(io.BytesIO(content), name, content_type=ctype or "application/octet-stream")
    fields = {"file": sent, **form}
    boundary, body = encode_multipart(fields)
    return client.post(
        "/api/v1/uploads",
        data=body,
        headers=headers,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def reply(client, headers, conv_id: int, ids: list[int], body: str = "", **extra):
    return client.post(
        f"/api/v1/conversations/{conv_id}/messages",
        json={"body": body, "attachment_ids": ids, **extra},
        headers=headers,
    )


@pytest.fixture
def agent(make):
    return make.user("agent", name="Lucas Martin")


def conversation(make, channel: str, agent, contact: str):
    inbox = make.inbox(channel, members=[agent])
    return make.inbound(inbox, contact=contact, text="Can you send me the invoice?").conversation_id


def outbox_rows() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(OutboxItem))


def test_an_upload_is_stored_for_its_uploader_alone_until_it_is_sent(client, make, agent):
    conv_id = conversation(make, "email", agent, "anna@example.com")
    other = make.user("agent", name="Nadia Karimi")
    make.inbox("email", members=[other])
    resp = upload(client, make.headers(agent), pdf(), "invoice 1042.pdf", "application/pdf")
    assert resp.status_code == 201, resp.get_json()
    got = resp.get_json()
    assert {k: got[k] for k in ("filename", "content_type", "size")} == {
        "filename": "invoice 1042.pdf",
        "content_type": "application/pdf",
        "size": len(pdf()),
    }
    att = db.session.get(Attachment, got["id"])
    assert att.message_id is None and att.uploaded_by_id == agent.id
    assert storage.path_for(att.storage_key).read_bytes() == pdf()

    # the uploader may look at it; a teammate may neither see it nor send it
    mine = client.get(got["url"], headers=make.headers(agent))
    assert mine.status_code == 200 and mine.get_data() == pdf()
    mine.close()
    assert client.get(got["url"], headers=make.headers(other)).status_code == 404
    theirs = reply(client, make.headers(other), conv_id, [got["id"]], "here")
    assert theirs.status_code in (404, 422)

    # sent once: it belongs to the message, and cannot go out a second time
    sent = reply(client, make.headers(agent), conv_id, [got["id"]], "Here it is.")
    assert sent.status_code == 202, sent.get_json()
    (shown,) = sent.get_json()["attachments"]
    assert shown["filename"] == "invoice 1042.pdf" and shown["inline"] is True
    again = reply(client, make.headers(agent), conv_id, [got["id"]], "Once more.")
    assert again.status_code == 422
    assert "already sent" in again.get_json()["error"]["message"]
    listed = client.get(
        f"/api/v1/conversations/{conv_id}/messages", headers=make.headers(agent)
    ).get_json()["items"]
    assert [len(m["attachments"]) for m in listed if m["direction"] == "outbound"] == [1]


def test_the_type_is_what_the_bytes_are_not_what_the_browser_claims(client, make, agent):
    make.inbox("email", members=[agent])
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    got = upload(client, make.headers(agent), svg, "cat.png", "image/png").get_json()
    assert got["content_type"] == "application/octet-stream" and got["inline"] is False
    got = upload(client, make.headers(agent), png(), "scan", "").get_json()
    assert got["content_type"] == "image/png" and got["kind"] == "image"


def test_an_upload_no_inbox_could_send_is_refused_with_the_reason(client, make, agent):
    make.inbox("gbm", members=[agent])  # the only inbox this agent answers: images only
    resp = upload(client, make.headers(agent), pdf(), "invoice.pdf", "application/pdf")
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert error["code"] == "attachment_refused" and error["reason"] == "type_refused"
    assert "JPEG or PNG images" in error["message"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Attachment)) == 0

    # for one conversation: that conversation's channel decides
    sms = conversation(make, "sms", agent, "+14155550111")
    big = pdf(pad_to=6 * MB)
    resp = upload(client, make.headers(agent), big, "big.pdf", conversation_id=str(sms))
    assert resp.status_code == 422
    assert resp.get_json()["error"]["reason"] == "file_too_large"
    assert "SMS takes files up to 5 MB" in resp.get_json()["error"]["message"]
    assert (
        upload(
            client, make.headers(agent), pdf(), "small.pdf", conversation_id=str(sms)
        ).status_code
        == 201
    )


def test_past_the_request_size_limit_the_answer_is_413(client, make, agent, app):
    make.inbox("email", members=[agent])
    app.config["MAX_CONTENT_LENGTH"] = 100 * 1024
    resp = upload(client, make.headers(agent), pdf(pad_to=200 * 1024), "huge.pdf")
    assert resp.status_code == 413
    assert resp.get_json()["error"]["code"] == "request_entity_too_large"


@pytest.mark.parametrize(
    ("channel", "contact", "files", "reason", "words"),
    [
        ("gbm", "gbm-conv-1", [("invoice.pdf", pdf())], "type_refused", "JPEG or PNG images"),
        (
            "sms",
            "+14155550111",
            [("a.pdf", pdf(pad_to=3 * MB)), ("b.pdf", pdf(pad_to=3 * MB))],
            "total_too_large",
            "at most 5 MB in one message",
        ),
        ("sms", "+14155550111", [("notes.zip", b"PK\x03\x04" + b"0" * 64)], "type_refused", "PDF"),
        ("messenger", "psid-1", [("film.mp4", b"\x00" * (26 * MB))], "file_too_large", "25 MB"),
    ],
)
def test_a_reply_whose_files_the_channel_refuses_is_refused_before_anything_is_queued(
    client, make, agent, app, channel, contact, files, reason, words
):
    app.config["MAX_CONTENT_LENGTH"] = 40 * MB
    # where such files may go (a mail server taking 40 MB): the uploads are accepted
    make.inbox("email", members=[agent], attachments_max_mb=40)
    conv_id = conversation(make, channel, agent, contact)
    ids = [upload(client, make.headers(agent), data, name).get_json()["id"] for name, data in files]
    before = outbox_rows()
    resp = reply(client, make.headers(agent), conv_id, ids, "See attached")
    assert resp.status_code == 409, resp.get_json()
    error = resp.get_json()["error"]
    assert error["code"] == "attachment_refused" and error["reason"] == reason
    assert words in error["message"]
    assert outbox_rows() == before
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(Message).where(Message.direction == "outbound")
        )
        == 0
    )
    # the uploads are still the agent's, for another reply
    db.session.expire_all()
    assert all(db.session.get(Attachment, i).message_id is None for i in ids)


def test_a_note_may_carry_a_file_the_channel_could_not_send(client, make, agent):
    make.inbox("email", members=[agent])
    conv_id = conversation(make, "gbm", agent, "gbm-conv-2")
    att = upload(client, make.headers(agent), pdf(), "refund-policy.pdf").get_json()
    resp = reply(client, make.headers(agent), conv_id, [att["id"]], "For the team", private=True)
    assert resp.status_code == 201
    assert resp.get_json()["attachments"][0]["filename"] == "refund-policy.pdf"


def test_the_channels_say_what_they_take(client, make, agent):
    inbox = make.inbox("email", members=[agent], attachments_max_mb=10)
    kinds = {
        c["channel"]: c
        for c in client.get("/api/v1/channels", headers=make.headers(agent)).get_json()
    }
    assert kinds["messenger"]["capabilities"]["attachments"]["max_file_bytes"] == 25 * MB
    assert kinds["sms"]["capabilities"]["attachments"]["max_total_bytes"] == 5 * MB
    assert "image/jpeg" in kinds["sms"]["capabilities"]["attachments"]["types"]
    assert kinds["gbm"]["capabilities"]["attachments"]["types"] == ["image/jpeg", "image/png"]
    assert kinds["email"]["capabilities"]["attachments"]["max_total_bytes"] == 20 * MB
    # an email inbox's own limit, in the inbox object the composer reads
    shown = client.get(f"/api/v1/inboxes/{inbox.id}", headers=make.headers(agent)).get_json()
    assert shown["attachments"]["max_total_bytes"] == 10 * MB
    conv_id = make.inbound(inbox, contact="anna@example.com", text="hi").conversation_id
    big = upload(client, make.headers(agent), pdf(pad_to=11 * MB), "big.pdf")
    assert big.status_code == 422 and "up to 10 MB" in big.get_json()["error"]["message"]
    ids = [
        upload(client, make.headers(agent), pdf(pad_to=6 * MB), f"part{n}.pdf").get_json()["id"]
        for n in (1, 2)
    ]
    resp = reply(client, make.headers(agent), conv_id, ids, "here")
    assert resp.status_code == 409
    assert "add up to 12 MB: Email takes at most 10 MB" in resp.get_json()["error"]["message"]


def test_the_email_limit_is_a_setting_of_the_inbox(client, make):
    admin = make.user("admin")
    resp = client.post(
        "/api/v1/inboxes",
        json={
            "channel": "email",
            "name": "Support",
            "config": {
                "address": "help@shop.example",
                "smtp_host": "127.0.0.1",
                "smtp_port": 2525,
                "smtp_security": "none",
                "attachments_max_mb": 500,
            },
        },
        headers=make.headers(admin),
    )
    assert resp.status_code == 422
    assert "attachments_max_mb" in str(resp.get_json()["error"])


def test_an_upload_can_be_taken_back_by_its_uploader(client, make, agent):
    make.inbox("email", members=[agent])
    other = make.user("agent")
    got = upload(client, make.headers(agent), png(), "photo.png").get_json()
    key = db.session.get(Attachment, got["id"]).storage_key
    assert (
        client.delete(f"/api/v1/uploads/{got['id']}", headers=make.headers(other)).status_code
        == 404
    )
    assert (
        client.delete(f"/api/v1/uploads/{got['id']}", headers=make.headers(agent)).status_code
        == 204
    )
    db.session.expire_all()
    assert db.session.get(Attachment, got["id"]) is None
    assert not storage.path_for(key).exists()


def test_uploads_never_sent_are_dropped_after_a_day(client, make, agent, app):
    from app.runtime.jobs import registry

    conv_id = conversation(make, "email", agent, "anna@example.com")
    kept = upload(client, make.headers(agent), png(), "sent.png").get_json()
    assert reply(client, make.headers(agent), conv_id, [kept["id"]], "photo").status_code == 202
    left = upload(client, make.headers(agent), png(), "forgotten.png").get_json()
    fresh_key = None
    with time_machine.travel(now() + timedelta(hours=23), tick=False):
        fresh = upload(client, make.headers(agent), png(), "fresh.png").get_json()
        fresh_key = db.session.get(Attachment, fresh["id"]).storage_key
    left_key = db.session.get(Attachment, left["id"]).storage_key
    with time_machine.travel(now() + timedelta(hours=25), tick=False):
        assert registry.run_job(app, "drop_unsent_uploads") is True
    db.session.expire_all()
    assert db.session.get(Attachment, left["id"]) is None
    assert not storage.path_for(left_key).exists()
    assert db.session.get(Attachment, kept["id"]) is not None  # sent: part of the thread
    assert db.session.get(Attachment, fresh["id"]) is not None  # not a day old yet
    assert storage.path_for(fresh_key).exists()


def test_providers_fetch_a_reply_file_at_a_signed_url_that_expires(client, make, agent, app):
    conv_id = conversation(make, "messenger", agent, "psid-7")
    att = upload(client, make.headers(agent), png(), "receipt.png").get_json()
    assert reply(client, make.headers(agent), conv_id, [att["id"]], "").status_code == 202
    row = db.session.get(Attachment, att["id"])
    url = urls.public_file_url(
        app.config, "http://localhost", row.id, row.storage_key, "receipt.png"
    )
    assert url.endswith("/receipt.png")
    got = client.get(url)  # no login
    assert got.status_code == 200 and got.get_data() == png() and got.mimetype == "image/png"
    got.close()
    token = url.split("/files/", 1)[1].split("/", 1)[0]
    # tampered: a character inside the signature (the last one carries unused bits, and
    # the old "xx" ending could equal the real one)
    flipped = "A" if token[-5] != "A" else "B"
    tampered = f"{token[:-5]}{flipped}{token[-4:]}"
    assert client.get(f"/files/{tampered}/receipt.png").status_code == 404
    assert client.get(f"/files/{row.id}/{row.storage_key.rsplit('/', 1)[-1]}").status_code == 404
    with time_machine.travel(now() + timedelta(hours=25)):
        assert client.get(url).status_code == 404  # expired

    # a note's file is never public, whatever the URL
    note = upload(client, make.headers(agent), png(), "internal.png").get_json()
    reply(client, make.headers(agent), conv_id, [note["id"]], "for us", private=True)
    row = db.session.get(Attachment, note["id"])
    assert (
        client.get(urls.public_file_url(app.config, "", row.id, row.storage_key, "x")).status_code
        == 404
    )

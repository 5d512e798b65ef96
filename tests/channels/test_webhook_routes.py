"""Webhook routes are kept between requests, and an inbox change applies to the next one.

A single webhook looks its inbox up by route key; the answer is kept a few seconds
(the look-up was most of a webhook's cost), but a change this process makes to an
inbox (a new secret, a disconnection, a new inbox) is seen by the very next request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import sqlalchemy as sa

from app.models import Inbox, Message
from app.runtime import intake

PAGE = "104800000000901"


def body(mid: str) -> bytes:
    item = {
        "sender": {"id": "7000001"},
        "recipient": {"id": PAGE},
        "timestamp": int(time.time() * 1000),
        "message": {"mid": mid, "text": "Hello"},
    }
    return json.dumps({"object": "page", "entry": [{"id": PAGE, "messaging": [item]}]}).encode()


def post(client, raw: bytes, secret: str):
    sig = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return client.post(
        "/webhooks/messenger",
        data=raw,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sig},
    )


def stored(session) -> set[str]:
    intake.drain_all()
    session.expire_all()
    return set(session.scalars(sa.select(Message.provider_id)))


def test_a_new_secret_applies_to_the_next_webhook(client, session, make):
    inbox = make.inbox("messenger", page_id=PAGE, app_secret="old-secret")
    assert post(client, body("m.1"), "old-secret").status_code == 200
    inbox.config = {**inbox.config, "app_secret": "new-secret"}
    session.commit()
    assert post(client, body("m.2"), "old-secret").status_code == 403
    assert post(client, body("m.3"), "new-secret").status_code == 200
    assert stored(session) == {"m.1", "m.3"}


def test_a_disconnection_made_with_a_plain_update_applies_at_once(client, session, make):
    inbox = make.inbox("messenger", page_id=PAGE, app_secret="s3cret")
    assert post(client, body("m.1"), "s3cret").status_code == 200
    session.execute(sa.update(Inbox).where(Inbox.id == inbox.id).values(active=False))
    session.commit()
    assert post(client, body("m.2"), "s3cret").status_code == 200  # acknowledged, ignored
    assert stored(session) == {"m.1"}


def test_an_inbox_added_after_an_unknown_key_is_routed(client, session, make):
    assert post(client, body("m.0"), "s3cret").status_code in (200, 403, 404)
    make.inbox("messenger", page_id=PAGE, app_secret="s3cret")
    assert post(client, body("m.1"), "s3cret").status_code == 200
    assert stored(session) == {"m.1"}

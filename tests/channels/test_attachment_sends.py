"""An agent's file goes out through every channel the way its provider takes it.

Messenger, Twilio and Google fetch the file at a URL we give them (signed, expiring,
fetched without a login); email carries it as a MIME part. Each channel's driver
plays the provider (``drivers.py``); what the provider received is read here.
"""

from __future__ import annotations

import io
from email import policy
from email.parser import BytesParser
from urllib.parse import parse_qsl, urlsplit

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from tests.channels.drivers import DRIVERS
from tests.channels.harness import Api, Driver, run_worker
from tests.files import png


def _messenger(driver) -> list[str]:
    bodies = [c.json() for c in driver.provider.calls if c.path.endswith("/me/messages")]
    return [
        b["message"]["attachment"]["payload"]["url"]
        for b in bodies
        if "attachment" in (b.get("message") or {})
    ]


def _twilio(driver) -> list[str]:
    calls = driver.provider.to(driver.messages_url, "POST")
    return [v for c in calls for k, v in parse_qsl(c.body.decode()) if k == "MediaUrl"]


def _google(driver) -> list[str]:
    bodies = [c.json() for c in driver.provider.to(driver.messages_url)]
    return [b["image"]["contentInfo"]["fileUrl"] for b in bodies if "image" in b]


def _mail(driver) -> list[tuple[str, str, bytes]]:
    parts = driver.sink.last().iter_attachments()
    return [(p.get_filename(), p.get_content_type(), p.get_content()) for p in parts]


def _whatsapp(driver) -> list[tuple[str, str, bytes]]:
    """The files uploaded to ``/{phone-number-id}/media``, each then sent by its media id."""
    uploads = [c for c in driver.provider.calls if c.path.endswith("/media")]
    sent = [b for b in driver.graph.sends() if b.get("type") == "image"]
    assert [b["image"]["id"] for b in sent] == [f"upload-{i}" for i in driver.graph.uploaded]
    out = []
    for call in uploads:
        head = f"Content-Type: {call.headers['Content-Type']}\r\n\r\n".encode()
        form = BytesParser(policy=policy.default).parsebytes(head + call.body)
        for part in form.iter_parts():
            if part.get_filename():
                out.append((part.get_filename(), part.get_content_type(), part.get_content()))
    return out


# what reached each provider: URLs it fetches, or (for mail) the parts themselves
BY_URL = {"messenger": _messenger, "instagram": _messenger, "sms": _twilio, "gbm": _google}
BY_PART = {"email": _mail, "whatsapp": _whatsapp}


@pytest.fixture(params=sorted(DRIVERS))
def driver(request, app, make, provider) -> Driver:
    cls = DRIVERS[request.param]
    driver = cls(app, make, provider, **{n: request.getfixturevalue(n) for n in cls.needs})
    driver.agent = make.user("agent", name="Ana Agent")
    driver.inbox_id = driver.connect(members=[driver.agent])
    return driver


def test_an_image_reaches_the_provider_as_its_channel_carries_it(client, make, driver):
    api = Api(client, make.headers(driver.agent))
    driver.accepted.check(driver.message("Can you show me the colour?", "ext-1").send(client))
    conv = api.only_conversation()
    image = png(32, 20, (214, 87, 54))
    boundary, body = encode_multipart(
        {"file": FileStorage(io.BytesIO(image), "colour sample.png", content_type="image/png")}
    )
    resp = client.post(
        "/api/v1/uploads",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
        headers=api.headers,
    )
    assert resp.status_code == 201, resp.get_json()
    sent = api.reply(conv["id"], "Here is the colour.", attachment_ids=[resp.get_json()["id"]])
    assert sent["attachments"][0]["filename"] == "colour sample.png"
    run_worker()
    assert api.message(conv["id"], sent["id"])["status"] == "sent"

    if driver.channel in BY_PART:
        assert BY_PART[driver.channel](driver) == [("colour sample.png", "image/png", image)]
        return
    (url,) = BY_URL[driver.channel](driver)
    assert url.startswith("http://localhost/files/") and url.endswith("/colour%20sample.png")
    fetched = client.get(urlsplit(url).path)  # as the provider does: no login
    assert fetched.status_code == 200
    assert fetched.mimetype == "image/png" and fetched.get_data() == image
    fetched.close()

"""SMS end to end through the HTTP boundary.

Twilio's webhooks are signed with ``twilio``'s own ``RequestValidator`` for the
exact URL the app is called at; Twilio's REST API (Messages, media) is faked
with ``responses`` on ``http://twilio.fake`` (the test ``TWILIO_API_URL``), and
every request it receives is checked, so a refused send provably never reached
it. The clock is moved with ``time_machine`` (``app.clock.now`` reads it).
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import pytest
import responses
import time_machine
from twilio.request_validator import RequestValidator

from tests.channels.harness import Api, run_worker

ACCOUNT = "AC" + "1" * 32  # the factory's account SID
WEBHOOK = "http://localhost/webhooks/sms/twilio"
STATUS_URL = WEBHOOK + "/status"
MESSAGES_URL = f"http://twilio.fake/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
LA = "+14155550123"  # America/Los_Angeles
PARIS = "+33612345678"  # Europe/Paris
# 2026-07-15, summer time: Los Angeles is UTC-7, Paris UTC+2
SUMMER_EVENING_LA = datetime(2026, 7, 16, 3, 0, tzinfo=UTC)  # 20:00 in Los Angeles

_sids = itertools.count(1)


def sid(prefix: str = "SM") -> str:
    """A fresh 34-character Twilio SID."""
    return f"{prefix}{next(_sids):032x}"


@dataclass(frozen=True)
class SmsInbox:
    """What a test needs of an SMS inbox, kept as plain values.

    The worker ends its database session after each run, so ORM objects the
    test created would be detached by then.
    """

    id: int
    number: str
    token: str


def snap(inbox) -> SmsInbox:
    return SmsInbox(inbox.id, inbox.config["number"], inbox.config["auth_token"])


def token_of(inbox: SmsInbox) -> str:
    return inbox.token


def signed_post(
    client,
    url: str,
    form: dict,
    token: str,
    *,
    sign_url: str | None = None,
    signature: str | None = None,
):
    """POST ``form`` to ``url`` signed like Twilio does for ``sign_url`` (default: ``url``)."""
    if signature is None:
        signature = RequestValidator(token).compute_signature(sign_url or url, form)
    path = url.split("://", 1)[1].split("/", 1)[1]
    return client.post("/" + path, data=form, headers={"X-Twilio-Signature": signature})


def inbound(
    client,
    inbox,
    body: str = "Hello",
    *,
    frm: str = LA,
    to: str | None = None,
    message_sid: str | None = None,
    service: str | None = None,
    media=(),
    **extra,
):
    """A signed inbound-SMS webhook for ``inbox``; returns the response."""
    form = {
        "MessageSid": message_sid or sid("MM" if media else "SM"),
        "AccountSid": ACCOUNT,
        "From": frm,
        "To": to or inbox.number,
        "Body": body,
        "NumMedia": str(len(media)),
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
        **extra,
    }
    if service:
        form["MessagingServiceSid"] = service
    for index, (url, ctype) in enumerate(media):
        form[f"MediaUrl{index}"] = url
        form[f"MediaContentType{index}"] = ctype
    form["SmsMessageSid"] = form["SmsSid"] = form["MessageSid"]
    return signed_post(client, WEBHOOK, form, token_of(inbox))


def status(client, inbox, message_sid: str, state: str, *, to: str = LA, error: str | None = None):
    """A signed status callback for one of our messages."""
    form = {
        "MessageSid": message_sid,
        "SmsSid": message_sid,
        "MessageStatus": state,
        "SmsStatus": state,
        "AccountSid": ACCOUNT,
        "From": inbox.number,
        "To": to,
        "ApiVersion": "2010-04-01",
    }
    if error:
        form["ErrorCode"] = error
    return signed_post(client, STATUS_URL, form, token_of(inbox))


class FakeTwilio:
    """The Messages API and media URLs on ``http://twilio.fake``; records what it receives."""

    def __init__(self, rsps: responses.RequestsMock) -> None:
        self.rsps = rsps
        self.answers: list[tuple[int, dict]] = []  # queued answers; default: accept
        self.sids: list[str] = []
        self.before_answer = None  # called with (form fields, new SID) before accepting
        rsps.add_callback(responses.POST, MESSAGES_URL, callback=self._create)

    def _create(self, request):
        if self.answers:
            code, body = self.answers.pop(0)
            return code, {"Content-Type": "application/json"}, _json(body)
        new = sid()
        self.sids.append(new)
        if self.before_answer is not None:
            self.before_answer(dict(parse_qsl(request.body)), new)
        body = {"sid": new, "status": "queued", "num_segments": "1", "error_code": None}
        return 201, {"Content-Type": "application/json"}, _json(body)

    def refuse(self, code: int, message: str = "refused", http: int = 400) -> None:
        """The next Messages API call answers with a Twilio REST error."""
        self.answers.append((http, {"code": code, "message": message, "status": http}))

    @property
    def sends(self) -> list[dict]:
        """Form fields of every Messages API request, in order."""
        return [
            dict(parse_qsl(c.request.body))
            for c in self.rsps.calls
            if c.request.url == MESSAGES_URL and c.request.method == "POST"
        ]


def _json(body: dict) -> str:
    import json

    return json.dumps(body)


@pytest.fixture
def twilio():
    """Fake Twilio REST API; fails the test on any unexpected request."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeTwilio(rsps)


@pytest.fixture
def agent(make):
    return make.user("agent", name="Ana Agent")


@pytest.fixture
def sms_inbox(make, agent):
    return snap(make.inbox("sms", members=[agent]))


@pytest.fixture
def auth(make, agent):
    return make.headers(agent)


def conversations(client, auth) -> list[dict]:
    return Api(client, auth).conversations()


def only_conversation(client, auth) -> dict:
    return Api(client, auth).only_conversation()


def messages(client, auth, conv_id: int) -> list[dict]:
    return Api(client, auth).messages(conv_id)


def reply(client, auth, conv_id: int, body: str, **extra):
    return Api(client, auth).post(f"/conversations/{conv_id}/messages", {"body": body, **extra})


def outbound_sent(client, auth, conv_id: int) -> list[dict]:
    return [m for m in messages(client, auth, conv_id) if m["direction"] == "outbound"]


# --------------------------------------------------------------------------- authentication


def test_forged_status_callback_changes_nothing(client, sms_inbox, auth, twilio):
    inbound(client, sms_inbox, "Hi")
    conv = only_conversation(client, auth)
    assert reply(client, auth, conv["id"], "Hello!").status_code == 202
    run_worker()
    form = {
        "MessageSid": twilio.sids[0],
        "MessageStatus": "failed",
        "ErrorCode": "30006",
        "AccountSid": ACCOUNT,
        "From": sms_inbox.number,
        "To": LA,
    }
    resp = signed_post(client, STATUS_URL, form, "forged-token")
    assert resp.status_code == 403
    assert outbound_sent(client, auth, conv["id"])[0]["status"] == "sent"
    assert only_conversation(client, auth)["undeliverable"] is None


def test_request_signed_for_public_url_behind_a_proxy(app, client, sms_inbox, auth, twilio):
    """TLS ends at a proxy: the app sees http://localhost, Twilio signed the public https URL."""
    app.config["PUBLIC_URL"] = "https://support.example.com"
    public_hook = "https://support.example.com/webhooks/sms/twilio"
    form = {
        "MessageSid": sid(),
        "AccountSid": ACCOUNT,
        "From": LA,
        "To": sms_inbox.number,
        "Body": "Behind the proxy",
        "NumMedia": "0",
    }
    # signed for the URL the app sees: refused once PUBLIC_URL says otherwise
    assert signed_post(client, WEBHOOK, form, token_of(sms_inbox)).status_code == 403
    resp = signed_post(client, WEBHOOK, form, token_of(sms_inbox), sign_url=public_hook)
    assert resp.status_code == 200
    # Twilio's validator also accepts the URL signed with the explicit :443 port
    form2 = {**form, "MessageSid": sid(), "Body": "With a port"}
    resp = signed_post(
        client,
        WEBHOOK,
        form2,
        token_of(sms_inbox),
        sign_url="https://support.example.com:443/webhooks/sms/twilio",
    )
    assert resp.status_code == 200
    conv = only_conversation(client, auth)
    assert [m["body"] for m in messages(client, auth, conv["id"])] == [
        "Behind the proxy",
        "With a port",
    ]
    # and the status callback Twilio is given is the public one
    reply(client, auth, conv["id"], "Got it")
    run_worker()
    (sent,) = outbound_sent(client, auth, conv["id"])
    assert twilio.sends[0]["StatusCallback"] == (
        f"https://support.example.com/webhooks/sms/twilio/status?ref={sent['id']}"
    )


# --------------------------------------------------------------------------- routing, dedupe


def test_messaging_service_pool_routing_with_fallback_to_to(client, make, agent, auth):
    service = "MG" + "a" * 32
    pooled = snap(
        make.inbox("sms", members=[agent], number="+14155550101", messaging_service_sid=service)
    )
    plain = snap(make.inbox("sms", members=[agent], number="+14155550102"))
    # a message to another number of the pool carries the service SID: routed to the pool inbox
    form = {
        "MessageSid": sid(),
        "AccountSid": ACCOUNT,
        "From": LA,
        "To": "+14155550777",
        "MessagingServiceSid": service,
        "Body": "to the pool",
        "NumMedia": "0",
    }
    assert signed_post(client, WEBHOOK, form, token_of(pooled)).status_code == 200
    # a service SID no inbox knows: falls back to the To number
    form = {
        "MessageSid": sid(),
        "AccountSid": ACCOUNT,
        "From": LA,
        "To": "+14155550102",
        "MessagingServiceSid": "MG" + "b" * 32,
        "Body": "unknown service",
        "NumMedia": "0",
    }
    assert signed_post(client, WEBHOOK, form, token_of(plain)).status_code == 200
    # neither known: nothing stored, Twilio is told
    form = {
        "MessageSid": sid(),
        "AccountSid": ACCOUNT,
        "From": LA,
        "To": "+14155550999",
        "MessagingServiceSid": "MG" + "c" * 32,
        "Body": "lost",
        "NumMedia": "0",
    }
    assert signed_post(client, WEBHOOK, form, token_of(plain)).status_code == 404
    by_inbox = {c["inbox"]["id"]: c["last_message"]["body"] for c in conversations(client, auth)}
    assert by_inbox == {pooled.id: "to the pool", plain.id: "unknown service"}


def test_numbers_in_different_formats_are_one_contact(client, sms_inbox, auth):
    inbound(client, sms_inbox, "one", frm="+14155550100")
    inbound(client, sms_inbox, "two", frm="+1 (415) 555-0100")
    inbound(client, sms_inbox, "three", frm="14155550100")
    inbound(client, sms_inbox, "four", frm="(415) 555-0100", FromCountry="US")
    conv = only_conversation(client, auth)
    assert [i["external_id"] for i in conv["contact"]["identities"]] == ["+14155550100"]
    assert len(messages(client, auth, conv["id"])) == 4


# --------------------------------------------------------------------------- MMS


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00jpeg-bytes"  # the bytes decide the stored type
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isommp4-bytes"


def test_mms_media_downloaded_with_account_auth_and_stored(client, sms_inbox, auth, twilio):
    base = f"http://twilio.fake/2010-04-01/Accounts/{ACCOUNT}/Messages/MM1/Media"
    twilio.rsps.get(f"{base}/ME1", body=JPEG, content_type="image/jpeg")
    # Twilio's media URL redirects to storage: the credentials must not follow
    twilio.rsps.get(
        f"{base}/ME2", status=307, headers={"Location": "http://media.fake/signed/clip.mp4"}
    )
    twilio.rsps.get("http://media.fake/signed/clip.mp4", body=MP4, content_type="video/mp4")
    resp = inbound(
        client,
        sms_inbox,
        "Photos of the damage",
        media=[(f"{base}/ME1", "image/jpeg"), (f"{base}/ME2", "video/mp4")],
    )
    assert resp.status_code == 200
    conv = only_conversation(client, auth)
    (msg,) = messages(client, auth, conv["id"])
    assert [a["state"] for a in msg["attachments"]] == ["pending", "pending"]

    run_worker()

    expected = "Basic " + base64.b64encode(f"{ACCOUNT}:{token_of(sms_inbox)}".encode()).decode()
    gets = {c.request.url: c.request.headers.get("Authorization") for c in twilio.rsps.calls}
    assert gets[f"{base}/ME1"] == expected
    assert gets[f"{base}/ME2"] == expected
    assert gets["http://media.fake/signed/clip.mp4"] is None
    assert twilio.sends == []
    (msg,) = messages(client, auth, conv["id"])
    atts = msg["attachments"]
    assert [(a["kind"], a["content_type"], a["state"]) for a in atts] == [
        ("image", "image/jpeg", "stored"),
        ("video", "video/mp4", "stored"),
    ]
    for att, content in zip(atts, [JPEG, MP4], strict=True):
        resp = client.get(att["url"], headers=auth)
        assert resp.data == content
        resp.close()


# --------------------------------------------------------------------------- consent


def test_stop_refuses_replies_until_start(client, sms_inbox, auth, twilio):
    inbound(client, sms_inbox, "When do you open?")
    conv_id = only_conversation(client, auth)["id"]
    inbound(client, sms_inbox, "Stop")

    conv = only_conversation(client, auth)
    assert conv["opted_out"] is True
    assert conv["contact"]["identities"][0]["opted_out"] is True
    assert conv["response_due"]["due_at"] is None  # no answer is possible, none is due
    resp = reply(client, auth, conv_id, "We open at 9")
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "opted_out"
    run_worker()
    assert twilio.sends == []

    inbound(client, sms_inbox, "HELP")  # an ordinary message: consent unchanged
    assert only_conversation(client, auth)["opted_out"] is True
    inbound(client, sms_inbox, "start")
    assert only_conversation(client, auth)["opted_out"] is False
    resp = reply(client, auth, conv_id, "We open at 9")
    assert resp.status_code == 202
    run_worker()
    assert [(s["To"], s["Body"]) for s in twilio.sends] == [(LA, "We open at 9")]

    thread = messages(client, auth, conv_id)
    assert [(m["direction"], m["body"]) for m in thread if m["direction"] == "inbound"] == [
        ("inbound", "When do you open?"),
        ("inbound", "Stop"),
        ("inbound", "HELP"),
        ("inbound", "start"),
    ]
    activity = [(m["meta"].get("event"), m["body"]) for m in thread if m["direction"] == "activity"]
    assert activity == [
        ("opted_out", "The customer opted out of messages (STOP). Replies are blocked."),
        ("opted_in", "The customer opted back in (START)."),
        # the reply that went out took the unassigned conversation; the refused one did not
        ("assigned", "Ana Agent took this conversation"),
    ]


def test_twilio_21610_on_send_marks_the_number_opted_out(client, sms_inbox, auth, twilio):
    """Opted out at Twilio (e.g. through another number of the service) without us seeing STOP."""
    inbound(client, sms_inbox, "Hi")
    conv_id = only_conversation(client, auth)["id"]
    twilio.refuse(21610, "Attempt to send to unsubscribed recipient")
    assert reply(client, auth, conv_id, "Hello!").status_code == 202
    run_worker()
    (sent,) = outbound_sent(client, auth, conv_id)
    assert sent["status"] == "failed"
    assert sent["error"]["code"] == "opted_out"
    assert "opted out" in sent["error"]["message"]
    assert only_conversation(client, auth)["opted_out"] is True
    resp = reply(client, auth, conv_id, "Are you there?")
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "opted_out"
    run_worker()
    assert len(twilio.sends) == 1


# --------------------------------------------------------------------------- status callbacks


def _sent_reply(client, sms_inbox, auth, twilio, body: str = "On its way") -> tuple[int, str]:
    if not conversations(client, auth):
        inbound(client, sms_inbox, "Where is my parcel?")
    conv_id = only_conversation(client, auth)["id"]
    assert reply(client, auth, conv_id, body).status_code == 202
    run_worker()
    return conv_id, twilio.sids[-1]


def test_reply_goes_out_through_the_messages_api(client, sms_inbox, auth, twilio):
    conv_id, message_sid = _sent_reply(client, sms_inbox, auth, twilio)
    (sent,) = outbound_sent(client, auth, conv_id)
    assert twilio.sends == [
        {
            "To": LA,
            "Body": "On its way",
            "From": sms_inbox.number,
            "StatusCallback": f"{STATUS_URL}?ref={sent['id']}",
        }
    ]
    call = next(c for c in twilio.rsps.calls if c.request.url == MESSAGES_URL)
    expected = base64.b64encode(f"{ACCOUNT}:{token_of(sms_inbox)}".encode()).decode()
    assert call.request.headers["Authorization"] == f"Basic {expected}"
    (sent,) = outbound_sent(client, auth, conv_id)
    assert sent["status"] == "sent"
    assert status(client, sms_inbox, message_sid, "delivered").status_code == 204
    assert outbound_sent(client, auth, conv_id)[0]["status"] == "delivered"


def test_messaging_service_inbox_sends_with_the_service_sid(client, make, agent, auth, twilio):
    service = "MG" + "d" * 32
    inbox = snap(make.inbox("sms", members=[agent], messaging_service_sid=service))
    inbound(client, inbox, "Hi", service=service)
    conv_id = only_conversation(client, auth)["id"]
    reply(client, auth, conv_id, "Hello")
    run_worker()
    (fields,) = twilio.sends
    assert fields["MessagingServiceSid"] == service
    assert "From" not in fields


def test_out_of_order_status_callbacks_never_downgrade(client, sms_inbox, auth, twilio):
    conv_id, message_sid = _sent_reply(client, sms_inbox, auth, twilio)
    seen = []
    for state in ["delivered", "sent", "queued", "sending", "failed", "undelivered"]:
        error = "30003" if state in ("failed", "undelivered") else None
        resp = status(client, sms_inbox, message_sid, state, error=error)
        assert resp.status_code == 204
        (msg,) = outbound_sent(client, auth, conv_id)
        seen.append((msg["status"], msg["error"]))
    assert seen == [("delivered", None)] * 6
    assert only_conversation(client, auth)["undeliverable"] is None
    # a status for a message we do not know is acknowledged, not an error Twilio retries
    assert status(client, sms_inbox, sid(), "delivered").status_code in (204, 404)


def test_receipt_that_overtakes_the_send_response_is_kept(client, sms_inbox, auth, twilio):
    """Twilio's receipt can arrive before the worker has stored the SID it answered with."""
    inbound(client, sms_inbox, "Hi")
    conv_id = only_conversation(client, auth)["id"]
    assert reply(client, auth, conv_id, "Fast lane").status_code == 202
    early = []

    def report_delivered(fields: dict, new_sid: str) -> None:
        form = {
            "MessageSid": new_sid,
            "MessageStatus": "delivered",
            "AccountSid": ACCOUNT,
            "From": fields["From"],
            "To": fields["To"],
        }
        early.append(signed_post(client, fields["StatusCallback"], form, sms_inbox.token))

    twilio.before_answer = report_delivered
    run_worker()
    assert [r.status_code for r in early] == [204]
    (msg,) = outbound_sent(client, auth, conv_id)
    assert msg["status"] == "delivered"
    # the SID is recorded after all: later receipts by SID still apply and never downgrade
    assert status(client, sms_inbox, twilio.sids[-1], "sent").status_code == 204
    assert outbound_sent(client, auth, conv_id)[0]["status"] == "delivered"


def test_failed_then_delivered_recovers(client, sms_inbox, auth, twilio):
    """Carriers sometimes report a failure and then the delivery receipt."""
    conv_id, message_sid = _sent_reply(client, sms_inbox, auth, twilio)
    status(client, sms_inbox, message_sid, "undelivered", error="30003")
    assert outbound_sent(client, auth, conv_id)[0]["status"] == "failed"
    status(client, sms_inbox, message_sid, "delivered")
    (msg,) = outbound_sent(client, auth, conv_id)
    assert (msg["status"], msg["error"]) == ("delivered", None)


ERROR_CASES = {
    "30003": ("switched off or out of coverage", False),
    "30005": ("unknown or no longer in service", True),
    "30006": ("landline", True),
    "30007": ("filtered this message as spam", False),
    "21211": ("not a valid phone number", True),
}


@pytest.mark.parametrize("code", list(ERROR_CASES))
def test_error_codes_are_shown_on_the_message(client, sms_inbox, auth, twilio, code):
    text, undeliverable = ERROR_CASES[code]
    conv_id, message_sid = _sent_reply(client, sms_inbox, auth, twilio)
    status(client, sms_inbox, message_sid, "undelivered", error=code)
    (msg,) = outbound_sent(client, auth, conv_id)
    assert msg["status"] == "failed"
    assert msg["error"]["code"] == code
    assert text in msg["error"]["message"]
    conv = only_conversation(client, auth)
    assert bool(conv["undeliverable"]) is undeliverable
    resp = reply(client, auth, conv_id, "Trying again")
    if undeliverable:
        assert resp.status_code == 409
        assert resp.get_json()["error"]["code"] == "undeliverable"
        assert text in resp.get_json()["error"]["message"]
    else:
        assert resp.status_code == 202
    run_worker()
    assert len(twilio.sends) == (1 if undeliverable else 2)


def test_21610_status_callback_marks_opted_out(client, sms_inbox, auth, twilio):
    conv_id, message_sid = _sent_reply(client, sms_inbox, auth, twilio)
    status(client, sms_inbox, message_sid, "failed", error="21610")
    (msg,) = outbound_sent(client, auth, conv_id)
    assert (msg["status"], msg["error"]["code"]) == ("failed", "21610")
    assert only_conversation(client, auth)["opted_out"] is True
    resp = reply(client, auth, conv_id, "Hello?")
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "opted_out"
    run_worker()
    assert len(twilio.sends) == 1


def test_ignored_failure_after_delivery_marks_nothing(client, sms_inbox, auth, twilio):
    conv_id, message_sid = _sent_reply(client, sms_inbox, auth, twilio)
    status(client, sms_inbox, message_sid, "delivered")
    status(client, sms_inbox, message_sid, "undelivered", error="30006")
    assert outbound_sent(client, auth, conv_id)[0]["status"] == "delivered"
    assert only_conversation(client, auth)["undeliverable"] is None
    assert reply(client, auth, conv_id, "Still reachable").status_code == 202


@pytest.mark.parametrize("code", ["21611", "30001", "63017"])
def test_queue_full_and_rate_limit_failures_are_retried(client, sms_inbox, auth, twilio, code):
    conv_id, message_sid = _sent_reply(client, sms_inbox, auth, twilio)
    status(client, sms_inbox, message_sid, "failed", error=code)
    (msg,) = outbound_sent(client, auth, conv_id)
    assert msg["status"] == "queued"
    assert msg["error"]["code"] == code
    assert "will retry" in msg["error"]["message"]
    run_worker()
    assert len(twilio.sends) == 1  # not before the back-off
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=10), tick=False):
        run_worker()
    assert len(twilio.sends) == 2
    (msg,) = outbound_sent(client, auth, conv_id)
    assert (msg["status"], msg["error"]) == ("sent", None)
    # the new attempt's receipts land on the same message; the old SID's are ignored
    status(client, sms_inbox, twilio.sids[-1], "delivered")
    status(client, sms_inbox, message_sid, "failed", error=code)
    assert outbound_sent(client, auth, conv_id)[0]["status"] == "delivered"


@pytest.mark.parametrize("code", [21611, 63017])
def test_rest_queue_errors_are_retried_by_the_worker(client, sms_inbox, auth, twilio, code):
    inbound(client, sms_inbox, "Hi")
    conv_id = only_conversation(client, auth)["id"]
    twilio.refuse(code, "Queue full", http=429 if code == 63017 else 400)
    reply(client, auth, conv_id, "Hello")
    run_worker()
    assert len(twilio.sends) == 1
    assert outbound_sent(client, auth, conv_id)[0]["status"] == "queued"
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=10), tick=False):
        run_worker()
    assert len(twilio.sends) == 2
    assert outbound_sent(client, auth, conv_id)[0]["status"] == "sent"


# --------------------------------------------------------------------------- quiet hours


def _at_la(hour: int, minute: int = 0) -> datetime:
    """A moment on the evening of 2026-07-15 / morning of the 16th, Los Angeles time."""
    from zoneinfo import ZoneInfo

    day = 15 if hour >= 12 else 16
    return datetime(2026, 7, day, hour, minute, tzinfo=ZoneInfo("America/Los_Angeles"))


def test_quiet_hours_refuse_and_offer_the_morning(client, sms_inbox, auth, twilio):
    with time_machine.travel(_at_la(21, 30), tick=False):
        inbound(client, sms_inbox, "Can you call me tomorrow?")
    conv_id = only_conversation(client, auth)["id"]
    with time_machine.travel(_at_la(23, 0), tick=False):
        conv = only_conversation(client, auth)
        assert conv["quiet_hours"] == {
            "active": True,
            "ends_at": "2026-07-16T15:00:00.000Z",  # 08:00 in Los Angeles
            "timezone": "America/Los_Angeles",
            "grace_until": None,
        }
        resp = reply(client, auth, conv_id, "Sure, at 9")
        assert resp.status_code == 409
        error = resp.get_json()["error"]
        assert error["code"] == "quiet_hours"
        assert error["send_after"] == "2026-07-16T15:00:00Z"
        assert error["timezone"] == "America/Los_Angeles"
        assert "08:00" in error["message"]
        run_worker()
    assert twilio.sends == []


def test_reply_within_an_hour_of_the_customers_message_is_allowed(client, sms_inbox, auth, twilio):
    with time_machine.travel(_at_la(22, 10), tick=False):
        inbound(client, sms_inbox, "Still open?")
    conv_id = only_conversation(client, auth)["id"]
    with time_machine.travel(_at_la(23, 0), tick=False):
        quiet = only_conversation(client, auth)["quiet_hours"]
        assert quiet["active"] is True
        assert quiet["grace_until"] == "2026-07-16T06:10:00.000Z"
        assert reply(client, auth, conv_id, "Yes, until midnight").status_code == 202
        run_worker()
    with time_machine.travel(_at_la(23, 10), tick=False):  # exactly 60 minutes: still fine
        assert reply(client, auth, conv_id, "See you").status_code == 202
    with time_machine.travel(_at_la(23, 11), tick=False):
        assert reply(client, auth, conv_id, "One more thing").status_code == 409
        run_worker()
    assert [s["Body"] for s in twilio.sends] == ["Yes, until midnight", "See you"]


@pytest.mark.parametrize(
    ("hour", "minute", "allowed"),
    [(20, 59, True), (21, 0, False), (7, 59, False), (8, 0, True), (12, 0, True)],
)
def test_quiet_hours_boundaries(client, sms_inbox, auth, twilio, hour, minute, allowed):
    with time_machine.travel(_at_la(12, 0) - timedelta(days=1), tick=False):
        inbound(client, sms_inbox, "Hello")
    conv_id = only_conversation(client, auth)["id"]
    with time_machine.travel(_at_la(hour, minute), tick=False):
        resp = reply(client, auth, conv_id, "Reply")
        assert resp.status_code == (202 if allowed else 409), resp.get_json()
        assert only_conversation(client, auth)["quiet_hours"]["active"] is not allowed
        run_worker()
    assert len(twilio.sends) == (1 if allowed else 0)


def test_quiet_hours_follow_the_customers_time_zone(client, make, agent, auth, twilio):
    inbox = snap(make.inbox("sms", members=[agent], settings={"timezone": "Asia/Tokyo"}))
    australia = "+61412345678"  # several Australian zones: the inbox's zone decides
    with time_machine.travel(_at_la(12, 0), tick=False):
        for number in (LA, PARIS, australia):
            inbound(client, inbox, f"Hi from {number}", frm=number)
    by_number = {
        c["contact"]["identities"][0]["external_id"]: c for c in conversations(client, auth)
    }
    with time_machine.travel(_at_la(23, 30), tick=False):  # 08:30 in Paris, 15:30 in Tokyo
        results = {}
        for number, conv in by_number.items():
            resp = reply(client, auth, conv["id"], "Good morning")
            results[number] = resp.status_code
        run_worker()
        zones = {
            n: c["quiet_hours"]["timezone"]
            for n, c in (
                (c["contact"]["identities"][0]["external_id"], c)
                for c in conversations(client, auth)
            )
        }
    assert results == {LA: 409, PARIS: 202, australia: 202}
    assert zones == {LA: "America/Los_Angeles", PARIS: "Europe/Paris", australia: "Asia/Tokyo"}
    assert sorted(s["To"] for s in twilio.sends) == sorted([PARIS, australia])


def test_quiet_hours_follow_the_inbox_setting(client, sms_inbox, auth, make, twilio):
    lead = make.user("lead")
    resp = client.patch(
        f"/api/v1/inboxes/{sms_inbox.id}",
        headers=make.headers(lead),
        json={"quiet_hours": {"start": "23:30", "end": "07:00"}},
    )
    assert resp.status_code == 200
    with time_machine.travel(_at_la(12, 0), tick=False):
        inbound(client, sms_inbox, "Hi")
    conv_id = only_conversation(client, auth)["id"]
    with time_machine.travel(_at_la(23, 0), tick=False):
        assert reply(client, auth, conv_id, "Late but fine").status_code == 202
    with time_machine.travel(_at_la(23, 45), tick=False):
        assert reply(client, auth, conv_id, "Too late").status_code == 409


def test_quiet_hours_are_null_for_other_channels(client, make, agent, auth):
    inbox = make.inbox("messenger", members=[agent])
    make.inbound(inbox, contact="psid-1", text="Hi")
    assert only_conversation(client, auth)["quiet_hours"] is None


def test_conversation_list_query_count_does_not_grow_with_sms_rows(
    client, make, agent, auth, count_queries
):
    inbox = make.inbox("sms", members=[agent])
    make.inbound(inbox, contact="+14155550131", text="one")
    conversations(client, auth)  # a token's use is written down at most hourly
    with count_queries() as one:
        assert len(conversations(client, auth)) == 1
    for n in range(2, 7):
        make.inbound(inbox, contact=f"+1415555013{n}", text="more")
    with count_queries() as many:
        items = conversations(client, auth)
    assert len(items) == 6
    assert all(c["quiet_hours"] is not None for c in items)
    assert many.count == one.count


# --------------------------------------------------------------------------- scheduled replies


def test_scheduled_reply_goes_out_when_quiet_hours_end(client, sms_inbox, auth, twilio):
    with time_machine.travel(_at_la(20, 0), tick=False):
        inbound(client, sms_inbox, "Please confirm my booking")
    conv_id = only_conversation(client, auth)["id"]
    with time_machine.travel(_at_la(23, 0), tick=False):
        refused = reply(client, auth, conv_id, "Confirmed!").get_json()["error"]
        resp = reply(client, auth, conv_id, "Confirmed!", send_after=refused["send_after"])
        assert resp.status_code == 202
        scheduled = resp.get_json()
        assert scheduled["status"] == "queued"
        assert scheduled["send_after"] == "2026-07-16T15:00:00.000Z"
        run_worker()
    with time_machine.travel(_at_la(7, 59), tick=False):
        run_worker()
    assert twilio.sends == []
    with time_machine.travel(_at_la(8, 0), tick=False):
        run_worker()
    assert [s["Body"] for s in twilio.sends] == ["Confirmed!"]
    (msg,) = outbound_sent(client, auth, conv_id)
    assert msg["status"] == "sent"
    conv = only_conversation(client, auth)
    assert conv["last_outbound_at"] == "2026-07-16T15:00:00.000Z"


def test_scheduling_into_quiet_hours_is_refused(client, sms_inbox, auth, twilio):
    with time_machine.travel(_at_la(12, 0), tick=False):
        inbound(client, sms_inbox, "Hi")
        conv_id = only_conversation(client, auth)["id"]
        resp = reply(
            client, auth, conv_id, "At 2 a.m.?", send_after=_at_la(2, 0).astimezone(UTC).isoformat()
        )
        assert resp.status_code == 409
        assert resp.get_json()["error"]["code"] == "quiet_hours"
        assert resp.get_json()["error"]["send_after"] == "2026-07-16T15:00:00Z"
    assert outbound_sent(client, auth, conv_id) == []


def test_scheduled_reply_cancelled_when_customer_writes_and_agent_answers(
    client, sms_inbox, auth, twilio
):
    with time_machine.travel(_at_la(20, 0), tick=False):
        inbound(client, sms_inbox, "Is the shop open tomorrow?")
    conv_id = only_conversation(client, auth)["id"]
    morning = _at_la(8, 0).astimezone(UTC).isoformat()
    with time_machine.travel(_at_la(23, 0), tick=False):
        assert reply(client, auth, conv_id, "Yes, from 9", send_after=morning).status_code == 202
        # another scheduled reply with no customer message in between is kept
        assert reply(client, auth, conv_id, "See you!", send_after=morning).status_code == 202
    with time_machine.travel(_at_la(6, 30), tick=False):
        inbound(client, sms_inbox, "Never mind, I found your hours online")
    with time_machine.travel(_at_la(6, 40), tick=False):  # within the hour: allowed now
        assert reply(client, auth, conv_id, "Great, see you later!").status_code == 202
        run_worker()
    with time_machine.travel(_at_la(8, 5), tick=False):
        run_worker()
    assert [s["Body"] for s in twilio.sends] == ["Great, see you later!"]
    thread = {m["body"]: m for m in outbound_sent(client, auth, conv_id)}
    for body in ("Yes, from 9", "See you!"):
        assert thread[body]["status"] == "failed"
        assert thread[body]["error"]["code"] == "cancelled"
    assert thread["Great, see you later!"]["status"] == "sent"
    activity = [m["body"] for m in messages(client, auth, conv_id) if m["direction"] == "activity"]
    assert any("cancelled" in line for line in activity)


def test_scheduled_reply_kept_when_agent_adds_without_customer_writing(
    client, sms_inbox, auth, twilio
):
    with time_machine.travel(_at_la(12, 0), tick=False):
        inbound(client, sms_inbox, "Book me for Friday")
        conv_id = only_conversation(client, auth)["id"]
        later = (_at_la(12, 0) + timedelta(hours=2)).astimezone(UTC).isoformat()
        assert (
            reply(client, auth, conv_id, "Reminder: Friday 10:00", send_after=later).status_code
            == 202
        )
        assert reply(client, auth, conv_id, "Booked!").status_code == 202
        run_worker()
    with time_machine.travel(_at_la(14, 1), tick=False):
        run_worker()
    assert [s["Body"] for s in twilio.sends] == ["Booked!", "Reminder: Friday 10:00"]


# --------------------------------------------------------------------------- segments API


def test_segment_counter_endpoint(client, auth):
    resp = client.post("/api/v1/sms/segments", headers=auth, json={"body": "Hello 😀"})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["encoding"] == "UCS-2"
    assert body["segments"] == 1
    assert body["units"] == 8  # the emoji counts two UTF-16 units
    resp = client.post("/api/v1/sms/segments", headers=auth, json={"body": "a" * 161})
    assert (resp.get_json()["encoding"], resp.get_json()["segments"]) == ("GSM-7", 2)
    assert client.post("/api/v1/sms/segments", headers=auth, json={"body": 5}).status_code == 422
    assert client.post("/api/v1/sms/segments", json={"body": "x"}).status_code == 401


# --------------------------------------------------------------------------- intake


def test_busy_process_keeps_inbound_sms_in_the_intake_and_threads_them_once(
    client, sms_inbox, auth
):
    """Under load Twilio gets its TwiML at once; the requests are threaded together later."""
    from app.runtime import intake

    first_sid = sid()
    with intake._drain_lock:  # another batch is being threaded in this process
        for body, message_sid in (
            ("Where is my order?", first_sid),
            ("Where is my order?", first_sid),  # Twilio retried it
            ("STOP", sid()),
        ):
            resp = inbound(client, sms_inbox, body, message_sid=message_sid)
            assert resp.status_code == 200
            assert resp.get_data(as_text=True).endswith("<Response></Response>")
        assert len(intake.rows()) == 3
        assert conversations(client, auth) == []
    done = intake.drain_all()
    assert done.rows == 3 and len(done.created) == 2 and done.duplicates == 1
    conv = only_conversation(client, auth)
    assert [
        m["body"] for m in messages(client, auth, conv["id"]) if m["direction"] == "inbound"
    ] == ["Where is my order?", "STOP"]
    assert conv["opted_out"] is True and conv["unread_count"] == 2
    assert intake.rows() == []

"""Scale-out, proven: two gunicorn web processes, one worker, one PostgreSQL, one Redis.

The deployment of the README ("Deploying: several processes"), started for real
against a database created for this run: web A and web B are ``gunicorn wsgi:app``
processes (one gevent worker each, from ``gunicorn.conf.py``); B also runs the
scheduler and a delivery worker (``RUN_BACKGROUND=1``) next to the ``flask --app wsgi worker`` process, so
two schedulers and two delivery workers compete. Messenger's Graph API is a local
fake HTTP server that counts the sends.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import socketio
import sqlalchemy as sa

from tests.processes import (
    ROOT,
    postgres_url_or_skip,
    redis_url_or_skip,
    start_gunicorn,
    start_worker,
)

# one deployment for the module: keep its tests on one xdist worker (make test: --dist loadgroup)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.xdist_group("deploy-multiprocess"),
]

PAGE_ID = "104800000000555"
APP_SECRET = "deploy-app-secret"


class FakeGraph:
    """Messenger's Graph API on 127.0.0.1: answers sends, remembers each message sent."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw or b"{}")
                if self.path.split("?")[0].endswith("/me/messages") and "message" in body:
                    with fake.lock:
                        fake.sent.append(body)
                        n = len(fake.sent)
                    answer = {
                        "recipient_id": body["recipient"].get("id"),
                        "message_id": f"m_out_{n}",
                    }
                else:  # sender actions (mark_seen, typing_on)
                    answer = {"recipient_id": (body.get("recipient") or {}).get("id")}
                self._json(answer)

            def do_GET(self):  # noqa: N802 - profile look-ups
                self._json({"id": "customer", "first_name": "Deploy", "last_name": "Customer"})

            def _json(self, data: dict) -> None:
                out = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def texts(self) -> list[str]:
        """The text of every message sent so far."""
        with self.lock:
            return [b["message"].get("text") for b in self.sent]

    def stop(self) -> None:
        """Shut the server down."""
        self.server.shutdown()
        self.server.server_close()


def _create_database(base_url: str) -> str:
    url = sa.engine.make_url(base_url)
    name = f"{url.database}_deploy_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _drop_database(base_url: str, db_url: str) -> None:
    name = sa.engine.make_url(db_url).database
    admin = sa.create_engine(sa.engine.make_url(base_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _setup(db_url: str) -> dict:
    """Migrate the new database; one Page inbox and two agents (members) with API tokens."""
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db
    from app.models import ApiToken, Inbox, InboxMember, User

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SWITCHBOARD_ENV", "testing")
        app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "TESTING": True})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        agent = User(email="ana@deploy.example", name="Ana", role="agent")
        agent.set_password("correct horse battery")
        inbox = Inbox(
            channel="messenger",
            name="Deploy Page",
            route_key=PAGE_ID,
            settings={},
            config={
                "page_id": PAGE_ID,
                "page_token": "EAAG-deploy",
                "app_secret": APP_SECRET,
                "verify_token": "deploy-verify",
            },
        )
        db.session.add_all([agent, inbox])
        db.session.flush()
        other = User(email="bo@deploy.example", name="Bo", role="agent")
        other.set_password("correct horse battery")
        db.session.add(other)
        db.session.flush()
        db.session.add(InboxMember(inbox_id=inbox.id, user_id=agent.id))
        db.session.add(InboxMember(inbox_id=inbox.id, user_id=other.id))
        row, token = ApiToken.issue(agent)
        row_b, token_b = ApiToken.issue(other)
        db.session.add_all([row, row_b])
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return {"token": token, "token_b": token_b}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """Web A, web B (+ scheduler and delivery), the worker; PostgreSQL and Redis; fake Graph."""
    base_url = postgres_url_or_skip()
    redis_url = redis_url_or_skip()
    tmp = tmp_path_factory.mktemp("deploy")
    db_url = _create_database(base_url)
    graph = FakeGraph()
    procs = []
    try:
        setup = _setup(db_url)
        common = {
            "REDIS_URL": redis_url,
            "SOCKETIO_CHANNEL": f"sb-deploy-{uuid.uuid4().hex[:8]}",
            "MESSENGER_GRAPH_URL": graph.url,
            "SWITCHBOARD_ENV": "production",
            "DELIVERY_POLL_SECONDS": "0.5",
        }
        a, url_a = start_gunicorn(db_url, tmp, "web-a", **common)
        procs.append(a)
        # the worker and web B start together: their schedulers tick at nearly the same moments
        worker = start_worker(db_url, tmp, **common, LOG_LEVEL="INFO")
        procs.append(worker)
        b, url_b = start_gunicorn(
            db_url, tmp, "web-b", **common, RUN_BACKGROUND="1", LOG_LEVEL="INFO"
        )
        procs.append(b)
        yield {
            "a": a,
            "b": b,
            "worker": worker,
            "url_a": url_a,
            "url_b": url_b,
            "graph": graph,
            "token": setup["token"],
            "token_b": setup["token_b"],
            "started": time.monotonic(),
        }
    finally:
        for proc in procs:
            proc.stop()
        graph.stop()
        _drop_database(base_url, db_url)


def _webhook(url: str, items: list[tuple[str, str]]) -> None:
    """Customer messages ``(psid, text)`` as one signed Messenger delivery."""
    now_ms = int(time.time() * 1000)
    messaging = [
        {
            "sender": {"id": psid},
            "recipient": {"id": PAGE_ID},
            "timestamp": now_ms,
            "message": {"mid": f"m_{uuid.uuid4().hex}", "text": text},
        }
        for psid, text in items
    ]
    body = json.dumps(
        {"object": "page", "entry": [{"id": PAGE_ID, "time": now_ms, "messaging": messaging}]}
    ).encode()
    sig = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    resp = requests.post(
        url + "/webhooks/messenger",
        data=body,
        timeout=30,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sig},
    )
    assert resp.status_code == 200, resp.text


def _conversation_of(url: str, token: str, text: str, timeout: float = 15) -> int:
    """The id of the conversation whose last message is ``text`` (as the list shows it)."""
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = requests.get(
            url + "/api/v1/conversations?status=all&limit=100", headers=headers, timeout=10
        )
        for item in resp.json()["items"]:
            if (item.get("last_message") or {}).get("body") == text:
                return item["id"]
        time.sleep(0.2)
    raise AssertionError(f"no conversation shows {text!r}")


def _messages(url: str, token: str, conv_id: int) -> list[dict]:
    resp = requests.get(
        f"{url}/api/v1/conversations/{conv_id}/messages?limit=100",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


def _logs(dep) -> str:
    return "\n".join(f"--- {name}:\n{dep[name].output()[-4000:]}" for name in ("a", "b", "worker"))


def test_a_webhook_received_by_process_a_reaches_an_agent_connected_to_process_b(deployment):
    dep = deployment
    client = socketio.Client(reconnection=False)
    got: list[dict] = []
    arrived = threading.Event()
    text = f"Where is my parcel? {uuid.uuid4().hex[:6]}"

    @client.on("message.created")
    def on_message(data):
        if data.get("body") == text:
            got.append(data)
            arrived.set()

    client.connect(
        dep["url_b"], auth={"token": dep["token"]}, transports=["websocket"], wait_timeout=30
    )
    try:
        assert client.transport() == "websocket"
        _webhook(dep["url_a"], [("psid-cross-1", text)])
        assert arrived.wait(15), f"the message never reached the socket on B\n{_logs(dep)}"
        assert got[0]["direction"] == "inbound"
    finally:
        client.disconnect()


def test_agents_on_different_processes_see_each_other_in_a_conversation(deployment):
    """Ana on A and Bo on B open the same conversation: each is told the other is there."""
    dep = deployment
    text = f"Can someone help? {uuid.uuid4().hex[:6]}"
    _webhook(dep["url_a"], [("psid-presence-1", text)])
    conv_id = _conversation_of(dep["url_a"], dep["token"], text)
    ana, bo = socketio.Client(reconnection=False), socketio.Client(reconnection=False)
    seen: dict[str, list] = {"ana": [], "bo": []}
    both = {"ana": threading.Event(), "bo": threading.Event()}

    def watch(who: str, client):
        @client.on("presence.updated")
        def on_presence(data):
            if data.get("conversation_id") != conv_id:
                return
            people = {u["name"]: u["state"] for u in data["users"]}
            seen[who].append(people)
            if people == {"Ana": "viewing", "Bo": "replying"}:
                both[who].set()

    watch("ana", ana)
    watch("bo", bo)
    ana.connect(dep["url_a"], auth={"token": dep["token"]}, transports=["websocket"])
    bo.connect(dep["url_b"], auth={"token": dep["token_b"]}, transports=["websocket"])
    try:
        ana.emit("presence", {"conversation_id": conv_id, "state": "viewing"})
        time.sleep(0.3)
        bo.emit("presence", {"conversation_id": conv_id, "state": "replying"})
        assert both["ana"].wait(10) and both["bo"].wait(10), f"{seen}\n{_logs(dep)}"
    finally:
        ana.disconnect()
        bo.disconnect()


def test_a_reply_posted_to_process_a_is_sent_exactly_once(deployment):
    dep = deployment
    question = f"Can I change my address? {uuid.uuid4().hex[:6]}"
    _webhook(dep["url_a"], [("psid-reply-1", question)])
    conv_id = _conversation_of(dep["url_b"], dep["token"], question)
    reply = f"Of course, send it here. {uuid.uuid4().hex[:6]}"
    resp = requests.post(
        f"{dep['url_a']}/api/v1/conversations/{conv_id}/messages",
        json={"body": reply, "client_id": uuid.uuid4().hex},
        headers={"Authorization": f"Bearer {dep['token']}"},
        timeout=10,
    )
    assert resp.status_code == 202, resp.text
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and reply not in dep["graph"].texts():
        time.sleep(0.1)
    assert reply in dep["graph"].texts(), f"the reply was never sent\n{_logs(dep)}"
    time.sleep(3)  # several poll cycles of both delivery workers
    assert dep["graph"].texts().count(reply) == 1
    statuses = [
        m["status"]
        for m in _messages(dep["url_b"], dep["token"], conv_id)
        if m["direction"] == "outbound" and m["body"] == reply
    ]
    assert statuses == ["sent"]


def test_two_schedulers_wake_a_snoozed_conversation_once(deployment):
    dep = deployment
    headers = {"Authorization": f"Bearer {dep['token']}"}
    texts = [f"Call me back later {n} {uuid.uuid4().hex[:6]}" for n in range(12)]
    _webhook(dep["url_a"], [(f"psid-snooze-{n}", t) for n, t in enumerate(texts)])
    convs = [_conversation_of(dep["url_b"], dep["token"], t) for t in texts]
    until = (datetime.now(UTC) + timedelta(seconds=2)).isoformat().replace("+00:00", "Z")
    for conv_id in convs:
        resp = requests.post(
            f"{dep['url_a']}/api/v1/conversations/{conv_id}/status",
            json={"status": "snoozed", "snooze_until": until},
            headers=headers,
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
    # wake_snoozed runs every 30 s in each scheduler, the first time 30 s after it started
    deadline = time.monotonic() + 75
    pending = set(convs)
    while pending and time.monotonic() < deadline:
        for conv_id in list(pending):
            resp = requests.get(
                f"{dep['url_b']}/api/v1/conversations/{conv_id}", headers=headers, timeout=10
            )
            if resp.json()["status"] == "open":
                pending.discard(conv_id)
        time.sleep(0.5)
    assert not pending, f"still snoozed: {pending}\n{_logs(dep)}"
    for name in ("b", "worker"):
        assert "scheduler started" in dep[name].output(), f"no scheduler in {name}\n{_logs(dep)}"
    time.sleep(2)
    for conv_id in convs:
        woken = [
            m
            for m in _messages(dep["url_b"], dep["token"], conv_id)
            if m["direction"] == "activity" and m["body"].startswith("Snooze ended")
        ]
        assert len(woken) == 1, (conv_id, woken)

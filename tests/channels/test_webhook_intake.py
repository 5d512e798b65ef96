"""The webhook intake: a verified Messenger body is stored, answered, then threaded once.

Through the real webhook (signed POSTs), the real database and the intake's own
entry points (``drain_all``, the ``intake_sweep`` job, ``flask intake``). A busy
process is simulated by holding the intake's drain turn, as a drainer thread
working through a burst would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.clock import now
from app.models import Conversation, Message, WebhookIntake
from app.runtime import intake

SECRET = "intake-app-secret"
PAGE = "104800000000555"


def body(*items: tuple[str, str, str], page: str = PAGE) -> bytes:
    """A Messenger webhook with one text message per (psid, mid, text)."""
    ts = int(time.time() * 1000)
    messaging = [
        {
            "sender": {"id": psid},
            "recipient": {"id": page},
            "timestamp": ts + k,
            "message": {"mid": mid, "text": text},
        }
        for k, (psid, mid, text) in enumerate(items)
    ]
    return json.dumps(
        {"object": "page", "entry": [{"id": page, "time": ts, "messaging": messaging}]}
    ).encode()


def post(client, raw: bytes, secret: str = SECRET):
    sig = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return client.post(
        "/webhooks/messenger",
        data=raw,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sig},
    )


@pytest.fixture
def inbox(make):
    return make.inbox("messenger", page_id=PAGE, app_secret=SECRET)


@pytest.fixture
def busy():
    """This process is already ingesting (its drainer holds the turn) while the block runs."""
    intake._drain_lock.acquire()
    try:
        yield
    finally:
        if intake._drain_lock.locked():
            intake._drain_lock.release()


def rows(session) -> list[sa.Row]:
    session.expire_all()
    return intake.rows()


def texts(session) -> list[str]:
    return list(
        session.scalars(
            sa.select(Message.body).where(Message.direction == "inbound").order_by(Message.id)
        )
    )


def test_idle_process_threads_the_body_before_answering(client, session, inbox, captured_events):
    resp = post(client, body(("7001", "m_idle_1", "Where is my parcel?")))
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "stored": 1, "duplicates": 0}
    assert texts(session) == ["Where is my parcel?"]
    assert rows(session) == []  # threaded and removed in the same transaction
    assert [e.name for e in captured_events].count("message.created") == 1


def test_busy_process_stores_the_raw_body_and_answers_at_once(
    client, session, inbox, busy, captured_events
):
    raw = body(("7002", "m_busy_1", "First"), ("7003", "m_busy_2", "Second"))
    resp = post(client, raw)
    assert resp.status_code == 200 and resp.get_json() == {"status": "ok", "queued": True}
    [row] = rows(session)
    assert row.body == raw and row.channel == "messenger" and row.inbox_ids == [inbox.id]
    assert row.state == "pending" and texts(session) == []  # durable, not yet threaded
    assert captured_events == []
    received_at = row.received_at
    intake._drain_lock.release()

    done = intake.drain_all()
    assert done.rows == 1 and len(done.created) == 2
    assert texts(session) == ["First", "Second"] and rows(session) == []
    conv_events = [e for e in captured_events if e.name == "message.created"]
    assert len(conv_events) == 2
    # the message's time is when the webhook arrived, not when it was threaded
    msg = session.scalars(sa.select(Message).where(Message.body == "First")).one()
    assert abs((msg.created_at - received_at).total_seconds()) < 0.01


def test_a_burst_is_threaded_in_one_transaction_with_replays_stored_once(
    client, session, inbox, busy, count_queries
):
    bodies = [body((f"70{n % 3}", f"m_burst_{n}", f"Message {n}")) for n in range(30)]
    for raw in bodies + bodies[:5]:  # Meta retries five of them while they wait
        assert post(client, raw).get_json() == {"status": "ok", "queued": True}
    assert len(rows(session)) == 35
    intake._drain_lock.release()

    with count_queries() as counted:
        done = intake.drain_all()
    assert done.rows == 35 and len(done.created) == 30 and done.duplicates == 5
    assert sorted(texts(session)) == sorted(f"Message {n}" for n in range(30))
    assert session.scalar(sa.select(sa.func.count()).select_from(Conversation)) == 3
    conv = session.scalars(sa.select(Conversation).order_by(Conversation.id)).first()
    assert conv.unread_count == 10
    assert counted.count < 35 * 3  # bulk: not a transaction of statements per webhook
    assert rows(session) == []


def test_on_sqlite_storing_a_body_never_waits_for_the_inbox_writer(client, session, inbox, busy):
    """SQLite has one writer per file: the bodies wait in a file of their own."""
    from app.extensions import db

    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("SQLite only: on PostgreSQL bodies wait in the main database")
    with db.engine.connect() as other:  # holds the inbox's write lock, as a long ingest does
        other.exec_driver_sql("UPDATE inboxes SET name = name")
        started = time.monotonic()
        resp = post(client, body(("7012", "m_nowait_1", "Answered at once")))
        waited = time.monotonic() - started
        other.rollback()
    assert resp.get_json() == {"status": "ok", "queued": True}
    assert waited < 2
    assert len(rows(session)) == 1
    intake._drain_lock.release()
    assert len(intake.drain_all().created) == 1
    assert texts(session) == ["Answered at once"] and rows(session) == []


def test_unreadable_body_is_kept_as_failed_not_retried_and_can_be_replayed(
    client, session, inbox, busy, monkeypatch, caplog, app
):
    raw = body(("7005", "m_bad_1", "Kept for later"))
    good = body(("7006", "m_good_1", "Threaded anyway"))
    post(client, raw)
    post(client, good)
    real = intake.PARSERS["messenger"]

    def picky(row, inboxes):
        if b"m_bad_1" in row.body:
            raise KeyError("entry")
        return real(row, inboxes)

    monkeypatch.setitem(intake.PARSERS, "messenger", picky)
    intake._drain_lock.release()
    done = intake.drain_all()
    assert done.failed == 1 and texts(session) == [
        "Threaded anyway"
    ]  # one bad body holds nothing back
    [row] = rows(session)
    assert row.state == "failed" and row.attempts == intake.MAX_ATTEMPTS
    assert "malformed" in row.error and "KeyError" in row.error
    assert "could not be ingested" in caplog.text
    assert intake.drain_all().rows == 0  # a failed body is not tried again by itself

    monkeypatch.setitem(intake.PARSERS, "messenger", real)  # fixed: replay it
    out = app.test_cli_runner().invoke(args=["intake", "retry"])
    assert "requeued 1; threaded 1" in out.output
    assert texts(session) == ["Threaded anyway", "Kept for later"] and rows(session) == []


def test_database_failure_while_threading_keeps_the_body_and_retries_later(
    client, session, inbox, busy, monkeypatch
):
    from app.inbox import ingest as ingest_module

    post(client, body(("7007", "m_retry_1", "Eventually stored")))
    real = ingest_module.ingest
    monkeypatch.setattr(
        ingest_module,
        "ingest",
        lambda *a, **k: (_ for _ in ()).throw(sa.exc.OperationalError("x", {}, "disk I/O")),
    )
    intake._drain_lock.release()
    assert intake.drain_all().failed == 1
    [row] = rows(session)
    assert row.state == "pending" and row.attempts == 1 and "disk I/O" in row.error
    assert row.next_attempt_at > now()  # backs off
    assert intake.drain_all().rows == 0

    monkeypatch.setattr(ingest_module, "ingest", real)
    intake.write(sa.update(WebhookIntake).values(next_attempt_at=now() - timedelta(seconds=1)))
    assert intake.drain_all().rows == 1
    assert texts(session) == ["Eventually stored"] and rows(session) == []


def test_a_body_left_by_a_stopped_process_is_threaded_by_the_sweep_job(app, session, inbox):
    from app.runtime.jobs.registry import run_job

    intake.store("messenger", body(("7008", "m_orphan", "Left behind")), [inbox.id])
    assert texts(session) == []
    assert run_job(app, "intake_sweep")
    assert texts(session) == ["Left behind"] and rows(session) == []


def test_the_drainer_thread_threads_what_busy_requests_stored(app, client, session, inbox, busy):
    app.config.update(INTAKE_DRAINER=True, INTAKE_SWEEP_SECONDS=0.2)
    try:
        post(client, body(("7009", "m_thread_1", "Via the drainer")))
        assert texts(session) == []
        intake._drain_lock.release()  # the earlier batch is done: the woken drainer goes on
        deadline = time.monotonic() + 10
        while not texts(session) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert texts(session) == ["Via the drainer"]
    finally:
        intake.stop_drainer()


def test_during_a_burst_the_drainer_gathers_what_arrives_into_one_transaction(
    app, client, session, inbox, busy
):
    """After a run that found rows, a wake-up waits ``INTAKE_GATHER_MS`` so the webhooks
    arriving meanwhile are threaded together (one run each cost 2.7x the CPU a message).

    The window is two seconds here, and B is sent half a second after A was threaded: by
    then the drainer's run right after A's (a run that found rows is followed by another at
    once) has found nothing and it waits to be woken, as during a burst. On a machine busy
    with other tests, B sent at once was sometimes taken alone by that run, and C after it."""
    from app.inbox import events

    app.config.update(INTAKE_DRAINER=True, INTAKE_SWEEP_SECONDS=60, INTAKE_GATHER_MS=2000)
    commits: list[list[str]] = []

    def sink(batch):
        commits.append(sorted(e.payload["body"] for e in batch if e.name == "message.created"))

    events.add_sink(sink)
    try:
        post(client, body(("7011", "m_gather_a", "A")))  # busy: left to the drainer
        intake._drain_lock.release()
        deadline = time.monotonic() + 10
        while texts(session) != ["A"] and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)
        with intake.receiving():  # another webhook is being received: these go to the drainer
            post(client, body(("7012", "m_gather_b", "B")))
            time.sleep(0.1)
            post(client, body(("7013", "m_gather_c", "C")))
        while len(texts(session)) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        intake.stop_drainer()
        events.remove_sink(sink)
    assert texts(session) == ["A", "B", "C"]
    assert commits == [["A"], ["B", "C"]]


def test_concurrent_deliveries_of_one_body_store_one_message(app, session, inbox, live_server):
    import requests

    raw = body(("7010", "m_race_1", "Only once"))
    sig = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    statuses: list[int] = []

    def deliver():
        r = requests.post(
            live_server.url + "/webhooks/messenger",
            data=raw,
            timeout=30,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": sig},
        )
        statuses.append(r.status_code)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    intake.drain_all()
    assert statuses == [200] * 8
    assert texts(session) == ["Only once"] and rows(session) == []


def test_a_body_threaded_by_the_drainer_reaches_the_agents_socket(app, make, live_server, busy):
    import requests
    import socketio

    agent = make.user("agent")
    make.inbox("messenger", page_id=PAGE, app_secret=SECRET, members=[agent])
    received: list[dict] = []
    got = threading.Event()
    sio = socketio.Client(reconnection=False)

    @sio.on("message.created")
    def on_message(data):
        received.append(data)
        got.set()

    app.config.update(INTAKE_DRAINER=True, INTAKE_SWEEP_SECONDS=0.2)
    sio.connect(
        live_server.url,
        auth={"token": make.token(agent)},
        transports=["websocket"],
        wait_timeout=10,
    )
    try:
        raw = body(("7011", "m_live_1", "Seen live"))
        sig = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        resp = requests.post(
            live_server.url + "/webhooks/messenger",
            data=raw,
            timeout=10,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": sig},
        )
        assert resp.json() == {"status": "ok", "queued": True}
        assert not got.wait(0.3)  # still waiting in the intake
        intake._drain_lock.release()
        assert got.wait(10), "the drained message never reached the socket"
        assert [m["body"] for m in received] == ["Seen live"]
    finally:
        sio.disconnect()
        intake.stop_drainer()

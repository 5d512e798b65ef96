"""Who views which conversation: in memory for one process, in Redis for several."""

from __future__ import annotations

import uuid

import pytest

from app.realtime import presence
from app.realtime.presence import LocalPresence, RedisPresence
from tests.processes import redis_url_or_skip


@pytest.fixture
def redis_client():
    import redis

    client = redis.Redis.from_url(redis_url_or_skip())
    yield client
    client.close()


def _pair(kind: str, request) -> tuple:
    """Two processes' views of presence (the same store in memory)."""
    if kind == "memory":
        store = LocalPresence()
        return store, store
    client = request.getfixturevalue("redis_client")
    prefix = f"sb-test-{uuid.uuid4().hex[:8]}:presence"
    return RedisPresence(client, prefix), RedisPresence(client, prefix)


@pytest.mark.parametrize("kind", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
def test_agents_of_different_processes_see_each_other(kind, request):
    a, b = _pair(kind, request)
    assert a.set(1, 5, "viewing") == {5}
    assert b.set(2, 5, "replying") == {5}
    assert a.people(5) == b.people(5) == {1: "viewing", 2: "replying"}
    assert b.set(2, 5, "replying") == set()  # nothing new: nothing to broadcast

    assert a.set(1, 6, "viewing") == {5, 6}  # moving on leaves the first conversation
    assert b.people(5) == {2: "replying"} and b.people(6) == {1: "viewing"}
    assert b.clear(2) == {5}
    assert a.people(5) == {}
    assert a.set(1, None, "viewing") == {6}
    assert b.people(6) == {}


@pytest.mark.redis
def test_redis_entries_of_a_silent_browser_expire_and_a_heartbeat_renews_them(
    redis_client, monkeypatch
):
    store = RedisPresence(redis_client, f"sb-test-{uuid.uuid4().hex[:8]}:presence")
    clock = [1_000_000.0]
    monkeypatch.setattr(presence.time, "time", lambda: clock[0])
    store.set(1, 5, "replying")
    store.set(2, 5, "viewing")
    clock[0] += presence.TTL - 10
    store.renew(1)  # agent 1's browser sent its heartbeat; agent 2's process died
    clock[0] += 20
    assert store.people(5) == {1: "replying"}


def test_the_app_shares_presence_through_redis_when_it_has_one():
    assert isinstance(presence.store_for({}), LocalPresence)
    shared = presence.store_for({"REDIS_URL": "redis://127.0.0.1:6379/15", "SOCKETIO_CHANNEL": "x"})
    assert isinstance(shared, RedisPresence) and shared.prefix == "x:presence"


def test_a_failing_presence_store_never_keeps_an_agent_online(app, make, monkeypatch):
    """Redis down: the disconnect still takes the agent offline for automatic assignment."""
    from app.extensions import db, socketio
    from app.models import User

    class Down(LocalPresence):
        def set(self, *_args):
            raise ConnectionError("redis is down")

    monkeypatch.setattr(app.extensions["switchboard_realtime"], "presence", Down())
    ana = make.user(name="Ana")
    inbox = make.inbox(members=[ana])
    conv_id = make.inbound(inbox, contact="x").conversation_id
    client = socketio.test_client(app, auth={"token": make.token(ana)})
    client.emit("presence", {"conversation_id": conv_id, "state": "viewing"})
    online_until = db.session.get(User, ana.id).online_until  # the heartbeat's 90 s ahead
    client.disconnect()
    db.session.expire_all()
    assert db.session.get(User, ana.id).online_until < online_until  # offline from now on

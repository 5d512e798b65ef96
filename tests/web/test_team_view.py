"""The team view tells the truth: "online" is a connected browser, and the unassigned queue
is complete (paged), waiting longest first."""

from __future__ import annotations

from datetime import timedelta

from app.clock import now
from app.extensions import socketio


def _agent(data, user):
    return next(a for a in data["agents"] if a["id"] == user.id)


def test_online_means_a_connected_browser_not_the_availability_setting(app, client, make):
    lead = make.user("lead")
    connected_away = make.user("agent", name="Away but here", availability="away")
    available_gone = make.user("agent", name="Available but gone", availability="online")
    h = make.headers(lead)

    data = client.get("/api/v1/team", headers=h).get_json()
    assert _agent(data, available_gone)["online"] is False  # "online" setting, no browser
    assert _agent(data, available_gone)["available"] is True
    assert _agent(data, connected_away)["online"] is False

    socket = socketio.test_client(app, auth={"token": make.token(connected_away)})
    assert socket.is_connected()
    data = client.get("/api/v1/team", headers=h).get_json()
    row = _agent(data, connected_away)
    assert (row["online"], row["available"], row["availability"]) == (True, False, "away")
    assert _agent(data, available_gone)["online"] is False

    socket.disconnect()
    assert (
        _agent(client.get("/api/v1/team", headers=h).get_json(), connected_away)["online"] is False
    )


def test_the_unassigned_queue_is_complete_and_ordered_by_waiting_longest(client, make):
    lead = make.user("lead")
    agent = make.user("agent")
    inbox = make.inbox("messenger", members=[agent])
    start = now() - timedelta(hours=20)
    # 60 customers wait, written to in a shuffled order of arrival
    order = [(i * 37) % 60 for i in range(60)]
    convs = {}
    for i in order:
        msg = make.inbound(
            inbox, contact=f"psid-q{i}", text=f"Waiting {i}", at=start + timedelta(minutes=i)
        )
        convs[i] = msg.conversation_id
    assigned = convs[5]
    resp = client.post(
        f"/api/v1/conversations/{assigned}/assign",
        headers=make.headers(lead),
        json={"assignee_id": agent.id},
    )
    assert resp.status_code == 200, resp.get_json()
    h = make.headers(lead)
    data = client.get("/api/v1/team", headers=h).get_json()
    queue = data["unassigned"]
    assert queue["count"] == 59
    ids = [c["id"] for c in queue["items"]]
    cursor = queue["next_cursor"]
    assert cursor and len(ids) == 25
    while cursor:
        page = client.get(f"/api/v1/team/queue?cursor={cursor}&limit=20", headers=h).get_json()
        ids += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
    expected = [convs[i] for i in range(60) if i != 5]  # the earliest customer first
    assert ids == expected

    assert client.get("/api/v1/team/queue?cursor=nonsense", headers=h).status_code == 400
    assert client.get("/api/v1/team/queue", headers=make.headers(agent)).status_code == 403

"""The Page token never travels in a URL (proxies, Graph's and our own logs keep URLs)."""

from __future__ import annotations

import logging

from app.runtime.worker import run_once
from tests.channels.test_messenger_flow import PAGE_A, U1, customer_writes, graph, page_inbox

__all__ = ["graph"]  # the fake Graph fixture

TOKEN = f"EAAG-token-{PAGE_A}"


def test_every_graph_call_carries_the_token_in_a_header_only(client, make, graph, caplog):
    page_inbox(make)
    agent = make.user("lead")
    headers = make.headers(agent)
    customer_writes(client, body="Where is my order?")
    with caplog.at_level(logging.DEBUG):
        run_once()  # the contact's profile
        conv = client.get("/api/v1/conversations?status=all", headers=headers).get_json()
        conv_id = conv["items"][0]["id"]
        resp = client.post(
            f"/api/v1/conversations/{conv_id}/messages",
            json={"body": "On its way"},
            headers=headers,
        )
        assert resp.status_code == 202
        run_once()  # mark_seen, then the reply

    urls = [c.request.url for c in graph.rsps.calls]
    assert len(urls) == 3  # profile, mark_seen, message
    assert graph.kinds() == ["mark_seen", "message"]
    for call in graph.rsps.calls:
        assert TOKEN not in call.request.url
        assert "access_token" not in call.request.url
        assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert "appsecret_proof=" in call.request.url  # an HMAC of the token, not the token
    assert TOKEN not in caplog.text
    assert graph.sends[0].body["recipient"] == {"id": U1}

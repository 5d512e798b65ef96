"""Finding C: presence and typing only for conversations the agent can see."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("event", ["presence", "typing"])
def test_an_agent_cannot_appear_in_a_conversation_they_cannot_see(live_server, make, feeds, event):
    ana, mallory = make.user(name="Ana"), make.user(name="Mallory")
    private = make.inbox(members=[ana])
    make.inbox(members=[mallory])
    conv_id = make.inbound(private, contact="p", text="private").conversation_id
    ana_feed = feeds(live_server.url, make.token(ana))
    mallory_feed = feeds(live_server.url, make.token(mallory))

    mallory_feed.sio.call(event, {"conversation_id": conv_id, "state": "replying"}, timeout=5)
    # Ana opens the conversation after Mallory's event was handled: any update Mallory caused
    # reached her before the one about herself
    ana_feed.sio.emit("presence", {"conversation_id": conv_id, "state": "viewing"})
    assert ana_feed.wait_for("presence.updated", lambda d: "Ana" in [u["name"] for u in d["users"]])
    for update in ana_feed.named("presence.updated"):
        assert "Mallory" not in [u["name"] for u in update["users"]], update

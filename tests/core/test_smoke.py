"""The app starts, answers health checks and honours its test configuration."""

import pytest


def test_factory_uses_test_config(app):
    assert app.config["TESTING"] is True
    assert app.config["MESSENGER_GRAPH_URL"] == "http://graph.fake"


def test_production_refuses_to_start_without_secret_key(monkeypatch):
    from config import ProductionConfig

    monkeypatch.setattr(ProductionConfig, "SECRET_KEY", None)
    from app import create_app

    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app("production")


def test_healthz(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "database": "ok"}


def test_api_requires_auth(client):
    resp = client.get("/api/v1/conversations")
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "unauthorized"


def test_list_with_token(client, make):
    agent = make.user()
    inbox = make.inbox(members=[agent])
    make.inbound(inbox, text="Where is my parcel?")
    resp = client.get("/api/v1/conversations", headers=make.headers(agent))
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["counts"] == {"all": 1, "mine": 0, "unassigned": 1}
    item = body["items"][0]
    assert item["last_message"]["body"] == "Where is my parcel?"
    assert item["reply_window"]["state"] == "open"
    assert item["response_due"]["breached"] is False

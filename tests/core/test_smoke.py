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
    assert body["counts"] == {
        "all": 1,
        "mine": 0,
        "unassigned": 1,
        "by_status": {"open": 1, "pending": 0, "snoozed": 0, "closed": 0},
    }
    item = body["items"][0]
    assert item["last_message"]["body"] == "Where is my parcel?"
    assert item["reply_window"]["state"] == "open"
    assert item["response_due"]["breached"] is False


def test_in_memory_sqlite_starts_and_stores(tmp_path, monkeypatch):
    """``DATABASE_URL=sqlite://`` (one process, nothing kept): the app starts and threads a message."""
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    from app import create_app
    from app.extensions import db
    from app.models import Inbox, Message

    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "TESTING": True})
    with app.app_context():
        db.create_all()
        inbox = Inbox(
            channel="sms",
            name="SMS",
            route_key="+14155550100",
            config={"number": "+14155550100"},
            settings={},
        )
        db.session.add(inbox)
        db.session.commit()
        from app.clock import now
        from app.inbox.ingest import ingest
        from connectors.base import InboundMessage

        ingest(
            db.session,
            inbox,
            [
                InboundMessage(
                    inbox_key=inbox.route_key,
                    external_id="SM1",
                    contact_id="+14155550111",
                    sent_at=now(),
                    text="Hello",
                )
            ],
        )
        assert db.session.query(Message).count() == 1
        assert app.test_client().get("/healthz").get_json()["database"] == "ok"
        db.session.remove()
        db.engine.dispose()

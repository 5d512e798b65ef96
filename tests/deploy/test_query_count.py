"""``SWITCHBOARD_QUERY_COUNT=1`` (benchmarks): responses say how many SQL statements they ran."""

from __future__ import annotations

import pytest


def _counted_app(database_url: str):
    from app import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True})


@pytest.fixture
def counted(app, database_url, monkeypatch):
    """A second app on the test database, built with the query count switched on."""
    from app.extensions import db

    monkeypatch.setenv("SWITCHBOARD_QUERY_COUNT", "1")
    other = _counted_app(database_url)
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


def test_the_header_is_off_by_default(client):
    assert "X-Query-Count" not in client.get("/healthz").headers


def test_health_check_reports_its_one_statement(counted):
    resp = counted.test_client().get("/healthz")
    assert resp.status_code == 200
    assert resp.headers["X-Query-Count"] == "1"


def test_the_list_reports_its_statements(counted, make):
    agent = make.user()
    inbox = make.inbox(members=[agent])
    for n in range(3):
        make.inbound(inbox, contact=f"c{n}", text=f"Hello {n}")
    headers = make.headers(agent)
    counted.test_client().get("/api/v1/me", headers=headers)  # a token's use: written hourly
    resp = counted.test_client().get("/api/v1/conversations", headers=headers)
    assert resp.status_code == 200
    assert len(resp.get_json()["items"]) == 3
    assert 1 <= int(resp.headers["X-Query-Count"]) <= 5

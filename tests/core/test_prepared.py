"""Requests that only read end with COMMIT; requests that changed rows without
committing still lose the changes; PostgreSQL keeps the hot reads prepared.

Each request runs in a thread of its own, so it pushes and pops its own app
context as a request of the server does (the test's context stays in the test).
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from app import prepared
from app.extensions import db
from app.models import Label

COLOR = "#336699"


def _in_own_context(app, path: str, token: str | None = None):
    """GET ``path`` from another thread (its own app context, torn down at the end)."""
    out = {}

    def run():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        out["resp"] = app.test_client().get(path, headers=headers)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    return out["resp"]


def _labels(session) -> list[str]:
    session.rollback()  # a fresh look
    return list(session.scalars(sa.select(Label.name).order_by(Label.name)))


@pytest.fixture
def routes(app):
    """Views that change rows and answer without committing, as a refused request does."""

    def flushed():
        db.session.add(Label(name="flushed", name_key="flushed", color=COLOR))
        db.session.flush()
        return {"error": "refused"}, 422

    def pending():
        db.session.add(Label(name="pending", name_key="pending", color=COLOR))
        return {"error": "refused"}, 422

    def core():
        db.session.execute(sa.insert(Label).values(name="core", name_key="core", color=COLOR))
        return {"error": "refused"}, 422

    def failed_flush():  # a duplicate, caught and answered as views do
        db.session.add(Label(name="Twice", name_key="billing", color=COLOR))
        try:
            db.session.flush()
        except sa.exc.IntegrityError:
            return {"error": "exists"}, 409
        return {}, 200

    def failed_read():  # a statement the database refuses, caught and answered
        try:
            db.session.execute(sa.text("SELECT * FROM no_such_table"))
        except sa.exc.DBAPIError:
            return {"error": "refused"}, 400
        return {}, 200

    def read():
        count = db.session.scalar(sa.select(sa.func.count()).select_from(Label))
        return {"labels": count, "in_transaction": db.session().in_transaction()}

    views = {
        "flushed": flushed,
        "pending": pending,
        "core": core,
        "failed_flush": failed_flush,
        "failed_read": failed_read,
        "read": read,
    }
    for name, view in views.items():
        app.add_url_rule(f"/_test/{name}", f"test_{name}", view)
    db.session.add(Label(name="Billing", name_key="billing", color=COLOR))
    db.session.commit()
    return app


@pytest.mark.parametrize("kind", ["flushed", "pending", "core"])
def test_a_request_that_changed_rows_without_committing_loses_them(routes, session, kind):
    resp = _in_own_context(routes, f"/_test/{kind}")
    assert resp.status_code == 422
    assert _labels(session) == ["Billing"]


@pytest.mark.parametrize(("kind", "status"), [("failed_flush", 409), ("failed_read", 400)])
def test_a_request_whose_statement_failed_keeps_its_answer(routes, session, kind, status):
    """The view caught the database's refusal and answered: that answer reaches the client
    (ending the failed transaction does not turn it into a 500), and nothing is written."""
    resp = _in_own_context(routes, f"/_test/{kind}")
    assert resp.status_code == status
    assert _labels(session) == ["Billing"]
    assert _in_own_context(routes, "/_test/read").status_code == 200


def test_a_request_that_only_read_answers_and_leaves_nothing_open(routes, session):
    resp = _in_own_context(routes, "/_test/read")
    assert resp.status_code == 200 and resp.get_json() == {"labels": 1, "in_transaction": True}
    assert _labels(session) == ["Billing"]


def test_end_read_only_commits_reads_and_leaves_writes(app, session):
    session.scalar(sa.select(sa.func.count()).select_from(Label))
    prepared.end_read_only(session())
    assert not session().in_transaction()

    session.execute(sa.insert(Label).values(name="kept back", name_key="kept back", color=COLOR))
    prepared.end_read_only(session())
    assert session().in_transaction()  # left to the rollback
    assert _labels(session) == []


def test_the_conversation_list_stays_prepared_across_requests(app, session, make):
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("prepared statements are kept on PostgreSQL only")
    agent = make.user(name="Ana")
    inbox = make.inbox("messenger", members=[agent])
    make.inbound(inbox, contact="psid-1", text="Hello")
    token = make.token(agent)

    app.add_url_rule(
        "/_test/held",
        "test_held",
        lambda: {
            "statements": list(
                db.session.scalars(sa.text("SELECT statement FROM pg_prepared_statements"))
            )
        },
    )
    session.commit()
    session.remove()  # one idle connection in the pool: every request below takes it
    for _ in range(2):
        resp = _in_own_context(app, "/api/v1/conversations", token)
        assert resp.status_code == 200 and len(resp.get_json()["items"]) == 1
    statements = _in_own_context(app, "/_test/held").get_json()["statements"]
    assert any("api_tokens" in s for s in statements), statements
    assert any("conversation_counts" in s for s in statements), statements
    assert any("FROM conversations" in s for s in statements), statements

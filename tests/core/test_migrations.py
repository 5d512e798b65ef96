"""Migrations: one head, they build an empty database, and they match the models."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def test_migrations_have_a_single_head():
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    heads = ScriptDirectory.from_config(cfg).get_heads()
    assert len(heads) == 1, f"migrations have several heads: {heads}"


def _fresh_url(tmp_path) -> str:
    from tests.conftest import fresh_postgres_database

    return fresh_postgres_database("migrations") or f"sqlite:///{tmp_path / 'migrated.db'}"


def test_upgrade_builds_an_empty_database_matching_the_models(tmp_path, monkeypatch):
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db
    from app.models.schema import include_object

    url = _fresh_url(tmp_path)
    monkeypatch.setenv("SWITCHBOARD_ENV", "testing")
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        upgrade(directory=str(MIGRATIONS))
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_object": include_object})
            diff = compare_metadata(context, db.metadata)
            tables = set(sa.inspect(conn).get_table_names())
        db.engine.dispose()
    assert {"users", "inboxes", "conversations", "messages", "outbox"} <= tables
    assert diff == [], f"models and migrations differ: {diff}"


@pytest.mark.parametrize("table", ["messages"])
def test_provider_id_is_unique_per_inbox_in_the_schema(app, table):
    from app.extensions import db

    uniques = sa.inspect(db.engine).get_unique_constraints(table)
    assert any(set(u["column_names"]) == {"inbox_id", "provider_id"} for u in uniques)


def test_answered_waits_stored_before_the_upgrade_are_counted(tmp_path, monkeypatch):
    """0020 counts the answered waits already stored (and the late ones), per agent too;
    0021 gives each counter row its day's total."""
    from datetime import datetime

    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db
    from app.models import Contact, Conversation, Inbox, ReportWait, User

    url = _fresh_url(tmp_path)
    monkeypatch.setenv("SWITCHBOARD_ENV", "testing")
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    slot = 96 * 20614 + 37  # 2026-06-10 09:15 UTC
    with app.app_context():
        upgrade(directory=str(MIGRATIONS), revision="0019")
        inbox, contact = Inbox(channel="sms", name="S"), Contact(name="C")
        agent = User(email="ana@example.com", name="Ana", role="agent")
        db.session.add_all([inbox, contact, agent])
        db.session.flush()
        conv = Conversation(inbox_id=inbox.id, contact_id=contact.id)
        db.session.add(conv)
        db.session.flush()
        at = datetime(2026, 6, 10, 9, 20)
        waits = [(agent.id, None), (None, None), (agent.id, datetime(2026, 6, 10, 9)), "open"]
        for n, wait in enumerate(waits):
            row = ReportWait(
                conversation_id=conv.id, inbox_id=inbox.id, started_at=datetime(2026, 6, 10, n)
            )
            if wait != "open":
                row.agent_id, row.breached_at = wait
                row.answered_at, row.answered_slot = at, slot
            db.session.add(row)
        db.session.commit()
        ids = (inbox.id, agent.id)
        upgrade(directory=str(MIGRATIONS))
        with db.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT kind, user_id, day, inbox_id, q37, q36, total FROM report_counts")
            ).all()
        db.session.remove()
        db.engine.dispose()
    inbox_id, agent_id = ids
    assert sorted(tuple(r) for r in rows) == [
        ("answered", 0, 20614, inbox_id, 3, 0, 3),
        ("answered_by", agent_id, 20614, inbox_id, 2, 0, 2),
        ("late", 0, 20614, inbox_id, 1, 0, 1),
        ("late_by", agent_id, 20614, inbox_id, 1, 0, 1),
    ]

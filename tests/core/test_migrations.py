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

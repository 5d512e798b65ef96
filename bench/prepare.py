"""Build the benchmark databases once and cache them (run in its own process by ``bench.run``).

Three databases per engine, rebuilt only when the migrations, the seed code or
this file change (their hash is the cache key):

- ``template``: migrated, one Messenger Page and one email inbox, a team lead and
  100 agents (members of both inboxes) with API tokens. Every write benchmark
  starts from a fresh copy of it.
- ``10k``: ``flask demo seed --conversations 10000 --messages-per-conversation 10``.
- ``1m``: a copy of ``10k`` topped up to 100,000 conversations / 1,000,000 messages.

SQLite files live in ``bench/.cache``; PostgreSQL databases are
``switchboard_bench_tpl``, ``switchboard_bench_10k`` and ``switchboard_bench_1m``
(the key is stored as the database comment). Users, inboxes and seed data go in
through the documented CLI commands (invoked in-process, to pay the start-up once).

    python -m bench.prepare sqlite|postgresql [--pg-url URL]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    APP_SECRET,
    CACHE,
    EMAIL_ADDRESS,
    PAGE_ID,
)

AGENTS = 100
SMALL = (10_000, 10)
LARGE = (100_000, 10)
PG_NAMES = {
    "template": "switchboard_bench_tpl",
    "10k": "switchboard_bench_10k",
    "1m": "switchboard_bench_1m",
}
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def cache_key() -> str:
    """Hash of everything that shapes the cached databases."""
    digest = hashlib.sha256()
    files = sorted((ROOT / "migrations" / "versions").glob("*.py"))
    files += [ROOT / "app" / "inbox" / name for name in ("seed.py", "seed_facts.py")]
    files += [ROOT / "app" / "inbox" / "report_facts.py", Path(__file__).resolve()]
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(repr((AGENTS, SMALL, LARGE)).encode())
    return digest.hexdigest()[:16]


def _app(url: str):
    from app import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url})


def _cli(app, *args: str) -> str:
    """Run one ``flask --app wsgi ...`` command in-process; its output, or raise."""
    result = app.test_cli_runner().invoke(args=list(args), catch_exceptions=False)
    if result.exit_code != 0:
        raise RuntimeError(
            f"flask {' '.join(args[:3])} failed ({result.exit_code}):\n{result.output}"
        )
    return result.output


def _dispose(app) -> None:
    from app.extensions import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _migrate(url: str) -> None:
    app = _app(url)
    _cli(app, "db", "upgrade")
    _dispose(app)


def _setup_template(url: str) -> dict:
    """Inboxes, a lead and the agents, through the CLI (agents share one password hash)."""
    app = _app(url)
    _cli(app, "db", "upgrade")
    _cli(
        app,
        "inboxes",
        "add",
        "messenger",
        "--name",
        "Bench Page",
        "--page-id",
        PAGE_ID,
        "--page-token",
        "EAAG-bench",
        "--app-secret",
        APP_SECRET,
        "--verify-token",
        "bench-verify",
    )
    out = _cli(
        app,
        "inboxes",
        "add",
        "email",
        "--name",
        "Bench mailbox",
        "--address",
        EMAIL_ADDRESS,
        "--smtp-host",
        "127.0.0.1",
        "--smtp-port",
        "9",
        "--smtp-security",
        "none",
    )
    _cli(
        app,
        "users",
        "create",
        "lead@bench.example",
        "--name",
        "Bench Lead",
        "--role",
        "lead",
        "--password",
        "bench-password",
    )
    lead_token = _cli(app, "users", "token", "lead@bench.example").strip().splitlines()[-1]
    from app.extensions import db
    from app.models import ApiToken, Inbox, InboxMember, User

    with app.app_context():
        inboxes = list(db.session.query(Inbox).order_by(Inbox.id))
        email_inbox = next(i for i in inboxes if i.channel == "email")
        lead = db.session.query(User).filter_by(email="lead@bench.example").one()
        tokens = []
        for n in range(AGENTS):
            # the CLI's ``users create`` hashes a password with scrypt (~0.2 s): share one hash
            agent = User(
                email=f"agent{n:03d}@bench.example",
                name=f"Agent {n:03d}",
                role="agent",
                password_hash=lead.password_hash,
                capacity=1000,
            )
            db.session.add(agent)
            db.session.flush()
            for inbox in inboxes:
                db.session.add(InboxMember(inbox_id=inbox.id, user_id=agent.id))
            row, clear = ApiToken.issue(agent, "bench")
            db.session.add(row)
            tokens.append(clear)
        db.session.commit()
        meta = {
            "lead_token": lead_token,
            "agent_tokens": tokens,
            "email_token": email_inbox.inbound_token,
            "messenger_inbox_id": next(i.id for i in inboxes if i.channel == "messenger"),
            "cli_email_output": out.strip().splitlines()[0],
        }
    _dispose(app)
    return meta


def _seed(url: str, conversations: int, per: int, with_users: bool) -> dict:
    """``demo seed`` (timed), then a lead and an agent token for the list benchmark."""
    app = _app(url)
    started = time.perf_counter()
    out = _cli(
        app,
        "demo",
        "seed",
        "--conversations",
        str(conversations),
        "--messages-per-conversation",
        str(per),
    )
    took = time.perf_counter() - started
    meta = {"seed_output": out.strip().splitlines()[-1], "seed_seconds": round(took, 1)}
    if with_users:
        _cli(
            app,
            "users",
            "create",
            "lead@bench.example",
            "--name",
            "Bench Lead",
            "--role",
            "lead",
            "--password",
            "bench-password",
        )
        meta["lead_token"] = (
            _cli(app, "users", "token", "lead@bench.example").strip().splitlines()[-1]
        )
        # a demo agent, member of every demo inbox, with conversations assigned to them
        meta["agent_token"] = (
            _cli(app, "users", "token", "alex@demo.example").strip().splitlines()[-1]
        )
    _dispose(app)
    return meta


def _analyze(url: str) -> None:
    """PostgreSQL: what autovacuum would do shortly after a bulk load."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()


# --------------------------------------------------------------------------- SQLite


def prepare_sqlite(key: str) -> dict:
    """The three SQLite files (built when missing); returns their paths and tokens."""
    CACHE.mkdir(parents=True, exist_ok=True)
    meta_path = CACHE / f"sqlite-{key}.json"
    paths = {name: CACHE / f"sqlite-{key}-{name}.db" for name in PG_NAMES}
    if meta_path.exists() and all(p.exists() for p in paths.values()):
        meta = json.loads(meta_path.read_text())
        meta["cached"] = True
        return meta
    for old in CACHE.glob("sqlite-*"):  # another key: stale
        old.unlink()
    tmp = Path(tempfile.mkdtemp(prefix="sb-bench-prep-", dir=CACHE))
    try:
        build = {name: tmp / p.name for name, p in paths.items()}
        meta: dict = {"engine": "sqlite", "key": key}
        meta["template"] = _setup_template(f"sqlite:///{build['template']}")
        _migrate(f"sqlite:///{build['10k']}")
        meta["10k"] = _seed(f"sqlite:///{build['10k']}", *SMALL, with_users=True)
        _checkpoint(build["10k"])
        shutil.copyfile(build["10k"], build["1m"])
        meta["1m"] = _seed(
            f"sqlite:///{build['1m']}", LARGE[0] - SMALL[0], LARGE[1], with_users=False
        )
        meta["1m"].update({k: meta["10k"][k] for k in ("lead_token", "agent_token")})
        for name in PG_NAMES:
            _checkpoint(build[name])
            build[name].replace(paths[name])
        meta["urls"] = {name: f"sqlite:///{p}" for name, p in paths.items()}
        meta["paths"] = {name: str(p) for name, p in paths.items()}
        meta_path.write_text(json.dumps(meta, indent=1))
        meta["cached"] = False
        return meta
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _checkpoint(path: Path) -> None:
    """Fold the WAL into the main file so the file can be copied alone."""
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()


# --------------------------------------------------------------------------- PostgreSQL


def prepare_postgresql(key: str, base_url: str) -> dict:
    """The three PostgreSQL databases (built when missing or stale)."""
    import sqlalchemy as sa

    CACHE.mkdir(parents=True, exist_ok=True)
    meta_path = CACHE / f"postgresql-{key}.json"
    base = sa.engine.make_url(base_url)
    urls = {
        name: base.set(database=db).render_as_string(hide_password=False)
        for name, db in PG_NAMES.items()
    }
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            comments = dict(
                conn.execute(
                    sa.text(
                        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
                        "WHERE datname = ANY(:names)"
                    ),
                    {"names": list(PG_NAMES.values())},
                ).all()
            )
        fresh = all(comments.get(db) == key for db in PG_NAMES.values())
        if fresh and meta_path.exists():
            meta = json.loads(meta_path.read_text())
            meta["cached"] = True
            return meta
        for old in CACHE.glob("postgresql-*.json"):
            old.unlink()

        def recreate(name: str, template: str | None = None) -> None:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                tpl = f' TEMPLATE "{template}"' if template else ""
                conn.execute(sa.text(f'CREATE DATABASE "{name}"{tpl}'))

        def mark(name: str) -> None:
            with admin.connect() as conn:
                conn.execute(sa.text(f"COMMENT ON DATABASE \"{name}\" IS '{key}'"))

        meta: dict = {"engine": "postgresql", "key": key, "urls": urls}
        recreate(PG_NAMES["template"])
        meta["template"] = _setup_template(urls["template"])
        recreate(PG_NAMES["10k"])
        _migrate(urls["10k"])
        meta["10k"] = _seed(urls["10k"], *SMALL, with_users=True)
        _analyze(urls["10k"])
        recreate(PG_NAMES["1m"], template=PG_NAMES["10k"])
        meta["1m"] = _seed(urls["1m"], LARGE[0] - SMALL[0], LARGE[1], with_users=False)
        meta["1m"].update({k: meta["10k"][k] for k in ("lead_token", "agent_token")})
        _analyze(urls["1m"])
        for name in PG_NAMES.values():
            mark(name)
        meta_path.write_text(json.dumps(meta, indent=1))
        meta["cached"] = False
        return meta
    finally:
        admin.dispose()


def main() -> int:
    """Prepare one engine's databases and print their description as JSON (last line)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("engine", choices=("sqlite", "postgresql"))
    parser.add_argument(
        "--pg-url", default=PG_DEFAULT, help="an admin connection to the PostgreSQL server"
    )
    args = parser.parse_args()
    key = cache_key()
    meta = prepare_sqlite(key) if args.engine == "sqlite" else prepare_postgresql(key, args.pg_url)
    print(json.dumps(meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())

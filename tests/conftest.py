"""Test fixtures: a fresh app and database per test, factories, and network guards.

The database is SQLite (a file per xdist worker, so threads and processes can
share it) unless ``TEST_DATABASE_URL`` points at PostgreSQL, in which case each
xdist worker gets its own database created next to the given one.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


# --------------------------------------------------------------------------- network guard

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_local(address) -> bool:
    if isinstance(address, str | bytes):  # unix socket
        return True
    host = address[0] if isinstance(address, tuple) else address
    return host in ("localhost", "::1") or str(host).startswith("127.") or host == "0.0.0.0"


def _guarded_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address):
        raise RuntimeError(f"tests must not reach the network (tried {address!r})")
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address):
        raise RuntimeError(f"tests must not reach the network (tried {address!r})")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Any test that would really call a provider fails instead."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)


# --------------------------------------------------------------------------- database


def _worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _run_id() -> str:
    """This run's id, shared by its xdist workers: two runs at once never share a database."""
    return (os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"p{os.getpid()}")[:8]


_CREATED: list[str] = []  # PostgreSQL databases this process made, dropped when it ends


def fresh_postgres_database(suffix: str) -> str | None:
    """A new empty PostgreSQL database next to ``TEST_DATABASE_URL`` (None when not PostgreSQL)."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not (base and base.startswith("postgresql")):
        return None
    url = sa.engine.make_url(base)
    name = f"{url.database}_{suffix}_{_run_id()}_{_worker_id()}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    if name not in _CREATED:
        _CREATED.append(name)
    return url.set(database=name).render_as_string(hide_password=False)


def pytest_sessionfinish(session, exitstatus):
    """Drop the PostgreSQL databases this process made (each run names its own)."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not (_CREATED and base and base.startswith("postgresql")):
        return
    admin = sa.create_engine(sa.engine.make_url(base), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for name in _CREATED:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except sa.exc.OperationalError:  # the server went away: nothing left to tidy
        pass
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    """The database this test process uses (created empty, schema built once)."""
    result = fresh_postgres_database("run")
    if result is None:
        result = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    os.environ["SWITCHBOARD_TEST_DB"] = result
    _create_schema(result)
    return result


def _create_schema(url: str) -> None:
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True} | _test_overrides())
    with app.app_context():
        upgrade(directory=str(Path(__file__).resolve().parents[1] / "migrations"))
        db.engine.dispose()


def _test_overrides() -> dict:
    return {}


def _wipe(db) -> None:
    """Empty every table between tests (fast on both databases), and the intake's own
    SQLite file, where webhook bodies wait beside a file database."""
    from app.models import WebhookIntake
    from app.runtime import intake

    intake.write(WebhookIntake.__table__.delete())
    engine = db.engine
    tables = [t.name for t in db.metadata.sorted_tables]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in reversed(tables):
                conn.execute(sa.text(f"DELETE FROM {name}"))


@pytest.fixture
def app(database_url, tmp_path, monkeypatch):
    """A fresh app bound to the test database, with an empty database."""
    monkeypatch.setenv("SWITCHBOARD_ENV", "testing")
    from app import create_app
    from app.extensions import db, limiter

    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "UPLOAD_DIR": str(tmp_path / "attachments"),
            "MESSENGER_GRAPH_URL": "http://graph.fake",
            "WHATSAPP_GRAPH_URL": "http://whatsapp.fake",
            "INSTAGRAM_GRAPH_URL": "http://graph.instagram.fake",
            "TWILIO_API_URL": "http://twilio.fake",
            "TWILIO_MESSAGING_URL": "http://messaging.twilio.fake",
            "GBM_API_URL": "http://gbm.fake",
            # the fake providers and their media hosts (plain HTTP allowed for those only)
            "ATTACHMENT_HOSTS": "http://graph.fake, http://twilio.fake, http://gbm.fake, "
            "http://media.fake, cdn.fbsbx.test, http://whatsapp.fake, "
            "http://graph.instagram.fake",
            "SERVER_NAME": None,
        }
    )
    with app.app_context():
        _wipe(db)
        limiter.reset()
        yield app
        db.session.remove()
        _wipe(db)
        db.engine.dispose()


@pytest.fixture
def client(app):
    """Flask test client; each request authenticates afresh, as separate requests do.

    The test's app context stays pushed, so requests share its ``g``: without
    this, Flask-Login would keep the first request's user (possibly detached
    after ``db.session.remove()``) for every later request, whatever its token,
    and a second client would be handed the first one's CSRF token.
    """
    from flask import g
    from flask.testing import FlaskClient

    class Client(FlaskClient):
        def open(self, *args, **kwargs):
            g.pop("_login_user", None)
            g.pop("csrf_token", None)  # Flask-WTF's per-request token, from this client's session
            g.pop("sb_token_user", None)
            return super().open(*args, **kwargs)

    app.test_client_class = Client
    return app.test_client()


@pytest.fixture
def session(app):
    """The app's database session."""
    from app.extensions import db

    return db.session


# --------------------------------------------------------------------------- factories


class Factory:
    """Small builders for test data, through the real models."""

    def __init__(self, app) -> None:
        from app.extensions import db

        self.db = db
        self.n = 0

    def _next(self) -> int:
        self.n += 1
        return self.n

    def user(
        self,
        role: str = "agent",
        name: str | None = None,
        email: str | None = None,
        password: str = "correct horse battery",
        **kw,
    ):
        from app.models import User

        n = self._next()
        user = User(
            name=name or f"{role.title()} {n}",
            email=email or f"{role}{n}@example.com",
            role=role,
            **kw,
        )
        user.set_password(password)
        self.db.session.add(user)
        self.db.session.commit()
        return user

    def token(self, user) -> str:
        from app.models import ApiToken

        row, clear = ApiToken.issue(user)
        self.db.session.add(row)
        self.db.session.commit()
        return clear

    def headers(self, user) -> dict:
        return {"Authorization": f"Bearer {self.token(user)}"}

    def inbox(self, channel: str = "messenger", members=(), settings=None, **config):
        """An inbox of ``channel``: made-up settings, ``config`` overriding them."""
        from app import channels
        from app.models import Inbox, InboxMember

        n = self._next()
        defaults = {
            "messenger": {
                "page_id": f"PAGE{n}",
                "page_token": f"page-token-{n}",
                "app_secret": f"app-secret-{n}",
                "verify_token": f"verify-{n}",
            },
            "sms": {
                "provider": "twilio",
                "number": f"+1415555{n:04d}",
                "account_sid": "AC" + "1" * 32,
                "auth_token": f"auth-token-{n}",
            },
            "email": {
                "address": f"support{n}@shop.example",
                "smtp_host": "127.0.0.1",
                "smtp_port": 2525,
                "smtp_security": "none",
            },
            "whatsapp": {
                "phone_number_id": f"10654035224{n:04d}",
                "waba_id": f"10229012934{n:04d}",
                "access_token": f"wa-token-{n}",
                "app_secret": f"wa-app-secret-{n}",
                "verify_token": f"wa-verify-{n}",
            },
            "gbm": {
                "agent": f"brands/b{n}/agents/a{n}",
                "client_token": f"client-token-{n}",
                "service_account": {},
            },
        }.get(channel, {})  # another channel (a test's own): its settings come in ``config``
        defaults.update(config)
        route_key, alt_route_key = channels.get(channel).route_keys(defaults)
        inbox = Inbox(
            channel=channel,
            name=f"{channel} inbox {n}",
            config=defaults,
            route_key=route_key,
            alt_route_key=alt_route_key,
            settings=settings or {},
        )
        self.db.session.add(inbox)
        self.db.session.flush()
        for user in members:
            self.db.session.add(InboxMember(inbox_id=inbox.id, user_id=user.id))
        self.db.session.commit()
        return inbox

    def inbound(
        self,
        inbox,
        contact: str = "customer-1",
        text: str = "Hello",
        at=None,
        external_id: str | None = None,
        **kw,
    ):
        """Ingest one customer message through the real ingest path."""
        from app.clock import now
        from app.inbox.ingest import ingest
        from connectors.base import InboundMessage

        ev = InboundMessage(
            inbox_key=inbox.route_key,
            external_id=external_id or f"m-{self._next()}",
            contact_id=contact,
            sent_at=at or now(),
            text=text,
            **kw,
        )
        result = ingest(self.db.session, inbox, [ev])
        from app.models import Message

        return self.db.session.get(Message, result.created[0]) if result.created else None


@pytest.fixture
def make(app):
    """Factories for users, tokens, inboxes and inbound messages."""
    return Factory(app)


@pytest.fixture
def captured_events(app):
    """Committed live events, in order."""
    from app.inbox import events

    got: list = []

    def sink(batch):
        got.extend(batch)

    events.add_sink(sink)
    yield got
    events.remove_sink(sink)


@pytest.fixture
def count_queries(app):
    """Count SQL statements: ``with count_queries() as q: ...; q.count``."""
    from app.extensions import db

    @contextlib.contextmanager
    def counter():
        class Box:
            count = 0
            statements: list[str] = []

        box = Box()

        def before(conn, cursor, statement, params, context, executemany):
            box.count += 1
            box.statements.append(statement)

        sa.event.listen(db.engine, "before_cursor_execute", before)
        try:
            yield box
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", before)

    return counter


# --------------------------------------------------------------------------- live server


class LiveServer:
    """The real app served over HTTP + WebSocket on a random local port."""

    def __init__(self, app) -> None:
        from werkzeug.serving import make_server

        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def live_server(app):
    """Serve ``app`` on a random port for browser and Socket.IO tests."""
    server = LiveServer(app).start()
    yield server
    server.stop()


def pytest_collection_modifyitems(config, items):
    """Keep corpus tests honest: they skip (with a reason) when the corpus is absent."""
    for item in items:
        if "corpus" in item.keywords and not CORPUS.exists():
            item.add_marker(pytest.mark.skip(reason=f"shared corpus not found at {CORPUS}"))

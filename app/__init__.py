"""Switchboard: one live inbox for Messenger, Google Business Messages, SMS and email."""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask, current_app, jsonify, request
from sqlalchemy import event

from app import prepared, urls
from app.db import sqlite_pragmas
from config import BASE_DIR, CONFIGS, INSTANCE_DIR, env_bool


def create_app(config: dict[str, Any] | str | None = None) -> Flask:
    """Build the app. ``config`` is an environment name or a dict of overrides."""
    app = Flask(
        __name__,
        instance_path=str(INSTANCE_DIR),
        template_folder=str(BASE_DIR / "templates"),
        static_folder="static",
    )
    env = config if isinstance(config, str) else os.environ.get("SWITCHBOARD_ENV", "development")
    cfg_cls = CONFIGS[env]
    cfg_cls.check()
    app.config.from_object(cfg_cls)
    if isinstance(config, dict):
        app.config.update(config)
    os.makedirs(app.instance_path, exist_ok=True)
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("alembic", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    if app.config.get("PROXY_COUNT"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)
    register_extensions(app)
    register_domain()
    register_event_payloads()
    register_blueprints(app)
    app.before_request(_remember_base_url)
    from app.web import headers

    headers.init_app(app)
    register_cli(app)
    register_errors(app)
    if env_bool("SWITCHBOARD_QUERY_COUNT", False):
        register_query_count(app)
    return app


def _remember_base_url() -> None:
    """``before_request``: keep the URL we are called at, for the background worker."""
    urls.remember_seen(current_app.extensions, request.host_url)


def _end_read_only(exc) -> None:
    """An app context ends: a transaction that only read ends with COMMIT, keeping the
    connection's prepared statements (``app.prepared``). Registered after Flask-SQLAlchemy,
    so it runs before the session is closed (which rolls back what is left)."""
    from app.extensions import db

    if exc is None and db.session.registry.has():
        prepared.end_read_only(db.session())


def register_query_count(app: Flask) -> None:
    """Benchmarks (``SWITCHBOARD_QUERY_COUNT=1``): every response says ``X-Query-Count``.

    Counts the SQL statements the request ran, from the first ``before_request``
    to the response (what teardown does afterwards is not counted).
    """
    from flask import g, has_app_context

    from app.extensions import db

    def count(*_args) -> None:
        if has_app_context():
            g.sb_query_count = g.get("sb_query_count", 0) + 1

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", count)

    @app.after_request
    def query_count_header(response):
        response.headers["X-Query-Count"] = str(g.get("sb_query_count", 0))
        return response


def register_extensions(app: Flask) -> None:
    """Initialise the extension objects of ``app.extensions``."""
    from app.extensions import babel, csrf, db, limiter, login, migrate, socketio

    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite"):
        opts = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        opts.setdefault("connect_args", {}).update({"timeout": 30, "check_same_thread": False})
        opts["pool_pre_ping"] = (
            False  # a local file: nothing to ping, one statement saved per request
        )
        if ":memory:" not in uri and uri not in ("sqlite://", "sqlite:///"):
            # connections are cheap to keep and costly to open (pragmas): keep one per busy
            # thread instead of closing the overflow after every burst
            opts.setdefault("pool_size", 20)
            opts.setdefault("max_overflow", 20)
        else:  # one shared in-memory connection (a static pool): no pool to size
            opts.pop("pool_size", None)
            opts.pop("max_overflow", None)
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = opts
    elif uri.startswith("postgresql"):
        # the app's queries read a few index pages each: starting parallel workers for
        # them (a trigram search, a year's report) costs more than it saves, and under
        # load it takes the cores that other requests wait for
        opts = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        args = opts.setdefault("connect_args", {})
        args["options"] = (
            args.get("options", "") + " -c max_parallel_workers_per_gather=0"
        ).strip()
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = opts
    db.init_app(app)
    from app.models.schema import include_object

    migrate.init_app(
        app,
        db,
        directory=str(BASE_DIR / "migrations"),
        render_as_batch=True,
        include_object=include_object,
    )
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite" and not event.contains(
            engine, "connect", sqlite_pragmas
        ):
            event.listen(engine, "connect", sqlite_pragmas)
            engine.dispose()
        prepared.install(engine)
    app.teardown_appcontext(_end_read_only)
    csrf.init_app(app)
    limiter.init_app(app)
    limiter.request_filter(_never_limited)
    login.init_app(app)
    login.login_view = "auth.login"
    babel.init_app(app, locale_selector=_select_locale)
    from app import realtime
    from app.realtime import serving
    from app.realtime.origins import origin_check

    socketio.init_app(
        app,
        message_queue=app.config.get("REDIS_URL"),
        channel=app.config["SOCKETIO_CHANNEL"],
        async_mode=app.config["SOCKETIO_ASYNC_MODE"] or serving.async_mode(),
        cors_allowed_origins=origin_check(app),  # the app's own pages only
        logger=False,
        engineio_logger=False,
    )
    serving.install(socketio.server)
    app.wsgi_app = serving.SocketCap(app.wsgi_app, socketio.server.eio, app.config["MAX_SOCKETS"])
    realtime.init_app(app)


def _never_limited() -> bool:
    """Webhooks and ``/healthz`` are exempt from rate limits: skip the limiter's work at once.

    Their blueprint and view are marked exempt too, but the limiter would still
    resolve every request's limits first (a tenth of a webhook's time in Flask).
    """
    return request.path.startswith(("/webhooks/", "/healthz"))


def _select_locale() -> str:
    from flask_login import current_user

    langs = _languages()
    chosen = request.args.get("lang")
    if chosen in langs:
        return chosen
    if getattr(current_user, "is_authenticated", False) and current_user.locale in langs:
        return current_user.locale
    from flask import session

    if session.get("lang") in langs:
        return session["lang"]
    return request.accept_languages.best_match(langs) or "en"


def _languages() -> list[str]:
    return current_app.config["LANGUAGES"]


def register_domain() -> None:
    """Connect the domain's signal receivers (assignment, automation, notifications, hooks).

    Notifications read whether mail is on, and its delay, from the running app's config.
    """
    from app.inbox import notifications, wiring
    from app.runtime import notify_mail

    wiring.connect()
    notifications.use_mail_settings(notify_mail.mail_settings)


def register_event_payloads() -> None:
    """Tell the event bus which API objects the live events of models carry.

    The domain marks changed conversations and messages; the bus serialises them
    once per transaction with these (the web layer's API objects).
    """
    from app.inbox import events
    from app.models import Conversation, Message
    from app.web import schemas

    events.serialiser(Conversation, schemas.conversation_dict)
    events.serialiser(Message, schemas.message_dict)


def register_blueprints(app: Flask) -> None:
    """Pages, auth, the JSON API and the webhooks."""
    from app.web import accounts, admin, api, auth, oauth, pages, webhooks

    app.register_blueprint(auth.bp)
    app.register_blueprint(accounts.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(oauth.bp)


def register_cli(app: Flask) -> None:
    """``flask users|inboxes|demo|worker`` commands."""
    from app import cli

    cli.register(app)


def register_errors(app: Flask) -> None:
    """JSON errors for the API and webhooks, pages elsewhere."""
    from werkzeug.exceptions import HTTPException

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.path.startswith(("/api/", "/webhooks/")):
            code = (exc.name or "error").lower().replace(" ", "_")
            body = {"error": {"code": code, "message": exc.description or exc.name}}
            return jsonify(body), exc.code
        return exc

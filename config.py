"""Settings read from the environment, one class per environment.

``create_app`` picks the class from ``SWITCHBOARD_ENV`` (development by default,
``production`` under gunicorn deployments, ``testing`` for the test suite).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("INSTANCE_PATH", BASE_DIR / "instance"))

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    """Parse a boolean environment variable strictly; anything odd is an error."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name} must be one of 1/0/true/false/yes/no/on/off, not {raw!r}")


def env_int(name: str, default: int) -> int:
    """Parse an integer environment variable."""
    raw = os.environ.get(name)
    return default if raw in (None, "") else int(raw)


# RSS per connected socket under the gevent worker: 67 KB measured (make bench, 100 -> 1,000
# sockets), budgeted at 120 KB for the buffers of a busy socket
SOCKET_BYTES = 120 * 1024
SOCKETS_FLOOR = 200
SOCKETS_CEILING = 10_000


def _available_bytes() -> int | None:
    """``MemAvailable`` from ``/proc/meminfo``, or None where there is none."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def default_max_sockets(available: int | None = None) -> int:
    """Sockets one process may hold: a quarter of the available memory, 200 at least."""
    available = _available_bytes() if available is None else available
    if not available:
        return 1000
    fit = available // 4 // SOCKET_BYTES
    return int(max(SOCKETS_FLOOR, min(SOCKETS_CEILING, fit)))


def max_sockets() -> int:
    """``MAX_SOCKETS`` from the environment, else sized from the memory available."""
    return env_int("MAX_SOCKETS", 0) or default_max_sockets()


def _instance_secret_key() -> str:
    """The development secret key, generated once into ``instance/``."""
    path = INSTANCE_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key)
    path.chmod(0o600)
    return key


class Config:
    """Settings shared by every environment."""

    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'switchboard.db'}"
    )
    # 20 kept connections: webhooks, API calls and the drainer of one busy process
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True, "pool_size": 20, "max_overflow": 20}
    REDIS_URL = os.environ.get("REDIS_URL") or None
    PUBLIC_URL = (os.environ.get("PUBLIC_URL") or "").rstrip("/") or None
    MESSENGER_GRAPH_URL = os.environ.get("MESSENGER_GRAPH_URL", "https://graph.facebook.com")
    MESSENGER_GRAPH_VERSION = os.environ.get("MESSENGER_GRAPH_VERSION", "v25.0")
    WHATSAPP_GRAPH_URL = os.environ.get("WHATSAPP_GRAPH_URL", "https://graph.facebook.com")
    INSTAGRAM_GRAPH_URL = os.environ.get("INSTAGRAM_GRAPH_URL", "https://graph.instagram.com")
    TWILIO_API_URL = os.environ.get("TWILIO_API_URL", "https://api.twilio.com")
    TWILIO_MESSAGING_URL = os.environ.get("TWILIO_MESSAGING_URL", "https://messaging.twilio.com")
    GBM_API_URL = os.environ.get("GBM_API_URL", "https://businessmessages.googleapis.com")
    RUN_BACKGROUND = env_bool("RUN_BACKGROUND", False)
    UPLOAD_DIR = os.environ.get("UPLOAD_DIR", str(INSTANCE_DIR / "attachments"))
    MAX_ATTACHMENT_BYTES = env_int("MAX_ATTACHMENT_BYTES", 25 * 1024 * 1024)
    # Customers' attachments are downloaded only from each channel's own media hosts, over
    # HTTPS, never from a private address. More hosts to trust as named, comma-separated:
    # "media.example.com", "*.example.com", "host:8443"; "http://host" also allows plain HTTP.
    ATTACHMENT_HOSTS = os.environ.get("ATTACHMENT_HOSTS", "")
    MAX_CONTENT_LENGTH = env_int("MAX_CONTENT_LENGTH", 40 * 1024 * 1024)
    # the region (ISO 3166, "BR", "FR") a contact's phone number typed without a country code
    # is read in; unset: numbers need their "+" and country code
    DEFAULT_PHONE_REGION = (os.environ.get("DEFAULT_PHONE_REGION") or "").strip().upper() or None
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_HEADERS_ENABLED = True
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per minute")  # per client address
    # per account, whatever the address: an office behind one NAT shares the first limit
    LOGIN_ACCOUNT_RATE_LIMIT = os.environ.get(
        "LOGIN_ACCOUNT_RATE_LIMIT", "10 per minute;50 per hour"
    )
    # "forgot password": per client address, and per address asked for (any answer is the same)
    FORGOT_RATE_LIMIT = os.environ.get("FORGOT_RATE_LIMIT", "5 per minute;30 per hour")
    FORGOT_ACCOUNT_RATE_LIMIT = os.environ.get("FORGOT_ACCOUNT_RATE_LIMIT", "3 per 15 minutes")
    # how many reverse proxies (nginx, a load balancer) stand in front and set X-Forwarded-*;
    # 0 trusts none of those headers (a client could forge them)
    PROXY_COUNT = env_int("PROXY_COUNT", 0)
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_DURATION = 30 * 24 * 3600  # seconds
    BABEL_DEFAULT_LOCALE = "en"
    LANGUAGES = ["en", "fr", "pt", "ar", "fa"]
    DELIVERY_POLL_SECONDS = float(os.environ.get("DELIVERY_POLL_SECONDS", "1.0"))
    # webhook intake: each process's drainer thread also sweeps this often for leftovers
    INTAKE_DRAINER = env_bool("INTAKE_DRAINER", True)
    INTAKE_SWEEP_SECONDS = float(os.environ.get("INTAKE_SWEEP_SECONDS", "2.0"))
    INTAKE_GATHER_MS = float(os.environ.get("INTAKE_GATHER_MS", "50"))  # a burst's rows, together
    DELIVERY_MAX_ATTEMPTS = env_int("DELIVERY_MAX_ATTEMPTS", 8)
    # unset: gevent in a gevent-patched process (gunicorn -k gevent), else threading
    SOCKETIO_ASYNC_MODE = os.environ.get("SOCKETIO_ASYNC_MODE") or None
    MAX_SOCKETS = max_sockets()  # Socket.IO sessions per process; more are refused with 503
    SOCKETIO_CHANNEL = os.environ.get("SOCKETIO_CHANNEL", "switchboard")
    # other origins whose pages may open the live feed (the app's own and PUBLIC_URL's always may)
    SOCKETIO_CORS_ORIGINS = [
        o.strip() for o in os.environ.get("SOCKETIO_CORS_ORIGINS", "").split(",") if o.strip()
    ]
    # notification mail to agents who are not online: smtp://host:port (smtp+starttls://, smtps://)
    NOTIFY_SMTP_URL = os.environ.get("NOTIFY_SMTP_URL") or None
    NOTIFY_FROM = os.environ.get("NOTIFY_FROM", "Switchboard <switchboard@localhost>")
    NOTIFY_EMAIL_DELAY = float(os.environ.get("NOTIFY_EMAIL_DELAY", "120"))  # seconds
    # inbox secrets (sign-in tokens) are encrypted with a key derived from this, else from
    # SECRET_KEY; several keys comma-separated: the first encrypts, all decrypt (rotation)
    INBOX_SECRETS_KEY = os.environ.get("INBOX_SECRETS_KEY") or None
    # mailboxes connected by signing in (OAuth): one app registration per provider
    MICROSOFT_CLIENT_ID = os.environ.get("MICROSOFT_CLIENT_ID") or None
    MICROSOFT_CLIENT_SECRET = os.environ.get("MICROSOFT_CLIENT_SECRET") or None
    MICROSOFT_TENANT = os.environ.get("MICROSOFT_TENANT") or "common"
    GOOGLE_CLIENT_ID = os.environ.get("GOOGLE_CLIENT_ID") or None
    GOOGLE_CLIENT_SECRET = os.environ.get("GOOGLE_CLIENT_SECRET") or None
    # the day each client secret expires (YYYY-MM-DD): admins are warned 14 days before
    MICROSOFT_CLIENT_SECRET_EXPIRES = os.environ.get("MICROSOFT_CLIENT_SECRET_EXPIRES") or None
    GOOGLE_CLIENT_SECRET_EXPIRES = os.environ.get("GOOGLE_CLIENT_SECRET_EXPIRES") or None
    TESTING = False

    @classmethod
    def check(cls) -> None:
        """Validate settings before the app starts."""


# Provider endpoints, for national clouds and local fakes: <PROVIDER>_AUTHORIZE_URL,
# _TOKEN_URL, _GRAPH_URL, _IMAP_HOST, _IMAP_PORT, _IMAP_SECURITY, _SMTP_HOST, _SMTP_PORT,
# _SMTP_SECURITY
# (unset: the provider's public ones, see connectors.email.oauth.PROVIDERS).
OAUTH_ENDPOINT_SETTINGS = tuple(
    f"{provider}_{key}"
    for provider in ("MICROSOFT", "GOOGLE")
    for key in (
        "AUTHORIZE_URL",
        "TOKEN_URL",
        "GRAPH_URL",
        "IMAP_HOST",
        "IMAP_PORT",
        "IMAP_SECURITY",
        "SMTP_HOST",
        "SMTP_PORT",
        "SMTP_SECURITY",
    )
)
for _name in OAUTH_ENDPOINT_SETTINGS:
    setattr(Config, _name, os.environ.get(_name) or None)


class DevelopmentConfig(Config):
    """The embedded default: SQLite in one process, secret key kept in instance/."""

    SECRET_KEY = os.environ.get("SECRET_KEY")

    @classmethod
    def check(cls) -> None:
        """Generate the local secret key on first start (kept in instance/)."""
        if not cls.SECRET_KEY:
            cls.SECRET_KEY = _instance_secret_key()


class ProductionConfig(Config):
    """Production: SECRET_KEY is required and cookies are secure behind HTTPS."""

    SECRET_KEY = os.environ.get("SECRET_KEY")
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE

    @classmethod
    def check(cls) -> None:
        """Refuse to start without the secrets production needs."""
        if not cls.SECRET_KEY:
            raise RuntimeError("SECRET_KEY must be set in production")


class TestingConfig(Config):
    """Test settings: a throwaway database unless TEST_DATABASE_URL is given."""

    TESTING = True
    SECRET_KEY = "test-secret-key"
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL", "sqlite://")
    WTF_CSRF_ENABLED = True
    RATELIMIT_ENABLED = True
    RUN_BACKGROUND = False
    INTAKE_DRAINER = False  # tests drain the intake themselves (intake.drain_all)
    PUBLIC_URL = None
    NOTIFY_SMTP_URL = None  # a test that mails notifications points it at a local SMTP sink

    @classmethod
    def check(cls) -> None:
        """Nothing to check for tests."""


CONFIGS = {
    "development": DevelopmentConfig,
    "production": ProductionConfig,
    "testing": TestingConfig,
}

"""A private Dovecot IMAP server for tests (Debian's ``dovecot-imapd``).

Usage::

    server = DovecotServer.start_new()      # or the ``dovecot`` fixture below
    server.append(raw_bytes)                # IMAP APPEND while it runs
    server.deliver(raw_bytes)               # drop a file into the Maildir (works while stopped)
    server.stop(); server.start()           # simulate an outage
    server.close()                          # stop and delete everything

Everything lives in a fresh directory under ``/tmp`` (not pytest's 0700
``tmp_path``, because mail processes run as ``nobody`` when the tests run as
root): config, runtime sockets, state, log and Maildir. Authentication is a
plaintext ``passwd-file`` with one user, by password or by SASL XOAUTH2 with the
password as the bearer token (:meth:`DovecotServer.set_password` changes it, as
a refreshed access token would); given an ``introspection_url``, an ``oauth2``
passdb also takes XOAUTH2 tokens that URL says are active (RFC 7662), as a
provider's IMAP server does; the server listens on 127.0.0.1 on a
free port with no TLS. Tests skip when ``/usr/sbin/dovecot`` is missing.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"

_OAUTH2 = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {d}/oauth2.conf.ext
}}
"""

_OAUTH2_EXT = """\
introspection_mode = post
introspection_url = {url}
username_attribute = username
active_attribute = active
active_value = true
force_introspection = yes
"""

_CONFIG = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2
mail_location = maildir:{d}/mail/%u
{users}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
{oauth2}userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


def dovecot_available() -> bool:
    """True when a Dovecot binary is installed."""
    return os.path.exists(DOVECOT) and os.access(DOVECOT, os.X_OK)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DovecotServer:
    """One private Dovecot instance (see the module docstring)."""

    def __init__(
        self, user: str = "alice", password: str = "secret", introspection_url: str | None = None
    ) -> None:
        self.user = user
        self.password = password
        self.host = "127.0.0.1"
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="sb-dovecot-"))
        self.dir.chmod(0o755)
        self.proc: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            self.uid, self.gid = nobody.pw_uid, nobody.pw_gid
            users = ""
        else:
            self.uid, self.gid = os.geteuid(), os.getegid()
            name = pwd.getpwuid(self.uid).pw_name
            users = f"default_internal_user = {name}\ndefault_login_user = {name}\n"
        for sub in ("run", "state", "mail"):
            (self.dir / sub).mkdir()
        os.chown(self.dir / "mail", self.uid, self.gid)
        (self.dir / "passwd").write_text(f"{user}:{{PLAIN}}{password}\n")
        oauth2 = ""
        if introspection_url:  # XOAUTH2 tokens are asked about at this URL (RFC 7662)
            oauth2 = _OAUTH2.format(d=self.dir)
            (self.dir / "oauth2.conf.ext").write_text(_OAUTH2_EXT.format(url=introspection_url))
        (self.dir / "dovecot.conf").write_text(
            _CONFIG.format(
                d=self.dir, uid=self.uid, gid=self.gid, port=self.port, users=users, oauth2=oauth2
            )
        )
        self._maildir_ready = False

    @classmethod
    def start_new(cls, **kwargs) -> DovecotServer:
        """Create, start and return a server."""
        server = cls(**kwargs)
        server.start()
        return server

    # -- lifecycle -------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        """Start Dovecot in the foreground and wait for its IMAP greeting."""
        if self.proc is not None:
            return
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.dir / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dovecot exited early:\n{self.log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not start:\n{self.log()}")

    def stop(self) -> None:
        """Stop Dovecot (its master takes the child processes down with it)."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None
        deadline = time.monotonic() + 5  # wait until the port is really closed
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                time.sleep(0.05)
            except OSError:
                break

    def close(self) -> None:
        """Stop the server and delete its directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def set_password(self, password: str) -> None:
        """Accept ``password`` (or, with XOAUTH2, this access token) from now on."""
        self.password = password
        (self.dir / "passwd").write_text(f"{self.user}:{{PLAIN}}{password}\n")

    def log(self) -> str:
        """Dovecot's log so far (for failure messages)."""
        path = self.dir / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- mail ------------------------------------------------------------------
    @property
    def config(self) -> dict[str, object]:
        """An email inbox config pointing at this server."""
        return {
            "address": f"{self.user}@shop.example",
            "imap_host": self.host,
            "imap_port": self.port,
            "imap_user": self.user,
            "imap_password": self.password,
            "imap_security": "none",
            "imap_folder": "INBOX",
        }

    @contextlib.contextmanager
    def client(self) -> Iterator[imaplib.IMAP4]:
        """A logged-in imaplib client (closed afterwards)."""
        c = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            c.login(self.user, self.password)
            yield c
        finally:
            with contextlib.suppress(Exception):
                c.logout()

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        """IMAP APPEND ``raw`` (the server must be running)."""
        with self.client() as c:
            typ, data = c.append(folder, None, None, raw)
            if typ != "OK":
                raise RuntimeError(f"APPEND failed: {data}")

    def deliver(self, raw: bytes) -> Path:
        """Write ``raw`` into the user's Maildir ``new/``, as an MTA would (server up or down)."""
        base = self.dir / "mail" / self.user
        for sub in ("", "new", "cur", "tmp"):
            path = base / sub
            if not path.exists():
                path.mkdir(mode=0o700)
                os.chown(path, self.uid, self.gid)
        name = f"{time.time():.6f}.{uuid.uuid4().hex}.sbtest"
        tmp = base / "tmp" / name
        tmp.write_bytes(raw)
        os.chown(tmp, self.uid, self.gid)
        final = base / "new" / name
        tmp.rename(final)
        return final

    def flags(self, folder: str = "INBOX") -> dict[int, str]:
        """``{uid: flags}`` of every message, read with EXAMINE (changes nothing)."""
        with self.client() as c:
            c.select(folder, readonly=True)
            typ, data = c.uid("FETCH", "1:*", "(UID FLAGS)")
        out: dict[int, str] = {}
        for item in data or []:
            if not isinstance(item, bytes):
                continue
            text = item.decode()
            uid = int(text.split("UID ", 1)[1].split()[0].rstrip(")"))
            out[uid] = text.split("FLAGS (", 1)[1].split(")", 1)[0]
        return out


@pytest.fixture
def dovecot() -> Iterator[DovecotServer]:
    """A running private Dovecot; skips when Dovecot is not installed."""
    if not dovecot_available():
        pytest.skip("Dovecot is not installed (apt-get install dovecot-imapd)")
    server = DovecotServer.start_new()
    try:
        yield server
    finally:
        server.close()

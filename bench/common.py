"""Shared pieces of the benchmark suite: servers, percentiles, signatures, memory.

Everything runs on 127.0.0.1. A :class:`Server` is the real Switchboard web
process started as the README documents it (``python wsgi.py``, or ``gunicorn
wsgi:app``: one gevent worker either way), in its own process group, and always
stopped again.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache"
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable

PAGE_ID = "104800000000777"
APP_SECRET = "bench-app-secret"
EMAIL_ADDRESS = "support@bench.example"
SECRET_KEY = "bench-secret-key-not-for-production"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sign(raw: bytes, secret: str = APP_SECRET) -> str:
    """Meta's ``X-Hub-Signature-256`` for a body."""
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def percentile(values: list[float], pct: float) -> float | None:
    """The ``pct`` percentile (nearest rank) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return ordered[rank - 1]


def server_env(database_url: str, tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a benchmarked process: the given database, quiet logs."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "SWITCHBOARD_TEST", "FLASK_"))
    }
    env.update(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": SECRET_KEY,
            "INSTANCE_PATH": str(tmp / "instance"),
            "UPLOAD_DIR": str(tmp / "attachments"),
            "RUN_BACKGROUND": "0",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            # never called: no delivery worker runs in the benchmarked processes
            "MESSENGER_GRAPH_URL": "http://127.0.0.1:9",
            "TWILIO_API_URL": "http://127.0.0.1:9",
            "GBM_API_URL": "http://127.0.0.1:9",
        }
    )
    env.pop("REDIS_URL", None)
    env.update(extra)
    return env


SERVER_KINDS = ("wsgi", "gunicorn")


class Server:
    """One web process of Switchboard on a free port.

    ``kind`` is ``wsgi`` (``python wsgi.py``: the embedded default, which runs
    gunicorn with ``gunicorn.conf.py``) or ``gunicorn`` (``gunicorn wsgi:app`` with
    ``SWITCHBOARD_ENV=production``); both serve through one gevent worker.
    """

    def __init__(self, kind: str, env: dict[str, str], log: Path, threads: int = 0) -> None:
        if kind not in SERVER_KINDS:
            raise ValueError(f"unknown server kind {kind!r}")
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        env = dict(env)
        if kind == "wsgi":
            env.update(HOST="127.0.0.1", PORT=str(self.port))
            args = [PYTHON, "wsgi.py"]
            self.label = "python wsgi.py (gevent)"
        else:
            env.setdefault("SWITCHBOARD_ENV", "production")
            args = [PYTHON, "-m", "gunicorn", "-b", f"127.0.0.1:{self.port}"]
            args += ["--log-level", "warning", "wsgi:app"]
            self.label = "gunicorn gevent -w 1"
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_healthy(self, timeout: float = 90) -> None:
        """Block until ``/healthz`` answers 200 (raising with the log if the process died)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited early:\n{self.output()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.label} did not become healthy:\n{self.output()[-3000:]}")

    def web_pid(self) -> int:
        """The pid that serves requests: gunicorn's single worker, not the arbiter."""
        children = _children(self.proc.pid)
        return children[0] if children else self.proc.pid

    def memory(self) -> dict[str, float]:
        """``VmHWM`` (peak RSS) and ``VmRSS`` of the web process, in MB."""
        return read_memory(self.web_pid())

    def output(self) -> str:
        """What the process printed so far."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL after 10 s."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def read_memory(pid: int) -> dict[str, float]:
    """Peak (``VmHWM``) and current (``VmRSS``) resident memory of ``pid`` in MB, from /proc."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by ``pid`` (from /proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

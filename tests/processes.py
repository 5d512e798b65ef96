"""Start real Switchboard processes (web, worker) for multi-process tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_url_or_skip() -> str:
    """The test Redis URL, skipping (or failing in CI) when Redis is not reachable."""
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI_REQUIRE_SERVICES"):
            pytest.fail(f"Redis is required in CI but not reachable at {url}: {exc}")
        pytest.skip(f"Redis not reachable at {url} ({exc}); set TEST_REDIS_URL to run")
    return url


def postgres_url_or_skip() -> str:
    """The PostgreSQL server of ``TEST_DATABASE_URL``; callers create their own database on it.

    Skips when the suite runs on SQLite (CI runs it again on PostgreSQL, where it
    must run); with ``CI_REQUIRE_SERVICES`` set, an unreachable PostgreSQL fails.
    """
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        pytest.skip(
            "needs PostgreSQL: runs when TEST_DATABASE_URL=postgresql+psycopg://... "
            "(the PostgreSQL pass of .ci/run)"
        )
    import sqlalchemy as sa

    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI_REQUIRE_SERVICES"):
            pytest.fail(f"PostgreSQL is required in CI but not reachable at {url}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {url} ({exc})")
    finally:
        engine.dispose()
    return url


class Process:
    """A child process running a Switchboard command, stopped on exit."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self.log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def stop(self) -> None:
        """Terminate (then kill) the process."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()

    def output(self) -> str:
        """What the process printed so far."""
        self.log.flush()
        return self.log_path.read_text(errors="replace")


def base_env(database_url: str, **extra: str) -> dict[str, str]:
    """Environment for a child process: the test database, no background unless asked."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "SWITCHBOARD_TEST"))}
    env.update(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "multi-process-test",
            "SWITCHBOARD_ENV": "development",
            "RUN_BACKGROUND": "0",
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "WARNING",
        }
    )
    env.update(extra)
    return env


def start_web(database_url: str, tmp: Path, name: str, **extra: str) -> tuple[Process, str]:
    """``python wsgi.py`` on a free port; returns the process and its base URL."""
    port = free_port()
    env = base_env(database_url, HOST="127.0.0.1", PORT=str(port), **extra)
    proc = Process([sys.executable, "wsgi.py"], env, tmp / f"{name}.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
    except RuntimeError:
        proc.stop()  # a server that never became healthy is not left running
        raise
    return proc, url


def start_gunicorn(database_url: str, tmp: Path, name: str, **extra: str) -> tuple[Process, str]:
    """``gunicorn -b ADDR wsgi:app`` on a free port, as the README deploys it.

    It reads the project's ``gunicorn.conf.py``: one gevent worker.
    """
    port = free_port()
    env = base_env(database_url, **extra)
    args = [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "wsgi:app"]
    proc = Process(args, env, tmp / f"{name}.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
    except RuntimeError:
        proc.stop()  # a server that never became healthy is not left running
        raise
    return proc, url


def start_worker(database_url: str, tmp: Path, name: str = "worker", **extra: str) -> Process:
    """``flask --app wsgi worker``: scheduler and delivery in a separate process."""
    env = base_env(database_url, **extra)
    return Process(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker"], env, tmp / f"{name}.log"
    )


def wait_healthy(url: str, proc: Process, timeout: float = 60) -> None:
    """Wait until ``/healthz`` answers, failing with the process output if it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{proc.output()}")
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not become healthy:\n{proc.output()}")

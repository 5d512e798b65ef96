"""Sockets on one web process: API and live latency at 100, 500 and 1,000 agents, and the cap.

For each level a fresh web process (the one ``python wsgi.py`` and ``gunicorn
wsgi:app`` run: gunicorn's gevent worker) takes that many agent sockets from
client processes (``bench.live``'s raw Engine.IO clients, several processes,
tokens reused as agents with several tabs would). While they stay connected,
signed webhooks arrive at a steady rate, each one an event for every socket
(live latency: POST to arrival at each socket), and an API client asks for the
conversation list a few times a second (API latency). RSS is the web process's
while every socket is open.

The cap row starts the process with ``MAX_SOCKETS`` and attempts more sockets
than that: as many connect as the cap allows, the rest are refused at once
(503 at the handshake), and the API keeps its latency meanwhile.
"""

from __future__ import annotations

import http.client
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench import live
from bench.common import Server, percentile, server_env

LEVELS = (100, 500, 1000)
TARGETS = {"sockets": 1000, "api_p95_ms": 50, "live_p99_ms": 100, "rss_mb": 400}
API_PATH = "/api/v1/conversations?limit=25"


class ApiProbe:
    """Asks for the conversation list ``rate`` times a second, on new connections, from a thread."""

    def __init__(self, url: str, token: str, rate: float = 5.0) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.headers = {"Authorization": f"Bearer {token}"}
        self.rate = rate
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self, *_args) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(15)

    def _loop(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                conn.request("GET", API_PATH, headers=self.headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    self.latencies.append((time.monotonic() - t0) * 1000)
                else:
                    self.failures += 1
            except (OSError, http.client.HTTPException):
                self.failures += 1
            finally:
                conn.close()
            self._stop.wait(max(0.0, 1 / self.rate - (time.monotonic() - t0)))


def _level(server: Server, tokens: list[str], attempted: int, args) -> dict:
    probe = ApiProbe(server.url, tokens[0])
    memory: dict = {}
    lv = live.run(
        server.url,
        [tokens[i % len(tokens)] for i in range(attempted)],
        args.sockets_rate,
        args.sockets_seconds,
        processes=args.sockets_processes,
        during=lambda _r: memory.update(server.memory()),
        server_pid=server.web_pid(),
        on_connected=probe.start,
    )
    probe.stop()
    refusals = [e for e in lv.errors if "503" in e]
    return {
        "attempted": attempted,
        "connected": lv.sockets,
        "refused": attempted - lv.sockets,
        "refusal_sample": refusals[:1],
        "connect_seconds": round(lv.connect_seconds, 1),
        "api_requests": len(probe.latencies),
        "api_failures": probe.failures,
        "api_p50_ms": _r(percentile(probe.latencies, 50)),
        "api_p95_ms": _r(percentile(probe.latencies, 95)),
        "live_p50_ms": _r(lv.pct(50)),
        "live_p99_ms": _r(lv.pct(99)),
        "delivered": lv.delivered,
        "expected": lv.expected,
        "rss_mb": _r(memory.get("VmRSS")),
        "server_cpu_s": _r(lv.server_cpu_seconds, 2),
        "errors": [e for e in lv.errors if "503" not in e][:3],
    }


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def run(engine, args, tmp: Path, log) -> dict:
    """Every level, then the cap row; each on a fresh web process over a fresh database."""
    tokens = engine.meta["template"]["agent_tokens"]
    out: dict = {"levels": [], "cap": None}
    url = engine.fresh("sockets-work")
    for attempted in args.sockets_levels:
        env = server_env(url, tmp, MAX_SOCKETS=str(max(attempted, 1000) + 100))
        log(f"{engine.name}: {attempted} sockets on one web process")
        with Server("gunicorn", env, tmp / f"{engine.name}-sockets-{attempted}.log") as server:
            server.wait_healthy()
            idle = server.memory().get("VmRSS")
            row = _level(server, tokens, attempted, args)
            row["idle_rss_mb"] = _r(idle)
            out["server"] = server.label
        out["levels"].append(row)
    cap, attempted = args.sockets_cap, args.sockets_cap + args.sockets_cap // 4
    log(f"{engine.name}: cap {cap}, {attempted} sockets attempted")
    env = server_env(url, tmp, MAX_SOCKETS=str(cap))
    with Server("gunicorn", env, tmp / f"{engine.name}-sockets-cap.log") as server:
        server.wait_healthy()
        out["cap"] = {"cap": cap, **_level(server, tokens, attempted, args)}
    engine.drop_work()
    return out


def verdicts(data: dict) -> dict[str, bool]:
    """The targets of one web process, from the largest level and the cap row."""
    checks: dict[str, bool] = {}
    top = max(data.get("levels") or [], key=lambda r: r["attempted"], default=None)
    if top is not None and top["attempted"] >= TARGETS["sockets"]:
        checks["8 sockets: 1,000 connected"] = top["connected"] >= TARGETS["sockets"]
        checks["8 sockets: API p95 <= 50 ms at 1,000"] = (top["api_p95_ms"] or 1e9) <= TARGETS[
            "api_p95_ms"
        ]
        checks["8 sockets: live p99 <= 100 ms at 1,000"] = (top["live_p99_ms"] or 1e9) <= TARGETS[
            "live_p99_ms"
        ]
        checks["8 sockets: RSS <= 400 MB at 1,000"] = (top["rss_mb"] or 1e9) <= TARGETS["rss_mb"]
    cap = data.get("cap")
    if cap:
        checks["8 cap: exactly the cap connects, the rest refused"] = (
            cap["connected"] == cap["cap"] and cap["refused"] == cap["attempted"] - cap["cap"]
        )
        checks["8 cap: API p95 <= 50 ms while full"] = (cap["api_p95_ms"] or 1e9) <= TARGETS[
            "api_p95_ms"
        ]
    return checks


def print_rows(data: dict, fmt) -> None:
    """The sockets table."""
    print()
    print(f"8 sockets on one web process ({data.get('server', '-')})")
    print(
        f"  {'sockets':<22}{'connected':>10}{'refused':>9}{'API p50':>9}{'API p95':>9}"
        f"{'live p50':>10}{'live p99':>10}{'delivered':>16}{'RSS MB':>8}"
    )
    rows = [(str(r["attempted"]), r) for r in data.get("levels", [])]
    if data.get("cap"):
        rows.append((f"cap {data['cap']['cap']}, {data['cap']['attempted']} tried", data["cap"]))
    for label, r in rows:
        print(
            f"  {label:<22}{r['connected']:>10}{r['refused']:>9}{fmt(r['api_p50_ms']):>9}"
            f"{fmt(r['api_p95_ms']):>9}{fmt(r['live_p50_ms']):>10}{fmt(r['live_p99_ms']):>10}"
            f"{str(r['delivered']) + '/' + str(r['expected']):>16}{fmt(r['rss_mb']):>8}"
        )

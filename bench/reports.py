"""Figure 7 of ``make bench``: the reports over a year of data at 100k conversations / 1M messages.

On the cached ``1m`` database (``demo seed`` spreads its conversations and their report
facts over the last 365 days), the lead asks for each report over the last 365 days in
a time zone with a daylight-saving change; p50/p95/p99 over sequential requests.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import load
from bench.common import Server, cpu_seconds, server_env

TARGET_P95_MS = 200
REPORTS = ("overview", "agents", "badges")
TZ = "Europe/Paris"


def paths(today=None) -> dict[str, str]:
    """The three reports over the last 365 days (today included)."""
    today = today or datetime.now(UTC).date()
    start = today - timedelta(days=364)
    span = f"from={start.isoformat()}&to={today.isoformat()}&tz={TZ}"
    return {name: f"/api/v1/reports/{name}?{span}" for name in REPORTS}


def run(engine, kind: str, args, tmp: Path, log, r1) -> dict:
    """p50/p95/p99 of each report on the 1M database, one request at a time."""
    url = engine.meta["urls"]["1m"]
    token = engine.meta["1m"]["lead_token"]
    out: dict = {}
    env = server_env(url, tmp, SWITCHBOARD_QUERY_COUNT="1")
    with Server(kind, env, tmp / f"{engine.name}-reports.log") as server:
        server.wait_healthy()
        for name, path in paths().items():
            log(f"{engine.name}: report {name} x {args.report_requests}")
            params = {"path": path, "token": token}
            load.drive(server.url, "get", params, 3, 1, args.max_seconds, processes=1)
            cpu0 = cpu_seconds(server.web_pid())
            res = load.drive(
                server.url, "get", params, args.report_requests, 1, args.max_seconds, processes=1
            )
            cpu = cpu_seconds(server.web_pid()) - cpu0
            out[name] = {
                "requests": res.requests,
                "failed": res.failed,
                "p50_ms": r1(res.pct(50), 2),
                "p95_ms": r1(res.pct(95), 2),
                "p99_ms": r1(res.pct(99), 2),
                "server_cpu_ms": r1(cpu * 1000 / max(1, res.requests), 2),
                "queries_max": max(res.query_counts) if res.query_counts else None,
            }
    return out


def verdicts(reports: dict) -> dict:
    """Every report's p95 within the target, none failed."""
    return {
        f"7 reports p95 <= {TARGET_P95_MS} ms at 1M (a year)": all(
            v["p95_ms"] is not None and v["p95_ms"] <= TARGET_P95_MS and not v["failed"]
            for v in reports.values()
        )
    }


def print_rows(reports: dict, fmt) -> None:
    """The figure's rows in the engine's table."""
    print()
    print(
        f"{'7 reports, a year at 1M messages, ms':<50}"
        f"{'p50':>8}{'p95':>8}{'p99':>8}{'CPU':>7}{'SQL':>5}{'failed':>8}"
    )
    for name, v in reports.items():
        print(
            f"  {name:<48}{fmt(v['p50_ms']):>8}{fmt(v['p95_ms']):>8}{fmt(v['p99_ms']):>8}"
            f"{fmt(v['server_cpu_ms']):>7}{fmt(v['queries_max']):>5}{v['failed']:>8}"
        )

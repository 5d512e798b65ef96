"""``make bench``: start the real server, measure it from separate processes, print a table.

For each database engine (SQLite, the embedded default, and PostgreSQL at
127.0.0.1:5432 in a dedicated ``switchboard_bench`` database) and each server
(``python wsgi.py`` and ``gunicorn wsgi:app``, both one gevent worker), on a fresh copy of a
prepared database:

1. ``GET /healthz`` then signed single-message Messenger POSTs, N concurrent senders:
   msg/s, p50/p99, and the ratio to ``/healthz`` throughput of the same run;
2. 100-message batched Messenger POSTs: msg/s;
4. live latency: agent sockets connected, webhooks at a steady rate, time from
   POST to ``message.created`` at every socket: p50/p99;
5. 2,000 generated emails (60% new, 40% replies) through the raw-MIME route: msg/s
   (on the first server only, unless ``--email-all-servers``);
6. peak RSS (``VmHWM``) of a fresh web process holding 100 sockets under traffic.

Every figure also records the server's CPU time per request (from /proc), the
number that stays meaningful when other work shares the machine.

And once per engine, on cached seeded databases (``demo seed``): 3. the
conversation list with counts at 10k and 100k conversations / 1M messages,
p50/p95/p99 over 200 sequential requests for the default filter and for
unassigned + waiting longest, with SQL statements per request
(``SWITCHBOARD_QUERY_COUNT=1`` makes the server report ``X-Query-Count``); and the
search over every message (``status=all&q=``) for a rare word, a common word, a name
and a phone number;
7. the lead's reports (overview, agents, badges) over the last 365 days on the 1M
database: p50/p95/p99 (:mod:`bench.reports`).
8. on the first engine, sockets on one web process (:mod:`bench.sockets`): 100, 500 and
   1,000 agent sockets from separate client processes, API p95 and live p99 (an event
   to every socket) with each, RSS; and the cap row (``MAX_SOCKETS=200``, 250 tried).

Prints a table per engine and the targets that hold, and writes
``bench/results/<timestamp>.json``. Loopback only; every loop is bounded by
count and time; every process started is stopped.

    .venv/bin/python bench/run.py [--db sqlite,postgresql] [--servers wsgi,gunicorn]
                                  [--only ingest,live,email,rss,lists,reports,sockets]
                                  [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import live, load, payloads  # noqa: E402
from bench import reports as report_bench  # noqa: E402
from bench import sockets as socket_bench  # noqa: E402
from bench.common import (  # noqa: E402
    PYTHON,
    RESULTS,
    SERVER_KINDS,
    Server,
    cpu_seconds,
    percentile,
    server_env,
)
from bench.prepare import PG_DEFAULT, PG_NAMES  # noqa: E402

WORK_DB = "switchboard_bench"
PARTS = ("ingest", "live", "email", "rss", "lists", "reports", "sockets")
LIST_PATHS = {
    "default": "/api/v1/conversations",
    "unassigned_waiting": "/api/v1/conversations?assignee=unassigned&sort=waiting_longest",
}
#: The full-history search (any status), for the four kinds of text agents type: a word in a
#: few messages, a word in a fifth of them, a customer's name (typed without its accent) and
#: a phone number as people write it. Also an email address (not a target).
SEARCH_KINDS = {
    "search_rare_word": "q=4242",
    "search_common_word": "q=order",
    "search_name": "q=Chloe%20Dubois",
    "search_phone": "q=%28415%29%20000-4242",
}
SEARCH_PATHS = {
    name: f"/api/v1/conversations?status=all&{query}"
    for name, query in (SEARCH_KINDS | {"search_email": "q=customer4242%40"}).items()
}
TARGETS = {
    "ingest_msg_s": 1000,
    "ingest_vs_healthz": 0.5,
    "batch_msg_s": 5000,
    "list_p95_ms": 20,
    "list_queries": 5,  # user, page, identities, labels, counts
    "list_growth": 1.5,
    "search_p95_ms": 50,
    "live_p99_ms": 100,
    "rss_mb": 150,
}


def log(text: str) -> None:
    """Progress on stderr, so stdout stays the table."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def r1(value: float | None, digits: int = 1) -> float | None:
    """Round for the JSON file."""
    return None if value is None else round(value, digits)


# --------------------------------------------------------------------------- databases


class Engine:
    """One database engine: its prepared databases and fresh working copies."""

    def __init__(self, name: str, tmp: Path, pg_url: str) -> None:
        self.name = name
        self.tmp = tmp
        self.pg_url = pg_url
        self.meta: dict = {}

    def prepare(self) -> None:
        """Build or reuse the cached databases (``bench.prepare`` in a subprocess)."""
        env = server_env("sqlite://", self.tmp)
        started = time.monotonic()
        done = subprocess.run(
            [PYTHON, "-m", "bench.prepare", self.name, "--pg-url", self.pg_url],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"preparing {self.name} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
            )
        self.meta = json.loads(done.stdout.strip().splitlines()[-1])
        self.meta["prepare_seconds"] = round(time.monotonic() - started, 1)

    def fresh(self, label: str) -> str:
        """A new working database copied from the template; its URL."""
        if self.name == "sqlite":
            path = self.tmp / f"{label}.db"
            shutil.copyfile(self.meta["paths"]["template"], path)
            return f"sqlite:///{path}"
        import sqlalchemy as sa

        admin = sa.create_engine(self.pg_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{WORK_DB}" WITH (FORCE)'))
                conn.execute(
                    sa.text(f'CREATE DATABASE "{WORK_DB}" TEMPLATE "{PG_NAMES["template"]}"')
                )
        finally:
            admin.dispose()
        return (
            sa.engine.make_url(self.pg_url)
            .set(database=WORK_DB)
            .render_as_string(hide_password=False)
        )

    def drop_work(self) -> None:
        """Remove the PostgreSQL working database (SQLite copies go with the temp dir)."""
        if self.name != "postgresql":
            return
        import sqlalchemy as sa

        admin = sa.create_engine(self.pg_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{WORK_DB}" WITH (FORCE)'))
        finally:
            admin.dispose()


def count_rows(url: str) -> dict[str, int]:
    """Inbound messages and conversations in a database (the sanity check of a run)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                "inbound": conn.scalar(
                    sa.text("SELECT count(*) FROM messages WHERE direction = 'inbound'")
                ),
                "conversations": conn.scalar(sa.text("SELECT count(*) FROM conversations")),
            }
    finally:
        engine.dispose()


def wait_threaded(url: str, timeout: float = 120.0) -> float:
    """Seconds until the webhook intake is empty (every stored body threaded into the inbox)."""
    import sqlalchemy as sa

    from app.runtime.intake import intake_url_for  # SQLite: the bodies wait in a file of their own

    engine = sa.create_engine(intake_url_for(url) or url)
    started = time.monotonic()
    try:
        with engine.connect() as conn:
            while time.monotonic() - started < timeout:
                waiting = conn.scalar(
                    sa.text("SELECT count(*) FROM webhook_intake WHERE state <> 'failed'")
                )
                conn.rollback()
                if not waiting:
                    break
                time.sleep(0.02)
    finally:
        engine.dispose()
    return time.monotonic() - started


def pg_reachable(url: str) -> str | None:
    """None when PostgreSQL answers, else why not."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return None
    except Exception as exc:  # noqa: BLE001
        return str(exc).splitlines()[0]
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- scenarios


def write_benchmarks(engine: Engine, kind: str, args, tmp: Path) -> dict:
    """Figures 1, 2, 4 and 5 on one server over a fresh database, then 6 on a new process."""
    tpl = engine.meta["template"]
    url = engine.fresh(f"{kind}-work")
    out: dict = {}
    env = server_env(url, tmp)
    with Server(kind, env, tmp / f"{engine.name}-{kind}.log") as server:
        server.wait_healthy()
        out["server"] = server.label
        if "ingest" in args.only:
            out.update(_ingest(server, url, engine.name, kind, args))
        if "live" in args.only:
            log(
                f"{engine.name}/{kind}: live latency, {args.live_sockets} sockets, "
                f"{args.live_rate}/s for {args.live_seconds} s"
            )
            lv = live.run(
                server.url,
                tpl["agent_tokens"][: args.live_sockets],
                args.live_rate,
                args.live_seconds,
                server_pid=server.web_pid(),
                client=args.socket_client,
            )
            out["live"] = _live_summary(lv)
        out["memory_after_run"] = server.memory()
        if "email" in args.only and (kind == args.servers[0] or args.email_all_servers):
            out["email"] = _email(server, url, tpl["email_token"], engine.name, kind, args)
    if "rss" in args.only:
        log(f"{engine.name}/{kind}: memory with {args.rss_sockets} sockets (fresh process)")
        with Server(kind, env, tmp / f"{engine.name}-{kind}-rss.log") as server:
            server.wait_healthy()
            idle = server.memory()
            probe: dict = {}
            lv = live.run(
                server.url,
                tpl["agent_tokens"][: args.rss_sockets],
                args.live_rate,
                args.rss_seconds,
                during=lambda _r: probe.update(server.memory()),
                server_pid=server.web_pid(),
                client=args.socket_client,
            )
            out["rss"] = {
                "sockets": lv.sockets,
                "idle_mb": r1(idle.get("VmRSS")),
                "peak_mb": r1(probe.get("VmHWM")),
                "current_mb": r1(probe.get("VmRSS")),
                "live_p50_ms": r1(lv.pct(50)),
                "live_p99_ms": r1(lv.pct(99)),
                "delivered": lv.delivered,
                "expected": lv.expected,
                "server_cpu_ms_per_msg": r1(
                    lv.server_cpu_seconds * 1000 / max(1, lv.sent - lv.failed_posts), 1
                ),
            }
    engine.drop_work()
    return out


def _ingest(server: Server, url: str, eng: str, kind: str, args) -> dict:
    """Figures 1 and 2: /healthz, single-message POSTs, 100-message batches; rows checked."""
    out: dict = {}
    run_id = f"{int(time.time() * 1000) % 10**8:08d}"
    log(f"{eng}/{kind}: /healthz x {args.healthz}, {args.senders} senders")
    cpu0 = cpu_seconds(server.web_pid())
    hz = load.drive(server.url, "healthz", {}, args.healthz, args.senders, args.max_seconds)
    cpu_hz = cpu_seconds(server.web_pid()) - cpu0
    log(f"{eng}/{kind}: single-message POSTs x {args.singles}")
    before = count_rows(url)["inbound"]
    cpu0 = cpu_seconds(server.web_pid())
    single = load.drive(
        server.url, "single", {"run": run_id}, args.singles, args.senders, args.max_seconds
    )
    tail = wait_threaded(url)
    cpu_single = cpu_seconds(server.web_pid()) - cpu0
    out["healthz"] = _load_summary(hz)
    out["healthz"]["server_cpu_ms_per_req"] = r1(cpu_hz * 1000 / max(1, hz.ok), 2)
    out["single"] = _load_summary(single)
    out["single"].update(_threaded(single, tail, cpu_single, 1))
    out["single"]["vs_healthz"] = r1(single.rate() / hz.rate(), 2) if hz.rate() else None
    log(f"{eng}/{kind}: 100-message batches x {args.batches}, {args.batch_senders} senders")
    cpu0 = cpu_seconds(server.web_pid())
    batch = load.drive(
        server.url, "batch", {"run": run_id}, args.batches, args.batch_senders, args.max_seconds
    )
    tail = wait_threaded(url)
    cpu_batch = cpu_seconds(server.web_pid()) - cpu0
    out["batch"] = _load_summary(batch, per_request=100)
    out["batch"].update(_threaded(batch, tail, cpu_batch, 100))
    stored = count_rows(url)["inbound"] - before
    expected = single.ok + batch.ok * 100
    out["stored_check"] = {"inbound": stored, "expected": expected, "ok": stored == expected}
    return out


def _email(server: Server, url: str, token: str, eng: str, kind: str, args) -> dict:
    """Figure 5: generated raw emails through the inbound route, threading checked."""
    log(f"{eng}/{kind}: email x {args.emails}, {args.email_senders} senders")
    before = count_rows(url)
    cpu0 = cpu_seconds(server.web_pid())
    mail = load.drive(
        server.url,
        "email",
        {"token": token, "run": f"{int(time.time()) % 100000:05d}", "total": args.emails},
        args.emails,
        args.email_senders,
        args.email_seconds,
    )
    tail = wait_threaded(url)  # a busy process answers 202 and threads the message after
    cpu_mail = cpu_seconds(server.web_pid()) - cpu0
    after = count_rows(url)
    out = _load_summary(mail)
    out.update(_threaded(mail, tail, cpu_mail, 1))
    out["stored"] = after["inbound"] - before["inbound"]
    out["new_conversations"] = after["conversations"] - before["conversations"]
    plan = payloads.email_plan(args.emails)[: mail.requests]
    out["expected_new_conversations"] = sum(1 for parent in plan if parent is None)
    return out


def list_benchmarks(engine: Engine, kind: str, args, tmp: Path) -> dict:
    """Figure 3 on the two seeded databases, for the agent and the lead."""
    out: dict = {}
    for size in ("10k", "1m"):
        url = engine.meta["urls"][size]
        meta = engine.meta[size]
        env = server_env(url, tmp, SWITCHBOARD_QUERY_COUNT="1")
        with Server(kind, env, tmp / f"{engine.name}-list-{size}.log") as server:
            server.wait_healthy()
            for who in args.list_users:
                token = meta["agent_token"] if who == "agent" else meta["lead_token"]
                for name, path in (LIST_PATHS | SEARCH_PATHS).items():
                    count = args.list_requests if name in LIST_PATHS else args.search_requests
                    log(f"{engine.name}: list {size} {who} {name} x {count}")
                    params = {"path": path, "token": token}
                    warm = 20 if name in LIST_PATHS else 5
                    load.drive(server.url, "get", params, warm, 1, args.max_seconds, processes=1)
                    cpu0 = cpu_seconds(server.web_pid())
                    res = load.drive(
                        server.url, "get", params, count, 1, args.max_seconds, processes=1
                    )
                    cpu = cpu_seconds(server.web_pid()) - cpu0
                    out[f"{size}/{who}/{name}"] = {
                        "requests": res.requests,
                        "failed": res.failed,
                        "p50_ms": r1(res.pct(50), 2),
                        "p95_ms": r1(res.pct(95), 2),
                        "p99_ms": r1(res.pct(99), 2),
                        "server_cpu_ms": r1(cpu * 1000 / max(1, res.requests), 2),
                        "queries_max": max(res.query_counts) if res.query_counts else None,
                        "queries_median": sorted(res.query_counts)[len(res.query_counts) // 2]
                        if res.query_counts
                        else None,
                    }
    for who in args.list_users:
        for name in LIST_PATHS | SEARCH_PATHS:
            small, large = out[f"10k/{who}/{name}"], out[f"1m/{who}/{name}"]
            if small["p95_ms"] and large["p95_ms"]:
                large["growth_vs_10k"] = round(large["p95_ms"] / small["p95_ms"], 2)
    return out


def _threaded(res: load.LoadResult, tail: float, cpu: float, per_request: int) -> dict:
    """End to end: messages per second until the last one was threaded into the inbox.

    ``per_s`` counts messages answered 2xx (durably stored in the intake); this
    adds the time the intake took afterwards to thread what was still waiting.
    """
    messages = res.ok * per_request
    return {
        "threaded_tail_s": r1(tail, 2),
        "threaded_per_s": r1(messages / (res.wall + tail)) if res.wall + tail > 0 else None,
        "server_cpu_ms_per_msg": r1(cpu * 1000 / max(1, messages), 3),
    }


def _load_summary(res: load.LoadResult, per_request: int = 1) -> dict:
    return {
        "requests": res.requests,
        "failed": res.failed,
        "seconds": r1(res.wall, 2),
        "per_s": r1(res.rate(per_request)),
        "req_per_s": r1(res.rate()),
        "p50_ms": r1(res.pct(50), 2),
        "p99_ms": r1(res.pct(99), 2),
        "stopped_by_time": res.stopped_by_time,
        "statuses": res.statuses,
        "errors": res.errors[:3],
    }


def _live_summary(res: live.LiveResult) -> dict:
    return {
        "sockets": res.sockets,
        "transports": res.transports,
        "posts": res.sent,
        "failed_posts": res.failed_posts,
        "delivered": res.delivered,
        "expected": res.expected,
        "p50_ms": r1(res.pct(50), 2),
        "p99_ms": r1(res.pct(99), 2),
        "max_ms": r1(max(res.latencies), 1) if res.latencies else None,
        "post_p50_ms": r1(percentile(res.post_latencies, 50), 2),
        "connect_seconds": r1(res.connect_seconds, 1),
        "errors": res.errors,
        "closed_early": res.closed_early,
        "unseen_messages": res.unseen_messages,
        "partly_seen_messages": res.partly_seen_messages,
        "server_cpu_ms_per_msg": r1(
            res.server_cpu_seconds * 1000 / max(1, res.sent - res.failed_posts), 1
        ),
        "client_cpu_seconds": r1(res.client_cpu_seconds, 2),
    }


# --------------------------------------------------------------------------- report


def _fmt(value, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{unit}"
    return f"{value:,}{unit}"


def _threaded_cell(figure: dict) -> str:
    return f"{_fmt(figure['threaded_per_s'])} ({_fmt(figure['threaded_tail_s'], '', 2)})"


def verdicts(result: dict) -> dict:
    """Which targets hold, per engine and server."""
    out: dict = {}
    for eng, data in result["engines"].items():
        for kind, w in data.get("servers", {}).items():
            checks = {}
            if "single" in w:
                single, batch = w["single"], w["batch"]
                checks["1 ingest >= 1,000 msg/s"] = (single["per_s"] or 0) >= TARGETS[
                    "ingest_msg_s"
                ]
                checks["1 ingest >= 50% of /healthz"] = (single["vs_healthz"] or 0) >= TARGETS[
                    "ingest_vs_healthz"
                ]
                checks["2 batches >= 5,000 msg/s"] = (batch["per_s"] or 0) >= TARGETS["batch_msg_s"]
                # the same figures counted until the last message was threaded into the inbox
                checks["1 threaded into the inbox >= 1,000 msg/s"] = (
                    single.get("threaded_per_s") or 0
                ) >= TARGETS["ingest_msg_s"]
                checks["2 threaded into the inbox >= 5,000 msg/s"] = (
                    batch.get("threaded_per_s") or 0
                ) >= TARGETS["batch_msg_s"]
            if "live" in w:
                lv = w["live"]
                checks["4 live p99 <= 100 ms, all delivered"] = (
                    lv["p99_ms"] is not None
                    and lv["p99_ms"] <= TARGETS["live_p99_ms"]
                    and lv["delivered"] == lv["expected"]
                )
            if "rss" in w:
                checks["6 RSS <= 150 MB (100 sockets)"] = (
                    w["rss"]["peak_mb"] is not None and w["rss"]["peak_mb"] <= TARGETS["rss_mb"]
                )
            out[f"{eng}/{kind}"] = checks
        lists = data.get("lists")
        if lists:
            lists = {k: v for k, v in lists.items() if k.rsplit("/", 1)[-1] in LIST_PATHS}
            large = [v for k, v in lists.items() if k.startswith("1m/")]
            checks = {
                "3 list p95 <= 20 ms at 1M": all(
                    v["p95_ms"] is not None and v["p95_ms"] <= TARGETS["list_p95_ms"] for v in large
                ),
                "3 list <= 5 queries": all(
                    (v["queries_max"] or 99) <= TARGETS["list_queries"] for v in lists.values()
                ),
                "3 list p95 1M <= 1.5x 10k": all(
                    (v.get("growth_vs_10k") or 99) <= TARGETS["list_growth"] for v in large
                ),
            }
            searches = {
                k: v for k, v in data["lists"].items() if k.rsplit("/", 1)[-1] in SEARCH_KINDS
            }
            if searches:
                checks["3 search p95 <= 50 ms at 1M (rare, common, name, phone)"] = all(
                    v["p95_ms"] is not None and v["p95_ms"] <= TARGETS["search_p95_ms"]
                    for k, v in searches.items()
                    if k.startswith("1m/")
                )
            out[f"{eng}/lists"] = checks
        if data.get("reports"):
            out[f"{eng}/reports"] = report_bench.verdicts(data["reports"])
        if data.get("sockets"):
            out[f"{eng}/sockets"] = socket_bench.verdicts(data["sockets"])
    return out


def print_table(result: dict) -> None:
    """The human-readable report."""
    print()
    print(
        f"Switchboard benchmark {result['started']}  ({result['machine']['cpus']} CPUs, "
        f"load {result['machine']['load_before']} before, {result['machine']['load_after']} "
        f"after, Python {result['machine']['python']})"
    )
    for eng, data in result["engines"].items():
        print()
        if "skipped" in data:
            print(f"== {eng}: skipped ({data['skipped']})")
            continue
        prep = data["prepare"]
        print(
            f"== {eng}  (databases {'cached' if prep['cached'] else 'built'} in "
            f"{prep['seconds']} s; seed 10k {prep['seed_10k_s']} s, top-up to 1M "
            f"{prep['seed_1m_s']} s when built)"
        )
        servers = data.get("servers", {})
        kinds = list(servers)
        if kinds:
            header = f"{'figure':<50}" + "".join(f"{servers[k]['server'][:26]:>28}" for k in kinds)
            print(header)
            print("-" * len(header))
            rows = [
                ("1 GET /healthz req/s", lambda w: _fmt(w["healthz"]["per_s"])),
                (
                    "1   server CPU ms per /healthz",
                    lambda w: _fmt(w["healthz"]["server_cpu_ms_per_req"], "", 2),
                ),
                ("1 single-message POST msg/s", lambda w: _fmt(w["single"]["per_s"])),
                (
                    "1   p50 / p99 ms",
                    lambda w: f"{_fmt(w['single']['p50_ms'])} / {_fmt(w['single']['p99_ms'])}",
                ),
                ("1   ratio to /healthz", lambda w: _fmt(w["single"]["vs_healthz"], "", 2)),
                (
                    "1   threaded into the inbox msg/s (tail s)",
                    lambda w: _threaded_cell(w["single"]),
                ),
                (
                    "1   server CPU ms per message",
                    lambda w: _fmt(w["single"]["server_cpu_ms_per_msg"], "", 2),
                ),
                ("2 100-message batches msg/s", lambda w: _fmt(w["batch"]["per_s"])),
                (
                    "2   threaded into the inbox msg/s (tail s)",
                    lambda w: _threaded_cell(w["batch"]),
                ),
                (
                    "2   server CPU ms per message",
                    lambda w: _fmt(w["batch"]["server_cpu_ms_per_msg"], "", 3),
                ),
                (
                    "2   p50 / p99 ms per batch",
                    lambda w: f"{_fmt(w['batch']['p50_ms'])} / {_fmt(w['batch']['p99_ms'])}",
                ),
                (
                    "  stored exactly once",
                    lambda w: (
                        "yes"
                        if w["stored_check"]["ok"]
                        else f"NO {w['stored_check']['inbound']}/{w['stored_check']['expected']}"
                    ),
                ),
                (
                    "4 live POST->socket p50 / p99 ms",
                    lambda w: f"{_fmt(w['live']['p50_ms'])} / {_fmt(w['live']['p99_ms'])}",
                ),
                (
                    "4   sockets, delivered/expected",
                    lambda w: (
                        f"{w['live']['sockets']}, {w['live']['delivered']}/{w['live']['expected']}"
                    ),
                ),
                (
                    "4   server CPU ms per live message",
                    lambda w: _fmt(w["live"]["server_cpu_ms_per_msg"]),
                ),
                (
                    "5 email raw MIME msg/s",
                    lambda w: _fmt(w["email"]["per_s"]) if "email" in w else "-",
                ),
                (
                    "5   threaded into the inbox msg/s (tail s)",
                    lambda w: _threaded_cell(w["email"]) if "email" in w else "-",
                ),
                (
                    "5   server CPU ms per message",
                    lambda w: _fmt(w["email"]["server_cpu_ms_per_msg"]) if "email" in w else "-",
                ),
                (
                    "5   stored, new conv. (expected new)",
                    lambda w: (
                        f"{w['email']['stored']}, "
                        f"{w['email']['new_conversations']} ({w['email']['expected_new_conversations']})"
                        if "email" in w
                        else "-"
                    ),
                ),
                (
                    "6 peak RSS MB, 100 sockets (idle)",
                    lambda w: f"{_fmt(w['rss']['peak_mb'])} ({_fmt(w['rss']['idle_mb'])})",
                ),
                (
                    "6   live p50 / p99 ms with 100 sockets",
                    lambda w: f"{_fmt(w['rss']['live_p50_ms'])} / {_fmt(w['rss']['live_p99_ms'])}",
                ),
            ]
            for label, get in rows:
                cells = []
                for k in kinds:
                    try:
                        cells.append(get(servers[k]))
                    except (KeyError, TypeError):
                        cells.append("-")
                if any(c != "-" for c in cells):
                    print(f"{label:<50}" + "".join(f"{c:>28}" for c in cells))
        lists = data.get("lists")
        if lists:
            print()
            print(
                f"{'3 conversation list, sequential requests, ms':<50}"
                f"{'p50':>8}{'p95':>8}{'p99':>8}{'CPU':>7}{'SQL':>5}{'1M/10k p95':>12}"
            )
            for key, v in lists.items():
                print(
                    f"  {key:<48}{_fmt(v['p50_ms']):>8}{_fmt(v['p95_ms']):>8}"
                    f"{_fmt(v['p99_ms']):>8}{_fmt(v['server_cpu_ms']):>7}"
                    f"{_fmt(v['queries_max']):>5}{_fmt(v.get('growth_vs_10k'), 'x', 2):>12}"
                )
        if data.get("reports"):
            report_bench.print_rows(data["reports"], _fmt)
        if data.get("sockets"):
            socket_bench.print_rows(data["sockets"], _fmt)
    print()
    print("Targets (one web process, this machine; 1 and 2 count messages answered 2xx, i.e.")
    print("durably stored in the intake, and separately until threaded into the inbox):")
    for scope, checks in result["targets"].items():
        for name, ok in checks.items():
            print(f"  {'PASS' if ok else 'MISS'}  {scope:<22} {name}")
    print(f"\nTotal {result['seconds']:.0f} s. JSON: {result['json']}")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (every count and time bound can be changed)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default="sqlite,postgresql", help="engines: sqlite,postgresql")
    p.add_argument("--servers", default="wsgi,gunicorn", help="servers: wsgi,gunicorn")
    p.add_argument("--list-server", default="wsgi", choices=SERVER_KINDS)
    p.add_argument("--list-users", default="agent,lead", help="agent,lead")
    p.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", PG_DEFAULT),
        help="admin URL of the PostgreSQL server",
    )
    p.add_argument("--senders", type=int, default=8)
    p.add_argument("--healthz", type=int, default=3000)
    p.add_argument("--singles", type=int, default=3000)
    p.add_argument("--batches", type=int, default=60)
    p.add_argument("--batch-senders", type=int, default=4)
    p.add_argument("--live-sockets", type=int, default=50)
    p.add_argument("--live-rate", type=float, default=20.0, help="webhooks per second")
    p.add_argument("--live-seconds", type=float, default=8.0)
    p.add_argument("--emails", type=int, default=2000)
    p.add_argument("--email-senders", type=int, default=4)
    p.add_argument(
        "--socket-client",
        default="raw",
        choices=live.CLIENTS,
        help="raw: light Engine.IO client; socketio: python-socketio Client",
    )
    p.add_argument("--rss-sockets", type=int, default=100)
    p.add_argument("--rss-seconds", type=float, default=4.0)
    p.add_argument("--list-requests", type=int, default=200)
    p.add_argument("--search-requests", type=int, default=60)
    p.add_argument("--report-requests", type=int, default=40)
    p.add_argument(
        "--max-seconds",
        type=float,
        default=15.0,
        help="time bound of every load run (emails: --email-seconds)",
    )
    p.add_argument("--email-seconds", type=float, default=60.0)
    p.add_argument(
        "--email-all-servers",
        action="store_true",
        help="measure email on every server, not only the first",
    )
    p.add_argument(
        "--only", default=",".join(PARTS), help=f"figures to measure, among {','.join(PARTS)}"
    )
    p.add_argument("--sockets-levels", default="100,500,1000", help="sockets per level")
    p.add_argument("--sockets-processes", type=int, default=6, help="socket-client processes")
    p.add_argument("--sockets-rate", type=float, default=2.0, help="events to all per second")
    p.add_argument("--sockets-seconds", type=float, default=10.0)
    p.add_argument("--sockets-cap", type=int, default=200, help="MAX_SOCKETS of the cap row")
    p.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    args = p.parse_args(argv)
    if args.quick:
        args.healthz = args.singles = 300
        args.batches, args.emails, args.list_requests = 6, 200, 30
        args.search_requests = args.report_requests = 10
        args.live_seconds, args.rss_seconds = 2.0, 1.0
    args.db = [d.strip() for d in args.db.split(",") if d.strip()]
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    args.list_users = [u.strip() for u in args.list_users.split(",") if u.strip()]
    args.only = {o.strip() for o in args.only.split(",") if o.strip()}
    if args.only - set(PARTS):
        p.error(f"--only takes {','.join(PARTS)}")
    args.sockets_levels = [int(n) for n in args.sockets_levels.split(",") if n.strip()]
    bad = set(args.servers) - set(SERVER_KINDS)
    if bad or set(args.db) - {"sqlite", "postgresql"}:
        p.error(f"unknown server or database in {args.servers} / {args.db}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run everything asked for; print the table; write the JSON file."""
    args = parse_args(argv)
    started = time.monotonic()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result: dict = {
        "started": stamp,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": os.getloadavg()[0].__round__(2),
        },
        "config": {
            k: sorted(v) if isinstance(v, set) else v
            for k, v in vars(args).items()
            if k != "pg_url"
        },
        "targets_defined": TARGETS,
        "engines": {},
    }
    tmp = Path(tempfile.mkdtemp(prefix="sb-bench-"))
    try:
        for name in args.db:
            data: dict = {}
            result["engines"][name] = data
            if name == "postgresql":
                why = pg_reachable(args.pg_url)
                if why:
                    data["skipped"] = f"PostgreSQL not reachable at {args.pg_url}: {why}"
                    log(data["skipped"])
                    continue
            engine = Engine(name, tmp, args.pg_url)
            log(f"{name}: preparing databases (cached after the first run)")
            engine.prepare()
            meta = engine.meta
            data["prepare"] = {
                "cached": meta["cached"],
                "seconds": meta["prepare_seconds"],
                "seed_10k_s": meta["10k"]["seed_seconds"],
                "seed_1m_s": meta["1m"]["seed_seconds"],
                "seed_output_1m": meta["1m"]["seed_output"],
            }
            data["servers"] = {}
            if args.only & {"ingest", "live", "email", "rss"}:
                for kind in args.servers:
                    data["servers"][kind] = write_benchmarks(engine, kind, args, tmp)
            if "lists" in args.only:
                data["list_server"] = args.list_server
                data["lists"] = list_benchmarks(engine, args.list_server, args, tmp)
            if "reports" in args.only:
                data["reports"] = report_bench.run(engine, args.list_server, args, tmp, log, r1)
            if "sockets" in args.only and name == args.db[0]:
                data["sockets"] = socket_bench.run(engine, args, tmp, log)
    except BaseException as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        result["machine"]["load_after"] = os.getloadavg()[0].__round__(2)
        result["seconds"] = round(time.monotonic() - started, 1)
        result["targets"] = verdicts(result) if "error" not in result else {}
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{stamp}.json"
        result["json"] = str(path.relative_to(ROOT))
        path.write_text(json.dumps(result, indent=1))
        shutil.rmtree(tmp, ignore_errors=True)
    print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

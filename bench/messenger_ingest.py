"""Messenger webhook ingest throughput against the real server (``python wsgi.py``).

Starts Switchboard on a spare loopback port with a throwaway SQLite database, connects
one Facebook Page with the CLI, then measures:

- ``GET /healthz`` (the floor: what the server does with no work at all);
- signed single-message ``POST /webhooks/messenger`` from N concurrent senders;
- signed 100-message batch POSTs (several entries, as Meta batches them).

Prints messages per second and p50/p99 latency per request, and checks that every
message was stored exactly once. Loopback only, bounded loops; nothing is left running.

    .venv/bin/python bench/messenger_ingest.py [--senders 8] [--messages 2000]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
PAGE_ID = "104800000000777"
APP_SECRET = "bench-app-secret"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sign(raw: bytes) -> str:
    """``X-Hub-Signature-256`` for a body."""
    return "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()


def message_item(psid: str, mid: str, ts: int) -> dict:
    """One customer text message in Meta's shape."""
    return {
        "sender": {"id": psid},
        "recipient": {"id": PAGE_ID},
        "timestamp": ts,
        "message": {"mid": mid, "text": f"Hello, where is order {mid[-6:]}?"},
    }


def body(items: list[dict], per_entry: int = 25) -> bytes:
    """A webhook body, items split over several entries as Meta batches them."""
    entries = [
        {"id": PAGE_ID, "time": int(time.time() * 1000), "messaging": items[i : i + per_entry]}
        for i in range(0, len(items), per_entry)
    ]
    return json.dumps({"object": "page", "entry": entries}).encode()


def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of ``values``, in the same unit."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def run_senders(n_threads: int, jobs: list, send) -> tuple[float, list[float], int]:
    """Spread ``jobs`` over ``n_threads`` threads (a requests.Session each).

    Returns wall time, per-request latencies in ms, and the number of failed requests.
    """
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    chunks = [jobs[i::n_threads] for i in range(n_threads)]

    def worker(chunk: list) -> None:
        local, failed = [], 0
        with requests.Session() as http:
            for job in chunk:
                started = time.perf_counter()
                ok = send(http, job)
                local.append((time.perf_counter() - started) * 1000)
                failed += 0 if ok else 1
        with lock:
            latencies.extend(local)
            failures[0] += failed

    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks if c]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, latencies, failures[0]


def report(label: str, wall: float, latencies: list[float], messages: int, failed: int) -> None:
    """One result line."""
    print(
        f"{label:<44} {len(latencies):>6} req {messages / wall:>9.1f} msg/s "
        f"{len(latencies) / wall:>8.1f} req/s  p50 {percentile(latencies, 50):>7.1f} ms  "
        f"p99 {percentile(latencies, 99):>7.1f} ms  failed {failed}",
        flush=True,
    )


def main() -> int:
    """Start the server, run the three measurements, stop the server."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--senders", type=int, default=8, help="concurrent senders")
    parser.add_argument("--messages", type=int, default=2000, help="single-message POSTs")
    parser.add_argument("--batches", type=int, default=40, help="100-message batch POSTs")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--healthz", type=int, default=2000, help="GET /healthz requests")
    parser.add_argument("--customers", type=int, default=200, help="distinct PSIDs")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sb-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
        "SECRET_KEY": "bench-secret-key",
        "INSTANCE_PATH": str(tmp / "instance"),
        "UPLOAD_DIR": str(tmp / "attachments"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "RUN_BACKGROUND": "0",
        "MESSENGER_GRAPH_URL": "http://127.0.0.1:9",  # never called: no worker runs here
        "LOG_LEVEL": "WARNING",
    }
    python = sys.executable
    flask = [python, "-m", "flask", "--app", "wsgi"]
    for command in (
        ["db", "upgrade"],
        [
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
        ],
    ):
        done = subprocess.run([*flask, *command], cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            print(
                f"flask {' '.join(command[:2])} failed:\n{done.stdout}{done.stderr}",
                file=sys.stderr,
            )
            return 1
    log = open(tmp / "server.log", "w")  # noqa: SIM115 - closed in finally
    server = subprocess.Popen([python, "wsgi.py"], cwd=ROOT, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                print(f"server did not start; see {tmp / 'server.log'}", file=sys.stderr)
                return 1
            time.sleep(0.1)
        print(
            f"Switchboard at {base} (SQLite {tmp / 'bench.db'}), {args.senders} senders, "
            f"{os.cpu_count()} CPUs",
            flush=True,
        )

        def get_health(http: requests.Session, _job) -> bool:
            return http.get(f"{base}/healthz", timeout=30).status_code == 200

        wall, lat, failed = run_senders(args.senders, list(range(args.healthz)), get_health)
        report("GET /healthz", wall, lat, len(lat), failed)

        def post(http: requests.Session, raw: bytes) -> bool:
            resp = http.post(
                f"{base}/webhooks/messenger",
                data=raw,
                timeout=60,
                headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(raw)},
            )
            return resp.status_code == 200

        now_ms = int(time.time() * 1000)
        singles = [
            body([message_item(f"70110{i % args.customers:011d}", f"m_single_{i:08d}", now_ms + i)])
            for i in range(args.messages)
        ]
        wall, lat, failed = run_senders(args.senders, singles, post)
        report(f"POST 1 message x {args.senders} senders", wall, lat, len(lat), failed)

        for senders in (1, args.senders):
            batches = []
            for b in range(args.batches):
                items = [
                    message_item(
                        f"70220{(b * args.batch_size + i) % args.customers:011d}",
                        f"m_batch_{senders}_{b:05d}_{i:04d}",
                        now_ms + i,
                    )
                    for i in range(args.batch_size)
                ]
                batches.append(body(items))
            wall, lat, failed = run_senders(senders, batches, post)
            report(
                f"POST {args.batch_size}-message batch x {senders} senders",
                wall,
                lat,
                len(lat) * args.batch_size,
                failed,
            )

        replay = singles[: min(200, len(singles))]
        wall, lat, failed = run_senders(args.senders, replay, post)
        report("POST 1 message, replayed (duplicates)", wall, lat, len(lat), failed)

        with sqlite3.connect(tmp / "bench.db") as conn:
            stored = conn.execute(
                "SELECT count(*) FROM messages WHERE direction = 'inbound'"
            ).fetchone()[0]
            convs = conn.execute("SELECT count(*) FROM conversations").fetchone()[0]
        expected = args.messages + 2 * args.batches * args.batch_size
        print(
            f"stored {stored} inbound messages in {convs} conversations "
            f"(expected {expected}: {'OK' if stored == expected else 'MISMATCH'})"
        )
        if stored != expected:
            print(f"kept {tmp} for inspection")
            return 2
        shutil.rmtree(tmp, ignore_errors=True)
        return 0
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


if __name__ == "__main__":
    sys.exit(main())

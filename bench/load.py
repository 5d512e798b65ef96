"""HTTP load from separate processes, so the generator's GIL never caps the server.

:func:`drive` spreads ``count`` requests over ``senders`` keep-alive connections
held by threads in a few worker processes (started with ``spawn``); every
sender takes the next index (shared across processes) as soon as it is free. Each request
is built in the worker from its index by a named factory (see :data:`FACTORIES`),
so nothing big crosses process boundaries. Every run is bounded by its count and
by ``max_seconds``.
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bench import email_corpus, payloads
from bench.common import percentile

Request = tuple[str, str, bytes | None, dict]


def _healthz(_i: int) -> Request:
    return "GET", "/healthz", None, {}


def _factory(name: str, params: dict) -> Callable[[int], Request]:
    if name == "healthz":
        return _healthz
    if name == "single":
        return lambda i: payloads.single(params["run"], i)
    if name == "batch":
        return lambda i: payloads.batch(params["run"], i, params.get("size", 100))
    if name == "email":
        return lambda i: email_corpus.request(params["token"], params["run"], i, params["total"])
    if name == "get":
        headers = {"Authorization": f"Bearer {params['token']}"}
        return lambda i: ("GET", params["path"], None, headers)
    raise ValueError(f"unknown request factory {name!r}")


FACTORIES = ("healthz", "single", "batch", "email", "get")


@dataclass
class LoadResult:
    """What a run measured: per-request latencies (ms), wall time, failures, query counts."""

    requests: int = 0
    failed: int = 0
    wall: float = 0.0
    latencies: list[float] = field(default_factory=list)
    query_counts: list[int] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    stopped_by_time: bool = False

    @property
    def ok(self) -> int:
        """Requests answered 2xx."""
        return self.requests - self.failed

    def rate(self, per_request: int = 1) -> float:
        """Successful items per second (``per_request`` items in each request)."""
        return self.ok * per_request / self.wall if self.wall > 0 else 0.0

    def pct(self, p: float) -> float | None:
        """Latency percentile in ms."""
        return percentile(self.latencies, p)


class _Next:
    """The next request index, shared by every thread of every load process.

    Requests start in index order across all senders, so a request that must
    follow another (an email reply after its original) is never sent first.
    """

    def __init__(self, counter, count: int) -> None:
        self._counter = counter
        self._count = count

    def __iter__(self):
        return self

    def __next__(self) -> int:
        with self._counter.get_lock():
            i = self._counter.value
            if i >= self._count:
                raise StopIteration
            self._counter.value = i + 1
        return i


def _thread_loop(base: str, make, indices: _Next, deadline_after: float, go, out: list) -> None:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    lat: list[float] = []
    queries: list[int] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    failed = 0
    first = last = None
    timed_out = False
    go.wait()
    deadline = time.monotonic() + deadline_after
    for i in indices:
        if time.monotonic() > deadline:
            timed_out = True
            break
        method, path, body, headers = make(i)
        started = time.monotonic()
        first = started if first is None else first
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
            qc = resp.getheader("X-Query-Count")
            if qc is not None:
                queries.append(int(qc))
        except (OSError, http.client.HTTPException) as exc:
            status = 0
            if len(errors) < 5:
                errors.append(f"{type(exc).__name__}: {exc}")
            conn.close()
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        last = time.monotonic()
        lat.append((last - started) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
        if not 200 <= status < 300:
            failed += 1
    conn.close()
    out.append((first, last, lat, queries, statuses, errors, failed, timed_out))


def _worker(
    base: str,
    factory: str,
    params: dict,
    counter,
    count: int,
    threads_n: int,
    max_seconds: float,
    ready,
    go,
    results,
) -> None:
    make = _factory(factory, params)
    out: list = []
    indices = _Next(counter, count)
    threads = [
        threading.Thread(target=_thread_loop, args=(base, make, indices, max_seconds, go, out))
        for _ in range(threads_n)
    ]
    for t in threads:
        t.start()
    ready.put(len(threads))
    for t in threads:
        t.join()
    results.put(out)


def drive(
    base: str,
    factory: str,
    params: dict,
    count: int,
    senders: int,
    max_seconds: float,
    processes: int = 2,
) -> LoadResult:
    """Send ``count`` requests over ``senders`` concurrent connections; bounded by time too."""
    if factory not in FACTORIES:
        raise ValueError(f"unknown request factory {factory!r}")
    ctx = mp.get_context("spawn")
    processes = max(1, min(processes, senders))
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = []
    counter = ctx.Value("q", 0)  # the next index, taken by whichever sender is free
    for p in range(processes):
        threads_n = senders // processes + (1 if p < senders % processes else 0)
        proc = ctx.Process(
            target=_worker,
            daemon=True,
            args=(
                base,
                factory,
                params,
                counter,
                count,
                threads_n,
                max_seconds,
                ready,
                go,
                results,
            ),
        )
        proc.start()
        procs.append(proc)
    for _ in procs:
        ready.get(timeout=60)
    go.set()
    merged = LoadResult()
    firsts, lasts = [], []
    for _ in procs:
        for first, last, lat, queries, statuses, errors, failed, timed_out in results.get(
            timeout=max_seconds + 180
        ):
            if first is not None:
                firsts.append(first)
                lasts.append(last)
            merged.latencies += lat
            merged.query_counts += queries
            merged.failed += failed
            merged.errors += errors
            merged.stopped_by_time |= timed_out
            for status, n in statuses.items():
                merged.statuses[status] = merged.statuses.get(status, 0) + n
    for proc in procs:
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
    merged.requests = len(merged.latencies)
    merged.wall = (max(lasts) - min(firsts)) if firsts else 0.0
    return merged

"""Asking a running server whether it serves: keep-alive load (a reset while a worker
recycles is normal) and fresh connections (the evidence), every wait bounded."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from harness.host.cancel import Cancel
from harness.scenarios.server import Server, served

PROBE_TIMEOUT = 2.0
#: Probe results that mean the path itself turns new connections away.
REFUSALS = frozenset({"ENOENT", "ECONNREFUSED"})
#: Probe results that mean nobody answered: the server accepted (or not) and went quiet.
SILENT = frozenset({"timeout", "ECONNREFUSED", "empty response"})


class Load:
    """Keep-alive load with requests(-unixsocket), one session per thread; ``ok``
    counts the requests the app answered (any status but a proxy's gateway error)."""

    def __init__(self, server: Server, concurrency: int, path: str = "/") -> None:
        self.server = server
        self.url = server.url + path.lstrip("/")
        self.stop = threading.Event()
        self.ok = 0
        self.failed = 0
        self.statuses: Counter[str] = Counter()  # what answered the load: 200, 502, errors
        self._lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._worker, daemon=True) for _ in range(concurrency)
        ]

    def _worker(self) -> None:
        import requests

        proxied = self.server.proxy is not None
        with self.server.client() as session:
            while not self.stop.is_set():
                try:
                    status = str(session.get(self.url, timeout=PROBE_TIMEOUT).status_code)
                except requests.RequestException as exc:
                    status = type(exc).__name__  # a reset keep-alive connection, a vanished path
                ok = served(status, proxied)
                with self._lock:
                    self.statuses[status] += 1
                    if ok:
                        self.ok += 1
                    else:
                        self.failed += 1
                if not ok:
                    self.stop.wait(0.01)

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            if t.is_alive():
                t.join(timeout=PROBE_TIMEOUT + 0.5)


def fresh_connection(server: Server, path: str = "/", attempts: int = 3) -> str:
    """A probe that tells a refused path apart from a passing hiccup.

    A refusal (ENOENT: the path is gone; ECONNREFUSED: nobody listens), a timeout or
    an HTTP error status is final at once; a reset may be a worker recycling at that
    instant, so it is tried again on a new connection before it counts.
    """
    result = server.probe(PROBE_TIMEOUT, path)
    for _ in range(attempts - 1):
        if result == "ok" or result in REFUSALS or result in SILENT or result.startswith("HTTP"):
            break
        time.sleep(0.05)
        result = server.probe(PROBE_TIMEOUT, path)
    return result


def fresh_connections(
    server: Server, n: int, until: float, cancel: Cancel, path: str = "/"
) -> list[str]:
    """``n`` fresh connections, bounded: once one is slow to answer (or never does), the
    rest go at once, so a silent server costs one probe's wait, not twenty."""
    results: list[str] = []
    while len(results) < n:
        if time.monotonic() + PROBE_TIMEOUT > until and results:
            break
        cancel.check()
        t0 = time.monotonic()
        r = fresh_connection(server, path)
        results.append(r)
        if r == "timeout" or time.monotonic() - t0 > 0.5:
            with ThreadPoolExecutor(max_workers=n - len(results) or 1) as pool:
                results += list(
                    pool.map(lambda _: server.probe(PROBE_TIMEOUT, path), range(n - len(results)))
                )
    return results

"""Load that runs *during* an action and counts what failed (was harness/host/load.py;
no scenario uses it -- they load a server through ``ServerFixture.load()`` -- so it lives
with the tests that check it).

Why: some regressions only show under traffic -- #3394: requests dropped while the
arbiter reloads on SIGHUP (0 of ~2,400 on 20.1.0, 4-5 on 21.0.0).  A scenario wraps
its action: ``with Load(address, concurrency=8) as load: server.reload(); counts =
load.stop()``; ``counts`` is a frozen ``Counts`` a pure ``decide`` judges.

Threads of raw HTTP clients (``rawhttp``), bounded by a deadline and a request cap.
Half the threads keep their connection alive, half open a fresh one per request
(``mode`` picks one kind only).  A kept-alive connection the server closed before
answering a byte is retried once on a fresh one, as HTTP clients do for idempotent
requests; that is counted as ``retried``, not as a failure.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

from harness.host.rawhttp import RawConnection, Reply, request

MODES = ("mixed", "keepalive", "fresh")
_SAMPLES = 5


@dataclass(frozen=True)
class Counts:
    """What the load saw: every request once, in exactly one outcome."""

    requests: int
    ok: int  # 2xx
    status: int  # answered, but not 2xx (see ``statuses``)
    reset: int
    refused: int
    timeout: int
    closed: int  # the connection ended without a response (an "empty reply")
    retried: int  # stale kept-alive connections retried on a fresh one (not failures)
    connections: int
    statuses: tuple[tuple[int, int], ...]  # (non-2xx status, how many)
    samples: tuple[str, ...]  # the first few failures, "0.84s reset ECONNRESET"
    seconds: float
    capped: bool  # the request cap, not the deadline or stop(), ended it

    @property
    def failed(self) -> int:
        return self.status + self.reset + self.refused + self.timeout + self.closed

    def as_json(self) -> dict:
        return {
            "requests": self.requests,
            "ok": self.ok,
            "failed": self.failed,
            "status": self.status,
            "reset": self.reset,
            "refused": self.refused,
            "timeout": self.timeout,
            "closed": self.closed,
            "retried": self.retried,
            "connections": self.connections,
            "statuses": {str(k): v for k, v in self.statuses},
            "samples": list(self.samples),
            "seconds": round(self.seconds, 3),
            "capped": self.capped,
        }


def outcome(reply: Reply) -> str:
    """One reply as one of Counts' outcomes ("ok", "status", "reset", ...)."""
    if reply.status is not None and reply.ended in ("response", "closed"):
        return "ok" if 200 <= reply.status < 300 else "status"
    if reply.ended in ("reset", "refused", "timeout"):
        return reply.ended
    return "closed"  # closed before a status line, a size limit, or not HTTP at all


class Load:
    """Background request threads against ``address`` until ``stop()``, a deadline or a cap."""

    def __init__(
        self,
        address: str | tuple[str, int],
        concurrency: int = 4,
        deadline: float = 30.0,
        max_requests: int = 10_000,
        timeout: float = 5.0,
        path: str = "/",
        mode: str = "mixed",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.address, self.concurrency, self.timeout = address, concurrency, timeout
        self.deadline_s, self.max_requests, self.mode = deadline, max_requests, mode
        self._request = request(path)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._answered = threading.Event()
        self._tally: Counter = Counter()
        self._statuses: Counter = Counter()
        self._samples: list[str] = []
        self._threads: list[threading.Thread] = []
        self._result: Counts | None = None

    # ---------------------------------------------------------------- bookkeeping
    def _claim(self) -> bool:
        """Take one request from the cap; False when the load is over."""
        with self._lock:
            if self._stop.is_set() or time.monotonic() >= self._end:
                return False
            if self._tally["requests"] >= self.max_requests:
                self._tally["capped"] = 1
                return False
            self._tally["requests"] += 1
            return True

    def _record(self, reply: Reply) -> None:
        kind = outcome(reply)
        with self._lock:
            self._tally[kind] += 1
            if kind == "status":
                self._statuses[reply.status] += 1
            if kind != "ok" and len(self._samples) < _SAMPLES:
                at = time.monotonic() - self._start
                what = f"HTTP {reply.status}" if kind == "status" else kind
                self._samples.append(f"{at:.2f}s {what} {reply.error}".rstrip())
        self._answered.set()

    def _connect(self) -> RawConnection:
        with self._lock:
            self._tally["connections"] += 1
        return RawConnection(self.address, self.timeout)

    # -------------------------------------------------------------------- clients
    def _one(self, conn: RawConnection | None) -> tuple[Reply, RawConnection]:
        """One request, on ``conn`` when given (a reused connection) else on a fresh one."""
        if conn is not None:
            conn.send(self._request)
            reply = conn.read()
            if not (reply.empty and reply.ended in ("closed", "reset")):
                return reply, conn
            conn.close()  # stale: the server closed it between two requests
            with self._lock:
                self._tally["retried"] += 1
        conn = self._connect()
        conn.send(self._request)
        return conn.read(), conn

    def _client(self, keepalive: bool) -> None:
        conn: RawConnection | None = None
        while self._claim():
            reply, conn = self._one(conn)
            self._record(reply)
            reusable = keepalive and reply.ended == "response"
            if not reusable or (reply.header("connection") or "").lower() == "close":
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    # ----------------------------------------------------------------------- API
    def start(self) -> Load:
        """Start the threads and wait (up to ``timeout``) for a first answer of any kind."""
        self._start = time.monotonic()
        self._end = self._start + self.deadline_s
        for i in range(self.concurrency):
            keepalive = self.mode == "keepalive" or (self.mode == "mixed" and i % 2 == 0)
            t = threading.Thread(target=self._client, args=(keepalive,), daemon=True)
            t.start()
            self._threads.append(t)
        self._answered.wait(self.timeout)
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the load to end by itself (its cap or deadline); True if it did."""
        end = time.monotonic() + (
            self.deadline_s + self.timeout * 2 if timeout is None else timeout
        )
        for t in self._threads:
            t.join(max(0.0, end - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def stop(self) -> Counts:
        """Stop, wait for the requests in flight (each bounded by ``timeout``), count."""
        if self._result is None:
            self._stop.set()
            for t in self._threads:
                t.join(self.timeout * 2 + 1)
            tally = self._tally
            self._result = Counts(
                *(tally[k] for k in ("requests", "ok", "status", "reset", "refused")),
                *(tally[k] for k in ("timeout", "closed", "retried", "connections")),
                statuses=tuple(sorted(self._statuses.items())),
                samples=tuple(self._samples),
                seconds=time.monotonic() - self._start,
                capped=bool(tally["capped"]),
            )
        return self._result

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

"""The server's life as a scenario file drives it: reload, kill a worker, /proc counts, load.

Why: every catalogued case (#3648, #3394, #3025, #2244, the 24.0.0 outage) needed these,
and the next user would write them again.  ``ServerFixture`` (``user.py``) offers each as
a method; they return small frozen records, so a case's ``observe`` gathers facts and its
``decide`` judges them purely.  Processes are read from /proc (Linux): the arbiter's live children are its
workers, which is true whatever the release logs.  Every wait goes through
``server.wait_for``, so it is bounded by the run's deadline and ends with the run.
"""

from __future__ import annotations

import errno
import os
import re
import signal as signals
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.host import procfs


# -- /proc --------------------------------------------------------------------------------------
def children(pid: int) -> dict[int, str]:
    """The process's children and their states ('Z' is a zombie nobody reaped yet)."""
    out = {}
    for kid in procfs.children(pid):
        try:
            out[kid] = procfs.state(kid)
        except procfs.ProcessGone:
            continue
    return out


def live_children(pid: int) -> set[int]:
    """Children that are not zombies: for an arbiter, its workers."""
    return {c for c, state in children(pid).items() if state != "Z"}


@dataclass(frozen=True)
class Counts:
    """What a process holds right now."""

    fds: int
    threads: int
    children: int  # live ones
    zombies: int

    def as_dict(self) -> dict[str, int]:
        return {
            "fds": self.fds,
            "threads": self.threads,
            "children": self.children,
            "zombies": self.zombies,
        }


def counts(pid: int) -> Counts | None:
    """Open fds, threads, live children and zombie children of ``pid``; None when it is gone."""
    try:
        snap = procfs.snapshot(pid)
    except (procfs.ProcessGone, OSError):
        return None
    zombies = len(snap.zombies)
    return Counts(snap.fds.total, snap.threads, len(snap.children) - zombies, zombies)


def workers_expected(server: Any) -> int:
    """The server's own worker count (a --gunicorn-config may set it)."""
    value = server.setting("workers", 1)
    return value if isinstance(value, int) and value > 0 else 1


def settle(server: Any, seconds: float = 0.3) -> None:
    """Let the server be idle a moment (bounded by the run, like every wait)."""
    server.wait_for(lambda: False, seconds)


# -- reload ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Generation:
    """One SIGHUP: did a whole new generation of workers boot and the old one go?"""

    ok: bool
    seconds: float
    old: tuple[int, ...]
    new: tuple[int, ...]


def reload(server: Any, timeout: float = 15.0) -> Generation:
    """SIGHUP the arbiter and wait until every old worker is gone and as many new ones
    have booted (logged 'Booting worker') as the server runs."""
    arbiter = server.arbiter_pid
    want = workers_expected(server)
    old = live_children(arbiter)
    started = time.monotonic()
    server.signal(arbiter, signals.SIGHUP)

    def done() -> bool:
        live = live_children(arbiter)
        new = live - old
        return not (live & old) and len(new) >= want and new <= set(server.worker_pids())

    ok = server.wait_for(done, timeout, interval=0.05)
    new = live_children(arbiter) - old
    return Generation(
        ok, round(time.monotonic() - started, 3), tuple(sorted(old)), tuple(sorted(new))
    )


# -- a worker's death -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Replacement:
    """A worker killed: was it reaped and replaced, how fast, and what is left over."""

    victim: int
    reaped: bool
    replaced_by: tuple[int, ...]
    seconds: float
    zombies: int  # the arbiter's zombie children once it settled


def kill_worker(server: Any, sig: int = signals.SIGKILL, timeout: float = 10.0) -> Replacement:
    """Kill the oldest worker with ``sig`` (-9, or SIGTERM/SIGQUIT for a graceful exit) and
    wait until the arbiter reaped it and a new worker booted in its place."""
    arbiter = server.arbiter_pid
    want = workers_expected(server)
    before = live_children(arbiter)
    booted = [p for p in server.worker_pids() if p in before]
    if not booted:
        return Replacement(0, False, (), 0.0, 0)  # nothing to kill: the case says error
    victim = booted[0]
    started = time.monotonic()
    server.signal(victim, sig)

    def replaced() -> bool:
        live = live_children(arbiter)
        new = live - before
        return (
            victim not in children(arbiter)
            and len(live) >= want
            and new <= set(server.worker_pids())
            and bool(new)
        )

    ok = server.wait_for(replaced, timeout, interval=0.05)
    seconds = round(time.monotonic() - started, 3)
    settle(server, 0.5)
    now = counts(arbiter)
    return Replacement(
        victim=victim,
        reaped=victim not in children(arbiter),
        replaced_by=tuple(sorted(live_children(arbiter) - before)) if ok else (),
        seconds=seconds,
        zombies=now.zombies if now else 0,
    )


# -- load -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadResult:
    """Requests sent while an action ran: how many were answered 200, the rest by kind
    ('HTTP 502', 'ECONNRESET', 'ECONNREFUSED', 'ENOENT', 'timeout', 'empty response' ...)."""

    ok: int
    failed: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.ok + sum(self.failed.values())

    @property
    def failures(self) -> int:
        return sum(self.failed.values())


class Load:
    """``clients`` threads, each sending GETs on fresh connections until the block ends::

    with Load(server, clients=8) as load:
        reload(server)
    load.result  # LoadResult
    """

    def __init__(
        self, server: Any, clients: int = 8, path: str = "/", timeout: float = 2.0
    ) -> None:
        self.server, self.clients, self.path, self.timeout = server, clients, path, timeout
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._seen: Counter[str] = Counter()
        self._threads: list[threading.Thread] = []
        self.result = LoadResult(0)

    def _client(self) -> None:
        while not self._stop.is_set():
            try:
                kind = self.server.probe(self.path, self.timeout)
            except BaseException:  # the run is over (RunOver): this client is done
                return
            with self._lock:
                self._seen[kind] += 1

    def __enter__(self) -> Load:
        for n in range(self.clients):
            t = threading.Thread(target=self._client, name=f"load {n}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 1.0)
        with self._lock:
            seen = dict(self._seen)
        ok = seen.pop("ok", 0)
        self.result = LoadResult(ok, dict(sorted(seen.items())))


# -- the log and the app file -------------------------------------------------------------------------
def log_lines(server: Any, pattern: str = "", level: str = "") -> list[str]:
    """The log's lines that match ``pattern`` (a regex) at ``level`` ('ERROR', ...)."""
    out = []
    for ln in server.log.splitlines():
        if level and f"[{level}]" not in ln:
            continue
        if pattern and not re.search(pattern, ln):
            continue
        out.append(ln)
    return out


def edit_app(path: Path, source: str) -> None:
    """Rewrite the app file (for ``--reload``), with a new mtime even within one second."""
    before = path.stat().st_mtime
    path.write_text(source)
    if path.stat().st_mtime <= before:
        os.utime(path, (before + 1, before + 1))


# -- raw HTTP -----------------------------------------------------------------------------------------
def _read_reply(sock: socket.socket, deadline: float) -> str:
    """One HTTP/1.1 reply: 'HTTP 200' (body read by Content-Length), or what ended it."""
    data = b""
    while b"\r\n\r\n" not in data:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            return "empty reply" if not data else "truncated reply"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    found = re.search(rb"^content-length:\s*(\d+)", head, re.I | re.M)
    while found and len(body) < int(found.group(1)):
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            return "truncated reply"
        body += chunk
    status = head.split(b"\r\n", 1)[0].split()
    return f"HTTP {status[1].decode()}" if len(status) >= 2 else "bad reply"


def one_connection(server: Any, paths: list[str], timeout: float = 10.0) -> list[str]:
    """GET each path in turn on one kept-alive connection: one outcome per request
    ('HTTP 200', 'empty reply', 'ECONNRESET', 'timeout' ...); the first failure ends it."""
    unix = server.socket_path
    family = socket.AF_UNIX if unix else socket.AF_INET
    out: list[str] = []
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.settimeout(timeout)
            sock.connect(unix or ("127.0.0.1", server.port))
            for path in paths:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
                out.append(_read_reply(sock, time.monotonic() + timeout))
                if out[-1] != "HTTP 200":
                    break
        except socket.timeout:
            out.append("timeout")
        except OSError as exc:
            out.append(errno.errorcode.get(exc.errno or 0, type(exc).__name__))
    return out

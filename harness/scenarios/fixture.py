"""What a case's ``observe(server)`` (or a file's ``check(server)``) gets: the running
server as a small stable API (README: "Your own scenario file") with the server-life
actions the catalogue needs (reload, kill a worker, /proc counts, load), each returning a
frozen record that ``decide`` judges.  Every wait ends with the run.  That code runs in the
harness's own process, so the end of this module bounds it: ``os._exit`` becomes
``ExitCalled``, and the threads it started are stopped when the run is over.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import signal as signals
import socket
import sys
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.host import processes, rawhttp
from harness.host.processes import Cancel
from harness.scenarios.base import Options
from harness.scenarios.gunicorn_log import Log
from harness.scenarios.server import Healthy, Server


def server_traceback(server: Server) -> str:
    """The server's last Python traceback, with its private directory as <tmpdir>."""
    server.log.refresh(drain=not server.alive())  # a server that exited wrote it all
    return server.scrub(server.log.last_traceback())


class RunOver(BaseException):
    """The run ended (deadline or Ctrl-C) while ``check`` waited (a BaseException: a broad
    ``except Exception`` does not swallow it)."""


class ServerFixture:
    """The running server as ``check(server)`` sees it; every wait ends with the run."""

    def __init__(
        self,
        server: Server,
        deadline: float,
        cancel: Cancel,
        over: threading.Event,
        options: Options,
    ):
        self.options = options  # the command line's (a built-in reads them)
        self.server = server  # the harness's own Server: the built-ins read it, not an API
        self._deadline, self._cancel, self._over = deadline, cancel, over
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """``http+unix://<quoted path>/`` or ``http://127.0.0.1:PORT/``, for ``client()``."""
        return self.server.url

    @property
    def socket_path(self) -> str | None:
        return str(self.server.socket_path) if self.server.socket_path is not None else None

    @property
    def port(self) -> int | None:
        return self.server.port

    def socket_exists(self) -> bool:
        """Is the Unix socket file still there (always True for TCP)?"""
        return self.server.listening()

    @property
    def healthy(self) -> Healthy | None:
        """What the app answered on ``--path`` before anything happened."""
        return self.server.healthy

    def client(self):
        """A requests session (keep-alive) that speaks to this server."""
        return self.server.client()

    def get(self, path: str | None = None, timeout: float = 2.0):
        """One GET on a fresh connection (``requests``: it raises when it cannot connect)."""
        self._check_over()
        url = self.url + (path or self.options.path).lstrip("/")
        with self.server.client() as session:
            return session.get(url, timeout=self._bounded(timeout), headers={"Connection": "close"})

    def probe(self, path: str | None = None, timeout: float = 2.0) -> str:
        """One GET on a fresh connection, never raising: "ok" or what went wrong."""
        self._check_over()
        return self.server.probe(self._bounded(timeout), path or self.options.path)

    def _read(self) -> Log:
        with self._lock:  # check() may read the log from several threads
            self.server.log.refresh()
            return self.server.log

    @property
    def log(self) -> str:
        """The server's log (debug level): its latest 1-2 MiB, re-read on access."""
        return self._read().text

    @property
    def boots(self) -> int:
        """'Booting worker' lines so far (the first workers included)."""
        return self._read().boots

    @property
    def exits(self) -> int:
        """Distinct workers logged as exiting so far."""
        return self._read().exits

    def last_traceback(self) -> str:
        """The last Python traceback in the log, with the private directory as <tmpdir>."""
        with self._lock:
            return server_traceback(self.server)

    @property
    def arbiter_pid(self) -> int | None:
        return self.server.arbiter_pid

    def worker_pids(self) -> list[int]:
        """Workers booted, not logged as exiting and still running, oldest first."""
        return [p for p in self._read().worker_pids if os.path.exists(f"/proc/{p}")]

    def alive(self) -> bool:
        return self.server.alive()

    def signal(self, pid: int, sig: int = signals.SIGTERM) -> bool:
        """Signal the arbiter or one of its workers (any other pid: ValueError)."""
        if pid != self.arbiter_pid and pid not in self._read().booted_pids:
            raise ValueError(f"pid {pid} is not this server's arbiter or one of its workers")
        return self.server.signal(sig, pid)

    def setting(self, name: str, default: Any = None) -> Any:
        """The server's own value of a gunicorn setting, as it logged it."""
        with self._lock:
            return self.server.setting(name, default)

    def _workers(self) -> int:
        """The server's own worker count (a --gunicorn-config may set it)."""
        value = self.setting("workers", 1)
        return value if isinstance(value, int) and value > 0 else 1

    def reload(self, timeout: float = 15.0) -> Generation:
        """SIGHUP the arbiter; wait until every old worker is gone and a new generation booted."""
        arbiter, want = self.arbiter_pid or 0, self._workers()
        old = live_children(arbiter)
        started = time.monotonic()
        self.signal(arbiter, signals.SIGHUP)

        def done() -> bool:
            live = live_children(arbiter)
            new = live - old
            return not (live & old) and len(new) >= want and new <= set(self.worker_pids())

        ok = self.wait_for(done, timeout, interval=0.05)
        new = tuple(sorted(live_children(arbiter) - old))
        return Generation(ok, round(time.monotonic() - started, 3), tuple(sorted(old)), new)

    def kill_worker(self, sig: int = signals.SIGKILL, timeout: float = 10.0) -> Replacement:
        """Kill the oldest worker with ``sig``; wait until it is reaped and replaced."""
        arbiter, want = self.arbiter_pid or 0, self._workers()
        before = live_children(arbiter)
        booted = [p for p in self.worker_pids() if p in before]
        if not booted:
            return Replacement(0, False, (), 0.0, 0)  # nothing to kill: the case says error
        victim, started = booted[0], time.monotonic()
        self.signal(victim, sig)

        def replaced() -> bool:
            live = live_children(arbiter)
            new = live - before
            gone = victim not in children(arbiter)
            return gone and len(live) >= want and new <= set(self.worker_pids()) and bool(new)

        ok = self.wait_for(replaced, timeout, interval=0.05)
        seconds = round(time.monotonic() - started, 3)
        self.settle(0.5)
        now, reaped = counts(arbiter), victim not in children(arbiter)
        new = tuple(sorted(live_children(arbiter) - before)) if ok else ()
        return Replacement(victim, reaped, new, seconds, now.zombies if now else 0)

    def counts(self, pid: int | None = None) -> Counts | None:
        """Open fds, threads, live children and zombies of the arbiter (or ``pid``) now."""
        return counts(pid or self.arbiter_pid or 0)

    def load(
        self, clients: int = 8, path: str | None = None, timeout: float = 2.0
    ) -> FreshConnectionLoad:
        """Requests on fresh connections while a block runs: ``with server.load() as l:``."""
        return FreshConnectionLoad(self, clients, path or self.options.path, timeout)

    def settle(self, seconds: float = 0.3) -> None:
        """Let the server be idle a moment (bounded by the run, like every wait)."""
        self.wait_for(lambda: False, seconds)

    def log_lines(self, pattern: str = "", level: str = "") -> list[str]:
        """The log's lines matching ``pattern`` (a regex) at ``level`` ('ERROR', ...)."""
        lines = [ln for ln in self.log.splitlines() if not level or f"[{level}]" in ln]
        return [ln for ln in lines if not pattern or re.search(pattern, ln)]

    @property
    def app_file(self) -> Path:
        """The app module the server imports (APP, written in the server's directory)."""
        return self.server.dir / (self.server.spec.app.split(":", 1)[0] + ".py")

    def edit_app(self, source: str) -> None:
        """Rewrite the app file (for ``reload = True``), a newer mtime even within a second."""
        path = self.app_file
        before = path.stat().st_mtime
        path.write_text(source)
        if path.stat().st_mtime <= before:
            os.utime(path, (before + 1, before + 1))

    def exchange(self, data: bytes, timeout: float = 5.0) -> rawhttp.Reply:
        """Raw bytes on one fresh connection (to the proxy, when one is in front)."""
        self._check_over()
        return rawhttp.exchange(self.server.front, data, self._bounded(timeout))

    def one_connection(self, paths: list[str], timeout: float = 10.0) -> list[str]:
        """GET each path on one kept-alive connection, an outcome each; a failure ends it."""
        self._check_over()
        timeout, out = self._bounded(timeout), []
        family = socket.AF_UNIX if self.socket_path else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            try:
                sock.settimeout(timeout)
                sock.connect(self.socket_path or ("127.0.0.1", self.port or 0))
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

    def remaining(self) -> float:
        """Seconds left before the run's deadline."""
        return max(0.0, self._deadline - time.monotonic())

    def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02
    ) -> bool:
        """Poll ``predicate()`` until it is true (True) or ``timeout`` passes (False); the
        run's end first unwinds ``check`` (``RunOver``)."""
        until = time.monotonic() + timeout
        while True:
            self._check_over()
            if predicate():
                return True
            now = time.monotonic()
            if now >= until:
                return False
            self._over.wait(min(interval, until - now, max(0.0, self._deadline - now)))

    def _check_over(self) -> None:
        if self._over.is_set() or self._cancel.is_set() or time.monotonic() >= self._deadline:
            raise RunOver

    def _bounded(self, timeout: float) -> float:
        return max(0.01, min(timeout, self._deadline - time.monotonic()))


def children(pid: int) -> dict[int, str]:
    """The process's children and their states ('Z' is a zombie nobody reaped yet)."""
    out = {}
    for kid in processes.children(pid):
        try:
            out[kid] = processes.state(kid)
        except processes.ProcessGone:
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
        return asdict(self)


def counts(pid: int) -> Counts | None:
    """Open fds, threads, live children and zombie children of ``pid``; None when it is gone."""
    try:
        snap = processes.snapshot(pid)
    except (processes.ProcessGone, OSError):
        return None
    zombies = len(snap.zombies)
    return Counts(snap.fds.total, snap.threads, len(snap.children) - zombies, zombies)


@dataclass(frozen=True)
class Generation:
    """One SIGHUP: did a whole new generation of workers boot and the old one go?"""

    ok: bool
    seconds: float
    old: tuple[int, ...]
    new: tuple[int, ...]


@dataclass(frozen=True)
class Replacement:
    """A worker killed: was it reaped and replaced, how fast, and what is left over."""

    victim: int
    reaped: bool
    replaced_by: tuple[int, ...]
    seconds: float
    zombies: int  # the arbiter's zombie children once it settled


@dataclass(frozen=True)
class LoadResult:
    """Requests sent while an action ran: answered 200, and the rest by kind ('HTTP 502' ...)."""

    ok: int
    failed: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.ok + sum(self.failed.values())

    @property
    def failures(self) -> int:
        return sum(self.failed.values())


class FreshConnectionLoad:
    """``clients`` threads sending GETs on fresh connections until the ``with`` block ends."""

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

    def __enter__(self) -> FreshConnectionLoad:
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
        self.result = LoadResult(seen.pop("ok", 0), dict(sorted(seen.items())))


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


# -- bounds on the user's code in the harness's own process: ``os._exit`` raises ``ExitCalled``
# in the calling thread instead of ending the harness with no report (a forked child, whose
# pid differs, still exits); every thread a check starts, directly or through a library,
# belongs to it, and ``stop`` raises ``Stopped`` in each one still running when its time is
# up (a Python loop ends at its next bytecode; one blocked in C sleeps on harmlessly).
_HARNESS_PID = os.getpid()
_REAL_EXIT = os._exit
_REAL_START = threading.Thread.start
_REAL_HOOK = threading.excepthook
_REAL_UNRAISABLE = sys.unraisablehook
# thread -> the check() thread it belongs to, keyed by Thread objects (an ident is reused as
# soon as its thread ends: a stale one would aim ``Stopped`` at another row's check); weak,
# so that ended threads drop out by themselves.
_owner: weakref.WeakKeyDictionary[threading.Thread, threading.Thread] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_installed = False


class ExitCalled(BaseException):
    """``os._exit(status)`` called by user code in the harness's process."""

    def __init__(self, status: int) -> None:
        super().__init__(f"os._exit({status}) called")
        self.status = status


class Stopped(BaseException):
    """Raised in a user thread whose run is over (a BaseException, like ``RunOver``)."""


def _guarded_exit(status: int) -> None:
    if os.getpid() == _HARNESS_PID:
        raise ExitCalled(status)
    _REAL_EXIT(status)


def _owned_start(self: threading.Thread) -> None:
    """Thread.start that records the new thread under its check (before it runs)."""
    with _lock:
        root = _owner.get(threading.current_thread())
        if root is not None:
            _owner[self] = root
    _REAL_START(self)


def _quiet_hook(args: threading.ExceptHookArgs) -> None:
    """A thread ended by ``stop`` is not an error worth a traceback on stderr."""
    if args.exc_type is not Stopped:
        _REAL_HOOK(args)


def _quiet_unraisable(args) -> None:
    """Nor is one that ``stop`` reached in threading's own code after its ``run`` returned
    ("Exception ignored in thread started by ...": seen under load at an interrupt)."""
    if args.exc_type is not Stopped:
        _REAL_UNRAISABLE(args)


def install() -> None:
    """Idempotent; called before the first user code runs."""
    global _installed, _HARNESS_PID
    if _installed:
        return
    _HARNESS_PID = os.getpid()
    os._exit = _guarded_exit  # type: ignore[assignment]
    threading.Thread.start = _owned_start  # type: ignore[method-assign]
    threading.excepthook = _quiet_hook
    sys.unraisablehook = _quiet_unraisable
    _installed = True


def adopt(thread: threading.Thread) -> None:
    """Make ``thread`` (not yet started) the root of a check: what it starts is its own."""
    with _lock:
        _owner[thread] = thread


def owned(root: threading.Thread) -> list[threading.Thread]:
    """The live threads that belong to the check rooted at ``root``."""
    with _lock:
        return [t for t, r in _owner.items() if r is root and t.is_alive()]


def stop(root: threading.Thread, grace: float = 2.0) -> list[threading.Thread]:
    """Raise ``Stopped`` in every thread of the check rooted at ``root`` until they end or
    ``grace`` passes (a loop may catch it once); returns the threads still alive."""
    until = time.monotonic() + grace
    left = owned(root)
    while left and time.monotonic() < until:
        for t in left:
            if t.ident is not None and t.is_alive():
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(t.ident), ctypes.py_object(Stopped)
                )
        time.sleep(0.02)
        left = owned(root)
    return left

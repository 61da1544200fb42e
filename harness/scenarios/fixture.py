"""What a case's ``observe(server)`` (or a file's ``check(server)``) gets: the running
server as a small API that stays stable, and the server-life actions every catalogued case
needed (reload, kill a worker, /proc counts, load), each returning a small frozen record so
that ``observe`` gathers facts and ``decide`` judges them purely.

- where it listens and requests: ``url``, ``socket_path``, ``port``, ``socket_exists()``,
  ``get()``, ``probe()``, ``client()``; a raw ``exchange(bytes)`` (status line, headers,
  body) and ``one_connection(paths)`` (one kept-alive connection);
- the log: ``log``, ``boots``, ``exits``, ``last_traceback()``, ``log_lines(pattern, level)``;
- processes: ``arbiter_pid``, ``worker_pids()``, ``alive()``, ``signal(pid, sig)``,
  ``setting(name)``, and from /proc ``counts()`` (fds, threads, children, zombies);
- the server's life: ``reload()`` (SIGHUP, a whole new generation), ``kill_worker(sig)``
  (reaped and replaced), ``load()`` (requests while a block runs), ``app_file`` /
  ``edit_app(source)`` for ``--reload``, ``settle(seconds)``;
- the run: ``options`` (the command line's), ``healthy`` (what the app answered before
  anything happened), ``remaining()``, ``wait_for(predicate, timeout)``; every wait ends
  with the run.  Processes are read from /proc (Linux): the arbiter's live children are
  its workers, whatever the release logs.

The check runs in the harness's own process, bounded at the end of this module: ``os._exit``
becomes ``ExitCalled``, and the threads it started are stopped when the run is over.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import signal as signals
import socket
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
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


# -- what check() gets: the running server as a small API that stays stable -----------------
class RunOver(BaseException):
    """Raised in ``check``'s thread when the run ended (deadline or Ctrl-C) while it
    waited: a BaseException so that a broad ``except Exception`` does not swallow it."""


class ServerFixture:
    """The running server as ``check(server)`` sees it: a small API that stays stable.

    Every wait is bounded by the run's deadline and ends when the run is cancelled.
    """

    def __init__(
        self,
        server: Server,
        deadline: float,
        cancel: Cancel,
        over: threading.Event,
        options: Options | None = None,
    ):
        self.options = options or Options()  # the command line's (a built-in reads them)
        self.server = server  # the harness's own Server: the built-ins read it, not an API
        self._deadline = deadline
        self._cancel = cancel
        self._over = over
        self._lock = threading.Lock()

    # where it listens
    @property
    def url(self) -> str:
        """Base URL for ``client()``: ``http+unix://<quoted path>/`` or ``http://127.0.0.1:PORT/``."""
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
        """What the app answered on ``--path`` before anything happened (status, body digest)."""
        return self.server.healthy

    # requests
    def client(self):
        """A requests session (keep-alive) that speaks to this server: ``s.get(server.url)``."""
        return self.server.client()

    def get(self, path: str | None = None, timeout: float = 2.0):
        """One GET on a fresh connection; a ``requests.Response`` (``.status_code``,
        ``.headers``, ``.text``).  Raises ``requests.RequestException`` when it cannot
        connect (``requests.ConnectionError`` when the socket file is gone)."""
        self._check_over()
        url = self.url + (path or self.options.path).lstrip("/")
        with self.server.client() as session:
            return session.get(url, timeout=self._bounded(timeout), headers={"Connection": "close"})

    def probe(self, path: str | None = None, timeout: float = 2.0) -> str:
        """One GET on a fresh raw connection, never raising: ``"ok"`` (HTTP 200), or what
        went wrong: ``"ENOENT"``, ``"ECONNREFUSED"``, ``"timeout"``, ``"bad response"`` ..."""
        self._check_over()
        return self.server.probe(self._bounded(timeout), path or self.options.path)

    # the log
    def _read(self) -> Log:
        with self._lock:  # check() may read the log from several threads
            self.server.log.refresh()
            return self.server.log

    @property
    def log(self) -> str:
        """The server's log (gunicorn at debug level): its latest 1-2 MiB, re-read on access."""
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

    # processes
    @property
    def arbiter_pid(self) -> int | None:
        return self.server.arbiter_pid

    def worker_pids(self) -> list[int]:
        """Workers booted, not logged as exiting and still running, oldest first."""
        return [p for p in self._read().worker_pids if os.path.exists(f"/proc/{p}")]

    def alive(self) -> bool:
        """Is the arbiter still running?"""
        return self.server.alive()

    def signal(self, pid: int, sig: int = signals.SIGTERM) -> bool:
        """Send ``sig`` to the arbiter or one of its workers; False if it is already gone.

        Any other pid is a ValueError: a scenario only signals its own server.
        """
        if pid != self.arbiter_pid and pid not in self._read().booted_pids:
            raise ValueError(f"pid {pid} is not this server's arbiter or one of its workers")
        return self.server.signal(sig, pid)

    def setting(self, name: str, default: Any = None) -> Any:
        """The server's own value of a gunicorn setting, as it logged it."""
        with self._lock:
            return self.server.setting(name, default)

    # the server's life: each returns a frozen record a decide can judge
    def _workers(self) -> int:
        """The server's own worker count (a --gunicorn-config may set it)."""
        value = self.setting("workers", 1)
        return value if isinstance(value, int) and value > 0 else 1

    def reload(self, timeout: float = 15.0) -> Generation:
        """SIGHUP the arbiter; wait until every old worker is gone and as many new ones have
        booted (logged 'Booting worker') as the server runs."""
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
        """Kill the oldest worker with ``sig`` (-9, or SIGTERM/SIGQUIT for a graceful exit);
        wait until the arbiter reaped it and a new worker booted in its place."""
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
        now = counts(arbiter)
        return Replacement(
            victim=victim,
            reaped=victim not in children(arbiter),
            replaced_by=tuple(sorted(live_children(arbiter) - before)) if ok else (),
            seconds=seconds,
            zombies=now.zombies if now else 0,
        )

    def counts(self, pid: int | None = None) -> Counts | None:
        """Open fds, threads, live children and zombies of the arbiter (or ``pid``) now."""
        return counts(pid or self.arbiter_pid or 0)

    def load(self, clients: int = 8, path: str | None = None, timeout: float = 2.0) -> Load:
        """Requests on fresh connections while a block runs: ``with server.load() as l:``."""
        return Load(self, clients, path or self.options.path, timeout)

    def settle(self, seconds: float = 0.3) -> None:
        """Let the server be idle a moment (bounded by the run, like every wait)."""
        self.wait_for(lambda: False, seconds)

    def log_lines(self, pattern: str = "", level: str = "") -> list[str]:
        """The log's lines matching ``pattern`` (a regex) at ``level`` ('ERROR', ...)."""
        lines = self.log.splitlines()
        return [
            ln
            for ln in lines
            if (not level or f"[{level}]" in ln) and (not pattern or re.search(pattern, ln))
        ]

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
        """Raw bytes on one fresh connection (to the proxy, when one is in front); the reply
        (status, headers, body, how it ended)."""
        self._check_over()
        return rawhttp.exchange(self.server.front, data, self._bounded(timeout))

    def one_connection(self, paths: list[str], timeout: float = 10.0) -> list[str]:
        """GET each path in turn on one kept-alive connection: one outcome per request
        ('HTTP 200', 'empty reply', 'ECONNRESET', 'timeout' ...); the first failure ends it."""
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

    # time
    def remaining(self) -> float:
        """Seconds left before the run's deadline."""
        return max(0.0, self._deadline - time.monotonic())

    def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02
    ) -> bool:
        """Poll ``predicate()`` until it is true (True) or ``timeout`` passes (False).

        If the run's deadline comes first, or the run is cancelled, the run is over:
        ``check`` is unwound (its verdict is already "ran out" / interrupted).
        """
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


# -- /proc --------------------------------------------------------------------------------------
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
        return {
            "fds": self.fds,
            "threads": self.threads,
            "children": self.children,
            "zombies": self.zombies,
        }


def counts(pid: int) -> Counts | None:
    """Open fds, threads, live children and zombie children of ``pid``; None when it is gone."""
    try:
        snap = processes.snapshot(pid)
    except (processes.ProcessGone, OSError):
        return None
    zombies = len(snap.zombies)
    return Counts(snap.fds.total, snap.threads, len(snap.children) - zombies, zombies)


# -- reload ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Generation:
    """One SIGHUP: did a whole new generation of workers boot and the old one go?"""

    ok: bool
    seconds: float
    old: tuple[int, ...]
    new: tuple[int, ...]


# -- a worker's death -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Replacement:
    """A worker killed: was it reaped and replaced, how fast, and what is left over."""

    victim: int
    reaped: bool
    replaced_by: tuple[int, ...]
    seconds: float
    zombies: int  # the arbiter's zombie children once it settled


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


# -- bounds on the user's code that runs in the harness's own process ----------------------
# ``observe``/``check`` runs in a thread of the harness, so nothing it does may end or outlive the run:
#
# - ``os._exit`` called from the harness's process raises ``ExitCalled`` in the calling
#   thread instead of ending the harness with no report and no record (the harness itself
#   never calls it; forked children, whose pid differs, still exit for real);
# - every thread a check starts, directly or through a library, belongs to that check, and
#   when its time is up ``stop`` raises ``Stopped`` in each one still running: a pure-Python
#   loop ends at its next bytecode, instead of burning a core through every later row.  A
#   thread blocked inside C (a long ``sleep``, a read) sleeps on harmlessly until it returns.
_HARNESS_PID = os.getpid()
_REAL_EXIT = os._exit
_REAL_START = threading.Thread.start
_REAL_HOOK = threading.excepthook
# thread -> the check() thread it belongs to.  Keyed by the Thread objects, never by their
# idents: an ident is reused as soon as its thread ends, and a stale one would aim a
# ``Stopped`` at another row's check.  Weak, so that ended threads drop out by themselves.
_owner: weakref.WeakKeyDictionary[threading.Thread, threading.Thread] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_installed = False


class ExitCalled(BaseException):
    """``os._exit(status)`` called by user code in the harness's process."""

    def __init__(self, status: int) -> None:
        super().__init__(f"os._exit({status}) called")
        self.status = status


class Stopped(BaseException):
    """Raised in a user thread whose run is over (a BaseException: ``except Exception``
    in the user's loop does not swallow it)."""


def _guarded_exit(status: int) -> None:
    if os.getpid() == _HARNESS_PID:
        raise ExitCalled(status)
    _REAL_EXIT(status)


def _owned_start(self: threading.Thread) -> None:
    """Thread.start that records the new thread under the check that started it (before
    it runs: a thread it starts at once is recorded too)."""
    with _lock:
        root = _owner.get(threading.current_thread())
        if root is not None:
            _owner[self] = root
    _REAL_START(self)


def _quiet_hook(args: threading.ExceptHookArgs) -> None:
    """A thread ended by ``stop`` is not an error worth a traceback on stderr."""
    if args.exc_type is not Stopped:
        _REAL_HOOK(args)


def install() -> None:
    """Idempotent; called before the first user code runs."""
    global _installed, _HARNESS_PID
    if _installed:
        return
    _HARNESS_PID = os.getpid()
    os._exit = _guarded_exit  # type: ignore[assignment]
    threading.Thread.start = _owned_start  # type: ignore[method-assign]
    threading.excepthook = _quiet_hook
    _installed = True


def adopt(thread: threading.Thread) -> None:
    """Make ``thread`` (not yet started) the root of a check: the threads it starts, and
    the threads those start, are its own."""
    with _lock:
        _owner[thread] = thread


def owned(root: threading.Thread) -> list[threading.Thread]:
    """The live threads that belong to the check rooted at ``root``."""
    with _lock:
        return [t for t, r in _owner.items() if r is root and t.is_alive()]


def _raise_in(thread: threading.Thread, exc: type[BaseException]) -> None:
    ident = thread.ident
    if ident is not None and thread.is_alive():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc))


def stop(root: threading.Thread, grace: float = 2.0) -> list[threading.Thread]:
    """Raise ``Stopped`` in every thread of the check rooted at ``root`` until they end or
    ``grace`` passes (a loop may catch it once); returns the threads still alive."""
    until = time.monotonic() + grace
    left = owned(root)
    while left and time.monotonic() < until:
        for thread in left:
            _raise_in(thread, Stopped)
        time.sleep(0.02)
        left = owned(root)
    return left

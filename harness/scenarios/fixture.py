"""What a scenario file's ``check(server)`` gets: the running server as a small API
that stays stable while the harness changes underneath.

Every wait is bounded by the run's deadline and ends when the run is cancelled: then
``RunOver`` unwinds ``check`` (a BaseException, so ``except Exception`` in the user's
code does not swallow it).
"""

from __future__ import annotations

import os
import signal as signals
import threading
import time
from collections.abc import Callable
from typing import Any

from harness.host.cancel import Cancel
from harness.scenarios.lifecycle import server_traceback
from harness.scenarios.server import Server


class RunOver(BaseException):
    """Raised in ``check``'s thread when the run ended (deadline or Ctrl-C) while it
    waited: a BaseException so that a broad ``except Exception`` does not swallow it."""


class ServerFixture:
    """The running server as ``check(server)`` sees it: a small API that stays stable.

    Every wait is bounded by the run's deadline and ends when the run is cancelled.
    """

    def __init__(self, server: Server, deadline: float, cancel: Cancel, over: threading.Event):
        self._server = server
        self._deadline = deadline
        self._cancel = cancel
        self._over = over
        self._lock = threading.Lock()  # check() may read the log from several threads

    # where it listens
    @property
    def url(self) -> str:
        """Base URL for ``client()``: ``http+unix://<quoted path>/`` or ``http://127.0.0.1:PORT/``."""
        return self._server.url

    @property
    def socket_path(self) -> str | None:
        return str(self._server.socket_path) if self._server.socket_path is not None else None

    @property
    def port(self) -> int | None:
        return self._server.port

    def socket_exists(self) -> bool:
        """Is the Unix socket file still there (always True for TCP)?"""
        return self._server.listening()

    # requests
    def client(self):
        """A requests session (keep-alive) that speaks to this server: ``s.get(server.url)``."""
        return self._server.client()

    def get(self, path: str = "/", timeout: float = 2.0):
        """One GET on a fresh connection; a ``requests.Response`` (``.status_code``,
        ``.headers``, ``.text``).  Raises ``requests.RequestException`` when it cannot
        connect (``requests.ConnectionError`` when the socket file is gone)."""
        self._check_over()
        url = self.url + path.lstrip("/")
        with self._server.client() as session:
            return session.get(url, timeout=self._bounded(timeout), headers={"Connection": "close"})

    def probe(self, path: str = "/", timeout: float = 2.0) -> str:
        """One GET on a fresh raw connection, never raising: ``"ok"`` (HTTP 200), or what
        went wrong: ``"ENOENT"``, ``"ECONNREFUSED"``, ``"timeout"``, ``"bad response"`` ..."""
        self._check_over()
        return self._server.probe(self._bounded(timeout), path)

    # the log
    @property
    def log(self) -> str:
        """The server's log so far (gunicorn at debug level), re-read on each access."""
        with self._lock:
            return self._server.log.refresh()

    @property
    def boots(self) -> int:
        """'Booting worker' lines so far (the first workers included)."""
        with self._lock:
            self._server.log.refresh()
            return self._server.log.boots

    @property
    def exits(self) -> int:
        """Distinct workers logged as exiting so far."""
        with self._lock:
            self._server.log.refresh()
            return self._server.log.exits

    def last_traceback(self) -> str:
        """The last Python traceback in the log, with the private directory as <tmpdir>."""
        with self._lock:
            return server_traceback(self._server)

    # processes
    @property
    def arbiter_pid(self) -> int | None:
        return self._server.arbiter_pid

    def worker_pids(self) -> list[int]:
        """Workers booted, not logged as exiting and still running, oldest first."""
        with self._lock:
            self._server.log.refresh()
            pids = self._server.log.worker_pids
        return [p for p in pids if os.path.exists(f"/proc/{p}")]

    def alive(self) -> bool:
        """Is the arbiter still running?"""
        return self._server.alive()

    def signal(self, pid: int, sig: int = signals.SIGTERM) -> bool:
        """Send ``sig`` to the arbiter or one of its workers; False if it is already gone.

        Any other pid is a ValueError: a scenario only signals its own server.
        """
        with self._lock:
            self._server.log.refresh()
            booted = set(self._server.log.booted_pids)
        if pid != self.arbiter_pid and pid not in booted:
            raise ValueError(f"pid {pid} is not this server's arbiter or one of its workers")
        return self._server.signal(sig, pid)

    def setting(self, name: str, default: Any = None) -> Any:
        """The server's own value of a gunicorn setting, as it logged it."""
        with self._lock:
            return self._server.setting(name, default)

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

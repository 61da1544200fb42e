"""A scenario written by a user: ``--scenario path/to/file.py`` (see ``user_file``).

The harness boots gunicorn from the target's environment (and waits until it listens
and every worker booted), calls ``check`` in a worker thread with a ``ServerFixture``
and stops the server afterwards, whatever happened.  The run is bounded by
``--timeout`` (or the file's ``TIMEOUT``, when larger): a ``check`` that has not returned
by then is ``error`` ("ran out"), the server is killed, and every thread the check started
that still runs is stopped (``contain``; so is ``os._exit``, which becomes an error row).
The file was imported once in a throwaway process first (``user_file.trial_import``).
``decide`` is pure.

What ``check(server)`` gets (``ServerFixture``), the same for every scenario file:

- where it listens and requests: ``url``, ``socket_path``, ``port``, ``socket_exists()``,
  ``get()``, ``probe()``, ``client()``; a raw ``exchange(bytes)`` (status line, headers,
  body) and ``one_connection(paths)`` (one kept-alive connection);
- the log: ``log``, ``boots``, ``exits``, ``last_traceback()``, ``log_lines(pattern, level)``;
- processes: ``arbiter_pid``, ``worker_pids()``, ``alive()``, ``signal(pid, sig)``,
  ``setting(name)``, and from /proc ``counts()`` (fds, threads, children, zombies);
- the server's life (``life``): ``reload()`` (SIGHUP, a whole new generation),
  ``kill_worker(sig)`` (reaped and replaced), ``load()`` (requests while a block runs),
  ``app_file`` / ``edit_app(source)`` for ``--reload``, ``settle(seconds)``;
- time: ``remaining()``, ``wait_for(predicate, timeout)``; every wait ends with the run.
"""

from __future__ import annotations

import os
import signal as signals
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.build import layers
from harness.build.interpreters import Interpreter
from harness.build.layers import RequirementSet
from harness.build.wheels import ArtifactError
from harness.host import rawhttp
from harness.host.cancel import Cancel, Cancelled
from harness.model.verdict import Decision, Verdict
from harness.scenarios import app_bottle, contain, life
from harness.scenarios.base import About, EnvNeeds, Options, RunContext, RunResult
from harness.scenarios.gunicorn_log import Log
from harness.scenarios.lifecycle import ServerScenario, server_traceback
from harness.scenarios.server import PLAIN_APP, Server, ServerSpec
from harness.scenarios.user_file import FUNCTION, ScenarioFile, harness_provided, load

VERDICTS = {"pass": Verdict.PASS, "fail": Verdict.FAIL, "error": Verdict.ERROR}


# -- what check() gets: the running server as a small API that stays stable -----------------
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
        self._lock = threading.Lock()

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
    def _read(self) -> Log:
        with self._lock:  # check() may read the log from several threads
            self._server.log.refresh()
            return self._server.log

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
            return server_traceback(self._server)

    # processes
    @property
    def arbiter_pid(self) -> int | None:
        return self._server.arbiter_pid

    def worker_pids(self) -> list[int]:
        """Workers booted, not logged as exiting and still running, oldest first."""
        return [p for p in self._read().worker_pids if os.path.exists(f"/proc/{p}")]

    def alive(self) -> bool:
        """Is the arbiter still running?"""
        return self._server.alive()

    def signal(self, pid: int, sig: int = signals.SIGTERM) -> bool:
        """Send ``sig`` to the arbiter or one of its workers; False if it is already gone.

        Any other pid is a ValueError: a scenario only signals its own server.
        """
        if pid != self.arbiter_pid and pid not in self._read().booted_pids:
            raise ValueError(f"pid {pid} is not this server's arbiter or one of its workers")
        return self._server.signal(sig, pid)

    def setting(self, name: str, default: Any = None) -> Any:
        """The server's own value of a gunicorn setting, as it logged it."""
        with self._lock:
            return self._server.setting(name, default)

    # the server's life (see ``life``): each returns a frozen record a decide can judge
    def reload(self, timeout: float = 15.0) -> life.Generation:
        """SIGHUP the arbiter; wait until a whole new generation of workers replaced the old."""
        return life.reload(self, timeout)

    def kill_worker(self, sig: int = signals.SIGKILL, timeout: float = 10.0) -> life.Replacement:
        """Kill the oldest worker with ``sig``; wait until it is reaped and replaced."""
        return life.kill_worker(self, sig, timeout)

    def counts(self, pid: int | None = None) -> life.Counts | None:
        """Open fds, threads, live children and zombies of the arbiter (or ``pid``) now."""
        return life.counts(pid or self.arbiter_pid or 0)

    def load(self, clients: int = 8, path: str = "/", timeout: float = 2.0) -> life.Load:
        """Requests on fresh connections while a block runs: ``with server.load() as l:``."""
        return life.Load(self, clients, path, timeout)

    def settle(self, seconds: float = 0.3) -> None:
        """Let the server be idle a moment (bounded by the run)."""
        life.settle(self, seconds)

    def log_lines(self, pattern: str = "", level: str = "") -> list[str]:
        """The log's lines matching ``pattern`` (a regex) at ``level`` ('ERROR', ...)."""
        return life.log_lines(self, pattern, level)

    @property
    def app_file(self) -> Path:
        """The app module the server imports (APP, written in the server's directory)."""
        return self._server.dir / (self._server.spec.app.split(":", 1)[0] + ".py")

    def edit_app(self, source: str) -> None:
        """Rewrite the app file (for ``reload = True``) with a newer mtime."""
        life.edit_app(self.app_file, source)

    def exchange(self, data: bytes, timeout: float = 5.0) -> rawhttp.Reply:
        """Raw bytes on one fresh connection; the reply (status, headers, body, how it ended)."""
        self._check_over()
        return rawhttp.exchange(self._server.address, data, self._bounded(timeout))

    def one_connection(self, paths: list[str], timeout: float = 10.0) -> list[str]:
        """GET each path on one kept-alive connection: 'HTTP 200', 'empty reply', ..."""
        self._check_over()
        return life.one_connection(self, paths, self._bounded(timeout))

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


# -- the scenario -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """What one call of the user's function came to (``decide`` judges)."""

    booted: bool
    boot_error: str = ""
    returned: Any = None  # what check() returned, when it returned
    raised: str = ""  # "TypeError: ..." when it raised
    ran_out: float | None = None  # the run's limit, when check() had not returned by then
    exited: int | None = None  # the status check() passed to os._exit (which did not exit)
    traceback: str = ""  # check()'s traceback, or the server's last one


def decide(obs: Observation, function: str = FUNCTION) -> Decision:
    """error: no server, ran out, raised, or an unusable return value; else its verdict."""
    if not obs.booted:
        return Decision(Verdict.ERROR, f"server did not start: {obs.boot_error}", obs.traceback)
    if obs.ran_out is not None:
        return Decision(
            Verdict.ERROR,
            f"ran out after {obs.ran_out:g} s: {function}() had not returned (--timeout)",
            obs.traceback,
        )
    if obs.exited is not None:
        return Decision(
            Verdict.ERROR,
            f"{function}() called os._exit({obs.exited}): stopped there, the harness goes on",
            obs.traceback,
        )
    if obs.raised:
        return Decision(Verdict.ERROR, f"{function}() raised {obs.raised}", obs.traceback)
    value = obs.returned
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and isinstance(value[0], str)
        and value[0].lower() in VERDICTS
        and isinstance(value[1], str)
    ):
        evidence = "; ".join(ln.strip() for ln in value[1].splitlines() if ln.strip())
        return Decision(
            VERDICTS[value[0].lower()], evidence or "(no evidence given)", obs.traceback
        )
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return Decision(
        Verdict.ERROR,
        f"{function}() returned {shown}: expected ('pass'|'fail'|'error', 'evidence')",
        obs.traceback,
    )


class UserScenario(ServerScenario):
    """A ``check(server)`` from the user's file, run against a server the harness owns."""

    def __init__(self, source: ScenarioFile, options: Options, name: str = "") -> None:
        self.source = source
        self.options = options
        self.name = name  # a catalogue case's built-in name; "" for the user's own file
        self.rules = decide

    @classmethod
    def from_file(cls, path: Path, options: Options, name: str = "") -> UserScenario:
        return cls(load(path), options, name)

    # -- what it is -----------------------------------------------------------------------------
    def flags(self) -> dict[str, Any]:
        """Settings given on the command line: they win over the file and --gunicorn-config."""
        o = self.options
        names = ("workers", "threads", "max_requests", "worker_class")
        return {n: getattr(o, n) for n in names if getattr(o, n) is not None}

    def settings(self) -> dict[str, Any]:
        return {**self.source.settings, **self.flags()}

    def about(self) -> About:
        src, s = self.source, self.settings()
        config = self.options.gunicorn_config
        parameters = {
            "file": str(src.path),
            "settings": s,
            "worker_class": s.get("worker_class") or "auto",
            "bind": src.bind,
            "requires": [str(r) for r in src.requires],
            "app": self.options.app
            or ("the file's APP" if src.app != PLAIN_APP else "plain WSGI Hello World"),
            "gunicorn_config": str(config) if config else None,
            "timeout": self.options.timeout,
        }
        if self.options.requirements:
            parameters["with"] = list(self.options.requirements.requirements)
        title = f"Gunicorn bisection report: {self.name or src.path.name}"
        named = {"tracker": src.tracker} if src.tracker else {}
        # a catalogue case by its name and its file in the package, not this checkout's path
        shown = f"harness/catalogue/{src.path.name}" if self.name else src.path
        if src.osv_id:
            named["id"] = src.osv_id
        if src.aliases:
            named["aliases"] = list(src.aliases)
        return About.of(
            self.name or "file",
            src.description,
            f"{shown}: {src.description or '(no description)'}",
            title + (f": {src.description}" if src.description else ""),
            parameters,
            file=str(src.path),
            path=str(src.path.resolve()),
            sha256=src.sha256,
            **named,
        )

    def own_needs(self, interp: Interpreter, cache_dir: Path) -> EnvNeeds:
        worker_class = self.settings().get("worker_class")
        worker_class = worker_class if isinstance(worker_class, str) else ""
        bottle = [r for r in self.source.requires if harness_provided(r)]
        if not bottle:
            return EnvNeeds(worker_class=worker_class)
        req, extra = bottle[0], app_bottle.bottle_for(interp, cache_dir)
        if req.specifier and not req.specifier.contains(extra.version, prereleases=True):
            raise ArtifactError(
                f"REQUIRES {req}: Python {interp.version} gets bottle {extra.version} "
                f"({app_bottle.BOTTLE_AS_REPORTED} runs only on Python <= 3.9)"
            )
        return EnvNeeds(extras=(extra,), probe_imports=("bottle",), worker_class=worker_class)

    def requirements(self) -> RequirementSet:
        """--with, plus every REQUIRES the harness does not serve itself (e.g. flask)."""
        own = [str(r) for r in self.source.requires if not harness_provided(r)]
        if not own:
            return self.options.requirements
        return layers.parse([*self.options.requirements.requirements, *own])

    def spec(self, boot_timeout: float) -> ServerSpec:
        """The file's SETTINGS < --gunicorn-config < command-line flags < what the harness owns."""
        o = self.options
        return ServerSpec(
            app_source=None if o.app else self.source.app,
            app=o.app or "web:app",
            app_dir=o.app_dir,
            settings=self.flags(),
            defaults=dict(self.source.settings),
            config_file=self.options.gunicorn_config,
            bind=self.source.bind,
            boot_timeout=boot_timeout,
            path=o.path,
        )

    # -- the run --------------------------------------------------------------------------------
    def run(self, ctx: RunContext, cancel: Cancel) -> RunResult:
        """The file's TIMEOUT is a floor: what its check needs, whatever --timeout says."""
        need = self.source.timeout
        if need is not None and need > ctx.timeout:
            ctx = replace(ctx, timeout=need)
        return super().run(ctx, cancel)

    def not_booted(self, server: Server, reason: str) -> Observation:
        return Observation(False, boot_error=reason, traceback=server_traceback(server))

    def act(self, server: Server, deadline: float, cancel: Cancel) -> Observation:
        """check(server) in a daemon thread until it returns or the deadline passes; then
        every thread it started that still runs is stopped (``contain``)."""
        contain.install()
        over = threading.Event()
        box: dict[str, Any] = {}
        thread = threading.Thread(
            target=self._call,
            args=(ServerFixture(server, deadline, cancel, over), box),
            name=f"scenario {self.source.path.name} {server.ctx.label}",
            daemon=True,  # a check() that never returns must not keep the harness alive
        )
        contain.adopt(thread)
        try:
            thread.start()
            while thread.is_alive() and time.monotonic() < deadline:
                cancel.check()
                thread.join(min(0.05, max(0.0, deadline - time.monotonic())))
            cancel.check()
        finally:
            ran_out = thread.is_alive()
            over.set()  # waits in check() end now; the server goes after this returns
            contain.stop(thread)
        if ran_out or "over" in box:
            return Observation(True, ran_out=server.ctx.timeout, traceback=server_traceback(server))
        if "exited" in box:
            return Observation(True, exited=box["exited"], traceback=box["traceback"])
        if "raised" in box:
            return Observation(True, raised=box["raised"], traceback=box["traceback"])
        return Observation(True, returned=box.get("returned"), traceback=server_traceback(server))

    def _call(self, fixture: ServerFixture, box: dict[str, Any]) -> None:
        try:
            box["returned"] = self.source.function(fixture)
        except (RunOver, Cancelled, contain.Stopped):
            box["over"] = True
        except contain.ExitCalled as exc:
            box["exited"] = exc.status
            box["traceback"] = "".join(
                traceback.format_exception(type(exc), exc, exc.__traceback__)
            ).strip()
        except BaseException as exc:  # the user's code: whatever it raises is evidence
            box["raised"] = traceback.format_exception_only(type(exc), exc)[-1].strip()
            box["traceback"] = "".join(
                traceback.format_exception(type(exc), exc, exc.__traceback__)
            ).strip()

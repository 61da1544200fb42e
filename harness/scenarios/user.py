"""A scenario written by a user: ``--scenario path/to/file.py``.

The file is imported in the harness's own Python and defines (only ``check`` is required)::

    \"\"\"One line: what this scenario shows (the report's description).\"\"\"
    APP = "...WSGI module source, defines app..."  # default: a plain Hello World
    REQUIRES = ["bottle==0.12.13"]                 # extra distributions the app imports
    SETTINGS = {"workers": 3, "threads": 5}        # gunicorn settings
    BIND = "unix"                                  # or "tcp"

    def check(server):
        ...
        return "fail", "socket file gone after a worker exit"

The harness boots gunicorn from the target's environment (and waits until it listens
and every worker booted), calls ``check`` in a worker thread with a ``ServerFixture``
and stops the server afterwards, whatever happened.  The run is bounded by
``--timeout``: a ``check`` that has not returned by then is ``error`` ("ran out"), the
server is killed and the thread is abandoned (a daemon).  ``decide`` is pure.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import itertools
import os
import signal as signals
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from harness.build.interpreters import Interpreter
from harness.build.wheels import ArtifactError
from harness.host.cancel import Cancel, Cancelled
from harness.model.verdict import Decision, Verdict
from harness.scenarios import app_bottle
from harness.scenarios.base import (
    EnvNeeds,
    Options,
    RunContext,
    RunResult,
    Scenario,
    ScenarioError,
    sha256_of,
)
from harness.scenarios.server import PLAIN_APP, BootError, Server, ServerSpec, last_traceback

FUNCTION = "check"
#: gunicorn settings the harness owns (where it listens, foreground, its log)
OWNED = frozenset({"bind", "daemon", "pidfile", "errorlog", "loglevel"})
#: the only distribution REQUIRES may name, and the version that must satisfy its pin
SUPPORTED = {"bottle": app_bottle.BOTTLE_AS_REPORTED}
VERDICTS = {"pass": Verdict.PASS, "fail": Verdict.FAIL, "error": Verdict.ERROR}

_serial = itertools.count(1)


class RunOver(BaseException):
    """Raised in ``check``'s thread when the run ended (deadline or Ctrl-C) while it
    waited: a BaseException so that a broad ``except Exception`` does not swallow it."""


# -- the file ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScenarioFile:
    """What a scenario file defines, validated."""

    path: Path
    sha256: str
    description: str
    function: Callable[[Any], Any]
    app: str
    requires: tuple[Requirement, ...]
    settings: dict[str, Any]
    bind: str


def _where(exc: BaseException, path: Path) -> str:
    """' (line N)' of the deepest frame in the scenario file, if any."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    return f" (line {frames[-1].lineno})" if frames else ""


def _import(path: Path) -> Any:
    """Import the file under a module name of its own; every failure is one line."""
    name = f"gunicorn_bisect_scenario_{next(_serial)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ScenarioError(f"scenario file {path}: cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        raise ScenarioError(
            f"scenario file {path}: syntax error at line {exc.lineno}: {exc.msg}"
        ) from None
    except BaseException as exc:  # ImportError, NameError, SystemExit ...
        sys.modules.pop(name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        what = traceback.format_exception_only(type(exc), exc)[-1].strip()
        raise ScenarioError(
            f"scenario file {path}: does not import{_where(exc, path)}: {what}"
        ) from None
    return module


def _literal(value: Any) -> bool:
    """Does ``repr(value)`` read back as the same value (it is written into a config file)?"""
    try:
        return ast.literal_eval(repr(value)) == value
    except (ValueError, SyntaxError):
        return False


def _requires(path: Path, value: Any) -> tuple[Requirement, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(r, str) for r in value):
        raise ScenarioError(f"scenario file {path}: REQUIRES must be a list of strings")
    out = []
    for text in value:
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            raise ScenarioError(f"scenario file {path}: REQUIRES {text!r}: {exc}") from None
        name = canonicalize_name(req.name)
        if name not in SUPPORTED:
            raise ScenarioError(
                f"scenario file {path}: REQUIRES {text!r}: only bottle is supported "
                "(an app that needs more can be plain WSGI)"
            )
        if req.specifier and not req.specifier.contains(SUPPORTED[name], prereleases=True):
            raise ScenarioError(
                f"scenario file {path}: REQUIRES {text!r}: the harness provides "
                f"{name} {SUPPORTED[name]} (the newest 0.12 on Python >= 3.10)"
            )
        out.append(req)
    return tuple(out)


def load(path: Path) -> ScenarioFile:
    """Import and validate a scenario file; ScenarioError (one line) when it cannot be used."""
    if not path.is_file():
        raise ScenarioError(f"scenario file {path}: no such file")
    try:
        sha = sha256_of(path)
    except OSError as exc:
        raise ScenarioError(f"scenario file {path}: {exc.strerror or exc}") from None
    module = _import(path)
    doc = (getattr(module, "__doc__", None) or "").strip()
    description = doc.splitlines()[0].strip() if doc else ""
    function = getattr(module, FUNCTION, None)
    if not callable(function):
        raise ScenarioError(f"scenario file {path}: defines no function {FUNCTION}(server)")
    try:
        inspect.signature(function).bind(None)
    except TypeError:
        raise ScenarioError(
            f"scenario file {path}: {FUNCTION}() must take one argument, the server"
        ) from None
    except ValueError:
        pass  # no signature to inspect (a builtin): let the call tell
    app = getattr(module, "APP", PLAIN_APP)
    if not isinstance(app, str):
        raise ScenarioError(f"scenario file {path}: APP must be a string (a WSGI module's source)")
    try:
        compile(app, f"{path}:APP", "exec")
    except SyntaxError as exc:
        raise ScenarioError(
            f"scenario file {path}: APP has a syntax error at its line {exc.lineno}: {exc.msg}"
        ) from None
    settings = getattr(module, "SETTINGS", {})
    if not isinstance(settings, dict) or not all(
        isinstance(k, str) and k.isidentifier() for k in settings
    ):
        raise ScenarioError(
            f"scenario file {path}: SETTINGS must be a dict of gunicorn setting names"
        )
    owned = sorted(OWNED & set(settings))
    if owned:
        raise ScenarioError(
            f"scenario file {path}: SETTINGS may not set {', '.join(owned)} "
            f"(the harness owns {', '.join(sorted(OWNED))}; use BIND = 'unix' or 'tcp')"
        )
    for key, value in settings.items():
        if not _literal(value):
            raise ScenarioError(
                f"scenario file {path}: SETTINGS[{key!r}] = {value!r} is not a plain value"
            )
    bind = getattr(module, "BIND", "unix")
    if bind not in ("unix", "tcp"):
        raise ScenarioError(f"scenario file {path}: BIND must be 'unix' or 'tcp', not {bind!r}")
    return ScenarioFile(
        path=path,
        sha256=sha,
        description=description,
        function=function,
        app=app,
        requires=_requires(path, getattr(module, "REQUIRES", [])),
        settings=dict(settings),
        bind=bind,
    )


# -- what check() gets ---------------------------------------------------------------------------
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
        return self._server.scrub(last_traceback(self.log))

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
            booted = {int(p) for p in self._server.log.BOOT.findall(self._server.log.text)}
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


# -- the scenario ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Observation:
    """What one call of the user's function came to (``decide`` judges)."""

    booted: bool
    boot_error: str = ""
    returned: Any = None  # what check() returned, when it returned
    raised: str = ""  # "TypeError: ..." when it raised
    ran_out: float | None = None  # the run's limit, when check() had not returned by then
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


class UserScenario(Scenario):
    """A ``check(server)`` from the user's file, run against a server the harness owns."""

    name = "file"

    def __init__(self, source: ScenarioFile, options: Options) -> None:
        self.source = source
        self.options = options
        self.description = source.description
        self.title = f"Gunicorn bisection report: {source.path.name}" + (
            f": {source.description}" if source.description else ""
        )

    @classmethod
    def from_file(cls, path: Path, options: Options) -> UserScenario:
        return cls(load(path), options)

    # -- what it is -----------------------------------------------------------------------------
    def flags(self) -> dict[str, Any]:
        """Settings given on the command line: they win over the file and --gunicorn-config."""
        o = self.options
        out = {
            n: getattr(o, n)
            for n in ("workers", "threads", "max_requests", "worker_class")
            if getattr(o, n) is not None
        }
        return out

    def settings(self) -> dict[str, Any]:
        return {**self.source.settings, **self.flags()}

    def parameters(self) -> dict[str, Any]:
        s = self.settings()
        return {
            "file": str(self.source.path),
            "settings": s,
            "worker_class": s.get("worker_class") or "auto",
            "bind": self.source.bind,
            "requires": [str(r) for r in self.source.requires],
            "app": "the file's APP" if self.source.app != PLAIN_APP else "plain WSGI Hello World",
            "gunicorn_config": str(self.options.gunicorn_config)
            if self.options.gunicorn_config
            else None,
            "timeout": self.options.timeout,
        }

    def describe(self) -> str:
        return f"{self.source.path}: {self.source.description or '(no description)'}"

    def record(self) -> dict[str, Any]:
        return {
            **super().record(),
            "file": str(self.source.path),
            "path": str(self.source.path.resolve()),
            "sha256": self.source.sha256,
        }

    def needs(self, interp: Interpreter, cache_dir: Path) -> EnvNeeds:
        worker_class = self.settings().get("worker_class")
        worker_class = worker_class if isinstance(worker_class, str) else ""
        if not self.source.requires:
            return EnvNeeds(worker_class=worker_class)
        req = self.source.requires[0]  # only bottle is accepted (load)
        extra = app_bottle.bottle_for(interp, cache_dir)
        if req.specifier and not req.specifier.contains(extra.version, prereleases=True):
            raise ArtifactError(
                f"REQUIRES {req}: Python {interp.version} gets bottle {extra.version} "
                f"({app_bottle.BOTTLE_AS_REPORTED} runs only on Python <= 3.9)"
            )
        return EnvNeeds(extras=(extra,), probe_imports=("bottle",), worker_class=worker_class)

    def spec(self, boot_timeout: float) -> ServerSpec:
        """The file's SETTINGS < --gunicorn-config < command-line flags < what the harness owns."""
        return ServerSpec(
            app_source=self.source.app,
            settings=self.flags(),
            defaults=dict(self.source.settings),
            config_file=self.options.gunicorn_config,
            bind=self.source.bind,
            boot_timeout=boot_timeout,
        )

    # -- the run --------------------------------------------------------------------------------
    def run(self, ctx: RunContext, cancel: Cancel) -> RunResult:
        """Boot, call check(server) in a thread until the deadline, tear down (always)."""
        started = time.monotonic()
        deadline = started + ctx.timeout
        server = Server(ctx, self.spec(boot_timeout=min(10.0, ctx.timeout / 2)), cancel)
        over = threading.Event()
        try:
            try:
                server.start()
            except BootError as exc:
                obs = Observation(False, boot_error=str(exc), traceback=self._server_tb(server))
                return self._result(server, obs, started)
            fixture = ServerFixture(server, deadline, cancel, over)
            box: dict[str, Any] = {}
            thread = threading.Thread(
                target=self._call,
                args=(fixture, box),
                name=f"scenario {self.source.path.name} {ctx.label}",
                daemon=True,  # a check() that never returns must not keep the harness alive
            )
            thread.start()
            while thread.is_alive() and time.monotonic() < deadline:
                cancel.check()
                thread.join(min(0.05, max(0.0, deadline - time.monotonic())))
            cancel.check()
            if thread.is_alive() or "over" in box:
                obs = Observation(True, ran_out=ctx.timeout, traceback=self._server_tb(server))
            elif "raised" in box:
                obs = Observation(True, raised=box["raised"], traceback=box["traceback"])
            else:
                obs = Observation(
                    True, returned=box.get("returned"), traceback=self._server_tb(server)
                )
            return self._result(server, obs, started)
        finally:
            over.set()  # waits in check() end now; the server goes below
            server.stop()

    def _call(self, fixture: ServerFixture, box: dict[str, Any]) -> None:
        try:
            box["returned"] = self.source.function(fixture)
        except RunOver:
            box["over"] = True
        except Cancelled:
            box["over"] = True
        except BaseException as exc:  # the user's code: whatever it raises is evidence
            box["raised"] = traceback.format_exception_only(type(exc), exc)[-1].strip()
            box["traceback"] = "".join(
                traceback.format_exception(type(exc), exc, exc.__traceback__)
            ).strip()

    @staticmethod
    def _server_tb(server: Server) -> str:
        return server.scrub(last_traceback(server.log.refresh()))

    def _result(self, server: Server, obs: Observation, started: float) -> RunResult:
        text = server.log.refresh()
        return RunResult(
            obs,
            log=text,
            duration=round(time.monotonic() - started, 3),
            boot_seconds=server.boot_seconds,
            compat_used=server.compat_used,
            facts={"worker_class": server.log.worker_class},
        )

    def decide(self, observation: Observation) -> Decision:
        return decide(observation)


__all__ = ["UserScenario", "ServerFixture", "Observation", "decide", "load"]

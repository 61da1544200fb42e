"""The one place that boots gunicorn (for every case, through ``lifecycle``): config,
launch, wait until it serves, signal it, probe it, tear it down.  It runs from the target's
environment in a private 0700 directory through ``host.processes``' one launcher: its own
session, a run token (teardown kills the group, then sweeps for the token), and death with
the harness even on SIGKILL.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal as signals
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from harness.host import processes
from harness.host.compat import SHIM_MARK_ENV
from harness.host.processes import Cancel
from harness.host.proxy import Proxy
from harness.host.proxy import start as start_proxy
from harness.model.errors import HarnessError
from harness.scenarios.base import RunContext
from harness.scenarios.gunicorn_log import Log

#: A plain WSGI app: what a user's scenario file gets when it brings none.
PLAIN_APP = """\
def app(environ, start_response):
    body = b'Hello World'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
"""

# gunicorn's console script, as the target interpreter runs it (Python 3.6-safe); the
# launcher has already set the parent-death signal and checked the harness is alive.
GUNICORN = "import sys; sys.argv[0] = 'gunicorn'; from gunicorn.app.wsgiapp import run; run()"


PROBE_TIMEOUT = 2.0
#: What a proxy answers when its upstream failed: the app did not serve these.
GATEWAY_ERRORS = frozenset({"502", "503", "504"})
#: A Unix socket's path, with its terminating NUL, fits in sun_path's 108 bytes (Linux).
SUN_PATH_MAX = 108
#: Where a run's private directory goes when TMPDIR is too long for a socket path in it.
SHORT_BASES = ("/tmp", "/var/tmp", "/dev/shm")
#: The server's socket; the longest socket name in its directory (gunicorn.ctl is shorter).
SOCKET_NAME = "gunicorn.sock"


class BootError(HarnessError):
    """The server did not come up; the message is the one-line reason."""


def private_dir(prefix: str, longest: str = SOCKET_NAME) -> Path:
    """A new 0700 directory for one run where ``<it>/<longest>`` fits in sun_path: in TMPDIR,
    else XDG_RUNTIME_DIR or SHORT_BASES (a long TMPDIR would fail every Unix bind)."""
    bases = (tempfile.gettempdir(), os.environ.get("XDG_RUNTIME_DIR"), *SHORT_BASES)
    for base in filter(None, bases):
        longest_path = os.path.join(base, prefix + "x" * 8, longest)  # mkdtemp adds 8 characters
        if len(os.fsencode(longest_path)) >= SUN_PATH_MAX:
            continue
        try:
            path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
        except OSError:
            continue
        os.chmod(path, 0o700)  # whatever the umask left
        return path
    raise BootError(
        f"no temporary directory short enough for a Unix socket path (TMPDIR "
        f"{tempfile.gettempdir()} is too long, and {', '.join(SHORT_BASES)} are not "
        "writable): set TMPDIR to a shorter path"
    )


def exited(code: int) -> str:
    """How a server ended, from its exit status (negative: the signal that killed it)."""
    if code < 0:
        return f"server was killed by {processes.signal_name(-code)}"
    return f"server exited with status {code}"


@dataclass(frozen=True)
class Healthy:
    """What the app answers before anything happens: its status and a digest of its body
    ("" when the body differs from one request to the next)."""

    status: str  # "200"
    digest: str = ""

    @property
    def ok(self) -> bool:
        """A 5xx before anything happened is no healthy answer to compare with."""
        return self.status.isdigit() and not self.status.startswith("5")


def served(result: str, proxied: bool, healthy: Healthy | None = None) -> bool:
    """Did the app answer?  ``result`` is a probe's ("ok", "HTTP 404", "ECONNREFUSED") or a
    status code ("404").  Against a ``healthy`` answer: its status; without one, any status
    (a 404 included) except a proxy's own 502/503/504."""
    code = "200" if result == "ok" else result.removeprefix("HTTP ")
    if not code.isdigit():
        return False
    if healthy is not None:
        return code == healthy.status
    return not (proxied and code in GATEWAY_ERRORS)


def answer_once(
    address: str | tuple[str, int], timeout: float = 2.0, path: str = "/"
) -> tuple[str, str]:
    """One GET on a fresh connection: ("ok" | "HTTP 404" | the errno name | "timeout" |
    "bad response", the body's digest, "" when there was no answer)."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        s.connect(address)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        else:
            return "timeout", ""
        status = data.split(b"\r\n", 1)[0].split()
        if len(status) >= 2 and status[0].startswith(b"HTTP/1.") and status[1].isdigit():
            body = hashlib.sha256(data.partition(b"\r\n\r\n")[2]).hexdigest()[:16]
            return ("ok" if status[1] == b"200" else f"HTTP {status[1].decode()}"), body
        return ("bad response" if data else "empty response"), ""
    except socket.timeout:
        return "timeout", ""
    except OSError as exc:
        name = errno.errorcode.get(exc.errno, str(exc.errno)) if exc.errno else None
        return name or type(exc).__name__, ""
    finally:
        s.close()


def probe_once(
    address: str | tuple[str, int],
    timeout: float = 2.0,
    path: str = "/",
    healthy: Healthy | None = None,
) -> str:
    """``answer_once``'s result; against a ``healthy`` answer with a stable body, its status
    with another body is "HTTP 200 (another body)"."""
    result, digest = answer_once(address, timeout, path)
    code = "200" if result == "ok" else result.removeprefix("HTTP ")
    if healthy is not None and code == healthy.status and healthy.digest not in ("", digest):
        return f"HTTP {code} (another body)"
    return result


@dataclass
class ServerSpec:
    """What to boot: the app, gunicorn settings, the user's config file, where to listen."""

    app_source: str | None = PLAIN_APP  # written as web.py in the private directory
    app: str = "web:app"  # or the user's --app (app_source None), imported from app_dir
    app_dir: Path | None = None  # on the server's PYTHONPATH (--app-dir)
    settings: dict[str, Any] = field(default_factory=dict)  # after the config file
    defaults: dict[str, Any] = field(default_factory=dict)  # before the config file
    config_file: Path | None = None
    bind: str = "unix"  # or "tcp"
    boot_timeout: float = 10.0
    path: str = "/"  # what the readiness probe requests (any status will do)


class Server:
    """A gunicorn from the target's environment: ``start()`` it, always ``stop()`` it."""

    def __init__(self, ctx: RunContext, spec: ServerSpec, cancel: Cancel) -> None:
        self.ctx, self.spec, self.cancel = ctx, spec, cancel
        self.dir = private_dir("gunicorn-bisect-")
        self.token = uuid.uuid4().hex
        self.log = Log(self.dir / "gunicorn.log")
        self.mark = self.dir / "compat.mark"
        self.proc: subprocess.Popen | None = None
        tcp = spec.bind == "tcp"
        self.port: int | None = processes.free_port() if tcp else None
        self.socket_path: Path | None = None if tcp else self.dir / SOCKET_NAME
        self.workers = int(spec.settings.get("workers") or spec.defaults.get("workers") or 1)
        self.proxy: Proxy | None = None
        self.started = time.monotonic()
        self.boot_seconds = 0.0
        self.healthy: Healthy | None = None  # the app's answer before anything happened

    @property
    def address(self) -> str | tuple[str, int]:
        """gunicorn's own: a path (unix) or (host, port) (tcp)."""
        if self.socket_path is not None:
            return str(self.socket_path)
        return ("127.0.0.1", self.port or 0)

    @property
    def front(self) -> str | tuple[str, int]:
        """Where clients connect: the proxy in front, if any, else gunicorn."""
        if self.proxy is not None:
            return ("127.0.0.1", self.proxy.port)
        return self.address

    def put_proxy_in_front(self, kind: str, io_timeout: float) -> None:
        """A real h2o or nginx in front, in the private directory; it dies with the server."""
        workdir = self.dir / "proxy"
        workdir.mkdir(mode=0o700)
        self.proxy = start_proxy(kind, self.bind, workdir, token=self.token, io_timeout=io_timeout)

    @property
    def bind(self) -> str:
        """gunicorn's spelling of where it listens (and a proxy's upstream)."""
        if self.socket_path is not None:
            return f"unix:{self.socket_path}"
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """A requests URL: the proxy's, http+unix://... or http://127.0.0.1:PORT/."""
        if self.proxy is not None:
            return self.proxy.url
        if self.socket_path is not None:
            return f"http+unix://{quote(str(self.socket_path), safe='')}/"
        return f"http://127.0.0.1:{self.port}/"

    def listening(self) -> bool:
        """For a Unix socket: does the path still exist.  For TCP: always (no file)."""
        return self.socket_path is None or self.socket_path.exists()

    def client(self):
        """A requests session that speaks to this server (Unix or TCP)."""
        import requests_unixsocket

        return requests_unixsocket.Session()

    def probe(self, timeout: float = 2.0, path: str = "/", healthy: Healthy | None = None) -> str:
        """One fresh connection through the front (the proxy, if any)."""
        return probe_once(self.front, timeout, path, healthy)

    def read_healthy(self, path: str) -> Healthy:
        """``healthy``: read twice through the front, the body's digest only when both agree."""
        (first, one), (second, two) = (answer_once(self.front, PROBE_TIMEOUT, path) for _ in "12")
        status = "200" if first == "ok" else first.removeprefix("HTTP ")
        self.healthy = Healthy(status, one if (first, one) == (second, two) else "")
        return self.healthy

    def _config(self) -> str:
        """defaults < the user's config file < explicit settings < what the harness owns."""
        lines = ["# generated by gunicorn-bisect"]
        lines += [f"{k} = {v!r}" for k, v in self.spec.defaults.items()]
        if self.spec.config_file is not None:
            path = str(self.spec.config_file.resolve())
            lines.append(f"exec(compile(open({path!r}).read(), {path!r}, 'exec'))")
        lines += [f"{k} = {v!r}" for k, v in self.spec.settings.items()]
        lines += [
            f"bind = {self.bind!r}",  # a string: every release takes it (a list from 17.0)
            # 25.1.0+ open a control socket in ~/.gunicorn by default, shared between
            # concurrent runs; keep it private (older releases ignore unknown names)
            f"control_socket = {str(self.dir / 'gunicorn.ctl')!r}",
            "daemon = False",
            "pidfile = None",
            "errorlog = '-'",
            "loglevel = 'debug'",
        ]
        return "\n".join(lines) + "\n"

    def _env(self) -> dict[str, str]:
        """The server's environment: nothing from the harness's Python leaks in."""
        env = processes.child_env(self.token)
        env[SHIM_MARK_ENV] = str(self.mark)
        paths = [self.ctx.compat_dir, self.spec.app_dir]
        if any(paths):
            env["PYTHONPATH"] = os.pathsep.join(str(p) for p in paths if p is not None)
        return env

    def start(self) -> None:
        """Launch and wait until every worker booted and the socket answers HTTP (any status:
        the app may have no ``/``); else BootError with the log's most telling line."""
        if self.spec.app_source is not None:
            module = self.spec.app.split(":", 1)[0]
            (self.dir / f"{module}.py").write_text(self.spec.app_source)
        conf = self.dir / "gunicorn_conf.py"
        conf.write_text(self._config())
        self.proc = processes.launch(
            [str(self.ctx.python), "-c", GUNICORN, "-c", str(conf), self.spec.app],
            cwd=self.dir,
            env=self._env(),
            output=self.log.path,
        )
        deadline = self.started + self.spec.boot_timeout
        while time.monotonic() < deadline:
            self.cancel.raise_if_set()
            self.log.refresh()
            if self.proc.poll() is not None or self.log.retrying:
                break  # a bind that failed once fails again: do not wait out the retries
            seen = self.log.setting("workers")
            if seen and seen.isdigit():  # a user's config may set its own worker count
                self.workers = int(seen)
            if self.log.crashes > 2 * self.workers:
                break  # workers crash as fast as the arbiter respawns them
            if (
                self.listening()
                and self.log.boots >= self.workers
                and served(probe_once(self.address, 2.0, self.spec.path), proxied=False)
            ):
                self.boot_seconds = round(time.monotonic() - self.started, 3)
                return
            time.sleep(0.02)
        self.log.refresh(drain=self.proc.poll() is not None)
        raise BootError(self._why_not_booted())

    def _why_not_booted(self) -> str:
        """The log's most telling line; for a server that exited without one (a config file
        calling ``os._exit(3)``), its exit status, not a stray warning's line."""
        code = self.proc.poll() if self.proc is not None else None
        why = self.log.boot_error(routine=code is None)
        if not why:
            why = "no output" if code is None else f"{exited(code)} before booting; no error logged"
        crashes = self.log.crashes
        if crashes > 2 * self.workers:
            why = f"workers crash on start ({crashes} times): {why}"
        elif code is None and not self.log.retrying:
            why = f"{self._stuck_at()} (boot ran out; {why})"
        return why

    def _stuck_at(self) -> str:
        """Where a boot that ran out stopped: no socket, a worker that never came up (25.1.0's
        fork deadlock, #3509), or no HTTP answer."""
        limit = f"{self.spec.boot_timeout:g}s"
        if not self.listening():
            return f"not listening after {limit}"
        if self.log.boots < self.workers:
            return f"{self.log.boots} of {self.workers} workers booted in {limit}, the rest hung"
        return f"listening, but no HTTP answer in {limit}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def arbiter_pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def signal(self, sig: int = signals.SIGTERM, pid: int | None = None) -> bool:
        """Send ``sig`` to a worker (``pid``) or the arbiter; False if it is gone."""
        target = pid or self.arbiter_pid
        if not target or target <= 0:  # never 0 or -1: that would signal our own group
            return False
        try:
            os.kill(target, sig)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def setting(self, name: str, default: Any = None) -> Any:
        """The server's own value of a setting, as it logged it."""
        self.log.refresh()
        seen = self.log.setting(name)
        if seen is None:
            return default
        return int(seen) if seen.isdigit() else seen

    def exit_status(self) -> str:
        code = self.proc.returncode if self.proc is not None else None
        return f"exit status {code}: {self.log.boot_error() or 'no error logged'}"

    @property
    def compat_used(self) -> bool:
        return self.mark.exists()

    def stop(self) -> str:
        """Kill the whole group, sweep stragglers, remove the directory; returns the log."""
        text = self.log.refresh()
        if self.proxy is not None:
            self.proxy.stop()
        if self.proc is not None:
            processes.terminate(self.proc, self.token)
        shutil.rmtree(self.dir, ignore_errors=True)
        return text

    def scrub(self, text: str) -> str:
        """The private directory's random name is noise in evidence."""
        return text.replace(str(self.dir), "<tmpdir>")

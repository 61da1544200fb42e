"""The one place that boots gunicorn: config, launch, wait until it serves, read its
log, signal it, probe it, tear it down.  Every scenario (and a user's scenario file)
uses this fixture, so process hygiene and time bounds are the same for all.

The server runs from the target's environment in a private 0700 directory, in its
own session, with a run token in its environment (teardown kills the group, then
sweeps for the token), and dies with the harness even on SIGKILL (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import codecs
import errno
import os
import re
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
from harness.host.cancel import Cancel
from harness.host.compat import SHIM_MARK_ENV
from harness.host.proxy import Proxy
from harness.host.proxy import start as start_proxy
from harness.model.errors import HarnessError
from harness.scenarios.base import RunContext

RUN_TOKEN_ENV = processes.RUN_TOKEN_ENV

#: A plain WSGI app: what a user's scenario file gets when it brings none.
PLAIN_APP = """\
def app(environ, start_response):
    body = b'Hello World'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
"""

# The arbiter asks the kernel to SIGKILL it if the harness dies (even by SIGKILL, which no
# handler sees); its workers notice the lost parent and exit on their own.  Linux only,
# hence the guard; Python 3.6-safe, since it runs in the target interpreter.
LAUNCH = """\
import os, sys
try:
    import ctypes
    ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
except Exception:
    pass
if os.getppid() != int(sys.argv.pop(1)):
    sys.exit('gunicorn-bisect: the harness is gone')
sys.argv[0] = 'gunicorn'
from gunicorn.app.wsgiapp import run
run()
"""

# gunicorn's name for a worker class in "Using worker: ..." -> the name users pass
_WORKER_NAMES = {"threads": "gthread", "sync": "sync"}


class BootError(HarnessError):
    """The server did not come up; the message is the one-line reason."""


class PhaseTimeout(Exception):
    """The run's deadline passed during a phase; the message names the phase."""


def server_command(python: Path, conf: Path, app: str) -> list[str]:
    return [str(python), "-c", LAUNCH, str(os.getpid()), "-c", str(conf), app]


class Log:
    """Incremental reader of the server's log file, and what it says."""

    BOOT = re.compile(r"Booting worker with pid: (\d+)")
    EXIT = re.compile(r"Worker exiting \(pid: (\d+)\)")
    USING = re.compile(r"Using worker: (\S+)")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.text = ""
        self._offset = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def refresh(self) -> str:
        """Append what the server wrote since the last call (polled every few ms)."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except OSError:
            return self.text
        self._offset += len(chunk)
        self.text += self._decoder.decode(chunk)
        return self.text

    @property
    def boots(self) -> int:
        return len(self.BOOT.findall(self.text))

    @property
    def exits(self) -> int:
        return len(set(self.EXIT.findall(self.text)))

    @property
    def worker_pids(self) -> list[int]:
        """Workers booted and not (yet) logged as exiting, oldest first."""
        gone = set(self.EXIT.findall(self.text))
        return [int(p) for p in self.BOOT.findall(self.text) if p not in gone]

    @property
    def worker_class(self) -> str | None:
        found = self.USING.search(self.text)
        if not found:
            return None
        name = found.group(1)
        return _WORKER_NAMES.get(name, name.rsplit(".", 1)[-1])

    def errors(self, limit: int = 3) -> list[str]:
        """The arbiter's and workers' own error lines, quoted as evidence."""
        found = re.findall(r"^\[[^]]*\] \[\d+\] \[(?:ERROR|CRITICAL)\] (.+)$", self.text, re.M)
        return list(dict.fromkeys(found))[-limit:]


def last_traceback(log: str) -> str:
    """The last Python traceback in a gunicorn log (a worker's, in the failing case)."""
    lines = log.splitlines()
    starts = [i for i, ln in enumerate(lines) if ln.startswith("Traceback (most recent call last)")]
    if not starts:
        return ""
    block = [lines[starts[-1]]]
    for ln in lines[starts[-1] + 1 :]:
        if ln.startswith("[") and "] [" in ln:  # the next log record
            break
        block.append(ln)
        if ln and not ln[0].isspace():  # the unindented exception line closes it
            break
    return "\n".join(block).strip()


def effective_setting(log: str, name: str) -> str | None:
    """A setting as the arbiter reports it ("Current configuration:" at debug level).

    With ``--gunicorn-config`` the user's file decides workers and max_requests; the
    counts a scenario waits for must be the server's own, not our defaults.
    """
    found = re.search(rf"^\s+{re.escape(name)}: (\S+)\s*$", log, flags=re.M)
    return found.group(1) if found else None


def boot_error(log: str) -> str:
    """The most telling line of a server that did not come up."""
    for pattern in (
        r"connection to \S+ failed: (.+)",
        r"^(\w*Error: .+)$",
        r"^(\w*Exception: .+)$",
    ):
        found = re.findall(pattern, log, flags=re.M)
        if found:
            return found[-1].strip()
    for ln in reversed(log.splitlines()):
        if ln.strip() and "DEBUG" not in ln:
            return re.sub(r"^\[[^]]*\] \[\d+\] \[\w+\] ", "", ln.strip())
    return "no output"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def probe_once(address: str | tuple[str, int], timeout: float = 2.0, path: str = "/") -> str:
    """One fresh connection: "ok", or the errno name / "timeout" / "bad response"."""
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
            return "timeout"
        status = data.split(b"\r\n", 1)[0].split()
        if len(status) >= 2 and status[0].startswith(b"HTTP/1.") and status[1].isdigit():
            return "ok" if status[1] == b"200" else f"HTTP {status[1].decode()}"
        return "bad response" if data else "empty response"
    except OSError as exc:
        if isinstance(exc, socket.timeout):
            return "timeout"
        if exc.errno:
            return errno.errorcode.get(exc.errno, str(exc.errno))
        return type(exc).__name__
    finally:
        s.close()


@dataclass
class ServerSpec:
    """What to boot: the app, gunicorn settings, the user's config file, where to listen."""

    app_source: str = PLAIN_APP  # written as web.py in the private directory
    app: str = "web:app"
    settings: dict[str, Any] = field(default_factory=dict)  # after the config file
    defaults: dict[str, Any] = field(default_factory=dict)  # before the config file
    config_file: Path | None = None
    bind: str = "unix"  # or "tcp"
    boot_timeout: float = 10.0


class Server:
    """A running gunicorn from the target's environment (use as a context manager)."""

    def __init__(self, ctx: RunContext, spec: ServerSpec, cancel: Cancel) -> None:
        self.ctx, self.spec, self.cancel = ctx, spec, cancel
        self.dir = Path(tempfile.mkdtemp(prefix="gunicorn-bisect-"))
        os.chmod(self.dir, 0o700)
        self.token = uuid.uuid4().hex
        self.log = Log(self.dir / "gunicorn.log")
        self.mark = self.dir / "compat.mark"
        self.proc: subprocess.Popen | None = None
        self.socket_path: Path | None = None
        self.port: int | None = None
        if spec.bind == "tcp":
            self.port = free_port()
        else:
            self.socket_path = self.dir / "gunicorn.sock"
        self.workers = int(spec.settings.get("workers") or spec.defaults.get("workers") or 1)
        self.proxy: Proxy | None = None
        self.started = time.monotonic()
        self.boot_seconds = 0.0

    # -- where it listens ------------------------------------------------------------
    @property
    def address(self) -> str | tuple[str, int]:
        """For sockets: a path (unix) or (host, port) (tcp) -- gunicorn's own."""
        if self.socket_path is not None:
            return str(self.socket_path)
        return ("127.0.0.1", self.port or 0)

    @property
    def front(self) -> str | tuple[str, int]:
        """Where clients connect: the proxy in front, when there is one, else gunicorn."""
        if self.proxy is not None:
            return ("127.0.0.1", self.proxy.port)
        return self.address

    def put_proxy_in_front(self, kind: str, io_timeout: float) -> None:
        """A real h2o or nginx reverse-proxying to this server (see harness/proxy.py);
        it lives in the private directory and dies with the server."""
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
        """A requests URL: the proxy's, http+unix://... (requests-unixsocket) or
        http://127.0.0.1:PORT/."""
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

    def probe(self, timeout: float = 2.0, path: str = "/") -> str:
        """One fresh connection through the front (the proxy, if any)."""
        return probe_once(self.front, timeout, path)

    # -- life cycle ------------------------------------------------------------------
    def _config(self) -> str:
        """defaults < the user's config file < explicit settings < what the harness owns."""
        lines = ["# generated by gunicorn-bisect"]
        lines += [f"{k} = {v!r}" for k, v in self.spec.defaults.items()]
        if self.spec.config_file is not None:
            path = str(self.spec.config_file.resolve())
            lines.append(f"exec(compile(open({path!r}).read(), {path!r}, 'exec'))")
        lines += [f"{k} = {v!r}" for k, v in self.spec.settings.items()]
        lines += [
            f"bind = [{self.bind!r}]",
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
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env[RUN_TOKEN_ENV] = self.token
        env[SHIM_MARK_ENV] = str(self.mark)
        if self.ctx.compat_dir is not None:
            env["PYTHONPATH"] = str(self.ctx.compat_dir)
        return env

    def start(self) -> None:
        """Launch and wait until the socket answers and every worker has booted.

        Raises BootError with the most telling line of the log when it does not.
        """
        module = self.spec.app.split(":", 1)[0]
        (self.dir / f"{module}.py").write_text(self.spec.app_source)
        conf = self.dir / "gunicorn_conf.py"
        conf.write_text(self._config())
        with open(self.log.path, "wb") as logf:
            self.proc = subprocess.Popen(
                server_command(self.ctx.python, conf, self.spec.app),
                cwd=self.dir,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.register(self.proc, self.token)
        deadline = self.started + self.spec.boot_timeout
        while time.monotonic() < deadline:
            self.cancel.check()
            self.log.refresh()
            if self.proc.poll() is not None or "Retrying in 1 second" in self.log.text:
                break  # a bind that failed once fails again: do not wait out the retries
            seen = effective_setting(self.log.text, "workers")
            if seen and seen.isdigit():  # a user's config may set its own worker count
                self.workers = int(seen)
            if self.log.text.count("Exception in worker process") > 2 * self.workers:
                break  # workers crash as fast as the arbiter respawns them
            if (
                self.listening()
                and self.log.boots >= self.workers
                and probe_once(self.address, 2.0) == "ok"
            ):
                self.boot_seconds = round(time.monotonic() - self.started, 3)
                return
            time.sleep(0.02)
        self.log.refresh()
        why = boot_error(self.log.text) if self.log.text.strip() else "no output"
        crashes = self.log.text.count("Exception in worker process")
        if crashes > 2 * self.workers:
            why = f"workers crash on start ({crashes} times): {why}"
        elif self.proc.poll() is None and "Retrying" not in self.log.text:
            why = f"not listening after {self.spec.boot_timeout:g}s (boot ran out; {why})"
        raise BootError(why)

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
        """The server's own value of a setting, from its logged configuration."""
        seen = effective_setting(self.log.refresh(), name)
        if seen is None:
            return default
        return int(seen) if seen.isdigit() else seen

    def exit_status(self) -> str:
        code = self.proc.returncode if self.proc is not None else None
        return f"exit status {code}: {boot_error(self.log.text)}"

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
        """The private directory's random name is noise in evidence meant to be compared."""
        return text.replace(str(self.dir), "<tmpdir>")

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

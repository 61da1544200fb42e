"""A real reverse proxy (h2o or nginx) in front of the server under test.

Issue #1298 was seen as h2o answering 502 Bad Gateway once a recycled gthread worker had
unlinked gunicorn's Unix socket.  The proxy runs for real: a private config in a
directory the caller owns, a free 127.0.0.1 port, short upstream timeouts (a hung server
must not cost 30-60 s), started by ``processes.launch`` so it never outlives its run.
"""

from __future__ import annotations

import errno
import json
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness.host import processes
from harness.host.processes import free_port
from harness.model.errors import HarnessError
from harness.model.verdict import last_line

KINDS = ("h2o", "nginx")
INSTALL = {"h2o": "apt-get install h2o", "nginx": "apt-get install nginx-light"}
#: Debian installs nginx in /usr/sbin, which a non-root PATH often lacks.
EXTRA_DIRS = ("/usr/sbin", "/usr/bin")


class ProxyError(HarnessError):
    """The proxy could not be started; the message is one line for the user."""


class ProxyMissing(ProxyError):
    """The proxy binary is not installed."""


def find_binary(kind: str, path: str | None = None) -> str:
    """The proxy's executable: on ``path`` (default: $PATH, then /usr/sbin and /usr/bin)."""
    if kind not in KINDS:
        raise ProxyError(f"unknown proxy {kind!r}: choose one of {', '.join(KINDS)}")
    if path is None:
        path = os.pathsep.join([os.environ.get("PATH", os.defpath), *EXTRA_DIRS])
    found = shutil.which(kind, path=path)
    if not found:
        raise ProxyMissing(f"{kind} not found: install it with `{INSTALL[kind]}`")
    return found


def _socket_path(upstream: str) -> str | None:
    """The socket's path of ``unix:/path``, None for ``HOST:PORT``; else ProxyError."""
    if upstream.startswith("unix:"):
        sock = upstream.removeprefix("unix:")
        if not sock.startswith("/") or ":" in sock:
            raise ProxyError(f"upstream {upstream!r}: want unix:/absolute/path (no ':')")
        return sock
    host, _, port = upstream.rpartition(":")
    if not host or not port.isdigit():
        raise ProxyError(f"upstream {upstream!r}: want unix:/path or HOST:PORT")
    return None


def _q(text: str) -> str:
    """A quoted string for nginx's config and for h2o's YAML (JSON strings are YAML)."""
    return json.dumps(text)


def h2o_config(port: int, upstream: str, workdir: Path, io_timeout: float) -> str:
    """h2o's YAML.  keepalive 0: h2o 2.2 reuses pooled upstream connections and answers
    502 when the server closed one meanwhile (a recycling gunicorn worker does; 2-4 per
    120 requests on a healthy 19.5.0, none with the setting).  As root it stays root: as
    nobody it could not write its pid file (exit 71)."""
    sock = _socket_path(upstream)
    url = f"http://[unix:{sock}]/" if sock else f"http://{upstream}/"
    root = os.geteuid() == 0
    user = f"user: {_q(pwd.getpwuid(0).pw_name)}\n" if root else ""
    return f"""\
{user}pid-file: {_q(str(workdir / "h2o.pid"))}
error-log: {_q(str(workdir / "error.log"))}
listen:
  host: 127.0.0.1
  port: {port}
hosts:
  default:
    paths:
      /:
        proxy.reverse.url: {_q(url)}
        proxy.timeout.io: {max(1, round(io_timeout * 1000))}
        proxy.timeout.keepalive: 0
"""


def nginx_config(port: int, upstream: str, workdir: Path, io_timeout: float) -> str:
    """nginx's config.  One process (``master_process off``): no workers to orphan when
    the harness is killed (PDEATHSIG reaches only the process we exec), none that drop to
    nobody and cannot reach a socket in a 0700 directory, and no setproctitle over the
    environment that carries the run token.  Every path it writes is in ``workdir``."""
    sock = _socket_path(upstream)
    url = f"http://unix:{sock}:/" if sock else f"http://{upstream}/"
    ms = f"{max(1, round(io_timeout * 1000))}ms"
    temp = workdir / "temp"
    temps = "\n".join(
        f"    {name}_temp_path {_q(str(temp / name))};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""\
daemon off;
master_process off;
pid {_q(str(workdir / "nginx.pid"))};
error_log {_q(str(workdir / "error.log"))} warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
{temps}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass {_q(url)};
            proxy_connect_timeout {ms};
            proxy_send_timeout {ms};
            proxy_read_timeout {ms};
        }}
    }}
}}
"""


@dataclass
class Proxy:
    """A running proxy; ``stop()`` it (idempotent) when the run ends."""

    kind: str
    port: int
    workdir: Path
    proc: subprocess.Popen
    token: str
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        """Kill the proxy's session and sweep its token: nothing is left running."""
        if self._stopped:
            return  # its pid may belong to someone else by now
        processes.terminate(self.proc, self.token)
        self._stopped = True

    def ready(self) -> bool:
        """Listening, and the listener is its own.  Both proxies write their pid file after
        they bound the port, so our pid there rules out a process that took the port
        between free_port() and the bind (a bare connect would call a dying proxy ready)."""
        try:
            pid = (self.workdir / f"{self.kind}.pid").read_text().strip()
            if pid != str(self.proc.pid) or self.proc.poll() is not None:
                return False
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def log_tail(self, n: int = 20) -> str:
        """The last ``n`` lines of its error log (start-up errors, upstream failures)."""
        return "\n".join(_read_from(self.workdir / "error.log", 0).splitlines()[-n:])


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def _why(said: str) -> str:
    """The line that says why: the last error-looking one (nginx ends a failed bind with
    a vaguer "still could not bind()"), else the last one."""
    return last_line(said, prefer=("in use", "failed"), default="no output")


def _in_use(said: str) -> bool:
    return "Address already in use" in said or f"({errno.EADDRINUSE}:" in said


class _PortTaken(ProxyError):
    """Another process took the free port before the proxy bound it."""


def start(
    kind: str,
    upstream: str,
    workdir: Path,
    *,
    token: str,
    io_timeout: float = 3.0,
    start_timeout: float = 5.0,
    path: str | None = None,
) -> Proxy:
    """Start ``kind`` proxying 127.0.0.1:<free port> to ``upstream`` (``unix:/path`` or
    ``HOST:PORT``) and wait until it accepts connections.  ``workdir`` is a private
    directory the caller owns (config, pid, logs, temp paths).  Call it from a thread that
    outlives the proxy: the parent-death signal follows the starting thread.  Raises
    ProxyMissing, or ProxyError with the log's last line."""
    binary = find_binary(kind, path)
    _socket_path(upstream)  # a bad spelling fails before anything starts
    workdir = Path(workdir)
    if not workdir.is_dir():
        raise ProxyError(f"{kind}: working directory {workdir} does not exist")
    args = (kind, binary, upstream, workdir, token, io_timeout, start_timeout)
    try:
        return _start_once(*args)
    except _PortTaken:  # someone took the free port first: one more pick
        return _start_once(*args)


def _start_once(
    kind: str,
    binary: str,
    upstream: str,
    workdir: Path,
    token: str,
    io_timeout: float,
    start_timeout: float,
) -> Proxy:
    port = free_port()
    conf, log = workdir / f"{kind}.conf", workdir / "error.log"
    offset = log.stat().st_size if log.exists() else 0
    if kind == "h2o":
        conf.write_text(h2o_config(port, upstream, workdir, io_timeout))
        argv = [binary, "-c", str(conf)]
    else:
        conf.write_text(nginx_config(port, upstream, workdir, io_timeout))
        (workdir / "temp").mkdir(exist_ok=True)
        # -p/-e keep nginx off its compiled-in prefix and /var/log/nginx/error.log
        argv = [binary, "-p", f"{workdir}/", "-e", str(log), "-c", str(conf)]
    # The error log doubles as stdout/stderr: config errors printed before the proxy
    # opens its own log land in the same file (all writers append).
    env = processes.child_env(token)
    proc = processes.launch(argv, cwd=workdir, env=env, output=log)
    proxy = Proxy(kind=kind, port=port, workdir=workdir, proc=proc, token=token)
    deadline = time.monotonic() + start_timeout
    # nginx retries a busy port for 2.5 s before it gives up: do not wait for it
    while time.monotonic() < deadline and proc.poll() is None:
        if proxy.ready():
            return proxy
        if _in_use(_read_from(log, offset)):
            break
        time.sleep(0.005)
    exit_code = proc.poll()
    proxy.stop()
    said = _read_from(log, offset)
    if _in_use(said):
        raise _PortTaken(f"{kind} could not bind 127.0.0.1:{port}: {_why(said)}")
    if exit_code is not None:
        raise ProxyError(f"{kind} did not start (exit {exit_code}): {_why(said)}")
    raise ProxyError(
        f"{kind} did not accept connections on 127.0.0.1:{port} within "
        f"{start_timeout:g} s: {_why(said)}"
    )


def status_counts(codes: Iterable[int | str]) -> dict[str, int]:
    """Outcomes tallied by status, e.g. ``{"200": 117, "502": 3}`` (sorted by key)."""
    return dict(sorted(Counter(str(code) for code in codes).items()))

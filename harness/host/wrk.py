"""The report's own load generator: Debian's ``wrk``, its summary as data.

The seed report (#1298) measured with ``wrk -t10 -c200`` through h2o and its 502s are
the evidence; the built-in ``load`` client cannot make that much traffic on 2 cores.
wrk speaks only TCP: it targets a TCP bind or the proxy in front.  Our ``done()`` hook
(Lua, ``-s``) prints the summary as one JSON line, so nothing depends on wrk's text
layout.  Every run is bounded (``duration``, a hard limit on the process), and
``stop()`` ends load during an action (SIGINT: wrk still prints its summary):
``with Wrk(url) as w: action(); summary = w.stop()``.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.host import processes
from harness.model.errors import HarnessError

#: The seed report's shape.
THREADS, CONNECTIONS = 10, 200
_MARK = "GUNICORN_BISECT_WRK "
# Prints the fields of WrkSummary, in its units (latencies truncated to whole microseconds).
_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  local n = summary.requests
  local mean, p99, max = 0, 0, 0
  if n > 0 then mean, p99, max = latency.mean, latency:percentile(99), latency.max end
  io.write(string.format(
    '\\n%s{"requests": %d, "seconds": %.6f, "bytes": %d, "connect": %d, "read": %d,'
    .. ' "write": %d, "timeout": %d, "non_2xx_3xx": %d, "latency_mean_ms": %.3f,'
    .. ' "latency_p99_ms": %.3f, "latency_max_ms": %.3f}\\n',
    "MARK", n, summary.duration / 1e6, summary.bytes, e.connect, e.read, e.write, e.timeout,
    e.status, math.floor(mean) / 1000, math.floor(p99) / 1000, math.floor(max) / 1000))
end
""".replace("MARK", _MARK)


class WrkError(HarnessError):
    """wrk is missing, cannot reach a Unix socket, or gave no summary."""


@dataclass(frozen=True)
class WrkSummary:
    """wrk's own counts for one run (its "Socket errors" and "Non-2xx or 3xx responses")."""

    requests: int
    seconds: float
    bytes: int
    connect: int
    read: int
    write: int
    timeout: int
    non_2xx_3xx: int  # wrk counts status >= 400 here
    latency_mean_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    command: str
    text: str  # wrk's printed summary, as evidence
    unreachable: str = ""  # wrk's "unable to connect ..." when its first connect failed

    @property
    def socket_errors(self) -> int:
        return self.connect + self.read + self.write + self.timeout

    @property
    def failed(self) -> int:
        return self.socket_errors + self.non_2xx_3xx

    def as_json(self) -> dict:
        errors = {k: getattr(self, k) for k in ("connect", "read", "write", "timeout")}
        latency = (self.latency_mean_ms, self.latency_p99_ms, self.latency_max_ms)
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "bytes": self.bytes,
            "failed": self.failed,
            "non_2xx_3xx": self.non_2xx_3xx,
            "socket_errors": errors,
            "latency_ms": dict(zip(("mean", "p99", "max"), latency)),
            "command": self.command,
            "unreachable": self.unreachable,
        }


def unusable(binds: Sequence[str], proxy: str | None, wrk: str = "wrk") -> str:
    """Why wrk cannot drive this run ('' when it can)."""
    if shutil.which(wrk) is None:
        return f"{wrk} not found (Debian: apt-get install wrk)"
    if "unix" in binds and proxy is None:
        return "wrk speaks TCP only: with a Unix bind put --proxy h2o in front (or --bind tcp)"
    return ""


def url_for(address: str | tuple[str, int], path: str = "/") -> str:
    """The URL wrk needs for ``address``; a Unix socket path is refused (wrk is TCP only)."""
    if isinstance(address, str):
        raise WrkError(
            f"wrk speaks only TCP: bind gunicorn on TCP or put a proxy in front of {address}"
        )
    host, port = address
    return f"http://{host}:{port}/{path.lstrip('/')}"


def parse(stdout: str, command: str) -> WrkSummary:
    """The summary from wrk's output (the ``done()`` line), or WrkError without one.
    When wrk could not connect at all it prints only why: a summary with no counts and
    ``unreachable`` set (an observation of the target, not our error)."""
    line = next((ln for ln in stdout.splitlines() if ln.startswith(_MARK)), None)
    lost = next((ln for ln in stdout.splitlines() if ln.startswith("unable to connect")), None)
    if line is None and lost:  # wrk gives up before any request: no counts, only why
        return WrkSummary(0, 0.0, 0, 0, 0, 0, 0, 0, 0.0, 0.0, 0.0, command, stdout.strip(), lost)
    if line is None:
        raise WrkError(f"wrk printed no summary: {stdout.strip()[-300:] or '(nothing)'}")
    text = "\n".join(ln for ln in stdout.splitlines() if not ln.startswith(_MARK)).strip()
    return WrkSummary(**json.loads(line[len(_MARK) :]), command=command, text=text)


OUTPUT_CAP = 1 << 20  # wrk's summary is a few KiB


class Wrk:
    """One wrk process: ``run()`` to the end, or ``start()`` ... ``stop()`` around an action."""

    def __init__(
        self,
        url: str,
        duration: float = 10.0,
        threads: int = THREADS,
        connections: int = CONNECTIONS,
        timeout: int = 2,
        wrk: str = "wrk",
        env: dict[str, str] | None = None,
        margin: float = 10.0,  # seconds past its own bounds before it is killed
    ) -> None:
        exe = shutil.which(wrk)
        if exe is None:
            raise WrkError(f"{wrk} not found (Debian: apt-get install wrk)")
        self.url, self.duration = url, max(1, round(duration))  # wrk takes whole seconds
        self.timeout = max(1, round(timeout))
        self.threads, self.connections = min(threads, connections), connections
        self._exe, self._env, self._margin = exe, env, margin
        self._dir = tempfile.TemporaryDirectory(prefix="gunicorn-bisect-wrk-")
        self._where = Path(self._dir.name)
        self._proc: subprocess.Popen | None = None
        self._summary: WrkSummary | None = None

    @property
    def _shape(self) -> list[str]:
        t, c, d = self.threads, self.connections, self.duration
        return [f"-t{t}", f"-c{c}", f"-d{d}s", "--timeout", f"{self.timeout}s"]

    @property
    def argv(self) -> list[str]:
        return [self._exe, *self._shape, "-s", str(self._where / "done.lua"), self.url]

    @property
    def command(self) -> str:
        """What a user types to repeat it (without our summary script)."""
        return " ".join(["wrk", *self._shape, self.url])

    def start(self) -> Wrk:
        """wrk started by processes.launch, its output in a file (no pipe a forked child
        could hold open past the deadline)."""
        (self._where / "done.lua").write_text(_DONE)
        self._token = f"wrk-{uuid.uuid4().hex}"
        env = {**processes.child_env(self._token), **(self._env or {})}
        try:
            self._proc = processes.launch(
                self.argv, cwd=self._where, env=env, output=self._where / "out"
            )
        except OSError as exc:
            raise WrkError(f"{self._exe} cannot start: {exc}") from None
        self._deadline = time.monotonic() + self.duration + self.timeout + self._margin
        return self

    def stop(self, early: bool = True) -> WrkSummary:
        """Stop wrk (SIGINT when ``early``, else wait for its duration), by the deadline at
        the latest, and read its summary."""
        if self._summary is not None:
            return self._summary
        assert self._proc is not None, "start() first"
        if early and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout=max(0.1, self._deadline - time.monotonic()))
            finished = True
        except subprocess.TimeoutExpired:
            finished = False
        processes.terminate(self._proc, self._token)  # its tree, group and token: reaped
        try:
            with open(self._where / "out", "rb") as fh:
                out = fh.read(OUTPUT_CAP).decode("utf-8", errors="replace")
        except OSError:
            out = ""
        finally:
            self._dir.cleanup()
        if not finished:
            raise WrkError(f"wrk did not finish within its bounds: {self.command}")
        self._summary = parse(out, self.command)
        return self._summary

    def run(self) -> WrkSummary:
        """The whole ``duration`` and its summary."""
        return self.start().stop(early=False)

    def __enter__(self) -> Wrk:
        return self.start()

    def __exit__(self, *exc) -> None:
        if self._proc is not None and self._summary is None:
            try:
                self.stop()
            except WrkError:
                if exc[0] is None:
                    raise

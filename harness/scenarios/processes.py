"""Server process hygiene: every gunicorn we start dies with its run.

Each server runs in its own session (so its process group holds the arbiter and all
its workers) and carries a unique token in its environment.  Teardown kills the group
and then sweeps /proc for any process still carrying the token -- a worker whose
arbiter died, or one that left the group -- so nothing outlives a run, even on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

#: The environment variable that marks every process a run starts (server, proxy, --run).
RUN_TOKEN_ENV = "GUNICORN_BISECT_RUN"

_live: dict[int, tuple[subprocess.Popen, str]] = {}
_lock = threading.Lock()


def register(proc: subprocess.Popen, token: str) -> None:
    with _lock:
        _live[proc.pid] = (proc, token)


def pids_with_token(token: str) -> list[int]:
    """Processes whose environment carries ``token`` (Linux /proc; empty elsewhere)."""
    needle = f"={token}".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return [p for p in found if p != os.getpid()]


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def terminate(proc: subprocess.Popen, token: str) -> None:
    """Kill the server's whole process group, reap it, then sweep stragglers by token."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        _kill(proc.pid)
    for _ in range(50):
        left = pids_with_token(token)
        if not left:
            break
        for pid in left:
            _kill(pid)
        time.sleep(0.02)
    with _lock:
        _live.pop(proc.pid, None)


def terminate_all() -> None:
    """Used by the signal handlers: end every server still running."""
    with _lock:
        items = list(_live.values())
    for proc, token in items:
        terminate(proc, token)

"""What this host's kernel does with SO_REUSEPORT on a Unix socket, and the shim for it.

Linux 6.13 (backported to 6.12.9 and 6.1.124, "net: restrict SO_REUSEPORT to inet
sockets") rejects ``SO_REUSEPORT`` on ``AF_UNIX`` with EOPNOTSUPP, so gunicorn
19.7.0-19.7.1, which set it unconditionally, cannot bind a Unix socket there: a host
incompatibility, not the bug under test.  The shim makes exactly that call a no-op in the
server process, as older kernels did, and leaves a mark so the report can say which rows
needed it.
"""

from __future__ import annotations

import errno
import platform
import socket
from dataclasses import dataclass
from pathlib import Path

from harness.host.fsutil import (
    NotPrivate,
    atomic_write_text,
    check_private,
    private_checked_dir,
    run_temp_dir,
)
from harness.model.errors import HarnessError

SHIM_MARK_ENV = "GUNICORN_BISECT_COMPAT_MARK"

# Runs inside the server's interpreter (any Python 3 gunicorn supports); keep it 3.6-safe.
SITECUSTOMIZE = """\
# gunicorn-bisect compat shim: SO_REUSEPORT on AF_UNIX becomes a no-op (see harness/host/compat.py)
import errno as _errno
import os as _os
import socket as _socket

_orig_setsockopt = _socket.socket.setsockopt


def _setsockopt(self, level, option, *args):
    try:
        return _orig_setsockopt(self, level, option, *args)
    except OSError as exc:
        if (
            exc.errno == _errno.EOPNOTSUPP
            and level == _socket.SOL_SOCKET
            and option == getattr(_socket, "SO_REUSEPORT", None)
            and self.family == getattr(_socket, "AF_UNIX", None)
        ):
            mark = _os.environ.get("@MARK_ENV@")
            if mark:
                with open(mark, "a") as fh:
                    fh.write("SO_REUSEPORT on AF_UNIX accepted as a no-op\\n")
            return None
        raise


_socket.socket.setsockopt = _setsockopt
""".replace("@MARK_ENV@", SHIM_MARK_ENV)


@dataclass(frozen=True)
class KernelAnswer:
    """What the host kernel does with SO_REUSEPORT on a Unix socket."""

    kernel: str
    reuseport_unix_rejected: bool
    detail: str

    def describe(self) -> str:
        if self.reuseport_unix_rejected:
            return f"kernel {self.kernel} rejects SO_REUSEPORT on AF_UNIX ({self.detail})"
        return f"kernel {self.kernel} accepts SO_REUSEPORT on AF_UNIX"


def ask_kernel() -> KernelAnswer:
    """Ask the kernel once, the same way gunicorn 19.7.0 does (a Linux or BSD
    ``socket`` module always has both constants)."""
    kernel = platform.release()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        except OSError as exc:
            name = (
                "EOPNOTSUPP"
                if exc.errno == errno.EOPNOTSUPP
                else errno.errorcode.get(exc.errno or 0, "?")
            )
            return KernelAnswer(kernel, True, f"errno {exc.errno} {name}")
    return KernelAnswer(kernel, False, "accepted")


def write_shim(directory: Path | None = None) -> Path:
    """Write the sitecustomize shim (on every server's PYTHONPATH, run as us) into
    ``directory``, by default ``compat-shim`` in the run's own 0700 TMPDIR, atomically.
    The directory must be ours and writable by nobody else: another local user's
    ``compat-shim/`` with a planted ``random.py`` once ran in every server.  Nothing of it
    outlives the run, so no cached bytecode of it is ever trusted."""
    if directory is None:
        directory = run_temp_dir() / "compat-shim"
    try:
        private_checked_dir(directory)
        if (directory / "__pycache__").exists():  # bytecode servers wrote must be ours too
            check_private(directory / "__pycache__")
    except NotPrivate as exc:
        raise HarnessError(f"compat shim: {exc}") from None
    stray = [
        p.name for p in directory.iterdir() if p.name not in ("sitecustomize.py", "__pycache__")
    ]
    if stray:
        raise HarnessError(
            f"compat shim: {directory} holds files the harness did not write: "
            f"{', '.join(sorted(stray)[:3])}: refused"
        )
    path = directory / "sitecustomize.py"
    try:
        current = path.read_text()
    except (OSError, ValueError):
        current = None
    if current != SITECUSTOMIZE:  # servers starting meanwhile import it: only when it differs
        atomic_write_text(path, SITECUSTOMIZE, mode=0o600)
    return directory

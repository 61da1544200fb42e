"""``--output FILE``: checked before the run, written safely after it.

A regular file is replaced atomically (a reader never sees half a report) and keeps its
mode; anything else -- a device (``/dev/stdout``), a pipe, a symlink -- is written
through, never replaced: replacing ``/dev/stdout`` as root would turn the device node
into a regular file, and replacing a link would cut it.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path

from harness.host import report_fd
from harness.model.errors import HarnessError


class OutputError(HarnessError):
    """``--output`` cannot be written (one line, exit status 2, before the run)."""


def _through(path: Path) -> bool:
    """True when ``path`` must be opened and written, not replaced."""
    if path.is_symlink():
        return True
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return False
    return not stat.S_ISREG(mode)


def check_output(path: Path) -> None:
    """Fail now, not after the whole run: a missing or unwritable directory, a
    directory as the file, a file or device we may not write."""
    where = f"--output {path}"
    if path.is_dir():
        raise OutputError(f"{where}: is a directory")
    if _through(path) or path.exists():
        if not os.access(path, os.W_OK):
            raise OutputError(f"{where}: not writable")
        if _through(path):
            return
    # a regular file is replaced through a temporary beside it: the directory must take one
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(f"{where}: no such directory {parent}")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{path.name}.probe-"):
            pass
    except OSError as exc:
        raise OutputError(f"{where}: not writable ({exc.strerror or exc})") from None


_FD_ALIAS = re.compile(
    r"/dev/(?P<std>stdout|stderr)|/dev/fd/(?P<fd>\d+)|/proc/self/fd/(?P<pfd>\d+)"
)


def _inherited_fd(path: Path) -> int | None:
    """The descriptor ``path`` names when it is one of ours (``/dev/stdout``,
    ``/dev/fd/N``): written as the shell opened it, so ``>> log`` stays append (opening
    ``/proc/self/fd/1`` anew, with truncation, emptied the log)."""
    m = _FD_ALIAS.fullmatch(str(path))
    if m is None:
        return None
    fd = {"stdout": 1, "stderr": 2}[m["std"]] if m["std"] else int(m["fd"] or m["pfd"])
    if fd == 1:
        fd = report_fd.stdout_fd()  # the user's stdout, held aside during a run
    try:
        os.fstat(fd)
    except OSError:
        return None
    return fd


def _write_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_output(path: Path, text: str) -> None:
    data = text.encode("utf-8")
    try:
        fd = _inherited_fd(path)
        if fd is not None:
            _write_fd(fd, data)
            return
        if _through(path):
            regular = path.exists() and stat.S_ISREG(path.stat().st_mode)
            # a device or a pipe is never truncated; a link to a regular file is its file
            flags = os.O_WRONLY | (os.O_TRUNC if regular else 0)
            out = os.open(path, flags | os.O_CLOEXEC)
            try:
                _write_fd(out, data)
            finally:
                os.close(out)
            return
        _replace(path, data)
    except OSError as exc:
        raise OutputError(f"--output {path}: {exc.strerror or exc}") from None


def _replace(path: Path, data: bytes) -> None:
    """Temp file beside it, fsync, the old file's mode (else the umask's), rename."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

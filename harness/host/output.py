"""Where the report goes: fd 1 held aside during a run, and ``--output FILE``, checked
before the run and written after it.  A regular file is replaced atomically (a reader
never sees half a report) and keeps its mode; a device, a pipe or a symlink is written
through: replacing ``/dev/stdout`` as root would turn the device node into a regular
file, and replacing a link would cut it.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TextIO

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
    through = _through(path)
    if (through or path.exists()) and not os.access(path, os.W_OK):
        raise OutputError(f"{where}: not writable")
    if through:
        return
    # a regular file is replaced through a temporary beside it: the directory must take one
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(f"{where}: no such directory {parent}")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{path.name}.writable-"):
            pass
    except OSError as exc:
        raise OutputError(f"{where}: not writable ({exc.strerror or exc})") from None


# -- While a run goes on, fd 1 is a copy of stderr: a program a scenario starts inherits
# fd 1, not ``sys.stdout``, and redirecting ``sys.stdout`` alone let its output into
# ``--format json``.  The report goes to a private duplicate of the original fd 1, which
# ``--output /dev/stdout`` means too.

_report_fd = 1


def stdout_fd() -> int:
    """The descriptor that is the user's stdout (fd 1, unless a run holds it aside)."""
    return _report_fd


@contextmanager
def own_stdout() -> Iterator[TextIO]:
    """fd 1 pointed at stderr for the run's duration; the report's stream on the original.
    In-process callers whose ``sys.stdout`` is not fd 1 (a test's capture) keep theirs."""
    global _report_fd
    if sys.stdout is not sys.__stdout__ or sys.stdout is None:
        yield sys.stdout
        return
    sys.stdout.flush()
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except OSError:
        yield sys.stdout
        return
    _report_fd = saved
    stream = os.fdopen(os.dup(saved), "w", encoding=sys.stdout.encoding, errors=sys.stdout.errors)
    try:
        yield stream
    finally:
        _report_fd = 1
        with suppress(OSError):
            stream.close()  # flushes first
        os.dup2(saved, 1)
        os.close(saved)


_FD_ALIAS = re.compile(r"/dev/(stdout|stderr)|(?:/dev|/proc/self)/fd/(\d+)")


def _inherited_fd(path: Path) -> int | None:
    """The descriptor ``path`` names when it is one of ours (``/dev/stdout``,
    ``/dev/fd/N``): written as the shell opened it, so ``>> log`` stays append (opening
    ``/proc/self/fd/1`` anew, with truncation, emptied the log)."""
    m = _FD_ALIAS.fullmatch(str(path))
    if m is None:
        return None
    fd = int(m[2]) if m[2] else {"stdout": 1, "stderr": 2}[m[1]]
    if fd == 1:
        fd = stdout_fd()  # the user's stdout, held aside during a run
    try:
        os.fstat(fd)
    except OSError:
        return None
    return fd


def write_output(path: Path, text: str) -> None:
    try:
        fd, ours = _inherited_fd(path), False
        if fd is None and _through(path):
            # a device or a pipe is never truncated; a link to a regular file is its file
            regular = path.exists() and stat.S_ISREG(path.stat().st_mode)
            flags = os.O_WRONLY | os.O_CLOEXEC | (os.O_TRUNC if regular else 0)
            fd, ours = os.open(path, flags), True
        if fd is None:
            _replace(path, text.encode("utf-8"))
            return
        with open(fd, "wb", closefd=ours) as out:
            out.write(text.encode("utf-8"))
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

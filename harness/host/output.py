"""Where the report goes: fd 1 held aside during a run (below), and ``--output FILE``,
checked before the run and written safely after it.

A regular file is replaced atomically (a reader never sees half a report) and keeps its
mode; anything else -- a device (``/dev/stdout``), a pipe, a symlink -- is written
through, never replaced: replacing ``/dev/stdout`` as root would turn the device node
into a regular file, and replacing a link would cut it.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{path.name}.writable-"):
            pass
    except OSError as exc:
        raise OutputError(f"{where}: not writable ({exc.strerror or exc})") from None


# -- The report's own descriptor: while a run goes on, fd 1 is a copy of stderr.
#
# A program a check starts (``subprocess.run(["echo", ...])``) inherits fd 1, not Python's
# ``sys.stdout``: redirecting ``sys.stdout`` alone let its output into ``--format json``.
# The report is written to a private duplicate of the original fd 1; ``--output
# /dev/stdout`` means that one too.

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
        try:
            stream.flush()
        except OSError:
            pass
        _report_fd = 1
        try:
            stream.close()
        except OSError:
            pass
        os.dup2(saved, 1)
        os.close(saved)


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
        fd = stdout_fd()  # the user's stdout, held aside during a run
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

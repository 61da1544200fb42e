"""``--output FILE``: checked before the run, written safely after it.

A regular file is replaced atomically (a reader never sees half a report) and keeps its
mode; anything else -- a device (``/dev/stdout``), a pipe, a symlink -- is written
through, never replaced: replacing ``/dev/stdout`` as root would turn the device node
into a regular file, and replacing a link would cut it.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

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
        return
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(f"{where}: no such directory {parent}")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{path.name}.probe-"):
            pass
    except OSError as exc:
        raise OutputError(f"{where}: not writable ({exc.strerror or exc})") from None


def write_output(path: Path, text: str) -> None:
    data = text.encode("utf-8")
    try:
        if _through(path):
            with open(path, "wb") as fh:
                fh.write(data)
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

"""Small filesystem helpers: atomic writes, so nothing half-written is ever read back."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file beside ``path``, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def temp_dir(parent: Path, label: str) -> Path:
    """A build directory beside its final place, named for its owner so leftovers can be swept."""
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-{label}-", dir=parent))


def extract_once(archive: Path, final: Path) -> Path:
    """A zip (a wheel) extracted to ``final`` once: into a temporary directory renamed into
    place, so ``final`` is complete or absent, and a concurrent extraction is harmless."""
    import zipfile

    if final.is_dir():
        return final
    tmp = temp_dir(final.parent, archive.name[:30])
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)
        try:
            tmp.rename(final)
        except OSError:  # another run extracted it first
            if not final.is_dir():
                raise
    finally:
        remove_tree(tmp)
    return final


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_temporaries(directory: Path) -> None:
    """Remove what interrupted builds left (``.tmp-<pid>-*`` whose process is gone)."""
    if not directory.is_dir():
        return
    for entry in directory.iterdir():
        parts = entry.name.split("-")
        if entry.name.startswith(".tmp-") and len(parts) > 2 and parts[1].isdigit():
            if _pid_alive(int(parts[1])):
                continue  # a live build, ours (another thread) or another run's
            if entry.is_dir():
                remove_tree(entry)
            else:
                entry.unlink(missing_ok=True)


def remove_own_temporaries(root: Path, depth: int = 2) -> None:
    """On an interrupt: this process's unfinished ``.tmp-<pid>-*`` entries under ``root``
    (a signal can land between creating one and the code that would remove it)."""
    if not root.is_dir():
        return
    prefix = f".tmp-{os.getpid()}-"
    for level in range(depth):
        for entry in root.glob("/".join(["*"] * level + [prefix + "*"])):
            if entry.is_dir() and not entry.is_symlink():
                remove_tree(entry)
            else:
                entry.unlink(missing_ok=True)

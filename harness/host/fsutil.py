"""Filesystem helpers: atomic writes, private directories, verified bytecode, and
temporaries a later run can tell from live ones.

Every temporary (a build directory, a file being written, a run's own TMPDIR) carries an
``flock`` held by the process that made it while it is in use.  A sweep removes only
temporaries whose lock it can take: their owner is gone, whatever PID namespace it ran
in (a cache shared with a container sees pids that mean nothing here).
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import os
import pwd
import shutil
import stat
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

PREFIX = ".tmp-"  # every cache temporary: .tmp-<pid>-<label>-<random>
RUN_PREFIX = "gbisect-"  # a run's private TMPDIR in the system's one (short: socket paths)
_SHORT = 40  # a Unix socket path holds 107 bytes: keep the run's TMPDIR short

_held: dict[str, int] = {}  # temporary's path -> the fd whose flock marks it live
_held_lock = threading.Lock()


def private_dir(path: Path) -> Path:
    """``path`` and any parent it needs, created 0700 whatever the umask (under umask 000
    another local user could replace what the cache holds)."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(d, 0o700)  # mkdir's mode is masked by the umask, never widened: be sure
    return path


def private_checked_dir(path: Path) -> Path:
    """:func:`private_dir`, then :func:`check_private`: made here 0700, or found ours."""
    return check_private(private_dir(path))


class NotPrivate(Exception):
    """A directory the harness would trust that someone else could change (one line)."""


def _owner_name(uid: int) -> str:
    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid {uid}"


def check_private(path: Path) -> Path:
    """``path`` if it is a directory owned by us and writable by nobody else, else
    ``NotPrivate``: what it holds runs as us (the compat shim, environments)."""
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise NotPrivate(f"{path}: not a directory")
    if st.st_uid != os.geteuid():
        raise NotPrivate(f"{path}: owned by {_owner_name(st.st_uid)}, not by this user: refused")
    if st.st_mode & 0o022:
        raise NotPrivate(
            f"{path}: writable by others (mode {stat.S_IMODE(st.st_mode):04o}): refused "
            f"(chmod go-w {path})"
        )
    return path


class NotReadable(Exception):
    """A file the user named that cannot be read as one: the reason, as a phrase."""


def read_regular(path: Path, cap: int) -> bytes:
    """The contents of the regular file ``path``, at most ``cap`` bytes; else NotReadable
    ("not a regular file": ``/dev/zero`` read 2.7 GB, a FIFO hung; "larger than ...")."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO: no wait
    except OSError as exc:
        raise NotReadable(exc.strerror or str(exc)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotReadable("not a regular file")
        chunks, size = [], 0
        while size <= cap:
            block = os.read(fd, min(1 << 20, cap + 1 - size))
            if not block:
                break
            chunks.append(block)
            size += len(block)
        if size > cap:
            raise NotReadable(f"larger than {cap >> 10} KiB")
        return b"".join(chunks)
    except OSError as exc:
        raise NotReadable(exc.strerror or str(exc)) from None
    finally:
        os.close(fd)


def _lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _live_dir(parent: Path, prefix: str) -> Path:
    """A new directory in ``parent``, locked by us: marked live before any sweep of this
    process can look at it (the lock follows it through a rename)."""
    with _held_lock:
        made = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        _held[str(made)] = fd = os.open(made, os.O_RDONLY | os.O_DIRECTORY)
        _lock(fd)
    return made


def _unhold(path: Path) -> None:
    """Stop marking ``path`` (a temporary of ours, perhaps renamed since) as live."""
    with _held_lock:
        fd = _held.pop(str(path), None)
    if fd is not None:
        os.close(fd)


_swept: set[str] = set()


def _beside(parent: Path) -> Path:
    """``parent``, private, swept once per process of what SIGKILLed runs left in it."""
    private_dir(parent)
    if str(parent) not in _swept:
        _swept.add(str(parent))
        sweep_temporaries(parent)
    return parent


@contextmanager
def private_temp_file(dest: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """A locked temporary file beside ``dest`` (for ``os.replace``), removed on the way out
    unless the caller renamed it into place."""
    _beside(dest.parent)
    with _held_lock:  # made and marked live before this process's own sweep can look at it
        fd, name = tempfile.mkstemp(
            prefix=f"{PREFIX}{os.getpid()}-{dest.name[:40]}-", dir=dest.parent
        )
        tmp = Path(name)
        _lock(fd)
        _held[name] = fd
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh, tmp
    finally:
        with _held_lock:
            _held.pop(name, None)  # the fd is closed by the with block
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o600) -> None:
    """A reader sees the old file or the new one, never half of one."""
    with private_temp_file(path) as (fh, tmp):
        fh.write(data)
        fh.flush()
        os.fchmod(fh.fileno(), mode)
        os.fsync(fh.fileno())
        os.replace(tmp, path)


def atomic_write_text(path: Path, text: str, mode: int = 0o600) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def _writable(path: str) -> None:
    with suppress(OSError):
        if stat.S_ISDIR(os.lstat(path).st_mode):
            os.chmod(path, 0o700)


def remove_tree(path: Path) -> None:
    """Remove ``path`` (a file, a link, a whole tree) if it is there, even a tree left
    unreadable (chmod 000): a damaged cache entry must not survive its own rebuild."""

    def retry(func, name, _exc) -> None:
        if not os.path.lexists(name):
            return  # gone already (another sweep, or a concurrent removal): nothing to retry
        _writable(os.path.dirname(name))
        _writable(name)
        with suppress(OSError):
            if os.path.isdir(name) and not os.path.islink(name):
                shutil.rmtree(name, ignore_errors=True)
            else:
                func(name)

    try:  # still marked live while it goes, so no sweep takes it from under us
        if path.is_symlink() or not path.is_dir():
            path.unlink(missing_ok=True)
        else:
            _writable(str(path))
            shutil.rmtree(path, onerror=retry)
    finally:
        _unhold(path)


BYTECODE_RECORD = "gunicorn-bisect-bytecode.json"  # in the tree's top __pycache__
_BYTECODE_CAP = 64 << 20
_bytecode_trees: set[str] = set()  # trees whose bytecode this process checked


def _bytecode_files(root: Path) -> Iterator[Path]:
    """Every file in a ``__pycache__`` under ``root``, and every ``.pyc`` beside a source
    (Python 2 writes it there); not the record itself."""
    for top, _, files in os.walk(root):
        in_cache = os.path.basename(top) == "__pycache__"
        for name in files:
            if (in_cache or name.endswith((".pyc", ".pyo"))) and name != BYTECODE_RECORD:
                yield Path(top, name)


def _sha256(path: Path) -> str | None:
    """None for what Python never writes as bytecode: a link, anything not a regular file."""
    try:
        if path.is_symlink():
            return None
        return hashlib.sha256(read_regular(path, _BYTECODE_CAP)).hexdigest()
    except NotReadable:
        return None


@contextmanager
def _bytecode_record(root: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """The tree's record of its bytecode (relative path -> sha256), under an exclusive
    flock on its top ``__pycache__`` for as long as the caller reads or rewrites it."""
    top = private_dir(root / "__pycache__")
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            recorded = json.loads(read_regular(top / BYTECODE_RECORD, _BYTECODE_CAP))
        except (NotReadable, ValueError):
            recorded = {}
        yield (recorded if isinstance(recorded, dict) else {}), top / BYTECODE_RECORD
    finally:
        os.close(fd)


def keep_recorded_bytecode(root: Path) -> None:
    """Remove every bytecode file under ``root`` (a cached tree servers import from) that
    is not byte for byte one the harness recorded after a run that ended cleanly: a
    truncated ``.pyc`` gave "EOFError: marshal data too short" on every later run; one an
    interrupted run or anyone else left is compiled again.  Once per tree and process:
    what this run's servers write is recorded at its end (:func:`record_bytecode`)."""
    with _held_lock:
        if str(root) in _bytecode_trees:
            return
        _bytecode_trees.add(str(root))
    with _bytecode_record(root) as (recorded, _):
        for path in _bytecode_files(root):
            rel = path.relative_to(root).as_posix()
            if rel not in recorded or _sha256(path) != recorded[rel]:
                path.unlink(missing_ok=True)


def record_bytecode() -> None:
    """At the clean end of a run: record the bytecode its servers wrote (Python writes a
    ``.pyc`` whole or not at all) in every tree :func:`keep_recorded_bytecode` checked,
    so that the next run reuses it instead of compiling gunicorn and its libraries again."""
    with _held_lock:
        trees = sorted(_bytecode_trees)
    for root in map(Path, trees):
        if not root.is_dir():
            continue
        with _bytecode_record(root) as (recorded, record):
            sums = {
                p.relative_to(root).as_posix(): _sha256(p)
                for p in _bytecode_files(root)
                if p.name.endswith((".pyc", ".pyo"))
            }
            kept = {k: v for k, v in sums.items() if v}
            if kept != recorded:  # a warm run compiled nothing: no write, no fsync
                atomic_write_text(record, json.dumps(kept, sort_keys=True))


def tree_digest(root: Path, manifest: str) -> str:
    """Every file under ``root`` except ``manifest`` and bytecode, by path and content
    (a symlink by where it points): scripts and ``.pth`` files included."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()):
        rel = path.relative_to(root).as_posix()
        if rel == manifest or "__pycache__" in rel or rel.endswith(".pyc"):
            continue
        data = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def temp_dir(parent: Path, label: str) -> Path:
    """A build directory beside its final place, live until :func:`remove_tree` or
    :func:`_unhold` (after its rename into place)."""
    return _live_dir(_beside(parent), f"{PREFIX}{os.getpid()}-{label}-")


def extract_once(archive: Path, final: Path) -> Path:
    """A zip (a wheel) extracted to ``final`` once: into a temporary directory renamed into
    place, so ``final`` is complete or absent, and a concurrent extraction is harmless."""
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


def sweep_temporaries(directory: Path, prefix: str = PREFIX) -> None:
    """Remove what interrupted runs left: ``prefix*`` entries whose lock nobody holds."""
    if not directory.is_dir():
        return
    for entry in directory.iterdir():
        with _held_lock:  # asked now, not from a snapshot: another thread may have just made it
            if not entry.name.startswith(prefix) or str(entry) in _held:
                continue
        try:
            fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            if _lock(fd):  # its owner is gone: a live one (ours or another run's) holds it
                remove_tree(entry)
        finally:
            os.close(fd)


def remove_own_temporaries(root: Path, depth: int = 2) -> None:
    """On an interrupt: this process's unfinished ``.tmp-<pid>-*`` entries under ``root``
    (a signal can land between creating one and the code that would remove it)."""
    prefix = f"{PREFIX}{os.getpid()}-"
    for level in range(depth):
        for entry in root.glob("/".join(["*"] * level + [prefix + "*"])):
            remove_tree(entry)


_run_dir: Path | None = None


def run_temp_dir() -> Path:
    """This process's private (0700, short, locked) temporary directory, removed at exit:
    servers, ``--run`` commands and gunicorn itself (``gunicorn-XXXXXX.lock``,
    ``wgunicorn-*``) put their temporaries here, not in the shared TMPDIR, and a SIGKILLed
    run's leftovers are swept by the next one."""
    global _run_dir
    with _held_lock:
        if _run_dir is not None and _run_dir.is_dir():
            return _run_dir
    system = Path(tempfile.gettempdir())
    if len(str(system)) > _SHORT and os.access("/tmp", os.W_OK | os.X_OK):
        system = Path("/tmp")  # a long TMPDIR would leave no room for a socket's name
    sweep_temporaries(system, RUN_PREFIX)
    made = _live_dir(system, f"{RUN_PREFIX}{os.getpid()}-")
    atexit.register(remove_tree, made)
    with _held_lock:
        _run_dir = made
    return made


def use_run_temp_dir() -> Path:
    """Make :func:`run_temp_dir` the TMPDIR of this process and of what it starts."""
    path = run_temp_dir()
    os.environ["TMPDIR"] = str(path)
    tempfile.tempdir = str(path)
    return path

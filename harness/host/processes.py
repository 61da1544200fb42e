"""Process hygiene: every process a run starts (server, proxy, wrk, --run) dies with its
run, a run ends on SIGINT/SIGTERM through a ``Cancel`` passed down, and /proc is read
here (fds, threads, children) for teardown and for scenarios.

``launch`` starts each in its own session (its group holds the arbiter and its workers)
with a run token in its environment, the harness's own Python scrubbed, the parent-death
signal and the child-subreaper bit.  Teardown kills every descendant, then the group,
then whatever carries the token (a worker whose arbiter died, or that left the group).
The subreaper bit catches a daemon with neither (the app ran ``Popen(..., env={},
start_new_session=True)``): orphaned in the server's tree, it is re-parented to the
arbiter, not init, so teardown finds it among the arbiter's descendants.  No root or
cgroup needed, no polling window to miss a quick double fork; only the orphan of an
arbiter that exited before teardown escapes it.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path

#: The environment variable that marks every process a run starts (server, proxy, --run).
RUN_TOKEN_ENV = "GUNICORN_BISECT_RUN"

# Runs ``argv`` in place of itself in the harness's own interpreter (-I -S).
# PR_SET_PDEATHSIG survives execve (the programs are not setuid): the program is
# SIGKILLed when the harness thread that started it dies, even by SIGKILL.
# PR_SET_CHILD_SUBREAPER survives it too (see above).  The getppid check closes the
# window where the parent died before prctl ran.
_EXEC = """\
import os, sys
try:
    import ctypes
    prctl = ctypes.CDLL(None).prctl
    prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
except Exception:
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit('gunicorn-bisect: the harness is gone')
os.execv(sys.argv[2], sys.argv[2:])
"""


def dying_with_us(argv: list[str]) -> list[str]:
    """A command line that runs ``argv`` (a program path first) and dies with the harness."""
    return [sys.executable, "-I", "-S", "-c", _EXEC, str(os.getpid()), *argv]


def child_env(token: str, *, keep_python_settings: bool = False) -> dict[str, str]:
    """The harness's environment with the run token, and without the harness's own Python:
    PYTHONPATH and PYTHONHOME always go, the other PYTHON* settings unless they are the
    user's to keep (a ``--run`` command may want PYTHONWARNINGS and the like)."""
    if keep_python_settings:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
    else:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env[RUN_TOKEN_ENV] = token  # bytecode goes beside the source: fsutil.record_bytecode
    return env


def _start(argv: list[str], cwd: str | Path, env: dict[str, str], out, err) -> subprocess.Popen:
    """The one way every run's process starts: its own session, registered for teardown
    under the run token ``env`` carries.  Raises OSError when it cannot start."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=err,
        start_new_session=True,
    )
    register(proc, env[RUN_TOKEN_ENV])
    return proc


def launch(argv: list[str], *, cwd: Path, env: dict[str, str], output: Path) -> subprocess.Popen:
    """Start ``argv`` dying with the harness, stdout and stderr appended to ``output``."""
    with open(output, "ab") as out:
        return _start(dying_with_us(argv), cwd, env, out, subprocess.STDOUT)


def signal_name(number: int) -> str:
    """``SIGKILL``, or ``signal 34`` for a real-time signal, which has no name of its own."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def free_port() -> int:
    """A 127.0.0.1 port nobody listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PROC = Path("/proc")
_live: dict[int, tuple[subprocess.Popen, str]] = {}
_lock = threading.Lock()

# The reaper: a worker forked by the arbiter does not inherit its parent-death signal,
# and one that left the group and ignores SIGTERM (stuck in a request) would outlive a
# SIGKILLed harness.  This small process, in its own session, reads the run tokens and
# launched pids the harness registers and every half second notes the launched
# processes' descendants (a daemon the app started with an empty environment carries no
# token).  At EOF on its stdin (the harness is gone, however it died) it SIGKILLs every
# process carrying a token and every noted descendant still alive (same start time).
_REAPER = """\
import os, select, signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
needles, roots, noted, buf = [], {}, {}, b""

def read(path):
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return b""

def stat(pid):  # (parent pid, start time), or None when it is gone
    f = read("/proc/%d/stat" % pid).rsplit(b")", 1)[-1].split()
    return (int(f[1]), f[19]) if len(f) > 19 else None

def alive(pid, start):  # the same process, not a later one given its pid
    return (stat(pid) or (0, None))[1] == start

def note():
    kids = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        st = stat(int(entry))
        if st:
            kids.setdefault(st[0], []).append((int(entry), st[1]))
    todo = [r for r, start in roots.items() if alive(r, start)]
    while todo:
        for pid, start in kids.get(todo.pop(), ()):
            if pid not in noted:
                noted[pid] = start
                todo.append(pid)

while True:
    if select.select([0], [], [], 0.5)[0]:
        data = os.read(0, 4096)
        if not data:
            break
        *lines, buf = (buf + data).split(b"\\n")
        for parts in map(bytes.split, lines):
            if parts:
                needles.append(b"=" + parts[0])
                if len(parts) == 3:  # a launched pid and its start time
                    roots[int(parts[1])] = parts[2]
    if roots:
        note()
mine = str(os.getpid())
for _ in range(50):
    left = [p for p, start in noted.items() if alive(p, start)]
    for entry in filter(str.isdigit, os.listdir("/proc")):
        env = read("/proc/%s/environ" % entry) if entry != mine else b""
        if any(n in env for n in needles):
            left.append(int(entry))
    if not left:
        break
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    time.sleep(0.1)
"""
_reaper: subprocess.Popen | None = None


def register(proc: subprocess.Popen, token: str) -> None:
    """Track a started process: terminate_all() ends it on an interrupt, and the reaper
    (started on first use) ends its tree and whatever carries its token if the harness
    dies without cleaning up."""
    global _reaper
    with _lock:
        _live[proc.pid] = (proc, token)
        try:
            if _reaper is None or _reaper.poll() is not None:
                _reaper = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", _REAPER],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,  # a signal to the harness's group is not its end
                    env={k: v for k, v in os.environ.items() if k != RUN_TOKEN_ENV},
                    cwd="/",
                )
            start = start_time(proc.pid)
            line = f"{token} {proc.pid} {start}" if start else token
            _reaper.stdin.write(f"{line}\n".encode())
            _reaper.stdin.flush()
        except OSError:
            pass  # no reaper: teardown and the parent-death signal still apply


def pids_with_token(token: str) -> list[int]:
    """Processes whose environment carries ``token`` (Linux /proc; empty elsewhere)."""
    found = []
    for entry in PROC.glob("[0-9]*"):
        with suppress(OSError):
            if f"={token}".encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
    return [p for p in found if p != os.getpid()]


def _signal(pid: int, sig: int = signal.SIGKILL, *, group: bool = False) -> None:
    """Signal ``pid`` (its process group with ``group``); gone or not ours: no matter."""
    with suppress(ProcessLookupError, PermissionError):
        (os.killpg if group else os.kill)(pid, sig)


def _stop_tree(root: int) -> list[int]:
    """SIGSTOP ``root`` and its descendants until no new one appears (a stopped process
    cannot fork); the descendants, to be killed before anything reaps them elsewhere."""
    tree: list[int] = []
    _signal(root, signal.SIGSTOP)
    for _ in range(20):
        new = [p for p in descendants(root) if p not in tree]
        if not new:
            break
        for pid in new:
            _signal(pid, signal.SIGSTOP)
        tree += new
    return tree


def terminate(proc: subprocess.Popen, token: str) -> None:
    """Stop and kill the launched process's tree (daemons re-parented to it included),
    then its process group; reap it; then sweep stragglers by token."""
    if proc.poll() is None:
        for pid in _stop_tree(proc.pid):
            _signal(pid)
    _signal(proc.pid, group=True)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        _signal(proc.pid)
    for _ in range(50):
        left = pids_with_token(token)
        if not left:
            break
        for pid in left:
            _signal(pid)
        time.sleep(0.02)
    with _lock:
        _live.pop(proc.pid, None)


def terminate_all() -> None:
    """Used by the signal handlers: end every server still running."""
    with _lock:
        items = list(_live.values())
    for proc, token in items:
        terminate(proc, token)


#: What a program run to its end may bring back (each of stdout, stderr): its answer is a line.
OUTPUT_CAP = 1 << 20


class Undecided(Exception):
    """A program run to learn a fact gave no answer (a timeout, a signal, no start):
    nothing may be remembered from it."""


@dataclass(frozen=True)
class Finished:
    """A program that ran to its own end: its exit status and (capped) output."""

    returncode: int
    stdout: str
    stderr: str


def _read_capped(fh, cap: int) -> str:
    fh.seek(0)
    return fh.read(cap).decode("utf-8", errors="replace")


def _wait_or_kill(proc: subprocess.Popen, deadline: float, before: int) -> bool:
    """True once ``proc`` exits by itself; False when it and its group were killed (the
    deadline passed or a signal arrived since ``before``)."""
    while True:
        try:
            proc.wait(timeout=0.05)
            return True
        except subprocess.TimeoutExpired:
            if received() != before or time.monotonic() > deadline:
                _signal(proc.pid)
                _signal(proc.pid, group=True)
                proc.wait()
                return False


def run_to_end(
    argv: list[str],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: str | Path = "/",
    what: str = "the program",
    cap: int = OUTPUT_CAP,
) -> Finished:
    """Run ``argv`` (an interpreter asked its version, gunicorn imported or booted, pip)
    to its own end, so that only a completed answer is ever cached.

    Its own session (a Ctrl-C to the harness's group does not reach it: the harness
    decides), a run token, dying with the harness; output to files, not pipes (a
    grandchild holding a pipe cannot hold the wait), read up to ``cap``.  Raises
    ``Cancelled`` when the run was interrupted meanwhile (the program killed),
    ``Undecided`` when it timed out, was killed by a signal or did not start.
    """
    before = received()
    token = f"run-to-end-{uuid.uuid4().hex}"
    env = dict(os.environ if env is None else env)
    env[RUN_TOKEN_ENV] = token
    if os.sep in argv[0]:  # dying_with_us execs a path, it does not search PATH
        argv = dying_with_us([os.path.abspath(argv[0]), *argv[1:]])
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = _start(argv, cwd, env, out, err)
        except OSError as exc:
            raise Undecided(f"{what} did not start: {exc}") from None
        try:
            finished = _wait_or_kill(proc, time.monotonic() + timeout, before)
        finally:
            _signal(proc.pid, group=True)  # what it left behind in its session goes with it
            with _lock:
                _live.pop(proc.pid, None)
        if received() != before:
            raise Cancelled
        if not finished:
            raise Undecided(f"{what} did not finish within {timeout:g} s")
        if proc.returncode < 0:
            raise Undecided(f"{what} was killed by {signal_name(-proc.returncode)}")
        return Finished(proc.returncode, _read_capped(out, cap), _read_capped(err, cap))


# -- A process's resources from /proc: leaks are regressions of their own (#3648: the
# arbiter's fds go 12 -> 36 and its threads 2 -> 8 over 5 SIGHUPs) that requests cannot
# show.  Each read is a frozen snapshot a pure ``decide`` compares; nothing here judges.


class ProcessGone(ProcessLookupError):
    """The process exited (or was reaped) while we read it: an observation, not a bug."""


@dataclass(frozen=True)
class Fds:
    """Open file descriptors by kind, as /proc/PID/fd's links name them."""

    sockets: int = 0  # socket:[inode]
    pipes: int = 0  # pipe:[inode]
    files: int = 0  # a path: regular files, devices, directories
    other: int = 0  # anon_inode:[eventpoll], [eventfd], ...

    @property
    def total(self) -> int:
        return self.sockets + self.pipes + self.files + self.other

    def as_json(self) -> dict:
        return {"total": self.total, **asdict(self)}


@dataclass(frozen=True)
class Snapshot:
    """One process at one moment: what a leak or a lost worker shows up in."""

    pid: int
    state: str  # R, S, Z, ... (/proc/PID/stat)
    fds: Fds
    threads: int
    children: tuple[int, ...]
    zombies: tuple[int, ...]  # children in state Z: exited, not yet reaped

    def as_json(self) -> dict:
        kids = {"children": list(self.children), "zombies": list(self.zombies)}
        return {**asdict(self), "fds": self.fds.as_json(), **kids}


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (which may hold spaces or
    ')'): [0] the state, [1] the parent pid, [19] the start time."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError) as exc:
        raise ProcessGone(pid) from exc
    return text[text.rindex(")") + 2 :].split()


def start_time(pid: int) -> str | None:
    """``pid``'s start time (clock ticks since boot), which tells it from a later process
    given the same pid; None if it is gone."""
    try:
        return _stat(pid)[19]
    except (OSError, ValueError, IndexError):
        return None


def state(pid: int) -> str:
    """R, S, Z, ... of ``pid``; raises ``ProcessGone`` if it is not there."""
    return _stat(pid)[0]


_FD_KINDS = (("socket:", "sockets"), ("pipe:", "pipes"), ("/", "files"))


def fds(pid: int) -> Fds:
    """Count ``pid``'s open fds by kind (an fd closed while we read it is skipped)."""
    where = PROC / str(pid) / "fd"
    try:
        names = os.listdir(where)
    except (FileNotFoundError, ProcessLookupError) as exc:
        raise ProcessGone(pid) from exc
    counts: Counter[str] = Counter()
    for name in names:
        with suppress(FileNotFoundError):
            link = os.readlink(where / name)
            counts[next((kind for p, kind in _FD_KINDS if link.startswith(p)), "other")] += 1
    return Fds(**counts)


def threads(pid: int) -> int:
    try:
        return len(os.listdir(PROC / str(pid) / "task"))
    except (FileNotFoundError, ProcessLookupError) as exc:
        raise ProcessGone(pid) from exc


def _table() -> dict[int, tuple[str, int]]:
    """Every process's state and parent pid, as /proc says right now."""
    found = {}
    for entry in PROC.glob("[0-9]*"):
        try:
            fields = _stat(int(entry.name))
            found[int(entry.name)] = (fields[0], int(fields[1]))
        except (ValueError, OSError):
            continue
    return found


def children(pid: int) -> tuple[int, ...]:
    """``pid``'s direct children, by every process's parent pid (no kernel option needed)."""
    return tuple(sorted(p for p, (_, parent) in _table().items() if parent == pid))


def descendants(pid: int) -> list[int]:
    """``pid``'s children, theirs and so on."""
    kids: dict[int, list[int]] = {}
    for kid, (_, parent) in _table().items():
        kids.setdefault(parent, []).append(kid)
    found, todo = [], [pid]
    while todo:
        for kid in kids.get(todo.pop(), ()):
            if kid not in found and kid != pid:
                found.append(kid)
                todo.append(kid)
    return found


def snapshot(pid: int) -> Snapshot:
    """Everything above for ``pid``; raises ``ProcessGone`` if it is not there."""
    state = _stat(pid)[0]
    table = _table()
    kids = tuple(sorted(p for p, (_, parent) in table.items() if parent == pid))
    zombies = tuple(kid for kid in kids if table[kid][0] == "Z")  # exited, not yet reaped
    return Snapshot(pid, state, fds(pid), threads(pid), kids, zombies)


# -- Cancellation, passed down from the job to every wait: one ``Cancel`` per session (a
# library caller such as bench/soak.py can start again with a fresh one after Ctrl-C).
#
# Signals never raise: under :func:`signals_as_flags` the handler only counts them and the
# interpreter writes a byte to a wakeup pipe; a watchdog thread reading it sets every live
# ``Cancel`` (waits then raise ``Cancelled`` where they choose, holding no lock) and ends
# the process if it still lives ``GRACE`` s later or at a second signal.  A
# KeyboardInterrupt raised from a handler lands anywhere: inside ``concurrent.futures``'
# own locks it left the harness hung in futex waits for good.

#: How long after the first SIGINT/SIGTERM the process may still live (the table so far
#: printed, every server torn down) before the watchdog ends it.
GRACE = 5.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Cancelled(KeyboardInterrupt):
    """Raised where a cancelled run stops; a KeyboardInterrupt so the CLI's one
    interrupt path (report what was established, exit 130) handles both."""


_live_cancels: weakref.WeakSet[Cancel] = weakref.WeakSet()
_cancels_lock = threading.Lock()
_received = 0  # SIGINT/SIGTERM seen by this process (written by the handler only)
_watched = 0  # the same, as the watchdog counts them (it wakes at once, in any thread)
_interrupted = False  # the watchdog saw one: a session opened from now on starts cancelled


class Cancel(threading.Event):
    """A flag: ``wait(seconds)`` sleeps, True if cancelled meanwhile; ``raise_if_set``
    raises ``Cancelled`` once it is set."""

    def __init__(self) -> None:
        super().__init__()
        if _interrupted:
            self.set()
        with _cancels_lock:
            _live_cancels.add(self)

    def raise_if_set(self) -> None:
        if self.is_set():
            raise Cancelled


def received() -> int:
    """How many SIGINT/SIGTERM this process has received so far (run_to_end compares the
    count before and after: an answer given while the run was interrupted is no answer)."""
    return max(_received, _watched)  # the handler runs late in a busy main thread


def _count(signum, frame) -> None:  # the whole handler: no exception, no lock
    global _received
    _received += 1


def _watch(read_fd: int, on_force_exit: Callable[[], None]) -> None:
    """The watchdog: first byte -> cancel every session; then GRACE s or a second signal
    -> ``on_force_exit()`` and ``os._exit(130)``.  EOF (disarmed) ends it quietly."""
    global _watched, _interrupted
    seen = 0
    while True:
        if select.select([read_fd], [], [], GRACE if seen else None)[0]:
            try:
                data = os.read(read_fd, 64)
            except OSError:
                return
            if not data:
                return  # disarmed: the run ended before any signal
            ours = sum(1 for b in data if b in STOP_SIGNALS)  # the byte is the signal number
            if not ours:
                continue
            seen += ours
            _watched += ours
            if seen == ours:  # the first: cancel every session, give the run GRACE s to end
                _interrupted = True
                with _cancels_lock:
                    for cancel in _live_cancels:
                        cancel.set()
                if seen == 1:
                    continue
        last = threading.Thread(target=on_force_exit, daemon=True)  # bounded, like the rest
        last.start()
        last.join(GRACE / 2)
        os._exit(130)


@contextmanager
def signals_as_flags(on_force_exit: Callable[[], None]) -> Iterator[None]:
    """SIGINT and SIGTERM only mark the run cancelled (see above Cancel); a no-op outside
    the main thread (tests calling the CLI from a thread).  Once a signal has arrived, the
    watchdog stays armed past the block: the interpreter's own exit (joining the pool's
    threads) is bounded by it too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    global _interrupted
    _interrupted = False
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    before = received()
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    old_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    for s in STOP_SIGNALS:
        signal.signal(s, _count)
    watchdog = threading.Thread(
        target=_watch, args=(read_fd, on_force_exit), name="signal-watchdog", daemon=True
    )
    watchdog.start()
    try:
        yield
    finally:
        if received() == before:  # no signal: put everything back as it was
            for s, handler in previous.items():
                signal.signal(s, handler)
            signal.set_wakeup_fd(old_wakeup)
            os.close(write_fd)  # the watchdog reads EOF and ends
            watchdog.join(1)
            os.close(read_fd)

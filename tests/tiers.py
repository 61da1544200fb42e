"""Test tiers, by cost: every test has exactly one.

    pure   no process, no socket: the model, rendering, parsing
    local  this machine's processes and sockets: git, h2o/nginx, small HTTP servers, the
           CLI up to where it would build an environment -- never a gunicorn
    real   real virtualenvs and real gunicorn processes

A test file states its tier in one line under its imports (``pytestmark =
pytest.mark.local``); a test that costs otherwise carries its own mark, which replaces the
file's.  ``python -m pytest -m "not real"`` is the fast run (the README's Tests section).

What holds them to it (hooks registered by tests/conftest.py):
- a test with no tier, or two of its own, stops the collection; pyproject's
  ``--strict-markers`` refuses a misspelt one;
- a pure test that starts a process or opens a socket fails at that call (an audit hook,
  in the thread that runs the test);
- a session that selected no real test fails any test during which a gunicorn ran among
  the session's descendants (a thread walks /proc's children lists every 25 ms: a few
  reads, where reading every process's command line cost seconds of CPU on a busy machine).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

TIERS = ("pure", "local", "real")

#: What a pure test may not do (the audit events of starting a process or using a socket).
COSTLY = frozenset(
    {
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.fork",
        "os.forkpty",
        "os.posix_spawn",
        "os.spawn",
        "socket.bind",
        "socket.connect",
    }
)


def tier_of(item: pytest.Item) -> str:
    """The tier of a test: its own mark, else its class's, else its file's."""
    for node in reversed(item.listchain()):
        own = {m.name for m in node.own_markers if m.name in TIERS}
        if len(own) > 1:
            raise pytest.UsageError(f"{item.nodeid}: two tiers ({', '.join(sorted(own))})")
        if own:
            return own.pop()
    raise pytest.UsageError(
        f"{item.nodeid} has no tier: give its file a line `pytestmark = pytest.mark.pure` "
        "(or local, real) under its imports -- see tests/tiers.py"
    )


@pytest.hookimpl(tryfirst=True)  # before -m selects on the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test keeps exactly its tier's mark, so that ``-m`` sees one tier per test."""
    tiers = {item: tier_of(item) for item in items}
    for item, tier in tiers.items():
        for node in item.listchain():
            node.own_markers[:] = [m for m in node.own_markers if m.name not in TIERS]
        item.add_marker(tier)


# -- pure: no process, no socket ---------------------------------------------------------------
_pure_thread: list[int] = []  # the thread running a pure test right now, if any


def _refuse_in_pure(event: str, args: tuple) -> None:
    if event in COSTLY and _pure_thread and threading.get_ident() == _pure_thread[0]:
        what = args[0] if args else ""
        raise RuntimeError(f"a pure test may not {event} ({what!r}): mark the test local")


sys.addaudithook(_refuse_in_pure)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    if item.get_closest_marker("pure") is not None:
        _pure_thread[:] = [threading.get_ident()]
    if WATCH is not None:
        WATCH.current = item.nodeid
    yield
    _pure_thread.clear()
    if WATCH is not None:
        WATCH.current = ""  # between tests


# -- no gunicorn unless the session runs real tests --------------------------------------------
def is_gunicorn(argv: list[bytes]) -> bool:
    """A command line that runs a gunicorn server: the harness's launcher (``-c`` with
    ``from gunicorn.app.wsgiapp import run``), the console script, ``python -m gunicorn``,
    or an arbiter or worker retitled by setproctitle.  Not a Python that only imports it."""
    if not argv or not argv[0]:
        return False
    if argv[0].startswith(b"gunicorn:") or any(
        b"gunicorn.app.wsgiapp import run" in a for a in argv
    ):
        return True
    program = os.path.basename(argv[0])
    if program == b"gunicorn":
        return True
    return program.startswith(b"python") and (
        os.path.basename(argv[1] if len(argv) > 1 else b"") == b"gunicorn"
        or argv[1:3] == [b"-m", b"gunicorn"]
    )


def descendants(root: int) -> list[int]:
    """Every live process below ``root``, from /proc/PID/task/TID/children."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue  # gone meanwhile
        for tid in tasks:
            try:
                children = [
                    int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
                ]
            except OSError:
                continue
            found += children
            todo += children
    return found


def gunicorns(root: int | None = None) -> dict[int, str]:
    """Gunicorn processes below ``root`` (this process by default): pid -> command line."""
    found = {}
    for pid in descendants(os.getpid() if root is None else root):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        except OSError:
            continue
        if is_gunicorn(argv):
            found[pid] = b" ".join(argv).decode(errors="replace")[:160]
    return found


class Watch(threading.Thread):
    """Looks every 25 ms for gunicorns below this process; remembers each with the test
    that was running when it was first seen."""

    def __init__(self) -> None:
        super().__init__(name="gunicorn-watch", daemon=True)
        self.current = ""
        self.seen: dict[int, tuple[str, str]] = {}  # pid -> (command, test)
        self.reported: set[int] = set()  # the pids a test failed for
        self.stopped = threading.Event()

    def look(self) -> None:
        for pid, command in gunicorns().items():
            self.seen.setdefault(pid, (command, self.current))

    def run(self) -> None:
        while not self.stopped.wait(0.025):
            self.look()

    def during(self, test: str) -> list[str]:
        pids = sorted(p for p, (_, t) in self.seen.items() if t == test)
        self.reported.update(pids)
        return [f"pid {p}: {self.seen[p][0]}" for p in pids]


WATCH: Watch | None = None


def pytest_collection_finish(session: pytest.Session) -> None:
    global WATCH
    if not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists():
        return  # a kernel without CONFIG_PROC_CHILDREN: no watch
    if session.items and not any(i.get_closest_marker("real") for i in session.items):
        WATCH = Watch()
        WATCH.start()


@pytest.fixture(autouse=True)
def _no_gunicorn_outside_real(request: pytest.FixtureRequest):
    yield
    if WATCH is not None:
        WATCH.look()  # what started just before the end of the test, too
        started = WATCH.during(request.node.nodeid)
        if started:
            pytest.fail(f"this test started gunicorn (mark it real): {started}", pytrace=False)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A gunicorn no test failed for (first seen between two tests) fails the session."""
    if WATCH is None:
        return
    WATCH.stopped.set()
    WATCH.look()
    stray = [f"pid {p}: {c}" for p, (c, _) in sorted(WATCH.seen.items()) if p not in WATCH.reported]
    if stray:
        print(f"\ngunicorn started outside any test of this session: {stray}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

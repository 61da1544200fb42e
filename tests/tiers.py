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
- a session that selected no real test fails any test during which a gunicorn started by
  this session was seen (every process the tests start carries ``SESSION_ENV``, as the
  harness's own children carry their run token, and a thread looks for them every 25 ms).
"""

from __future__ import annotations

import os
import sys
import threading
import uuid
from pathlib import Path

import pytest

TIERS = ("pure", "local", "real")

#: Carried by every process this test session starts (the harness copies its environment).
SESSION_ENV = "GUNICORN_BISECT_TEST_SESSION"
os.environ[SESSION_ENV] = uuid.uuid4().hex

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


# -- no gunicorn unless the session runs real tests --------------------------------------------
def is_gunicorn(argv: list[bytes]) -> bool:
    """A command line that runs gunicorn: the harness's launcher (``-c`` with
    ``gunicorn.app.wsgiapp``), the console script, ``python -m gunicorn``, or an arbiter
    or worker retitled by setproctitle."""
    if not argv or not argv[0]:
        return False
    if argv[0].startswith(b"gunicorn:") or any(b"gunicorn.app.wsgiapp" in a for a in argv):
        return True
    program = os.path.basename(argv[0])
    if program == b"gunicorn":
        return True
    return program.startswith(b"python") and (
        os.path.basename(argv[1] if len(argv) > 1 else b"") == b"gunicorn"
        or argv[1:3] == [b"-m", b"gunicorn"]
    )


def gunicorns(session: str | None = None) -> dict[int, str]:
    """Live gunicorn processes carrying ``session`` (this one's by default): pid -> command."""
    tag = f"{SESSION_ENV}={session or os.environ[SESSION_ENV]}".encode()
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            argv = Path(entry.path, "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
            if is_gunicorn(argv) and tag in Path(entry.path, "environ").read_bytes().split(b"\0"):
                found[int(entry.name)] = b" ".join(argv).decode(errors="replace")[:160]
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return found


class Watch(threading.Thread):
    """Looks every 25 ms for gunicorns of this session; remembers each with the test that
    was running when it was first seen."""

    def __init__(self) -> None:
        super().__init__(name="gunicorn-watch", daemon=True)
        self.current = ""
        self.seen: dict[int, tuple[str, str]] = {}  # pid -> (command, test)
        self.stopped = threading.Event()

    def look(self) -> None:
        for pid, command in gunicorns().items():
            self.seen.setdefault(pid, (command, self.current))

    def run(self) -> None:
        while not self.stopped.wait(0.025):
            self.look()

    def during(self, test: str) -> list[str]:
        return [f"pid {p}: {c}" for p, (c, t) in sorted(self.seen.items()) if t == test]


WATCH: Watch | None = None


def pytest_collection_finish(session: pytest.Session) -> None:
    global WATCH
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
    """A gunicorn first seen between two tests fails the session (none passes unseen)."""
    if WATCH is None:
        return
    WATCH.stopped.set()
    WATCH.look()
    tested = {i.nodeid for i in session.items}
    stray = [f"pid {p}: {c}" for p, (c, t) in sorted(WATCH.seen.items()) if t not in tested]
    if stray:
        print(f"\ngunicorn started outside any test of this session: {stray}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

"""The test tiers (tests/tiers.py) hold: every test file declares one, a test has exactly
one, a pure test cannot start a process or open a socket, and a gunicorn started outside
the real tier is seen."""

from __future__ import annotations

import ast
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests import tiers
from tests.tiers import TIERS, gunicorns, is_gunicorn, tier_of

pytestmark = pytest.mark.pure

TESTS = Path(__file__).resolve().parent


def _declared_tiers(path: Path) -> list[str]:
    """The tier marks of a file's module-level ``pytestmark`` (a mark or a list of marks)."""
    found = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            for sub in ast.walk(node.value):
                if isinstance(sub, ast.Attribute) and sub.attr in TIERS:
                    found.append(sub.attr)
    return found


def test_every_test_file_declares_one_tier():
    """One line `pytestmark = pytest.mark.pure` (or local, real) under a file's imports."""
    files = sorted(TESTS.glob("test_*.py"))
    assert files  # the glob found the suite
    wrong = {p.name: tiers for p in files if len(set(tiers := _declared_tiers(p))) != 1}
    assert wrong == {}


def test_no_test_file_imports_another():
    """Shared helpers live in conftest.py or a helper module, not in a test file."""
    wrong = []
    for path in TESTS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            wrong += [f"{path.name}: {n}" for n in names if n.startswith("tests.test_")]
    assert wrong == []


def _node(*marks: str) -> SimpleNamespace:
    return SimpleNamespace(own_markers=[SimpleNamespace(name=m) for m in marks])


def _item(file: tuple[str, ...], own: tuple[str, ...]) -> SimpleNamespace:
    chain = [_node(), _node(*file), _node(*own, "parametrize")]
    return SimpleNamespace(nodeid="tests/test_x.py::test_y", listchain=lambda: chain)


def test_a_tests_own_tier_replaces_its_files():
    assert tier_of(_item(("local",), ())) == "local"
    assert tier_of(_item(("local",), ("real",))) == "real"
    assert tier_of(_item(("pure",), ("local",))) == "local"


def test_no_tier_or_two_of_its_own_stop_the_collection():
    with pytest.raises(pytest.UsageError, match="has no tier"):
        tier_of(_item(("skip",), ()))
    with pytest.raises(pytest.UsageError, match="two tiers"):
        tier_of(_item(("pure",), ("local", "real")))


def test_a_pure_test_cannot_start_a_process_or_open_a_socket():
    with pytest.raises(RuntimeError, match="mark the test local"):
        subprocess.run(["true"])
    with pytest.raises(RuntimeError, match="mark the test local"):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).bind(("127.0.0.1", 0))


@pytest.mark.parametrize(
    "cmdline, gunicorn",
    [
        ("/env/bin/python -c import sys; from gunicorn.app.wsgiapp import run; run()", True),
        ("/py3.13/bin/python3 -S -c import gunicorn; from gunicorn.app.wsgiapp import X", False),
        ("/env/bin/python /env/bin/gunicorn app:app", True),
        ("/env/bin/gunicorn -w 2 app:app", True),
        ("python3.9 -m gunicorn app:app", True),
        ("gunicorn: worker [app:app]", True),
        ("git -C /tmp/history0/gunicorn log", False),
        ("python bisect.py --package gunicorn 19.5.0..19.7.0", False),
        ("h2o -c /tmp/gunicorn-bisect-x/h2o.conf", False),
        ("", False),
    ],
)
def test_what_counts_as_a_gunicorn(cmdline: str, gunicorn: bool):
    argv = cmdline.encode().split(b" ") if cmdline else []
    if argv and argv[0] == b"/env/bin/python" and argv[1] == b"-c":  # one argument: the code
        argv = argv[:2] + [b" ".join(argv[2:])]
    assert is_gunicorn(argv) is gunicorn


@pytest.mark.local
def test_a_gunicorn_below_this_process_is_seen_by_the_watch():
    """A process that looks like the harness's gunicorn launcher, started by this test, is
    found among this process's descendants, and by the watch when one runs (this test then
    forgets it: it is the one gunicorn look-alike the fast tier starts on purpose)."""
    code = "import time; time.sleep(30)  # from gunicorn.app.wsgiapp import run"
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 5  # the command line appears once exec is done
        while proc.pid not in gunicorns() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.pid in gunicorns()
        assert proc.pid not in gunicorns(root=proc.pid)  # only what is below the root
        if tiers.WATCH is not None:
            while proc.pid not in tiers.WATCH.seen and time.monotonic() < deadline:
                time.sleep(0.01)
            assert proc.pid in tiers.WATCH.seen
    finally:
        proc.kill()
        proc.wait()
        if tiers.WATCH is not None:
            tiers.WATCH.seen.pop(proc.pid, None)

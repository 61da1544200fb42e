"""Shared pytest fixtures.  Engineers: append your own clearly separated block."""

from __future__ import annotations

# ---------------------------------------------------------------------------
# Planted Gunicorn-like git history (tests/history.py), built once per session.
# Sdists are cached in $GUNICORN_BISECT_TEST_CACHE when set, so repeated runs
# (and offline runs after one online run) do not download again.
# ---------------------------------------------------------------------------
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.history import History, HistoryError, build_history
from tests.local_index import dist_files, serve  # noqa: F401 - fixtures, for every test file
from tests.osv_records import schema  # noqa: F401 - a fixture, for every test file

# The interrupt tests send SIGINT as a terminal's Ctrl-C does.  A suite started in the
# background of a non-interactive shell (or under nohup) inherits SIGINT ignored, and so
# would every harness it starts (an ignored signal survives exec): not what a user's
# terminal gives.  A handler here is reset to the default in each child at exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


# ---------------------------------------------------------------------------
# Test tiers, by cost: every test has exactly one.
#   pure   no process, no socket: the model, rendering, parsing (seconds in all)
#   local  this machine's processes and sockets: git, h2o/nginx, small HTTP servers,
#          the CLI up to the point where it would build an environment -- no gunicorn
#   real   real virtualenvs and gunicorn processes
# A file states its tier in one line at the top (``pytestmark = pytest.mark.local``); a
# test that costs otherwise carries its own mark, which replaces the file's.  A test
# without a tier, or with two of its own, stops the collection (and ``--strict-markers``
# refuses a misspelt one).  ``python -m pytest -m "not real"`` is the fast command.
# ---------------------------------------------------------------------------
TIERS = ("pure", "local", "real")


def tier_of(item: pytest.Item) -> str:
    """The tier of a test: its own mark, else its class's, else its file's."""
    for node in reversed(item.listchain()):
        own = {m.name for m in node.own_markers if m.name in TIERS}
        if len(own) > 1:
            raise pytest.UsageError(f"{item.nodeid}: two tiers ({', '.join(sorted(own))})")
        if own:
            return own.pop()
    raise pytest.UsageError(
        f"{item.nodeid} has no tier: give its file a line "
        f"`pytestmark = pytest.mark.pure` (or local, real) -- see tests/conftest.py"
    )


@pytest.hookimpl(tryfirst=True)  # before -m selects on the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tiers = {item: tier_of(item) for item in items}
    for item, tier in tiers.items():
        for node in item.listchain():
            node.own_markers[:] = [m for m in node.own_markers if m.name not in TIERS]
        item.add_marker(tier)


@pytest.fixture(scope="session")
def gunicorn_history(tmp_path_factory: pytest.TempPathFactory) -> History:
    """The planted history (read-only: clone it before changing anything)."""
    cache = os.environ.get("GUNICORN_BISECT_TEST_CACHE")
    downloads = Path(cache) / "sdists" if cache else tmp_path_factory.mktemp("sdists")
    try:
        return build_history(tmp_path_factory.mktemp("history") / "gunicorn", downloads)
    except HistoryError as exc:
        pytest.skip(f"cannot build the planted history: {exc}")


# ---------------------------------------------------------------------------
# Real runs: one cache for the whole session (environments, wheels, index), and a
# helper that runs `python bisect.py ...` the way a user does.
# ---------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = os.environ.get("GUNICORN_BISECT_TEST_CACHE")
    path = Path(cache) / "harness" if cache else tmp_path_factory.mktemp("harness-cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_cli(*args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """``python bisect.py ARGS`` from the project root, as the README says to run it."""
    return subprocess.run(
        [sys.executable, str(ROOT / "bisect.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def run_json(*args: str, cache_dir: Path, results_dir: Path, status: int = 0, **kwargs) -> dict:
    """A run with ``--format json`` that must exit ``status`` (0: a conclusive report;
    125: a table with nothing testable in it); its report, parsed."""
    proc = run_cli(
        *args,
        "--format",
        "json",
        "--cache-dir",
        str(cache_dir),
        "--results-dir",
        str(results_dir),
        **kwargs,
    )
    assert proc.returncode == status, proc.stderr
    return json.loads(proc.stdout)


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def gunicorn_pids() -> list[int]:
    """Live (non-zombie) processes started by the harness (they carry its run token)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if b"GUNICORN_BISECT_RUN=" not in (entry / "environ").read_bytes():
                continue
        except OSError:
            continue
        if alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@pytest.fixture
def no_leaks():
    """Fail the test if it leaves a harness-started gunicorn running."""
    before = set(gunicorn_pids())
    yield
    left = set(gunicorn_pids()) - before
    # Another harness run on this machine (a benchmark, a second test session) may
    # have a server up right now: those end within seconds; a leak never does.
    deadline = time.monotonic() + 30
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left &= set(gunicorn_pids())
    assert not left, f"gunicorn processes outlived the run: {sorted(left)}"

"""Shared fixtures and helpers: test files import from here or from a helper module
(tests/fakes.py, history.py, graphs.py, local_http.py, local_index.py, osv_records.py),
never from another test file.  The tiers (pure / local / real) are in tests/tiers.py."""

from __future__ import annotations

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
from tests.tiers import (  # noqa: F401 - the tiers' hooks and their fixture
    _no_gunicorn_outside_real,
    pytest_collection_finish,
    pytest_collection_modifyitems,
    pytest_runtest_protocol,
    pytest_sessionfinish,
)

# The interrupt tests send SIGINT as a terminal's Ctrl-C does.  A suite started in the
# background of a non-interactive shell (or under nohup) inherits SIGINT ignored, and so
# would every harness it starts (an ignored signal survives exec): not what a user's
# terminal gives.  A handler here is reset to the default in each child at exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


# ---------------------------------------------------------------------------
# Planted Gunicorn-like git history (tests/history.py), built once per session.
# Sdists are cached in $GUNICORN_BISECT_TEST_CACHE when set, so repeated runs
# (and offline runs after one online run) do not download again.
# ---------------------------------------------------------------------------
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


def check_with_scenario(target: str, scenario: Path, cache_dir: Path, tmp_path: Path, *extra: str):
    """``--check TARGET --scenario FILE``; a run that does not end within 120 s fails."""
    return run_cli(
        "--check",
        target,
        "--scenario",
        str(scenario),
        "--cache-dir",
        str(cache_dir),
        "--results-dir",
        str(tmp_path / "results"),
        *extra,
        timeout=120,
    )


def git(repo: Path, *args: str) -> str:
    """``git -C REPO ARGS`` in a test-owned repository (never the project's), with a fixed
    identity and date and no system or user configuration; its output, stripped."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_AUTHOR_DATE": "2020-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2020-01-01T00:00:00Z",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(repo),
    }
    out = subprocess.run(
        ["git", "-C", str(repo), *args], env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


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

"""Trustworthy runs, with real processes: nothing outlives a run, interrupted or not;
an interrupted build is never used; concurrent runs share a cache safely."""

from __future__ import annotations

import json
import os
import pty
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.provision.environments import LAYOUT
from tests.conftest import ROOT, alive, gunicorn_pids, parent_of, run_cli

pytestmark = pytest.mark.real


def _start(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "bisect.py"), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _servers_of(parent: int) -> list[int]:
    """Harness-started servers whose parent is ``parent`` (the run under test)."""
    return [pid for pid in gunicorn_pids() if parent_of(pid) == parent]


def _token(pid: int) -> str | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    found = [e.split(b"=", 1)[1].decode() for e in env if e.startswith(b"GUNICORN_BISECT_RUN=")]
    return found[0] if found else None


def _cwd(pid: int) -> Path | None:
    """A server runs in its private directory."""
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None


def _alive_with_token(tokens: set[str]) -> list[int]:
    """Live processes (any parent) that carry one of this run's tokens."""
    return [p for p in gunicorn_pids() if _token(p) in tokens]


def _wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def seed() -> int:
    """Seed of a test's random delay: GUNICORN_BISECT_TEST_SEED=N replays a failure."""
    return int(os.environ.get("GUNICORN_BISECT_TEST_SEED") or random.randrange(2**32))


@pytest.fixture(scope="module")
def warm(cache_dir):
    """Environments for 19.5.0 and 19.6.0 built once, so interrupts hit running servers."""
    for release in ("19.5.0", "19.6.0"):
        run_cli("--check", release, "--cache-dir", str(cache_dir))
    return cache_dir


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("attempt", range(3))
def test_interrupt_mid_run_leaves_no_process_and_no_socket(warm, tmp_path, signum, attempt, seed):
    replay = f"replay: GUNICORN_BISECT_TEST_SEED={seed}"
    proc = _start(
        "19.5.0..19.6.0",
        "--no-commits",
        "--repeat",
        "50",
        "--cache-dir",
        str(warm),
        "--results-dir",
        str(tmp_path),
    )
    try:
        # this run's own server (other runs on the machine may have theirs up)
        assert _wait_for(lambda: _servers_of(proc.pid)), "no server ever started"
        tokens = {t for t in map(_token, _servers_of(proc.pid)) if t}
        time.sleep(random.Random(seed).uniform(0, 0.4))  # anywhere: boot, probes, teardown
        tokens |= {t for t in map(_token, _servers_of(proc.pid)) if t}
        dirs = {d for d in map(_cwd, _servers_of(proc.pid)) if d}
        started = time.monotonic()
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=15)
        elapsed = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, f"{replay}\n{err}"
    assert elapsed < 5, f"took {elapsed:.1f}s to stop; {replay}"
    assert "Resume with: python bisect.py 19.5.0..19.6.0" in err, f"{replay}\n{err}"
    assert "Traceback" not in err, f"{replay}\n{err}"
    assert tokens and not _alive_with_token(tokens), replay  # this run's servers and workers
    assert not [d for d in dirs if d.exists()], replay  # the private socket dirs are gone too
    assert not list(tmp_path.glob("*.json")), replay  # no record of an unfinished run


def test_interrupted_environment_build_is_never_used(tmp_path):
    cache = tmp_path / "cache"
    proc = _start("--check", "19.5.0", "--cache-dir", str(cache))
    envs = cache / "envs"
    try:
        assert _wait_for(
            lambda: envs.is_dir() and any(p.name.startswith(".tmp-") for p in envs.iterdir()), 120
        )
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert not [p for p in envs.iterdir() if p.name.startswith(".tmp-")]
    again = run_cli("--check", "19.5.0", "--cache-dir", str(cache))
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_damaged_environment_is_rebuilt(warm, tmp_path):
    proc = run_cli("--check", "19.5.0", "--cache-dir", str(warm))
    assert proc.returncode == 0
    manifests = [
        p
        for p in (warm / "envs").glob("gunicorn-19.5.0-*/gunicorn-bisect-env.json")
        if json.loads(p.read_text())["works"] and json.loads(p.read_text())["layout"] == LAYOUT
    ]
    assert manifests
    # the cache may hold other 19.5.0 environments (other worker classes, a matrix run):
    # damage them all, so the check can only pass on a rebuilt environment
    victims = [
        next(m.parent.glob("lib/python*/site-packages/gunicorn/arbiter.py")) for m in manifests
    ]
    for victim in victims:
        victim.write_text("raise SystemExit('damaged')\n")
    proc = run_cli("--check", "19.5.0", "--cache-dir", str(warm))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert any("damaged" not in v.read_text() for v in victims if v.exists())


def test_two_runs_on_one_cold_cache_build_once_and_keep_both_records(tmp_path):
    """Concurrent runs share a cold cache: one builds the environment, the other waits
    for it and reuses it (never builds over it), and each run keeps its own record."""
    cache, results = tmp_path / "cache", tmp_path / "results"
    args = ("19.6.0", "--no-commits", "--format", "json", "--cache-dir", str(cache))
    a, b = (_start(*args, "--results-dir", str(results)) for _ in range(2))
    outs = [p.communicate(timeout=300) for p in (a, b)]
    assert (a.returncode, b.returncode) == (0, 0), outs
    rows = [json.loads(out)["rows"][0] for out, _ in outs]
    assert [r["verdict"] for r in rows] == ["fail", "fail"], rows
    assert sorted(r["reused_env"] for r in rows) == [False, True], rows  # built once
    assert not [p for p in (cache / "envs").iterdir() if p.name.startswith(".tmp-")]
    records = [json.loads(r.read_text())["rows"] for r in results.glob("*.json")]
    assert len(records) == 2  # one per run, neither clobbered:
    assert {r[0]["reused_env"]: r for r in records} == {r["reused_env"]: [r] for r in rows}


def test_repeat_reports_agreement(warm):
    proc = run_cli("--check", "19.6.0", "--repeat", "3", "--cache-dir", str(warm))
    assert proc.returncode == 1
    assert "same in 3/3 runs" in proc.stdout


def test_progress_is_quiet_off_a_terminal_and_verbose_shows_the_log(warm):
    quiet = run_cli("--check", "19.5.0", "--cache-dir", str(warm))
    assert quiet.stderr == ""
    loud = run_cli("--check", "19.5.0", "-v", "--cache-dir", str(warm))
    assert re.search(
        r"^\[gunicorn-bisect +[\d.]+s\] 19\.5\.0: scenario on Python", loud.stderr, re.M
    )
    assert "Booting worker with pid" in loud.stderr  # -v shows each gunicorn log
    silenced = run_cli("--check", "19.5.0", "-v", "-q", "--cache-dir", str(warm))
    assert silenced.stderr == ""


def _read_all(master: int) -> bytes:
    """Everything written to a pty until its other end is closed."""
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def _on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bisect.py"), *args],
        cwd=ROOT,
        stdout=slave,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    os.close(slave)
    output = _read_all(master)
    proc.wait(timeout=120)
    os.close(master)
    return output.decode(errors="replace")


def test_colour_only_on_a_terminal_and_never_with_no_color(warm, tmp_path):
    args = ["19.5.0", "--no-commits", "--cache-dir", str(warm), "--results-dir", str(tmp_path)]
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["TERM"] = "xterm"
    assert "\x1b[32mPASS" in _on_a_terminal(args, env)
    assert "\x1b[" not in _on_a_terminal(args, {**env, "NO_COLOR": "1"})
    piped = run_cli(*args)
    assert "PASS" in piped.stdout and "\x1b[" not in piped.stdout


def test_teardown_kills_a_worker_that_left_its_process_group():
    """A worker whose arbiter died, or that escaped into its own session, is still found
    (by the run token in its environment) and killed."""
    import uuid

    from harness.host import processes

    token = uuid.uuid4().hex
    env = {**os.environ, "GUNICORN_BISECT_RUN": token}
    escapee = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"  # a new session: killpg of the parent's group misses it
        "    time.sleep(120)\n"
        "else:\n"
        "    time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", escapee], env=env, start_new_session=True)
    assert _wait_for(lambda: len(processes.pids_with_token(token)) == 2, 10)
    processes.terminate(proc, token)
    assert _wait_for(lambda: not [p for p in processes.pids_with_token(token) if alive(p)], 5)


def test_servers_die_with_a_harness_killed_by_sigkill(warm, seed):
    """SIGKILL reaches no handler; the servers still go (PR_SET_PDEATHSIG, then the
    workers see their arbiter gone)."""
    proc = _start("--check", "19.5.0", "--repeat", "50", "--cache-dir", str(warm))
    try:
        assert _wait_for(lambda: _servers_of(proc.pid)), "no server ever started"
        time.sleep(random.Random(seed).uniform(0, 0.3))
        tokens = {t for t in map(_token, _servers_of(proc.pid)) if t}
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _wait_for(lambda: not _alive_with_token(tokens), 10), (
        f"servers outlived SIGKILL; replay: GUNICORN_BISECT_TEST_SEED={seed}"
    )


def test_a_progress_bar_on_a_terminal_and_only_on_stderr(warm, tmp_path):
    """stderr on a terminal: a bar with done/total, the step, elapsed<remaining; stdout
    (a pipe here) gets the report alone."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bisect.py"),
            "19.5.0,19.6.0",
            "--no-commits",
            "--cache-dir",
            str(warm),
            "--results-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
    )
    os.close(slave)
    bar = _read_all(master).decode(errors="replace")
    out, _ = proc.communicate(timeout=120)
    os.close(master)
    assert proc.returncode == 0, bar
    assert re.search(r"\b[0-4]/4 steps \|", bar), bar  # done/total
    assert re.search(r"\d\d:\d\d<", bar), bar  # elapsed<remaining
    assert "19.6.0" in bar  # the current step
    assert "steps |" not in out and "FAIL" in out

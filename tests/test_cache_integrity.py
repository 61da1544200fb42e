"""The cache holds only true facts: an interrupted observation is never remembered.

Faults are injected the way they happen: signals to the run's process group (what
Ctrl-C in a terminal, ``timeout`` and CI runners send) while a boot probe runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli, run_json

pytestmark = pytest.mark.real


def _cache_from(shared: Path, dest: Path) -> Path:
    """A private cache with the shared downloads (hard links) but no remembered probes
    and no environments, so this run probes every Python again."""
    dest.mkdir()
    for name in ("index", "wheels", "unpacked"):
        if (shared / name).is_dir():
            subprocess.run(["cp", "-al", str(shared / name), str(dest / name)], check=True)
    if (shared / "interpreters.json").exists():
        shutil.copy(shared / "interpreters.json", dest)
    return dest


def _probe_in_session(sid: int, python: bytes, text: bytes = b'out["ok"]') -> bool:
    """Is a probe (``text`` in its command line) by ``python`` running as a child of the
    harness ``sid`` (in the harness's process group, or in a session of its own)?"""
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (entry / "cmdline").read_bytes()
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            ppid, pgid = int(fields[1]), int(fields[2])
        except (OSError, ValueError, IndexError):
            continue
        if sid in (ppid, pgid) and text in cmd and python in cmd.split(b"\0")[0]:
            return True
    return False


@pytest.mark.real
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_at_the_boot_probe_leaves_no_false_refusal(sig, cache_dir, tmp_path, no_leaks):
    cache = _cache_from(cache_dir, tmp_path / "cache")
    args = ["19.0.0..19.1.1", "--no-commits", "--cache-dir", str(cache)]
    for _ in range(2):  # at the probe of the one Python that runs these releases
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bisect.py"), *args, "--results-dir", str(tmp_path)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while not _probe_in_session(proc.pid, b"/3.6") and proc.poll() is None:
            assert time.monotonic() < deadline, "no boot probe started"
            time.sleep(0.005)
        if proc.poll() is None:
            os.killpg(proc.pid, sig)  # the whole group: the harness and its probe child
            signalled = time.monotonic()
            assert proc.wait(timeout=60) == 130
            assert time.monotonic() - signalled < 8  # never hung, whatever the threads held
        proc.wait(timeout=60)
    # only Python 3.6 runs 19.0.0-19.1.1: a remembered false refusal would leave none
    report = run_json(*args, cache_dir=cache, results_dir=tmp_path / "after")
    rows = {r["target"]: r for r in report["rows"]}
    assert {t: r["verdict"] for t, r in rows.items()} == {
        "19.0.0": "pass",
        "19.1.0": "pass",
        "19.1.1": "pass",
    }
    assert all(r["python"].startswith("3.6") for r in rows.values())


@pytest.mark.real
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_at_the_interpreter_probe_is_not_remembered(sig, cache_dir, tmp_path):
    from harness.provision import interpreters

    cache = _cache_from(cache_dir, tmp_path / "cache")
    (cache / "interpreters.json").unlink(missing_ok=True)
    args = ["19.0.0..19.1.1", "--no-commits", "--cache-dir", str(cache)]
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bisect.py"), *args, "--results-dir", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not _probe_in_session(proc.pid, b"/3.6", b"'impl'") and proc.poll() is None:
        assert time.monotonic() < deadline, "no interpreter probe started"
        time.sleep(0.002)
    started = time.monotonic()
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and b"Traceback" not in err
    assert time.monotonic() - started < 6
    # what the next run reads: every Python found, none remembered as "not a Python"
    assert interpreters.discover(cache) == interpreters.discover()


def _damageable_cache(shared: Path, dest: Path) -> Path:
    """A private cache: the downloads linked, but every file a test damages (bottle's
    wheels and unpacked copies) copied, so the shared cache stays whole; environments
    are built here (theirs point at the shared cache's unpacked copies)."""
    _cache_from(shared, dest)
    for sub in ("wheels", "unpacked"):
        for p in (dest / sub).glob("bottle-*"):
            original = shared / sub / p.name
            if p.is_dir():
                shutil.rmtree(p)
                shutil.copytree(original, p, symlinks=True)
            else:
                p.unlink()
                shutil.copy2(original, p)
    return dest


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _prune_unpacked_bottle(cache: Path) -> None:
    for p in (cache / "unpacked").glob("bottle-*"):
        shutil.rmtree(p)


def _compiled_then_truncated(python: Path, tree: Path) -> None:
    """Bytecode for ``tree`` by the Python that runs it, every ``.pyc`` cut in half (what a
    full disk or a killed writer leaves): "EOFError: marshal data too short" if trusted."""
    subprocess.run([str(python), "-m", "compileall", "-q", str(tree)], capture_output=True)
    assert list(tree.rglob("*.pyc")), "nothing compiled"
    for pyc in tree.rglob("*.pyc"):
        _truncate(pyc)


def _rewrite_script(cache: Path, decoy: Path) -> None:
    for env in (cache / "envs").glob("gunicorn-19.6.0-*"):
        (env / "bin" / "gunicorn").write_text(f'#!/bin/sh\nexec {decoy} "$@"\n')


def _truncate_bytecode(cache: Path) -> None:
    for env in (cache / "envs").glob("gunicorn-19.6.0-*"):
        (site,) = env.glob("lib/python3.*/site-packages")
        _compiled_then_truncated(env / "bin" / "python", site / "gunicorn")
        for tree in (cache / "unpacked").glob("bottle-*"):
            _compiled_then_truncated(env / "bin" / "python", tree)


DAMAGES = {
    "bin/gunicorn rewritten to run 19.5.0": lambda c, decoy: _rewrite_script(c, decoy),
    "gunicorn and bottle .pyc truncated": lambda c, decoy: _truncate_bytecode(c),
    "bin/gunicorn removed": lambda c, _: [
        (e / "bin" / "gunicorn").unlink() for e in (c / "envs").glob("gunicorn-19.6.0-*")
    ],
    "shared bottle.py truncated": lambda c, _: [
        _truncate(p) for p in (c / "unpacked").glob("bottle-*/bottle.py")
    ],
    "bottle wheel truncated, its shared copy pruned": lambda c, _: [
        *(_truncate(p) for p in (c / "wheels").glob("bottle-*.whl")),
        _prune_unpacked_bottle(c),
    ],
}
RUN = str(ROOT / "examples" / "check_socket_survives.sh")


@pytest.mark.real
@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_cache_is_rebuilt_and_the_verdict_stays_right(
    damage, cache_dir, tmp_path, no_leaks
):
    cache = _damageable_cache(cache_dir, tmp_path / "cache")
    older = sorted((cache_dir / "envs").glob("gunicorn-19.5.0-py3.9*/bin/gunicorn"))
    if not older:  # a cold cache: build the decoy's environment first
        built = run_cli("--check", "19.5.0", "--cache-dir", str(cache_dir), "--python", "3.9")
        assert built.returncode == 0, built.stdout + built.stderr
        older = sorted((cache_dir / "envs").glob("gunicorn-19.5.0-py3.9*/bin/gunicorn"))
    assert older, "no gunicorn 19.5.0 environment to act as the decoy"
    decoy = tmp_path / "decoy"  # another gunicorn on PATH: 19.5.0, which keeps the socket
    decoy.mkdir()
    (decoy / "gunicorn").write_text(f'#!/bin/sh\nexec {older[0]} "$@"\n')
    (decoy / "gunicorn").chmod(0o755)
    env = {**os.environ, "PATH": f"{decoy}:{os.environ['PATH']}"}
    checks = [("--check", "19.6.0"), ("--check", "19.6.0", "--run", RUN)]
    common = ("--cache-dir", str(cache), "--results-dir", str(tmp_path))
    for check in checks:  # builds this cache's environment
        assert run_cli(*check, *common, env=env).returncode == 1
    DAMAGES[damage](cache, older[0])
    for check in checks * 2:  # the run that finds the damage, and the next one
        proc = run_cli(*check, *common, env=env)
        assert proc.returncode == 1, proc.stdout + proc.stderr  # 19.6.0 loses its socket

"""Temporaries and cache directories under hostile conditions: another PID namespace,
umask 000, a SIGKILLed harness, a shim rewritten while servers start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from harness.host import compat, fsutil
from harness.host.git import Repo
from harness.provision import commit_wheels, wheels
from tests.conftest import ROOT, alive
from tests.history import History

pytestmark = pytest.mark.local

_HOLD = """
import sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from harness.host import fsutil
made = fsutil.temp_dir(Path(sys.argv[2]), "env")
# as a container sees it: our pid means nothing outside, so rename it to a foreign one
foreign = made.with_name(".tmp-999999-env-x")
made.rename(foreign)
print(foreign, flush=True)
time.sleep(60)
"""


def test_the_sweep_spares_a_live_build_of_another_pid_namespace(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(ROOT), str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        live = Path(holder.stdout.readline().strip())
        (live / "half-built").write_text("x")
        dead = tmp_path / ".tmp-999998-env-y"  # nobody holds it: an interrupted build
        dead.mkdir()
        fsutil.sweep_temporaries(tmp_path)
        assert live.is_dir() and not dead.exists()
    finally:
        holder.kill()
        holder.wait()
    fsutil.sweep_temporaries(tmp_path)  # its owner is gone now
    assert not live.exists()


def test_cache_directories_are_private_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        fsutil.atomic_write_text(tmp_path / "cache" / "preflight" / "x.json", "{}")
        build = fsutil.temp_dir(tmp_path / "cache" / "envs", "env")
        shim = compat.write_shim(tmp_path / "cache" / "compat-shim")
    finally:
        os.umask(old)
    for d in (tmp_path / "cache", tmp_path / "cache" / "preflight", build.parent, build, shim):
        assert d.stat().st_mode & 0o077 == 0, d
    assert (tmp_path / "cache" / "preflight" / "x.json").stat().st_mode & 0o022 == 0


def test_the_shim_is_replaced_atomically_and_only_when_it_differs(tmp_path):
    shim = compat.write_shim(tmp_path / "shim") / "sitecustomize.py"
    os.utime(shim, ns=(0, 0))
    compat.write_shim(tmp_path / "shim")
    assert shim.stat().st_mtime_ns == 0  # unchanged: not rewritten under a starting server
    shim.write_text("# replaced by someone else\n")
    before = shim.stat().st_ino
    compat.write_shim(tmp_path / "shim")
    assert shim.read_text() == compat.SITECUSTOMIZE
    assert shim.stat().st_ino != before  # a new file renamed over it, never half-written
    assert [p.name for p in shim.parent.iterdir()] == ["sitecustomize.py"]


def test_a_truncated_commit_wheel_is_rebuilt(gunicorn_history: History, tmp_path):
    repo = Repo.open(str(gunicorn_history.path), tmp_path / "cache")
    first = commit_wheels.commit_wheel(repo, gunicorn_history.release_bad, tmp_path / "cache")
    data = first.wheel.read_bytes()
    first.wheel.write_bytes(data[: len(data) // 2])
    again = commit_wheels.commit_wheel(repo, gunicorn_history.release_bad, tmp_path / "cache")
    assert again.digest == first.digest and wheels.intact(again.wheel)


_RUN = """
import subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from harness.host import fsutil
fsutil.use_run_temp_dir()
import tempfile
print(tempfile.gettempdir(), flush=True)
# gunicorn's own temporaries, the way it makes them (workertmp, pidfile lock)
tempfile.mkstemp(prefix="wgunicorn-")
subprocess.run([sys.executable, "-c", "import tempfile; tempfile.mkstemp(prefix='gunicorn-')"])
if sys.argv[2] == "kill":
    time.sleep(60)
"""


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_a_runs_temporaries_stay_in_its_own_directory_and_go_with_it(how):
    shared = Path(tempfile.mkdtemp(prefix="gbt", dir="/tmp"))  # short: used as it is
    try:
        _runs_temporaries(shared, how)
    finally:
        fsutil.remove_tree(shared)


def _runs_temporaries(shared: Path, how: str) -> None:
    env = {**os.environ, "TMPDIR": str(shared)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN, str(ROOT), how], stdout=subprocess.PIPE, text=True, env=env
    )
    private = Path(proc.stdout.readline().strip())
    assert private.parent == shared and private.stat().st_mode & 0o077 == 0
    if how == "kill":
        deadline = time.monotonic() + 30
        while len(list(private.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.kill()
    proc.wait(timeout=30)
    assert not any(p.name.startswith(("gunicorn-", "wgunicorn-")) for p in shared.iterdir())
    if how == "kill":  # SIGKILL: no cleanup ran; the next run sweeps it
        assert private.exists()
        subprocess.run(
            [sys.executable, "-c", _RUN, str(ROOT), "exit"],
            env=env,
            check=True,
            capture_output=True,
        )
    assert list(shared.iterdir()) == []


_HARNESS = """
import os, subprocess, sys, time, uuid
sys.path.insert(0, sys.argv[1])
from harness.host import processes
token = uuid.uuid4().hex
env = {**os.environ, processes.RUN_TOKEN_ENV: token}
# a worker that left the process group and ignores SIGTERM, stuck in a request
code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"
worker = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)
processes.register(worker, token)
print(worker.pid, flush=True)
time.sleep(120)
"""


def test_a_worker_that_left_the_group_dies_with_a_killed_harness(tmp_path):
    harness = subprocess.Popen(
        [sys.executable, "-c", _HARNESS, str(ROOT)], stdout=subprocess.PIPE, text=True
    )
    worker = int(harness.stdout.readline())
    os.kill(harness.pid, signal.SIGKILL)  # no handler, no cleanup
    harness.wait()
    deadline = time.monotonic() + 20
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    survived = alive(worker)
    if survived:
        os.kill(worker, signal.SIGKILL)
    assert not survived


def test_without_its_virtualenv_bisect_py_is_one_line_naming_the_set_up(tmp_path):
    bare = tempfile.gettempdir()  # a Python with only the standard library
    python = next(
        (p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if Path(p).exists()), None
    )
    if python is None:
        pytest.skip("no system Python without the project's dependencies")
    probe = subprocess.run([python, "-c", "import filelock"], capture_output=True)
    if probe.returncode == 0:
        pytest.skip(f"{python} has filelock installed")
    proc = subprocess.run(
        [python, str(ROOT / "bisect.py"), "19.5.0"], capture_output=True, text=True, cwd=bare
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "missing dependency" in proc.stderr and "pip install -e ." in proc.stderr


def test_what_a_sigkilled_write_left_is_swept_by_the_next_write_there(tmp_path):
    left = tmp_path / "wheels" / ".tmp-999999-setuptools.whl-abc"  # 120 MB in the report
    left.parent.mkdir()
    left.write_bytes(b"x" * 1024)
    fsutil.atomic_write_text(tmp_path / "wheels" / "other.json", "{}")
    assert not left.exists()


def test_a_sweep_in_another_thread_never_takes_a_temporary_being_made(tmp_path):
    """The commit bisection builds environments on several threads: one thread's sweep
    must not remove the directory another thread has just made (it lost a heal build)."""
    import threading

    stop = threading.Event()
    failures: list[BaseException] = []

    def sweep() -> None:
        while not stop.is_set():
            fsutil.sweep_temporaries(tmp_path)

    def make() -> None:
        try:
            for _ in range(200):
                tmp = fsutil.temp_dir(tmp_path, "env")
                (tmp / "half-built").write_text("x")  # gone if the sweep took it
                fsutil.remove_tree(tmp)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    sweepers = [threading.Thread(target=sweep) for _ in range(2)]
    makers = [threading.Thread(target=make) for _ in range(3)]
    for t in sweepers + makers:
        t.start()
    for t in makers:
        t.join()
    stop.set()
    for t in sweepers:
        t.join()
    assert failures == []


_BYTECODE_RUN = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from harness.host import fsutil
tree = Path(sys.argv[2])
fsutil.keep_recorded_bytecode(tree)  # as a run that reuses the cached tree
code = __import__("subprocess").run([sys.executable, "-c", "import mod; print(mod.ANSWER)"],
    cwd=tree, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
print(code.stdout.strip() or code.stderr.strip().splitlines()[-1])
if sys.argv[3] == "linked":  # something links a .pyc in during the run: Python never does
    pyc = next((tree / "__pycache__").glob("mod.*.pyc"))
    (tree / "__pycache__" / "mod.cpython-38.pyc").symlink_to(pyc)
if sys.argv[3] in ("clean", "linked"):
    fsutil.record_bytecode()
"""


def _run_in(tree: Path, end: str = "clean") -> str:
    """One harness process: check the tree's bytecode, a server-like import that writes
    bytecode beside the source, then the run's end (recorded only when it was clean)."""
    proc = subprocess.run(
        [sys.executable, "-c", _BYTECODE_RUN, str(ROOT), str(tree), end],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _pycs(tree: Path) -> list[Path]:
    return sorted(tree.glob("__pycache__/mod.*.pyc"))


def _mark(pyc: Path) -> None:
    os.utime(pyc, (1, 1))  # its bytes stay: a reused file keeps the mark, a new one has none


def _marked(pyc: Path) -> bool:
    return pyc.stat().st_mtime == 1


def test_bytecode_is_reused_only_as_the_harness_recorded_it(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "mod.py").write_text("ANSWER = 42\n")
    assert _run_in(tree) == "42"
    (pyc,) = _pycs(tree)
    _mark(pyc)
    assert _run_in(tree) == "42"
    assert _marked(_pycs(tree)[0]), "recorded bytecode was compiled again"
    assert fsutil.BYTECODE_RECORD in os.listdir(tree / "__pycache__")
    assert (tree / "__pycache__").stat().st_mode & 0o777 == 0o700
    record = tree / "__pycache__" / fsutil.BYTECODE_RECORD
    assert record.stat().st_mode & 0o777 == 0o600

    data = pyc.read_bytes()  # damaged between runs: cut in half, header intact
    pyc.write_bytes(data[: len(data) // 2])
    assert _run_in(tree) == "42", "a truncated .pyc was trusted"
    assert _pycs(tree)[0].read_bytes() == data


def test_bytecode_an_interrupted_or_foreign_writer_left_is_compiled_again(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "mod.py").write_text("ANSWER = 42\n")
    assert _run_in(tree, end="interrupted") == "42"
    _mark(_pycs(tree)[0])
    assert _run_in(tree) == "42"  # not recorded by the interrupted run: compiled again
    (pyc,) = _pycs(tree)
    assert not _marked(pyc)
    _mark(pyc)
    stray = tree / "other.pyc"  # what Python 2 would write beside a source, by another hand
    stray.write_bytes(b"junk")
    (tree / "__pycache__" / "mod.cpython-39.pyc.140234").write_bytes(b"half")
    assert _run_in(tree, end="linked") == "42"
    record = (tree / "__pycache__" / fsutil.BYTECODE_RECORD).read_text()
    assert "cpython-38" not in record  # a link is never recorded ...
    assert _run_in(tree) == "42"
    assert not (tree / "__pycache__" / "mod.cpython-38.pyc").is_symlink()  # ... nor kept
    assert not stray.exists()
    assert sorted(os.listdir(tree / "__pycache__")) == sorted([fsutil.BYTECODE_RECORD, pyc.name])
    assert _marked(_pycs(tree)[0])

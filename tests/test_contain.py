"""User code inside the harness's process is bounded: a scenario file's import runs first in
a throwaway process (a loop, os._exit or a flood there is one line), os._exit in check()
raises instead of ending the harness, and the threads a check leaves running are stopped."""

from __future__ import annotations

import os
import textwrap
import threading
import time
from pathlib import Path

import pytest

from harness.scenarios import fixture as contain
from harness.scenarios.base import ScenarioError
from harness.scenarios.case import load, trial_import
from tests.conftest import alive

pytestmark = pytest.mark.local


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "scenario.py"
    path.write_text(textwrap.dedent(body))
    return path


# -- the trial import ------------------------------------------------------------------------------
def test_a_loop_at_import_is_one_line_within_the_limit(tmp_path):
    path = write(tmp_path, "while True:\n    pass\n")
    start = time.monotonic()
    with pytest.raises(ScenarioError, match=r"importing it did not finish within 1 s"):
        trial_import(path, limit=1.0)
    assert time.monotonic() - start < 10


def test_os_exit_at_import_is_one_line_naming_the_status(tmp_path):
    path = write(tmp_path, "import os\nos._exit(3)\ndef check(server):\n    return 'pass', ''\n")
    with pytest.raises(ScenarioError, match=r"ended the process with status 3"):
        load(path)


def test_a_crash_at_import_names_the_signal(tmp_path):
    path = write(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    with pytest.raises(ScenarioError, match=r"killed the process \(SIGSEGV\)"):
        trial_import(path)


def test_a_flood_at_import_goes_nowhere_and_the_file_loads(tmp_path, capfd):
    path = write(
        tmp_path,
        """\
        import sys
        for _ in range(20000):
            sys.stdout.write("x" * 100 + "\\n")
        def check(server):
            return "pass", "fine"
        """,
    )
    trial_import(path)
    assert capfd.readouterr().out == ""  # the trial's 2 MB went to /dev/null


def test_a_process_started_at_import_ends_with_the_trial(tmp_path):
    pidfile = tmp_path / "pid"
    path = write(
        tmp_path,
        f"""\
        import subprocess
        p = subprocess.Popen(["sleep", "600"])
        open({str(pidfile)!r}, "w").write(str(p.pid))
        """,
    )
    trial_import(path)
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.05)
    assert not alive(pid)


# -- os._exit and threads in the harness's process -------------------------------------------------
def test_os_exit_raises_in_the_harness_and_exits_for_real_in_a_fork():
    contain.install()
    with pytest.raises(contain.ExitCalled) as caught:
        os._exit(3)
    assert caught.value.status == 3
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os._exit(7)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 7


def test_the_threads_of_a_check_that_ran_out_are_stopped():
    """The check's own loop and the thread it started both swallow Exception; both end."""
    contain.install()
    ended: list[str] = []

    def spin(name: str) -> None:
        try:
            while True:
                try:
                    sum(range(100))
                except Exception:
                    pass
        except contain.Stopped:
            ended.append(name)

    def check() -> None:
        threading.Thread(target=spin, args=("child",), daemon=True).start()
        spin("check")

    root = threading.Thread(target=check, daemon=True)
    contain.adopt(root)
    root.start()
    time.sleep(0.2)
    assert len(contain.owned(root)) == 2
    assert contain.stop(root, grace=5.0) == []
    assert sorted(ended) == ["check", "child"]


def test_threads_of_the_harness_are_not_a_checks():
    contain.install()
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    root = threading.Thread(target=lambda: None, daemon=True)
    contain.adopt(root)
    root.start()
    root.join()
    assert other not in contain.owned(root)
    contain.stop(root)
    assert other.is_alive()
    stop.set()


def test_a_thread_that_reuses_an_ended_threads_ident_is_not_that_checks():
    """Idents are reused as soon as a thread ends: a check's ended thread must not make
    the next row's check (started by the harness) a target of this check's stop."""
    contain.install()
    root = threading.Thread(target=lambda: threading.Thread(target=lambda: None).start())
    contain.adopt(root)
    root.start()
    root.join()
    time.sleep(0.05)  # the child ended too
    hold = threading.Event()
    later = [threading.Thread(target=hold.wait, daemon=True) for _ in range(20)]
    for t in later:
        t.start()
    try:
        assert not set(later) & set(contain.owned(root))
        assert contain.stop(root, grace=0.5) == []
        assert all(t.is_alive() for t in later)
    finally:
        hold.set()


_UNRAISABLE = """
import sys
sys.path.insert(0, sys.argv[1])
from harness.scenarios import fixture
fixture.install()
class Raises:  # its __del__'s exception goes where an escaped thread's does: unraisablehook
    def __init__(self, exc):
        self.exc = exc
    def __del__(self):
        raise self.exc
Raises(fixture.Stopped())
Raises(RuntimeError("boom"))
"""


def test_a_stopped_thread_is_silent_even_past_its_run_and_other_errors_still_speak():
    """``stop`` can reach a thread in threading's own code after its ``run`` returned: the
    exception escapes to the unraisable hook ("Exception ignored in thread started by"),
    which under load broke an interrupted run's clean stderr."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    proc = subprocess.run(
        [sys.executable, "-c", _UNRAISABLE, str(ROOT)], capture_output=True, text=True, timeout=60
    )
    assert "Stopped" not in proc.stderr
    assert "RuntimeError: boom" in proc.stderr

"""Signals only mark the run cancelled; the process always ends within a few seconds.

Each case runs a small program under ``processes.signals_as_flags`` in its own process
(the handlers and the watchdog are process-wide) and signals it as a terminal does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from harness.host import processes
from tests.conftest import ROOT

pytestmark = pytest.mark.local

#: the programs' own grace (the harness's is processes.GRACE, 5 s): the same watchdog, sooner
GRACE = 2.5

# The budget's wait, a pool thread that never ends (it holds the waiter's lock's
# neighbours: a non-daemon thread the interpreter joins at exit), and a main loop that
# only learns of the signal through the Cancel.
BUDGET_PROGRAM = """
import sys, threading, time
from harness.host import processes
from harness.jobs.budget import Budget

processes.GRACE = GRACE_HERE
stuck = threading.Event()

def work(i):
    if i == 0:
        stuck.wait()  # never set: a thread that ignores the cancel
    time.sleep(0.5)
    return i

def last_words():
    sys.stderr.write("forced\\n")

with processes.signals_as_flags(last_words):
    c = processes.Cancel()
    b = Budget(2, c)
    print("ready", flush=True)
    try:
        for _ in b.unordered(work, range(50)):
            pass
    except processes.Cancelled:
        print("cancelled", flush=True)
        b.abandon()
"""

# A main thread stuck where no Cancel is ever checked (a lock nobody releases).
STUCK_PROGRAM = """
import sys, threading
from harness.host import processes

processes.GRACE = GRACE_HERE
with processes.signals_as_flags(lambda: sys.stderr.write("forced\\n")):
    print("ready", flush=True)
    lock = threading.Lock()
    lock.acquire()
    lock.acquire()
"""


def _start(program: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(program).replace("GRACE_HERE", str(GRACE))],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_cancels_the_budget_from_its_loop_and_the_process_ends(sig) -> None:
    proc = _start(BUDGET_PROGRAM)
    time.sleep(0.3)
    started = time.monotonic()
    os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=GRACE + 5)
    took = time.monotonic() - started
    assert "cancelled" in out  # raised in the main loop, not inside a lock
    assert "Traceback" not in err
    # the stuck pool thread would hold the interpreter's exit for ever: the watchdog ends it
    assert (proc.returncode, "forced") == (130, err.strip())
    assert took < GRACE + 2


def test_a_second_signal_ends_the_process_at_once() -> None:
    proc = _start(STUCK_PROGRAM)
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=GRACE + 5)
    assert proc.returncode == 130 and "forced" in err and "Traceback" not in err
    assert time.monotonic() - started < GRACE - 1


def test_a_main_thread_that_never_looks_is_ended_after_the_grace() -> None:
    proc = _start(STUCK_PROGRAM)
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=GRACE + 5)
    assert proc.returncode == 130 and "forced" in err
    assert GRACE - 0.5 < time.monotonic() - started < GRACE + 2


def test_without_a_signal_the_handlers_are_put_back() -> None:
    before = {s: signal.getsignal(s) for s in processes.STOP_SIGNALS}
    with processes.signals_as_flags(lambda: None):
        assert signal.getsignal(signal.SIGINT) is not before[signal.SIGINT]
    assert {s: signal.getsignal(s) for s in processes.STOP_SIGNALS} == before


# A probe (30 s) while the run is interrupted after 0.5 s.
PROBE_PROGRAM = """
import os, signal, sys, threading, time
from harness.host import processes

code = "import os, time; print(os.getpid(), flush=True); time.sleep(30)"
with processes.signals_as_flags(lambda: None):
    print("ready", flush=True)
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
    started = time.monotonic()
    try:
        processes.run_to_end([sys.executable, "-c", code], timeout=30)
    except processes.Cancelled:
        print("cancelled after %.1f" % (time.monotonic() - started), flush=True)
    print("fresh session cancelled:", processes.Cancel().is_set(), flush=True)
    os._exit(0)
"""


def test_a_probe_ended_by_a_signal_or_a_timeout_is_no_answer() -> None:
    """A probe whose run is interrupted raises Cancelled (its program killed), one that
    is killed or times out raises Undecided: no caller can cache either."""
    with pytest.raises(processes.Undecided, match="did not finish within 0.5 s"):
        processes.run_to_end([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    with pytest.raises(processes.Undecided, match="killed by SIGKILL"):
        processes.run_to_end(
            [sys.executable, "-c", "import os; os.kill(os.getpid(), 9)"], timeout=10
        )
    proc = _start(PROBE_PROGRAM)
    out, _ = proc.communicate(timeout=20)
    lines = out.splitlines()
    assert lines[0].startswith("cancelled after ") and float(lines[0].split()[-1]) < 2
    # the watchdog saw the signal: a session opened from now on starts cancelled
    assert lines[1] == "fresh session cancelled: True"


def test_a_grandchild_holding_output_does_not_hold_the_probe() -> None:
    code = "import subprocess; p = subprocess.Popen(['sleep', '30']); print(p.pid)"
    started = time.monotonic()
    done = processes.run_to_end([sys.executable, "-c", code], timeout=20)
    assert time.monotonic() - started < 5
    grandchild = int(done.stdout)
    time.sleep(0.2)  # killed with the probe's session; reaped by init
    assert not os.path.exists(f"/proc/{grandchild}") or "Z" in _state(grandchild)


def _state(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


# A harness that launches a server-like process; that process starts a daemon with an
# empty environment in a session of its own (double fork), then the harness is SIGKILLed.
DAEMON_PROGRAM = """
import os, sys, time, uuid
from pathlib import Path
from harness.host import processes

out = Path(sys.argv[1])
daemon = (
    "import os, subprocess, sys, time\\n"
    "if os.fork() == 0:\\n"
    "    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'],"
    " env={}, start_new_session=True, stdout=open(%r, 'w'))\\n"
    "    os._exit(0)\\n"
    "time.sleep(300)\\n"
) % str(out.with_suffix('.daemon'))
token = uuid.uuid4().hex
proc = processes.launch([sys.executable, "-c", daemon], cwd=Path("/"),
                        env=processes.child_env(token), output=out)
print("ready", flush=True)
time.sleep(300)
"""


def _daemon_pid(marker) -> int | None:
    for entry in os.listdir("/proc"):
        try:
            if os.readlink(f"/proc/{entry}/fd/1") == str(marker):
                return int(entry)
        except (OSError, ValueError):
            continue
    return None


def test_a_daemon_with_an_empty_environment_dies_with_a_sigkilled_harness(tmp_path) -> None:
    out = tmp_path / "server.log"
    proc = subprocess.Popen(
        [sys.executable, "-c", DAEMON_PROGRAM, str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 10
    while (daemon := _daemon_pid(out.with_suffix(".daemon"))) is None:
        assert time.monotonic() < deadline, "the daemon never started"
        time.sleep(0.05)
    time.sleep(1.5)  # the reaper notes the server's descendants every 0.5 s
    assert not open(f"/proc/{daemon}/environ", "rb").read()  # no token to find it by
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    try:
        while os.path.exists(f"/proc/{daemon}") and _state(daemon) != "Z":
            assert time.monotonic() < deadline, "the daemon outlived the harness"
            time.sleep(0.1)
    finally:  # never leave it behind, even when the test fails
        if _daemon_pid(out.with_suffix(".daemon")) == daemon:
            os.kill(daemon, signal.SIGKILL)

"""harness.host.processes' /proc readers on a real process that opens, spawns and forks on command."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness.host.processes import ProcessGone, children, fds, snapshot

pytestmark = pytest.mark.local

# Waits for a line, then opens 3 sockets, 2 pipes (4 fds), 1 file, starts 4 threads and
# forks 2 children (one exits at once and is never reaped), then says so and waits.
GROW = r"""
import os, socket, sys, threading, time
print("ready", flush=True)  # imports done: nothing opened from here on but what follows
sys.stdin.readline()
keep = [socket.socket() for _ in range(3)]
keep += [os.pipe() for _ in range(2)]
keep.append(open(sys.argv[1], "w"))
stop = threading.Event()
for _ in range(4):
    threading.Thread(target=stop.wait, daemon=True).start()
if os.fork() == 0:
    os._exit(0)
if os.fork() == 0:
    time.sleep(60)
    os._exit(0)
time.sleep(0.3)  # the first child has exited by now
print("grown", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def grower(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", GROW, str(tmp_path / "f")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    yield proc
    os.killpg(proc.pid, 9)
    proc.wait(timeout=10)


def test_a_snapshot_sees_what_a_process_opens_spawns_and_forks(grower) -> None:
    assert grower.stdout.readline().strip() == "ready"  # not while it still starts up
    before = snapshot(grower.pid)
    grower.stdin.write("go\n")
    grower.stdin.flush()
    assert grower.stdout.readline().strip() == "grown"
    after = snapshot(grower.pid)
    assert after.fds.sockets - before.fds.sockets == 3
    assert after.fds.pipes - before.fds.pipes == 4
    assert after.fds.files - before.fds.files == 1
    assert after.fds.total - before.fds.total == 8
    assert after.threads - before.threads == 4
    assert before.children == () and len(after.children) == 2
    assert len(after.zombies) == 1 and set(after.zombies) < set(after.children)
    assert after.as_json()["fds"]["total"] == after.fds.total


def test_our_own_children_are_found() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert proc.pid in children(os.getpid())
    finally:
        proc.kill()
        proc.wait()


def test_a_gone_process_says_so() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    with pytest.raises(ProcessGone):
        snapshot(proc.pid)
    with pytest.raises(ProcessGone):
        fds(proc.pid)

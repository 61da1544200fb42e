"""procfs, rawhttp, load and wrk on a real gunicorn (gthread, loopback TCP).

The gunicorn comes from PyPI into a virtualenv of its own (cached in the tests'
cache), independent of the harness's environments, so these blocks are checked on
the server they are for before any scenario uses them.  What is asserted is what a
scenario relies on, never a version's behaviour: that is the catalogue's job.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest

from harness.host import processes
from harness.host.rawhttp import RawConnection, exchange, request
from harness.host.wrk import Wrk, url_for
from tests.load import Load
from tests.local_http import free_address

pytestmark = pytest.mark.real
GUNICORN = "23.0.0"
APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\\n"]
"""


@pytest.fixture(scope="module")
def gunicorn_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = os.environ.get("GUNICORN_BISECT_TEST_CACHE")
    root = Path(cache) if cache else tmp_path_factory.mktemp("gunicorn-venv")
    env = root / f"life-blocks-gunicorn-{GUNICORN}-py{sys.version_info[0]}.{sys.version_info[1]}"
    exe = env / "bin" / "gunicorn"
    if not exe.exists():
        shutil.rmtree(env, ignore_errors=True)
        venv.create(env, with_pip=True)
        got = subprocess.run(
            [str(env / "bin" / "python"), "-m", "pip", "install", "-q", f"gunicorn=={GUNICORN}"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if got.returncode != 0:
            shutil.rmtree(env, ignore_errors=True)
            pytest.skip(f"cannot install gunicorn {GUNICORN}: {got.stderr[-300:]}")
    return exe


@pytest.fixture
def server(gunicorn_bin: Path, tmp_path: Path):
    """(arbiter pid, address) of a gthread gunicorn with 2 workers, killed with its group."""
    (tmp_path / "app.py").write_text(APP)
    host, port = free_address()
    argv = [str(gunicorn_bin), "-k", "gthread", "--threads", "4", "-w", "2"]
    argv += ["--keep-alive", "1", "-b", f"{host}:{port}", "--chdir", str(tmp_path), "app:app"]
    log = (tmp_path / "gunicorn.log").open("w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = (host, port)
    try:
        deadline = time.monotonic() + 30
        while exchange(address, request("/"), timeout=1).status != 200:
            assert proc.poll() is None and time.monotonic() < deadline, "gunicorn did not boot"
            time.sleep(0.1)
        yield proc.pid, address
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        log.close()


def wait_for(check, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    return None


def test_procfs_sees_the_workers_and_their_replacement(server) -> None:
    arbiter, _ = server
    first = wait_for(lambda: (s := processes.snapshot(arbiter)) and len(s.children) == 2 and s)
    assert first and first.fds.sockets >= 1 and first.threads >= 1 and first.zombies == ()
    killed = first.children[0]
    os.kill(killed, signal.SIGKILL)
    again = wait_for(
        lambda: (
            (s := processes.snapshot(arbiter))
            and len(s.children) == 2
            and killed not in s.children
            and s
        )
    )
    assert again and again.zombies == ()


def test_a_kept_alive_connection_and_a_slow_request(server) -> None:
    _, address = server
    with RawConnection(address, timeout=5) as conn:
        conn.send(request("/"))
        first = conn.read()
        conn.send(request("/"))
        second = conn.read()
        conn.send(b"GET / HTTP/1.1\r\n")
        time.sleep(1.5)  # slower than --keep-alive 1
        conn.send(b"Host: localhost\r\n\r\n")
        late = conn.read()
    assert (first.status, second.status, second.body) == (200, 200, b"ok\n")
    assert late.ended in ("response", "closed", "reset")  # a fact a decide can judge


def test_load_during_a_reload_accounts_for_every_request(server) -> None:
    arbiter, address = server
    with Load(address, concurrency=4, deadline=20, max_requests=3000) as load:
        time.sleep(0.3)
        os.kill(arbiter, signal.SIGHUP)
        time.sleep(1.0)
        counts = load.stop()
    outcomes = counts.ok + counts.failed
    assert counts.requests == outcomes and counts.ok > 0


def test_wrk_drives_gunicorn(server) -> None:
    _, address = server
    summary = Wrk(url_for(address), duration=1, threads=2, connections=16).run()
    assert summary.requests > 0 and summary.unreachable == ""

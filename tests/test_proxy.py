"""A real h2o / nginx in front of a real HTTP server on a Unix socket (and on TCP): the
502 of issue #1298 once the socket file is gone, short upstream timeouts, no false 502
from reused upstream connections, and no proxy process outliving its run.

Bounds are client timeouts, not timing assertions: a proxy that ignored our short I/O
timeout would make the client give up (h2o waits 30 s, nginx 60 s by default) and the
test would see "error: timeout" instead of a 502/504."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from harness.host import processes, proxy
from tests.conftest import ROOT

pytestmark = pytest.mark.local

# A real HTTP/1.1 server on a Unix socket path or on a free TCP port; prints
# "ready <path|port>" once it listens.
#   close: 200 "Hello World" with Connection: close
#   late:  200 "Hello World" kept alive, then closed 0-4 ms later without notice -- as a
#          server may do to an idle connection at any time (gunicorn does when a worker
#          recycles); a proxy that reuses the connection sends into a closing socket
#   hang:  accepts and never answers
UPSTREAM = """\
import http.server, random, socket, sys, threading, time

mode, where = sys.argv[1], sys.argv[2]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"Hello World"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if mode == "close":
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if mode == "late":
            time.sleep(random.uniform(0, 0.004))
        self.close_connection = True

    def log_message(self, *args):
        pass


family = socket.AF_INET if where == "tcp" else socket.AF_UNIX
listener = socket.socket(family, socket.SOCK_STREAM)
listener.bind(("127.0.0.1", 0) if where == "tcp" else where)
listener.listen(128)
print("ready", listener.getsockname()[1] if where == "tcp" else where, flush=True)
held = []
while True:
    conn, _ = listener.accept()
    if mode == "hang":
        held.append(conn)
        continue

    def serve(c=conn):
        try:
            Handler(c, ("upstream", 0), None)
        finally:
            c.close()

    threading.Thread(target=serve, daemon=True).start()
"""

# Starts a proxy, says where, then sleeps until killed: SIGKILL of a harness.
STARTER = """\
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from harness.host import proxy
p = proxy.start(sys.argv[2], sys.argv[3], Path(sys.argv[4]), token=sys.argv[5])
print(json.dumps({"url": p.url, "pid": p.proc.pid}), flush=True)
time.sleep(300)
"""


def request_status(url: str, timeout: float = 10.0) -> int | str:
    """One GET on a fresh connection: the HTTP status, or a short "error: ..." string."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/", headers={"Connection": "close"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException) as exc:
        return f"error: {type(exc).__name__}"
    finally:
        conn.close()


@pytest.fixture(params=proxy.KINDS)
def kind(request) -> str:
    try:
        proxy.find_binary(request.param)
    except proxy.ProxyMissing as exc:
        pytest.skip(str(exc))
    return request.param


@pytest.fixture
def token():
    """The run token of this test's proxies; nothing carrying it may survive the test."""
    value = f"test-proxy-{uuid.uuid4().hex}"
    yield value
    left = processes.pids_with_token(value)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"proxy processes outlived the test: {left}"


@pytest.fixture
def upstream(tmp_path):
    """upstream(mode, "unix"|"tcp") -> "unix:/path" or "127.0.0.1:PORT", running."""
    script = tmp_path / "upstream.py"
    script.write_text(UPSTREAM)
    started: list[subprocess.Popen] = []

    def run(mode: str, where: str = "unix") -> str:
        arg = "tcp" if where == "tcp" else str(tmp_path / f"up-{len(started)}.sock")
        proc = subprocess.Popen(
            [sys.executable, str(script), mode, arg], stdout=subprocess.PIPE, text=True
        )
        started.append(proc)
        line = proc.stdout.readline().split()
        assert line and line[0] == "ready", "the test upstream did not start"
        return f"127.0.0.1:{line[1]}" if where == "tcp" else f"unix:{line[1]}"

    yield run
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.fixture
def workdir(tmp_path) -> Path:
    path = tmp_path / "proxy"
    path.mkdir()
    return path


def _body(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.read()


@pytest.mark.parametrize("where", ["unix", "tcp"])
def test_proxies_to_the_upstream(kind, upstream, workdir, token, where):
    p = proxy.start(kind, upstream("close", where), workdir, token=token)
    try:
        assert p.url == f"http://127.0.0.1:{p.port}/"
        assert _body(p.url) == (200, b"Hello World")
    finally:
        p.stop()


def test_unlinked_socket_gives_502_at_once(kind, upstream, workdir, token):
    """The report's symptom: the server still runs but its socket path is gone."""
    address = upstream("close")
    # io_timeout far above the client's: a 502 here can only come from the failed
    # connect, never from waiting the timeout out
    p = proxy.start(kind, address, workdir, token=token, io_timeout=30)
    try:
        assert request_status(p.url) == 200
        os.unlink(address.removeprefix("unix:"))  # as gunicorn 19.6.0's exiting worker does
        assert request_status(p.url, timeout=10) == 502
        assert address.removeprefix("unix:") in p.log_tail() or "proxy.c" in p.log_tail()
    finally:
        p.stop()


def test_silent_upstream_gets_a_gateway_error_after_io_timeout(kind, upstream, workdir, token):
    p = proxy.start(kind, upstream("hang", "tcp"), workdir, token=token, io_timeout=1)
    try:
        # the client waits 15 s: half of h2o's default 30 s, a quarter of nginx's 60 s
        assert request_status(p.url, timeout=15) in (502, 504)
    finally:
        p.stop()


def test_reused_upstream_connections_give_no_false_502(kind, upstream, workdir, token):
    """h2o pools upstream connections by default and answers 502 when the server closed
    one (~half of these requests, measured); the config turns pooling off."""
    p = proxy.start(kind, upstream("late"), workdir, token=token)
    try:
        counts = proxy.status_counts(request_status(p.url) for _ in range(200))
        assert counts == {"200": 200}, p.log_tail(5)
    finally:
        p.stop()


def test_stop_leaves_no_process(kind, upstream, workdir, token):
    p = proxy.start(kind, upstream("close"), workdir, token=token)
    assert processes.pids_with_token(token)  # the token is visible: the sweep can see it
    p.stop()
    p.stop()  # idempotent
    assert p.proc.poll() is not None
    assert processes.pids_with_token(token) == []
    assert request_status(p.url, timeout=2) != 200


def test_sigkill_of_the_starter_leaves_no_proxy(kind, upstream, workdir, token, tmp_path):
    script = tmp_path / "starter.py"
    script.write_text(STARTER)
    address = upstream("close")
    starter = subprocess.Popen(
        [sys.executable, str(script), str(ROOT), kind, address, str(workdir), token],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        started = json.loads(starter.stdout.readline())
        assert request_status(started["url"]) == 200
        assert processes.pids_with_token(token)
        starter.send_signal(signal.SIGKILL)
        starter.wait()
        deadline = time.monotonic() + 10
        while processes.pids_with_token(token) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert processes.pids_with_token(token) == []
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait()


def test_a_port_taken_before_the_proxy_binds_it_is_retried(
    kind, upstream, workdir, token, monkeypatch
):
    """free_port() closes its probe socket: another process may bind the port first."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        picks = iter([taken])
        real = proxy.free_port
        monkeypatch.setattr(proxy, "free_port", lambda: next(picks, None) or real())
        p = proxy.start(kind, upstream("close"), workdir, token=token)
        try:
            assert p.port != taken
            assert request_status(p.url) == 200
        finally:
            p.stop()


@pytest.mark.parametrize("name", proxy.KINDS)
def test_missing_binary_is_one_clear_line(name, tmp_path, workdir):
    with pytest.raises(proxy.ProxyMissing) as err:
        proxy.find_binary(name, path=str(tmp_path / "empty"))
    install = {"h2o": "apt-get install h2o", "nginx": "apt-get install nginx-light"}[name]
    assert str(err.value) == f"{name} not found: install it with `{install}`"
    with pytest.raises(proxy.ProxyMissing):
        proxy.start(name, "127.0.0.1:9", workdir, token="unused", path=str(tmp_path / "empty"))
    assert list(workdir.iterdir()) == []  # nothing written, nothing started


def test_default_search_finds_sbin_off_path(monkeypatch):
    """Debian's nginx lives in /usr/sbin, often not on a user's PATH."""
    if not Path("/usr/sbin/nginx").exists():
        pytest.skip("no /usr/sbin/nginx on this machine")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert proxy.find_binary("nginx") == "/usr/sbin/nginx"


def test_a_proxy_that_fails_to_start_is_one_line_with_its_own_words(tmp_path, workdir, token):
    fake = tmp_path / "bin" / "nginx"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'nginx: [emerg] unknown directive \"x\"' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(proxy.ProxyError) as err:
        proxy.start("nginx", "127.0.0.1:9", workdir, token=token, path=str(fake.parent))
    assert str(err.value) == 'nginx did not start (exit 1): nginx: [emerg] unknown directive "x"'


@pytest.mark.parametrize("bad", ["unix:relative.sock", "localhost", "127.0.0.1:http", ""])
def test_bad_upstream_spelling_is_refused_before_starting(kind, bad, workdir):
    with pytest.raises(proxy.ProxyError, match="upstream"):
        proxy.start(kind, bad, workdir, token="unused")
    assert list(workdir.iterdir()) == []


def test_status_counts():
    assert proxy.status_counts([200, "200", 502, "error: timeout"]) == {
        "200": 2,
        "502": 1,
        "error: timeout": 1,
    }

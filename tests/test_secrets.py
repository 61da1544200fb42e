"""No secret in any file the harness writes (issue 26, item 3): a cache clone of a URL
with credentials keeps the URL without them, and still fetches with them."""

from __future__ import annotations

import base64
import functools
import http.server
import subprocess
import threading
from pathlib import Path
from urllib.parse import quote

import pytest

from harness.host.git import Repo

pytestmark = pytest.mark.local

PASSWORD = "p@ss@S3cret"


class _Auth(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        token = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != f"Basic {token}":
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="x"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_a_cache_clone_keeps_no_credentials_and_still_fetches(tmp_path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    _git("init", "-q", "-b", "main", cwd=work)
    _git(
        "-c",
        "user.name=a",
        "-c",
        "user.email=a@b",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "one",
        cwd=work,
    )
    served = tmp_path / "served"
    served.mkdir()
    _git("clone", "-q", "--bare", str(work), str(served / "repo.git"), cwd=tmp_path)
    _git("update-server-info", cwd=served / "repo.git")
    handler = functools.partial(_Auth, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = (
            f"http://alice:{quote(PASSWORD, safe='')}@127.0.0.1:{httpd.server_address[1]}/repo.git"
        )
        cache = tmp_path / "cache"
        repo = Repo.open(url, cache)
        _git(
            "-c",
            "user.name=a",
            "-c",
            "user.email=a@b",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "two",
            cwd=work,
        )
        _git("push", "-q", str(served / "repo.git"), "main", cwd=work)
        _git("update-server-info", cwd=served / "repo.git")
        repo.fetch()  # the credentials passed per call
    finally:
        httpd.shutdown()
    head = subprocess.run(
        ["git", "--git-dir", str(repo.git_dir), "log", "--format=%s", "-1", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert head == "two"
    leaked = [p for p in cache.rglob("*") if p.is_file() and b"S3cret" in p.read_bytes()]
    assert leaked == []
    assert "S3cret" not in repr(repo) and "alice" not in repo.spec

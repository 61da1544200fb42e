"""A local simple index (PEP 503 HTML and PEP 691 JSON) served over real HTTP from a thread,
and the real files to lay out in it: shared by tests/test_index.py and test_index_hostile.py.
The fixtures ``serve`` and ``dist_files`` reach every test through tests/conftest.py."""

from __future__ import annotations

import hashlib
import html
import json
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from packaging.version import Version

from harness.provision import index
from harness.provision.index import JSON_TYPE


def write(path: Path, text: str) -> Path:
    """``text`` at ``path``, its folders made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@dataclass
class LocalIndex:
    url: str  # .../simple
    server: ThreadingHTTPServer
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (path, accept, served)
    auth: list[str] = field(default_factory=list)  # the Authorization header of each request
    redirects: dict[str, str] = field(default_factory=dict)  # path -> where a 302 sends it

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(SimpleHTTPRequestHandler):
    """Static files; with ``pep691`` a project page asked for as JSON is answered as JSON."""

    def __init__(self, *args, pep691: bool, log: list, auth: list, redirects: dict, **kw) -> None:
        self.pep691, self.log, self.auth, self.redirects = pep691, log, auth, redirects
        super().__init__(*args, **kw)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        accept = self.headers.get("Accept", "")
        self.auth.append(self.headers.get("Authorization", ""))
        if self.path in self.redirects:
            self.send_response(302)
            self.send_header("Location", self.redirects[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        page = Path(self.translate_path(self.path)) / "index.json"
        if self.pep691 and JSON_TYPE in accept and self.path.endswith("/") and page.exists():
            body = page.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", JSON_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.log.append((self.path, accept, JSON_TYPE))
            return
        self.log.append((self.path, accept, "static"))
        super().do_GET()

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture
def serve() -> Iterator:
    """``serve(root, pep691)`` -> a LocalIndex on 127.0.0.1, stopped at the end of the test."""
    servers: list[LocalIndex] = []

    def start(root: Path, pep691: bool = False) -> LocalIndex:
        log: list = []
        auth: list = []
        redirects: dict = {}
        handler = partial(
            _Handler, directory=str(root), pep691=pep691, log=log, auth=auth, redirects=redirects
        )
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        # a short poll: shutdown() waits for it (the default 0.5 s was most of a test's time)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/simple"
        servers.append(LocalIndex(url, server, log, auth, redirects))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


Dist = tuple[Path, "str | None"]  # a file and its Requires-Python, as PyPI lists it


def lay_out(root: Path, files: dict[str, list[Dist]], wrong_sha: str | None = None) -> Path:
    """A PEP 503 tree (``simple/<project>/index.html``, files in ``files/``, relative links)
    plus the same pages as PEP 691 JSON (``index.json``) for a server that offers it.
    ``wrong_sha`` names a file listed with a hash that is not its own."""
    (root / "files").mkdir(parents=True, exist_ok=True)
    for project, paths in files.items():
        anchors, entries = [], []
        for p, rp in paths:
            shutil.copyfile(p, root / "files" / p.name)
            sha = "0" * 64 if p.name == wrong_sha else hashlib.sha256(p.read_bytes()).hexdigest()
            attr = f' data-requires-python="{html.escape(rp)}"' if rp else ""
            anchors.append(f'<a href="../../files/{p.name}#sha256={sha}"{attr}>{p.name}</a>')
            entry = {"filename": p.name, "url": f"../../files/{p.name}", "hashes": {"sha256": sha}}
            if rp:
                entry["requires-python"] = rp
            entries.append(entry)
        page = root / "simple" / project
        write(
            page / "index.html",
            "<!DOCTYPE html><html><body>\n" + "\n".join(anchors) + "\n</body></html>\n",
        )
        doc = {"meta": {"api-version": "1.0"}, "name": project, "files": entries}
        write(page / "index.json", json.dumps(doc))
    return root


@pytest.fixture(scope="session")
def dist_files(tmp_path_factory) -> dict[str, list[Dist]]:
    """The real files a ``--check 19.6.0`` asks for, from PyPI once (kept in the test cache):
    gunicorn 19.5.0/19.6.0 wheels, bottle 0.12.13 sdist and the newest 0.12 wheel (for the
    Pythons >= 3.10 that are tried first), the newest setuptools < 81 and wheel < 0.46."""
    cache = os.environ.get("GUNICORN_BISECT_TEST_CACHE")
    base = Path(cache) / "local-index" if cache else tmp_path_factory.mktemp("local-index")
    pypi = "https://pypi.org/simple"

    def newest(name: str, below: str, series: tuple[int, ...] = ()) -> index.DistFile:
        proj = index.project(name, base / "index-cache", pypi)
        best = max(
            (
                (Version(v), f)
                for v, fs in proj.releases.items()
                for f in fs
                if not Version(v).is_prerelease
                and Version(v) < Version(below)
                and Version(v).release[: len(series)] == series
                and f.filename.endswith("-none-any.whl")
                and "py3" in f.filename
            ),
            key=lambda x: x[0],
        )
        return best[1]

    try:
        gunicorn = index.project("gunicorn", base / "index-cache", pypi)
        bottle = index.project("bottle", base / "index-cache", pypi)
        wanted = {
            "gunicorn": [
                f
                for v in ("19.5.0", "19.6.0")
                for f in gunicorn.releases[v]
                if f.packagetype == "bdist_wheel"
            ],
            "bottle": [f for f in bottle.releases["0.12.13"] if f.packagetype == "sdist"]
            + [newest("bottle", "0.13", (0, 12))],
            "setuptools": [newest("setuptools", "81")],
            "wheel": [newest("wheel", "0.46")],
        }
        out = {
            project: [(index.download(f, base / "files"), f.requires_python) for f in dists]
            for project, dists in wanted.items()
        }
    except index.IndexUnavailable as exc:
        pytest.skip(f"PyPI is needed once to fill the local index: {exc}")
    return out


def isolated_env(**extra: str) -> dict[str, str]:
    """The user's environment with pypi.org unreachable (every http(s) request goes to a dead
    proxy, except to 127.0.0.1) and the machine's pip.conf out of the way."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "GUNICORN_BISECT_INDEX"))
    }
    env.update(
        https_proxy="http://127.0.0.1:9",
        http_proxy="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
        no_proxy="127.0.0.1,localhost",
        NO_PROXY="127.0.0.1,localhost",
        PIP_CONFIG_FILE=os.devnull,
    )
    env.update(extra)
    return env

"""The package index through the simple API: pip's configuration, a local index over real
HTTP (PEP 503 HTML and PEP 691 JSON), hash checks, and the cache keyed by index."""

from __future__ import annotations

import hashlib
import html
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from packaging.version import Version

from harness.provision import index
from harness.provision.index import JSON_TYPE, Link, parse_html, parse_json, release_of
from tests.conftest import ROOT, run_cli

# ---------------------------------------------------------------------------
# Pure parts: the HTML/JSON project pages and pip's configuration
# ---------------------------------------------------------------------------
PAGE = "https://mirror.example/simple/gunicorn/"
HTML = """<!DOCTYPE html><html><body>
<a href="../../files/gunicorn-19.6.0-py2.py3-none-any.whl#sha256=ABCDEF">gunicorn-19.6.0-py2.py3-none-any.whl</a>
<a href="/abs/gunicorn-19.6.0.tar.gz#md5=0123" data-requires-python="&gt;=2.6, !=3.0.*">x</a>
<a href="https://files.example/gunicorn-19.5.0-py2.py3-none-any.whl" data-yanked="">y</a>
<a href="gunicorn-20.0.0-py3-none-any.whl?token=1#sha256=ff" data-yanked="broken">z</a>
<a>no href</a>
</body></html>"""


def test_html_anchors_resolve_against_the_page_and_keep_hashes_and_markers():
    links = parse_html(HTML, PAGE)
    assert links == [
        Link(
            "gunicorn-19.6.0-py2.py3-none-any.whl",
            "https://mirror.example/files/gunicorn-19.6.0-py2.py3-none-any.whl",
            "abcdef",
            None,
            False,
        ),
        Link(
            "gunicorn-19.6.0.tar.gz",
            "https://mirror.example/abs/gunicorn-19.6.0.tar.gz",
            "",  # an md5 fragment is no sha256
            ">=2.6, !=3.0.*",  # unescaped
            False,
        ),
        Link(
            "gunicorn-19.5.0-py2.py3-none-any.whl",
            "https://files.example/gunicorn-19.5.0-py2.py3-none-any.whl",
            "",
            None,
            True,  # data-yanked with no reason is still yanked
        ),
        Link(
            "gunicorn-20.0.0-py3-none-any.whl",
            "https://mirror.example/simple/gunicorn/gunicorn-20.0.0-py3-none-any.whl?token=1",
            "ff",
            None,
            True,
        ),
    ]


def test_html_base_tag_moves_relative_links():
    page = '<base href="https://cdn.example/pkgs/"><a href="bottle-0.12.13.tar.gz">b</a>'
    assert parse_html(page, PAGE)[0].url == "https://cdn.example/pkgs/bottle-0.12.13.tar.gz"


def test_json_page_reads_hashes_requires_python_and_yanked():
    doc = {
        "meta": {"api-version": "1.1"},
        "name": "gunicorn",
        "files": [
            {
                "filename": "gunicorn-19.6.0-py2.py3-none-any.whl",
                "url": "../../files/gunicorn-19.6.0-py2.py3-none-any.whl",
                "hashes": {"sha256": "AA11"},
                "requires-python": ">=3.6",
            },
            {
                "filename": "gunicorn-19.5.0.tar.gz",
                "url": "https://f.example/g.tar.gz",
                "hashes": {},
                "yanked": "bad",
            },
        ],
    }
    first, second = parse_json(doc, PAGE)
    assert first == Link(
        "gunicorn-19.6.0-py2.py3-none-any.whl",
        "https://mirror.example/files/gunicorn-19.6.0-py2.py3-none-any.whl",
        "aa11",
        ">=3.6",
        False,
    )
    assert (second.filename, second.sha256, second.yanked) == ("gunicorn-19.5.0.tar.gz", "", True)
    with pytest.raises(ValueError):
        parse_json({"projects": []}, PAGE)  # the index page, not a project page


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("gunicorn-19.6.0-py2.py3-none-any.whl", ("19.6.0", "bdist_wheel")),
        ("gunicorn-19.6.0.tar.gz", ("19.6.0", "sdist")),
        ("gunicorn-19.6.0.zip", ("19.6.0", "sdist")),
        ("gunicorn-19.6.0-py2.7.egg", None),  # eggs are never installed
        ("gunicorn-19.6.0.tar.gz.asc", None),
        ("gunicorn_thrift-0.2.0.tar.gz", None),  # another project on the page
        ("not-a-dist", None),
    ],
)
def test_versions_come_from_file_names(filename, expected):
    link = Link(filename, f"https://x/{filename}", "", None, False)
    got = release_of(link, "gunicorn")
    assert (None if got is None else (got[0], got[1].packagetype)) == expected


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_pip_config_files_in_pips_order(tmp_path):
    home, prefix, etc = tmp_path / "home", tmp_path / "venv", tmp_path / "etc"
    env = {"XDG_CONFIG_DIRS": str(tmp_path / "xdg")}
    _write(tmp_path / "xdg/pip/pip.conf", "[global]\nindex-url = https://xdg/simple\n")
    _write(etc / "pip.conf", "[global]\nindex-url = https://etc/simple\nextra-index-url = a b\n")
    assert index.read_pip_config(env, home, prefix, etc) == index.PipIndexes(
        "https://etc/simple", ("a", "b"), str(etc / "pip.conf")
    )
    # user files override global ones; the XDG user file overrides the legacy one
    _write(home / ".pip/pip.conf", "[global]\nindex-url = https://legacy/simple\n")
    _write(home / ".config/pip/pip.conf", "[global]\nextra_index_url =\n  c\n  d\n")
    got = index.read_pip_config(env, home, prefix, etc)
    assert (got.index_url, got.extra) == ("https://legacy/simple", ("c", "d"))
    # the site file ([install] beats [global]), then PIP_CONFIG_FILE, then the environment
    _write(
        prefix / "pip.conf",
        "[global]\nindex-url = https://g/s\n[install]\nindex-url = https://i/s\n",
    )
    assert index.read_pip_config(env, home, prefix, etc).index_url == "https://i/s"
    own = _write(tmp_path / "own.conf", "[global]\nindex-url = https://own/simple\n")
    got = index.read_pip_config({**env, "PIP_CONFIG_FILE": str(own)}, home, prefix, etc)
    assert (got.index_url, got.extra) == ("https://own/simple", ("a", "b"))  # user files skipped
    got = index.read_pip_config(
        {**env, "PIP_INDEX_URL": "https://env/simple", "PIP_EXTRA_INDEX_URL": "x  y"},
        home,
        prefix,
        etc,
    )
    assert got == index.PipIndexes("https://env/simple", ("x", "y"), "PIP_INDEX_URL")


def test_pip_config_file_devnull_loads_nothing_and_broken_files_are_skipped(tmp_path):
    home, etc = tmp_path / "home", tmp_path / "etc"
    _write(etc / "pip.conf", "[global]\nindex-url = https://etc/simple\n")
    env = {"XDG_CONFIG_DIRS": str(tmp_path / "none"), "PIP_CONFIG_FILE": os.devnull}
    assert index.read_pip_config(env, home, tmp_path, etc) == index.PipIndexes(None, (), "default")
    _write(home / ".config/pip/pip.conf", "this is not ini\n[global\n")
    got = index.read_pip_config({"XDG_CONFIG_DIRS": str(tmp_path / "none")}, home, tmp_path, etc)
    assert got.index_url == "https://etc/simple"


def test_index_order_explicit_then_own_variable_then_pip(monkeypatch, tmp_path):
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "https://user:s3cret@private.example/simple/")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "file:///nowhere/simple https://pypi.org/simple")
    monkeypatch.delenv("GUNICORN_BISECT_INDEX", raising=False)
    try:
        index.configure(None)
        assert index.indexes().urls == (
            "https://private.example/simple",  # credentials kept aside, never printed
            "file:///nowhere/simple",
            "https://pypi.org/simple",
        )
        monkeypatch.setenv("GUNICORN_BISECT_INDEX", "http://own.example/simple")
        index.configure(None)
        assert index.indexes().urls == ("http://own.example/simple",)
        index.configure(str(tmp_path))  # a directory is taken as its file:// URL
        assert index.indexes() == index.Indexes((tmp_path.as_uri(),), "--index-url")
        with pytest.raises(index.IndexUnavailable, match="not an http"):
            index.configure("pypi.example/simple")
    finally:
        index.configure(None)


# ---------------------------------------------------------------------------
# A local simple index served over real HTTP from a thread
# ---------------------------------------------------------------------------
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
        threading.Thread(target=server.serve_forever, daemon=True).start()
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
        _write(
            page / "index.html",
            "<!DOCTYPE html><html><body>\n" + "\n".join(anchors) + "\n</body></html>\n",
        )
        doc = {"meta": {"api-version": "1.0"}, "name": project, "files": entries}
        _write(page / "index.json", json.dumps(doc))
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


def _isolated_env(**extra: str) -> dict[str, str]:
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


@pytest.mark.real
@pytest.mark.parametrize("pep691", [False, True], ids=["pep503-html", "pep691-json"])
def test_check_runs_from_the_users_index_alone(pep691, dist_files, serve, tmp_path, no_leaks):
    local = serve(lay_out(tmp_path / "idx", dist_files), pep691=pep691)
    env = _isolated_env(
        PIP_INDEX_URL=local.url,
        PIP_EXTRA_INDEX_URL="file:///nonexistent/simple",  # a stale entry must not break it
    )
    cache = tmp_path / "fresh-cache"
    proc = run_cli("--check", "19.6.0", "--cache-dir", str(cache), env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "socket file gone" in proc.stdout

    pages = {p for p, _, _ in local.requests if p.startswith("/simple/")}
    # bottle 0.12.13's wheel is its one module copied from the sdist: no build backend
    # ("wheel") is asked for, though the index offers it for the pip fallback
    assert pages == {f"/simple/{n}/" for n in ("gunicorn", "bottle", "setuptools")}
    fetched = {p.rsplit("/", 1)[-1] for p, _, _ in local.requests if p.startswith("/files/")}
    assert "gunicorn-19.6.0-py2.py3-none-any.whl" in fetched
    assert "bottle-0.12.13.tar.gz" in fetched
    served = {t for p, _, t in local.requests if p.startswith("/simple/")}
    assert served == ({JSON_TYPE} if pep691 else {"static"})
    assert all(JSON_TYPE in a for p, a, _ in local.requests if p.startswith("/simple/"))

    # the same environment really cannot reach PyPI: only the local index served this run
    blocked = run_cli(
        "--check",
        "19.6.0",
        "--cache-dir",
        str(tmp_path / "other"),
        "--index-url",
        index.PYPI,
        env=env,
    )
    assert blocked.returncode == 2
    assert blocked.stderr.startswith(
        "bisect.py: error: package index unreachable (https://pypi.org/simple/gunicorn/"
    )


@pytest.mark.real
def test_a_file_whose_hash_differs_is_one_line_and_never_kept(dist_files, serve, tmp_path):
    wheel = "gunicorn-19.6.0-py2.py3-none-any.whl"
    root = lay_out(tmp_path / "idx", {"gunicorn": dist_files["gunicorn"]}, wrong_sha=wheel)
    local = serve(root)
    cache = tmp_path / "fresh-cache"
    proc = run_cli(
        "--check", "19.6.0", "--cache-dir", str(cache), env=_isolated_env(PIP_INDEX_URL=local.url)
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(
        f"bisect.py: error: {wheel}: sha256 mismatch (the index lists 0000000000000000..."
    )
    assert proc.stdout == ""
    assert not [p for p in (cache / "wheels").rglob("*") if p.is_file()]


def test_a_cached_file_that_is_not_the_indexes_is_fetched_again(dist_files, serve, tmp_path):
    local = serve(lay_out(tmp_path / "idx", {"gunicorn": dist_files["gunicorn"]}))
    proj = index.project("gunicorn", tmp_path / "cache", local.url)
    (f,) = proj.releases["19.6.0"]
    dest = tmp_path / "wheels" / f.filename
    _write(dest, "a file of the same name from somewhere else")
    assert index.download(f, dest.parent) == dest
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == f.sha256
    assert f"/files/{f.filename}" in [p for p, _, _ in local.requests]


def test_two_indexes_never_share_a_cached_page(dist_files, serve, tmp_path):
    older = serve(lay_out(tmp_path / "a", {"gunicorn": dist_files["gunicorn"][:1]}))
    newer = serve(lay_out(tmp_path / "b", {"gunicorn": dist_files["gunicorn"][1:]}))
    cache = tmp_path / "cache"
    assert index.project("gunicorn", cache, older.url).versions == ["19.5.0"]
    assert index.project("gunicorn", cache, newer.url).versions == ["19.6.0"]
    assert len(list((cache / "index").iterdir())) == 2


def test_a_missing_project_and_a_missing_local_index_are_one_line(serve, tmp_path, dist_files):
    local = serve(lay_out(tmp_path / "idx", {"bottle": dist_files["bottle"][:1]}))
    env = _isolated_env()
    proc = run_cli(
        "--check", "19.6.0", "--cache-dir", str(tmp_path / "c"), "--index-url", local.url, env=env
    )
    assert proc.returncode == 2
    assert (
        proc.stderr
        == f"bisect.py: error: gunicorn: no such project on the package index ({local.url})\n"
    )
    proc = run_cli(
        "--check",
        "19.6.0",
        "--cache-dir",
        str(tmp_path / "c"),
        "--index-url",
        "file:///nonexistent/simple",
        env=env,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr
        == "bisect.py: error: gunicorn: no such project on the package index (file:///nonexistent/simple)\n"
    )


def test_a_stale_copy_is_used_when_the_index_is_gone(serve, tmp_path, dist_files):
    """A later process, the index down and the cached page two days old: the page is used."""
    local = serve(lay_out(tmp_path / "idx", {"gunicorn": dist_files["gunicorn"]}))
    cache = tmp_path / "cache"
    index.project("gunicorn", cache, local.url)
    local.stop()
    (page,) = (cache / "index").rglob("gunicorn.json")
    two_days_ago = page.stat().st_mtime - 2 * 86400
    os.utime(page, (two_days_ago, two_days_ago))
    code = (
        "from pathlib import Path; from harness.provision import index; "
        f"p = index.project('gunicorn', Path({str(cache)!r}), {local.url!r}); "
        "print(p.versions, p.stale)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.stdout == "['19.5.0', '19.6.0'] True\n", proc.stderr
    proc = subprocess.run(
        [sys.executable, "-c", code.replace(str(cache), str(tmp_path / "empty"))],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert "IndexUnavailable: package index unreachable" in proc.stderr


def test_credentials_in_the_index_url_go_to_that_host_only_and_are_never_printed(
    serve, tmp_path, dist_files
):
    local = serve(lay_out(tmp_path / "idx", {"gunicorn": dist_files["gunicorn"]}))
    secret_url = local.url.replace("http://", "http://alice:s3cret@")
    proj = index.project("gunicorn", tmp_path / "cache", secret_url)
    index.download(proj.releases["19.6.0"][0], tmp_path / "wheels")
    assert local.auth == ["Basic YWxpY2U6czNjcmV0"] * 2  # the page and the file
    assert all("s3cret" not in str(p) for p in (tmp_path / "cache").rglob("*"))
    # a download the index redirects to another host gets no credentials there
    cdn = serve(lay_out(tmp_path / "cdn", {"gunicorn": dist_files["gunicorn"]}))
    wheel = proj.releases["19.5.0"][0]
    local.redirects[urlsplit(wheel.url).path] = (
        cdn.url.replace("/simple", "/files/") + wheel.filename
    )
    index.download(wheel, tmp_path / "wheels")
    assert local.auth[-1] == "Basic YWxpY2U6czNjcmV0" and cdn.auth == [""]
    local.stop()
    proc = run_cli(
        "--check",
        "19.6.0",
        "--cache-dir",
        str(tmp_path / "c2"),
        "--index-url",
        secret_url,
        env=_isolated_env(),
    )
    assert proc.returncode == 2 and "package index unreachable" in proc.stderr
    assert "s3cret" not in proc.stderr and "alice" not in proc.stderr

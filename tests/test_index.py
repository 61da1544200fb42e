"""The package index through the simple API: pip's configuration, a local index over real
HTTP (PEP 503 HTML and PEP 691 JSON), hash checks, and the cache keyed by index."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from harness.provision import index
from harness.provision.index import JSON_TYPE, Link, parse_html, parse_json, release_of
from tests.conftest import ROOT, run_cli
from tests.local_index import isolated_env, lay_out, write

pytestmark = pytest.mark.pure

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


def test_pip_config_files_in_pips_order(tmp_path):
    home, prefix, etc = tmp_path / "home", tmp_path / "venv", tmp_path / "etc"
    env = {"XDG_CONFIG_DIRS": str(tmp_path / "xdg")}
    write(tmp_path / "xdg/pip/pip.conf", "[global]\nindex-url = https://xdg/simple\n")
    write(etc / "pip.conf", "[global]\nindex-url = https://etc/simple\nextra-index-url = a b\n")
    assert index.read_pip_config(env, home, prefix, etc) == index.PipIndexes(
        "https://etc/simple", ("a", "b"), str(etc / "pip.conf")
    )
    # user files override global ones; the XDG user file overrides the legacy one
    write(home / ".pip/pip.conf", "[global]\nindex-url = https://legacy/simple\n")
    write(home / ".config/pip/pip.conf", "[global]\nextra_index_url =\n  c\n  d\n")
    got = index.read_pip_config(env, home, prefix, etc)
    assert (got.index_url, got.extra) == ("https://legacy/simple", ("c", "d"))
    # the site file ([install] beats [global]), then PIP_CONFIG_FILE, then the environment
    write(
        prefix / "pip.conf",
        "[global]\nindex-url = https://g/s\n[install]\nindex-url = https://i/s\n",
    )
    assert index.read_pip_config(env, home, prefix, etc).index_url == "https://i/s"
    own = write(tmp_path / "own.conf", "[global]\nindex-url = https://own/simple\n")
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
    write(etc / "pip.conf", "[global]\nindex-url = https://etc/simple\n")
    env = {"XDG_CONFIG_DIRS": str(tmp_path / "none"), "PIP_CONFIG_FILE": os.devnull}
    assert index.read_pip_config(env, home, tmp_path, etc) == index.PipIndexes(None, (), "default")
    write(home / ".config/pip/pip.conf", "this is not ini\n[global\n")
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


@pytest.mark.real
@pytest.mark.parametrize("pep691", [False, True], ids=["pep503-html", "pep691-json"])
def test_check_runs_from_the_users_index_alone(pep691, dist_files, serve, tmp_path, no_leaks):
    local = serve(lay_out(tmp_path / "idx", dist_files), pep691=pep691)
    env = isolated_env(
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
        "--check", "19.6.0", "--cache-dir", str(cache), env=isolated_env(PIP_INDEX_URL=local.url)
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(
        f"bisect.py: error: {wheel}: sha256 mismatch (the index lists 0000000000000000..."
    )
    assert proc.stdout == ""
    assert not [p for p in (cache / "wheels").rglob("*") if p.is_file()]


@pytest.mark.local
def test_a_cached_file_that_is_not_the_indexes_is_fetched_again(dist_files, serve, tmp_path):
    local = serve(lay_out(tmp_path / "idx", {"gunicorn": dist_files["gunicorn"]}))
    proj = index.project("gunicorn", tmp_path / "cache", local.url)
    (f,) = proj.releases["19.6.0"]
    dest = tmp_path / "wheels" / f.filename
    write(dest, "a file of the same name from somewhere else")
    assert index.download(f, dest.parent) == dest
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == f.sha256
    assert f"/files/{f.filename}" in [p for p, _, _ in local.requests]


@pytest.mark.local
def test_two_indexes_never_share_a_cached_page(dist_files, serve, tmp_path):
    older = serve(lay_out(tmp_path / "a", {"gunicorn": dist_files["gunicorn"][:1]}))
    newer = serve(lay_out(tmp_path / "b", {"gunicorn": dist_files["gunicorn"][1:]}))
    cache = tmp_path / "cache"
    assert index.project("gunicorn", cache, older.url).versions == ["19.5.0"]
    assert index.project("gunicorn", cache, newer.url).versions == ["19.6.0"]
    assert len(list((cache / "index").iterdir())) == 2


@pytest.mark.local
def test_a_missing_project_and_a_missing_local_index_are_one_line(serve, tmp_path, dist_files):
    local = serve(lay_out(tmp_path / "idx", {"bottle": dist_files["bottle"][:1]}))
    env = isolated_env()
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


@pytest.mark.local
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


@pytest.mark.local
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
        env=isolated_env(),
    )
    assert proc.returncode == 2 and "package index unreachable" in proc.stderr
    assert "s3cret" not in proc.stderr and "alice" not in proc.stderr

"""A hostile or broken index, served from a thread over real HTTP: nothing is written
outside the cache, nothing unbounded is read, nothing unverified is trusted silently,
and nothing transient is remembered as fresh."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.provision import index, wheels
from tests.conftest import ROOT, run_cli
from tests.local_index import isolated_env, lay_out, write

pytestmark = pytest.mark.local

WHEEL = "gunicorn-19.6.0-py2.py3-none-any.whl"


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def _download_all(project: index.Project, dest: Path) -> None:
    for files in project.releases.values():
        for f in files:
            try:
                index.download(f, dest)
            except index.IndexUnavailable:
                pass


def _in_new_process(code: str) -> subprocess.CompletedProcess:
    """What the next run sees (nothing remembered in this process)."""
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize("pep691", [False, True], ids=["html-link", "pep691-filename"])
def test_a_name_from_the_index_never_becomes_a_path_outside_the_cache(serve, tmp_path, pep691):
    root = tmp_path / "idx"
    evil = "gunicorn-99.0-1%2F..%2F..%2F..%2F..%2Ftrav%2Fpwned-py3-none-any.whl"
    # what http.server serves for that URL once it has normalized the '..' away
    write(root / "trav" / "pwned-py3-none-any.whl", "pwned")
    write(root / "simple" / "gunicorn" / "index.html", f'<a href="../../files/{evil}">x</a>')
    doc = {
        "meta": {"api-version": "1.0"},
        "files": [
            {
                "filename": "gunicorn-99.0-1/../../../../trav/pwned-py3-none-any.whl",
                "url": "../../trav/pwned-py3-none-any.whl",
            }
        ],
    }
    write(root / "simple" / "gunicorn" / "index.json", json.dumps(doc))
    local = serve(root, pep691=pep691)
    cache = tmp_path / "work" / "cache"
    try:
        project = index.project("gunicorn", cache, local.url)
    except index.IndexUnavailable:
        project = index.Project("gunicorn", {})
    _download_all(project, cache / "wheels")
    outside = _files_under(tmp_path / "work") - _files_under(cache)
    assert not outside and not (tmp_path / "trav").exists()


def test_a_file_listed_without_sha256_is_taken_but_says_so(dist_files, serve, tmp_path):
    root = lay_out(tmp_path / "idx", {"gunicorn": dist_files["gunicorn"]})
    page = root / "simple" / "gunicorn" / "index.html"
    page.write_text(page.read_text().split("#sha256=")[0] + '">x</a>')  # only 19.5.0, no hash
    local = serve(root)
    unlisted = index.project("gunicorn", tmp_path / "c1", local.url)
    artifact = wheels.gunicorn_release("19.5.0", tmp_path / "c1", unlisted)
    assert artifact.verified is False
    listed = index.project(
        "gunicorn",
        tmp_path / "c2",
        serve(lay_out(tmp_path / "i2", {"gunicorn": dist_files["gunicorn"]})).url,
    )
    assert wheels.gunicorn_release("19.6.0", tmp_path / "c2", listed).verified is True


@pytest.mark.real
def test_a_row_of_a_gunicorn_listed_without_sha256_says_so(dist_files, serve, tmp_path, no_leaks):
    root = lay_out(tmp_path / "idx", dist_files)
    page = root / "simple" / "gunicorn" / "index.html"
    page.write_text(re.sub(r"#sha256=[0-9a-f]+", "", page.read_text()))
    local = serve(root)  # PEP 503 HTML: the page without hashes
    proc = run_cli(
        "--check", "19.6.0", "--cache-dir", str(tmp_path / "cache"),
        env=isolated_env(PIP_INDEX_URL=local.url),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "socket file gone" in proc.stdout
    assert "(unverified by the index: no sha256 listed; pinned at its first download)" in (
        proc.stdout
    )


def test_a_file_without_sha256_is_pinned_at_its_first_download(dist_files, serve, tmp_path):
    root = lay_out(tmp_path / "idx", {"gunicorn": dist_files["gunicorn"]})
    page = root / "simple" / "gunicorn" / "index.html"
    page.write_text(page.read_text().split("#sha256=")[0] + '">x</a>')  # only 19.5.0, no hash
    local = serve(root)
    (f,) = index.project("gunicorn", tmp_path / "cache", local.url).releases["19.5.0"]
    wheel = index.download(f, tmp_path / "wheels")
    first = hashlib.sha256(wheel.read_bytes()).hexdigest()
    pin = tmp_path / "wheels" / ".pins" / f"{wheel.name}.sha256"
    assert pin.read_text().strip() == first
    # the index now serves another file under that name, and the cached copy is damaged
    served = next(root.rglob(wheel.name))
    served.write_bytes(served.read_bytes() + b"\0")
    wheel.write_bytes(b"damaged")
    with pytest.raises(index.HashMismatch, match="its first download had"):
        index.download(f, tmp_path / "wheels")
    assert wheel.read_bytes() == b"damaged"  # not replaced by the unpinned file


def test_a_download_is_bounded_by_the_size_the_index_gives(dist_files, serve, tmp_path):
    root = lay_out(tmp_path / "idx", {"gunicorn": dist_files["gunicorn"]})
    page = root / "simple" / "gunicorn" / "index.json"
    doc = json.loads(page.read_text())
    for f in doc["files"]:
        f["size"] = 1000  # far smaller than the wheel the server sends
    page.write_text(json.dumps(doc))
    local = serve(root, pep691=True)
    (f, *_) = index.project("gunicorn", tmp_path / "cache", local.url).releases["19.6.0"]
    with pytest.raises(index.IndexUnavailable, match="more than the 1000 bytes"):
        index.download(f, tmp_path / "wheels")
    assert not _files_under(tmp_path / "wheels")  # neither the file nor a temporary


def test_a_download_without_a_size_is_bounded_by_the_cap(dist_files, serve, tmp_path, monkeypatch):
    local = serve(lay_out(tmp_path / "idx", {"gunicorn": dist_files["gunicorn"]}))
    (f,) = index.project("gunicorn", tmp_path / "cache", local.url).releases["19.6.0"]
    monkeypatch.setattr(index, "DOWNLOAD_CAP", 4096)  # a 1.5 GB "wheel", scaled down
    with pytest.raises(index.IndexUnavailable, match="more than the 4096 bytes"):
        index.download(f, tmp_path / "wheels")
    assert not _files_under(tmp_path / "wheels")


def test_a_garbage_page_is_not_remembered_once_the_index_recovers(dist_files, serve, tmp_path):
    root = lay_out(tmp_path / "idx", {"gunicorn": dist_files["gunicorn"]})
    page = root / "simple" / "gunicorn" / "index.html"
    good = page.read_text()
    page.write_text("<html><body>Service temporarily in maintenance</body></html>")
    local = serve(root)
    cache = tmp_path / "cache"
    code = (
        "from pathlib import Path; from harness.provision import index; "
        f"print(index.project('gunicorn', Path({str(cache)!r}), {local.url!r}).versions)"
    )
    assert _in_new_process(code).stdout == "[]\n"
    page.write_text(good)  # the index recovered
    assert _in_new_process(code).stdout == "['19.5.0', '19.6.0']\n"


def test_a_maintenance_page_with_links_is_not_remembered(dist_files, serve, tmp_path):
    root = lay_out(tmp_path / "idx", {"gunicorn": dist_files["gunicorn"]})
    page = root / "simple" / "gunicorn" / "index.html"
    good = page.read_text()
    page.write_text(
        '<html><body>Down for maintenance. <a href="https://status.example/">status</a> '
        '<a href="/static/logo.png">logo</a> <a href="other-1.0.tar.gz">x</a></body></html>'
    )
    local = serve(root)
    cache = tmp_path / "cache"
    code = (
        "from pathlib import Path; from harness.provision import index; "
        f"print(index.project('gunicorn', Path({str(cache)!r}), {local.url!r}).versions)"
    )
    assert _in_new_process(code).stdout == "[]\n"
    assert not list(cache.rglob("gunicorn.json"))  # nothing kept for 24 h
    page.write_text(good)  # the index is back
    assert _in_new_process(code).stdout == "['19.5.0', '19.6.0']\n"


def test_a_wrong_sha256_in_a_cached_page_keeps_the_good_file_and_heals(dist_files, serve, tmp_path):
    cache, dest = tmp_path / "cache", tmp_path / "cache" / "wheels"
    good_wheel = next(p for p, _ in dist_files["gunicorn"] if p.name == WHEEL)
    write(dest / WHEEL, "")
    (dest / WHEEL).write_bytes(good_wheel.read_bytes())  # downloaded earlier, intact
    root = lay_out(tmp_path / "idx", {"gunicorn": dist_files["gunicorn"]}, wrong_sha=WHEEL)
    local = serve(root)
    code = (
        "from pathlib import Path; from harness.provision import index; "
        f"p = index.project('gunicorn', Path({str(cache)!r}), {local.url!r}); "
        f"print(index.download(p.releases['19.6.0'][0], Path({str(dest)!r})).name)"
    )
    broken = _in_new_process(code)
    assert "sha256 mismatch" in broken.stderr
    assert (
        hashlib.sha256((dest / WHEEL).read_bytes()).digest()
        == hashlib.sha256(good_wheel.read_bytes()).digest()
    )
    lay_out(root, {"gunicorn": dist_files["gunicorn"]})  # the index corrected its listing
    assert _in_new_process(code).stdout == f"{WHEEL}\n"


@pytest.mark.parametrize(
    "entry",
    [
        {"filename": WHEEL, "url": "x.whl", "hashes": "abc"},
        {"filename": WHEEL, "url": 5},
        {"filename": 7, "url": "x.whl"},
        {"filename": WHEEL, "url": "x.whl", "size": "big"},
        "not an object",
    ],
)
def test_a_pep691_field_of_the_wrong_type_is_one_line(serve, tmp_path, entry):
    root = tmp_path / "idx"
    write(root / "simple" / "gunicorn" / "index.html", "")
    doc = {"meta": {"api-version": "1.0"}, "files": [entry]}
    write(root / "simple" / "gunicorn" / "index.json", json.dumps(doc))
    local = serve(root, pep691=True)
    with pytest.raises(index.IndexUnavailable) as caught:
        index.project("gunicorn", tmp_path / "cache", local.url)
    assert "PEP 691 files[0]" in str(caught.value) and "\n" not in str(caught.value)


def test_credentials_in_a_file_url_reach_no_message(serve, tmp_path):
    root = tmp_path / "idx"
    link = "http://bob:t0kenPW@127.0.0.1:9/files/gunicorn-19.6.0-py3-none-any.whl"
    write(root / "simple" / "gunicorn" / "index.html", f'<a href="{link}">x</a>')
    local = serve(root)
    (f,) = index.project("gunicorn", tmp_path / "cache", local.url).releases["19.6.0"]
    with pytest.raises(index.IndexUnavailable) as caught:
        index.download(f, tmp_path / "wheels")
    assert "t0kenPW" not in str(caught.value) and "bob" not in str(caught.value)

"""A repository is read, never trusted: whatever form --repo takes, an incomplete history
is refused, the repository's own code never runs, and no secret reaches a name."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.host.git import Repo, SourceError
from tests.conftest import git
from tests.history import History

pytestmark = pytest.mark.local


def test_a_shallow_clone_by_file_url_is_refused(gunicorn_history: History, tmp_path: Path):
    shallow = tmp_path / "shallow"
    src = gunicorn_history.path.as_uri()
    git(tmp_path, "clone", "-q", "--depth", "2", "--no-single-branch", src, str(shallow))
    for spec in (str(shallow), shallow.as_uri()):
        with pytest.raises(SourceError, match="shallow"):
            Repo.open(spec, tmp_path / "cache")
    assert not list((tmp_path / "cache" / "repos").glob("*.git"))  # nothing kept to reuse


def test_a_partial_clone_is_refused_and_fetches_nothing(gunicorn_history: History, tmp_path):
    server = tmp_path / "server.git"
    git(tmp_path, "clone", "-q", "--bare", str(gunicorn_history.path), str(server))
    git(server, "config", "uploadpack.allowFilter", "true")
    partial = tmp_path / "partial"
    git(tmp_path, "clone", "-q", "--filter=blob:none", "--no-checkout", server.as_uri(),
        str(partial))  # fmt: skip
    assert git(partial, "config", "remote.origin.promisor") == "true"
    before = git(partial, "count-objects", "-v")
    with pytest.raises(SourceError, match="partial clone"):
        Repo.open(str(partial), tmp_path / "cache")
    assert git(partial, "count-objects", "-v") == before


def test_a_moved_tag_is_one_line_not_a_crash(gunicorn_history: History, tmp_path: Path):
    moved = tmp_path / "moved"
    git(tmp_path, "clone", "-q", str(gunicorn_history.path), str(moved))
    orphan = git(moved, "commit-tree", f"{gunicorn_history.release_bad}^{{tree}}", "-m", "moved")
    git(moved, "tag", "-f", "19.6.0", orphan)  # no longer after 19.5.0
    repo = Repo.open(str(moved), tmp_path / "cache")
    with pytest.raises(SourceError, match="contradicts the release tags"):
        repo.graph(repo.resolve("19.5.0"), repo.resolve("19.6.0"))


def test_the_repositorys_hooks_and_fsmonitor_never_run(gunicorn_history: History, tmp_path):
    user = tmp_path / "user"
    git(tmp_path, "clone", "-q", str(gunicorn_history.path), str(user))
    ran = tmp_path / "ran"
    script = tmp_path / "spy.sh"
    script.write_text(f'#!/bin/sh\necho "$0 $*" >> {ran}\n')
    script.chmod(0o755)
    for hook in ("post-index-change", "reference-transaction", "post-checkout"):
        (user / ".git" / "hooks" / hook).symlink_to(script)
    git(user, "config", "core.fsmonitor", str(script))
    ran.unlink(missing_ok=True)  # the clone's own setup is not ours to judge
    repo = Repo.open(str(user), tmp_path / "cache")
    h = gunicorn_history
    repo.graph(repo.resolve(h.good_tag), repo.resolve(h.bad_tag))
    assert repo.export_with_pick(h.regression, h.repair, tmp_path / "tree")
    repo.export(h.release_bad, tmp_path / "tree2")
    assert not ran.exists(), ran.read_text()


def test_credentials_in_a_repo_url_reach_no_message_and_no_path(tmp_path: Path):
    url = "http://bob:t0kenPW@127.0.0.1:9/gunicorn.git"
    with pytest.raises(SourceError) as caught:
        Repo.open(url, tmp_path / "cache")
    assert "t0kenPW" not in str(caught.value) and "bob" not in str(caught.value)
    names = subprocess.run(["find", str(tmp_path)], capture_output=True, text=True).stdout
    assert "t0kenPW" not in names

"""Tests for harness.source against real git and the planted history."""

from __future__ import annotations

import py_compile
import subprocess
from pathlib import Path

import pytest

from harness.host.git import Repo, SourceError, is_remote_spec
from harness.model.results import CommitInfo, github_commit_url, parse_refs
from harness.provision import wheels
from tests.conftest import git
from tests.history import History

pytestmark = pytest.mark.local

GITHUB = "https://github.com/benoitc/gunicorn.git"


def snapshot(path: Path) -> dict[str, str]:
    """Everything an export must leave unchanged in the user's checkout."""
    index = path / ".git" / "index"
    return {
        "head": git(path, "rev-parse", "HEAD"),
        "symbolic": git(path, "symbolic-ref", "-q", "HEAD"),
        "status": git(path, "status", "--porcelain", "--untracked-files=all"),
        "refs": git(path, "for-each-ref"),
        "objects": git(path, "count-objects", "-v"),
        "index": index.read_bytes().hex() if index.exists() else "",
    }


@pytest.fixture
def checkout(gunicorn_history: History, tmp_path: Path) -> Path:
    """A user-like, non-bare clone with an index and a work tree."""
    dest = tmp_path / "checkout"
    git(tmp_path, "clone", "-q", str(gunicorn_history.path), str(dest))
    return dest


@pytest.fixture
def repo(gunicorn_history: History, tmp_path: Path) -> Repo:
    return Repo.open(str(gunicorn_history.path), tmp_path / "cache")


# -- pure helpers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "body", "expected"),
    [
        ("Merge pull request #1270 from someone/branch", "", (1270, ())),
        ("Refactor socket close (#1310)", "Fix #1298", (1310, (1298,))),
        ("Refactor socket close (#1310)  ", "", (1310, ())),
        ("fixes #12: crash on exit", "", (None, (12,))),
        ("Update docs", "close #3\nFIXED #4", (None, (3, 4))),
        ("Fix #5, #6 and #7", "fixes #5", (None, (5, 6, 7))),
        ("Resolves benoitc/gunicorn#9", "", (None, (9,))),
        ("socket", "Fix https://github.com/benoitc/gunicorn/issues/1298", (None, (1298,))),
        ("Hotfix #9, prefix #10", "see #11", (None, ())),
        ("Mention (#12) in the middle", "", (None, ())),
        ("Merge branch 'master' into x", "", (None, ())),
    ],
)
def test_parse_refs(subject: str, body: str, expected: tuple) -> None:
    assert parse_refs(subject, body) == expected


@pytest.mark.parametrize(
    ("remote", "url"),
    [
        (GITHUB, "https://github.com/benoitc/gunicorn/commit/abc"),
        ("https://github.com/benoitc/gunicorn", "https://github.com/benoitc/gunicorn/commit/abc"),
        ("git@github.com:benoitc/gunicorn.git", "https://github.com/benoitc/gunicorn/commit/abc"),
        ("ssh://git@github.com/me/gunicorn.git", "https://github.com/me/gunicorn/commit/abc"),
        ("https://gitlab.com/benoitc/gunicorn.git", None),
        ("/srv/gunicorn", None),
        (None, None),
    ],
)
def test_github_commit_url(remote: str | None, url: str | None) -> None:
    assert github_commit_url(remote, "abc") == url


def test_is_remote_spec(tmp_path: Path) -> None:
    assert is_remote_spec(GITHUB)
    assert is_remote_spec("file:///srv/gunicorn.git")
    assert is_remote_spec("git@github.com:benoitc/gunicorn.git")
    assert not is_remote_spec(str(tmp_path))
    assert not is_remote_spec("./gunicorn")
    assert not is_remote_spec("/does/not/exist")


# -- opening --------------------------------------------------------------------


def test_open_non_repo_raises(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a git repository"):
        Repo.open(str(tmp_path), tmp_path / "cache")
    with pytest.raises(SourceError, match="no such directory"):
        Repo.open(str(tmp_path / "missing"), tmp_path / "cache")


def test_open_subdirectory_of_a_clone_raises(checkout: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a git repository .it is inside"):
        Repo.open(str(checkout / "gunicorn"), tmp_path / "cache")
    assert Repo.open(str(checkout / ".git"), tmp_path / "cache").resolve("19.5.0")


def test_open_bare_repository(gunicorn_history: History, tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(gunicorn_history.path), str(bare))
    repo = Repo.open(str(bare), tmp_path / "cache")
    assert repo.resolve("19.6.0") == gunicorn_history.release_bad
    assert not repo.managed
    assert not (tmp_path / "cache").exists()  # local repos are used in place


# -- refs -----------------------------------------------------------------------


def test_resolve_peels_tags_and_expands_shas(repo: Repo, gunicorn_history: History) -> None:
    h = gunicorn_history
    assert repo.resolve("19.5.0") == h.root  # lightweight tag
    assert repo.resolve("19.6.0") == h.release_bad  # annotated tag, peeled
    assert repo.resolve("19.7.0") == h.release_fixed
    assert repo.resolve("master") == h.release_fixed
    assert repo.resolve(h.fix[:10]) == h.fix
    assert repo.resolve(f"{h.merge}^2") == h.repair


@pytest.mark.parametrize("ref", ["nope", "19.8.0", "0" * 40, "-h", "--all"])
def test_bad_ref_raises(repo: Repo, ref: str) -> None:
    with pytest.raises(SourceError, match="ref|invalid"):
        repo.resolve(ref)


def test_tag_for_version(checkout: Path, tmp_path: Path, gunicorn_history: History) -> None:
    git(checkout, "tag", "19.0", gunicorn_history.m1)
    git(checkout, "tag", "v19.1.0", gunicorn_history.b1)
    repo = Repo.open(str(checkout), tmp_path / "cache")
    assert repo.tag_for_version("19.6.0") == "19.6.0"
    assert repo.tag_for_version("19.0.0") == "19.0"
    assert repo.tag_for_version("19.1.0") == "v19.1.0"
    assert repo.tag_for_version("18.0.0") is None


# -- history queries ------------------------------------------------------------


def test_graph_of_regression_range(repo: Repo, gunicorn_history: History) -> None:
    h = gunicorn_history
    graph = repo.graph(repo.resolve("19.5.0"), repo.resolve("19.6.0"))
    assert set(graph) == {h.m1, h.b1, h.regression, h.repair, h.merge, h.m2, h.release_bad}
    assert graph[h.merge] == (h.m1, h.repair)
    assert graph[h.regression] == (h.b1,)
    assert graph[h.m1] == (h.root,)


def test_graph_of_fix_range_and_many_olds(repo: Repo, gunicorn_history: History) -> None:
    h = gunicorn_history
    assert set(repo.graph(["19.6.0"], "19.7.0")) == {h.f1, h.fix, h.f2, h.release_fixed}
    assert set(repo.graph([h.m1, h.b1], h.merge)) == {h.regression, h.repair, h.merge}
    with pytest.raises(SourceError):
        repo.graph("nope", "19.7.0")


def test_info_parses_pr_and_fix_refs(repo: Repo, gunicorn_history: History) -> None:
    h = gunicorn_history
    merge = repo.info(h.merge)
    assert isinstance(merge, CommitInfo)
    assert merge.pr == h.regression_pr
    assert merge.parents == (h.m1, h.repair)
    assert merge.subject.startswith("Merge pull request #1270 from ")
    fix = repo.info(h.fix)
    assert (fix.pr, fix.fixes) == (h.fix_pr, h.fix_fixes)
    assert fix.sha == h.fix and h.fix.startswith(fix.short)
    assert fix.subject == "Refactor socket close (#1310)"
    assert fix.body.startswith("Fix #1298")
    assert fix.author == "Test Author <author@example.invalid>"
    assert fix.date.startswith("2016-05-")
    regression = repo.info(h.regression)
    assert (regression.pr, regression.fixes, len(regression.parents)) == (None, (), 1)


def test_infos_keeps_order(repo: Repo, gunicorn_history: History) -> None:
    h = gunicorn_history
    wanted = [h.release_fixed, h.root, h.merge, h.regression]
    assert [i.sha for i in repo.infos(wanted)] == wanted
    assert repo.infos([]) == []


def test_an_exported_tree_digests_as_exactly_its_package(
    repo: Repo, gunicorn_history: History, tmp_path: Path
) -> None:
    """What verifies an installed commit: the package digest of its export is that of
    git's own blobs, blind to docs-only commits and changed by any code change."""
    h = gunicorn_history

    def exported(sha: str) -> str:
        repo.export(sha, tmp_path / sha)
        return wheels.package_digest(wheels.dir_package_files(tmp_path / sha))

    names = git(h.path, "ls-tree", "-r", "--name-only", h.repair, "gunicorn").splitlines()
    blobs = [
        (
            n,
            subprocess.run(
                ["git", "-C", h.path, "show", f"{h.repair}:{n}"], capture_output=True, check=True
            ).stdout,
        )
        for n in names
    ]
    assert exported(h.repair) == wheels.package_digest(blobs)
    assert exported(h.m1) == exported(h.root)  # docs-only change
    assert exported(h.b1) != exported(h.root)


def test_web_url(checkout: Path, tmp_path: Path, gunicorn_history: History) -> None:
    local = Repo.open(str(checkout), tmp_path / "cache")
    assert local.web_url(gunicorn_history.fix) is None  # origin is a local path
    git(checkout, "remote", "set-url", "origin", GITHUB)
    github = Repo.open(str(checkout), tmp_path / "cache")
    sha = gunicorn_history.fix
    assert github.web_url(sha) == f"https://github.com/benoitc/gunicorn/commit/{sha}"


# -- trees ----------------------------------------------------------------------


def test_export_writes_tree_and_leaves_checkout_alone(
    checkout: Path, tmp_path: Path, gunicorn_history: History
) -> None:
    h = gunicorn_history
    before = snapshot(checkout)
    repo = Repo.open(str(checkout), tmp_path / "cache")
    out = tmp_path / "out"
    repo.export(h.repair, out)
    assert (out / "setup.py").is_file()
    sock = (out / "gunicorn" / "sock.py").read_text()
    assert sock == git(h.path, "show", f"{h.repair}:gunicorn/sock.py") + "\n"
    assert "self.parent" not in sock  # 19.6.0's unconditional unlink
    assert repo.export_with_pick(h.regression, h.repair, tmp_path / "picked")
    assert not repo.export_with_pick(h.root, h.repair, tmp_path / "conflict")
    assert snapshot(checkout) == before
    assert not (checkout / ".git" / "BISECT_LOG").exists()


def test_export_with_pick_repairs_broken_commit(
    repo: Repo, tmp_path: Path, gunicorn_history: History
) -> None:
    h = gunicorn_history
    broken = tmp_path / "broken"
    repo.export(h.regression, broken)
    with pytest.raises(py_compile.PyCompileError):
        py_compile.compile(
            str(broken / "gunicorn/glogging.py"), doraise=True, cfile=str(tmp_path / "a")
        )
    picked = tmp_path / "picked"
    assert repo.export_with_pick(h.regression, h.repair, picked)
    py_compile.compile(
        str(picked / "gunicorn/glogging.py"), doraise=True, cfile=str(tmp_path / "b")
    )
    # Only the repair was added: the regression's socket code is still there.
    assert (picked / "gunicorn/sock.py").read_bytes() == (broken / "gunicorn/sock.py").read_bytes()


def test_export_with_pick_conflict_returns_false(
    repo: Repo, tmp_path: Path, gunicorn_history: History
) -> None:
    # The repair undoes a typo that 19.5.0 never had: the patch cannot apply.
    assert not repo.export_with_pick(gunicorn_history.root, gunicorn_history.repair, tmp_path / "x")


def test_export_with_pick_of_merge_uses_first_parent(
    repo: Repo, tmp_path: Path, gunicorn_history: History
) -> None:
    h = gunicorn_history
    merged, picked = tmp_path / "merged", tmp_path / "picked"
    repo.export(h.merge, merged)
    assert repo.export_with_pick(h.m1, h.merge, picked)
    for rel in ("gunicorn/sock.py", "gunicorn/glogging.py", "gunicorn/workers/gthread.py"):
        assert (picked / rel).read_bytes() == (merged / rel).read_bytes()


# -- remote URLs ----------------------------------------------------------------


def test_file_url_is_cloned_once_and_fetched_when_ref_missing(
    gunicorn_history: History, tmp_path: Path
) -> None:
    upstream = tmp_path / "upstream.git"
    git(tmp_path, "clone", "-q", "--bare", str(gunicorn_history.path), str(upstream))
    url = f"file://{upstream}"
    cache = tmp_path / "cache"

    first = Repo.open(url, cache)
    assert first.managed and first.git_dir.parent == cache.resolve() / "repos"
    assert first.git_dir.name.endswith(".git")
    assert first.resolve("19.6.0") == gunicorn_history.release_bad
    assert first.web_url(gunicorn_history.fix) is None
    marker = first.git_dir / "marker"
    marker.write_text("not recloned")

    second = Repo.open(url, cache)
    assert second.git_dir == first.git_dir and marker.exists()
    assert [p.name for p in (cache / "repos").iterdir()] == [first.git_dir.name]

    # A tag published upstream later is fetched on demand.
    git(upstream, "tag", "19.7.1", gunicorn_history.f2)
    assert second.resolve("19.7.1") == gunicorn_history.f2
    assert second.tag_for_version("19.7.1") == "19.7.1"


def test_unreachable_url_raises_and_leaves_no_partial_clone(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    url = f"file://{tmp_path}/nowhere.git"
    with pytest.raises(SourceError, match=r"cannot reach .*point --repo at a local clone"):
        Repo.open(url, cache)
    assert list((cache / "repos").iterdir()) == []

"""The repository read exactly, on histories built at test time: several good commits
through merge bases, the release a commit ships in, and no replace ref, filter,
attribute or moved tag changing an answer."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest

from harness.host.git import Repo
from harness.host.processes import Cancel
from harness.host.progress import Progress
from harness.jobs.bisector import tags_agree
from harness.jobs.budget import Budget
from harness.jobs.run import Bisect, range_run
from harness.model.results import Finding, Step
from harness.model.verdict import Verdict
from tests.fakes import Lab, report_for
from tests.history import Shapes, build_shapes

pytestmark = pytest.mark.local


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=T", "-c", "user.email=t@x", *args],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


@pytest.fixture
def shapes(tmp_path: Path) -> Shapes:
    return build_shapes(tmp_path / "repo")


def open_repo(path: Path, tmp_path: Path) -> Repo:
    return Repo.open(str(path), tmp_path / "cache")


def test_a_maintenance_release_is_no_ancestor_and_its_merge_base_is_the_branch_point(
    shapes: Shapes, tmp_path: Path
) -> None:
    repo = open_repo(shapes.path, tmp_path)
    c = shapes.commits
    assert not repo.is_ancestor(repo.resolve("19.10.0"), repo.resolve("20.0.0"))
    assert repo.is_ancestor(repo.resolve("19.9.0"), repo.resolve("20.0.0"))
    assert repo.merge_bases(repo.resolve("19.10.0"), repo.resolve("20.0.0")) == [c["r2"]]
    graph = repo.graph([c["r2"]], repo.resolve("20.0.0"))
    assert set(graph) == {c["r3"], c["r4"], c["r5"]}  # the 19.x branch is no candidate
    assert sorted(repo.tags_containing(c["r4"])) == ["20.0.0"]


def test_replace_refs_and_grafts_are_not_honoured(shapes: Shapes, tmp_path: Path) -> None:
    c = shapes.commits
    # a replacement of r4 that changes the answer back and drops r3 from the history
    fake_tree = git(shapes.path, "rev-parse", f"{c['r0']}^{{tree}}")
    fake = git(shapes.path, "commit-tree", fake_tree, "-p", c["r1"], "-m", "replaced")
    git(shapes.path, "replace", c["r4"], fake)
    assert git(shapes.path, "show", f"{c['r4']}:gunicorn/app.py") == "ANSWER = 1"  # git obeys
    repo = open_repo(shapes.path, tmp_path)
    repo.export(c["r4"], tmp_path / "tree")
    assert (tmp_path / "tree" / "gunicorn" / "app.py").read_text() == "ANSWER = 2\n"
    graph = repo.graph(c["r0"], c["r5"])
    assert graph[c["r4"]] == (c["r3"],)
    assert repo.info(c["r4"]).subject == "app: change the answer"


def test_no_filter_attribute_or_textconv_of_the_clone_changes_or_runs(
    shapes: Shapes, tmp_path: Path
) -> None:
    ran = tmp_path / "smudge-ran"
    (shapes.path / ".gitattributes").write_text(
        "*.py filter=spy eol=crlf diff=spy\nnotes1.txt export-subst\n"
    )
    (shapes.path / "notes1.txt").write_text("$Format:%H$\n")
    git(shapes.path, "add", "-A")
    git(shapes.path, "commit", "-q", "-m", "attributes")
    head = git(shapes.path, "rev-parse", "HEAD")
    git(shapes.path, "config", "filter.spy.smudge", f"sh -c 'touch {ran}; sed s/ANSWER/EVIL/'")
    git(shapes.path, "config", "diff.spy.textconv", f"sh -c 'touch {ran}; cat'")
    (shapes.path / ".git" / "info" / "attributes").write_text("* filter=spy\n")
    assert "EVIL" in git(shapes.path, "archive", head, "gunicorn/app.py")  # git archive would
    ran.unlink()
    repo = open_repo(shapes.path, tmp_path)
    repo.export(head, tmp_path / "tree")
    assert repo.export_with_pick(shapes.commits["r3"], shapes.changed, tmp_path / "picked")
    assert (tmp_path / "tree" / "gunicorn" / "app.py").read_bytes() == b"ANSWER = 2\n"
    assert (tmp_path / "tree" / "notes1.txt").read_text() == "$Format:%H$\n"
    assert (tmp_path / "picked" / "gunicorn" / "app.py").read_bytes() == b"ANSWER = 2\n"
    assert not ran.exists()


def test_a_moved_tag_is_refused_in_one_line_never_bisected(shapes: Shapes, tmp_path: Path):
    git(shapes.path, "tag", "-f", "20.0.0", shapes.commits["r3"])  # moved before the bump
    repo = open_repo(shapes.path, tmp_path)
    finding = Finding("regression", "19.9.0", "20.0.0", "skipped")
    commits = {v: repo.resolve(v) for v in ("19.9.0", "20.0.0")}
    assert not tags_agree(repo, finding, commits)
    assert "20.0.0" in finding.reason and "says 19.9.0" in finding.reason
    assert "\n" not in finding.reason
    honest = Finding("regression", "19.9.0", "19.10.0", "skipped")
    assert tags_agree(repo, honest, {v: repo.resolve(v) for v in ("19.9.0", "19.10.0")})


class TreeLab(Lab):
    """Releases as the table says; a commit is judged by its exported tree (real git):
    fail once gunicorn/app.py says ANSWER = 2."""

    def commit(self, history, sha, pick, deployment, python):
        with tempfile.TemporaryDirectory(prefix="tree-") as tmp:
            history.export(sha, Path(tmp))
            bad = (Path(tmp) / "gunicorn" / "app.py").read_text() == "ANSWER = 2\n"
        verdict = Verdict.FAIL if bad else Verdict.PASS
        self.evaluated.append((sha, pick, deployment))
        return Step(sha, verdict, python, f"{verdict.value} at {sha[:10]}", pick)


@pytest.mark.parametrize("spec", ["19.10.0..20.0.0", "19.9.0..20.0.0"])
def test_ranges_from_the_maintenance_release_and_from_its_ancestor_name_the_commit(
    shapes: Shapes, tmp_path: Path, spec: str
) -> None:
    repo = open_repo(shapes.path, tmp_path)
    versions = ["19.9.0", "19.10.0", "20.0.0"]
    verdicts = {(v, "auto/unix"): Verdict.PASS for v in versions[:2]}
    verdicts[("20.0.0", "auto/unix")] = Verdict.FAIL
    lab = TreeLab(versions, verdicts=verdicts)
    budget = Budget(2, Cancel())
    try:
        rep = range_run(lab, report_for(["auto/unix"]), spec, budget, Progress(),
                        Bisect(lambda: repo, repo_given=True))  # fmt: skip
    finally:
        budget.close()
    (f,) = rep.findings
    assert (f.status, f.commit.sha) == ("found", shapes.changed)
    assert any(f"merge base {shapes.commits['r2'][:12]}" in n for n in f.notes)
    assert f.shipped_in == "20.0.0" and f.still_fails == "20.0.0"
    assert not {sha for sha, _, _ in lab.evaluated} & {shapes.commits["m0"], shapes.commits["m1"]}

"""Commit bisection against a planted history (tests/history.py), end to end.

Real PyPI releases make the table; the planted repository (built at test time from
PyPI sdists) is bisected with real builds, environments and gunicorn processes.
The planted answers: the regression is b2 -- which cannot boot alone and needs b3
picked on top -- reached the mainline in the merge of PR #1270; the fix is F (#1310,
"Fix #1298").
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import run_cli, run_json
from tests.history import BAD, BROKEN, GOOD

pytestmark = pytest.mark.real


def _git(repo, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(scope="module")
def bisected(gunicorn_history, cache_dir, tmp_path_factory):
    repo = gunicorn_history.path
    before = (
        _git(repo, "rev-parse", "HEAD"),
        _git(repo, "status", "--porcelain"),
        _git(repo, "for-each-ref"),
    )
    results = tmp_path_factory.mktemp("results")
    proc = run_cli(
        "19.5.0..19.7.0",
        "--repo",
        str(repo),
        "--format",
        "json",
        "--cache-dir",
        str(cache_dir),
        "--results-dir",
        str(results),
    )
    assert proc.returncode == 0, proc.stderr
    after = (
        _git(repo, "rev-parse", "HEAD"),
        _git(repo, "status", "--porcelain"),
        _git(repo, "for-each-ref"),
    )
    return json.loads(proc.stdout), before, after


def test_regression_names_the_planted_commit_and_its_merge(bisected, gunicorn_history):
    h = gunicorn_history
    (reg,) = bisected[0]["regressions"]
    commit = reg["commit"]
    assert commit["status"] == "found"
    assert commit["sha"] == h.regression
    assert commit["merged_by"] == h.merge
    assert commit["pr"] == h.regression_pr


def test_untestable_commit_is_settled_by_picking_the_next_change(bisected, gunicorn_history):
    h = gunicorn_history
    commit = bisected[0]["regressions"][0]["commit"]
    assert commit["needed"] == [h.repair]
    steps = {(s["sha"], s["picked"]): s["verdict"] for s in commit["steps"]}
    assert steps[(h.regression, None)] == "error"  # b2 alone cannot boot: skipped
    assert steps[(h.regression, h.repair)] == "fail"  # with b3 on top it shows the bug


def test_fix_names_the_planted_commit(bisected, gunicorn_history):
    h = gunicorn_history
    (fix,) = bisected[0]["fixes"]
    commit = fix["commit"]
    assert commit["status"] == "found"
    assert commit["sha"] == h.fix
    assert commit["pr"] == h.fix_pr
    assert commit["fixes"] == list(h.fix_fixes)
    assert commit["needed"] == []


def test_every_step_has_its_planted_verdict_and_a_python(bisected, gunicorn_history):
    h = gunicorn_history
    expected = {GOOD: "pass", BAD: "fail", BROKEN: "error"}
    for entry in bisected[0]["regressions"] + bisected[0]["fixes"]:
        assert entry["commit"]["steps"], entry
        for step in entry["commit"]["steps"]:
            # a picked commit only repairs the boot: the pair behaves like the repair
            planted = h.behaviour[step["picked"] or step["sha"]]
            assert step["verdict"] == expected[planted], step
            if step["verdict"] != "error":
                assert step["python"]


def test_the_users_repository_is_never_modified(bisected):
    _, before, after = bisected
    assert before == after


def test_first_parent_names_the_merge(gunicorn_history, cache_dir, tmp_path):
    report = run_json(
        "19.5.0..19.6.0",
        "--repo",
        str(gunicorn_history.path),
        "--first-parent",
        cache_dir=cache_dir,
        results_dir=tmp_path,
    )
    commit = report["regressions"][0]["commit"]
    assert commit["status"] == "found"
    assert commit["sha"] == gunicorn_history.merge


def test_second_run_reuses_the_built_wheels(bisected, gunicorn_history, cache_dir, tmp_path):
    builds = cache_dir / "builds"
    stamps = {p: p.stat().st_mtime_ns for p in builds.glob("*/build.json")}
    assert stamps
    again = run_json(
        "19.5.0..19.7.0",
        "--repo",
        str(gunicorn_history.path),
        cache_dir=cache_dir,
        results_dir=tmp_path,
    )
    assert {p: p.stat().st_mtime_ns for p in builds.glob("*/build.json")} == stamps
    assert again["regressions"][0]["commit"]["sha"] == gunicorn_history.regression


def test_check_accepts_a_git_ref(gunicorn_history, cache_dir):
    h = gunicorn_history
    bad = run_cli("--check", h.repair, "--repo", str(h.path), "--cache-dir", str(cache_dir))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    broken = run_cli("--check", h.regression, "--repo", str(h.path), "--cache-dir", str(cache_dir))
    assert broken.returncode == 125, broken.stdout + broken.stderr


def test_markdown_is_ready_to_paste(gunicorn_history, cache_dir, tmp_path):
    proc = run_cli(
        "19.5.0..19.7.0",
        "--repo",
        str(gunicorn_history.path),
        "--format",
        "markdown",
        "--cache-dir",
        str(cache_dir),
        "--results-dir",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    md = proc.stdout
    assert "| `19.6.0`" in md and "**FAIL**" in md
    assert gunicorn_history.regression[:12] in md and gunicorn_history.fix[:12] in md
    assert "Reproduce with:" in md and "bisect.py 19.5.0..19.7.0" in md


def test_parallel_evaluation_changes_no_verdict(bisected, gunicorn_history, cache_dir, tmp_path):
    """-j 1 (plain binary search) and the default k-ary search agree on every answer."""
    serial = run_json(
        "19.5.0..19.7.0",
        "--repo",
        str(gunicorn_history.path),
        "-j",
        "1",
        cache_dir=cache_dir,
        results_dir=tmp_path,
    )
    parallel = bisected[0]
    assert [r["verdict"] for r in serial["rows"]] == [r["verdict"] for r in parallel["rows"]]
    for kind in ("regressions", "fixes"):
        a, b = serial[kind][0]["commit"], parallel[kind][0]["commit"]
        assert (a["sha"], a["needed"]) == (b["sha"], b["needed"])
        seen = {(s["sha"], s["picked"]): s["verdict"] for s in b["steps"]}
        for step in a["steps"]:  # a commit tested by both searches got the same verdict
            key = (step["sha"], step["picked"])
            if key in seen:
                assert seen[key] == step["verdict"]

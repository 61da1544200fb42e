"""Git refs as targets, end to end: a tag that is not a release on the index (as 20.0.1 is
in gunicorn's history), checked and used as a range end with ``--repo``, against a copy
of the planted history (tests/history.py) with the tag added, real builds and gunicorn."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import run_cli, run_json

pytestmark = pytest.mark.real

TAG = "19.6.1"  # no such gunicorn release: 19.6.0 is followed by 19.7.0


@pytest.fixture(scope="module")
def tagged(gunicorn_history, tmp_path_factory):
    """A clone of the planted history with TAG on f1 (after 19.6.0, before the fix)."""
    clone = tmp_path_factory.mktemp("tagged") / "gunicorn"
    git = ["git", "-c", "tag.gpgsign=false"]
    subprocess.run([*git, "clone", "-q", str(gunicorn_history.path), str(clone)], check=True)
    subprocess.run([*git, "-C", str(clone), "tag", TAG, gunicorn_history.f1], check=True)
    return clone, gunicorn_history


def test_check_takes_a_tag_the_index_lacks_with_a_clone(tagged, cache_dir, no_leaks):
    clone, h = tagged
    proc = run_cli("--check", TAG, "--repo", str(clone), "--cache-dir", str(cache_dir))
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith(f"{TAG} ({h.f1[:12]}): fail (Python "), proc.stdout


def test_without_a_clone_the_tag_is_one_line_naming_repo(cache_dir):
    proc = run_cli("--check", TAG, "--cache-dir", str(cache_dir))
    assert proc.returncode == 2 and not proc.stdout
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"gunicorn {TAG} is not a release on the package index" in proc.stderr
    assert "--repo" in proc.stderr


def test_a_range_from_the_tag_bisects_to_the_fix(tagged, cache_dir, tmp_path, no_leaks):
    clone, h = tagged
    rep = run_json(
        f"{TAG}..19.7.0", "--repo", str(clone), cache_dir=cache_dir, results_dir=tmp_path
    )
    rows = {r["target"]: r for r in rep["rows"]}
    ref = rows[f"{TAG} ({h.f1[:12]})"]
    assert (ref["kind"], ref["sha"], ref["verdict"]) == ("commit", h.f1, "fail")
    assert rows["19.7.0"]["verdict"] == "pass"
    (fix,) = rep["fixes"]
    assert fix["commit"]["status"] == "found" and fix["commit"]["sha"] == h.fix

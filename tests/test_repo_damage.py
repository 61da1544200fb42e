"""A clone missing objects is one line for the run, not an error row per commit
(issue 26, item 10): the commit build's error path does not swallow it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.host.git import DamagedRepo, Repo, SourceError
from harness.model.errors import HarnessError

pytestmark = pytest.mark.local


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=a", "-c", "user.email=a@b", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


def test_a_clone_missing_a_blob_is_one_line_for_the_run(tmp_path) -> None:
    work = tmp_path / "repo"
    work.mkdir()
    _git("init", "-q", cwd=work)
    (work / "setup.py").write_text("print('x')\n")
    _git("add", "setup.py", cwd=work)
    _git("commit", "-qm", "one", cwd=work)
    sha = _git("rev-parse", "HEAD", cwd=work)
    blob = _git("rev-parse", "HEAD:setup.py", cwd=work)
    (work / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    repo = Repo.open(str(work), tmp_path / "cache")
    with pytest.raises(DamagedRepo) as err:
        repo.export(sha, tmp_path / "out")
    assert isinstance(err.value, HarnessError) and not isinstance(err.value, SourceError)
    assert str(err.value).startswith(f"--repo {work}: the clone is missing objects (git: ")
    assert "\n" not in str(err.value)

"""An interrupt removes this process's unfinished temporaries, and only those."""

from __future__ import annotations

import pytest

from harness.host.fsutil import remove_own_temporaries, temp_dir

pytestmark = pytest.mark.pure


def test_own_temporaries_go_and_other_processes_stay(tmp_path):
    mine = [temp_dir(tmp_path / "envs", "env"), temp_dir(tmp_path, "wheel")]
    (mine[0] / "half-written").write_text("x")
    theirs = tmp_path / "envs" / ".tmp-1-env-abc"  # pid 1 is never this test
    theirs.mkdir()
    finished = tmp_path / "envs" / "gunicorn-19.5.0-py3.9-abc"
    finished.mkdir()
    remove_own_temporaries(tmp_path)
    assert not any(p.exists() for p in mine)
    assert theirs.is_dir() and finished.is_dir()

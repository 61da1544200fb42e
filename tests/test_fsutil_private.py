"""What the harness trusts, only this user could have written (issue 26, item 1).

Every directory it makes is 0700 whatever the umask, parents included; a cache or
results directory another local user owns (``nobody``) or may write is refused in one
line; the compat shim every server imports lives in a directory the run made itself.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from harness.host import compat, fsutil
from harness.model.errors import HarnessError
from harness.request import UsageError, writable_dir
from tests.conftest import ROOT

pytestmark = pytest.mark.local

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to nobody needs root")


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


@pytest.fixture
def umask_000():
    old = os.umask(0)
    yield
    os.umask(old)


def test_every_directory_made_is_0700_under_umask_000(tmp_path, umask_000) -> None:
    deep = tmp_path / "a" / "b" / "cache"
    writable_dir(deep, "--cache-dir")
    for p in (tmp_path / "a", tmp_path / "a" / "b", deep):
        assert _mode(p) == 0o700, p
    fsutil.atomic_write_text(deep / "x" / "fact.json", "{}")
    assert (_mode(deep / "x"), _mode(deep / "x" / "fact.json")) == (0o700, 0o600)
    made = fsutil.temp_dir(deep / "envs", "env")
    assert _mode(deep / "envs") == 0o700 and _mode(made) == 0o700


def test_a_directory_writable_by_others_is_refused_in_one_line(tmp_path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UsageError) as err:
        writable_dir(shared, "--results-dir")
    assert str(err.value) == (
        f"--results-dir {shared}: writable by others (mode 0777): refused (chmod go-w {shared})"
    )


@needs_root
def test_a_cache_owned_by_nobody_is_refused_before_anything_runs(tmp_path) -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    os.chown(cache, nobody, -1)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bisect.py"), "19.5.0..19.6.0", "--cache-dir", str(cache)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"bisect.py: error: --cache-dir {cache}: owned by uid {nobody} (nobody), "
        "not by this user: refused"
    ]
    assert list(cache.iterdir()) == []


@needs_root
def test_a_shim_directory_another_user_made_is_never_written_into(tmp_path) -> None:
    planted = tmp_path / "compat-shim"
    planted.mkdir(mode=0o700)
    (planted / "random.py").write_text("raise SystemExit('planted')\n")
    with pytest.raises(HarnessError, match="holds files the harness did not write: random.py"):
        compat.write_shim(planted)
    os.chown(planted, pwd.getpwnam("nobody").pw_uid, -1)
    with pytest.raises(HarnessError, match="owned by uid .* \\(nobody\\)"):
        compat.write_shim(planted)
    assert not (planted / "sitecustomize.py").exists()


def test_the_shim_lives_in_the_runs_own_directory(umask_000) -> None:
    where = compat.write_shim()
    assert where.parent == fsutil.run_temp_dir()
    assert (_mode(where), _mode(where / "sitecustomize.py")) == (0o700, 0o600)
    assert _mode(where.parent) == 0o700
    assert (where / "sitecustomize.py").read_text() == compat.SITECUSTOMIZE


@pytest.mark.real
def test_a_run_under_umask_000_leaves_nothing_another_user_may_change(cache_dir, tmp_path):
    """A real run on a fresh cache (the downloads linked in) under umask 000: the cache,
    its parents, every entry the run made at its top two levels, the results and their
    files are the user's alone."""
    fresh = tmp_path / "deep" / "cache"
    fresh.mkdir(parents=True)
    for name in ("index", "wheels", "unpacked"):  # not downloaded again: not the run's
        subprocess.run(["cp", "-al", str(cache_dir / name), str(fresh / name)], check=True)
    fresh.chmod(0o700)
    (tmp_path / "deep").chmod(0o700)
    linked = {fresh / n for n in ("index", "wheels", "unpacked")}
    results = tmp_path / "r" / "s" / "results"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bisect.py"), "19.5.0..19.6.0", "--no-commits",
         "--cache-dir", str(fresh), "--results-dir", str(results)],
        capture_output=True, text=True, cwd=ROOT, timeout=600, umask=0,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    made = [p for p in fresh.iterdir() if p not in linked]
    made += [p for d in made if d.is_dir() and not d.is_symlink() for p in d.iterdir()]
    made += [tmp_path / "r", tmp_path / "r" / "s", results, *results.iterdir()]
    assert made and not [p for p in made if os.lstat(p).st_mode & 0o077], [
        f"{_mode(p):04o} {p}" for p in made if os.lstat(p).st_mode & 0o077
    ]

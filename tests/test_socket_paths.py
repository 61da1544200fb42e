"""Socket paths that always fit: with a long TMPDIR the server's private directory
moves somewhere short, so gunicorn's Unix socket (108 bytes of sun_path) still binds."""

from __future__ import annotations

import os
import stat
import tempfile

import pytest

from harness.scenarios.server import SUN_PATH_MAX, private_dir
from tests.conftest import run_cli

pytestmark = pytest.mark.pure

LONG = "deeply-nested-temporary-directory-" * 3


def test_a_short_tmpdir_is_used_as_it_is(tmp_path, monkeypatch):
    if len(os.fsencode(tmp_path / ("gunicorn-bisect-" + "x" * 8) / "gunicorn.sock")) >= 108:
        pytest.skip(f"pytest's own temporary directory is too long here: {tmp_path}")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    made = private_dir("gunicorn-bisect-", "gunicorn.sock")
    try:
        assert made.parent == tmp_path
        assert stat.S_IMODE(made.stat().st_mode) == 0o700
    finally:
        made.rmdir()


def test_a_long_tmpdir_gives_a_short_private_directory(tmp_path, monkeypatch):
    long_tmp = tmp_path / LONG
    long_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(long_tmp))
    made = private_dir("gunicorn-bisect-", "gunicorn.sock")
    try:
        assert len(os.fsencode(made / "gunicorn.sock")) < SUN_PATH_MAX
        assert stat.S_IMODE(made.stat().st_mode) == 0o700
        assert made.stat().st_uid == os.geteuid()
    finally:
        made.rmdir()


@pytest.mark.real
def test_a_real_server_serves_on_a_unix_socket_under_a_long_tmpdir(cache_dir, tmp_path, no_leaks):
    long_tmp = tmp_path / LONG
    long_tmp.mkdir()
    assert len(str(long_tmp)) > 110  # nothing inside it could be a socket path
    proc = run_cli(
        "--check",
        "19.5.0",
        "--cache-dir",
        str(cache_dir),
        "--results-dir",
        str(tmp_path / "results"),
        env={**os.environ, "TMPDIR": str(long_tmp)},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "19.5.0: pass" in proc.stdout
    assert "socket kept" in proc.stdout
    assert not list(long_tmp.iterdir())  # nothing left behind where it usually goes

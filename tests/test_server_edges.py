"""The server's honest edges, with real gunicorn: a flooded log costs the harness no
memory, a daemon with an empty environment ends with the row, a config file that exits
is reported as the exit it was."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT, alive

pytestmark = pytest.mark.real

#: 100 MiB of log, written by the config file gunicorn imports first (to its stderr,
#: which is the log the harness reads).
FLOOD = """\
import sys
chunk = ("x" * 1023 + "\\n") * 1024
for _ in range(100):
    sys.stderr.write(chunk)
sys.stderr.flush()
"""


def _measured(config: Path, release: str, cache_dir: Path) -> tuple[str, int]:
    """``bisect.py --check RELEASE --scenario boots --gunicorn-config CONFIG``: its
    output and the harness's peak RSS in KiB (reaped here with wait4 to know it)."""
    args = ["--check", release, "--scenario", "boots", "--gunicorn-config", str(config)]
    with open(config.with_suffix(".out"), "w+") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bisect.py"), *args, "--cache-dir", str(cache_dir)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait
        out.seek(0)
        return out.read(), usage.ru_maxrss


def test_a_flooded_log_costs_the_harness_no_memory(cache_dir, tmp_path, no_leaks):
    """100 MiB of log grew the harness by 300 MB when it kept the whole text; now a
    bounded tail, and the row and its facts are what they would be without the flood."""
    plain, flood = tmp_path / "plain.py", tmp_path / "flood.py"
    plain.write_text("")
    flood.write_text(FLOOD)
    out, baseline = _measured(plain, "19.9.0", cache_dir)
    assert "19.9.0: pass" in out, out
    out, peak = _measured(flood, "19.9.0", cache_dir)
    assert "19.9.0: pass" in out and "booted and answered" in out, out
    assert peak - baseline < 48 * 1024, f"the harness grew by {(peak - baseline) // 1024} MiB"


def test_a_boot_error_after_a_flood_is_still_the_reason(cache_dir, tmp_path, no_leaks):
    crash = tmp_path / "crash.py"
    crash.write_text(FLOOD + "raise RuntimeError('boom after the flood')\n")
    out, _ = _measured(crash, "19.9.0", cache_dir)
    assert "19.9.0: fail" in out and "RuntimeError: boom after the flood" in out, out[-2000:]


def _processes_with(marker: str) -> list[int]:
    """Live processes whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if marker.encode() in (entry / "cmdline").read_bytes() and alive(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_daemon_with_an_empty_environment_ends_with_the_row(cache_dir, tmp_path, no_leaks):
    """No run token, its own session: started by the config file (the arbiter), by a
    worker (post_fork), and double-forked (its parent gone at once) -- none outlives
    the row."""
    marker = f"{600 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6}"
    config = tmp_path / "daemons.py"
    config.write_text(
        textwrap.dedent(f"""\
        import subprocess
        def spawn(*argv):
            subprocess.Popen(list(argv), env={{}}, start_new_session=True)
        spawn("sleep", "{marker}")
        spawn("/bin/sh", "-c", "sleep {marker} &")
        def post_fork(server, worker):
            spawn("sleep", "{marker}")
        """)
    )
    try:
        out, _ = _measured(config, "19.9.0", cache_dir)
        assert "19.9.0: pass" in out, out
        assert not _processes_with(marker), "a daemon outlived the row"
    finally:
        for pid in _processes_with(marker):
            os.kill(pid, 9)


@pytest.mark.parametrize("release", ["19.9.0", "23.0.0"])
def test_a_config_file_that_exits_is_reported_as_that_exit(cache_dir, tmp_path, release, no_leaks):
    """Not "import pkg_resources" (19.x's warning, the last line it printed) nor "no
    output": the server exited with status 3 and logged no error."""
    config = tmp_path / "exits.py"
    config.write_text("import os\nos._exit(3)\n")
    out, _ = _measured(config, release, cache_dir)
    assert f"{release}: fail" in out, out
    assert "server exited with status 3 before booting; no error logged" in out, out
    assert "pkg_resources" not in out

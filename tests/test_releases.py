"""Real releases, real environments, real gunicorn processes: the contract of the table."""

from __future__ import annotations

import json
import re

import pytest

from harness.host.compat import ask_kernel
from tests.conftest import ROOT, run_cli, run_json

pytestmark = pytest.mark.real
KERNEL = ask_kernel()


@pytest.fixture(scope="module")
def table(cache_dir, tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    report = run_json("19.5.0..19.7.0", "--no-commits", cache_dir=cache_dir, results_dir=results)
    return report, results


def test_verdicts_pin_the_regression_and_the_fix(table, no_leaks):
    report, _ = table
    verdicts = {r["target"]: r["verdict"] for r in report["rows"]}
    assert verdicts == {"19.5.0": "pass", "19.6.0": "fail", "19.7.0": "pass"}
    assert [{k: r[k] for k in ("last_good", "first_bad")} for r in report["regressions"]] == [
        {"last_good": "19.5.0", "first_bad": "19.6.0"}
    ]
    assert [{k: f[k] for k in ("last_bad", "first_good")} for f in report["fixes"]] == [
        {"last_bad": "19.6.0", "first_good": "19.7.0"}
    ]
    assert report["affected"] == ["19.6.0"]


def test_every_verdict_carries_its_evidence(table):
    rows = {r["target"]: r for r in table[0]["rows"]}
    assert "socket kept through" in rows["19.5.0"]["detail"]
    assert "new connections served" in rows["19.5.0"]["detail"]
    fail = rows["19.6.0"]
    assert "socket file gone" in fail["detail"]
    served = re.search(r"\b(\d+)/(\d+) new connections served", fail["detail"])
    assert served and served.groups() == ("0", "20"), fail["detail"]  # none got through
    assert "FileNotFoundError" in fail["traceback"]  # the report's worker traceback


def test_the_newest_python_that_boots_19x_is_chosen_by_evidence(table):
    for row in table[0]["rows"]:
        assert row["python"] is not None
        major, minor = (int(x) for x in row["python"].split(".")[:2])
        assert (major, minor) <= (3, 9)
        for tried in row["tried"]:  # every newer interpreter failed with a reason
            version, reason = tried.split(": ", 1)
            assert tuple(int(x) for x in version.split(".")[:2]) > (major, minor)
            assert reason


def test_compat_is_marked_on_the_rows_that_needed_it(table):
    rows = {r["target"]: r for r in table[0]["rows"]}
    assert rows["19.5.0"]["compat"] is False  # 19.5.0 never sets SO_REUSEPORT
    assert rows["19.7.0"]["compat"] is KERNEL.reuseport_unix_rejected
    assert table[0]["host"]["reuseport_unix_rejected"] is KERNEL.reuseport_unix_rejected


def test_a_record_is_written_to_results(table):
    report, results = table
    records = sorted(results.glob("*.json"))
    assert len(records) == 1
    saved = json.loads(records[0].read_text())
    assert saved["rows"] == report["rows"]
    assert saved["host"]["kernel"]
    assert not list(results.glob(".*.tmp"))  # nothing half-written


def test_second_run_reuses_the_environments(table, cache_dir, tmp_path):
    again = run_json("19.5.0..19.7.0", "--no-commits", cache_dir=cache_dir, results_dir=tmp_path)
    assert all(r["reused_env"] for r in again["rows"])
    assert [r["verdict"] for r in again["rows"]] == ["pass", "fail", "pass"]


@pytest.mark.parametrize(
    ("release", "status", "word"),
    [
        ("19.5.0", 0, "pass"),
        ("19.6.0", 1, "fail"),
        ("19.7.1", 0, "pass"),
    ],
)
def test_check_exit_status_drives_git_bisect_run(release, status, word, cache_dir, no_leaks):
    proc = run_cli("--check", release, "--cache-dir", str(cache_dir))
    assert proc.returncode == status, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"{release}: {word}")


@pytest.mark.skipif(
    not KERNEL.reuseport_unix_rejected,
    reason=f"kernel {KERNEL.kernel} accepts SO_REUSEPORT on AF_UNIX: "
    "19.7.0 binds without the compat shim, nothing to show",
)
def test_without_compat_19_7_0_is_an_error_not_a_fail(cache_dir, no_leaks):
    proc = run_cli("--check", "19.7.0", "--no-compat", "--cache-dir", str(cache_dir))
    assert proc.returncode == 125, proc.stdout + proc.stderr
    assert "error" in proc.stdout and "Errno 95" in proc.stdout


def test_server_never_imports_our_bisect_module(cache_dir, tmp_path, no_leaks):
    """The project's bisect.py shadows the stdlib; gunicorn must never see it."""
    out = tmp_path / "seen.txt"
    cfg = tmp_path / "my_config.py"
    cfg.write_text(
        "import sys\n"
        "def post_fork(server, worker):\n"
        "    import random, bisect\n"
        f"    open({str(out)!r}, 'a').write(bisect.__file__ + '\\n')\n"
    )
    proc = run_cli(
        "--check", "19.5.0", "--gunicorn-config", str(cfg), "--cache-dir", str(cache_dir)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seen = set(out.read_text().split())
    assert seen, "the config's post_fork hook never ran"
    assert str(ROOT / "bisect.py") not in seen
    assert all("/lib/python3." in p and p.endswith("/bisect.py") for p in seen), seen


@pytest.mark.parametrize(("release", "status"), [("19.5.0", 0), ("19.6.0", 1)])
def test_the_reports_own_config_reproduces_it(release, status, cache_dir, no_leaks):
    """--gunicorn-config runs the reporter's config.py (5 workers, 5 threads,
    max_requests=512, bind to /tmp/gunicorn.sock): the harness still owns bind, and it
    waits for the server's own worker count, read from gunicorn's log."""
    config = ROOT / "tests" / "data" / "report_config.py"
    proc = run_cli(
        "--check", release, "--gunicorn-config", str(config), "--cache-dir", str(cache_dir)
    )
    assert proc.returncode == status, proc.stdout + proc.stderr
    if status == 0:  # how many restarts fit in the run depends on the host's speed
        kept = re.search(r"socket kept through (\d+) worker restarts", proc.stdout)
        assert kept and int(kept[1]) >= 1, proc.stdout
        assert "20/20 new connections served" in proc.stdout, proc.stdout
    else:
        assert "socket file gone" in proc.stdout

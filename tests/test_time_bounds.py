"""Every run ends within its limit, whatever the server does, and says which phase ran
out; another outage (the file stays, nothing answers) is named as such.  Real servers,
made to misbehave with gunicorn hooks in a user config file."""

from __future__ import annotations

import subprocess
import textwrap

import pytest

from tests.conftest import run_cli, run_json

pytestmark = pytest.mark.real

TIMEOUT = 8  # --timeout for these runs; teardown and environment reuse come on top
SLACK = 4.0  # what a row may take beyond the limit: the final probes and teardown


def _config(tmp_path, body: str):
    path = tmp_path / "misbehave.py"
    path.write_text(textwrap.dedent(body))
    return path


def _row(cache_dir, tmp_path, *args: str, status: int = 0) -> dict:
    """The one row of a run; ``status`` 125 where it is an error (no answer)."""
    try:
        report = run_json(
            *args,
            "--timeout",
            str(TIMEOUT),
            cache_dir=cache_dir,
            results_dir=tmp_path,
            status=status,
        )
    except subprocess.TimeoutExpired:  # pragma: no cover - the failure this file guards
        pytest.fail("the run did not end")
    (row,) = report["rows"]
    return row


def test_a_server_that_never_answers_ends_at_the_limit_with_the_phase(
    cache_dir, tmp_path, no_leaks
):
    cfg = _config(
        tmp_path,
        """
        def pre_request(worker, req):
            import time
            time.sleep(600)
        """,
    )
    row = _row(
        cache_dir, tmp_path, "19.5.0", "--no-commits", "--gunicorn-config", str(cfg), status=125
    )
    assert row["verdict"] == "error"
    assert "boot ran out" in row["detail"]
    assert row["seconds"] <= TIMEOUT + SLACK


def test_workers_that_ignore_sigterm_end_at_the_limit_with_the_phase(cache_dir, tmp_path, no_leaks):
    """--trigger signal sends SIGTERM to each worker: these never exit."""
    cfg = _config(
        tmp_path,
        """
        def post_fork(server, worker):
            import signal
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            worker.handle_exit = lambda *a: None
        """,
    )
    row = _row(
        cache_dir,
        tmp_path,
        "19.5.0",
        "--no-commits",
        "--trigger",
        "signal",
        "--gunicorn-config",
        str(cfg),
        status=125,
    )
    assert row["verdict"] == "error"
    assert "ran out during signal" in row["detail"]
    assert row["trigger"] == "signal"
    assert row["seconds"] <= TIMEOUT + SLACK


def test_replacements_that_hang_are_an_outage_not_a_fail(cache_dir, tmp_path, no_leaks):
    """The socket file stays, the first workers serve, their replacements never answer."""
    marker = tmp_path / "first-generation-done"
    cfg = _config(
        tmp_path,
        f"""
        import os, time

        def worker_exit(server, worker):
            open({str(marker)!r}, "a").close()

        def pre_request(worker, req):
            if os.path.exists({str(marker)!r}) and worker.pid not in FIRST:
                time.sleep(600)

        FIRST = set()

        def post_fork(server, worker):
            if not os.path.exists({str(marker)!r}):
                FIRST.add(worker.pid)
        """,
    )
    row = _row(cache_dir, tmp_path, "19.5.0", "--no-commits", "--gunicorn-config", str(cfg))
    assert row["verdict"] == "outage", row["detail"]
    assert row["detail"].startswith("socket file kept, but no answer within 2 s to ")
    assert "worker(s) booted again" in row["detail"]
    assert row["seconds"] <= TIMEOUT + SLACK


def test_a_real_release_whose_workers_are_never_replaced_is_an_outage(
    cache_dir, tmp_path, no_leaks
):
    """gunicorn 24.0.0: workers that exit are never replaced; the socket file stays."""
    row = _row(cache_dir, tmp_path, "24.0.0", "--no-commits")
    assert row["verdict"] == "outage", row["detail"]
    assert "0 worker(s) booted again" in row["detail"]
    assert "Unhandled signal: cld" in row["detail"]  # the arbiter's own error line, quoted
    assert row["seconds"] <= TIMEOUT + SLACK
    proc = run_cli("--check", "24.0.0", "--cache-dir", str(cache_dir))
    assert proc.returncode == 125  # for #1298's git bisect run: cannot tell
    ks = run_cli("--check", "24.0.0", "--scenario", "keeps-serving", "--cache-dir", str(cache_dir))
    assert ks.returncode == 1, ks.stdout  # keeps-serving: any outage is a fail
    assert "0 worker(s) booted again" in ks.stdout


@pytest.mark.parametrize(
    ("release", "verdict"), [("19.5.0", "pass"), ("19.6.0", "fail"), ("19.3.0", "pass")]
)
def test_the_signal_trigger_agrees_with_max_requests(
    release, verdict, cache_dir, tmp_path, no_leaks
):
    """SIGTERM to each worker gives 19.5.0's pass and 19.6.0's fail, and exercises 19.3.0,
    whose gthread worker never recycles on max_requests."""
    row = _row(cache_dir, tmp_path, release, "--no-commits", "--trigger", "signal")
    assert row["verdict"] == verdict, row["detail"]
    assert row["trigger"] == "signal"
    assert row["worker_class"] == "gthread"


def test_auto_falls_back_to_the_signal_where_max_requests_never_recycles(
    cache_dir, tmp_path, no_leaks
):
    row = _row(cache_dir, tmp_path, "19.2.0", "--no-commits")
    assert row["verdict"] == "pass", row["detail"]
    assert row["trigger"] == "signal"
    assert "(SIGTERM to each worker)" in row["detail"]

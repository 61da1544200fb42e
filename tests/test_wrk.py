"""harness.host.wrk: Debian's wrk against a real local HTTP/1.1 server, summary as data."""

from __future__ import annotations

import shutil
import time

import pytest

from harness.host import processes
from harness.host.wrk import Wrk, WrkError, parse, url_for
from tests.local_http import free_address, serve

pytestmark = [
    pytest.mark.local,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed"),
]


@pytest.fixture
def tcp():
    with serve("tcp") as (srv, address):
        yield srv, address


def test_the_report_shape_runs_and_is_counted(tcp) -> None:
    _, address = tcp
    w = Wrk(url_for(address), duration=1)
    assert w.command.startswith("wrk -t10 -c200 -d1s")
    summary = w.run()
    assert summary.requests > 0 and summary.failed == 0
    assert 0.9 < summary.seconds < 3
    assert "requests in" in summary.text
    assert summary.as_json()["socket_errors"] == {"connect": 0, "read": 0, "write": 0, "timeout": 0}


def test_errors_during_an_action_are_counted_and_stop_is_early(tcp) -> None:
    srv, address = tcp
    start = time.monotonic()
    with Wrk(url_for(address), duration=30, threads=2, connections=8) as w:
        time.sleep(0.5)
        srv.fail = 503
        time.sleep(0.3)
        srv.fail = None
        time.sleep(0.3)
        summary = w.stop()
    assert time.monotonic() - start < 10  # not the 30 s of its duration
    assert summary.non_2xx_3xx > 0 and summary.requests > summary.non_2xx_3xx


def test_nothing_listening_is_unreachable_not_an_error() -> None:
    summary = Wrk(url_for(free_address()), duration=1, threads=1, connections=2).run()
    assert summary.requests == 0 and "refused" in summary.unreachable.lower()


def test_a_unix_socket_is_refused_with_a_reason() -> None:
    with pytest.raises(WrkError, match="only TCP"):
        url_for("/tmp/gunicorn.sock")


def test_a_missing_wrk_or_summary_is_a_harness_error() -> None:
    with pytest.raises(WrkError, match="not found"):
        Wrk("http://127.0.0.1:1/", wrk="wrk-that-is-not-there")
    with pytest.raises(WrkError, match="no summary"):
        parse("Usage: wrk <options> <url>\n", "wrk ...")


def test_a_load_generator_that_ignores_signals_and_forks_ends_at_the_deadline(tmp_path) -> None:
    """It ignores SIGINT/SIGTERM, forks a child that does too and keeps its output open:
    the run ends at wrk's deadline, and nothing it started survives."""
    fake = tmp_path / "wrk"
    fake.write_text(
        "#!/bin/sh\n"
        "trap '' INT TERM\n"
        "(trap '' INT TERM; sleep 300) &\n"
        "echo $! > " + str(tmp_path / "child") + "\n"
        "sleep 300\n"
    )
    fake.chmod(0o755)
    w = Wrk("http://127.0.0.1:1/", duration=1, timeout=1, wrk=str(fake), margin=1.0)
    started = time.monotonic()
    with pytest.raises(WrkError, match="did not finish within its bounds"):
        with w:
            time.sleep(0.5)  # the action; then stop(): SIGINT, ignored
    took = time.monotonic() - started
    assert 2.5 < took < 10  # its bounds: duration + timeout + margin, then killed
    child = int((tmp_path / "child").read_text())
    assert not processes.pids_with_token(w._token)
    try:
        state = open(f"/proc/{child}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        state = "gone"
    assert state in ("gone", "Z")

"""Progress where stderr is no terminal: a line at least every interval, never silence."""

from __future__ import annotations

import io
import time

import pytest

from harness.host.progress import Heartbeat, Progress, for_terminal

pytestmark = pytest.mark.pure


def test_a_redirected_run_gets_a_line_every_interval_with_the_step_and_the_count() -> None:
    out = io.StringIO()
    beat = Heartbeat(out, every=0.05)
    beat.start(10, "commits")
    beat("regression 24.0.0..24.1.0: 40 revisions left to test; testing c050")
    beat.advance(3)
    deadline = time.monotonic() + 5
    while out.getvalue().count("\n") < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    beat.close()
    lines = out.getvalue().splitlines()
    assert len(lines) >= 2
    assert "still working (3 of about 10 commits done)" in lines[-1]
    assert "testing c050" in lines[-1]
    quiet_after = out.getvalue()
    time.sleep(0.15)
    assert out.getvalue() == quiet_after  # closed: no line after the report


def test_only_a_non_terminal_gets_the_heartbeat_and_q_silences_it() -> None:
    assert isinstance(for_terminal(False, False, io.StringIO()), Heartbeat)
    quiet = for_terminal(False, True, io.StringIO())
    assert isinstance(quiet, Progress) and not isinstance(quiet, Heartbeat)

"""Tests for harness.verdict: the rules that turn observations into pass/fail/error."""

from __future__ import annotations

import dataclasses

import pytest

from harness.verdict import Observation, Outcome, Verdict, combine, decide

TRACEBACK = """\
Traceback (most recent call last):
  File "gunicorn/arbiter.py", line 557, in spawn_worker
    worker.init_process()
  File "gunicorn/sock.py", line 45, in close
    os.unlink(self.cfg_addr)
FileNotFoundError: [Errno 2] No such file or directory: '/tmp/x/gunicorn.sock'
"""

# A healthy run: booted, workers recycled, every fresh probe served.
HEALTHY = Observation(
    booted=True,
    workers=2,
    recycles=3,
    requests_ok=600,
    requests_failed=0,
    path_present=True,
    probes_sent=5,
    probes_ok=5,
    arbiter_alive=True,
)


def obs(**changes) -> Observation:
    return dataclasses.replace(HEALTHY, **changes)


# -- decide ----------------------------------------------------------------------


def test_not_booted_is_error_with_the_boot_reason():
    out = decide(Observation(booted=False, boot_error="ImportError: No module named six.moves"))
    assert out.verdict is Verdict.ERROR
    assert "server did not start" in out.detail
    assert "ImportError: No module named six.moves" in out.detail


def test_not_booted_without_a_reason_still_says_why():
    out = decide(Observation(booted=False))
    assert out.verdict is Verdict.ERROR
    assert out.detail.startswith("server did not start: ")
    assert len(out.detail) > len("server did not start: ")


def test_socket_file_gone_after_recycle_is_fail():
    out = decide(
        obs(
            path_present=False,
            path_gone_after_recycle=1,
            probes_sent=5,
            probes_ok=0,
            traceback=TRACEBACK,
        )
    )
    assert out.verdict is Verdict.FAIL
    assert "socket file gone" in out.detail
    assert "after the 1st worker restart" in out.detail
    assert "0/5 new connections" in out.detail
    # the traceback's last line, not its first
    assert "FileNotFoundError: [Errno 2] No such file or directory" in out.detail
    assert "Traceback (most recent call last)" not in out.detail
    assert out.traceback == TRACEBACK


def test_socket_file_gone_names_which_restart():
    out = decide(obs(path_present=False, path_gone_after_recycle=3, probes_sent=4, probes_ok=1))
    assert out.verdict is Verdict.FAIL
    assert "socket file gone by the 3rd worker restart" in out.detail
    assert "1/4 new connections" in out.detail


def test_socket_file_gone_without_traceback_has_no_traceback_clause():
    out = decide(obs(path_present=False, path_gone_after_recycle=1, probes_ok=0))
    assert out.verdict is Verdict.FAIL
    assert "traceback" not in out.detail


def test_recycled_and_every_probe_served_is_pass():
    out = decide(HEALTHY)
    assert out.verdict is Verdict.PASS
    assert "socket kept through 3 worker restarts" in out.detail
    assert "5/5 new connections" in out.detail


def test_pass_with_one_restart_is_singular():
    out = decide(obs(recycles=1))
    assert out.verdict is Verdict.PASS
    assert "1 worker restart;" in out.detail


def test_probes_refused_while_path_present_is_fail():
    out = decide(obs(probes_sent=5, probes_ok=2, probe_errors=("ECONNREFUSED",) * 3))
    assert out.verdict is Verdict.FAIL
    assert "refuses new connections" in out.detail
    assert "ECONNREFUSED" in out.detail
    assert "2/5 new connections" in out.detail


def test_fresh_connection_reset_while_path_present_is_error_not_fail():
    """A reset (a worker recycling at that instant) is not the path turning clients away."""
    out = decide(obs(probes_sent=5, probes_ok=4, probe_errors=("ECONNRESET",)))
    assert out.verdict is Verdict.ERROR
    assert "ECONNRESET" in out.detail and "1/5" in out.detail


def test_arbiter_dead_is_error_not_fail():
    out = decide(
        obs(arbiter_alive=False, arbiter_exit="exit status 1", path_present=False, probes_ok=0)
    )
    assert out.verdict is Verdict.ERROR
    assert "arbiter died" in out.detail
    assert "exit status 1" in out.detail


@pytest.mark.parametrize("timed_out, why", [(False, "load finished"), (True, "timed out")])
def test_no_recycle_is_error(timed_out, why):
    out = decide(obs(recycles=0, requests_ok=120, timed_out=timed_out))
    assert out.verdict is Verdict.ERROR
    assert "no worker ever recycled" in out.detail
    assert why in out.detail
    assert "120 requests" in out.detail


def test_no_recycle_is_error_even_if_the_path_vanished():
    # without a worker exit the bug was not exercised: cannot tell
    out = decide(obs(recycles=0, path_present=False, probes_ok=0))
    assert out.verdict is Verdict.ERROR


def test_no_probe_after_restarts_is_error():
    out = decide(obs(probes_sent=0, probes_ok=0))
    assert out.verdict is Verdict.ERROR


def test_keepalive_reset_during_load_is_not_evidence():
    out = decide(obs(requests_ok=590, requests_failed=10))
    assert out.verdict is Verdict.PASS


def test_compat_flag_is_carried():
    assert decide(obs(compat_used=True)).compat_used
    assert not decide(HEALTHY).compat_used


# -- combine ---------------------------------------------------------------------

PASS = Outcome(Verdict.PASS, "socket kept through 3 worker restarts; 5/5 new connections served")
FAIL = Outcome(
    Verdict.FAIL, "socket file gone after the 1st worker restart; 0/5 new connections served", "tb"
)
ERROR = Outcome(Verdict.ERROR, "no worker ever recycled (load finished after 10 requests)")


def test_combine_single_outcome_is_unchanged():
    out = combine([FAIL])
    assert out.verdict is Verdict.FAIL
    assert out.detail == FAIL.detail
    assert out.runs == (Verdict.FAIL,)


@pytest.mark.parametrize("outcome", [PASS, FAIL, ERROR])
def test_combine_agreement_keeps_the_verdict(outcome):
    out = combine([outcome] * 3)
    assert out.verdict is outcome.verdict
    assert outcome.detail in out.detail
    assert "3/3 runs" in out.detail
    assert out.runs == (outcome.verdict,) * 3


def test_combine_disagreement_is_flaky_with_counts_and_a_failing_example():
    out = combine([PASS, FAIL, PASS])
    assert out.verdict is Verdict.FLAKY
    assert "3 runs" in out.detail
    assert "2 pass" in out.detail
    assert "1 fail" in out.detail
    assert FAIL.detail in out.detail
    assert out.traceback == "tb"
    assert out.runs == (Verdict.PASS, Verdict.FAIL, Verdict.PASS)
    assert not out.verdict.testable


def test_combine_error_among_passes_is_flaky():
    out = combine([PASS, PASS, ERROR])
    assert out.verdict is Verdict.FLAKY
    assert "2 pass" in out.detail
    assert "1 error" in out.detail
    assert not out.verdict.testable


def test_combine_compat_if_any_run_used_it():
    compat = dataclasses.replace(PASS, compat_used=True)
    assert combine([PASS, compat]).compat_used


def test_combine_needs_an_outcome():
    with pytest.raises(ValueError):
        combine([])


def test_only_pass_and_fail_are_testable():
    assert Verdict.PASS.testable and Verdict.FAIL.testable
    assert not Verdict.ERROR.testable and not Verdict.FLAKY.testable

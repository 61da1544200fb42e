"""The socket-loss and keeps-serving rules: observations -> pass/fail/outage/error (pure)."""

from __future__ import annotations

import dataclasses

import pytest

from harness.model.verdict import Verdict
from harness.scenarios import keeps_serving
from harness.scenarios.socket_loss import Observation, decide

pytestmark = pytest.mark.pure

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


def test_probes_refused_while_the_file_stays_is_an_outage_not_1298():
    """#1298 is the file being unlinked; a path that stays but refuses is another problem."""
    out = decide(obs(probes_sent=5, probes_ok=2, probe_errors=("ECONNREFUSED",) * 3))
    assert out.verdict is Verdict.OUTAGE
    assert "socket file kept" in out.detail
    assert "3/5 fresh connections not served (ECONNREFUSED)" in out.detail


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


@pytest.mark.parametrize(
    "ran_out, why", [("", ""), ("load", "the run's time limit ran out during load")]
)
def test_no_recycle_is_error(ran_out, why):
    out = decide(obs(recycles=0, requests_ok=120, ran_out=ran_out))
    assert out.verdict is Verdict.ERROR
    assert "no worker ever exited (after 120 requests)" in out.detail
    assert why in out.detail
    assert ("ran out" in out.detail) is bool(ran_out)


def test_no_recycle_even_on_sigterm_says_both_triggers_were_tried():
    out = decide(obs(recycles=0, trigger="signal"))
    assert out.verdict is Verdict.ERROR
    assert "neither on max_requests nor on SIGTERM" in out.detail


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


# -- outage: the file stays, nothing answers (24.0.0) ---------------------------------

NOT_REPLACED = obs(
    recycles=3,
    exits=3,
    boots=3,
    workers=3,
    probes_sent=20,
    probes_ok=0,
    probe_errors=("timeout",) * 20,
    error_lines=("Worker (pid:12) was sent SIGKILL! Perhaps out of memory?",),
)


def test_workers_gone_and_never_replaced_is_an_outage_with_its_cause():
    out = decide(NOT_REPLACED)
    assert out.verdict is Verdict.OUTAGE
    assert "no answer within 2 s to 20/20 fresh connections after 3 worker restarts" in out.detail
    assert "3 worker exit(s), 0 worker(s) booted again" in out.detail
    assert "'Worker (pid:12) was sent SIGKILL! Perhaps out of memory?'" in out.detail


def test_an_outage_cut_by_the_time_limit_names_the_phase():
    out = decide(
        dataclasses.replace(
            NOT_REPLACED, probes_sent=3, probe_errors=("timeout",) * 3, ran_out="probes"
        )
    )
    assert out.verdict is Verdict.OUTAGE
    assert "3/3 fresh connections" in out.detail
    assert "time limit ran out during probes" in out.detail


def test_signal_trigger_is_named_in_the_evidence():
    out = decide(obs(trigger="signal"))
    assert out.verdict is Verdict.PASS
    assert "3 worker restarts (SIGTERM to each worker)" in out.detail


# -- keeps-serving: any cause of not serving is a fail --------------------------------


def test_keeps_serving_fails_on_the_outage_with_the_cause():
    out = keeps_serving.decide(NOT_REPLACED)
    assert out.verdict is Verdict.FAIL
    assert "stopped serving after 3 worker restarts" in out.detail
    assert "0 worker(s) booted again" in out.detail


def test_keeps_serving_fails_on_1298_and_names_the_missing_file():
    out = keeps_serving.decide(obs(path_present=False, probes_ok=0, probe_errors=("ENOENT",) * 5))
    assert out.verdict is Verdict.FAIL
    assert "5/5 fresh connections not served (ENOENT)" in out.detail
    assert "cause: the socket file is gone" in out.detail


def test_keeps_serving_passes_only_when_every_fresh_connection_was_served():
    assert keeps_serving.decide(HEALTHY).verdict is Verdict.PASS
    one_lost = obs(probes_ok=4, probe_errors=("ECONNRESET",))
    assert keeps_serving.decide(one_lost).verdict is Verdict.FAIL


@pytest.mark.parametrize(
    "observation",
    [Observation(booted=False, boot_error="ImportError: x"), obs(recycles=0)],
)
def test_keeps_serving_cannot_tell_without_a_boot_or_a_restart(observation):
    assert keeps_serving.decide(observation).verdict is Verdict.ERROR


WRK = {
    "requests": 37189,
    "non_2xx_3xx": 34961,
    "socket_errors": {"connect": 0, "read": 2, "write": 0, "timeout": 1},
}


def test_wrk_counts_end_the_evidence_of_a_fail_and_a_pass():
    gone = decide(obs(path_present=False, wrk=WRK))
    assert gone.verdict is Verdict.FAIL
    assert gone.detail.endswith("; wrk: 37189 requests, 34961 non-2xx, 3 socket errors")
    kept = decide(obs(wrk={**WRK, "non_2xx_3xx": 0}))
    assert kept.verdict is Verdict.PASS and "wrk: 37189 requests, 0 non-2xx" in kept.detail
    assert "wrk" not in decide(HEALTHY).detail  # the built-in load says nothing of wrk


def test_a_wrk_that_could_not_run_says_why():
    out = decide(obs(path_present=False, wrk={"error": "wrk did not finish within its bounds"}))
    assert out.detail.endswith("; wrk: wrk did not finish within its bounds")

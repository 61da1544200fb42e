"""The catalogue (harness/catalogue): each case's verdict rules on recorded observations,
the /proc and raw-HTTP helpers on real processes and sockets, and each case on its
boundary releases with a real gunicorn (one before, one inside, one after)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.catalogue import (
    keepalive_slow,
    reload_broken_app,
    reload_drops,
    reload_leak,
    respawn,
)
from harness.scenarios import fixture as life
from harness.scenarios import registry
from harness.scenarios.case import load
from tests.conftest import run_json

pytestmark = pytest.mark.pure

#: every catalogue case the registry discovers (a new file is here without a line of this test)
CASES = [c for c in registry.cases().values() if not c.builtin]


# -- every case is a usable scenario file --------------------------------------------------------
@pytest.mark.local
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_each_case_loads_as_a_scenario_file_with_its_issue_in_the_description(case):
    loaded = load(case.path)  # as a user's file too
    assert loaded.description and loaded.decide is not None
    releases, why = case.hooks.get("RELEASES", ("..", "-"))  # bench/known_regressions.py's
    assert ".." in releases and why


# -- #3648 reload_leak ----------------------------------------------------------------------------
def leak(before: tuple[int, int], after: tuple[int, int] | None, reloaded: int = 5) -> dict:
    def c(fds_threads):
        return {"fds": fds_threads[0], "threads": fds_threads[1], "children": 4, "zombies": 0}

    return {
        "hups": 5,
        "reloaded": reloaded,
        "before": c(before),
        "after": c(after) if after else None,
    }


def test_reload_leak_fails_on_the_recorded_leak_and_passes_flat_counts():
    assert reload_leak.decide(leak((12, 2), (36, 8))) == (
        "fail",
        "arbiter fds 12 -> 36, threads 2 -> 8 over 5 SIGHUPs",
    )
    assert reload_leak.decide(leak((11, 2), (15, 3)))[0] == "fail"  # a race that hit once
    assert reload_leak.decide(leak((11, 2), (11, 2)))[0] == "pass"
    assert reload_leak.decide(leak((11, 2), (12, 2)))[0] == "pass"  # one fd of noise
    assert reload_leak.decide(leak((11, 2), None))[0] == "error"
    assert reload_leak.decide(leak((11, 2), (11, 2), reloaded=1))[0] == "error"


@given(st.integers(3, 200), st.integers(1, 50), st.integers(2, 5))
def test_reload_leak_any_kept_thread_is_a_leak(fds, threads, hups):
    obs = leak((fds, threads), (fds, threads + 1), reloaded=hups)
    assert reload_leak.decide(obs)[0] == "fail"
    assert reload_leak.decide(leak((fds, threads), (fds, threads), reloaded=hups))[0] == "pass"


# -- #3394 reload_drops ---------------------------------------------------------------------------
def drops(ok: int, failed: dict[str, int], reloaded: int = 5) -> dict:
    return {"hups": 5, "reloaded": reloaded, "ok": ok, "failed": failed}


def test_reload_drops_names_the_failures_by_kind():
    verdict, evidence = reload_drops.decide(drops(3025, {"ECONNRESET": 9, "EPIPE": 1}))
    assert verdict == "fail"
    assert evidence == "10 of 3035 requests failed across 5 SIGHUPs (9 ECONNRESET, 1 EPIPE)"
    assert reload_drops.decide(drops(4145, {})) == (
        "pass",
        "0 of 4145 requests failed across 5 SIGHUPs",
    )


def test_reload_drops_gives_no_verdict_without_load_or_reloads():
    assert reload_drops.decide(drops(40, {}))[0] == "error"
    assert reload_drops.decide(drops(4000, {}, reloaded=2))[0] == "error"


@given(st.integers(reload_drops.MIN_REQUESTS, 10_000), st.integers(1, 50))
def test_reload_drops_a_single_failure_fails(ok, n):
    assert reload_drops.decide(drops(ok, {"ECONNRESET": n}))[0] == "fail"


# -- #3025 keepalive_slow -------------------------------------------------------------------------
def test_keepalive_slow_rules():
    ok = {"replies": ["HTTP 200"] * 3, "badf": [], "alive": True}
    assert keepalive_slow.decide(ok)[0] == "pass"
    reset = {
        "replies": ["HTTP 200", "ECONNRESET"],
        "badf": ["ValueError: Invalid file descriptor: -1"],
        "alive": True,
    }
    assert keepalive_slow.decide(reset) == (
        "fail",
        "replies: HTTP 200, ECONNRESET; the log says: ValueError: Invalid file descriptor: -1",
    )
    empty = {"replies": ["empty reply"], "badf": [], "alive": True}
    assert keepalive_slow.decide(empty) == (
        "fail",
        "replies on one kept-alive connection: empty reply",
    )
    badf_only = {"replies": ["HTTP 200"] * 3, "badf": ["[ERROR] [Errno 9] Bad file descriptor"]}
    assert keepalive_slow.decide(badf_only)[0] == "fail"


# -- #2244 reload_broken_app ----------------------------------------------------------------------
def test_reload_broken_app_rules():
    died = {"died": True, "noticed": True, "why": ["[INFO] Reason: Worker failed to boot."]}
    assert reload_broken_app.decide({**died, "served": False}) == (
        "fail",
        "the master died after the app got a syntax error (Reason: Worker failed to boot.)",
    )
    lived = {"died": False, "noticed": True, "why": [], "served": True}
    assert reload_broken_app.decide(lived)[0] == "pass"
    assert reload_broken_app.decide({**lived, "served": False})[0] == "fail"
    assert reload_broken_app.decide({**lived, "noticed": False})[0] == "error"


# -- respawn --------------------------------------------------------------------------------------
def kill(**over) -> dict:
    return {"victim": 101, "reaped": True, "replaced": True, "seconds": 0.2, "zombies": 0, **over}


def test_respawn_rules():
    good = {"kills": [kill(), kill(victim=102)], "probes": ["ok"] * 5, "alive": True}
    assert respawn.decide(good)[0] == "pass"
    zombie = {**good, "kills": [kill(reaped=False, replaced=False)]}
    assert respawn.decide(zombie) == ("fail", "kill 1: the worker was not reaped (a zombie)")
    assert respawn.decide({**good, "kills": [kill(replaced=False)]})[0] == "fail"
    assert respawn.decide({**good, "kills": [kill(zombies=1)]})[0] == "fail"
    assert respawn.decide({**good, "probes": ["ok", "ECONNREFUSED"]})[0] == "fail"
    assert respawn.decide({**good, "alive": False})[0] == "fail"
    assert respawn.decide({**good, "kills": [kill(victim=0)]})[0] == "error"


# -- life: /proc and raw HTTP on real processes and sockets --------------------------------------------
@pytest.mark.local
def test_counts_sees_threads_children_and_an_unreaped_zombie():
    mine = life.counts(os.getpid())
    assert mine is not None and mine.fds > 0 and mine.threads >= 1
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, daemon=True)
    t.start()
    try:
        assert life.counts(os.getpid()).threads == mine.threads + 1
    finally:
        stop.set()
        t.join()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while life.children(os.getpid()).get(child.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert life.children(os.getpid())[child.pid] == "Z"
        assert child.pid not in life.live_children(os.getpid())
        assert life.counts(os.getpid()).zombies >= 1
    finally:
        child.wait()
    assert child.pid not in life.children(os.getpid())
    assert life.counts(2**22 + 12345) is None  # beyond pid_max: gone


def test_read_reply_reads_by_content_length_and_names_an_empty_one():
    a, b = socket.socketpair()
    with a, b:
        b.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel")
        threading.Timer(0.05, b.sendall, (b"lo",)).start()
        assert life._read_reply(a, time.monotonic() + 5) == "HTTP 200"
        b.shutdown(socket.SHUT_WR)
        assert life._read_reply(a, time.monotonic() + 5) == "empty reply"


# -- each case on its boundary releases, real gunicorn ------------------------------------------------
#: case, one release before, one inside, one after, and the verdicts a user relies on
BOUNDARIES = [
    # 25.1.0 is flat too, but its fork deadlock (#3509, fixed in 25.2.0) hangs a worker at
    # boot now and then (5 of 66 boots here): an error row, whatever the leak
    (reload_leak, "25.0.0,25.2.0,26.1.0", ("pass", "fail", "pass"), ()),
    # racy: repeated, and every repeat must agree (a disagreement is an error verdict)
    (reload_drops, "20.1.0,21.0.0,25.0.0", ("pass", "fail", "pass"), ("--repeat", "2")),
    (keepalive_slow, "20.1.0,21.1.0,21.2.0", ("pass", "fail", "pass"), ()),
    (reload_broken_app, "20.0.0,20.0.4,20.1.0", ("pass", "fail", "pass"), ()),
    (respawn, "23.0.0,24.0.0,24.1.0", ("pass", "fail", "pass"), ()),
]


@pytest.mark.real
@pytest.mark.parametrize(
    "case, targets, expected, extra",
    BOUNDARIES,
    ids=[case.__name__.rsplit(".", 1)[-1] for case, *_ in BOUNDARIES],
)
def test_each_case_on_its_boundary_releases(
    case, targets, expected, extra, cache_dir, tmp_path, no_leaks
):
    report = run_json(
        targets,
        "--no-commits",
        "--scenario",
        case.__name__.rsplit(".", 1)[-1].replace("_", "-"),  # its built-in name
        *extra,
        cache_dir=cache_dir,
        results_dir=tmp_path,
    )
    verdicts = {r["target"]: r["verdict"] for r in report["rows"]}
    why = {r["target"]: (r["verdict"], r["detail"], r["traceback"]) for r in report["rows"]}
    assert verdicts == dict(zip(targets.split(","), expected)), why

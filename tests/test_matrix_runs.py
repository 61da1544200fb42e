"""Real matrix runs: worker classes x binds on gunicorn 19.6.0, real servers and sockets."""

from __future__ import annotations

import json

import pytest

from harness.provision import interpreters
from tests.conftest import run_cli, run_json

pytestmark = pytest.mark.real


def cells(report: dict) -> dict[str, dict]:
    return {r["column"]: r for r in report["rows"]}


def test_gthread_sync_by_unix_tcp_on_19_6_0(cache_dir, tmp_path, no_leaks):
    report = run_json(
        "19.6.0",
        "--worker-class",
        "gthread,sync",
        "--bind",
        "unix,tcp",
        "--no-commits",
        cache_dir=cache_dir,
        results_dir=tmp_path,
    )
    assert [c["column"] for c in report["columns"]] == [
        "gthread/unix",
        "gthread/tcp",
        "sync/unix",
        "sync/tcp",
    ]
    got = cells(report)
    assert len(report["rows"]) == 4
    for deployment, row in got.items():
        wc, bind = deployment.split("/")
        assert (row["target"], row["worker_class"], row["bind"]) == ("19.6.0", wc, bind)
    # #1298: the threaded worker unlinks the Unix socket when it exits
    fail = got["gthread/unix"]
    assert fail["verdict"] == "fail"
    assert "socket file gone" in fail["detail"]
    assert "FileNotFoundError" in fail["traceback"]
    # the sync worker (threads=1) exits without closing the listener: the file stays
    assert got["sync/unix"]["verdict"] == "pass", got["sync/unix"]["detail"]
    assert got["sync/unix"]["detail"].startswith("socket kept through")
    # TCP has no socket file to lose: the same workers keep serving
    for deployment in ("gthread/tcp", "sync/tcp"):
        assert got[deployment]["verdict"] == "pass", got[deployment]["detail"]
        assert "kept serving on TCP (no socket file to lose)" in got[deployment]["detail"]
        assert "20/20 new connections served" in got[deployment]["detail"]
    assert report["affected_by_release"] == {"19.6.0": ["gthread/unix"]}


def test_the_matrix_table_has_a_column_per_deployment(cache_dir, tmp_path, no_leaks):
    proc = run_cli(
        "19.6.0",
        "--worker-class",
        "gthread,sync",
        "--no-commits",
        "--cache-dir",
        str(cache_dir),
        "--results-dir",
        str(tmp_path),
        "-q",
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert next(ln for ln in lines if ln.startswith("release")).split() == [
        "release",
        "python",
        "gthread/unix",
        "sync/unix",
    ]
    assert next(ln for ln in lines if ln.startswith("19.6.0 ")).split()[2:] == ["FAIL", "PASS"]
    assert "gthread/unix: no change: every testable release is fail" in proc.stdout


def test_gevent_and_eventlet_over_a_unix_socket_on_19_6_0(cache_dir, tmp_path, no_leaks):
    if not any(i.version_tuple[:2] == (3, 6) for i in interpreters.discover()):
        pytest.skip("gunicorn 19.6's async workers import only on Python 3.6 (async.py)")
    report = run_json(
        "19.6.0",
        "--worker-class",
        "gevent,eventlet",
        "--no-commits",
        cache_dir=cache_dir,
        results_dir=tmp_path,
    )
    got = cells(report)
    gevent, eventlet = got["gevent/unix"], got["eventlet/unix"]
    for row, name in ((gevent, "gevent"), (eventlet, "eventlet")):
        assert row["worker_class"] == name  # what gunicorn's log says it ran
        assert row["python"].startswith("3.6.")
        # every newer Python was turned away with a reason: no wheel, or async.py
        assert any("SyntaxError" in t for t in row["tried"])
    assert gevent["gevent"] == "21.12.0"  # the newest gevent < 22 with a cp36 wheel
    assert gevent["greenlet"] and gevent["zope.interface"]
    assert any("no gevent<22,>=1.4 wheel" in t for t in gevent["tried"])
    assert eventlet["eventlet"] == "0.30.2"  # the newest before ALREADY_HANDLED went away
    assert eventlet["dnspython"].startswith("1.")  # eventlet 0.30.2 asks dnspython < 2
    # observed here: gevent keeps the socket file, eventlet loses it like gthread
    assert gevent["verdict"] == "pass", gevent["detail"]
    assert eventlet["verdict"] == "fail", eventlet["detail"]
    assert "socket file gone" in eventlet["detail"]
    assert "FileNotFoundError" in eventlet["traceback"]


def test_a_worker_class_without_any_wheel_is_an_error_row(cache_dir, tmp_path, no_leaks):
    proc = run_cli(
        "19.6.0",
        "--worker-class",
        "sync,gevent",
        "--python",
        "3.13",
        "--no-commits",
        "--format",
        "json",
        "--cache-dir",
        str(cache_dir),
        "--results-dir",
        str(tmp_path),
    )
    # 19.6.0 cannot run on 3.13 in either column: a table of errors is no answer (125)
    assert proc.returncode == 125, proc.stderr
    assert "inconclusive: no release could be tested" in proc.stderr
    report = json.loads(proc.stdout)
    row = cells(report)["gevent/unix"]
    assert row["verdict"] == "error"
    assert "no gevent<22,>=1.4 wheel on the index for CPython 3.13" in row["detail"]

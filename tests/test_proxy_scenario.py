"""The report's own stack: a real h2o or nginx in front of a real gunicorn on a Unix
socket, counting what the proxy answers (the report saw 502s from h2o)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from harness.host import proxy
from tests.conftest import ROOT, alive, gunicorn_pids, parent_of, run_json

pytestmark = pytest.mark.real


def _need(kind: str) -> None:
    try:
        proxy.find_binary(kind)
    except proxy.ProxyMissing as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("kind", proxy.KINDS)
def test_only_19_6_0_gets_bad_gateway_through_a_real_proxy(kind, cache_dir, tmp_path, no_leaks):
    _need(kind)
    report = run_json(
        "19.5.0..19.7.0", "--no-commits", "--proxy", kind, cache_dir=cache_dir, results_dir=tmp_path
    )
    rows = {r["target"]: r for r in report["rows"]}
    assert {t: r["verdict"] for t, r in rows.items()} == {
        "19.5.0": "pass",
        "19.6.0": "fail",
        "19.7.0": "pass",
    }
    for r in rows.values():
        assert r["proxy"] == kind
    assert rows["19.6.0"]["proxy_statuses"] == {"502": 20}
    assert f"{kind} answered 502 Bad Gateway to 20/20 requests" in rows["19.6.0"]["detail"]
    for good in ("19.5.0", "19.7.0"):
        assert rows[good]["proxy_statuses"] == {"200": 20}, rows[good]
        assert f"{kind} answered 200 to 20/20 requests" in rows[good]["detail"]


@pytest.mark.parametrize(("release", "verdict"), [("19.5.0", "pass"), ("19.6.0", "fail")])
def test_soak_through_h2o_no_false_502_and_no_flipped_verdict(
    release, verdict, cache_dir, tmp_path
):
    """20 runs per release: every fresh request on a good release is a 200 (h2o's upstream
    keep-alive, which gives false 502s, is off), and no verdict flips."""
    _need("h2o")
    report = run_json(
        release,
        "--no-commits",
        "--proxy",
        "h2o",
        "--repeat",
        "20",
        cache_dir=cache_dir,
        results_dir=tmp_path,
    )
    (row,) = report["rows"]
    assert row["verdict"] == verdict, row["detail"]
    assert row["runs"] == [verdict] * 20
    if verdict == "pass":
        assert row["proxy_statuses"] == {"200": 400}  # 20 runs x 20 fresh requests
    else:
        assert row["proxy_statuses"] == {"502": 400}


def test_the_reports_workaround_tcp_keeps_serving_on_19_6_0(cache_dir, tmp_path, no_leaks):
    report = run_json(
        "19.6.0", "--no-commits", "--bind", "tcp", cache_dir=cache_dir, results_dir=tmp_path
    )
    (row,) = report["rows"]
    assert row["verdict"] == "pass", row["detail"]
    assert row["bind"] == "tcp"
    assert row["detail"].startswith(
        "kept serving on TCP (no socket file to lose) through 3 worker restarts"
    )


def test_an_interrupted_run_leaves_no_proxy_behind(cache_dir, tmp_path):
    _need("h2o")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bisect.py"),
            "19.5.0",
            "--no-commits",
            "--proxy",
            "h2o",
            "--repeat",
            "50",
            "--cache-dir",
            str(cache_dir),
            "--results-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        proxies: set[int] = set()
        while time.monotonic() < deadline and not proxies:
            proxies = {p for p in gunicorn_pids() if _is_h2o(p) and parent_of(p) == proc.pid}
            time.sleep(0.02)
        assert proxies, "h2o never started"
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    time.sleep(0.2)
    assert not [p for p in proxies if alive(p)], "h2o outlived the interrupted run"


def _is_h2o(pid: int) -> bool:
    try:
        return b"h2o" in open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[0]
    except OSError:
        return False


def test_a_missing_proxy_is_one_line_saying_how_to_install_it(tmp_path):
    with pytest.raises(proxy.ProxyMissing) as err:
        proxy.find_binary("h2o", path=str(tmp_path))
    assert str(err.value) == "h2o not found: install it with `apt-get install h2o`"


SERVER_HEADER = '''\
"""The Server header through the proxy in front."""


def check(server):
    got = server.get().headers.get("Server", "")
    return ("pass" if got.startswith("nginx") else "fail"), f"Server: {got}"
'''


def test_a_catalogue_case_and_a_file_run_behind_a_real_nginx(cache_dir, tmp_path, no_leaks):
    """One lifecycle for every case: --proxy starts nginx for the catalogue's respawn and
    for a user's file (its requests go through it), where it used to be ignored."""
    _need("nginx")
    report = run_json(
        "23.0.0",
        "--no-commits",
        *("--scenario", "respawn", "--proxy", "nginx"),
        cache_dir=cache_dir,
        results_dir=tmp_path / "respawn",
    )
    (row,) = report["rows"]
    assert (row["verdict"], row["proxy"]) == ("pass", "nginx"), row["detail"]
    assert report["scenario"]["parameters"]["proxy"] == "nginx"
    path = tmp_path / "server_header.py"
    path.write_text(SERVER_HEADER)
    report = run_json(
        "23.0.0",
        "--no-commits",
        *("--scenario", str(path), "--proxy", "nginx"),
        cache_dir=cache_dir,
        results_dir=tmp_path / "file",
    )
    (row,) = report["rows"]
    assert row["verdict"] == "pass" and row["detail"].startswith("Server: nginx"), row["detail"]

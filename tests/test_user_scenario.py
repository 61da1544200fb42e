"""A user's scenario file (--scenario FILE.py): the #1298 example, the fixture API,
a function that raises or hangs, and every way a file can be unusable."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import pytest

from harness.model.verdict import Verdict
from harness.scenarios.lifecycle import Observation, decide
from tests.conftest import ROOT, check_with_scenario, gunicorn_pids, run_cli, run_json

pytestmark = pytest.mark.local

EXAMPLE = ROOT / "examples" / "issue_1298.py"


def write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def servers_from(cache_dir: Path) -> list[int]:
    """Harness-started processes running from this cache's environments (other runs on
    the machine, with caches of their own, are not this test's business)."""
    found = []
    for pid in gunicorn_pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        if str(cache_dir).encode() in cmdline:
            found.append(pid)
    return found


def one_line_usage_error(proc) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("bisect.py: error: ")
    return lines[0]


# -- the example file reproduces the built-in scenario's table ---------------------------------
@pytest.mark.real
def test_the_1298_example_pins_the_regression_and_the_fix(cache_dir, tmp_path, no_leaks):
    report = run_json(
        "19.5.0..19.7.0",
        "--no-commits",
        "--scenario",
        "examples/issue_1298.py",
        cache_dir=cache_dir,
        results_dir=tmp_path,
    )
    rows = {r["target"]: r for r in report["rows"]}
    assert {t: r["verdict"] for t, r in rows.items()} == {
        "19.5.0": "pass",
        "19.6.0": "fail",
        "19.7.0": "pass",
    }
    assert "socket file gone" in rows["19.6.0"]["detail"]
    assert "20/20 new connections served" in rows["19.5.0"]["detail"]
    assert all(r.get("bottle") == "0.12.13" for r in rows.values())  # REQUIRES' pin
    scenario = report["scenario"]
    assert scenario["file"] == "examples/issue_1298.py"
    assert scenario["sha256"] == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert "#1298" in scenario["summary"]


# -- what check() does, judged -----------------------------------------------------------------
@pytest.mark.real
def test_the_fixture_api_signals_a_worker_and_sees_it_replaced(cache_dir, tmp_path, no_leaks):
    scenario = write(
        tmp_path,
        "replace.py",
        '''\
        """SIGTERM one worker; the arbiter replaces it."""
        import os, signal

        SETTINGS = {"workers": 2, "max_requests": 0}
        BIND = "tcp"


        def check(server):
            problems = []
            r = server.get("/")
            if (r.status_code, r.text) != (200, "Hello World"):
                problems.append(f"GET / -> {r.status_code} {r.text!r}")
            if server.socket_path is not None or not server.port:
                problems.append(f"tcp: socket_path={server.socket_path} port={server.port}")
            if server.setting("workers") != 2:
                problems.append(f"setting(workers)={server.setting('workers')!r}")
            before = server.worker_pids()
            if len(before) != 2 or server.boots != 2 or server.exits != 0:
                problems.append(f"start: workers={before} boots={server.boots} exits={server.exits}")
            victim = before[0]
            if not server.signal(victim, signal.SIGTERM):
                problems.append("signal() said the worker was gone")
            if not server.wait_for(lambda: server.exits > 0, timeout=10):
                problems.append(f"no exit logged: {server.log[-300:]!r}")
            if not server.wait_for(lambda: len(server.worker_pids()) == 2, timeout=10):
                problems.append(f"not replaced: {server.worker_pids()}")
            after = server.worker_pids()
            try:
                server.signal(os.getpid())
                problems.append("signal() accepted a pid that is not the server's")
            except ValueError:
                pass
            if not server.alive() or server.arbiter_pid is None:
                problems.append("arbiter gone")
            if server.probe() != "ok":
                problems.append(f"probe: {server.probe()}")
            if problems:
                return "fail", "; ".join(problems)
            return "pass", f"worker {victim} exited ({server.exits} exit); workers now {len(after)}, {victim} not among them: {victim not in after}"
        ''',
    )
    proc = check_with_scenario("19.5.0", scenario, cache_dir, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "19.5.0: pass" in proc.stdout
    assert "exited (1 exit); workers now 2" in proc.stdout
    assert "not among them: True" in proc.stdout


@pytest.mark.real
def test_an_exception_in_check_is_error_with_its_last_line(cache_dir, tmp_path, no_leaks):
    scenario = write(
        tmp_path,
        "raises.py",
        """\
        def check(server):
            return len(server.get("/").status_code)
        """,
    )
    proc = check_with_scenario("19.5.0", scenario, cache_dir, tmp_path)
    assert proc.returncode == 125, proc.stdout + proc.stderr  # cannot tell
    assert "19.5.0: error" in proc.stdout
    assert "check() raised TypeError: object of type 'int' has no len()" in proc.stdout


@pytest.mark.real
def test_a_return_value_that_is_not_a_verdict_is_error(cache_dir, tmp_path, no_leaks):
    scenario = write(tmp_path, "returns.py", "def check(server):\n    return True\n")
    proc = check_with_scenario("19.5.0", scenario, cache_dir, tmp_path)
    assert proc.returncode == 125, proc.stdout + proc.stderr
    assert "check() returned True: expected ('pass'|'fail'|'error', 'evidence')" in proc.stdout


@pytest.mark.real
def test_a_check_that_hangs_runs_out_and_leaves_nothing_behind(cache_dir, tmp_path, no_leaks):
    scenario = write(
        tmp_path,
        "hangs.py",
        """\
        import time

        def check(server):
            time.sleep(600)
        """,
    )
    proc = check_with_scenario("19.5.0", scenario, cache_dir, tmp_path, "--timeout", "3")
    assert proc.returncode == 125, proc.stdout + proc.stderr
    assert "19.5.0: error" in proc.stdout
    assert "ran out after 3 s" in proc.stdout
    assert not servers_from(cache_dir)  # the server was killed, not left serving


@pytest.mark.real
def test_wait_for_ends_with_the_run(cache_dir, tmp_path, no_leaks):
    """A check() waiting on something that never happens is stopped at the deadline,
    even when it catches every Exception."""
    scenario = write(
        tmp_path,
        "waits.py",
        """\
        def check(server):
            try:
                server.wait_for(lambda: False, timeout=600)
            except Exception:
                return "pass", "wait_for was swallowed"
            return "pass", "wait_for returned"
        """,
    )
    proc = check_with_scenario("19.5.0", scenario, cache_dir, tmp_path, "--timeout", "3")
    assert proc.returncode == 125, proc.stdout + proc.stderr
    assert "ran out after 3 s" in proc.stdout


# -- unusable files: one line, exit 2, before anything is built --------------------------------
def test_a_missing_file_is_a_usage_error(tmp_path):
    line = one_line_usage_error(run_cli("--check", "19.5.0", "--scenario", "nowhere/s.py"))
    assert "scenario file nowhere/s.py: no such file" in line


def test_a_file_without_the_function_is_a_usage_error(tmp_path):
    path = write(tmp_path, "nofunc.py", '"""Nothing to call."""\nSETTINGS = {}\n')
    line = one_line_usage_error(run_cli("--check", "19.5.0", "--scenario", str(path)))
    assert "defines no function check(server)" in line


def test_a_syntax_error_is_a_usage_error_with_its_line(tmp_path):
    path = write(tmp_path, "syntax.py", "def check(server):\n    return 'pass',\nif\n")
    line = one_line_usage_error(run_cli("--check", "19.5.0", "--scenario", str(path)))
    assert "syntax error at line 3" in line


def test_a_file_that_does_not_import_is_a_usage_error(tmp_path):
    path = write(tmp_path, "imports.py", "import no_such_module_here\ndef check(s): pass\n")
    line = one_line_usage_error(run_cli("--check", "19.5.0", "--scenario", str(path)))
    assert "does not import (line 1): ModuleNotFoundError: No module named" in line


@pytest.mark.parametrize(
    "body, message",
    [
        ("SETTINGS = [1]\n", "SETTINGS must be a dict"),
        ("SETTINGS = {'bind': 'x'}\n", "SETTINGS may not set bind"),
        ("BIND = 'udp'\n", "BIND must be 'unix' or 'tcp'"),
        ("REQUIRES = ['pkg @ https://example.org/pkg.whl']\n", "direct URLs are not supported"),
        ("REQUIRES = ['flask ===']\n", "REQUIRES 'flask ==='"),
        ("def check(): pass\n", "check() must take one argument"),
        ("ID = 'GHSA-1\\nforged: yes'\n", "ID must be one word"),
    ],
)
def test_bad_definitions_are_usage_errors(tmp_path, body, message):
    path = write(tmp_path, "bad.py", "def check(server): pass\n" + body)
    line = one_line_usage_error(run_cli("--check", "19.5.0", "--scenario", str(path)))
    assert message in line


def test_a_scenario_file_and_run_cmd_together_are_a_usage_error(tmp_path):
    line = one_line_usage_error(
        run_cli("--check", "19.5.0", "--scenario", str(EXAMPLE), "--run", "true")
    )
    assert "either --run CMD or --scenario" in line


# -- the rules, pure ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "returned, verdict",
    [
        (("pass", "ok"), Verdict.PASS),
        (["FAIL", "gone"], Verdict.FAIL),
        (("error", "cannot tell"), Verdict.ERROR),
        (("outage", "x"), Verdict.ERROR),
        (("pass",), Verdict.ERROR),
        ("pass", Verdict.ERROR),
        (("pass", 3), Verdict.ERROR),
        (None, Verdict.ERROR),
    ],
)
def test_only_a_verdict_and_evidence_count(returned, verdict):
    assert decide(Observation(True, returned=returned)).verdict is verdict


def test_multi_line_evidence_becomes_one_line():
    out = decide(Observation(True, returned=("fail", "socket gone\n  after 1 exit\n")))
    assert out.detail == "socket gone; after 1 exit"


def test_evidence_of_50_mb_is_one_bounded_row():
    out = decide(Observation(True, returned=("fail", "x" * 50_000_000)))
    assert out.verdict is Verdict.FAIL and len(out.detail) < 10_000
    assert out.detail.endswith("(49991808 more characters not kept)")


def test_ran_out_wins_over_what_was_returned():
    out = decide(Observation(True, returned=("pass", "x"), ran_out=3.0))
    assert (out.verdict, out.detail.split(":")[0]) == (Verdict.ERROR, "ran out after 3 s")


@pytest.mark.real
def test_a_check_that_prints_leaves_the_json_report_whole(cache_dir, tmp_path, no_leaks):
    """print() in check() goes to stderr: stdout holds the report and nothing else."""
    scenario = write(
        tmp_path,
        "chatty.py",
        """\
        import subprocess

        def check(server):
            print("debugging: status", server.get("/").status_code)
            subprocess.run(["echo", "from a program check() started"])  # fd 1, not sys.stdout
            return "pass", "answered"
        """,
    )
    proc = run_cli(
        "19.5.0", "--scenario", str(scenario), "--format", "json", "--no-commits",
        "--cache-dir", str(cache_dir), "--results-dir", str(tmp_path / "results"), timeout=120,
    )  # fmt: skip
    report = json.loads(proc.stdout)  # the whole of stdout is one JSON document
    assert [r["verdict"] for r in report["rows"]] == ["pass"]
    assert "debugging: status 200" in proc.stderr
    assert "from a program check() started" in proc.stderr


@pytest.mark.real
def test_os_exit_in_check_is_an_error_row_and_the_run_goes_on(cache_dir, tmp_path, no_leaks):
    """The harness does not vanish with check(): the row says what happened, the record is
    written, and the report ends as any all-error report does."""
    scenario = write(
        tmp_path,
        "exits.py",
        """\
        import os

        def check(server):
            os._exit(3)
        """,
    )
    proc = check_with_scenario("19.5.0", scenario, cache_dir, tmp_path)
    assert proc.returncode == 125, proc.stdout + proc.stderr
    assert "19.5.0: error" in proc.stdout
    assert "check() called os._exit(3)" in proc.stdout
    assert not servers_from(cache_dir)


@pytest.mark.real
def test_threads_a_check_leaves_spinning_are_stopped_before_the_next_row(
    cache_dir, tmp_path, no_leaks
):
    """Row one's check spins (catching Exception) and starts a spinning thread, and runs
    out; row two's check counts the spinners still alive in the harness: none."""
    marker = tmp_path / "first-done"
    scenario = write(
        tmp_path,
        "spins.py",
        f"""\
        import threading
        from pathlib import Path

        MARK = Path({str(marker)!r})

        def spin():
            while True:
                try:
                    sum(range(1000))
                except Exception:
                    pass

        def check(server):
            if MARK.exists():
                left = [t for t in threading.enumerate() if t.name == "spinner"]
                return "pass", f"{{len(left)}} spinner(s) still running"
            MARK.touch()
            threading.Thread(target=spin, name="spinner", daemon=True).start()
            spin()
        """,
    )
    report = run_json(
        "19.5.0,19.9.0", "--no-commits", "-j", "1", "--scenario", str(scenario),
        "--timeout", "3", cache_dir=cache_dir, results_dir=tmp_path / "results",
    )  # fmt: skip
    details = [r["detail"] for r in report["rows"]]
    assert "ran out after 3 s" in details[0], details
    assert details[1] == "0 spinner(s) still running", details


OBSERVE_DECIDE = """\
def observe(server):
    return {"served": server.probe()}


def decide(obs):
    if obs is None:
        return "error", "nothing observed"
    return ("pass" if obs["served"] == "ok" else "fail"), f"served: {obs['served']}"
"""


def test_a_file_may_observe_and_decide_and_decide_is_pure(tmp_path):
    """The catalogue's form in a user's file: decide judges what observe returned (None
    included), the lifecycle's rules judge a run that never got that far."""
    from harness.scenarios import registry
    from harness.scenarios.base import Options

    sc = registry.create(str(write(tmp_path, "od.py", OBSERVE_DECIDE)), Options())
    assert sc.decide(Observation(True, returned={"served": "ok"})).verdict is Verdict.PASS
    assert sc.decide(Observation(True, returned={"served": "ENOENT"})).detail == "served: ENOENT"
    assert sc.decide(Observation(True, returned=None)).detail == "nothing observed"
    out = sc.decide(Observation(True, returned={}))  # decide raised KeyError
    assert out.verdict is Verdict.ERROR and out.detail.startswith("decide() raised KeyError")
    out = sc.decide(Observation(True, raised="OSError: x"))
    assert out.detail == "observe() raised OSError: x"
    out = sc.decide(Observation(True, unhealthy="your app answers HTTP 500 on / before ..."))
    assert out.verdict is Verdict.ERROR and "HTTP 500" in out.detail

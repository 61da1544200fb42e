"""``--run CMD``: the user's own check, judged by its exit status like ``git bisect run``.

The rules (``decide``) are tested on their own; everything else runs ``python
bisect.py --run ...`` for real: real environments, real gunicorn processes started by
the user's command, real process cleanup.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.model.verdict import Verdict
from harness.scenarios import registry as command
from harness.scenarios.base import Options, ScenarioError
from harness.scenarios.registry import CommandScenario, Observation, decide, output_tail
from tests.conftest import ROOT, alive, run_cli, run_json

pytestmark = pytest.mark.pure

EXAMPLE = "./examples/check_socket_survives.sh"


# -- the rules ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "obs, verdict, detail",
    [
        (Observation(0, tail="Server: gunicorn"), Verdict.PASS, "exit 0: Server: gunicorn"),
        (Observation(1, tail="Server: gunicorn"), Verdict.FAIL, "exit 1: Server: gunicorn"),
        (Observation(127, tail="sh: 1: nope: not found"), Verdict.FAIL, "exit 127: sh: 1:"),
        (Observation(125, tail="no boot"), Verdict.ERROR, "cannot tell (exit 125): no boot"),
        (Observation(128), Verdict.ERROR, "exit 128 (no output)"),
        (Observation(139, tail="x"), Verdict.ERROR, "exit 139: x"),
        (Observation(None, signal=9), Verdict.ERROR, "killed by SIGKILL (no output)"),
        (Observation(None, signal=15, tail="bye"), Verdict.ERROR, "killed by SIGTERM: bye"),
        # a real-time signal between SIGRTMIN and SIGRTMAX has no name of its own
        (Observation(None, signal=36), Verdict.ERROR, "killed by signal 36 (no output)"),
        (Observation(None, timed_out=True, seconds=20.0), Verdict.ERROR, "ran out after 20 s"),
        (Observation(None, launch_error="No such file"), Verdict.ERROR, "could not start"),
    ],
)
def test_decide_follows_git_bisect_run(obs: Observation, verdict: Verdict, detail: str) -> None:
    decision = decide(obs)
    assert decision.verdict is verdict
    assert decision.detail.startswith(detail)


def test_a_timeout_wins_over_the_status_of_the_killed_shell() -> None:
    obs = Observation(0, timed_out=True, seconds=3.0, tail="still waiting")
    assert decide(obs).verdict is Verdict.ERROR
    assert decide(obs).detail == "ran out after 3 s: still waiting"


def test_evidence_is_the_last_non_empty_lines_on_one_short_line() -> None:
    text = "boot\n\nwarming up\n  Server: gunicorn  \n\nthe socket survived\n\n"
    assert output_tail(text) == "warming up | Server: gunicorn | the socket survived"
    long = output_tail("x" * 1000 + "\nend")
    assert len(long) == 300 and long.startswith("...") and long.endswith(" | end")
    assert output_tail("") == ""


# -- the command and its record ----------------------------------------------------------
def test_a_relative_script_is_recorded_with_its_sha256(tmp_path: Path) -> None:
    script = tmp_path / "check.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    scenario = CommandScenario(Options(run="./check.sh --strict"), origin=tmp_path)
    record = scenario.about().record
    assert record["name"] == "run"
    assert record["command"] == "./check.sh --strict"
    assert record["file"] == str(script.resolve())
    assert len(record["sha256"]) == 64
    # CMD runs in a private directory: the script is called by its absolute path
    assert scenario.shell_command == f"{script.resolve()} --strict"
    assert scenario.about().parameters == {"command": "./check.sh --strict", "timeout": 20.0}


def test_a_plain_command_has_no_file_in_its_record(tmp_path: Path) -> None:
    record = CommandScenario(Options(run="curl -sI x | grep -q y"), origin=tmp_path).about().record
    assert record["command"] == "curl -sI x | grep -q y"
    assert "file" not in record and "sha256" not in record


@pytest.mark.parametrize(
    "command, phrase",
    [
        ("./missing.sh", "--run: ./missing.sh: no such file"),
        ("./plain.txt", "--run: ./plain.txt: not executable"),
        ("   ", "--run needs a command"),
    ],
)
def test_a_script_that_cannot_run_is_a_usage_error(tmp_path: Path, command, phrase) -> None:
    (tmp_path / "plain.txt").write_text("exit 0\n")
    with pytest.raises(ScenarioError, match=phrase):
        CommandScenario(Options(run=command), origin=tmp_path)


# -- usage errors through the CLI --------------------------------------------------------
@pytest.mark.local
@pytest.mark.parametrize(
    "args, phrase",
    [
        (("--run", "true", "--scenario", "keeps-serving"), "either --run CMD or --scenario"),
        (("--run", ""), "--run needs a command"),
        (("--run", "./no-such-check.sh"), "--run: ./no-such-check.sh: no such file"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args, phrase, tmp_path: Path) -> None:
    proc = run_cli("19.5.0", *args, "--cache-dir", str(tmp_path / "cache"), timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and phrase in lines[0], proc.stderr
    assert proc.stdout == ""


# -- real runs ---------------------------------------------------------------------------


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


# The README's example: gunicorn's Server header over a Unix socket, standard library
# only.  Changed in 20.1.0: "gunicorn/20.0.4" became "gunicorn".
SERVER_HEADER_CHECK = ROOT / "examples" / "check_server_header.sh"


@pytest.mark.real
def test_terms_name_the_release_where_the_server_header_changed(
    tmp_path: Path, cache_dir: Path, no_leaks
) -> None:
    check = SERVER_HEADER_CHECK
    proc = run_cli(
        "20.0.4,20.1.0",
        "--run",
        str(check),
        "--terms",
        "versioned,bare",
        "--cache-dir",
        str(cache_dir),
        "--results-dir",
        str(tmp_path / "results"),
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"scenario: run: {check}" in out
    rows = {ln.split()[0]: ln.split() for ln in out.splitlines() if ln.startswith("20.")}
    assert rows["20.0.4"][2] == "VERSIONED"
    assert "exit 0: Server: gunicorn/20.0.4" in out
    assert rows["20.1.0"][2] == "BARE"
    assert "exit 1: Server: gunicorn" in out
    assert "versioned -> bare: changed in 20.1.0 (last versioned 20.0.4)" in out
    (record,) = (tmp_path / "results").glob("*.json")
    scenario = json.loads(record.read_text())["scenario"]
    assert scenario["name"] == "run" and scenario["file"] == str(check.resolve())


@pytest.mark.real
def test_the_example_check_names_the_planted_commits(
    gunicorn_history, cache_dir: Path, tmp_path: Path, no_leaks
) -> None:
    """The commit where the check's answer changes, with the unbootable one healed."""
    h = gunicorn_history
    report = run_json(
        "19.5.0..19.7.0",
        "--run",
        EXAMPLE,
        "--terms",
        "kept,unlinked",
        "--repo",
        str(h.path),
        cache_dir=cache_dir,
        results_dir=tmp_path,
    )
    verdicts = {r["target"]: (r["verdict"], r["detail"]) for r in report["rows"]}
    assert verdicts["19.5.0"][0] == "pass"
    assert verdicts["19.6.0"][0] == "fail"
    assert verdicts["19.6.0"][1].startswith("exit 1: Server: gunicorn/19.6.0 | the socket file")
    assert verdicts["19.7.0"][0] == "pass"
    assert report["terms"] == ["kept", "unlinked"]
    regression = report["regressions"][0]["commit"]
    assert (regression["status"], regression["sha"]) == ("found", h.regression)
    assert regression["needed"] == [h.repair]  # b2 cannot boot: tested with b3 on top
    steps = {(s["sha"], s["picked"]): s["verdict"] for s in regression["steps"]}
    assert steps.get((h.regression, None)) == "error"
    assert steps[(h.regression, h.repair)] == "fail"
    fix = report["fixes"][0]["commit"]
    assert (fix["status"], fix["sha"]) == ("found", h.fix)


@pytest.mark.real
def test_the_environment_is_the_targets(tmp_path: Path, cache_dir: Path) -> None:
    seen = tmp_path / "seen"
    command = (
        'printf "%s\\n" "$GUNICORN_BISECT_TARGET" "[$GUNICORN_BISECT_SHA]" '
        '"$GUNICORN_BISECT_PYTHON" "$(command -v python)" "$(command -v gunicorn)" '
        '"$VIRTUAL_ENV" "$PWD" "$(stat -c %a "$PWD")" "${PYTHONPATH-unset}" "$GUNICORN_BISECT_ORIGIN" '
        f'"$(python -c "import gunicorn; print(gunicorn.__version__)")" > {seen}'
    )
    proc = run_cli(
        "--check",
        "19.5.0",
        "--run",
        command,
        "--cache-dir",
        str(cache_dir),
        env={**os.environ, "PYTHONPATH": str(tmp_path / "harness-only")},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    target, sha, python, which_python, which_gunicorn, venv, pwd, mode, path, origin, version = (
        seen.read_text().splitlines()
    )
    assert (target, sha, version) == ("19.5.0", "[]", "19.5.0")
    assert which_python == str(Path(venv) / "bin" / "python")
    assert which_gunicorn == str(Path(venv) / "bin" / "gunicorn")
    assert Path(python).parent == Path(venv) / "bin"
    assert mode == "700"
    assert "harness-only" not in path  # unset, or the compat shim's directory only
    assert origin == str(ROOT)  # where bisect.py was started (run_cli's cwd)
    assert not Path(pwd).exists()  # the private directory is gone after the row


@pytest.mark.real
@pytest.mark.parametrize(
    "command, status, evidence",
    [
        ("echo fine; exit 0", 0, "exit 0: fine"),
        ("echo changed; exit 3", 1, "exit 3: changed"),
        ("echo no idea; exit 125", 125, "cannot tell (exit 125): no idea"),
        ("echo crash; exit 139", 125, "exit 139: crash"),
        ("echo bye; kill -KILL $$", 125, "killed by SIGKILL: bye"),
    ],
)
def test_check_maps_exit_statuses_for_git_bisect_run(
    command, status, evidence, cache_dir: Path
) -> None:
    proc = run_cli("--check", "19.5.0", "--run", command, "--cache-dir", str(cache_dir))
    assert proc.returncode == status, proc.stdout + proc.stderr
    verdict = {0: "pass", 1: "fail", 125: "error"}[status]
    assert proc.stdout.startswith(f"19.5.0: {verdict} (Python ")
    assert proc.stdout.rstrip().endswith(f": {evidence}")


# Fails when anything an earlier row started is still alive, then leaves three things
# running itself: the next row (or the test) is the judge.
LEAVES_PROCESSES_BEHIND = """\
for pid in $(cat "$PIDS" 2>/dev/null); do
    [ -r "/proc/$pid/stat" ] || continue
    state=$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f1)
    [ "$state" = Z ] || { echo "left over from an earlier row: $pid"; exit 1; }
done
cat > app.py <<'EOF'
def app(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
EOF
sleep 300 &
echo $! >> "$PIDS"
setsid sleep 301 &  # leaves the process group: only the token sweep finds it
echo $! >> "$PIDS"
gunicorn --bind "unix:$PWD/s.sock" --workers 2 app:app >gunicorn.log 2>&1 &
echo $! >> "$PIDS"
i=0
while [ ! -S s.sock ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -S s.sock ] || exit 125
sleep 0.5
grep -h "Booting worker with pid" gunicorn.log | sed 's/.*pid: //' >> "$PIDS"
echo "left $(wc -l < "$PIDS") things running"
"""


@pytest.mark.real
def test_nothing_the_command_started_outlives_the_row(
    tmp_path: Path, cache_dir: Path, no_leaks
) -> None:
    """Row 2 fails if row 1's sleeps, daemon or gunicorn are still alive when it starts."""
    pids = tmp_path / "pids"
    check = _script(tmp_path / "leave.sh", LEAVES_PROCESSES_BEHIND)
    report = run_json(
        "19.5.0,19.6.0",
        "--run",
        str(check),
        "-j",
        "1",
        cache_dir=cache_dir,
        results_dir=tmp_path,
        env={**os.environ, "PIDS": str(pids)},
    )
    assert [(r["verdict"], r["detail"]) for r in report["rows"]] == [
        ("pass", "exit 0: left 5 things running"),
        ("pass", "exit 0: left 10 things running"),
    ]
    started = [int(p) for p in pids.read_text().split()]
    assert [p for p in started if alive(p)] == []
    # and no process carrying a run token (the no_leaks fixture allows for other sessions)


@pytest.mark.real
def test_a_command_that_hangs_runs_out_and_is_killed(
    tmp_path: Path, cache_dir: Path, no_leaks
) -> None:
    pids = tmp_path / "pids"
    report = run_json(
        "19.5.0",
        "--run",
        f"echo $PWD > {tmp_path}/cwd; sleep 600 & echo $! > {pids}; echo waiting; sleep 600",
        "--timeout",
        "3",
        cache_dir=cache_dir,
        results_dir=tmp_path,
        status=125,  # the one row is an error: no answer
    )
    (row,) = report["rows"]
    assert row["verdict"] == "error"
    assert row["detail"] == "ran out after 3 s: waiting"
    assert not alive(int(pids.read_text()))
    assert not Path((tmp_path / "cwd").read_text().strip()).exists()


@pytest.mark.real
def test_ctrl_c_stops_the_command_and_everything_it_started(
    tmp_path: Path, cache_dir: Path, no_leaks
) -> None:
    pids = tmp_path / "pids"
    cli = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bisect.py"),
            "--check",
            "19.5.0",
            "--run",
            f"echo $PWD > {tmp_path}/cwd; sleep 600 & echo $! > {pids}; sleep 600",
            "--cache-dir",
            str(cache_dir),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300  # environment reuse; a hang guard, not a timing check
        while not (pids.exists() and pids.read_text().strip()):
            assert cli.poll() is None, cli.communicate()
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.05)
        cli.send_signal(signal.SIGINT)
        out, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not alive(int(pids.read_text()))
    assert not Path((tmp_path / "cwd").read_text().strip()).exists()


@pytest.mark.real
def test_a_command_broken_the_same_way_everywhere_is_one_usage_line(
    tmp_path: Path, cache_dir: Path, no_leaks
) -> None:
    """`sh x.sh` from the wrong directory: every row "cannot open", which is no "no change"."""
    proc = run_cli(
        "19.5.0,19.6.0",
        "--run",
        "sh no-such-script.sh",
        "--no-commits",
        "--cache-dir",
        str(cache_dir),
        "--results-dir",
        str(tmp_path),
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "fails the same way on every target" in line and "no-such-script.sh" in line
    assert "no change" not in proc.stdout


@pytest.mark.real
def test_escapes_in_a_commands_output_never_reach_the_terminal_or_the_markdown(
    tmp_path: Path, cache_dir: Path
) -> None:
    """A check that prints a terminal title, a colour and a screen clear: the row keeps its
    words, and neither the table nor the markdown report carries an escape."""
    cmd = r"printf '\033]0;pwned\007\033[31mred alert\033[0m\033[2J\n'; exit 1"
    check = run_cli("--check", "19.6.0", "--run", cmd, "--cache-dir", str(cache_dir))
    assert check.returncode == 1, check.stdout + check.stderr
    assert "red alert" in check.stdout and "\x1b" not in check.stdout + check.stderr
    out = tmp_path / "report.md"
    table = run_cli(
        "19.6.0", "--run", cmd, "--format", "markdown", "--output", str(out),
        "--cache-dir", str(cache_dir), "--results-dir", str(tmp_path),
    )  # fmt: skip
    assert "red alert" in out.read_text() and "\x1b" not in out.read_text() + table.stdout


def test_a_flood_of_output_is_error_not_a_verdict() -> None:
    obs = Observation(exit_code=None, flooded=True, tail="y | y | y")
    decision = decide(obs)
    assert decision.verdict is Verdict.ERROR and "wrote more than" in decision.detail


@pytest.mark.real
def test_a_command_that_floods_its_output_is_stopped_before_it_fills_the_disk(
    tmp_path: Path, cache_dir: Path
) -> None:
    """`--run yes` wrote 1.7 GB into TMPDIR in 2 s: it is stopped at the cap, the row says
    why, and its output goes with its private directory."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    started = time.monotonic()
    proc = run_cli(
        "--check", "19.6.0", "--run", "yes", "--cache-dir", str(cache_dir),
        env={**os.environ, "TMPDIR": str(tmp)},
    )  # fmt: skip
    assert proc.returncode == 125, proc.stdout + proc.stderr
    assert "stopped: wrote more than" in proc.stdout
    assert time.monotonic() - started < 20  # not the 20 s --timeout
    left = sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file())
    assert left < 1024 * 1024, f"{left} bytes left in TMPDIR"


# -- GUNICORN_BISECT_PORT: a free TCP port of each run's own ------------------------------


@pytest.mark.local
def test_runs_at_once_never_hold_the_same_port() -> None:
    held = [command.reserve_port() for _ in range(40)]
    try:
        assert len(set(held)) == len(held)
        for port in held:  # free: nobody listens there, we can bind it
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))
    finally:
        for port in held:
            command.release_port(port)
    assert not command._ports


# Serves the target's own gunicorn on $GUNICORN_BISECT_PORT with an app that answers the
# target's label, then asks that port: under -j 3 a port shared with another target
# would be answered by that target's server (or refused by its bind).
OWN_PORT_CHECK = """\
[ -n "$GUNICORN_BISECT_PORT" ] || { echo "no GUNICORN_BISECT_PORT"; exit 1; }
printf 'def app(e, r):\\n    r("200 OK", [])\\n    return [b"%s"]\\n' "$GUNICORN_BISECT_TARGET" > app.py
gunicorn --bind "127.0.0.1:$GUNICORN_BISECT_PORT" --workers 1 app:app > g.log 2>&1 &
python - <<'EOF'
import os, sys, time, urllib.request
port, me = os.environ["GUNICORN_BISECT_PORT"], os.environ["GUNICORN_BISECT_TARGET"]
for _ in range(150):
    try:
        body = urllib.request.urlopen("http://127.0.0.1:%s/" % port, timeout=2).read()
        break
    except OSError:
        time.sleep(0.1)
else:
    print("nothing answered on port %s" % port)
    sys.exit(125)
print("port %s answered %s" % (port, body.decode()))
sys.exit(0 if body.decode() == me else 1)
EOF
"""


@pytest.mark.real
def test_a_check_on_its_port_reaches_its_own_target_under_j3(
    tmp_path: Path, cache_dir: Path, no_leaks
) -> None:
    releases = ["20.1.0", "21.2.0", "22.0.0", "23.0.0"]
    check = _script(tmp_path / "own_port.sh", OWN_PORT_CHECK)
    report = run_json(
        ",".join(releases),
        "--run",
        str(check),
        "-j",
        "3",
        cache_dir=cache_dir,
        results_dir=tmp_path,
    )
    rows = {r["target"]: r for r in report["rows"]}
    assert sorted(rows) == releases
    for release, r in rows.items():
        assert r["verdict"] == "pass", r["detail"]
        assert re.fullmatch(rf"exit 0: port \d+ answered {re.escape(release)}", r["detail"])

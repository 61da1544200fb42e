"""The CLI's own logic without a gunicorn: the Request, the printed commands, the
--check worker-class warning."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness import cli
from harness.host.progress import Progress
from harness.jobs.setup import Setup
from harness.model.errors import HarnessError
from harness.model.verdict import Verdict
from harness.request import UsageError, parse
from harness.scenarios import registry
from tests.fakes import Lab, report_for

pytestmark = pytest.mark.pure

SECRET_INDEX = "https://me:hunter2@pypi.example/simple/"


@pytest.mark.parametrize(
    "prog, expected",
    [
        ("gunicorn-bisect", "gunicorn-bisect 19.5.0..19.7.0"),
        ("bisect.py", "python bisect.py 19.5.0..19.7.0"),
    ],
)
def test_the_command_uses_the_name_it_was_run_with(prog: str, expected: str) -> None:
    assert cli.parse(["19.5.0..19.7.0"], prog).command == expected


def test_the_command_hides_credentials() -> None:
    req = cli.parse(
        ["19.5.0", "--index-url", SECRET_INDEX, "--repo=https://tok@git.example/g"],
        "gunicorn-bisect",
    )
    assert "hunter2" not in req.command and "tok@" not in req.command
    assert "https://***@pypi.example/simple/" in req.command


def check_with(asked: str, ran: str, capsys, results: Path) -> tuple[int, str]:
    req = cli.parse(
        ["--check", "19.6.0", "--worker-class", asked, "--cache-dir", "/tmp"]
        + ["--results-dir", str(results)],
        "gunicorn-bisect",
    )
    lab = Lab(["19.6.0"], row_facts={"worker_class": ran})
    status = cli._check(req, Setup(lab, report_for([f"{asked}/unix"])), Progress(), sys.stdout)
    return status, capsys.readouterr().err


def test_check_does_not_warn_when_the_asked_worker_class_ran(capsys, tmp_path) -> None:
    status, err = check_with("gthread", "gthread", capsys, tmp_path)
    assert status == cli.EXIT_OK and "warning" not in err


def test_check_warns_when_gunicorn_ran_another_worker_class(capsys, tmp_path) -> None:
    status, err = check_with("sync", "gthread", capsys, tmp_path)
    assert "--worker-class sync was asked, but gunicorn ran gthread" in err
    assert "('sync',)" not in err


def test_help_documents_the_exit_statuses(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.build_parser("gunicorn-bisect").parse_args(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "125 when it is inconclusive" in out and "130 when interrupted" in out


def test_an_unusable_output_is_refused_before_anything_runs(tmp_path) -> None:
    with pytest.raises(HarnessError, match="is a directory"):
        cli.parse(["19.5.0", "--output", str(tmp_path)], "gunicorn-bisect")
    with pytest.raises(HarnessError, match="no such directory"):
        cli.parse(["19.5.0", "--output", str(tmp_path / "no" / "r.md")], "gunicorn-bisect")


@pytest.mark.local
def test_error_lines_hide_credentials(tmp_path, capsys) -> None:
    repo = "file://me:hunter2@localhost/nonexistent"
    argv = ["--check", "c0ffee", "--repo", repo, "--cache-dir", str(tmp_path), "-q"]
    status = cli.main(argv, prog="gunicorn-bisect")
    err = capsys.readouterr().err
    assert status == cli.EXIT_USAGE
    assert "file://***@localhost/nonexistent" in err and "hunter2" not in err


@pytest.mark.parametrize(
    ("argv", "pin"),
    [
        (["--package", "eventlet", "0.30.2,0.30.3", "--with", "gunicorn==20.1.0"], "20.1.0"),
        (["--package", "eventlet", "0.30.2", "--gunicorn", "21.2.0"], "21.2.0"),
        (["--package", "eventlet", "0.30.2"], None),  # the newest that installs
    ],
)
def test_the_package_axis_takes_gunicorns_pin_from_with_as_uv_and_pipx_do(argv, pin):
    assert parse(argv, "bisect.py").gunicorn == pin


def test_a_loose_gunicorn_requirement_cannot_pin_the_package_axis():
    with pytest.raises(UsageError, match="pin gunicorn exactly"):
        parse(["--package", "eventlet", "0.30.2", "--with", "gunicorn>=20"], "bisect.py")


def _check_latest(fmt: str, tmp_path: Path, capsys) -> tuple[int, str]:
    req = cli.parse(
        [
            "--check",
            "latest",
            "--format",
            fmt,
            "--results-dir",
            str(tmp_path),
            "--cache-dir",
            "/tmp",
        ],
        "gunicorn-bisect",
    )
    lab = Lab(["26.0.0", "27.0.1", "28.0.0rc1"])
    status = cli._check(req, Setup(lab, report_for(["auto/unix"])), Progress(), sys.stdout)
    return status, capsys.readouterr().out


def test_check_names_the_release_latest_resolved_to(tmp_path, capsys) -> None:
    status, out = _check_latest("table", tmp_path, capsys)
    assert status == cli.EXIT_OK
    assert out.startswith("27.0.1 (latest): pass")
    (record,) = tmp_path.glob("*.json")  # a record, like every run
    doc = json.loads(record.read_text())
    assert [r["target"] for r in doc["rows"]] == ["27.0.1"]
    assert "--check 27.0.1" in doc["command"] and "latest" not in doc["command"]
    assert (tmp_path / record.name.replace(".json", ".md")).is_file()


@pytest.mark.parametrize("fmt", ["json", "osv", "markdown"])
def test_check_honours_the_format(fmt, tmp_path, capsys) -> None:
    status, out = _check_latest(fmt, tmp_path, capsys)
    assert status == cli.EXIT_OK
    if fmt == "markdown":
        assert "| `27.0.1`" in out and "--check 27.0.1" in out
        return
    doc = json.loads(out)
    if fmt == "json":
        assert doc["tool"]["name"] == "gunicorn-bisect" and doc["rows"][0]["target"] == "27.0.1"
    else:
        assert doc["affected"][0]["versions"] == [] and doc["id"]


def test_check_at_a_confidence_writes_its_answer_in_the_record(tmp_path, capsys) -> None:
    req = cli.parse(
        ["--check", "19.6.0", "--confidence", "0.9", "--format", "json"]
        + ["--results-dir", str(tmp_path), "--cache-dir", "/tmp"],
        "gunicorn-bisect",
    )
    lab = Lab(["19.6.0"], verdicts={("19.6.0", "auto/unix"): Verdict.FAIL})
    status = cli._check(req, Setup(lab, report_for(["auto/unix"])), Progress(), sys.stdout)
    doc = json.loads(capsys.readouterr().out)
    assert status == cli.EXIT_FAIL
    assert [r["verdict"] for r in doc["rows"]] == ["fail"]
    assert any(n.startswith("--confidence 0.9: fail") for n in doc["notes"]), doc["notes"]
    (record,) = tmp_path.glob("*.json")
    assert json.loads(record.read_text())["notes"] == doc["notes"]


def test_list_scenarios_is_aligned_plain_text(capsys) -> None:
    assert cli.main(["--list-scenarios"]) == cli.EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    names = [n for n, _ in registry.listing()]
    assert "reload-broken-app" in names and "--run CMD" in names
    assert [ln[: len(n)] for ln, n in zip(lines, names)] == names
    starts = {len(ln) - len(ln[len(n) :].lstrip()) for ln, n in zip(lines, names)}
    assert len(starts) == 1  # every description starts in the same column
    assert not any("``" in ln for ln in lines)

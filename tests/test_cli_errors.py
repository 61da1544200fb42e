"""Every problem a user can fix ends the CLI with status 2 and one line on stderr.

Table-driven, real subprocesses of ``python bisect.py``: no environment is built and
no gunicorn started by any of these rows (the ``--python 3.13`` row builds one
environment, which is how the harness learns that 3.13 cannot run 19.6.0).  Rows
that need the package index share one cache directory, filled once per module.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.provision import index, interpreters

pytestmark = pytest.mark.local

ROOT = Path(__file__).resolve().parent.parent
UNREACHABLE_INDEX = "http://127.0.0.1:9/pypi"


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]  # "{name}" is replaced by the path of the fixture ``paths[name]``
    phrase: str  # regex the error line must match
    env: dict[str, str] = field(default_factory=dict)
    needs_index: bool = False
    needs_python: str | None = None


CASES = [
    Case("malformed-range-open-start", ("..19.5.0",), r"malformed range '\.\.19\.5\.0'"),
    Case("latest-starts-a-range", ("latest..19.5.0",), r"'latest' can only end a range"),
    Case("malformed-range-letters", ("a..b",), r"'a' in 'a\.\.b' is not a version number"),
    Case("malformed-range-three-dots", ("19.5.0...19.7.0",), r"is not a version number"),
    Case("malformed-list", ("1,,2",), r"malformed list"),
    Case("bind-unknown", ("19.6.0", "--bind", "unix,udp"), r"--bind: 'udp': choose unix or tcp"),
    Case(
        "worker-class-empty-name",
        ("19.6.0", "--worker-class", "gthread,,sync"),
        r"--worker-class: 'gthread,,sync' has an empty name in the list",
    ),
    Case(
        "check-of-a-matrix",
        ("--check", "19.6.0", "--bind", "unix,tcp"),
        r"--check runs one deployment: give one --worker-class and one --bind",
    ),
    Case(
        "reversed-range",
        ("19.7.0..19.5.0",),
        r"reversed range 19\.7\.0\.\.19\.5\.0: did you mean 19\.5\.0\.\.19\.7\.0\?",
        needs_index=True,
    ),
    Case(
        "unknown-version",
        ("19.6.5",),
        r"gunicorn 19\.6\.5 is not a release .*nearest: .*(19\.6\.0|19\.7\.0)",
        needs_index=True,
    ),
    Case(
        "unknown-version-check",
        ("--check", "19.6.5"),
        r"19\.6\.5 is not a release .*(19\.6\.0|19\.7\.0)",
        needs_index=True,
    ),
    Case(
        "repo-not-git",
        ("--repo", "{empty_dir}", "--check", "abc123"),
        r"--repo .*empty: not a git repository",
    ),
    Case(
        "repo-missing",
        ("--repo", "{missing}", "--check", "abc123"),
        r"--repo .*missing: no such directory",
    ),
    Case(
        "ref-not-found",
        ("--check", "no-such-ref", "--repo", "{tiny_repo}"),
        r"no-such-ref.*not found",
    ),
    Case(
        "python-missing-path",
        ("--python", "/nonexistent/python3", "19.6.0"),
        r"--python /nonexistent/python3: no such file",
    ),
    Case("python-unknown-version", ("--python", "3.4", "19.6.0"), r"--python 3\.4: .*found: "),
    Case(
        "python-cannot-run-target",
        ("--python", "3.13", "--check", "19.6.0"),
        r"--python 3\.13\.\d+ cannot run gunicorn 19\.6\.0: \S",
        needs_index=True,
        needs_python="3.13",
    ),
    Case(
        "gunicorn-config-missing",
        ("--gunicorn-config", "{missing}", "19.6.0"),
        r"--gunicorn-config .*missing: no such file",
    ),
    Case(
        "gunicorn-config-not-a-file",
        ("--gunicorn-config", "/dev/zero", "19.6.0"),
        r"--gunicorn-config /dev/zero: not a regular file",
    ),
    Case(
        "gunicorn-config-syntax-error",
        ("--gunicorn-config", "{bad_config}", "19.6.0"),
        r"--gunicorn-config .*bad_config\.py: does not parse \(line 2\)",
    ),
    Case(
        "cache-dir-unwritable",
        ("--cache-dir", "{afile}/cache", "19.6.0"),
        r"--cache-dir .*afile/cache: not writable",
    ),
    Case(
        "results-dir-unwritable",
        ("--results-dir", "{afile}/results", "19.5.0..19.7.0"),
        r"--results-dir .*afile/results: not writable",
        needs_index=True,
    ),
    Case(
        "index-unreachable",
        ("--cache-dir", "{fresh_cache}", "19.5.0..19.7.0"),
        r"package index unreachable .*127\.0\.0\.1:9.* no cached copy",
        env={"GUNICORN_BISECT_INDEX": UNREACHABLE_INDEX},
    ),
    Case(
        "index-unreachable-check",
        ("--cache-dir", "{fresh_cache}", "--check", "19.6.0"),
        r"package index unreachable",
        env={"GUNICORN_BISECT_INDEX": UNREACHABLE_INDEX},
    ),
    Case("no-target", (), r"give releases .* or --check TARGET"),
    Case("target-and-check", ("19.6.0", "--check", "19.6.0"), r"either releases or --check"),
    Case("workers-zero", ("--workers", "0", "19.6.0"), r"--workers must be at least 1"),
    Case("repeat-negative", ("--repeat", "-1", "19.6.0"), r"--repeat must be at least 1"),
    Case("workers-not-a-number", ("--workers", "two", "19.6.0"), r"invalid int value: 'two'"),
    Case("unknown-option", ("--frobnicate", "19.6.0"), r"unrecognized arguments: --frobnicate"),
    Case("bad-format", ("--format", "xml", "19.6.0"), r"invalid choice: 'xml'"),
    Case(
        "abbreviated-option",
        ("--check", "19.6.0", "--worker-clas", "sync"),
        r"unrecognized arguments: --worker-clas",
    ),
    Case(
        "several-scenarios-in-a-range",
        ("19.5.0..19.7.0", "--scenario", "all"),
        r"several scenarios take --check X",
    ),
    Case(
        "unknown-scenario-in-a-list",
        ("--check", "19.6.0", "--scenario", "respawn,nope"),
        r"--scenario 'nope': unknown; choose from .*respawn",
    ),
    Case("from-without-check", ("19.6.0", "--from", "19.5.0"), r"--from RELEASE goes with --check"),
    Case(
        "check-from-not-a-release",
        ("--check", "19.6.0", "--from", "19.6.5"),
        r"gunicorn 19\.6\.5 is not a release",
        needs_index=True,
    ),
]


@pytest.fixture(scope="module")
def index_cache(tmp_path_factory) -> Path:
    """One cache directory holding the real index, fetched once for the module."""
    cache = tmp_path_factory.mktemp("shared-cache")
    try:
        index.project("gunicorn", cache)  # the indexes the CLI reads (pip's configuration)
    except index.IndexUnavailable as exc:
        pytest.skip(f"the package index is needed for this row: {exc}")
    return cache


@pytest.fixture(scope="module")
def plain_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("plain-cache")


@pytest.fixture(scope="module")
def minors() -> set[str]:
    return {i.minor for i in interpreters.discover()}


@pytest.fixture
def paths(tmp_path) -> dict[str, Path]:
    empty = tmp_path / "empty"
    empty.mkdir()
    afile = tmp_path / "afile"
    afile.write_text("a regular file, so nothing can be created below it\n")
    bad = tmp_path / "bad_config.py"
    bad.write_text("workers = 2\nbind = (\n")
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    git = ["git", "-C", str(tiny), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "one"], check=True)
    return {
        "empty_dir": empty,
        "missing": tmp_path / "missing",
        "afile": afile,
        "bad_config": bad,
        "tiny_repo": tiny,
        "fresh_cache": tmp_path / "fresh-cache",
        "results": tmp_path / "results",
        "tmp": tmp_path,
    }


def _run(args: list[str], extra_env: dict[str, str], tmp: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GUNICORN_BISECT_INDEX"}
    env["GIT_CEILING_DIRECTORIES"] = str(tmp.parent)  # git must not find a repo above tmp
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "bisect.py", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,  # a guard against a hang, not a timing assertion
    )


@pytest.mark.parametrize(
    "case",
    # the row that builds an environment (for Python 3.13) is real
    [pytest.param(c, marks=pytest.mark.real if c.needs_python else ()) for c in CASES],
    ids=[c.id for c in CASES],
)
def test_usage_error(case: Case, paths, request, minors):
    if case.needs_python and case.needs_python not in minors:
        pytest.skip(f"Python {case.needs_python} is not discoverable here")
    cache = request.getfixturevalue("index_cache" if case.needs_index else "plain_cache")
    args = [a.format(**{k: str(v) for k, v in paths.items()}) for a in case.args]
    if "--cache-dir" not in args:
        args += ["--cache-dir", str(cache)]
    if "--results-dir" not in args:
        args += ["--results-dir", str(paths["results"])]

    proc = _run(args, case.env, paths["tmp"])

    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), proc.stderr
    line = lines[0]
    assert line.startswith("bisect.py: error:"), line
    assert re.search(case.phrase, line), line
    assert proc.stdout == ""
    assert not list(paths["results"].glob("*.json")), "a usage error left a run record"

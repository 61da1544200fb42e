"""`python bisect.py` must work although the file shadows the stdlib's `bisect`.

Host Pythons 3.9-3.13 each get a fresh virtualenv with `pip install .` (which also
proves the package installs and its `gunicorn-bisect` console script works); then the
entry point runs from the project root, where `import bisect` would find our file.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from harness.provision.interpreters import discover
from tests.conftest import ROOT

pytestmark = pytest.mark.real

HOSTS = {}
for _i in discover():
    if (3, 9) <= _i.version_tuple[:2] <= (3, 13):
        HOSTS.setdefault(_i.minor, _i)


def _run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module", params=sorted(HOSTS, key=lambda v: tuple(map(int, v.split(".")))))
def installed(request, tmp_path_factory):
    interp = HOSTS[request.param]
    venv = tmp_path_factory.mktemp(f"host-{request.param}") / "venv"
    made = _run([interp.path, "-m", "venv", str(venv)])
    assert made.returncode == 0, made.stderr
    pip = _run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(ROOT),
        ]
    )
    assert pip.returncode == 0, pip.stderr[-2000:]
    return request.param, venv


def test_bisect_is_not_preloaded_on_this_host(installed):
    """The premise: on these builds `bisect` is imported lazily, so shadowing is real."""
    _, venv = installed
    out = _run(
        [str(venv / "bin" / "python"), "-c", "import sys; print('bisect' in sys.modules)"], cwd="/"
    )
    assert out.stdout.strip() == "False"


def test_entry_point_runs_and_the_stdlib_bisect_stays_intact(installed):
    minor, venv = installed
    python = str(venv / "bin" / "python")
    helped = _run([python, "bisect.py", "--help"], cwd=ROOT)
    assert helped.returncode == 0, helped.stderr
    assert "19.5.0..19.7.0" in helped.stdout or "A..B" in helped.stdout
    # Even `import bisect` from the project root (our file first on sys.path) must give
    # the stdlib's functions, so random/tempfile keep working there.
    probe = _run(
        [
            python,
            "-c",
            "import bisect, random, tempfile; "
            "print(bisect.bisect_left([1, 2, 3], 2), bisect.insort_right.__module__, "
            "random.choices([7], k=1)[0])",
        ],
        cwd=ROOT,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["1", "_bisect", "7"]  # the stdlib's own functions


def test_console_script_has_the_same_cli(installed):
    _, venv = installed
    out = _run([str(venv / "bin" / "gunicorn-bisect"), "--help"], cwd="/")
    assert out.returncode == 0, out.stderr
    assert "--check" in out.stdout and "--no-commits" in out.stdout
    version = _run([str(venv / "bin" / "gunicorn-bisect"), "--version"], cwd="/")
    assert version.returncode == 0, version.stderr
    assert re.fullmatch(r"gunicorn-bisect \d+\.\d+\.\d+\S*\n", version.stdout)


def test_a_user_error_is_one_line_on_every_host(installed):
    _, venv = installed
    out = _run(
        [
            str(venv / "bin" / "python"),
            "bisect.py",
            "19.7.0..19.5.0",
            "--cache-dir",
            str(venv.parent / "cache"),
        ],
        cwd=ROOT,
    )
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "reversed range" in out.stderr


def test_newest_host_runs_a_real_check(installed, cache_dir):
    """On the newest host Python, a full scenario through the shadowing entry point."""
    minor, venv = installed
    if minor != max(HOSTS, key=lambda v: tuple(map(int, v.split(".")))):
        pytest.skip("one real check is enough: done on the newest host Python")
    out = _run(
        [
            str(venv / "bin" / "python"),
            "bisect.py",
            "--check",
            "19.6.0",
            "--cache-dir",
            str(cache_dir),
        ],
        cwd=ROOT,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "socket file gone" in out.stdout


if not HOSTS:  # pragma: no cover - a machine without 3.9-3.13
    pytestmark = [
        pytest.mark.real,
        pytest.mark.skip(reason=f"no host Python 3.9-3.13 found (running {sys.version})"),
    ]

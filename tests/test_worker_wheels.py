"""Choosing the wheels of gevent/eventlet for a target CPython: tags, markers, pins."""

from __future__ import annotations

import pytest
from packaging.requirements import Requirement

from harness.provision.index import DistFile
from harness.provision.interpreters import Interpreter
from harness.provision.wheels import _compatible_file, interpreter_tags
from harness.provision.worker_libs import marker_environment, pin_for

pytestmark = pytest.mark.pure

# gevent 21.12.0's files (a selection), as the index lists them
GEVENT = [
    "gevent-21.12.0-cp36-cp36m-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
    "gevent-21.12.0-cp36-cp36m-win_amd64.whl",
    "gevent-21.12.0-cp36-cp36m-macosx_10_14_x86_64.whl",
    "gevent-21.12.0-cp36-cp36m-manylinux_2_12_x86_64.manylinux2010_x86_64.whl",
    "gevent-21.12.0-cp39-cp39-manylinux_2_12_x86_64.manylinux2010_x86_64.whl",
    "gevent-21.12.0.tar.gz",
]


def files(names: list[str]) -> list[DistFile]:
    kind = {True: "bdist_wheel", False: "sdist"}
    return [DistFile(n, "", "", kind[n.endswith(".whl")], None) for n in names]


def test_the_binary_wheel_of_the_targets_version_and_this_platform_is_picked():
    f = _compatible_file(files(GEVENT), interpreter_tags((3, 6)))
    assert f is not None
    assert f.filename == "gevent-21.12.0-cp36-cp36m-manylinux_2_12_x86_64.manylinux2010_x86_64.whl"
    f = _compatible_file(files(GEVENT), interpreter_tags((3, 9)))
    assert f is not None and "-cp39-cp39-manylinux" in f.filename


def test_no_wheel_for_a_python_the_release_has_no_binary_for():
    assert _compatible_file(files(GEVENT), interpreter_tags((3, 13))) is None


def test_a_pure_wheel_fits_every_python3_and_ranks_below_a_binary_one():
    names = [
        "greenlet-1.1.3-py3-none-any.whl",
        "greenlet-1.1.3-cp36-cp36m-manylinux2014_x86_64.whl",
    ]
    assert "cp36m" in _compatible_file(files(names), interpreter_tags((3, 6))).filename
    assert _compatible_file(files(names), interpreter_tags((3, 12))).filename.endswith(
        "none-any.whl"
    )
    assert (
        _compatible_file(files(["six-1.17.0-py2-none-any.whl"]), interpreter_tags((3, 9))) is None
    )


def test_markers_are_evaluated_for_the_target_not_the_host():
    env = marker_environment(Interpreter("/x/python3.6", "3.6.15", "pyenv"))
    assert Requirement("monotonic>=1.4; python_version < '3.5'").marker.evaluate(env) is False
    assert Requirement("contextvars; python_version < '3.7'").marker.evaluate(env) is True
    old = marker_environment(Interpreter("/x/python3.9", "3.9.18", "pyenv"))
    assert Requirement("contextvars; python_version < '3.7'").marker.evaluate(old) is False


def test_pins_belong_to_gunicorns_async_workers_only():
    assert pin_for("gevent") == "gevent>=1.4,<22"
    assert pin_for("gunicorn.workers.ggevent.GeventWorker") is None  # a path: user's own
    assert pin_for("eventlet") == "eventlet>=0.25,<0.30.3"
    assert pin_for("sync") is None and pin_for("gthread") is None and pin_for(None) is None

"""Tests for harness.interpreters: ordering and --python selection (pure), and discovery
on this machine and in planted pyenv / uv layouts (real interpreters, no mocks).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.provision.interpreters import Interpreter, InterpreterError, discover, order, select

pytestmark = pytest.mark.local

PY27 = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions/2.7.18/bin/python"


def interp(version: str, path: str | None = None, source: str = "pyenv") -> Interpreter:
    return Interpreter(path=path or f"/opt/py{version}/bin/python3", version=version, source=source)


MACHINE = [
    interp("3.9.7", source="uv"),
    interp("3.11.7"),
    interp("3.9.18"),
    interp("3.6.15"),
    interp("3.13.0"),
    interp("3.10.13"),
    interp("3.9.2", source="PATH"),
]


# -- order -----------------------------------------------------------------------


def test_order_is_newest_first_by_version_not_text():
    got = [i.version for i in order(MACHINE)]
    assert got == ["3.13.0", "3.11.7", "3.10.13", "3.9.18", "3.9.7", "3.9.2", "3.6.15"]


def test_order_keeps_one_interpreter_per_exact_version():
    a = interp("3.9.18", "/usr/bin/python3.9", "PATH")
    b = interp("3.9.18", "/root/.pyenv/versions/3.9.18/bin/python3", "pyenv")
    got = order([a, interp("3.10.13"), b])
    assert [i.version for i in got] == ["3.10.13", "3.9.18"]
    assert got[1] in (a, b)


def test_order_puts_the_preferred_path_first_and_keeps_the_rest_newest_first():
    prefer = "/opt/py3.9.18/bin/python3"
    got = order(MACHINE, prefer=prefer)
    assert got[0].path == prefer
    assert [i.version for i in got[1:]] == [
        "3.13.0",
        "3.11.7",
        "3.10.13",
        "3.9.7",
        "3.9.2",
        "3.6.15",
    ]


def test_order_with_an_unknown_preferred_path_changes_nothing():
    assert order(MACHINE, prefer="/nowhere/python") == order(MACHINE)


# -- select ----------------------------------------------------------------------


def test_select_minor_picks_the_newest_patch_release():
    assert select("3.9", MACHINE).version == "3.9.18"


def test_select_exact_version():
    assert select("3.9.7", MACHINE).version == "3.9.7"
    assert select("3.9.7", MACHINE).source == "uv"


def test_select_unknown_version_lists_what_exists():
    with pytest.raises(InterpreterError) as err:
        select("3.4", MACHINE)
    msg = str(err.value)
    assert "--python 3.4" in msg
    assert "found: 3.6, 3.9, 3.10, 3.11, 3.13" in msg


def test_select_with_nothing_found_says_none():
    with pytest.raises(InterpreterError, match=r"found: none"):
        select("3.9", [])


def test_select_missing_path(tmp_path):
    missing = tmp_path / "nope" / "python3"
    with pytest.raises(InterpreterError, match="no such file"):
        select(str(missing), MACHINE)


def test_select_path_that_is_not_python(tmp_path):
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\necho hello\n")
    fake.chmod(0o755)
    with pytest.raises(InterpreterError, match="not a working CPython 3 or 2.7"):
        select(str(fake), MACHINE)


def test_select_real_path_probes_its_version():
    got = select(sys.executable, [])
    assert got.source == "--python"
    assert got.path == sys.executable
    assert got.version == ".".join(map(str, sys.version_info[:3]))


# -- discover: this machine ------------------------------------------------------


def _reported_version(path: str) -> str:
    return subprocess.run(
        [path, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()


def test_discover_finds_real_cpython3_interpreters_newest_first():
    found = discover()
    if not found:
        pytest.skip("no CPython 3 interpreter discoverable on this machine")
    for i in found:
        assert i.version.startswith(("3.", "2.7.")), i
        assert i.source in ("PATH", "pyenv", "uv"), i
        assert _reported_version(i.path) == i.version, i
    versions = [i.version_tuple for i in found]
    assert versions == sorted(versions, reverse=True)
    assert len({i.version for i in found}) == len(found)


def test_discover_reads_the_pyenv_versions_folder_when_it_is_not_on_path(tmp_path, monkeypatch):
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    installed = sorted(p.name for p in (root / "versions").glob("3.*") if (p / "bin").is_dir())
    if not installed:
        pytest.skip(f"no pyenv versions under {root}")
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("PYENV_ROOT", str(root))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("UV_PYTHON_INSTALL_DIR", raising=False)
    found = discover()
    assert found, f"pyenv has {installed} but nothing was discovered"
    assert {i.source for i in found} == {"pyenv"}
    assert all(i.path.startswith(str(root / "versions")) for i in found)


# -- discover: planted layouts ---------------------------------------------------


@pytest.fixture
def isolated(tmp_path, monkeypatch) -> Path:
    """Nothing on PATH, an empty pyenv root and no uv folders: only what a test plants."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("UV_PYTHON_INSTALL_DIR", raising=False)
    return tmp_path


def _plant(link: Path, target: str | Path = sys.executable) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    return link


HOST_VERSION = ".".join(map(str, sys.version_info[:3]))


def test_isolated_discovery_finds_nothing(isolated):
    assert discover() == []


def test_discover_finds_a_pyenv_layout(isolated, monkeypatch):
    root = isolated / "pyenv"
    link = _plant(root / "versions" / HOST_VERSION / "bin" / "python3")
    monkeypatch.setenv("PYENV_ROOT", str(root))
    found = discover()
    assert [(i.path, i.version, i.source) for i in found] == [(str(link), HOST_VERSION, "pyenv")]


def test_discover_finds_a_pyenv_layout_with_only_bin_python(isolated, monkeypatch):
    root = isolated / "pyenv"
    link = _plant(root / "versions" / "myenv" / "bin" / "python")
    monkeypatch.setenv("PYENV_ROOT", str(root))
    assert [(i.path, i.source) for i in discover()] == [(str(link), "pyenv")]


def test_discover_finds_a_uv_layout(isolated, monkeypatch):
    base = isolated / "uv-pythons"
    name = f"cpython-{HOST_VERSION}-linux-x86_64-gnu"
    link = _plant(base / name / "bin" / "python3")
    monkeypatch.setenv("UV_PYTHON_INSTALL_DIR", str(base))
    found = discover()
    assert [(i.path, i.version, i.source) for i in found] == [(str(link), HOST_VERSION, "uv")]


def test_discover_finds_uv_default_folder_under_xdg_data_home(isolated):
    name = f"cpython-{HOST_VERSION}-linux-x86_64-gnu"
    link = _plant(isolated / "xdg" / "uv" / "python" / name / "bin" / "python3")
    assert [(i.path, i.source) for i in discover()] == [(str(link), "uv")]


def test_discover_on_path(isolated, monkeypatch):
    bindir = isolated / "bin"
    link = _plant(bindir / "python3")
    monkeypatch.setenv("PATH", str(bindir))
    assert [(i.path, i.source) for i in discover()] == [(str(link), "PATH")]


def test_discover_ignores_pyenv_shims_on_path(isolated, monkeypatch):
    shims = isolated / "pyenv" / "shims"
    _plant(shims / "python3")
    monkeypatch.setenv("PATH", str(shims))
    assert discover() == []


def test_discover_counts_one_interpreter_once(isolated, monkeypatch):
    root = isolated / "pyenv"
    _plant(root / "versions" / HOST_VERSION / "bin" / "python3")
    bindir = isolated / "bin"
    _plant(bindir / "python3")
    _plant(bindir / "python")
    monkeypatch.setenv("PYENV_ROOT", str(root))
    monkeypatch.setenv("PATH", str(bindir))
    assert len(discover()) == 1


def test_discover_skips_what_is_not_cpython3_or_27(isolated, monkeypatch):
    root = isolated / "pyenv"
    fake = root / "versions" / "fake" / "bin" / "python3"
    fake.parent.mkdir(parents=True)
    fake.write_text('#!/bin/sh\necho \'{"version": "3.9.1", "impl": "PyPy"}\'\n')
    fake.chmod(0o755)
    old = root / "versions" / "2.6.9" / "bin" / "python"
    old.parent.mkdir(parents=True)
    old.write_text('#!/bin/sh\necho \'{"version": "2.6.9", "impl": "CPython"}\'\n')
    old.chmod(0o755)
    monkeypatch.setenv("PYENV_ROOT", str(root))
    assert discover() == []


def test_discover_finds_27_last_for_the_releases_before_19(isolated, monkeypatch):
    if not PY27.is_file():
        pytest.skip("no pyenv 2.7.18 here")
    root = isolated / "pyenv"
    _plant(root / "versions" / "2.7.18" / "bin" / "python", PY27)
    monkeypatch.setenv("PYENV_ROOT", str(root))
    (found,) = discover()
    assert found.version == "2.7.18" and found.minor == "2.7"

"""Find the Pythons on this machine (PATH, pyenv's versions folder, uv's managed Pythons:
pyenv's shims hide its versions) and order them. Which one works for a release is decided
by evidence (the boot trial, environments.py), not here.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.host import processes
from harness.host.fsutil import atomic_write_text
from harness.model.errors import HarnessError

_TRIAL = (
    "import json, platform, sys; print(json.dumps({'version': platform.python_version(), "
    "'impl': platform.python_implementation(), 'executable': sys.executable}))"
)


#: the CPythons found: 3.x, and 2.7 for releases before 19.0 that no Python 3 boots (0.17.0)
PYTHONS = ("3.", "2.7.")


class InterpreterError(HarnessError):
    """A problem with --python."""


@dataclass(frozen=True)
class Interpreter:
    """One Python installation, identified by its resolved executable."""

    path: str
    version: str
    source: str  # "PATH", "pyenv", "uv", "--python"

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.version.split(".")[:3] if p.isdigit())

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


def _candidate_paths() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if not entry or "shims" in Path(entry).parts:
            continue  # pyenv shims dispatch on cwd; we read pyenv's folder directly
        d = Path(entry)
        for name in ("python3", "python") + tuple(f"python3.{m}" for m in range(6, 20)):
            p = d / name
            if p.is_file() and os.access(p, os.X_OK):
                found.append((str(p), "PATH"))
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for d in sorted((pyenv_root / "versions").glob("*")):
        for name in ("bin/python3", "bin/python"):
            if (d / name).is_file():
                found.append((str(d / name), "pyenv"))
                break
    data_home = os.environ.get("XDG_DATA_HOME", str(Path.home() / ".local" / "share"))
    for base in filter(None, [os.environ.get("UV_PYTHON_INSTALL_DIR"), f"{data_home}/uv/python"]):
        for d in sorted(Path(base).glob("cpython-*")):
            if (d / "bin" / "python3").is_file():
                found.append((str(d / "bin" / "python3"), "uv"))
    return found


def trial(path: str, source: str) -> Interpreter | None:
    """Run the interpreter once to learn its exact version; None unless a CPython 3 or 2.7.
    ``Undecided`` or ``Cancelled`` is no answer, which :func:`discover` does not remember."""
    done = processes.run_to_end([path, "-c", _TRIAL], timeout=15, what=f"{path} -c ...")
    try:
        data = json.loads(done.stdout) if done.returncode == 0 else {}
        if data["impl"] == "CPython" and data["version"].startswith(PYTHONS):
            return Interpreter(path=path, version=data["version"], source=source)
    except (ValueError, TypeError, KeyError, AttributeError):
        pass
    return None


def discover(cache_dir: Path | None = None) -> list[Interpreter]:
    """Every distinct CPython 3 (and 2.7) we can find, newest first; with ``cache_dir`` each
    one's version is remembered by its identity (running ten costs a quarter second)."""
    record = cache_dir / "interpreters.json" if cache_dir is not None else None
    try:
        known: dict[str, dict] = json.loads(record.read_text()) if record else {}
    except (OSError, ValueError):
        known = {}
    fresh: dict[str, dict] = {}
    seen: dict[str, Interpreter] = {}
    for path, source in _candidate_paths():
        key = os.path.realpath(path)
        if key in seen:
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        # what must not change for a remembered trial to hold: the file, and the rule it was
        # judged by (a 2.7 refused before is asked again)
        ident = f"{key}:{st.st_size}:{st.st_mtime_ns}:{','.join(PYTHONS)}"
        if ident in known:
            version = known[ident].get("version")
        else:
            try:
                interp = trial(path, source)
            except processes.Undecided:
                continue  # no answer: not remembered, asked again next run
            version = interp.version if interp else None
        fresh[ident] = {"version": version}
        if version:
            seen[key] = Interpreter(path=path, version=version, source=source)
    if record is not None and fresh != known:
        atomic_write_text(record, json.dumps(fresh, indent=1, sort_keys=True))
    return order(seen.values())


def order(interps: Iterable[Interpreter], prefer: str | None = None) -> list[Interpreter]:
    """Newest first, one per exact version (two 3.9.18 are the same evidence); ``prefer``
    (a path) leads."""
    ranked = sorted(interps, key=lambda i: (i.version_tuple, i.source == "PATH"), reverse=True)
    first: dict[str, Interpreter] = {}
    for i in ranked:
        first.setdefault(i.version, i)
    unique = list(first.values())
    if prefer:
        unique.sort(key=lambda i: i.path != prefer)
    return unique


def select(spec: str, available: Sequence[Interpreter]) -> Interpreter:
    """Resolve ``--python X.Y`` (newest matching) or ``--python PATH``."""
    if "/" in spec or os.sep in spec or not spec.replace(".", "").isdigit():
        path = spec if ("/" in spec) else (shutil.which(spec) or spec)
        if not Path(path).exists():
            raise InterpreterError(f"--python {spec}: no such file")
        try:
            interp = trial(path, "--python")
        except processes.Undecided as exc:
            raise InterpreterError(f"--python {spec}: {exc}") from None
        if interp is None:
            raise InterpreterError(f"--python {spec}: not a working CPython 3 or 2.7 interpreter")
        return interp
    matches = [i for i in available if i.version == spec or i.minor == spec]
    if not matches:
        minors = sorted({i.minor for i in available}, key=lambda v: [int(p) for p in v.split(".")])
        have = ", ".join(minors) or "none"
        raise InterpreterError(
            f"--python {spec}: no such Python found on PATH, in pyenv or in uv (found: {have})"
        )
    return order(matches)[0]


def how_to_get(minor: str) -> str:
    """The hint we print when no interpreter fits."""
    return f"install one with `pyenv install {minor}` or `uv python install {minor}`"

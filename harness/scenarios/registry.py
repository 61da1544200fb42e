"""The one place a scenario is chosen: a case by name, a user's case file, or ``--run``.

The cases are discovered, not listed: the built-ins (``BUILTINS``) and every module in
``harness/catalogue/``, named by their ``NAME`` or file name (``reload_leak.py`` is
``reload-leak``); ``--list-scenarios``, the tests and ``bench/known_regressions.py`` read
``cases()``.

``--run CMD`` is judged as ``git bisect run`` judges it (``decide``).  CMD runs through
``/bin/sh -c`` once per target with the target's environment first on ``PATH``, a free
port of its own in ``GUNICORN_BISECT_PORT`` (none shared under ``-j``), in a private 0700
directory and its own session with a run token: whatever it starts, even a daemon that left
the group, is killed when the row ends (pass, fail, timeout or Ctrl-C).
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import shlex
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness.catalogue
from harness.host import processes
from harness.host.compat import SHIM_MARK_ENV
from harness.host.processes import Cancel
from harness.model.verdict import Decision, Verdict
from harness.provision.index import sha256_of
from harness.scenarios import boots, keeps_serving, socket_loss
from harness.scenarios.base import (
    DEFAULT,
    About,
    Options,
    RunContext,
    RunResult,
    Scenario,
    ScenarioError,
)
from harness.scenarios.case import Case, from_module, load
from harness.scenarios.lifecycle import CaseScenario, refusal
from harness.scenarios.server import SOCKET_NAME, private_dir

#: harness.scenarios' own cases, first in the listing
BUILTINS = (socket_loss, keeps_serving, boots)
CATALOGUE = Path(harness.catalogue.__file__).parent


@functools.lru_cache(maxsize=1)
def cases() -> dict[str, Case]:
    """name -> case: the built-ins, then the catalogue's modules in file order."""
    found = {m.NAME: from_module(m, Path(m.__file__), m.NAME, builtin=True) for m in BUILTINS}
    for path in sorted(CATALOGUE.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = importlib.import_module(f"harness.catalogue.{path.stem}")
        name = getattr(module, "NAME", path.stem.replace("_", "-"))
        found[name] = from_module(module, path, name)
    return found


def names() -> list[str]:
    """Every case by name: the built-ins, then the catalogue."""
    return list(cases())


def create(name: str | None, options: Options) -> Scenario:
    """``--run CMD``, a case file or a case by name; ScenarioError for an option it refuses."""
    if options.run is not None:
        return CommandScenario(options)
    name = name or DEFAULT
    if name.endswith(".py") or "/" in name:
        return CaseScenario(load(Path(name)), options)
    if name not in cases():
        known = ", ".join(sorted(cases()))
        raise ScenarioError(f"unknown scenario {name!r}: choose one of {known}, or give a .py file")
    return CaseScenario(cases()[name], options)


def refused(name: str, options: Options) -> str:
    """The one line ``create`` would refuse the named case with, or "" (``--scenario all``)."""
    return refusal(cases()[name], options)


def _line(case: Case) -> str:
    """One line: the tracker number first, reST's double backticks as plain quotes."""
    text = re.sub(r"``([^`]+)``", r"'\1'", case.description).rstrip(".")
    tag = f"#{case.tracker}"
    if not case.tracker or text.startswith(tag):
        return text
    return f"{tag}: {text}"


def listing() -> list[tuple[str, str]]:
    """(name, one line) for ``--list-scenarios``: built-ins, the catalogue, the user's own."""
    ordered = sorted((not c.builtin, n, _line(c)) for n, c in cases().items())
    return [(n, line) for _, n, line in ordered] + [
        ("FILE.py", "your own scenario file (see README: Your own scenario file)"),
        ("--run CMD", CommandScenario.DESCRIPTION),
    ]


def listing_lines() -> list[str]:
    """``--list-scenarios`` as printed: names in one column as wide as the longest."""
    rows = listing()
    width = max(len(n) for n, _ in rows)
    return [f"{n:{width}}  {d}" for n, d in rows]


TARGET_ENV = "GUNICORN_BISECT_TARGET"
PYTHON_ENV = "GUNICORN_BISECT_PYTHON"
SHA_ENV = "GUNICORN_BISECT_SHA"
ORIGIN_ENV = "GUNICORN_BISECT_ORIGIN"  # where bisect.py was started (CMD runs elsewhere)
PORT_ENV = "GUNICORN_BISECT_PORT"  # a free 127.0.0.1 TCP port of this run's own

#: the ports handed to runs now going on (``-j``): never the same one to two at once
_ports: set[int] = set()
_ports_lock = threading.Lock()


def reserve_port(tries: int = 64) -> int:
    """A 127.0.0.1 port nobody listens on now and no other run of ours holds."""
    with _ports_lock:
        for _ in range(tries):
            port = processes.free_port()
            if port not in _ports:
                _ports.add(port)
                return port
    raise ScenarioError("--run: no free TCP port for GUNICORN_BISECT_PORT")


def release_port(port: int) -> None:
    with _ports_lock:
        _ports.discard(port)


#: ``python -m pip`` and ``pip`` in CMD: the target's pip when it has one (``--with pip``),
#: else one line and exit 2 -- never the harness's own pip, which installs elsewhere
PIP_SHIM = """\
import importlib.util, os, runpy, sys
here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
for name in [m for m in sys.modules if m == "pip" or m.startswith("pip.")]:
    del sys.modules[name]
if importlib.util.find_spec("pip") is None:
    sys.stderr.write("pip: not in this target's environment (%s); gunicorn-bisect installs "
                     "packages into it with --with REQ\\n" % os.environ.get("VIRTUAL_ENV"))
    sys.exit(2)
runpy.run_module("pip", run_name="__main__", alter_sys=True)
"""
PIP_SCRIPT = '#!/bin/sh\nexec python -m pip "$@"\n'

EXIT_UNTESTABLE = 125
POLL = 0.02  # seconds between looks at the command, the clock and Ctrl-C
TAIL_LINES = 3
TAIL_CHARS = 300
LOG_BYTES = 64 * 1024  # what -v shows and the tail is taken from: the end of the output
OUTPUT_CAP = 32 * 1024 * 1024  # a command that writes more is stopped (`yes` fills a disk)


@dataclass(frozen=True)
class Observation:
    """How the command ended (``decide`` judges this, nothing else)."""

    exit_code: int | None  # the shell's exit status; None when killed or never started
    signal: int | None = None  # the signal that killed the shell itself
    timed_out: bool = False
    tail: str = ""  # the last non-empty lines of its output, joined with " | "
    seconds: float = 0.0
    launch_error: str = ""  # the command could not even be started
    flooded: bool = False  # stopped for writing more than OUTPUT_CAP bytes of output


def output_tail(text: str, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> str:
    """The last few non-empty lines as one line, cut from the left to ``chars``."""
    kept = [ln.strip() for ln in text.splitlines() if ln.strip()][-lines:]
    joined = " | ".join(kept)
    if len(joined) > chars:
        joined = "..." + joined[-(chars - 3) :]
    return joined


def decide(obs: Observation) -> Decision:
    """git bisect run's rules: 0 pass, 125 cannot tell, 1-127 fail, the rest error."""
    if obs.launch_error:
        return Decision(Verdict.ERROR, f"could not start the command: {obs.launch_error}")
    code, verdict = obs.exit_code, Verdict.ERROR
    if obs.flooded:
        head = f"stopped: wrote more than {OUTPUT_CAP // (1024 * 1024)} MiB"
    elif obs.timed_out:
        head = f"ran out after {obs.seconds:g} s"
    elif obs.signal is not None:
        head = f"killed by {processes.signal_name(obs.signal)}"
    elif code is None:
        head = "no exit status"
    elif code == EXIT_UNTESTABLE:
        head = "cannot tell (exit 125)"
    else:
        head = f"exit {code}"
        verdict = Verdict.PASS if code == 0 else Verdict.FAIL if 1 <= code <= 127 else Verdict.ERROR
    return Decision(verdict, f"{head}: {obs.tail}" if obs.tail else f"{head} (no output)")


def _absolute_program(command: str, origin: Path) -> tuple[str, Path | None]:
    """CMD runs in a private directory: a plain first word naming a path (``./check.sh``)
    is made absolute (ScenarioError when it is missing or not executable); the rest is the
    shell's."""
    found = re.match(r"(\s*)([\w@%+=:,./-]+)(?=\s|$)", command)
    if not found or "/" not in found.group(2):
        return command, None
    word = found.group(2)
    path = Path(word) if os.path.isabs(word) else origin / word
    if not path.exists():
        raise ScenarioError(f"--run: {word}: no such file")
    if path.is_dir():
        raise ScenarioError(f"--run: {word}: is a directory")
    if not os.access(path, os.X_OK):
        raise ScenarioError(
            f"--run: {word}: not executable (chmod +x it, or run it with sh {word})"
        )
    path = path.resolve()
    return found.group(1) + shlex.quote(str(path)) + command[found.end() :], path


class CommandScenario(Scenario):
    """The user's command as a scenario: no server of ours, only process hygiene."""

    DESCRIPTION = "your own command, git-bisect-run exit codes"

    def __init__(self, options: Options, origin: Path | None = None) -> None:
        if options.run is None or not options.run.strip():
            raise ScenarioError("--run needs a command")
        self.options = options
        self.command = options.run
        self.origin = (origin or Path.cwd()).resolve()
        self.shell_command, self.program = _absolute_program(self.command, self.origin)

    def decide(self, observation: Any) -> Decision:
        return decide(observation)

    def about(self) -> About:
        """The header shows the command as given (prefixed by the name: "run: CMD"); the
        record names the file it runs, with its sha256, when there is one."""
        named: dict[str, Any] = {"command": self.command}
        program = self.program
        if program is None:  # a first word that names a file here: the file the shell runs
            try:
                words = shlex.split(self.command)
            except ValueError:  # unbalanced quotes: the shell will say so
                words = []
            if words and (self.origin / words[0]).is_file():
                program = (self.origin / words[0]).resolve()
        if program is not None:
            named["file"] = str(program)
            named["sha256"] = sha256_of(program)
        parameters = {"command": self.command, "timeout": self.options.timeout}
        if self.options.requirements:
            parameters["with"] = list(self.options.requirements.requirements)
        title = "Gunicorn bisection report: your check"
        return About("run", self.DESCRIPTION, self.command, title, parameters, named)

    def environment(
        self, ctx: RunContext, mark: Path, token: str, shim: Path, port: int
    ) -> dict[str, str]:
        """The harness's environment minus its Python, plus the target's and ours: the
        ``pip_shim`` directory after the target's own, the run's own free ``port``."""
        env = processes.child_env(token, keep_python_settings=True)
        bins = [str(ctx.python.parent), str(shim / "bin"), env.get("PATH", os.defpath)]
        env["PATH"] = os.pathsep.join(bins)
        env["VIRTUAL_ENV"] = str(ctx.env_root)
        env[TARGET_ENV] = ctx.sha or ctx.label
        env[PYTHON_ENV] = str(ctx.python)
        env[SHA_ENV] = ctx.sha or ""
        env[ORIGIN_ENV] = str(self.origin)
        env[PORT_ENV] = str(port)
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (shim, ctx.compat_dir) if p)
        if ctx.compat_dir is not None:
            env[SHIM_MARK_ENV] = str(mark)
        return env

    def run(self, ctx: RunContext, cancel: Cancel) -> RunResult:
        """Run CMD once, bounded by ``ctx.timeout``; always kill all it started."""
        root = private_dir("gunicorn-bisect-run-", "work/" + SOCKET_NAME)
        work = root / "work"
        work.mkdir(mode=0o700)
        out_path, mark = root / "output.log", root / "compat.mark"
        shim = pip_shim(root / "pip-shim")
        token = uuid.uuid4().hex
        port = reserve_port()
        started = time.monotonic()
        proc: subprocess.Popen | None = None
        timed_out = flooded = False
        try:
            try:
                proc = processes.launch(
                    ["/bin/sh", "-c", self.shell_command],
                    cwd=work,
                    env=self.environment(ctx, mark, token, shim, port),
                    output=out_path,
                )
            except OSError as exc:
                obs = Observation(None, launch_error=exc.strerror or str(exc))
                return RunResult(obs, duration=time.monotonic() - started)
            deadline = started + ctx.timeout
            while proc.poll() is None:
                timed_out = time.monotonic() >= deadline
                flooded = not timed_out and _size(out_path) > OUTPUT_CAP
                if timed_out or flooded or cancel.wait(POLL):
                    break
            seconds = time.monotonic() - started
        finally:
            try:
                if proc is not None:
                    processes.terminate(proc, token)
            finally:  # the directory (and the port) go even if killing went wrong
                release_port(port)
                log = _read_end(out_path)
                compat_used = mark.exists()
                shutil.rmtree(root, ignore_errors=True)
        cancel.raise_if_set()  # Ctrl-C: everything is gone, now stop
        code = None if timed_out or flooded else proc.returncode
        obs = Observation(
            exit_code=code if code is None or code >= 0 else None,
            signal=-code if code is not None and code < 0 else None,
            timed_out=timed_out,
            flooded=flooded,
            tail=output_tail(log),
            seconds=ctx.timeout if timed_out else round(seconds, 3),
        )
        return RunResult(obs, log=log, duration=seconds, compat_used=compat_used)


def pip_shim(directory: Path) -> Path:
    """A ``pip`` package and ``bin/pip`` that run the target's pip or say it is absent."""
    (directory / "pip").mkdir(parents=True)
    (directory / "pip" / "__init__.py").write_text("")
    (directory / "pip" / "__main__.py").write_text(PIP_SHIM)
    (directory / "bin").mkdir()
    for name in ("pip", "pip3"):
        script = directory / "bin" / name
        script.write_text(PIP_SCRIPT)
        script.chmod(0o755)
    return directory


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_end(path: Path, limit: int = LOG_BYTES) -> str:
    """The end of the command's output (a chatty command may write megabytes)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    if size > limit:  # the first line is probably cut in the middle
        text = text.split("\n", 1)[-1]
    return text

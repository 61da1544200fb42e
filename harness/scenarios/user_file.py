"""A user's scenario file, imported and validated: every way it can be unusable is one
line (``ScenarioError``, exit status 2) before anything is built or booted.

The file defines (only ``check`` is required)::

    \"\"\"One line: what this scenario shows (the report's description).\"\"\"
    APP = "...WSGI module source, defines app..."  # default: a plain Hello World
    REQUIRES = ["flask>=2"]                       # what the app imports (as --with)
    SETTINGS = {"workers": 3, "threads": 5}        # gunicorn settings
    BIND = "unix"                                  # or "tcp"
    TIMEOUT = 60                                   # seconds this check needs (--timeout wins)
    TRACKER = 3648                                 # the upstream issue it reproduces
    ID = "PYSEC-2026-1434"                         # the OSV record's id (--format osv)
    ALIASES = ["CVE-2024-1135"]                    # the advisory's other ids (its aliases)

    def check(server):
        ...
        return "fail", "socket file gone after a worker exit"
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import itertools
import subprocess
import sys
import tempfile
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from harness.build.index import sha256_of
from harness.host import processes
from harness.scenarios import app_bottle
from harness.scenarios.base import ScenarioError
from harness.scenarios.server import PLAIN_APP

FUNCTION = "check"
#: gunicorn settings the harness owns (where it listens, foreground, its log)
OWNED = frozenset({"bind", "daemon", "pidfile", "errorlog", "loglevel"})
#: a REQUIRES the harness serves from its own wheel (the report's bottle); any other
#: requirement goes into the run's requirement layer, as --with does
SUPPORTED = {"bottle": app_bottle.BOTTLE_AS_REPORTED}


def harness_provided(req: Requirement) -> bool:
    """bottle at a version the harness's own wheel satisfies (0.12.13 where it runs)."""
    name = canonicalize_name(req.name)
    return name in SUPPORTED and (
        not req.specifier or req.specifier.contains(SUPPORTED[name], prereleases=True)
    )


_serial = itertools.count(1)

#: seconds a scenario file's import (its module-level code) may take, in the trial
IMPORT_LIMIT = 30.0
# The trial: the file imported once in a throwaway process, its output discarded, so that
# a loop, os._exit or a flood at module level is one line instead of a hung or vanished
# harness.  Whatever it raises is left to the real import, which names the line.
_TRIAL = """\
import importlib.util, os, sys
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
sys.path.insert(0, sys.argv[2])
spec = importlib.util.spec_from_file_location("gunicorn_bisect_trial", sys.argv[1])
try:
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
except BaseException:
    pass
open(sys.argv[3], "w").close()
os._exit(0)
"""
_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ScenarioFile:
    """What a scenario file defines, validated."""

    path: Path
    sha256: str
    description: str
    function: Callable[[Any], Any]
    app: str
    requires: tuple[Requirement, ...]
    settings: dict[str, Any]
    bind: str
    timeout: float | None = None  # the file's own TIMEOUT: what its check needs
    tracker: int | None = None  # the upstream issue number (the listing, the OSV reference)
    osv_id: str = ""  # the OSV record's id; "" gives local_id(package, name)
    aliases: tuple[str, ...] = ()  # the advisory's other ids (the OSV record's aliases)


def load(path: Path) -> ScenarioFile:
    """Import and validate a scenario file; ScenarioError (one line) when it cannot be used."""
    if not path.is_file():
        raise ScenarioError(f"scenario file {path}: no such file")
    try:
        sha = sha256_of(path)
    except OSError as exc:
        raise ScenarioError(f"scenario file {path}: {exc.strerror or exc}") from None
    trial_import(path)
    module = _import(path)
    doc = (getattr(module, "__doc__", None) or "").strip()
    function = _function(path, getattr(module, FUNCTION, None))
    app = _app(path, getattr(module, "APP", PLAIN_APP))
    settings = _settings(path, getattr(module, "SETTINGS", {}))
    bind = getattr(module, "BIND", "unix")
    if bind not in ("unix", "tcp"):
        _unusable(path, f"BIND must be 'unix' or 'tcp', not {bind!r}")
    return ScenarioFile(
        path=path,
        sha256=sha,
        description=doc.splitlines()[0].strip() if doc else "",
        function=function,
        app=app,
        requires=_requires(path, getattr(module, "REQUIRES", [])),
        settings=settings,
        bind=bind,
        timeout=_number(path, "TIMEOUT", getattr(module, "TIMEOUT", None)),
        tracker=_tracker(path, getattr(module, "TRACKER", None)),
        osv_id=_text(path, "ID", getattr(module, "ID", "")),
        aliases=tuple(_text(path, "ALIASES", a) for a in getattr(module, "ALIASES", ())),
    )


def _number(path: Path, name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        _unusable(path, f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


def _tracker(path: Path, value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        _unusable(path, f"TRACKER must be the upstream issue number, not {value!r}")
    return value


def _text(path: Path, name: str, value: Any) -> str:
    if not isinstance(value, str):
        _unusable(path, f"{name} must be a string, not {value!r}")
    return value


def _unusable(path: Path, why: str) -> NoReturn:
    raise ScenarioError(f"scenario file {path}: {why}") from None


def _where(exc: BaseException, path: Path) -> str:
    """' (line N)' of the deepest frame in the scenario file, if any."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    return f" (line {frames[-1].lineno})" if frames else ""


def trial_import(path: Path, limit: float = IMPORT_LIMIT) -> None:
    """Import the file in a child process first: ScenarioError if that does not finish
    within ``limit`` seconds or ends the process (os._exit, a crash)."""
    token = f"trial-{uuid.uuid4().hex}"
    with tempfile.TemporaryDirectory(prefix="gunicorn-bisect-trial-") as tmp:
        done = Path(tmp) / "done"
        argv = [sys.executable, "-c", _TRIAL, str(path.resolve()), str(_ROOT), str(done)]
        env = processes.child_env(token)
        proc = processes.launch(argv, cwd=path.resolve().parent, env=env, output=Path("/dev/null"))
        try:
            status = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            status = None
        finally:
            processes.terminate(proc, token)  # and whatever its import started
        if status is None:
            _unusable(
                path, f"importing it did not finish within {limit:g} s (a loop at module level?)"
            )
        if not done.exists():
            if status < 0:
                name = processes.signal_name(-status)
                _unusable(path, f"importing it killed the process ({name})")
            _unusable(path, f"importing it ended the process with status {status} (os._exit?)")


def _import(path: Path) -> Any:
    """Import the file under a module name of its own; every failure is one line."""
    name = f"gunicorn_bisect_scenario_{next(_serial)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        _unusable(path, "cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        _unusable(path, f"syntax error at line {exc.lineno}: {exc.msg}")
    except BaseException as exc:  # ImportError, NameError, SystemExit ...
        sys.modules.pop(name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        what = traceback.format_exception_only(type(exc), exc)[-1].strip()
        _unusable(path, f"does not import{_where(exc, path)}: {what}")
    return module


def _function(path: Path, function: Any) -> Callable[[Any], Any]:
    if not callable(function):
        _unusable(path, f"defines no function {FUNCTION}(server)")
    try:
        inspect.signature(function).bind(None)
    except TypeError:
        _unusable(path, f"{FUNCTION}() must take one argument, the server")
    except ValueError:
        pass  # no signature to inspect (a builtin): let the call tell
    return function


def _app(path: Path, app: Any) -> str:
    if not isinstance(app, str):
        _unusable(path, "APP must be a string (a WSGI module's source)")
    try:
        compile(app, f"{path}:APP", "exec")
    except SyntaxError as exc:
        _unusable(path, f"APP has a syntax error at its line {exc.lineno}: {exc.msg}")
    return app


def _literal(value: Any) -> bool:
    """Does ``repr(value)`` read back as the same value (it is written into a config file)?"""
    try:
        return ast.literal_eval(repr(value)) == value
    except (ValueError, SyntaxError):
        return False


def _settings(path: Path, settings: Any) -> dict[str, Any]:
    if not isinstance(settings, dict) or not all(
        isinstance(k, str) and k.isidentifier() for k in settings
    ):
        _unusable(path, "SETTINGS must be a dict of gunicorn setting names")
    owned = sorted(OWNED & set(settings))
    if owned:
        _unusable(
            path,
            f"SETTINGS may not set {', '.join(owned)} "
            f"(the harness owns {', '.join(sorted(OWNED))}; use BIND = 'unix' or 'tcp')",
        )
    for key, value in settings.items():
        if not _literal(value):
            _unusable(path, f"SETTINGS[{key!r}] = {value!r} is not a plain value")
    return dict(settings)


def _requires(path: Path, value: Any) -> tuple[Requirement, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(r, str) for r in value):
        _unusable(path, "REQUIRES must be a list of strings")
    out = []
    for text in value:
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            _unusable(path, f"REQUIRES {text!r}: {str(exc).splitlines()[0]}")
        if req.url:
            _unusable(path, f"REQUIRES {text!r}: direct URLs are not supported")
        out.append(req)
    return tuple(out)

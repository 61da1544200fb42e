"""A case: one module that says what it shows and how it judges it, validated.  The
built-ins, the catalogue's cases and a user's FILE.py are all cases; every way a file can
be unusable is one line (``ScenarioError``, exit status 2) before anything is built.

A module defines ``observe(server)`` and a pure ``decide(obs)``, or only ``check(server)``
(README: "Your own scenario file"), and optionally APP, REQUIRES, SETTINGS, BIND, TIMEOUT,
TRACKER, ID, ALIASES, CANNOT and HONOURS (the options it refuses or takes).
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import itertools
import re
import subprocess
import sys
import tempfile
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from filelock import FileLock
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from harness.host import processes
from harness.provision import index, wheels
from harness.provision.environments import Extra
from harness.provision.index import sha256_of
from harness.provision.interpreters import Interpreter
from harness.scenarios.base import ScenarioError
from harness.scenarios.server import PLAIN_APP

FUNCTION = "check"
#: gunicorn settings the harness owns (where it listens, foreground, its log)
OWNED = frozenset({"bind", "daemon", "pidfile", "errorlog", "loglevel"})
#: a REQUIRES the harness serves from its own wheel (the report's bottle); any other
#: requirement goes into the run's installed requirement set, as --with does
SUPPORTED = {"bottle": "0.12.13"}


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


#: Options every case must name to take: they drive the recycling built-ins only.
RECYCLING = {
    "load": "it sends its own requests (--load drives the recycling scenarios' load)",
    "trigger": "it makes its own events (--trigger is how the recycling scenarios end workers)",
}
#: Options a case may refuse (CANNOT) or take (HONOURS), as the command line spells them.
OPTIONS = frozenset(
    "proxy app bind worker_class with load gunicorn_config path trigger workers threads "
    "max_requests".split()
)


@dataclass(frozen=True)
class Case:
    """What a case module defines, validated."""

    name: str  # "socket-loss", "reload-leak"; "file" for a user's FILE.py
    path: Path
    sha256: str
    description: str
    observe: Callable[[Any], Any]  # observe(server), or a user's check(server)
    decide: Callable[[Any], Any] | None  # pure: observe's facts -> a verdict; None: check
    app: str
    requires: tuple[Requirement, ...]
    settings: dict[str, Any]
    bind: str
    timeout: float | None = None  # the case's own TIMEOUT: what it needs
    tracker: int | None = None  # the upstream issue number (the listing, the OSV reference)
    osv_id: str = ""  # the OSV record's id; "" gives local_id(package, name)
    cannot: dict[str, str] = field(default_factory=dict)  # option -> why it is refused
    builtin: bool = False  # one of harness.scenarios' own (its header shows its settings)
    hooks: dict[str, Any] = field(default_factory=dict)  # a built-in's TITLE, AXES ...
    aliases: tuple[str, ...] = ()  # the advisory's other ids (the OSV record's aliases)

    @property
    def function(self) -> str:
        return "observe" if self.decide is not None else FUNCTION


def from_module(module: Any, path: Path, name: str = "file", builtin: bool = False) -> Case:
    """A case from an imported module; ScenarioError (one line) for what is unusable."""
    doc = (getattr(module, "__doc__", None) or "").strip()
    observe, decide = getattr(module, "observe", None), getattr(module, "decide", None)
    if callable(observe) and callable(decide):
        observe = _function(path, observe, "observe")
    else:
        observe, decide = _function(path, getattr(module, FUNCTION, None), FUNCTION), None
    bind = getattr(module, "BIND", "unix")
    if bind not in ("unix", "tcp"):
        _unusable(path, f"BIND must be 'unix' or 'tcp', not {bind!r}")
    return Case(
        name=name,
        path=path,
        sha256=sha256_of(path),
        description=doc.splitlines()[0].strip() if doc else "",
        observe=observe,
        decide=decide,
        app=_app(path, getattr(module, "APP", PLAIN_APP)),
        requires=_requires(path, getattr(module, "REQUIRES", [])),
        settings=_settings(path, getattr(module, "SETTINGS", {})),
        bind=bind,
        timeout=_number(path, "TIMEOUT", getattr(module, "TIMEOUT", None)),
        tracker=_tracker(path, getattr(module, "TRACKER", None)),
        osv_id=_osv_id(path, _text(path, "ID", getattr(module, "ID", ""))),
        cannot=_cannot(path, getattr(module, "CANNOT", {}), getattr(module, "HONOURS", ())),
        builtin=builtin,
        hooks={k: getattr(module, k) for k in HOOKS if hasattr(module, k)},
        aliases=tuple(_text(path, "ALIASES", a) for a in getattr(module, "ALIASES", ())),
    )


#: What a built-in may add: its report's heading, more questions for its table, fixed
#: parameters for its record, its app's name, whether importing the worker class is what
#: it judges, where bench/ runs it, the facts of its row, the observation of a failed boot.
HOOKS = "TITLE AXES PARAMETERS APP_NAME JUDGES_IMPORTS RELEASES facts not_booted".split()


def load(path: Path) -> Case:
    """Import and validate a user's case file (after a trial import in a throwaway process)."""
    if not path.is_file():
        raise ScenarioError(f"scenario file {path}: no such file")
    trial_import(path)
    return from_module(_import(path), path)


def _cannot(path: Path, cannot: Any, honours: Any) -> dict[str, str]:
    if not isinstance(cannot, dict) or not all(
        k in OPTIONS and isinstance(v, str) and v for k, v in cannot.items()
    ):
        _unusable(path, f"CANNOT must map options ({', '.join(sorted(OPTIONS))}) to why not")
    if not isinstance(honours, (tuple, list)) or not set(honours) <= OPTIONS:
        _unusable(path, "HONOURS must list options")
    return {k: v for k, v in {**RECYCLING, **cannot}.items() if k not in honours}


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


def _osv_id(path: Path, value: str) -> str:
    """An OSV id is one printable token (``GHSA-xxxx``, ``PYSEC-2024-1``): no newline."""
    if value and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]*", value):
        _unusable(
            path, f"ID must be one word of letters, digits and .-_: (an OSV id), not {value!r}"
        )
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


def _function(path: Path, function: Any, name: str) -> Callable[[Any], Any]:
    if not callable(function):
        _unusable(path, f"defines no function {FUNCTION}(server) (or observe and decide)")
    try:
        inspect.signature(function).bind(None)
    except TypeError:
        _unusable(path, f"{name}() must take one argument, the server")
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


# -- the report's app: bottle "Hello World" (its web.py), and the bottle wheel for it ----------
# bottle 0.12.13 as reported where it runs (Python <= 3.9; it imports
# ``collections.MutableMapping``), else the newest 0.12 wheel.  0.12.13 ships only an
# sdist whose setup.py needs ``inspect.getargspec``, so it is built once with the target
# interpreter's own pip, offline, from cached setuptools/wheel.
BOTTLE_AS_REPORTED = SUPPORTED["bottle"]
BOTTLE_APP = """\
# -*- coding:utf-8 -*-
# The report's web.py
from bottle import route, default_app


@route('/')
def index():
    return 'Hello World'


app = default_app()
"""


def _module_wheel(sdist: Path, out_dir: Path) -> Path | None:
    """bottle is one module: its wheel is ``bottle.py`` as the sdist has it (running its
    setup.py through pip costs seconds on a cold cache, for the same file)."""
    import tarfile

    try:
        with tarfile.open(sdist) as tf:
            top = [m for m in tf.getmembers() if m.name.count("/") == 1]
            data = tf.extractfile([m for m in top if m.name.endswith("/bottle.py")][0]).read()
    except (OSError, tarfile.TarError, AttributeError, IndexError):  # no such file in it
        return None
    return wheels.make_wheel("bottle", BOTTLE_AS_REPORTED, {"bottle.py": data}, out_dir)


def bottle_for(interp: Interpreter, cache_dir: Path) -> Extra:
    wheel_dir = cache_dir / "wheels"
    if interp.version_tuple < (3, 10):
        pattern = f"bottle-{BOTTLE_AS_REPORTED}-*.whl"
        with FileLock(str(cache_dir / ".bottle.lock"), mode=0o600):
            built = [w for w in sorted(wheel_dir.glob(pattern)) if wheels.intact(w)]
            if built:
                return Extra("bottle", BOTTLE_AS_REPORTED, built[0])
            proj = index.project("bottle", cache_dir)
            sdist = next(
                (f for f in proj.releases.get(BOTTLE_AS_REPORTED, ()) if f.packagetype == "sdist"),
                None,
            )
            if sdist is not None:
                src = index.download(sdist, wheel_dir / "sdist")
                path = _module_wheel(src, wheel_dir) or wheels.build_sdist_with(
                    interp, src, wheel_dir, cache_dir
                )
                if path is not None:
                    return Extra("bottle", BOTTLE_AS_REPORTED, path)
    wheel, version = wheels.newest_wheel("bottle", interp, cache_dir, series=(0, 12))
    return Extra("bottle", version, wheel)

"""Isolated environments: one per (gunicorn artifact, interpreter), cached and verified.

A virtualenv (``virtualenv`` where it supports the interpreter, the stdlib ``venv`` for
3.6-3.8, equally isolated) into which gunicorn's wheel is unpacked with ``installer``; the
rest is shared through a ``.pth`` file: no pip start-up per environment. Built in a
temporary directory and renamed into place with its manifest written last, so an
interrupted build is never taken for a finished one; on reuse the installed gunicorn is
checked against the artifact's digest before it is trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from harness.host import processes
from harness.host.fsutil import (
    atomic_write_text,
    keep_recorded_bytecode,
    tree_digest,
)
from harness.model.errors import HarnessError
from harness.provision import wheels
from harness.provision.interpreters import Interpreter
from harness.provision.requirements import InstalledSet, SetRefused, dependency_set
from harness.provision.wheels import Artifact, unpacked

MANIFEST = "gunicorn-bisect-env.json"
LAYOUT = 7  # bump when the way environments are built changes (7: the trial for 0.17-18.0)
SHARED_PTH = "gunicorn-bisect-shared.pth"

# The boot trial, in the target Python (3.x or 2.7): can it import gunicorn, resolve the
# worker class (argv 1), build its command-line parser and import the scenario's app's
# modules (argv 2, a JSON list)?
_BOOT_TRIAL = r"""
import json, sys
out = {"python": sys.version.split()[0]}
try:
    import gunicorn
    out["gunicorn"] = gunicorn.__version__ if isinstance(gunicorn.__version__, str) else ".".join(map(str, gunicorn.version_info))
    out["file"] = gunicorn.__file__
    from gunicorn.config import Config
    from gunicorn.app.wsgiapp import WSGIApplication
    cfg = Config()
    if "threads" in cfg.settings:  # 19.0+; older releases have no threads setting
        cfg.set("threads", 2)
    if sys.argv[1]:
        cfg.set("worker_class", sys.argv[1])
    out["worker"] = cfg.worker_class.__module__
    cfg.parser()  # the command line's parser: 0.17.0's passes version= (argparse of 2.7 only)
    for name in json.loads(sys.argv[2]):
        module = __import__(name)
        out[name] = getattr(module, "__version__", "?")
    out["ok"] = True
except (KeyboardInterrupt, MemoryError):
    raise  # an interrupt or a lack of memory is no answer: exit without one
except BaseException as exc:
    out["ok"] = False
    import re
    # gunicorn wraps the real error's traceback in its own message: keep the innermost
    # "SomeError: message" (which may span lines) as one line
    lines = [l.strip() for l in ("%s: %s" % (type(exc).__name__, exc)).splitlines()]
    lines = [l for l in lines if l and l not in ("]", "[")]
    heads = [i for i, l in enumerate(lines) if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b", l)]
    tail = lines[heads[-1]:] if heads else lines[-1:]
    out["error"] = " ".join(tail).rstrip("]").strip() or type(exc).__name__
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Extra:
    """A wheel an environment needs besides gunicorn and setuptools (the app's bottle)."""

    name: str
    version: str
    wheel: Path


@dataclass(frozen=True)
class EnvNeeds:
    """What a scenario asks of an environment; part of the environment's cache key."""

    extras: tuple[Extra, ...] = ()
    trial_imports: tuple[str, ...] = ()  # the boot trial must import these too
    worker_class: str = ""  # resolved by the boot trial ("" = gunicorn's own choice)
    user_set: InstalledSet | None = (
        None  # the user's requirements (requirements.ensure), ahead of the extras
    )
    #: gunicorn's own Requires-Dist (``packaging`` for 21.0+), set here, not by scenarios
    dependencies: InstalledSet | None = None


class EnvError(HarnessError):
    """An environment could not be built."""


class TrialInterrupted(EnvError):
    """The boot trial ended without an answer (a signal, a timeout, an OOM kill): nothing
    about that Python may be remembered from it."""


@dataclass(frozen=True)
class Environment:
    """A built environment and what its boot trial found."""

    path: Path
    interpreter: Interpreter
    artifact: Artifact
    extras: dict[str, str]  # name -> version of what the scenario asked for besides gunicorn
    works: bool
    reason: str  # why it does not work ("" when it does)
    reused: bool

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def site_packages(self) -> Path:
        return _site(self.path, self.interpreter)


def _site(root: Path, interp: Interpreter) -> Path:
    return root / "lib" / f"python{interp.minor}" / "site-packages"


def _plan(
    artifact: Artifact, interp: Interpreter, cache_dir: Path, needs: EnvNeeds
) -> tuple[EnvNeeds, list[Path], str]:
    """``needs`` plus the installed set of gunicorn's own dependencies (none for 19.x/20.x), the
    wheels (gunicorn's first) and a digest of every input that shapes the environment: a
    changed choice of any wheel builds a new environment instead of reusing an old one."""
    deps = dependency_set(artifact, interp, cache_dir)
    needs = needs if deps is None else replace(needs, dependencies=deps)
    setuptools = wheels.setuptools_for(interp, cache_dir)
    wheel_files = [artifact.wheel, *(e.wheel for e in needs.extras), setuptools]
    inputs = [
        LAYOUT,
        artifact.digest,
        [w.name for w in wheel_files],
        interp.path,
        interp.version,
        needs.worker_class,
        list(needs.trial_imports),
        needs.user_set and [str(needs.user_set.path), needs.user_set.digest],
    ]
    if needs.dependencies:  # only when there are any: 19.x/20.x environments keep their keys
        inputs.append([str(needs.dependencies.path), needs.dependencies.digest])
    return needs, wheel_files, hashlib.sha256(json.dumps(inputs).encode()).hexdigest()


#: Python 2.7's "environment" (no venv module; virtualenv >= 20.22 cannot create one): a
#: bin/python that runs 2.7 with the site-packages and the shared copies its .pth lists
#: first on sys.path (Python 2 reads no pyvenv.cfg; its own site-packages stays last).
_PY2_PYTHON = """\
#!/bin/sh
# gunicorn-bisect: a Python 2.7 environment (see harness/provision/environments.py)
site="$(cd "$(dirname "$0")/.." && pwd)/lib/python2.7/site-packages"
shared="$(grep -v '^import' "$site/@PTH@" 2>/dev/null | tr '\\n' ':')"
PYTHONPATH="$site:$shared${PYTHONPATH:-}" exec @PYTHON@ "$@"
"""


def _create_venv(interp: Interpreter, dest: Path) -> None:
    if interp.version_tuple < (3,):
        _site(dest, interp).mkdir(parents=True, exist_ok=True)
        (dest / "bin").mkdir(parents=True, exist_ok=True)
        script = _PY2_PYTHON.replace("@PTH@", SHARED_PTH).replace("@PYTHON@", interp.path)
        for name in ("python", "python2"):
            (dest / "bin" / name).write_text(script)
            (dest / "bin" / name).chmod(0o755)
        return
    if interp.version_tuple >= (3, 9):
        from virtualenv import cli_run

        args = "--no-seed --activators= --no-periodic-update --quiet".split()
        try:
            cli_run([*args, "-p", interp.path, str(dest)], setup_logging=False)
            return
        except (Exception, SystemExit) as exc:  # virtualenv reports failures as SystemExit too
            raise EnvError(f"virtualenv failed for Python {interp.version}: {exc}") from None
    # virtualenv 21 cannot serve 3.6-3.8 fully; the stdlib venv is just as isolated.
    try:
        proc = processes.run_to_end(
            [interp.path, "-m", "venv", "--without-pip", str(dest)], timeout=120, what="venv"
        )
    except processes.Undecided as exc:
        raise EnvError(f"venv failed for Python {interp.version}: {exc}") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise EnvError(f"venv failed for Python {interp.version}: {last}")


def _install(wheel: Path, env_root: Path, final_root: Path, interp: Interpreter) -> None:
    from installer import install
    from installer.destinations import SchemeDictionaryDestination
    from installer.sources import WheelFile

    site = _site(env_root, interp)  # made by the venv; installer makes what else it writes in
    scheme = {
        "purelib": str(site),
        "platlib": str(site),
        "headers": str(env_root / "include" / "site" / f"python{interp.minor}"),
        "scripts": str(env_root / "bin"),
        "data": str(env_root),
    }
    # overwrite: 18.0's wheel (built from its sdist) ships bin/gunicorn twice, as a data
    # script and as a console_scripts entry point; the directory is new, nothing else is there
    dest = SchemeDictionaryDestination(
        scheme,
        interpreter=str(final_root / "bin" / "python"),
        script_kind="posix",
        overwrite_existing=True,
    )
    with WheelFile.open(wheel) as source:
        install(source, dest, {"INSTALLER": b"gunicorn-bisect\n"})


def _try_boot(python: Path, needs: EnvNeeds, flags: tuple[str, ...] = (), path: str = "") -> dict:
    """The boot trial's answer; TrialInterrupted unless it ran to its end and said so: a
    trial killed by the signal that interrupts the run (Ctrl-C and ``timeout`` signal the
    whole process group) must not be remembered as that Python's refusal."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # none in the environment, nor the shared copies
    if path:
        env["PYTHONPATH"] = path
    argv = [str(python), *flags, "-c", _BOOT_TRIAL, needs.worker_class]
    argv.append(json.dumps(list(needs.trial_imports)))
    try:
        proc = processes.run_to_end(argv, timeout=60, env=env, what=f"the boot trial on {python}")
    except processes.Undecided as exc:
        raise TrialInterrupted(str(exc)) from None
    try:
        found = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        found = None
    if proc.returncode != 0 or not isinstance(found, dict) or "ok" not in found:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise TrialInterrupted(
            f"the boot trial on {python} gave no answer (exit {proc.returncode}: {last})"
        )
    return found


def _pth_lines(wheels: list[Path], needs: EnvNeeds, cache_dir: Path) -> list[str]:
    """The user's installed set first (their pins win over the harness's own picks, eventlet),
    then gunicorn's dependencies, then the shared unpacked extras and setuptools."""
    shared = [str(x.path) for x in (needs.user_set, needs.dependencies) if x is not None]
    return [*shared, *(str(unpacked(w, cache_dir)) for w in wheels)]


def _load(
    path: Path,
    interp: Interpreter,
    artifact: Artifact,
    shared: list[Path],
    cache_dir: Path,
    needs: EnvNeeds,
) -> Environment | None:
    """A finished environment, if it is complete and holds exactly our gunicorn: its
    console script (else another gunicorn on PATH would answer for it), its code, every
    file as installed and the intact shared copies (a pruned cache) of ``shared``."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        env = Environment(
            path,
            interp,
            artifact,
            manifest.get("extras", {}),
            bool(manifest.get("works")),
            manifest.get("reason", ""),
            reused=True,
        )
        if not (
            manifest.get("digest") == artifact.digest
            and env.python.exists()
            and os.access(path / "bin" / "gunicorn", os.X_OK)
            and (env.site_packages / SHARED_PTH).read_text().split()
            == _pth_lines(shared, needs, cache_dir)
            and wheels.package_digest(wheels.dir_package_files(env.site_packages))
            == artifact.digest
            and manifest.get("tree") == tree_digest(path, MANIFEST)
        ):
            return None
    except (OSError, ValueError):
        return None
    keep_recorded_bytecode(path)
    return env


def preflight(artifact: Artifact, interp: Interpreter, cache_dir: Path, needs: EnvNeeds) -> str:
    """ "" if ``interp`` may boot this gunicorn, else why not (cached): the boot trial with
    ``-S`` on the unpacked wheels turns away Pythons too new for a release at a fraction of
    an environment's cost. A pass is not trusted alone: the environment is tried again."""
    try:
        needs, wheel_files, key = _plan(artifact, interp, cache_dir, needs)
    except SetRefused as exc:  # this Python cannot have gunicorn's own dependencies
        return str(exc)
    record = cache_dir / "preflight" / f"{key[:16]}.json"
    try:
        return json.loads(record.read_text())["reason"]
    except (OSError, ValueError, KeyError):
        pass
    gunicorn = str(unpacked(artifact.wheel, cache_dir))  # then the rest, as in the environment
    paths = [gunicorn, *_pth_lines(wheel_files[1:], needs, cache_dir)]
    trial = _try_boot(Path(interp.path), needs, flags=("-S",), path=os.pathsep.join(paths))
    reason = "" if trial.get("ok") else trial.get("error", "boot trial failed")
    atomic_write_text(
        record, json.dumps({"reason": reason, "python": interp.version, "label": artifact.label})
    )
    return reason


def _build(
    artifact: Artifact,
    interp: Interpreter,
    cache_dir: Path,
    needs: EnvNeeds,
    shared: list[Path],
    tmp: Path,
    final: Path,
    try_boot: bool,
) -> None:
    """Create the venv in ``tmp``, install gunicorn, share the rest (the installed sets, extras and
    setuptools through a .pth file: only gunicorn, the code under test, is installed and
    verified), try it, and write its manifest."""
    _create_venv(interp, tmp)
    _install(artifact.wheel, tmp, final, interp)
    (_site(tmp, interp) / SHARED_PTH).write_text(
        "\n".join(_pth_lines(shared, needs, cache_dir)) + "\n"
    )
    if wheels.package_digest(wheels.dir_package_files(_site(tmp, interp))) != artifact.digest:
        raise EnvError(f"installed gunicorn {artifact.label} does not match its wheel")
    found = _try_boot(tmp / "bin" / "python", needs) if try_boot else {"ok": True}
    ok = bool(found.get("ok"))
    if ok and try_boot and found.get("gunicorn") != artifact.version:
        ok = False
        found["error"] = (
            f"installed gunicorn reports {found.get('gunicorn')}, expected {artifact.version}"
        )
    manifest = {
        "layout": LAYOUT,
        "label": artifact.label,
        "sha": artifact.sha,
        "version": artifact.version,
        "digest": artifact.digest,
        "python": interp.version,
        "interpreter": interp.path,
        "extras": {
            **{e.name: e.version for e in needs.extras},
            **(needs.user_set.versions if needs.user_set else {}),
        },
        "works": ok,
        "tried": try_boot,
        "reason": found.get("error", ""),
        "tree": tree_digest(tmp, MANIFEST),  # checked on every reuse
    }
    atomic_write_text(tmp / MANIFEST, json.dumps(manifest, indent=1))


def ensure(
    artifact: Artifact,
    interp: Interpreter,
    cache_dir: Path,
    needs: EnvNeeds,
    try_boot: bool = True,
) -> Environment:
    """The cached environment for (artifact, interpreter, needs), or built now.
    ``try_boot=False`` skips the boot trial (a third of an environment's cost) for a commit,
    whose interpreter is fixed: one that cannot boot shows as "server did not start"."""
    needs, wheel_files, key = _plan(artifact, interp, cache_dir, needs)
    final = cache_dir / "envs" / f"gunicorn-{artifact.label}-py{interp.version}-{key[:12]}"
    shared = wheel_files[1:]
    env, built = wheels.built_once(
        final,
        lambda: _load(final, interp, artifact, shared, cache_dir, needs),
        lambda tmp: _build(artifact, interp, cache_dir, needs, shared, tmp, final, try_boot),
    )
    if env is None:
        raise EnvError(f"environment for gunicorn {artifact.label} did not verify after building")
    return replace(env, reused=not built)

"""Requirement sets: the user's own packages (``--with flask``) next to gunicorn.

Each set is installed once per interpreter, by pip's resolver, into a folder of its own (under
``layers/``) that every environment on that interpreter shares through its ``.pth``: 40
releases install Flask once. An installed set is sealed with a manifest (what was installed, a
digest of every file), hashed again on first use in a process, never used half-built.

pip runs in the target interpreter, from the newest pip wheel it admits (21.3.1 on 3.6):
all have the 2020 resolver, the interpreter's own pip is never used, and pip reads no
configuration: the harness's indexes go in ``PIP_INDEX_URL``/``PIP_EXTRA_INDEX_URL``.
gunicorn never comes from an installed set (pulled in by ``uvicorn-worker``, it is removed).

A set pip cannot install raises ``SetRefused`` (the runner tries the next Python) with
pip's decisive line and caches nothing; one whose packages do not import (eventlet 0.30.2
on 3.10+) too, and that refusal is remembered (``layers/refused``). An installed set keeps its
first resolution until the cache is cleared; a new pip release rebuilds nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from harness.host import fsutil, processes
from harness.host.fsutil import (
    NotReadable,
    atomic_write_text,
    extract_once,
    keep_recorded_bytecode,
    read_regular,
    remove_tree,
)
from harness.model.errors import HarnessError
from harness.provision import index, wheels
from harness.provision.interpreters import Interpreter
from harness.provision.wheels import Artifact, ArtifactError

LAYOUT = 1  # bump when the way installed sets are built changes
MANIFEST = "gunicorn-bisect-layer.json"
NEVER_SHARED = "gunicorn"  # the code under test comes from the target, never an installed set
INSTALL_TIMEOUT = 900  # seconds for one pip install (sdists may build)
# pip's settings that say how to reach an index, not which one: the user's, kept
_PIP_PASSTHROUGH = ("PIP_CERT", "PIP_CLIENT_CERT", "PIP_TRUSTED_HOST", "PIP_PROXY", "PIP_TIMEOUT")


class RequirementsInvalid(HarnessError):
    """A ``--with`` requirement or requirements file that is not a requirement."""


class SetRefused(ArtifactError):
    """This interpreter cannot have the requirement set."""


class SetUndecided(SetRefused):
    """pip or the import trial gave no answer (timeout, signal): never remembered."""


@dataclass(frozen=True)
class RequirementSet:
    """Requirements in a canonical order: ``flask`` + ``Jinja2`` is one set
    whatever the order or spelling."""

    requirements: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(canonicalize_name(Requirement(r).name) for r in self.requirements)

    @property
    def gunicorn(self) -> str | None:
        """The gunicorn requirement in the set, if any (it constrains the resolution only)."""
        return next((r for r, n in zip(self.requirements, self.names) if n == NEVER_SHARED), None)

    def __bool__(self) -> bool:
        return bool(self.requirements)


def _canonical(text: str, where: str) -> str:
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        why = str(exc).splitlines()[0]  # packaging adds the text and a caret below
        raise RequirementsInvalid(f"{where}: not a requirement: {text!r} ({why})") from None
    if req.url:
        raise RequirementsInvalid(f"{where}: {text!r}: direct URLs are not supported")
    req.name = canonicalize_name(req.name)
    return str(req)


REQUIREMENTS_CAP = 1 << 20  # a requirements file is a few lines


def parse(requirements: Sequence[str] = (), files: Sequence[Path] = ()) -> RequirementSet:
    """``--with REQ`` (repeatable) and ``--with-requirements FILE`` as one set; pip options in
    a file (``-r``, ``--index-url``) are refused: the index is the run's."""
    given = [(r, "--with") for r in requirements]
    for path in files:
        try:
            text = read_regular(Path(path), REQUIREMENTS_CAP).decode("utf-8")
        except NotReadable as exc:
            raise RequirementsInvalid(f"--with-requirements {path}: {exc}") from None
        except UnicodeDecodeError:
            raise RequirementsInvalid(f"--with-requirements {path}: not UTF-8 text") from None
        for number, raw in enumerate(text.splitlines(), 1):
            line = re.sub(r"(^|\s)#.*$", "", raw).strip()
            where = f"{path}:{number}"
            if line.startswith("-"):
                raise RequirementsInvalid(f"{where}: pip options are not supported here: {line!r}")
            if line:
                given.append((line, where))
    return RequirementSet(tuple(sorted({_canonical(r, where) for r, where in given})))


_HELP_ONLY = re.compile(r"ResolutionImpossible: for help visit|^\[notice\]")


def decisive_line(output: str) -> str:
    """pip's one line that says why: its last ``ERROR:`` line that is no pointer to the docs,
    else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [
        line[len("ERROR:") :].strip()
        for line in lines
        if line.startswith("ERROR:") and not _HELP_ONLY.search(line)
    ]
    if errors:
        return errors[-1]
    return lines[-1] if lines else "pip failed without a message"


def top_level_names(record: str) -> list[str]:
    """The public importable top-level packages and modules a distribution's RECORD installs."""
    names: dict[str, None] = {}
    for row in record.splitlines():
        path = row.split(",", 1)[0]
        head, sep, _ = path.partition("/")
        if sep:
            skip = head.endswith((".dist-info", ".data")) or head in ("bin", "__pycache__", "..")
            if not skip and head.isidentifier() and path.endswith(".py"):
                names.setdefault(head)
        elif head.endswith(".py") and head[:-3].isidentifier():
            names.setdefault(head[:-3])
    return [n for n in names if not n.startswith("_")]


@dataclass(frozen=True)
class InstalledSet:
    """A built, verified installed set: the directory environments put on their path."""

    path: Path
    requirements: RequirementSet
    installed: tuple[tuple[str, str], ...]  # (name, version) of everything pip installed
    digest: str  # of every file in the installed set: part of each environment's cache key
    built: bool  # True when this process built it, False when it found it built

    @property
    def versions(self) -> dict[str, str]:
        """name -> resolved version of what was asked for (what a row can show)."""
        asked = set(self.requirements.names)
        return {n: v for n, v in self.installed if n in asked}


def _with_credentials(url: str) -> str:
    """The index URL as pip must see it: with the user:password the harness took off it."""
    header = index._auth.get(urlsplit(url).netloc, "")
    if not header.startswith("Basic "):
        return url
    secret = base64.b64decode(header[len("Basic ") :]).decode()
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{secret}@{parts.netloc}"))


def pip_env(cache_dir: Path) -> tuple[dict[str, str], tuple[str, ...]]:
    """The environment pip runs in (no config file, the harness's indexes) and the
    credential-free index URLs (in an installed set's key)."""
    urls = index.indexes().urls
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "PIP_")) or k in _PIP_PASSTHROUGH
    }
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_INDEX_URL=_with_credentials(urls[0]),
        PIP_EXTRA_INDEX_URL=" ".join(_with_credentials(u) for u in urls[1:]),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PIP_CACHE_DIR=str(cache_dir / "pip"),
    )
    return env, urls


def _key(reqs: RequirementSet, interp: Interpreter, urls: Iterable[str]) -> str:
    """Not pip's version: a new pip must not rebuild every installed set (environments are keyed on
    the installed set's digest, so a rebuilt installed set that differs is never mixed up)."""
    text = json.dumps([LAYOUT, list(reqs.requirements), interp.path, interp.version, list(urls)])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _dists(folder: Path) -> list[tuple[str, str, Path]]:
    """(canonical name, version, dist-info dir) of what is installed in ``folder``."""
    found = []
    for info in sorted(folder.glob("*.dist-info")):
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        found.append((canonicalize_name(name), version, info))
    return found


def _drop_gunicorn(folder: Path) -> None:
    """Remove gunicorn (pulled in by uvicorn-worker) and every file its RECORD names."""
    for name, _, info in _dists(folder):
        if name != NEVER_SHARED:
            continue
        record = (info / "RECORD").read_text() if (info / "RECORD").is_file() else ""
        for row in record.splitlines():
            rel = row.split(",", 1)[0]
            if rel.startswith("../"):  # pip wrote scripts relative to its own prefix
                rel = "bin/" + rel.rsplit("/", 1)[-1] if "/bin/" in rel else ""
            target = (folder / rel).resolve()
            if rel and target.is_relative_to(folder.resolve()) and target.is_file():
                target.unlink()
        remove_tree(folder / "gunicorn")
        remove_tree(info)


_IMPORT_TRIAL = r"""
import json, sys
failed = {}
for name in sys.argv[1:]:
    try:
        __import__(name)
    except KeyboardInterrupt:
        raise  # an interrupt is no answer: exit without one
    except BaseException as exc:
        lines = [l for l in ("%s: %s" % (type(exc).__name__, exc)).splitlines() if l.strip()]
        failed[name] = lines[-1] if lines else type(exc).__name__
print(json.dumps(failed))
"""


def _import_failure(interp: Interpreter, folder: Path, reqs: RequirementSet) -> str:
    """ "" if every requested package imports from ``folder`` alone (``-S``: no base
    site-packages), else the first failure as one line."""
    dists = {name: (version, info) for name, version, info in _dists(folder)}
    owners: dict[str, str] = {}  # module -> the requested distribution that installs it
    for name in reqs.names:
        record = dists[name][1] / "RECORD" if name in dists else None
        if record is not None and record.is_file() and name != NEVER_SHARED:
            owners.update((m, name) for m in top_level_names(record.read_text()))
    if not owners:
        return ""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=str(folder), PYTHONDONTWRITEBYTECODE="1")
    argv = [interp.path, "-S", "-c", _IMPORT_TRIAL, *owners]
    try:  # an interrupt raises Cancelled: never a refusal
        proc = processes.run_to_end(argv, timeout=120, env=env, what="the import trial")
    except processes.Undecided as exc:
        raise SetUndecided(f"{exc} on Python {interp.version}") from None
    try:
        failed = dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError, TypeError):
        raise SetUndecided(
            f"the import trial gave no answer on Python {interp.version}: "
            f"{decisive_line(proc.stderr)}"
        ) from None
    if not failed:
        return ""
    module, why = next(iter(failed.items()))
    owner = owners[module]
    return f"{owner} {dists[owner][0]} does not import on Python {interp.version}: {why}"


def _known(path: Path, reqs: RequirementSet) -> InstalledSet | None:
    """The finished installed set whose files are still exactly the ones installed; None if there is
    none; SetRefused if this set was refused (not by an interrupt: older runs cached those)."""
    try:
        reason = json.loads(_refusal(path).read_text())["reason"]
    except (OSError, ValueError, KeyError, TypeError):
        reason = ""
    if reason and not str(reason).endswith("KeyboardInterrupt"):
        raise SetRefused(reason)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        digest = manifest["digest"]
        if manifest.get("layout") != LAYOUT or fsutil.tree_digest(path, MANIFEST) != digest:
            return None
        keep_recorded_bytecode(path)
        installed = tuple((n, v) for n, v in manifest["installed"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return InstalledSet(path, reqs, installed, digest, built=False)


def _pip_install(interp: Interpreter, reqs: RequirementSet, dest: Path, env: dict) -> None:
    cmd = [interp.path, "-m", "pip", "install", "--target", str(dest), "--no-input"]
    cmd = [*cmd, "--progress-bar", "off", *reqs.requirements]
    try:
        proc = processes.run_to_end(cmd, timeout=INSTALL_TIMEOUT, env=env, what="pip")
    except processes.Undecided as exc:
        raise SetUndecided(f"{exc} on Python {interp.version}") from None
    if proc.returncode != 0:
        why = decisive_line(proc.stderr + "\n" + proc.stdout)
        raise SetRefused(
            f"cannot install {' '.join(reqs.requirements)} on Python {interp.version}: {why}"
        )


def _build(
    interp: Interpreter, reqs: RequirementSet, tmp: Path, final: Path, env: dict, pip: str
) -> None:
    """Install into ``tmp``, try the imports, drop gunicorn, write the manifest."""
    _pip_install(interp, reqs, tmp, env)
    refused = _import_failure(interp, tmp, reqs)  # with pip's gunicorn: uvicorn-worker
    if refused:
        atomic_write_text(_refusal(final), json.dumps({"reason": refused}))
        raise SetRefused(refused)
    _drop_gunicorn(tmp)
    manifest = {
        "layout": LAYOUT,
        "requirements": list(reqs.requirements),
        "python": interp.version,
        "interpreter": interp.path,
        "pip": pip,
        "installed": [[n, v] for n, v, _ in _dists(tmp)],
        "digest": fsutil.tree_digest(tmp, MANIFEST),
    }
    atomic_write_text(tmp / MANIFEST, json.dumps(manifest, indent=1))


def _refusal(final: Path) -> Path:
    return final.parent / "refused" / f"{final.name}.json"


# per process: an installed set verified once, a failure remembered (else every target on that
# Python would run pip again)
_known_here: dict[Path, InstalledSet | SetRefused] = {}
_locks: dict[Path, threading.Lock] = {}
_locks_lock = threading.Lock()


def ensure(reqs: RequirementSet, interp: Interpreter, cache_dir: Path) -> InstalledSet:
    """The installed set for ``reqs`` on ``interp``, verified and reused or built now, once per
    process (later calls return the same installed set or ``SetRefused``)."""
    env, urls = pip_env(cache_dir)
    final = cache_dir / "layers" / f"py{interp.version}-{_key(reqs, interp, urls)}"

    def build(tmp: Path) -> None:
        pip, version = wheels.newest_wheel("pip", interp, cache_dir)
        # unpacked once: pip run from a zip cannot hand its CA bundle to ssl on old Pythons
        tree = extract_once(pip, cache_dir / "layers" / "pip" / pip.name)
        _build(interp, reqs, tmp, final, {**env, "PYTHONPATH": str(tree)}, version)

    with _locks_lock:
        lock = _locks.setdefault(final, threading.Lock())
    with lock:  # one thread builds, the others wait for its answer
        if final not in _known_here:
            try:
                installed, built = wheels.built_once(final, lambda: _known(final, reqs), build)
                if installed is None:
                    raise SetRefused(
                        f"the installed set {final.name} did not verify after building"
                    )
                _known_here[final] = replace(installed, built=built)
            except SetUndecided:
                raise
            except SetRefused as exc:
                _known_here[final] = exc
        known = _known_here[final]
    if isinstance(known, SetRefused):
        raise SetRefused(str(known))
    return known


# -- gunicorn's wheel is installed without pip: what it requires (``packaging`` for 21.0-26.x;
# nothing for 19.x and 20.x) comes from an installed set of its own, shared like setuptools.


def gunicorn_dependencies(artifact: Artifact) -> tuple[str, ...]:
    """gunicorn's own non-extra ``Requires-Dist`` but setuptools (in every environment
    already): ``packaging`` for 21.0-26.x."""
    found = []
    for text in wheels.requires_dist(artifact.wheel):
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.marker is not None and "extra" in str(req.marker):
            continue
        if canonicalize_name(req.name) != "setuptools":
            found.append(text)
    return tuple(found)


def dependency_set(artifact: Artifact, interp: Interpreter, cache_dir: Path) -> InstalledSet | None:
    """The installed set of gunicorn's own dependencies on ``interp`` (None when it has none);
    ``SetRefused`` when this Python cannot have them."""
    reqs = gunicorn_dependencies(artifact)
    if not reqs:
        return None
    return ensure(parse(reqs), interp, cache_dir)

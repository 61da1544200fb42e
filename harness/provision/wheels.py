"""Wheels to install: gunicorn (a release, or a commit built from git), a scenario's extras
and setuptools (gunicorn 19.x imports ``pkg_resources``), cached once, verified, and
installed by unpacking (environments.py): no pip runs per environment.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import re
import subprocess
import sys
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import TypeVar

from filelock import FileLock
from packaging import tags
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from harness.host import processes
from harness.host.fsutil import (
    atomic_write_bytes,
    extract_once,
    keep_recorded_bytecode,
    private_dir,
    remove_tree,
    sweep_temporaries,
    temp_dir,
)
from harness.model.errors import HarnessError
from harness.provision import index
from harness.provision.interpreters import Interpreter

SETUPTOOLS_CAP = Version("81")  # setuptools 81+ no longer ships pkg_resources
WHEEL_CAP = Version("0.46")  # wheel 0.46+ needs packaging, which an offline build env lacks


class ArtifactError(HarnessError):
    """A wheel could not be obtained or built."""


T = TypeVar("T")


def built_once(
    final: Path, load: Callable[[], T | None], build: Callable[[Path], None]
) -> tuple[T | None, bool]:
    """(``load()``, False) when ``final`` verifies; else, under a lock against other runs,
    ``build`` it in a temporary directory renamed into place (an interrupted build is never
    taken for a finished one) and (``load()``, True)."""
    found = load()
    if found is not None:
        return found, False
    root = private_dir(final.parent)
    with FileLock(str(root / f".{final.name}.lock"), mode=0o600):
        found = load()  # another run may have built it meanwhile
        if found is not None:
            return found, False
        sweep_temporaries(root)
        remove_tree(final)  # incomplete or altered: rebuilt, never used
        tmp = temp_dir(root, final.name)
        try:
            build(tmp)
            tmp.rename(final)
        finally:
            remove_tree(tmp)
    return load(), True


@dataclass(frozen=True)
class Artifact:
    """A gunicorn wheel and the digest of the ``gunicorn/`` package it must install."""

    label: str  # "19.6.0" or a short sha
    version: str  # the version the wheel declares
    wheel: Path
    digest: str
    sha: str | None = None  # full commit sha for builds from git
    #: False when the index listed no sha256 for the file (taken as served): a row can say so
    verified: bool = True


def package_digest(files: Iterable[tuple[str, bytes]]) -> str:
    """Digest of a package's ``.py`` files wherever they sit: the same over a wheel, an
    exported git tree and a site-packages proves an environment holds the code under test."""
    h = hashlib.sha256()
    for rel, data in sorted(files):
        if "__pycache__" in rel or not rel.endswith(".py"):
            continue  # the code is what must match; packaging may drop or add data files
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def wheel_package_files(wheel: Path, package: str = "gunicorn") -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(wheel) as zf:
        return [
            (n, zf.read(n))
            for n in zf.namelist()
            if n.startswith(package + "/") and not n.endswith("/")
        ]


def dir_package_files(root: Path, package: str = "gunicorn") -> list[tuple[str, bytes]]:
    """The package's files under ``root``, without bytecode."""
    found = [(p.relative_to(root).as_posix(), p) for p in (root / package).rglob("*")]
    return [
        (rel, p.read_bytes())
        for rel, p in found
        if p.is_file() and "__pycache__" not in rel and not rel.endswith((".pyc", ".pyo"))
    ]


_INTACT: dict[tuple[str, int, int], bool] = {}


def intact(wheel: Path) -> bool:
    """A readable zip whose every member matches its CRC, remembered per process by size and
    mtime: what was built here has nothing else to be checked against before reuse."""
    try:
        st = wheel.stat()
        key = (str(wheel), st.st_size, st.st_mtime_ns)
        if key not in _INTACT:
            with zipfile.ZipFile(wheel) as zf:
                _INTACT[key] = zf.testzip() is None
        return _INTACT[key]
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return False


def _wheel_file(files: Iterable[index.DistFile], py3: bool = False) -> index.DistFile | None:
    """The pure-Python wheel among a release's files (``py3``: one tagged for Python 3)."""
    for f in files:
        if f.packagetype == "bdist_wheel" and f.filename.endswith("-none-any.whl"):
            tags = f.filename.rsplit("-", 3)[1].split(".")
            if not py3 or any(t.startswith("py3") for t in tags):
                return f
    return None


def gunicorn_release(version: str, cache_dir: Path, project: index.Project) -> Artifact:
    """The release's wheel from the index (or, lacking one, a wheel built from its sdist)."""
    files = project.releases.get(version, ())
    wheels = cache_dir / "wheels"
    f = _wheel_file(files)
    if f is not None:
        path = index.download(f, wheels)
    else:
        f = next((x for x in files if x.packagetype == "sdist"), None)
        if f is None:
            raise ArtifactError(f"gunicorn {version}: the index has no wheel or sdist")
        path = _build_wheel_from_sdist(index.download(f, wheels / "sdist"), wheels)
    digest = package_digest(wheel_package_files(path))
    return Artifact(version, version, path, digest, verified=index.verified(f))


_DIRECT_BUILD = (
    "import sys; from setuptools.build_meta import __legacy__ as backend; "
    "backend.build_wheel(sys.argv[1])"
)


def build_wheel(tree: Path, out_dir: Path, python: str = sys.executable) -> Path:
    """A wheel of a source tree by the harness's own setuptools' PEP 517 backend, offline (a
    quarter of a ``pip wheel``'s cost); pip is the fallback for a tree it cannot build."""
    tmp = temp_dir(out_dir, "wheel")
    try:
        built, direct = _build([python, "-c", _DIRECT_BUILD, str(tmp)], tree, tmp, out_dir)
        if built is not None:
            return built
        pip = "-m pip wheel --no-deps --no-build-isolation --no-index --disable-pip-version-check"
        argv = [python, *pip.split(), "-q", "-w", str(tmp), str(tree)]
        built, proc = _build(argv, tree, tmp, out_dir)
        if built is None:
            raise ArtifactError(f"building a wheel from {tree.name} failed: {_why(direct, proc)}")
        return built
    finally:
        remove_tree(tmp)


def make_wheel(
    name: str,
    version: str,
    files: dict[str, bytes],
    out_dir: Path,
    entry_points: str = "",
    requires: tuple[str, ...] = (),
) -> Path:
    """A pure-Python wheel of exactly ``files`` (archive path -> bytes), written atomically:
    for code whose build is a copy (a commit's ``gunicorn/``, bottle 0.12.13's module), with
    no setuptools start-up per build."""
    dist = f"{name}-{version}.dist-info"
    meta = {
        f"{dist}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            + "".join(f"Requires-Dist: {r}\n" for r in requires)
        ).encode(),
        f"{dist}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: gunicorn-bisect\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    if entry_points:
        meta[f"{dist}/entry_points.txt"] = entry_points.encode()
    entries = {**files, **meta}
    record = []
    for path, data in entries.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    entries[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(entries):
            zf.writestr(zipfile.ZipInfo(path, (1980, 1, 1, 0, 0, 0)), entries[path])
    final = out_dir / f"{name}-{version}-py3-none-any.whl"
    atomic_write_bytes(final, buffer.getvalue())
    return final


# no TOML parser on 3.9; gunicorn's ``[project] dependencies`` is a plain list of strings
_PROJECT_DEPS = re.compile(r"^\[project\]$.*?^dependencies\s*=\s*\[(.*?)\]", re.M | re.S)


def project_dependencies(pyproject: Path) -> tuple[str, ...]:
    """``[project] dependencies`` of a commit's pyproject.toml (21.0+: ``packaging``), as its
    release would require; () where there is none (setup.py)."""
    try:
        text = pyproject.read_text()
    except OSError:
        return ()
    found = _PROJECT_DEPS.search(text)
    if not found or "\n[" in found.group(0).split("[project]", 1)[1]:
        return ()  # no such key before the next table
    quoted = re.findall(r"'([^']*)'|\"([^\"]*)\"", found.group(1))
    return tuple(single or double for single, double in quoted)


_VERSION_INFO = re.compile(r"^version_info\s*=\s*\(([\d\s,]+)\)", re.M)
#: gunicorn's console script, the same in setup.py (19.x) and pyproject.toml (24.x)
GUNICORN_ENTRY_POINTS = "[console_scripts]\ngunicorn = gunicorn.app.wsgiapp:run\n"


def tree_wheel(tree: Path, out_dir: Path) -> Path | None:
    """A gunicorn tree's ``gunicorn/`` package copied into a wheel with its version (None when
    that cannot be read: the caller builds it with setuptools instead)."""
    try:
        init = (tree / "gunicorn" / "__init__.py").read_text()
    except OSError:
        return None
    found = _VERSION_INFO.search(init)
    if not found:
        return None
    version = ".".join(p.strip() for p in found.group(1).split(",") if p.strip())
    files = dict(dir_package_files(tree))
    requires = project_dependencies(tree / "pyproject.toml")
    return make_wheel("gunicorn", version, files, out_dir, GUNICORN_ENTRY_POINTS, requires)


def _why(*procs: processes.Finished) -> str:
    """The most telling line of failed builds: an exception line beats pip's "hint"."""
    for proc in procs:
        lines = [ln.strip() for ln in (proc.stderr or "").splitlines() if ln.strip()]
        errors = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception)\b", ln)]
        if errors:
            return errors[-1]
    last = [ln.strip() for p in procs for ln in (p.stderr or "").splitlines() if ln.strip()]
    return last[-1] if last else "no wheel produced"


def _build(
    argv: list[str], cwd: Path, tmp: Path, out_dir: Path
) -> tuple[Path | None, processes.Finished]:
    """Run a build (processes.run_to_end: Ctrl-C raises Cancelled; no answer is a failure)
    and move the wheel it left in ``tmp`` into ``out_dir`` (None if it failed)."""
    try:
        proc = processes.run_to_end(argv, timeout=300, cwd=cwd, what="the build")
    except processes.Undecided as exc:
        proc = processes.Finished(-1, "", str(exc))
    built = sorted(tmp.glob("*.whl"))
    if proc.returncode != 0 or not built:
        return None, proc
    return built[0].replace(out_dir / built[0].name), proc


def _build_wheel_from_sdist(sdist: Path, out_dir: Path) -> Path:
    tmp = temp_dir(out_dir, "sdist")
    try:
        with tarfile.open(sdist) as tf:
            tf.extractall(tmp)  # noqa: S202 - our own verified download
        roots = [p for p in tmp.iterdir() if p.is_dir()]
        if not roots:
            raise ArtifactError(f"{sdist.name}: empty sdist")
        root = roots[0]
        try:
            return build_wheel(root, out_dir)
        except ArtifactError:  # a setup.py of Python 2 only (0.x): the package, copied
            meta = HeaderParser().parsestr((root / "PKG-INFO").read_text(errors="replace"))
            # 0.x finds its workers by entry point (gunicorn.workers): keep the sdist's own
            points = root / "gunicorn.egg-info" / "entry_points.txt"
            entry = points.read_text() if points.is_file() else GUNICORN_ENTRY_POINTS
            files = dict(dir_package_files(root))
            return make_wheel("gunicorn", meta["Version"], files, out_dir, entry)
    finally:
        remove_tree(tmp)


_NEWEST: dict[tuple, tuple[Path, str]] = {}


def _newest(
    name: str, interp: Interpreter, cache_dir: Path, spec: SpecifierSet, pure: bool
) -> tuple[Path, str] | None:
    """Newest final release of ``name`` in ``spec`` with a wheel for ``interp`` (``pure``: a
    py3 ``none-any`` one, else the best its tags accept), downloaded. Remembered per process:
    every environment asks, and setuptools has hundreds of releases to parse."""
    key = (name, interp.path, interp.version, str(cache_dir), str(spec), pure)
    known = _NEWEST.get(key)
    if known is not None and known[0].is_file():
        return known
    proj = index.project(name, cache_dir)
    # newest first: the first fit wins (the index parsed every version already)
    for ver, files in sorted(((Version(v), f) for v, f in proj.releases.items()), reverse=True):
        if ver.is_prerelease or ver not in spec:
            continue
        if pure:
            f = _wheel_file(files, py3=True)
        else:
            f = _compatible_file(files, interpreter_tags(tuple(interp.version_tuple[:2])))
        try:
            if f is None or (
                f.requires_python and Version(interp.version) not in SpecifierSet(f.requires_python)
            ):
                continue
        except (InvalidSpecifier, InvalidVersion):
            continue
        _NEWEST[key] = (index.download(f, cache_dir / "wheels"), str(ver))
        return _NEWEST[key]
    return None


def newest_wheel(
    name: str,
    interp: Interpreter,
    cache_dir: Path,
    below: Version | None = None,
    series: tuple[int, ...] = (),
) -> tuple[Path, str]:
    """Newest final release of ``name`` (below ``below``, in ``series``) with a pure-Python
    wheel that supports ``interp``."""
    spec = SpecifierSet(f"<{below}" if below is not None else "")
    if series:
        spec &= SpecifierSet(f"=={'.'.join(map(str, series))}.*")
    found = _newest(name, interp, cache_dir, spec, pure=True)
    if found is None:
        raise ArtifactError(f"no {name} wheel on the index supports Python {interp.version}")
    return found


def newest_compatible_wheel(
    name: str, interp: Interpreter, cache_dir: Path, spec: SpecifierSet
) -> tuple[Path, str]:
    """Like :func:`newest_wheel` in ``spec``, manylinux binaries included."""
    found = _newest(name, interp, cache_dir, spec, pure=False)
    if found is None:
        what = f"{name}{spec}" if str(spec) else name
        raise ArtifactError(
            f"no {what} wheel on the index for CPython {interp.minor} on this platform"
        )
    return found


def requires_dist(wheel: Path) -> list[str]:
    """The wheel's own ``Requires-Dist`` lines (its METADATA), markers included."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            meta = next(
                n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
            )
            text = zf.read(meta).decode("utf-8", "replace")
    except (OSError, StopIteration, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"{wheel.name}: no readable METADATA ({exc})") from None
    return HeaderParser().parsestr(text).get_all("Requires-Dist") or []


@functools.cache
def interpreter_tags(version: tuple[int, int]) -> dict[tags.Tag, int]:
    """The wheel tags a CPython ``version`` accepts on this host (-> rank, best first), as
    pip would; computed here, as the target may lack ``packaging``."""
    platforms = list(tags.platform_tags())
    interpreter = f"cp{version[0]}{version[1]}"
    ordered = [
        *tags.cpython_tags(version, platforms=platforms),
        *tags.compatible_tags(version, interpreter, platforms),
    ]
    return {t: i for i, t in reversed(list(enumerate(ordered)))}


def _compatible_file(
    files: Iterable[index.DistFile], accepted: dict[tags.Tag, int]
) -> index.DistFile | None:
    """The release's wheel this interpreter ranks best (binary or pure), if any."""
    best: tuple[int, index.DistFile] | None = None
    for f in files:
        if f.packagetype != "bdist_wheel":
            continue
        try:
            wheel_tags = parse_wheel_filename(f.filename)[3]
        except InvalidWheelFilename:
            continue
        rank = min((accepted[t] for t in wheel_tags if t in accepted), default=None)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, f)
    return best[1] if best else None


def setuptools_for(interp: Interpreter, cache_dir: Path) -> Path:
    """Newest setuptools below 81 for this Python: gunicorn 19.x imports pkg_resources."""
    return newest_wheel("setuptools", interp, cache_dir, below=SETUPTOOLS_CAP)[0]


def build_sdist_with(
    interp: Interpreter, sdist: Path, out_dir: Path, cache_dir: Path
) -> Path | None:
    """A wheel built from ``sdist`` by ``interp``'s own pip, offline (None if it cannot)."""
    tmp = temp_dir(out_dir, sdist.name[:20])
    try:
        links = tmp / "links"  # the build backend, offline, in versions this Python supports
        links.mkdir()
        for dep in (
            setuptools_for(interp, cache_dir),
            newest_wheel("wheel", interp, cache_dir, below=WHEEL_CAP)[0],
        ):
            (links / dep.name).write_bytes(dep.read_bytes())
        pip = "-m pip wheel --no-deps --no-index --no-cache-dir -q --disable-pip-version-check"
        base = [interp.path, *pip.split(), "--find-links", str(links), "-w", str(tmp)]
        # --use-pep517 builds in isolation from the cached backend; pip < 19 lacks the flag.
        for extra in (["--use-pep517"], []):
            built = _build(base + extra + [str(sdist)], tmp, tmp, out_dir)[0]
            if built is not None:
                return built
        return None
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        remove_tree(tmp)


class DamagedWheel(ArtifactError):
    """A cached wheel that cannot be unpacked (removed: fetched or built again)."""


_UNPACKED_OK: set[str] = set()  # shared copies verified by this process


def _matches(wheel: Path, tree: Path) -> bool:
    """Every file of ``wheel`` is in ``tree`` with its size and CRC."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                data = (tree / info.filename).read_bytes()
                if len(data) != info.file_size or zlib.crc32(data) != info.CRC:
                    return False
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return False
    return True


def unpacked(wheel: Path, cache_dir: Path) -> Path:
    """A wheel unpacked once under the cache, shared by every environment (.pth lines):
    complete or absent, verified against the wheel once per process, redone when damaged."""
    final = cache_dir / "unpacked" / wheel.name
    if str(final) in _UNPACKED_OK:
        return final
    if _matches(wheel, final):
        keep_recorded_bytecode(final)
    else:
        remove_tree(final)  # absent or damaged: unpacked (again)
        try:
            extract_once(wheel, final)
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            wheel.unlink(missing_ok=True)
            raise DamagedWheel(
                f"{wheel.name} in the cache is damaged ({exc}); removed: "
                "it is fetched or built again on the next run"
            ) from None
    _UNPACKED_OK.add(str(final))
    return final

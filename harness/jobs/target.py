"""A target is one object: its label, what to build, which Python, its sha when it has one.

Chosen once per run (``maker``): gunicorn's releases on the index and its commits or git refs
(``Gunicorn``), or a ``--package`` dependency's (``Pinned``: its requirement joins the
environment's installed requirement set, so the interpreter search accounts for it), gunicorn pinned.
The Runner and the Lab know only ``Target``; a new kind of target touches this module only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from packaging.utils import canonicalize_name

from harness.host.git import Repo, SourceError
from harness.model import targets
from harness.provision import commit_wheels, index, requirements, wheels
from harness.provision.environments import EnvNeeds
from harness.provision.interpreters import Interpreter, how_to_get
from harness.provision.wheels import Artifact, ArtifactError

GUNICORN = "gunicorn"
# Only a hint for the message when nothing fits; the choice itself is made by evidence.
_KNOWN_NEEDS = {"19.": "3.9"}


class BuildFailed(ArtifactError):
    """A commit's wheel could not be built: an ``error`` row, never the end of the run."""


class Target:
    """What the Runner and the Lab see of a target."""

    label: str  # the row's name: "19.6.0", "20.0.1 (e3659e8adc61)", "418f140445", "0.30.3"
    sha: str | None  # the full commit sha of a git target
    python: str | None  # the one Python to run it on (a commit: its releases'), else None

    @property
    def kind(self) -> str:  # a row's ``kind``
        return "release" if self.sha is None else "commit"

    def describe(self) -> str: ...  # how a message names it: "gunicorn 19.6.0"

    def prepare(self) -> None: ...  # fetch or build it once; BuildFailed when it cannot be

    def needs(self, needs: EnvNeeds, interp: Interpreter, cache: Path) -> tuple[Artifact, EnvNeeds]:
        """The gunicorn wheel and the scenario's ``needs`` on ``interp``; ArtifactError
        when something needed does not exist for that Python."""
        ...

    def hint(self) -> str:  # said when no Python here runs it
        return ""

    def facts(self, artifact: Artifact) -> dict[str, Any]:  # beside the scenario's
        return {}


def commit_label(sha: str, pick: str | None) -> str:
    return sha[:10] if pick is None else f"{sha[:10]}+{pick[:7]}"


@dataclass
class _Built:
    """A wheel made once on first use (thread-safe: deployments share a target)."""

    make: Callable[[], Artifact]
    _artifact: Artifact | None = None
    _failed: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self) -> Artifact:
        with self._lock:
            if self._artifact is None and self._failed is None:
                try:
                    self._artifact = self.make()
                except (ArtifactError, SourceError) as exc:
                    self._failed = f"build failed: {exc}"
            if self._failed is not None:
                raise BuildFailed(self._failed)
            return self._artifact


@dataclass(frozen=True)
class Gunicorn(Target):
    """A release on the index (its wheel fetched once for every deployment), or a commit or
    git ref (``sha``), its wheel built from the clone on first use."""

    label: str
    wheel: Callable[[], Artifact]
    sha: str | None = None
    python: str | None = None

    def describe(self) -> str:
        return f"gunicorn {self.label}"

    def prepare(self) -> None:
        self.wheel()

    def needs(self, needs: EnvNeeds, interp: Interpreter, cache: Path) -> tuple[Artifact, EnvNeeds]:
        return self.wheel(), needs

    def hint(self) -> str:
        version = self.wheel().version  # a commit's: the version its wheel declares
        need = next((v for k, v in _KNOWN_NEEDS.items() if version.startswith(k)), None)
        return f"; it likely needs Python <= {need}: {how_to_get(need)}" if need else ""


def fetched(wheel: Artifact) -> Gunicorn:
    """A gunicorn release whose wheel is at hand."""
    return Gunicorn(wheel.label, lambda: wheel)


@dataclass(frozen=True)
class Pinned(Target):
    """A dependency's release or commit; the row is named after it, gunicorn pinned."""

    name: str  # the dependency, canonical
    label: str  # "0.30.3", a short sha, or a ref and its sha
    requirement: Callable[[], str]  # "eventlet==0.30.3" or "eventlet @ file:///...whl"
    gunicorn: Callable[[Interpreter], Artifact]  # the pinned gunicorn for a Python
    sha: str | None = None
    python: str | None = None

    def describe(self) -> str:
        return f"{self.name} {self.label}"

    def prepare(self) -> None:
        self.requirement()

    def needs(self, needs: EnvNeeds, interp: Interpreter, cache: Path) -> tuple[Artifact, EnvNeeds]:
        return self.gunicorn(interp), pinned_needs(needs, self.requirement(), interp, cache)

    def facts(self, artifact: Artifact) -> dict[str, Any]:
        return {"gunicorn": artifact.version}  # the pinned gunicorn, beside the dependency


def pinned_needs(needs: EnvNeeds, requirement: str, interp: Interpreter, cache: Path) -> EnvNeeds:
    """``needs`` with ``requirement`` in its installed set (beside any ``--with`` requirement):
    raises ``SetRefused`` (an ArtifactError) where this Python cannot have it."""
    given = needs.user_set.requirements.requirements if needs.user_set is not None else ()
    reqs = requirements.RequirementSet(tuple(sorted({*given, requirement})))
    return replace(needs, user_set=requirements.ensure(reqs, interp, cache))


@dataclass
class PinnedGunicorn:
    """gunicorn for the dependency's axis: ``version`` everywhere, or (None) the newest
    release whose wheel admits each interpreter; fetched once per version."""

    cache_dir: Path
    version: str | None = None
    _project: index.Project | None = field(default=None, repr=False)
    _fetched: dict[str, Artifact] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, interp: Interpreter) -> Artifact:
        with self._lock:
            if self._project is None:
                self._project = index.project(GUNICORN, self.cache_dir)
            if self.version is None:
                version = wheels.newest_wheel(GUNICORN, interp, self.cache_dir)[1]
            else:  # a user error (not a release) is one line, exit 2
                spec = targets.parse(self.version)
                version = targets.resolve(spec, self._project.versions)[0]
            if version not in self._fetched:
                self._fetched[version] = wheels.gunicorn_release(
                    version, self.cache_dir, self._project
                )
            return self._fetched[version]


class Maker(Protocol):
    """What the targets of a run are: gunicorn's, or a dependency's with gunicorn pinned."""

    package: str

    def release(self, version: str, project: index.Project) -> Target: ...

    def commit(
        self, history: Repo, sha: str, pick: str | None, python: str | None, label: str = ""
    ) -> Target:
        """A commit (``pick`` on top) on ``python``, or (``label``) a git ref on any."""
        ...


@dataclass(frozen=True)
class GunicornTargets:
    cache: Path
    package: str = GUNICORN

    def release(self, version: str, project: index.Project) -> Target:
        return fetched(wheels.gunicorn_release(version, self.cache, project))

    def commit(
        self, history: Repo, sha: str, pick: str | None, python: str | None, label: str = ""
    ) -> Target:
        wheel = _Built(lambda: commit_wheels.commit_wheel(history, sha, self.cache, pick))
        return Gunicorn(label or commit_label(sha, pick), wheel, sha, python)


@dataclass(frozen=True)
class PackageTargets:
    cache: Path
    package: str
    gunicorn: PinnedGunicorn

    def release(self, version: str, project: index.Project) -> Target:
        req = f"{self.package}=={version}"
        return Pinned(self.package, version, lambda: req, self.gunicorn)

    def commit(
        self, history: Repo, sha: str, pick: str | None, python: str | None, label: str = ""
    ) -> Target:
        """The requirement is on the wheel the dependency's PEP 517 build makes of ``sha``."""
        built = _Built(
            lambda: commit_wheels.package_commit_wheel(history, sha, self.cache, self.package, pick)
        )
        req = lambda: f"{self.package} @ {built().wheel.resolve().as_uri()}"  # noqa: E731
        return Pinned(
            self.package, label or commit_label(sha, pick), req, self.gunicorn, sha, python
        )


def maker(cache: Path, package: str = GUNICORN, gunicorn: str | None = None) -> Maker:
    """The run's kind of target, chosen once from the request."""
    package = canonicalize_name(package)
    if package == GUNICORN:
        return GunicornTargets(cache)
    return PackageTargets(cache, package, PinnedGunicorn(cache, gunicorn))

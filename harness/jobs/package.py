"""A dependency's releases (or commits) as the bisected axis: ``--package NAME``.

A target on that axis is a ``Pin``: one requirement on NAME (``eventlet==0.30.3``, or
the wheel built from a commit) put into the environment's requirement layer, with
gunicorn pinned (``--gunicorn X``, else the newest release that installs on each
interpreter).  The layer turns away a Python where that release does not install or
import, with the reason, so the interpreter search accounts for the dependency.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from packaging.utils import canonicalize_name

from harness.build import index, layers, wheels
from harness.build.environments import EnvNeeds
from harness.build.interpreters import Interpreter
from harness.build.wheels import Artifact
from harness.model import targets

GUNICORN = "gunicorn"


@dataclass(frozen=True)
class Pin:
    """One target of a dependency's axis; the row is named after it, not gunicorn."""

    name: str  # the dependency, canonical
    label: str  # "0.30.3" or a short sha
    requirement: str  # "eventlet==0.30.3" or "eventlet @ file:///.../eventlet-x.whl"
    gunicorn: Callable[[Interpreter], Artifact]  # the pinned gunicorn for a Python
    sha: str | None = None

    def describe(self, artifact: Artifact | None = None) -> str:
        with_gunicorn = f" (gunicorn {artifact.label})" if artifact is not None else ""
        return f"{self.name} {self.label}{with_gunicorn}"


def pinned_needs(needs: EnvNeeds, pin: Pin, interp: Interpreter, cache_dir: Path) -> EnvNeeds:
    """``needs`` with ``pin`` in its layer (beside any ``--with`` requirement): raises
    ``LayerError`` (an ArtifactError) where this Python cannot have it."""
    given = needs.layer.requirements.requirements if needs.layer is not None else ()
    reqs = layers.RequirementSet(tuple(sorted({*given, pin.requirement})))
    return replace(needs, layer=layers.ensure(reqs, interp, cache_dir))


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


def is_gunicorn(name: str) -> bool:
    return canonicalize_name(name) == GUNICORN

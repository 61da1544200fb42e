"""gunicorn's own dependencies: a release's (or a commit's) non-extra ``Requires-Dist``.

The harness installs gunicorn's wheel without pip, so what the wheel requires
(``packaging`` for 21.0-26.x) comes from a requirement layer (layers.py) of its own,
shared by every environment on an interpreter like setuptools; 19.x and 20.x require
nothing but setuptools, so their environments are unchanged.
"""

from __future__ import annotations

import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from harness.provision import layers
from harness.provision.interpreters import Interpreter
from harness.provision.layers import Layer
from harness.provision.wheels import Artifact, ArtifactError


def dependencies(artifact: Artifact) -> tuple[str, ...]:
    """gunicorn's own non-extra ``Requires-Dist`` from its wheel's METADATA, without
    setuptools (shared in every environment already): ``packaging`` for 21.0-26.x."""
    try:
        with zipfile.ZipFile(artifact.wheel) as zf:
            name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            metadata = Parser().parsestr(zf.read(name).decode("utf-8", "replace"))
    except (OSError, StopIteration, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"{artifact.wheel.name}: no readable METADATA ({exc})") from None
    found = []
    for text in metadata.get_all("Requires-Dist") or ():
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.marker is not None and "extra" in str(req.marker):
            continue
        if canonicalize_name(req.name) != "setuptools":
            found.append(text)
    return tuple(found)


def dependency_layer(artifact: Artifact, interp: Interpreter, cache_dir: Path) -> Layer | None:
    """The layer of gunicorn's own dependencies on ``interp`` (None when it has none):
    resolved once per (interpreter, set) and verified like any layer, as setuptools is
    shared; ``LayerError`` when this Python cannot have them."""
    reqs = dependencies(artifact)
    if not reqs:
        return None
    return layers.ensure(layers.parse(reqs), interp, cache_dir)

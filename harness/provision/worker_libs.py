"""The wheels an async worker class needs (gevent, eventlet), in ranges of gunicorn 19's era.

Each library's range is one gunicorn 19.x works with; its dependencies follow from the
wheels' own ``Requires-Dist`` (markers evaluated for the target), newest first in every
range, binary wheels picked by the interpreter's tags. No backtracking: a conflict is an
error with its reason, as is a Python with no wheel (the runner then tries an older one).
Why these ranges (README, "Worker classes"):

- ``gevent>=1.4,<22``: 1.4 is the first with manylinux wheels for CPython 3.6-3.7; 22.x
  and later came years after gunicorn 19.
- ``eventlet>=0.25,<0.30.3``: gunicorn 19.7-20.0 import ``eventlet.wsgi.ALREADY_HANDLED``,
  removed in 0.30.3 (gunicorn 20.1 adapted); 0.25 is the first for Python 3.7.

Before 19.9 gunicorn has ``gunicorn/workers/async.py`` (``async`` is a keyword from 3.7), so
those workers import only on Python <= 3.6: the boot trial finds that out.
"""

from __future__ import annotations

from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from harness.provision import wheels
from harness.provision.environments import Extra
from harness.provision.interpreters import Interpreter
from harness.provision.wheels import ArtifactError

#: worker class -> the requirement (a version range) of its library
PINS: dict[str, str] = {
    "gevent": "gevent>=1.4,<22",
    "gevent_wsgi": "gevent>=1.4,<22",
    "gevent_pywsgi": "gevent>=1.4,<22",
    "eventlet": "eventlet>=0.25,<0.30.3",
}
#: already in every environment (environments.py installs it for gunicorn's pkg_resources)
PROVIDED = frozenset({"setuptools"})


def pin_for(worker_class: str | None) -> str | None:
    """The requirement a worker class brings; None for gunicorn's own workers."""
    if not worker_class:
        return None
    return PINS.get(worker_class) or PINS.get(worker_class.rsplit(".", 1)[-1].lower())


def marker_environment(interp: Interpreter) -> dict[str, str]:
    """PEP 508 marker values for the target CPython on this host."""
    return {
        **default_environment(),
        "python_version": interp.minor,
        "python_full_version": interp.version,
        "implementation_name": "cpython",
        "implementation_version": interp.version,
        "platform_python_implementation": "CPython",
        "extra": "",
    }


def resolve(requirement: str, interp: Interpreter, cache_dir: Path) -> tuple[Extra, ...]:
    """``requirement`` and everything its wheels require, for ``interp`` (breadth first)."""
    env = marker_environment(interp)
    chosen: dict[str, Extra] = {}
    queue = [Requirement(requirement)]
    while queue:
        req = queue.pop(0)
        key = canonicalize_name(req.name)
        if key in PROVIDED or (req.marker is not None and not req.marker.evaluate(env)):
            continue
        if key in chosen:
            if not req.specifier.contains(chosen[key].version, prereleases=True):
                raise ArtifactError(
                    f"{req} conflicts with {chosen[key].name} {chosen[key].version} "
                    f"chosen for {requirement}"
                )
            continue
        wheel, version = wheels.newest_compatible_wheel(req.name, interp, cache_dir, req.specifier)
        chosen[key] = Extra(req.name, version, wheel)
        for line in wheels.requires_dist(wheel):
            try:
                queue.append(Requirement(line))
            except InvalidRequirement as exc:
                raise ArtifactError(
                    f"{wheel.name}: unreadable requirement {line!r}: {exc}"
                ) from None
    return tuple(chosen.values())


def extras_for(worker_class: str | None, interp: Interpreter, cache_dir: Path) -> tuple[Extra, ...]:
    """The wheels ``worker_class`` needs on ``interp`` (none for sync/gthread)."""
    pin = pin_for(worker_class)
    return resolve(pin, interp, cache_dir) if pin else ()

"""The report's app: bottle "Hello World" (its web.py), and the bottle wheel for it.

bottle 0.12.13 as reported where it runs (Python <= 3.9; it imports
``collections.MutableMapping``), else the newest 0.12 wheel.  0.12.13 ships only an
sdist whose setup.py needs ``inspect.getargspec``, so it is built once with the target
interpreter's own pip, offline, from cached setuptools/wheel.
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock

from harness.build import index, wheels
from harness.build.environments import Extra
from harness.build.interpreters import Interpreter

BOTTLE_AS_REPORTED = "0.12.13"

APP = """\
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
            member = next(
                (
                    m
                    for m in tf.getmembers()
                    if m.name.count("/") == 1 and m.name.endswith("/bottle.py")
                ),
                None,
            )
            data = tf.extractfile(member).read() if member is not None else None
    except (OSError, tarfile.TarError, AttributeError):
        return None
    if data is None:
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

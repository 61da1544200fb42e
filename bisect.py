#!/usr/bin/env python3
"""Entry point: ``python bisect.py 19.5.0..19.7.0`` (see README.md).

This file's name shadows the standard library's ``bisect``, which ``random``,
``tempfile`` and others import.  Run as a script, we drop our own directory from
``sys.path`` before anything imports ``bisect``, load the real module, and only then
put the directory back so that the ``harness`` package can be imported.  Imported
as ``bisect`` by accident (someone running Python from this directory), the module
turns itself into the standard library's ``bisect``.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


def _without_here(paths):
    return [p for p in paths if os.path.abspath(p or os.curdir) != _HERE]


if __name__ == "__main__":
    sys.path[:] = _without_here(sys.path)
    sys.modules.pop("bisect", None)
    import bisect as _stdlib_bisect  # noqa: F401  (the real one, cached in sys.modules)

    sys.path.insert(0, _HERE)
    try:
        from harness.cli import main
    except ModuleNotFoundError as exc:  # run outside its virtualenv: say how to set it up
        if (exc.name or "").split(".")[0] == "harness":
            raise
        print(
            f"bisect.py: error: missing dependency {exc.name!r} for {sys.executable}; "
            "set up once with: python3 -m venv .venv && . .venv/bin/activate && "
            "pip install -e . (then run bisect.py with .venv/bin/python)",
            file=sys.stderr,
        )
        sys.exit(2)

    sys.exit(main(prog="bisect.py"))
else:  # imported as "bisect" from this directory: become the standard library module
    import importlib.machinery
    import importlib.util

    _spec = importlib.machinery.PathFinder.find_spec("bisect", _without_here(sys.path))
    if _spec is None or _spec.loader is None:
        raise ImportError("cannot find the standard library's bisect module")
    _real = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_real)
    globals().update({k: v for k, v in vars(_real).items() if not k.startswith("__")})
    del _real, _spec

"""The one place a scenario is chosen: built-ins by name, a scenario file, or ``--run``.

Callers (the CLI, bench/) ask only this module; what a name means lives here.
"""

from __future__ import annotations

from harness.scenarios import base
from harness.scenarios.base import DEFAULT, Options, Scenario

__all__ = ["DEFAULT", "create", "listing"]


def create(name: str | None, options: Options) -> Scenario:
    """``--run CMD`` (``options.run``), a scenario file (a path), or a built-in by name."""
    if options.run is not None:
        from harness.scenarios.command import CommandScenario

        return CommandScenario.from_options(options)
    return base.create(name or DEFAULT, options)


def listing() -> list[tuple[str, str]]:
    """(name, one line) for ``--list-scenarios``: the built-ins, then the user's own kinds."""
    return [
        *base.listing(),
        ("FILE.py", "your own scenario file (see README: Your own scenario)"),
        ("--run CMD", "your own command, git-bisect-run exit codes"),
    ]

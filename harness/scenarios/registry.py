"""The one place a scenario is chosen: a built-in by name, a scenario file, or ``--run``.

Callers (the CLI, bench/) ask only this module.  A new built-in is one rules module
and one line in ``BUILTINS``; ``--list-scenarios`` is generated from this table.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import harness.catalogue
from harness.scenarios import boots, keeps_serving, socket_loss
from harness.scenarios.base import DEFAULT, Options, Scenario, ScenarioError
from harness.scenarios.command import CommandScenario
from harness.scenarios.user import UserScenario
from harness.scenarios.user_file import load

__all__ = ["BUILTINS", "CATALOGUE", "DEFAULT", "create", "listing"]

_CASES = Path(harness.catalogue.__file__).parent

#: name -> (factory from the command line's options, one line for the listing)
BUILTINS: dict[str, tuple[Callable[[Options], Scenario], str]] = {
    socket_loss.NAME: (socket_loss.create, socket_loss.DESCRIPTION),
    keeps_serving.NAME: (keeps_serving.create, keeps_serving.DESCRIPTION),
    boots.NAME: (boots.create, boots.DESCRIPTION),
}
#: the catalogue's cases: name -> its scenario file (the listing shows its TRACKER)
CATALOGUE: dict[str, Path] = {
    "reload-leak": _CASES / "reload_leak.py",
    "reload-drops": _CASES / "reload_drops.py",
    "keepalive-slow": _CASES / "keepalive_slow.py",
    "reload-broken-app": _CASES / "reload_broken_app.py",
    "respawn": _CASES / "respawn.py",
    "adv-cve-2018-1000164": _CASES / "adv_cve_2018_1000164.py",
    "adv-te-cl-2019": _CASES / "adv_te_cl_2019.py",
    "adv-cve-2024-1135": _CASES / "adv_cve_2024_1135.py",
    "adv-cve-2024-6827": _CASES / "adv_cve_2024_6827.py",
    "adv-cve-2026-134820": _CASES / "adv_cve_2026_134820.py",
    "adv-cve-2026-134821": _CASES / "adv_cve_2026_134821.py",
}
#: the user's own kinds, after the built-ins in the listing
OWN = [
    ("FILE.py", "your own scenario file (see README: Your own scenario)"),
    ("--run CMD", CommandScenario.DESCRIPTION),
]


def create(name: str | None, options: Options) -> Scenario:
    """``--run CMD`` (``options.run``), a scenario file (a path), or a built-in by name."""
    if options.run is not None:
        return CommandScenario(options)
    name = name or DEFAULT
    if name.endswith(".py") or "/" in name:
        return UserScenario.from_file(Path(name), options)
    if name in CATALOGUE:
        return UserScenario.from_file(CATALOGUE[name], options, name=name)
    if name not in BUILTINS:
        known = ", ".join(sorted([*BUILTINS, *CATALOGUE]))
        raise ScenarioError(f"unknown scenario {name!r}: choose one of {known}, or give a .py file")
    return BUILTINS[name][0](options)


def _case_line(path: Path) -> str:
    case = load(path)
    tag = f"#{case.tracker}"
    if not case.tracker or case.description.startswith(tag):
        return case.description
    return f"{tag}: {case.description}"


def listing() -> list[tuple[str, str]]:
    """(name, one line) for ``--list-scenarios``: the built-ins, the catalogue's cases
    with their tracker numbers, then the user's own kinds."""
    cases = sorted((n, _case_line(p)) for n, p in CATALOGUE.items())
    return [*sorted((n, d) for n, (_, d) in BUILTINS.items()), *cases, *OWN]

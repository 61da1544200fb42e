"""The one place a scenario is chosen: a case by name, a user's case file, or ``--run``.

The cases are discovered, not listed: the built-ins (``BUILTINS``, harness.scenarios' own
case modules) and every module in ``harness/catalogue/``, named by their ``NAME`` or
their file's name (``reload_leak.py`` is ``reload-leak``).  Adding a catalogue case is
its file and its test; ``--list-scenarios``, the tests' parameters and
``bench/known_regressions.py`` read ``cases()``.  Callers (the CLI, bench/) ask only
this module.
"""

from __future__ import annotations

import functools
import importlib
import re
from pathlib import Path

import harness.catalogue
from harness.scenarios import boots, keeps_serving, socket_loss
from harness.scenarios.base import DEFAULT, Options, Scenario, ScenarioError
from harness.scenarios.case import Case, from_module, load
from harness.scenarios.command import CommandScenario
from harness.scenarios.lifecycle import CaseScenario, refusal, shadowing

__all__ = [
    "BUILTINS",
    "DEFAULT",
    "cases",
    "create",
    "listing",
    "listing_lines",
    "names",
    "refused",
]

#: harness.scenarios' own cases, first in the listing
BUILTINS = (socket_loss, keeps_serving, boots)
CATALOGUE = Path(harness.catalogue.__file__).parent
#: the user's own kinds, after the cases in the listing
OWN = [
    ("FILE.py", "your own scenario file (see README: Your own scenario file)"),
    ("--run CMD", CommandScenario.DESCRIPTION),
]


@functools.lru_cache(maxsize=1)
def cases() -> dict[str, Case]:
    """name -> case: the built-ins, then the catalogue's modules in file order."""
    found = {m.NAME: from_module(m, Path(m.__file__), m.NAME, builtin=True) for m in BUILTINS}
    for path in sorted(CATALOGUE.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = importlib.import_module(f"harness.catalogue.{path.stem}")
        name = getattr(module, "NAME", path.stem.replace("_", "-"))
        found[name] = from_module(module, path, name)
    return found


def names() -> list[str]:
    """Every case by name: the built-ins, then the catalogue."""
    return list(cases())


def create(name: str | None, options: Options) -> Scenario:
    """``--run CMD`` (``options.run``), a case file (a path), or a case by name; an option
    the case cannot honour is refused here, before anything starts (ScenarioError)."""
    if options.run is not None:
        return CommandScenario(options)
    name = name or DEFAULT
    if name.endswith(".py") or "/" in name:
        return CaseScenario(load(Path(name)), options)
    if name not in cases():
        known = ", ".join(sorted(cases()))
        raise ScenarioError(f"unknown scenario {name!r}: choose one of {known}, or give a .py file")
    return CaseScenario(cases()[name], options)


def refused(name: str, options: Options) -> str:
    """The one line ``create`` would refuse the named case with ("" when it takes every
    option given): for a run over several cases that reports the refusals as rows."""
    return refusal(cases()[name], options) or shadowing(options)


def _line(case: Case) -> str:
    """One line: the tracker number first, reST's double backticks as plain quotes."""
    text = re.sub(r"``([^`]+)``", r"'\1'", case.description).rstrip(".")
    tag = f"#{case.tracker}"
    if not case.tracker or text.startswith(tag):
        return text
    return f"{tag}: {text}"


def listing() -> list[tuple[str, str]]:
    """(name, one line) for ``--list-scenarios``: the built-ins, the catalogue's cases
    with their tracker numbers, then the user's own kinds."""
    builtin = sorted((n, _line(c)) for n, c in cases().items() if c.builtin)
    catalogue = sorted((n, _line(c)) for n, c in cases().items() if not c.builtin)
    return [*builtin, *catalogue, *OWN]


def listing_lines() -> list[str]:
    """``--list-scenarios`` as printed: names in one column as wide as the longest."""
    rows = listing()
    width = max(len(n) for n, _ in rows)
    return [f"{n:{width}}  {d}" for n, d in rows]

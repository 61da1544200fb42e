"""The scenario interface and the registry of built-in scenarios.

A scenario says what it needs (extra wheels, modules its boot probe must import, the
worker class to resolve), runs against one environment with a cancellation handle,
and decides -- purely -- from its observation to a verdict with evidence.  The runner,
environments, report and CLI only ever talk to this interface.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.build.environments import EnvNeeds, Extra  # noqa: F401  (part of the interface)
from harness.build.interpreters import Interpreter
from harness.host.cancel import Cancel
from harness.model.errors import HarnessError
from harness.model.verdict import Axis, Decision, Verdict


class ScenarioError(HarnessError):
    """A scenario the user named cannot be used (one line, exit status 2)."""


@dataclass(frozen=True)
class RunContext:
    """One environment to run against, and the bounds of the run."""

    label: str  # "19.6.0" or a short sha
    sha: str | None  # full sha for commits
    python: Path  # the environment's interpreter
    env_root: Path
    interpreter: Interpreter
    compat_dir: Path | None  # the SO_REUSEPORT shim's directory, when the host needs it
    timeout: float  # the whole run ends within this many seconds (plus teardown)
    on_log: Callable[[str], None] | None = None


@dataclass
class RunResult:
    """What one run produced: the scenario's own observation plus what every run has."""

    observation: Any
    log: str = ""
    duration: float = 0.0
    boot_seconds: float = 0.0
    compat_used: bool = False
    facts: dict[str, Any] = field(default_factory=dict)  # into the row and the JSON


@dataclass(frozen=True)
class Options:
    """Every scenario knob the command line offers; each scenario takes what it uses."""

    workers: int | None = None
    threads: int | None = None
    max_requests: int | None = None
    worker_class: str | None = None
    gunicorn_config: Path | None = None
    bind: str = "unix"  # or "tcp"
    proxy: str | None = None  # "h2o" or "nginx" in front
    trigger: str = "auto"  # how workers are made to exit: max-requests, signal, auto
    timeout: float = 20.0  # one run, whatever the server does
    terms: tuple[str, str] | None = None  # names of the old and new state (--terms)
    run: str | None = None  # --run CMD


@dataclass(frozen=True)
class About:
    """How a scenario presents itself: everything the report and the record need, as data.

    The jobs and the report read only this (and ``axes()``), never a scenario's methods,
    so a scenario's presentation can change without touching them.
    """

    name: str  # "socket-loss", a file's path, or "run"
    description: str  # one sentence (the registry listing)
    summary: str  # the header line: the knobs as they will run
    title: str  # the markdown report's heading
    parameters: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)  # how the JSON record names it


DEFAULT_AXIS = Axis("primary", Verdict.PASS, Verdict.FAIL, "pass", "fail")


class Scenario(abc.ABC):
    """One way to judge a gunicorn build.  Subclasses set ``name`` and ``description``."""

    name: str = ""
    description: str = ""
    #: heading of the markdown report
    title: str = "Gunicorn bisection report"
    options: Options = Options()

    def primary_axis(self) -> Axis:
        """pass -> fail, under the names the user chose with --terms."""
        if self.options.terms is None:
            return DEFAULT_AXIS
        old, new = self.options.terms
        return Axis("primary", Verdict.PASS, Verdict.FAIL, old, new)

    def axes(self) -> list[Axis]:
        """The questions the release table answers; the first is the scenario's own."""
        return [self.primary_axis()]

    def parameters(self) -> dict[str, Any]:
        """The scenario's knobs as data (JSON record)."""
        return {}

    def describe(self) -> str:
        """One line for the report header."""
        return self.name

    def needs(self, interp: Interpreter, cache_dir: Path) -> EnvNeeds:
        return EnvNeeds()

    def record(self) -> dict[str, Any]:
        """How the record names this scenario: name, parameters, and for user-provided
        checks the command or file with its sha256."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters()}

    def about(self) -> About:
        """The scenario as the report and the record present it."""
        return About(
            self.name,
            self.description,
            self.describe(),
            self.title,
            self.parameters(),
            self.record(),
        )

    def notes(self) -> list[str]:
        """Lines the report prints under the table (set by the session)."""
        return []

    @abc.abstractmethod
    def run(self, ctx: RunContext, cancel: Cancel) -> RunResult: ...

    @abc.abstractmethod
    def decide(self, observation: Any) -> Decision:
        """Pure: the scenario's rules from its observation to a verdict with evidence."""


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


#: The scenario a run uses when none is named (its header line omits the name).
DEFAULT = "socket-loss"

# name -> (factory from the CLI's options, one-line description)
REGISTRY: dict[str, tuple[Callable[[Any], Scenario], str]] = {}


def register(name: str, description: str) -> Callable:
    """Class decorator: ``@register("socket-loss", "...")`` adds a built-in scenario."""

    def wrap(cls):
        cls.name, cls.description = name, description
        REGISTRY[name] = (cls.from_options, description)
        return cls

    return wrap


def listing() -> list[tuple[str, str]]:
    _load_builtins()
    return sorted((n, d) for n, (_, d) in REGISTRY.items())


def _load_builtins() -> None:
    from harness.scenarios import keeps_serving, socket_loss  # noqa: F401


def create(name: str, options: Any) -> Scenario:
    """A built-in scenario by name, or a user's scenario file (a path ending in .py)."""
    _load_builtins()
    if name.endswith(".py") or "/" in name:
        from harness.scenarios.user import UserScenario

        return UserScenario.from_file(Path(name), options)
    if name not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise ScenarioError(f"unknown scenario {name!r}: choose one of {known}, or give a .py file")
    return REGISTRY[name][0](options)

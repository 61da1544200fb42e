"""The scenario protocol: what the jobs, the report and the CLI may ask of a scenario.

A scenario says what it needs (extra wheels, modules its import trial must import, the
worker class to resolve), runs against one environment with a cancellation handle,
and decides -- purely -- from its observation to a verdict with evidence; ``axes`` are
the questions its table answers and ``about`` is its presentation, as data.  This
module imports no scenario: the registry picks one, the jobs only talk to this.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.host.processes import Cancel
from harness.model.errors import HarnessError
from harness.model.verdict import Axis, Decision, primary_axis
from harness.provision import requirements
from harness.provision.environments import EnvNeeds
from harness.provision.interpreters import Interpreter
from harness.provision.requirements import RequirementSet

#: The scenario a run uses when none is named (its header line omits the name).
DEFAULT = "socket-loss"


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


#: what drives socket-loss's load (``--load``)
LOADS = ("builtin", "wrk")


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
    path: str = "/"  # what the scenario's probes and load request
    load: str = "builtin"  # socket-loss's load: the keep-alive client, or "wrk"
    requirements: RequirementSet = RequirementSet(())  # --with, --with-requirements
    app: str | None = None  # --app MODULE:CALLABLE, served instead of the scenario's app
    app_dir: Path | None = None  # where --app is imported from


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

    @classmethod
    def of(
        cls,
        name: str,
        description: str,
        summary: str,
        title: str,
        parameters: dict[str, Any],
        **named: Any,
    ) -> About:
        """The record names the scenario, its parameters and, for the user's own
        checks, what identifies them (``named``: the command, the file, its sha256)."""
        record = {"name": name, "description": description, "parameters": parameters, **named}
        return cls(name, description, summary, title, parameters, record)


class Scenario(abc.ABC):
    """One way to judge a gunicorn build: needs, run, decide, axes, about.

    Two implement it: every case (``lifecycle.CaseScenario``) and ``--run``
    (``registry.CommandScenario``).  ``decide`` applies ``rules``, the pure function from
    an observation to a decision, unless the scenario defines its own.
    """

    options: Options
    rules: Callable[[Any], Decision]

    def needs(self, interp: Interpreter, cache_dir: Path) -> EnvNeeds:
        """What the scenario needs (``own_needs``) plus the user's requirement layer,
        resolved once per (interpreter, set); ``LayerError`` (an ArtifactError) turns
        this interpreter away with pip's reason."""
        own = self.own_needs(interp, cache_dir)
        reqs = self.requirements()
        if not reqs:
            return own
        return replace(own, layer=requirements.ensure(reqs, interp, cache_dir))

    def own_needs(self, interp: Interpreter, cache_dir: Path) -> EnvNeeds:
        """The scenario's own wheels and the modules its import trial must import (a subclass's override point)."""
        return EnvNeeds()

    def requirements(self) -> RequirementSet:
        """The requirement layer every target gets: ``--with`` (a scenario file adds its
        ``REQUIRES``)."""
        return self.options.requirements

    @abc.abstractmethod
    def run(self, ctx: RunContext, cancel: Cancel) -> RunResult: ...

    def decide(self, observation: Any) -> Decision:
        """Pure: the scenario's rules from its observation to a verdict with evidence."""
        return self.rules(observation)

    def axes(self) -> list[Axis]:
        """The questions the release table answers; the first is the scenario's own."""
        return [primary_axis(self.options.terms)]

    @abc.abstractmethod
    def about(self) -> About:
        """The scenario as the report and the record present it."""

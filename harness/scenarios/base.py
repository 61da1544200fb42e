"""The scenario protocol: what the jobs, the report and the CLI may ask of a scenario:
what it needs, a run against one environment, a pure ``decide``, the questions its table
answers (``axes``) and its presentation as data (``about``).  It imports no scenario."""

from __future__ import annotations

import abc
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
    """How a scenario presents itself: all the jobs and the report read (with ``axes()``)."""

    name: str  # "socket-loss", a file's path, or "run"
    description: str  # one sentence (the registry listing)
    summary: str  # the header line: the knobs as they will run
    title: str  # the markdown report's heading
    parameters: dict[str, Any] = field(default_factory=dict)
    named: dict[str, Any] = field(default_factory=dict)  # what identifies a user's check

    @property
    def record(self) -> dict[str, Any]:
        """How the JSON record names the scenario (``named``: command, file, sha256 ...)."""
        own = {"name": self.name, "description": self.description, "parameters": self.parameters}
        return {**own, **self.named}


class Scenario(abc.ABC):
    """One way to judge a build: a case (``CaseScenario``) or ``--run`` (``CommandScenario``)."""

    options: Options

    def needs(self, interp: Interpreter, cache_dir: Path) -> EnvNeeds:
        """``own_needs`` plus the installed requirement set, resolved once per (interpreter, set);
        ``SetRefused`` turns this interpreter away with pip's reason."""
        own = self.own_needs(interp, cache_dir)
        reqs = self.requirements()
        if not reqs:
            return own
        return replace(own, user_set=requirements.ensure(reqs, interp, cache_dir))

    def own_needs(self, interp: Interpreter, cache_dir: Path) -> EnvNeeds:
        return EnvNeeds()

    def requirements(self) -> RequirementSet:
        return self.options.requirements

    @abc.abstractmethod
    def run(self, ctx: RunContext, cancel: Cancel) -> RunResult: ...

    @abc.abstractmethod
    def decide(self, observation: Any) -> Decision:
        """Pure: from the observation to a verdict with evidence."""

    def axes(self) -> list[Axis]:
        """The questions the release table answers; the first is the scenario's own."""
        return [primary_axis(self.options.terms)]

    @abc.abstractmethod
    def about(self) -> About: ...

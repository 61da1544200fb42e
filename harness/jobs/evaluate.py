"""Evaluate one target: pick an interpreter, build or reuse its environment, run the
scenario (``repeat`` times), decide.  The one place where the effects meet; it knows
the scenario only through its interface and the target only through ``Target``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.host.processes import Cancel
from harness.jobs.target import BuildFailed, Target
from harness.model.errors import HarnessError
from harness.model.printable import printable
from harness.model.results import Row
from harness.model.verdict import Decision, Verdict, combine
from harness.provision import environments
from harness.provision.environments import EnvNeeds
from harness.provision.interpreters import Interpreter, order
from harness.provision.wheels import Artifact, ArtifactError
from harness.scenarios.base import RunContext, Scenario

COMPAT_NOTE = " (compat: SO_REUSEPORT on AF_UNIX accepted as a no-op)"


class NoInterpreter(HarnessError):
    """No interpreter on this machine can run the target (exit status 2, or an ``error``
    row where the runner is one column of several)."""

    def __init__(self, message: str, tried: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.tried = tuple(tried)


@dataclass
class Runner:
    """Everything fixed for a run: where to cache, which Pythons, which scenario."""

    cache_dir: Path
    interpreters: Sequence[Interpreter]
    scenario: Scenario
    compat_dir: Path | None = None
    override: Interpreter | None = None
    repeat: int = 1
    on_log: Callable[[str, str], None] | None = None
    progress: Callable[[str], None] = lambda msg: None
    cancel: Cancel = field(default_factory=Cancel)
    timeout: float = 20.0
    #: one column of a matrix: a target no Python can run is an ``error`` row, not the
    #: end of the whole run (the other columns may well run it)
    untestable_is_row: bool = False

    def _candidates(self) -> list[Interpreter]:
        """Newest first, every time: the newest Python that boots a release is the answer,
        and each refusal is cached evidence (environments.preflight), cheap to read again."""
        if self.override is not None:
            return [self.override]
        return order(self.interpreters)

    def _python(self, version: str | None) -> Interpreter | None:
        """The interpreter a target asks for by version (None: search, newest first)."""
        if version is None:
            return None
        if self.override is not None and self.override.version == version:
            return self.override
        return next((i for i in self.interpreters if i.version == version), None)

    def _needs(self, target: Target, interp: Interpreter) -> tuple[Artifact, EnvNeeds]:
        """The target's wheel and the scenario's needs (with the target's) on ``interp``."""
        return target.needs(self.scenario.needs(interp, self.cache_dir), interp, self.cache_dir)

    def environment(self, target: Target) -> tuple[environments.Environment, list[str]]:
        """The newest interpreter whose environment boots this target, with the evidence."""
        tried: list[str] = []
        unmet: list[str] = []  # Pythons for which the scenario's own wheels do not exist
        what = target.describe()
        for interp in self._candidates():
            self.cancel.check()
            self.progress(f"{target.label}: environment on Python {interp.version}")
            try:
                artifact, needs = self._needs(target, interp)
            except ArtifactError as exc:  # what the scenario needs does not exist for it
                tried.append(f"{interp.version}: {exc}")
                unmet.append(str(exc))
                continue
            refused = environments.preflight(artifact, interp, self.cache_dir, needs)
            if refused:
                tried.append(f"{interp.version}: {refused}")
                continue
            env = environments.ensure(artifact, interp, self.cache_dir, needs)
            if env.works:
                return env, tried
            tried.append(f"{interp.version}: {env.reason}")
        if unmet and len(unmet) == len(tried):  # the scenario's own wheels: an error row
            raise ArtifactError(f"{unmet[-1]} (Pythons tried: {len(tried)})")
        if unmet:  # some lack the scenario's wheels, the others refuse this gunicorn
            raise NoInterpreter(
                f"no Python here runs {what} as asked; the oldest said {tried[-1]}", tried
            )
        if self.override is not None:
            raise NoInterpreter(
                f"--python {self.override.version} cannot run {what}: {tried[0].split(': ', 1)[1]}",
                tried,
            )
        hint = target.hint()
        found = ", ".join(i.version for i in self.interpreters) or "none"
        raise NoInterpreter(f"no Python found here can run {what} (tried {found}){hint}", tried)

    def evaluate(self, target: Target) -> Row:
        """Run the scenario on ``target``; build, install and boot problems become
        ``error`` rows.

        A target that names its Python (a commit: the Python that ran the releases around
        it) is tried on that one only, so a commit that cannot boot is untestable, not a
        reason to go hunting for another Python.
        """
        self.cancel.check()
        t0 = time.monotonic()
        found = self._environment(target)
        if isinstance(found, Row):
            return found
        env, tried = found
        return self._run(target, env, tried, time.monotonic() - t0)

    def _environment(self, target: Target) -> tuple[environments.Environment, list[str]] | Row:
        """The environment to run in, or the ``error`` row that says why there is none."""

        def error(detail: str, **kw) -> Row:
            detail = printable(detail)  # pip's or the probe's words may quote the app's output
            return Row(target.label, Verdict.ERROR, detail, kind=target.kind, sha=target.sha, **kw)

        interpreter = self._python(target.python)
        try:
            target.prepare()
            if interpreter is None:
                return self.environment(target)
            artifact, needs = self._needs(target, interpreter)
            env = environments.ensure(artifact, interpreter, self.cache_dir, needs, probe=False)
            if env.works:
                return env, []
            return error(
                f"cannot boot on Python {interpreter.version}: {env.reason}",
                python=interpreter.version,
            )
        except BuildFailed as exc:
            return error(str(exc))
        except (ArtifactError, environments.EnvError) as exc:
            return error(f"install failed: {exc}")
        except NoInterpreter as exc:
            # a git target no Python runs is untestable (a skip), unless --python named one
            commit = target.kind == "commit" and self.override is None
            if not (self.untestable_is_row or commit):
                raise
            return error(str(exc), tried=exc.tried)

    def _run(
        self,
        target: Target,
        env: environments.Environment,
        tried: list[str],
        env_seconds: float,
    ) -> Row:
        """The scenario ``repeat`` times in ``env``; the decisions combined into one row."""
        decisions: list[Decision] = []
        seconds = boot = 0.0
        compat = False
        facts: dict = {**env.extras, **target.facts(env.artifact)}
        ctx = RunContext(
            label=target.label,
            sha=target.sha,
            python=env.python,
            env_root=env.path,
            interpreter=env.interpreter,
            compat_dir=self.compat_dir,
            timeout=self.timeout,
        )
        for i in range(self.repeat):
            suffix = f" (run {i + 1}/{self.repeat})" if self.repeat > 1 else ""
            self.progress(f"{target.label}: scenario on Python {env.interpreter.version}{suffix}")
            result = self.scenario.run(ctx, self.cancel)
            self.cancel.check()  # a run cut short by Ctrl-C is not evidence
            if self.on_log is not None:
                self.on_log(target.label, printable(result.log))
            seconds += result.duration
            boot += result.boot_seconds
            compat = compat or result.compat_used
            _add_facts(facts, result.facts)
            decisions.append(self.scenario.decide(result.observation))
        out = combine(decisions)
        return Row(
            target=target.label,
            verdict=out.verdict,
            detail=printable(out.detail)
            + (COMPAT_NOTE if compat else "")
            + ("" if env.artifact.verified else UNVERIFIED_NOTE),
            python=env.interpreter.version,
            kind=target.kind,
            sha=target.sha,
            compat=compat,
            traceback=printable(out.traceback),
            reused_env=env.reused,
            seconds=seconds,
            runs=tuple(v.value for v in out.runs),
            tried=tuple(tried),
            facts=facts,
            env_seconds=env_seconds,
            boot_seconds=boot,
        )


#: a gunicorn the index listed without a sha256: hashed at first download and pinned
UNVERIFIED_NOTE = " (unverified by the index: no sha256 listed; pinned at its first download)"


def _add_facts(facts: dict, new: dict) -> None:
    """Counts add up over --repeat runs; anything else is the last run's."""
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(facts.get(key), dict):
            value = {k: facts[key].get(k, 0) + value.get(k, 0) for k in {*facts[key], *value}}
        facts[key] = value

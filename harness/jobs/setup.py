"""Set up once per run: the host examined (kernel, Pythons, the compat shim), a Runner per
deployment, the real Lab (the Evaluator: targets made by the run's one Maker), the report's
header. The Runner evaluates one target: an interpreter, its environment (cached, verified),
the scenario ``repeat`` times, the decision; it knows only the scenario's and ``Target``'s
interfaces."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.host import compat
from harness.host.git import Repo
from harness.host.processes import Cancel
from harness.host.progress import Progress
from harness.jobs.target import BuildFailed, Maker, Target, maker
from harness.model.errors import HarnessError
from harness.model.results import COMPAT_NOTE, UNVERIFIED_NOTE, Row, Step
from harness.model.table import Deployment, Report, Table, deployment_label
from harness.model.verdict import Decision, Verdict, combine, printable
from harness.provision import environments, index, interpreters
from harness.provision.environments import EnvNeeds
from harness.provision.interpreters import Interpreter, order
from harness.provision.wheels import Artifact, ArtifactError
from harness.scenarios.base import DEFAULT as DEFAULT_SCENARIO
from harness.scenarios.base import RunContext, Scenario


@dataclass
class Lab:
    cache: Path
    runners: Mapping[str, Runner]  # by deployment label
    make: Maker  # gunicorn's releases and commits, or a dependency's (--package)
    _project: index.Project | None = field(default=None, repr=False)
    _refs: dict[str, Target] = field(default_factory=dict, repr=False)  # by row name

    @property
    def package(self) -> str:
        return self.make.package

    def versions(self) -> list[str]:
        if self._project is None:
            self._project = index.project(self.package, self.cache)
        return self._project.versions

    def fetch(self, version: str) -> Target:
        """A release on the index (or a git ref the table holds, by its row's name)."""
        if version in self._refs:
            return self._refs[version]
        self.versions()
        return self.make.release(version, self._project)

    def fetch_ref(self, history: Repo, sha: str, label: str) -> Target:
        self._refs[label] = self.make.commit(history, sha, None, None, label)
        return self._refs[label]

    def release(self, fetched: Target, deployment: str) -> Row:
        return self.runners[deployment].evaluate(fetched)

    def commit(
        self, history: Repo, sha: str, pick: str | None, deployment: str, python: str | None
    ) -> Step:
        t0 = time.monotonic()
        target = self.make.commit(history, sha, pick, python)
        try:
            target.prepare()
        except BuildFailed as exc:
            return Step(sha, Verdict.ERROR, None, str(exc), pick)
        built = time.monotonic() - t0
        r = self.runners[deployment].evaluate(target)
        seconds = (built, r.env_seconds, r.boot_seconds, r.seconds)
        return Step(sha, r.verdict, r.python, r.detail, pick, *seconds)


@dataclass
class Setup:
    """The lab, an empty table of the run's deployments, and the report header around it."""

    lab: Lab
    report: Report
    cancel: Cancel = field(default_factory=Cancel)

    @property
    def table(self) -> Table:
        return self.report.table


def _host(found, kernel, use_compat: bool) -> tuple[dict, list[str]]:
    """The report's host record and its notes on the compat shim."""
    host = {
        "kernel": platform.release(),
        "compat": kernel.describe(),
        "reuseport_unix_rejected": kernel.reuseport_unix_rejected,
        "pythons": [f"{i.version} ({i.source})" for i in found],
        "python_paths": {i.version: i.path for i in found},
        "host_python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }
    if not kernel.reuseport_unix_rejected:
        return host, []
    if use_compat:
        host["compat"] += ": compat shim on"
        note = "compat: this kernel rejects SO_REUSEPORT on AF_UNIX; inside the scenario that "
        return host, [note + "one call is a no-op, as on older kernels (--no-compat to turn off)"]
    host["compat"] += ": compat off (--no-compat)"
    note = "compat off: releases that set SO_REUSEPORT on a Unix socket cannot bind here "
    return host, [note + "(error, not fail)"]


def header(scenarios: Sequence[Scenario], command: str, host: dict, notes: list[str]) -> Report:
    """The report before any row: the scenario line and record, the deployments, the axes."""
    scenario = scenarios[0]
    about = scenario.about()
    deployments = []
    for sc in scenarios:
        o, a = sc.options, sc.about()
        deployments.append(
            Deployment(
                deployment_label(o.worker_class, o.bind),
                o.worker_class,
                o.bind,
                a.summary,
                a.parameters,
            )
        )
    line = about.summary if about.name == DEFAULT_SCENARIO else f"{about.name}: {about.summary}"
    record = about.record
    if len(deployments) > 1:
        line = f"{about.name}, {len(deployments)} deployments (worker class x bind)"
        params = dict(record.get("parameters", {}))
        for key in ("worker_class", "bind"):
            params[key] = list(dict.fromkeys(getattr(c, key) or "auto" for c in deployments))
        record = {**record, "parameters": params}
    table = Table(deployments, list(scenario.axes()))
    return Report(command, host, line, table, scenario=record, title=about.title, notes=notes)


def open_run(
    *,
    cache: Path,
    python: str | None,
    scenarios: Sequence[Scenario],
    no_compat: bool,
    repeat: int,
    command: str,
    progress: Progress,
    on_log: Callable[[str, str], None] | None = None,
    timeout: float = 20.0,
    package: str = "gunicorn",
    gunicorn: str | None = None,
) -> Setup:
    """Examine the host once and set up a runner per scenario (one per deployment)."""
    kernel = compat.ask_kernel()  # what this kernel does with SO_REUSEPORT on AF_UNIX
    found = interpreters.discover(cache)
    override = interpreters.select(python, found) if python else None
    use_compat = kernel.reuseport_unix_rejected and not no_compat
    compat_dir = compat.write_shim() if use_compat else None  # in the run's own TMPDIR
    cancel = Cancel()
    runners = {
        deployment_label(sc.options.worker_class, sc.options.bind): Runner(
            cache,
            found,
            sc,
            compat_dir,
            override,
            repeat,
            on_log=on_log,
            progress=progress,
            cancel=cancel,
            timeout=timeout,
            untestable_is_row=len(scenarios) > 1,
        )
        for sc in scenarios
    }
    report = header(scenarios, command, *_host(found, kernel, use_compat))
    if package != "gunicorn":
        report.package = package
        pin = f"gunicorn {gunicorn}" if gunicorn else "the newest gunicorn that installs"
        report.params = f"{package} releases with {pin}; {report.params}"
    lab = Lab(cache, runners, maker(cache, package, gunicorn))
    return Setup(lab, report, cancel)


class NoInterpreter(HarnessError):
    """No interpreter on this machine can run the target (exit status 2, or an ``error``
    row where the runner is one deployment of several)."""

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
    #: one deployment of a matrix: a target no Python can run is an ``error`` row, not the
    #: end of the whole run (the other deployments may well run it)
    untestable_is_row: bool = False

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
        # newest first, every time: the newest Python that boots a release is the answer, and
        # each refusal is cached evidence (environments.preflight), cheap to read again
        for interp in [self.override] if self.override else order(self.interpreters):
            self.cancel.raise_if_set()
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
        """Run the scenario on ``target``; build, install and boot problems are ``error``
        rows. A target that names its Python (a commit: the Python of the releases around
        it) is tried on that one only: a commit that cannot boot is untestable, not a
        reason to go hunting for another Python."""
        self.cancel.raise_if_set()
        t0 = time.monotonic()
        interpreter = self._python(target.python)
        try:
            target.prepare()
            if interpreter is None:
                env, tried = self.environment(target)
            else:
                artifact, needs = self._needs(target, interpreter)
                env = environments.ensure(
                    artifact, interpreter, self.cache_dir, needs, try_boot=False
                )
                tried = []
                if not env.works:
                    why = f"cannot boot on Python {interpreter.version}: {env.reason}"
                    return _error(target, why, python=interpreter.version)
        except BuildFailed as exc:
            return _error(target, str(exc))
        except (ArtifactError, environments.EnvError) as exc:
            return _error(target, f"install failed: {exc}")
        except NoInterpreter as exc:
            # a git target no Python runs is untestable (a skip), unless --python named one
            commit = target.kind == "commit" and self.override is None
            if not (self.untestable_is_row or commit):
                raise
            return _error(target, str(exc), tried=exc.tried)
        return self._run(target, env, tried, time.monotonic() - t0)

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
            self.cancel.raise_if_set()  # a run cut short by Ctrl-C is not evidence
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


def _error(target: Target, detail: str, **kw) -> Row:
    """An ``error`` row (pip's or the import trial's words may quote the app's output)."""
    return Row(
        target.label, Verdict.ERROR, printable(detail), kind=target.kind, sha=target.sha, **kw
    )


def _add_facts(facts: dict, new: dict) -> None:
    """Counts add up over --repeat runs; anything else is the last run's."""
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(facts.get(key), dict):
            value = {k: facts[key].get(k, 0) + value.get(k, 0) for k in {*facts[key], *value}}
        facts[key] = value

"""What is set up once per run: the host probed (kernel, Pythons, the compat shim), a
Runner per column (harness.jobs.evaluate), the real Lab, and the report's header.

The Lab is the real Evaluator (harness.jobs.protocols): targets (harness.jobs.target)
made by the run's one Maker, evaluated by each column's Runner in environments that are
cached and verified."""

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
from harness.jobs.evaluate import Runner
from harness.jobs.target import BuildFailed, Maker, Target, maker
from harness.model.results import Row, Step
from harness.model.table import Column, Report, Table, column_label
from harness.model.verdict import Verdict
from harness.provision import index, interpreters
from harness.scenarios.base import DEFAULT as DEFAULT_SCENARIO
from harness.scenarios.base import Scenario


@dataclass
class Lab:
    cache: Path
    runners: Mapping[str, Runner]  # by column label
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

    def release(self, fetched: Target, column: str) -> Row:
        return self.runners[column].evaluate(fetched)

    def commit(
        self, history: Repo, sha: str, pick: str | None, column: str, python: str | None
    ) -> Step:
        t0 = time.monotonic()
        target = self.make.commit(history, sha, pick, python)
        try:
            target.prepare()
        except BuildFailed as exc:
            return Step(sha, Verdict.ERROR, None, str(exc), pick)
        built = time.monotonic() - t0
        r = self.runners[column].evaluate(target)
        seconds = (built, r.env_seconds, r.boot_seconds, r.seconds)
        return Step(sha, r.verdict, r.python, r.detail, pick, *seconds)


@dataclass
class Setup:
    """The lab, an empty table of the run's columns, and the report header around it."""

    lab: Lab
    report: Report
    cancel: Cancel = field(default_factory=Cancel)

    @property
    def table(self) -> Table:
        return self.report.table


def _host(found, probe, use_compat: bool) -> dict:
    host = {
        "kernel": platform.release(),
        "compat": probe.describe(),
        "reuseport_unix_rejected": probe.reuseport_unix_rejected,
        "pythons": [f"{i.version} ({i.source})" for i in found],
        "python_paths": {i.version: i.path for i in found},
        "host_python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }
    if probe.reuseport_unix_rejected:
        host["compat"] += ": compat shim on" if use_compat else ": compat off (--no-compat)"
    return host


def _compat_notes(probe, use_compat: bool) -> list[str]:
    if use_compat:
        return [
            "compat: this kernel rejects SO_REUSEPORT on AF_UNIX; inside the scenario that "
            "one call is a no-op, as on older kernels (--no-compat to turn off)"
        ]
    if probe.reuseport_unix_rejected:
        return [
            "compat off: releases that set SO_REUSEPORT on a Unix socket cannot bind here "
            "(error, not fail)"
        ]
    return []


def header(scenarios: Sequence[Scenario], command: str, host: dict, notes: list[str]) -> Report:
    """The report before any row: the scenario line and record, the columns, the axes."""
    scenario = scenarios[0]
    about = scenario.about()
    columns = []
    for sc in scenarios:
        o, a = sc.options, sc.about()
        columns.append(
            Column(
                column_label(o.worker_class, o.bind),
                o.worker_class,
                o.bind,
                a.summary,
                a.parameters,
            )
        )
    line = about.summary if about.name == DEFAULT_SCENARIO else f"{about.name}: {about.summary}"
    record = about.record
    if len(columns) > 1:
        line = f"{about.name}, {len(columns)} deployments (worker class x bind)"
        params = dict(record.get("parameters", {}))
        for key in ("worker_class", "bind"):
            params[key] = list(dict.fromkeys(getattr(c, key) or "auto" for c in columns))
        record = {**record, "parameters": params}
    table = Table(columns, list(scenario.axes()))
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
    """Probe the host once and set up a runner per scenario (one per column)."""
    probe = compat.probe_host()
    found = interpreters.discover(cache)
    override = interpreters.select(python, found) if python else None
    use_compat = probe.reuseport_unix_rejected and not no_compat
    compat_dir = compat.write_shim() if use_compat else None  # in the run's own TMPDIR
    cancel = Cancel()
    runners = {
        column_label(sc.options.worker_class, sc.options.bind): Runner(
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
    host = _host(found, probe, use_compat)
    report = header(scenarios, command, host, _compat_notes(probe, use_compat))
    if package != "gunicorn":
        report.package = package
        pin = f"gunicorn {gunicorn}" if gunicorn else "the newest gunicorn that installs"
        report.params = f"{package} releases with {pin}; {report.params}"
    lab = Lab(cache, runners, maker(cache, package, gunicorn))
    return Setup(lab, report, cancel)

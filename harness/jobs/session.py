"""The jobs a user asks for, as functions over one Session: the release table, the
commit bisections that follow it, and a single ``--check``.

cli.py turns arguments into a Session and results into output and exit codes; this
module holds the order of the steps and nothing about the command line.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.build import commit_wheels, index, interpreters, wheels
from harness.build.interpreters import Interpreter
from harness.host import compat
from harness.host.cancel import Cancel
from harness.host.git import DEFAULT_REPO, Repo, SourceError
from harness.host.progress import Progress, SharedBar
from harness.jobs.bisector import CommitBisector
from harness.jobs.evaluate import NoInterpreter, Runner
from harness.model import search, targets
from harness.model.results import Finding, Row
from harness.model.verdict import Verdict
from harness.report import report
from harness.scenarios.base import DEFAULT as DEFAULT_SCENARIO
from harness.scenarios.base import Scenario


@dataclass(frozen=True)
class Column:
    """One deployment of the matrix (a worker class on a bind): its own scenario and a
    runner for it; columns that need the same environment share it (envs are keyed by
    what the scenario needs)."""

    label: str  # "gthread/unix"
    worker_class: str | None
    bind: str
    scenario: Scenario
    runner: Runner


def column_label(scenario: Scenario) -> str:
    o = scenario.options
    return f"{o.worker_class or 'auto'}/{o.bind}"


@dataclass
class Session:
    """What is fixed for one run: where things are cached, which Pythons, the report."""

    cache: Path
    runner: Runner  # the first (usually only) column's
    interpreters: list[Interpreter]
    override: Interpreter | None
    report: report.Report
    jobs: int
    progress: Progress
    cancel: Cancel
    columns: list[Column] = field(default_factory=list)

    @property
    def matrix(self) -> bool:
        return len(self.columns) > 1


def open_session(
    *,
    cache: Path,
    python: str | None,
    scenarios: Sequence[Scenario],
    no_compat: bool,
    repeat: int,
    jobs: int,
    command: str,
    progress: Progress,
    on_log: Callable[[str, str], None] | None = None,
    timeout: float = 20.0,
    cancel: Cancel | None = None,
) -> Session:
    """Probe the host once (kernel, Pythons) and set up a runner per scenario (one per
    column of the matrix; usually one) and the report."""
    probe = compat.probe_host()
    found = interpreters.discover(cache)
    override = interpreters.select(python, found) if python else None
    use_compat = probe.reuseport_unix_rejected and not no_compat
    compat_dir = compat.write_shim(cache / "compat-shim") if use_compat else None
    cancel = cancel or Cancel()
    columns = [
        Column(
            column_label(sc),
            sc.options.worker_class,
            sc.options.bind,
            sc,
            Runner(
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
            ),
        )
        for sc in scenarios
    ]
    scenario = scenarios[0]
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
    about = scenario.about()
    line = about.summary
    if about.name != DEFAULT_SCENARIO:
        line = f"{about.name}: {line}"
    record = about.record
    if len(columns) > 1:
        line = f"{about.name}, {len(columns)} deployments (worker class x bind)"
        params = dict(record.get("parameters", {}))
        for key in ("worker_class", "bind"):
            params[key] = list(dict.fromkeys(getattr(c, key) or "auto" for c in columns))
        record = {**record, "parameters": params}
    rep = report.Report(
        command,
        host,
        line,
        scenario=record,
        title=about.title,
        axes=scenario.axes(),
        columns=[
            report.ColumnInfo(
                c.label,
                c.worker_class,
                c.bind,
                c.scenario.about().summary,
                c.scenario.about().parameters,
            )
            for c in columns
        ],
    )
    if use_compat:
        rep.notes.append(
            "compat: this kernel rejects SO_REUSEPORT on AF_UNIX; inside the scenario that "
            "one call is a no-op, as on older kernels (--no-compat to turn off)"
        )
    elif probe.reuseport_unix_rejected:
        rep.notes.append(
            "compat off: releases that set SO_REUSEPORT on a Unix socket cannot bind here "
            "(error, not fail)"
        )
    return Session(cache, columns[0].runner, found, override, rep, jobs, progress, cancel, columns)


def _abandon(s: Session, pool: ThreadPoolExecutor) -> None:
    """On Ctrl-C: running scenarios see the cancel and tear down, queued ones never start,
    and the caller goes on to kill every server at once instead of waiting for them."""
    s.cancel.set()
    pool.shutdown(wait=False, cancel_futures=True)


def release_table(s: Session, spec_text: str) -> None:
    """Every requested release in every column, ``jobs`` at a time, then the transitions
    of each column on each axis."""
    spec = targets.parse(spec_text)
    project = index.project("gunicorn", s.cache)
    releases = targets.resolve(spec, project.versions)
    cells = len(releases) * len(s.columns)
    s.progress(f"{len(releases)} release(s) to test: {', '.join(releases)}")
    if s.matrix:
        s.progress(f"{len(s.columns)} deployments each: {', '.join(c.label for c in s.columns)}")
    s.progress.start(len(releases) + cells, "steps")  # a download per release, then each cell
    arts = []
    for v in releases:
        s.progress(f"{v}: fetching the wheel")
        arts.append(wheels.gunicorn_release(v, s.cache, project))
        s.progress.advance()
    jobs = [(a, c) for a in arts for c in s.columns]  # release order, then column order
    rows: list[Row | None] = [None] * len(jobs)
    pool = ThreadPoolExecutor(max_workers=s.jobs)
    futures = {pool.submit(_evaluate, c, a): i for i, (a, c) in enumerate(jobs)}
    try:
        for done, fut in enumerate(as_completed(futures), 1):
            row = rows[futures[fut]] = fut.result()
            s.progress.advance()
            where = f" {row.facts['column']}" if s.matrix else ""
            s.progress(f"{row.target}{where}: {row.verdict.value} ({cells - done} remain)")
            s.report.rows = [r for r in rows if r is not None]
    except BaseException:
        _abandon(s, pool)
        raise
    pool.shutdown(wait=True)
    for col in s.columns:
        col_rows = [r for r in s.report.rows if r.facts.get("column") == col.label]
        found = {
            axis.key: search.transitions([(r.target, axis.state(r.verdict)) for r in col_rows])
            for axis in s.report.axes
        }
        if s.matrix:
            s.report.by_column[col.label] = found
        else:
            s.report.by_axis.update(found)
    _worker_class_notes(s)


def _evaluate(col: Column, artifact: wheels.Artifact) -> Row:
    """One cell: the column's runner on one release, the row naming its column."""
    row = col.runner.evaluate(artifact)
    facts = {**row.facts, "column": col.label}
    facts.setdefault("bind", col.bind)
    return replace(row, facts=facts)


def _worker_class_notes(s: Session) -> None:
    """Never let a table claim a worker class that did not run: say where it differed."""
    for col in s.columns:
        asked = col.worker_class
        if not asked:
            continue
        ran = sorted(
            {
                str(r.facts.get("worker_class"))
                for r in s.report.rows
                if r.facts.get("column") == col.label
                and r.facts.get("worker_class") not in (None, asked)
            }
        )
        if ran:
            s.report.notes.append(
                f"warning: --worker-class {asked} was asked, but gunicorn ran {', '.join(ran)} "
                "(see each row's worker_class); gunicorn turns sync into gthread when threads > 1"
            )


def bisect_commits(s: Session, repo_spec: str | None, first_parent: bool) -> None:
    """Name the commit behind each transition; without a reachable repo, say why not."""
    try:
        repo = Repo.open(repo_spec or DEFAULT_REPO, s.cache)
    except SourceError as exc:
        if repo_spec is not None:
            raise
        s.report.notes.append(f"commit bisection skipped: {exc}")
        s.progress(f"commit bisection skipped: {exc}")
        return
    by_version = {i.version: i for i in s.interpreters}
    if s.override is not None:
        by_version[s.override.version] = s.override
    work = [(col, axis, t) for col in s.columns for axis, t in _transitions(s, col)]
    if not work:
        return
    # The transitions are independent: bisect them side by side (each tests -j commits at
    # a time).  A scenario run mostly waits for gunicorn, so two bisections overlap well
    # on two cores; findings keep the order of the transitions.
    shared = SharedBar(s.progress)
    # the bar's total is an estimate: a bisection between two releases tests about 6-11
    # commits (log2 of the few hundred in between, plus healing)
    shared.start(8 * len(work), "commits")
    at_once = min(len(work), max(2, s.jobs))
    pool = ThreadPoolExecutor(max_workers=at_once)
    futures = [
        pool.submit(_bisect_one, s, col, axis, t, repo, by_version, first_parent, shared)
        for col, axis, t in work
    ]
    try:
        for fut in futures:
            fut.result()
    except BaseException:
        _abandon(s, pool)
        raise
    pool.shutdown(wait=True)
    for fut in futures:
        finding = fut.result()
        if finding is not None:
            s.report.findings.append(finding)


def _transitions(s: Session, col: Column) -> list:
    by_axis = s.report.by_column.get(col.label, {}) if s.matrix else s.report.by_axis
    return [(axis, t) for axis in s.report.axes for t in by_axis.get(axis.key, [])]


def _bisect_one(
    s: Session,
    col: Column,
    axis,
    t,
    repo: Repo,
    by_version: dict[str, Interpreter],
    first_parent: bool,
    progress: Progress,
) -> Finding | None:
    """One transition's commit bisection (None when its history cannot be read)."""
    where = f" ({col.label})" if s.matrix else ""
    before = next(
        r
        for r in s.report.rows
        if r.target == t.before and r.facts.get("column", col.label) == col.label
    )
    bisector = CommitBisector(
        repo,
        col.runner,
        s.cache,
        by_version.get(before.python or ""),
        axis=axis,
        jobs=s.jobs,
        first_parent=first_parent,
        progress=progress,
    )
    try:
        finding = bisector.run(t.before, t.after, old_is_pass=t.old_state)
    except SourceError as exc:
        s.report.notes.append(f"commit bisection {t.before}..{t.after}{where} skipped: {exc}")
        return None
    if s.matrix:
        finding.column = col.label
    return finding


def check(s: Session, target: str, repo_spec: str | None) -> Row:
    """One release (a version number) or one git ref, evaluated once (or --repeat times)."""
    if targets.looks_like_version(target):
        project = index.project("gunicorn", s.cache)
        version = targets.resolve(targets.parse(target), project.versions)[0]
        return s.runner.evaluate(wheels.gunicorn_release(version, s.cache, project))
    repo = Repo.open(repo_spec or DEFAULT_REPO, s.cache)
    sha = repo.resolve(target)
    try:
        artifact = commit_wheels.commit_wheel(repo, sha, s.cache)
    except wheels.ArtifactError as exc:
        return Row(target, Verdict.ERROR, str(exc), kind="commit", sha=sha)
    try:
        return s.runner.evaluate(artifact, kind="commit")
    except NoInterpreter as exc:
        if s.override is not None:
            raise  # --python names an interpreter that cannot run it: the user's to fix
        return Row(artifact.label, Verdict.ERROR, str(exc), kind="commit", sha=sha)

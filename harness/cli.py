"""Command line: argv -> one frozen Request; the job's outcome -> text and the exit status
that request.EPILOG documents (3: a bug of ours, one line too)."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from contextlib import redirect_stdout
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from harness.host import fsutil, processes, progress
from harness.host.fsutil import remove_own_temporaries
from harness.host.output import own_stdout, write_output
from harness.jobs.budget import Budget
from harness.jobs.run import (
    Bisect,
    Case,
    check,
    check_all,
    check_at,
    range_run,
    resolved,
    worker_class_notes,
)
from harness.jobs.setup import Setup, open_run
from harness.model.errors import HarnessError
from harness.model.redact import redact_url
from harness.model.table import Checked, Report, answer, summary
from harness.model.verdict import Verdict
from harness.provision import index
from harness.report.common import use_colour, verdict_name
from harness.report.render import render, render_checked, write_checked, write_record
from harness.request import (
    Request,
    UsageError,
    build_parser,
    command_line,
    parse,
    resolved_spec,
    writable_dir,
)
from harness.scenarios import registry
from harness.scenarios.base import ScenarioError

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_UNTESTABLE, EXIT_INTERRUPTED = 0, 1, 2, 125, 130
EXIT_INTERNAL = 3
#: a range run's answer (model.table.answer) -> its exit status
EXIT_OF = {"conclusive": 0, "inconclusive": 125, "interrupted": 130, "broken-command": 2}


def _say(prog: str, line: str) -> None:
    print(f"{prog}: {redact_url(line)}", file=sys.stderr)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    prog = prog or os.path.basename(sys.argv[0]) or "bisect.py"
    argv = sys.argv[1:] if argv is None else argv
    # SIGINT and SIGTERM only cancel the run; its waits stop it, and the process ends
    # within processes.GRACE seconds whatever its threads hold
    with processes.signals_as_flags(lambda: _forced_exit(prog, argv)):
        return _main_flagged(argv, prog)


def _forced_exit(prog: str, argv: list[str]) -> None:
    """The watchdog's last words: every server killed, one line, the run's TMPDIR gone."""
    processes.terminate_all()
    line = f"{prog}: interrupted (forced). Resume with: {command_line(prog, argv)}\n"
    os.write(2, redact_url(line).encode(errors="replace"))
    fsutil.remove_tree(fsutil.run_temp_dir())


def _main_flagged(argv: list[str], prog: str) -> int:
    fsutil.use_run_temp_dir()  # every temporary of this run, gunicorn's own, in one place
    try:
        req = parse(argv, prog)  # --help prints to stdout, as every command's does
        # a scenario file's print(), or a program it starts writing to fd 1, must not
        # corrupt JSON: the report keeps fd 1 to itself, everything else goes to stderr
        with own_stdout() as out, redirect_stdout(sys.stderr):
            status = _main(req, out)
        if status != EXIT_INTERRUPTED:  # what an interrupted run's servers wrote is not kept
            fsutil.record_bytecode()
        return status
    except HarnessError as exc:
        _say(prog, f"error: {exc}")
        return exc.exit_status
    except BrokenPipeError:  # `... | head`: the reader left; not an error worth a line
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except KeyboardInterrupt:  # before any table (setting up, --check)
        processes.terminate_all()
        _say(prog, f"interrupted. Resume with: {command_line(prog, argv)}")
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug of ours: still one line, the details only with -v
        if "-v" in argv or "--verbose" in argv:
            import traceback

            traceback.print_exc()
        _say(prog, f"internal error: {type(exc).__name__}: {exc} (run with -v for the traceback)")
        return EXIT_INTERNAL
    finally:
        processes.terminate_all()


def _width(out: TextIO) -> int | None:
    """The terminal's width (COLUMNS counts); None: a file or a pipe gets every cell whole."""
    if out.isatty() or os.environ.get("COLUMNS"):
        return shutil.get_terminal_size().columns
    return None


def _main(req: Request, out: TextIO) -> int:
    if req.list_scenarios:
        for line in registry.listing_lines():
            print(line, file=out)
        return EXIT_OK
    index.configure(req.index_url)
    bar = progress.for_terminal(req.verbose, req.quiet)
    try:
        if req.check_all:
            return _check_all(req, bar, out)
        setup = _open(req, bar)
        if req.check:
            return _check(req, setup, bar, out)
        results_dir = writable_dir(req.results_dir, "--results-dir")
        budget = Budget(req.jobs, setup.cancel)
        how = (
            Bisect(req.history, req.repo is not None, req.first_parent, req.confidence, req.picks)
            if req.commits
            else None
        )
        try:
            refs = req.history if req.repo is not None else None  # ends may be git refs
            report = range_run(setup.lab, setup.report, req.targets, budget, bar, how, refs)
        finally:
            budget.close()
        bar.close()
        if report.table.targets:  # "Reproduce with" names what `latest` was
            resolved = resolved_spec(req.targets, report.table.targets)
            report.command = req.reproduce(req.targets, resolved)
        return _finish(req, report, results_dir, bar, out)
    finally:
        bar.close()
        remove_own_temporaries(req.cache_dir)


def _open(req: Request, bar: progress.Progress, name: str | None = None) -> Setup:
    """The cache, then a scenario per deployment of the matrix (usually one) and the run."""
    cache = writable_dir(req.cache_dir, "--cache-dir")
    scenarios = [
        registry.create(name or req.scenario, replace(req.options, worker_class=wc, bind=b))
        for wc in req.worker_classes
        for b in req.binds
    ]
    same = {k: getattr(req, k) for k in ("python", "no_compat", "repeat", "command", "package")}
    kw = {"timeout": req.options.timeout, "progress": bar, "on_log": bar.log, **same}
    return open_run(cache=cache, scenarios=scenarios, gunicorn=req.gunicorn, **kw)


def _emit(req: Request, text: str, plain: str, out: TextIO, bar: progress.Progress) -> None:
    """The report on stdout (``text``, fitted to the terminal) and, with --output, in
    the file (``plain``: whole, no colour)."""
    print(text, file=out)
    if req.output is not None:
        write_output(req.output, plain + "\n")
        bar(f"report written to {req.output}")


def _check(req: Request, setup: Setup, bar: progress.Progress, out: TextIO) -> int:
    """One target, one scenario: a line (or the report in --format), a record, and the
    exit status git bisect run reads."""
    repo_given = req.repo is not None
    deployment, report = setup.table.labels[0], setup.report
    results_dir = writable_dir(req.results_dir, "--results-dir")  # before the run, not after
    if req.confidence is not None:
        axis = setup.table.primary
        said, row = check_at(
            setup.lab, deployment, req.check, req.history, req.confidence, axis, repo_given
        )
        report.notes.append(f"--confidence {req.confidence.level}: {said.line()}")
        status, head, tail = said.exit_status, said.line(), f"; last run: {row.detail}"
    else:
        row = check(setup.lab, deployment, req.check, req.history, repo_given)
        status = {Verdict.PASS: EXIT_OK, Verdict.FAIL: EXIT_FAIL}.get(row.verdict, EXIT_UNTESTABLE)
        head, tail = verdict_name(row.verdict, report), f": {row.detail}"
    bar.close()
    report.table.targets = [row.target]
    report.table.put(row.target, deployment, row)
    report.command = req.reproduce(req.check, row.target) if row.kind == "release" else req.command
    if req.format == "table":
        python = f" (Python {row.python})" if row.python else ""
        asked = "" if req.check in (row.target, None) or row.kind != "release" else req.check
        named = f"{row.target} ({asked})" if asked else row.target  # 27.0.1 (latest)
        text = redact_url(f"{named}: {head}{python}{tail}")
    else:
        text = render(report, req.format)
    _emit(req, text, text, out, bar)
    bar(f"record written to {write_record(report, results_dir, row.target)}")
    for note in worker_class_notes(report.table):
        _say(req.prog, note)
    return status


def _cases(req: Request, bar: progress.Progress) -> tuple[list[Case], dict, list[Setup]]:
    """One case per scenario asked: its lab, or why it cannot run as asked (a scenario
    that refuses an option is shown, not the end of the check)."""
    cases, reports, setups = [], {}, []
    for name in req.scenarios or (None,):
        label = name or ("run" if req.options.run is not None else "socket-loss")
        try:
            setup = _open(req, bar, name)
        except ScenarioError as exc:
            cases.append(Case(label, refused=str(exc)))
            continue
        reports[label] = setup.report
        setups.append(setup)
        table = setup.report.table
        cases.append(Case(label, setup.lab, table.labels[0], tuple(table.axes)))
    return cases, reports, setups


def _check_all(req: Request, bar: progress.Progress, out: TextIO) -> int:
    """--check X against several scenarios (or beside --from Y): one row per scenario."""
    cases, reports, setups = _cases(req, bar)
    lab = next((c.lab for c in cases if c.lab is not None), None)
    if lab is None:
        why = "; ".join(f"{c.name}: {c.refused}" for c in cases)
        raise UsageError(f"no scenario asked can run as asked: {why}")
    results_dir = writable_dir(req.results_dir, "--results-dir")
    candidate, before = resolved(lab, req.check, req.repo is not None), None
    if req.from_release is not None:
        before = resolved(lab, req.from_release, req.repo is not None)
    budget = Budget(req.jobs, setups[0].cancel)
    try:
        entries = check_all(
            cases, candidate, before, req.history, budget, bar, req.repo is not None
        )
    except BaseException:  # Ctrl-C, or a user error: every scenario's runs stop
        budget.abandon()
        for setup in setups:
            setup.cancel.set()
        raise
    finally:
        budget.close()
    bar.close()
    if not any(e.ran for e in entries):
        why = "; ".join(f"{e.scenario}: {e.refused}" for e in entries)
        raise UsageError(f"no scenario asked can run as asked: {why}")
    for e in entries:  # each scenario's report holds its rows (the JSON and OSV records)
        rep = reports.get(e.scenario)
        rows = [r for r in (e.before, e.row) if r is not None]
        if rep is not None and rows:
            rep.table.targets = [r.target for r in rows]
            for r in rows:
                rep.table.put(r.target, rep.table.labels[0], r)
    first = next(iter(reports.values()))
    command, notes = req.reproduce(req.check, candidate), list(first.notes)
    checked = Checked(
        command, first.host, candidate, req.check, entries, before, req.deployment, reports, notes
    )
    text = render_checked(checked, req.format, use_colour(out), _width(out))
    _emit(req, text, render_checked(checked, req.format), out, bar)
    bar(f"record written to {write_checked(checked, results_dir)}")
    status = {"pass": EXIT_OK, "fail": EXIT_FAIL}.get(checked.kind, EXIT_UNTESTABLE)
    _say(req.prog, f"{summary(entries, candidate)[0]} (exit {status})")
    return status


def _finish(
    req: Request, report: Report, results_dir: Path, bar: progress.Progress, out: TextIO
) -> int:
    """Print (and write) the report; the answer's one line and exit status."""
    verdict = answer(report)
    status = EXIT_OF[verdict.kind]
    if verdict.kind == "broken-command":
        _say(req.prog, f"error: {verdict.line}")
        return status
    if report.interrupted:
        processes.terminate_all()  # every server at once, before anything prints
        report.resume = req.command
    text = render(
        report, req.format, colour=use_colour(out), verbose=req.verbose, width=_width(out)
    )
    if report.interrupted:  # the table so far, not written to --output
        print(text, file=out)
        cached = "(environments and builds are cached)"
        _say(req.prog, f"{verdict.line}. Resume with: {req.command} {cached}")
        return status
    _emit(req, text, render(report, req.format, verbose=req.verbose), out, bar)
    bar(f"record written to {write_record(report, results_dir, req.targets)}")
    if verdict.line:
        _say(req.prog, f"{verdict.line} (exit {status})")
    return status


__all__ = ["Request", "UsageError", "build_parser", "main", "parse"]

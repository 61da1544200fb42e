"""Command line: parse and validate, run a job from harness.app, map outcomes to exit codes.

Exit status: 0 done; 2 a problem the user can fix (one line on stderr); 130
interrupted (what was established is printed, with the command that resumes).
``--check`` exits 0 pass, 1 fail, 125 cannot tell, for ``git bisect run``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import signal
import sys
import tempfile
from pathlib import Path

from harness.build import index
from harness.host import fsutil, processes, progress, proxy
from harness.host.fsutil import atomic_write_text, remove_own_temporaries
from harness.host.git import DEFAULT_REPO
from harness.jobs import session as jobs
from harness.model.errors import HarnessError
from harness.model.verdict import Verdict
from harness.report import report
from harness.scenarios import base, registry

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_UNTESTABLE, EXIT_INTERRUPTED = 0, 1, 2, 125, 130
EXIT_INTERNAL = 3


class UsageError(HarnessError):
    """Anything the user can fix: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + error
        raise UsageError(f"{message} (see --help)")


def build_parser(prog: str = "bisect.py") -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description="Find the Gunicorn releases and commits where a server-lifecycle failure "
        "happens (by default the Unix-socket loss of issue #1298), where it started and which "
        "commit fixed it.",
    )
    p.add_argument(
        "targets",
        nargs="?",
        help="releases: A..B (every final release from A to B; B may be 'latest', or left "
        "out: A..), A,B,C, or A",
    )
    p.add_argument(
        "--check",
        metavar="TARGET",
        help="run the scenario once on a release or a "
        "git ref; exit 0 pass, 1 fail, 125 error (drives `git bisect run`)",
    )
    p.add_argument("--no-commits", action="store_true", help="stop after the release table")
    p.add_argument(
        "--repo",
        default=None,
        metavar="URL|PATH",
        help=f"git history to bisect (default {DEFAULT_REPO}); a local clone or "
        "bare mirror is used read-only",
    )
    p.add_argument(
        "--first-parent",
        action="store_true",
        help="bisect the mainline only (merges are the steps)",
    )
    p.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    p.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="also write the report (in --format) to FILE, atomically "
        "(e.g. results/affected-versions.md)",
    )
    p.add_argument("--python", metavar="X.Y|PATH", help="use this interpreter for every target")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="environments, wheels and clones (default: the user cache dir)",
    )
    p.add_argument(
        "--index-url",
        metavar="URL",
        help="package index (simple API) to read instead of pip's configured ones "
        "(default: pip's index-url and extra-index-url, else PyPI)",
    )
    p.add_argument(
        "--results-dir",
        type=Path,
        default=Path("results"),
        help="where run records go (default: ./results)",
    )
    s = p.add_argument_group("what to check")
    s.add_argument(
        "--scenario",
        default=None,
        metavar="NAME|FILE.py",
        help="a built-in scenario (--list-scenarios) or your own scenario file "
        f"(default {base.DEFAULT})",
    )
    s.add_argument(
        "--list-scenarios", action="store_true", help="list the built-in scenarios and exit"
    )
    s.add_argument(
        "--run",
        metavar="CMD",
        help="your own check, run through the shell in each target's environment, "
        "git-bisect-run style: exit 0 pass (old), 125 cannot tell, 1-127 fail (new)",
    )
    s.add_argument(
        "--terms",
        metavar="OLD,NEW",
        help="names of the two states in the table and findings (default pass,fail)",
    )
    s.add_argument(
        "--timeout",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="each scenario run ends within this limit, whatever the server does (default 20)",
    )
    g = p.add_argument_group("server settings (defaults: the scenario's own)")
    g.add_argument("--workers", type=int, help="gunicorn workers (default: the scenario's)")
    g.add_argument("--threads", type=int, help="threads per worker (default: the scenario's)")
    g.add_argument(
        "--max-requests", type=int, help="requests before a worker recycles (the scenario's)"
    )
    g.add_argument(
        "--worker-class",
        type=_worker_classes,
        metavar="CLASS[,CLASS...]",
        help="default: gunicorn's choice (gthread when threads > 1); several (e.g. "
        "gthread,sync,gevent) make a matrix with --bind, one verdict column per combination",
    )
    g.add_argument(
        "--trigger",
        choices=("auto", "max-requests", "signal"),
        default="auto",
        help="how workers are made to exit: max-requests under load, signal (graceful "
        "SIGTERM to each worker), auto (max-requests, then signal if none recycled)",
    )
    g.add_argument(
        "--bind",
        type=_binds,
        default=("unix",),
        metavar="unix|tcp[,...]",
        help="where the server listens: a Unix socket (default) or a 127.0.0.1 TCP port; "
        "unix,tcp for both (a matrix with --worker-class)",
    )
    g.add_argument(
        "--proxy",
        choices=proxy.KINDS,
        help="put a real h2o or nginx in front (as in the report) and count what it answers",
    )
    g.add_argument(
        "--gunicorn-config",
        type=Path,
        metavar="FILE",
        help="your own gunicorn config file; the harness still owns bind",
    )
    g.add_argument(
        "--no-compat",
        action="store_true",
        help="do not neutralise SO_REUSEPORT on AF_UNIX on kernels that reject it",
    )
    g.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run the scenario N times per target; disagreement is 'flaky'",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="targets evaluated at once (default: the core count)",
    )
    p.add_argument(
        "-v", "--verbose", action="store_true", help="progress always, and each gunicorn log"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return p


def _writable_dir(path: Path, option: str) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
            pass
    except OSError as exc:
        raise UsageError(f"{option} {path}: not writable ({exc.strerror or exc})") from None
    return path


def _comma_list(text: str) -> tuple[str, ...]:
    """``a,b`` -> ("a", "b"), each once, in the order given (argparse names the option)."""
    items = [t.strip() for t in text.split(",")]
    if not all(items):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty name in the list")
    return tuple(dict.fromkeys(items))


def _worker_classes(text: str) -> tuple[str, ...]:
    return _comma_list(text)


def _binds(text: str) -> tuple[str, ...]:
    binds = _comma_list(text)
    wrong = [b for b in binds if b not in ("unix", "tcp")]
    if wrong:
        raise argparse.ArgumentTypeError(f"{wrong[0]!r}: choose unix or tcp (or unix,tcp)")
    return binds


def _terms(text: str | None) -> tuple[str, str] | None:
    if text is None:
        return None
    parts = [t.strip() for t in text.split(",")]
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise UsageError(f"--terms {text!r}: expected two different names, OLD,NEW")
    return parts[0], parts[1]


def _validate(args: argparse.Namespace) -> None:
    if args.run is not None and args.scenario is not None:
        raise UsageError("give either --run CMD or --scenario, not both")
    if args.run is not None and not args.run.strip():
        raise UsageError("--run needs a command")
    if args.output is not None:
        if args.check:
            raise UsageError("--output writes a release table; --check prints one line")
        if not args.output.parent.is_dir():
            raise UsageError(f"--output {args.output}: no such directory {args.output.parent}")
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    if args.proxy is not None:
        try:
            proxy.find_binary(args.proxy)
        except proxy.ProxyError as exc:
            raise UsageError(f"--proxy {args.proxy}: {exc}") from None
    if not args.targets and not args.check:
        raise UsageError("give releases (e.g. 19.5.0..19.7.0) or --check TARGET")
    if args.targets and args.check:
        raise UsageError("give either releases or --check, not both")
    if args.check and (len(args.worker_class or ()) > 1 or len(args.bind) > 1):
        raise UsageError("--check runs one deployment: give one --worker-class and one --bind")
    for name in ("workers", "threads", "max_requests", "repeat", "jobs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    if args.gunicorn_config is not None:
        cfg = args.gunicorn_config
        if not cfg.is_file():
            raise UsageError(f"--gunicorn-config {cfg}: no such file")
        try:
            compile(cfg.read_text(), str(cfg), "exec")
        except (SyntaxError, ValueError, UnicodeDecodeError) as exc:
            line = getattr(exc, "lineno", None)
            where = f" (line {line})" if line else ""
            raise UsageError(
                f"--gunicorn-config {cfg}: does not parse{where}: {getattr(exc, 'msg', exc)}"
            ) from None


def _on_signal(signum, frame):  # SIGTERM behaves like Ctrl-C: clean up, report, exit 130
    raise KeyboardInterrupt


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    prog = prog or os.path.basename(sys.argv[0]) or "bisect.py"
    argv = sys.argv[1:] if argv is None else argv
    try:
        signal.signal(signal.SIGTERM, _on_signal)
    except ValueError:
        pass  # not the main thread (tests calling main() from a thread)
    state: dict = {}
    fsutil.use_run_temp_dir()  # every temporary of this run, gunicorn's own, in one place
    try:
        return _main(argv, prog, state)
    except HarnessError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except BrokenPipeError:  # `... | head`: the reader left; not an error worth a line
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except Exception as exc:  # a bug of ours: still one line, the details only with -v
        if "-v" in argv or "--verbose" in argv:
            import traceback

            traceback.print_exc()
        print(
            f"{prog}: internal error: {type(exc).__name__}: {exc} (run with -v for the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        session = state.get("session")
        if session is not None:
            session.cancel.set()
        processes.terminate_all()
        if state.get("cache") is not None:
            remove_own_temporaries(state["cache"])
        rep = state.get("report")
        if rep is not None and not state.get("printed"):
            rep.interrupted = True
            print(report.render(rep, state.get("format", "table")))
        cmd = " ".join(shlex.quote(a) for a in ["python", prog, *argv])
        print(
            f"{prog}: interrupted; what was established is above. Resume with: {cmd} "
            "(environments and builds are cached)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        if state.get("progress") is not None:
            state["progress"].close()
        processes.terminate_all()


def _main(argv: list[str], prog: str, state: dict) -> int:
    args = build_parser(prog).parse_args(argv)
    if args.list_scenarios:
        for name, description in registry.listing():
            print(f"{name:15} {description}")
        return EXIT_OK
    index.configure(args.index_url)
    _validate(args)
    bar = progress.for_terminal(args.verbose, args.quiet)
    state["progress"] = bar
    state["format"] = args.format
    if args.cache_dir is None:
        from platformdirs import user_cache_dir

        args.cache_dir = Path(user_cache_dir("gunicorn-bisect"))
    cache = _writable_dir(args.cache_dir.expanduser(), "--cache-dir")
    state["cache"] = cache
    options = base.Options(
        workers=args.workers,
        threads=args.threads,
        max_requests=args.max_requests,
        worker_class=None,
        gunicorn_config=args.gunicorn_config,
        bind="unix",
        proxy=args.proxy,
        trigger=args.trigger,
        timeout=args.timeout,
        terms=_terms(args.terms),
        run=args.run,
    )
    scenarios = [  # one per column of the matrix (usually one)
        registry.create(args.scenario, dataclasses.replace(options, worker_class=wc, bind=bind))
        for wc in (args.worker_class or (None,))
        for bind in args.bind
    ]
    session = jobs.open_session(
        cache=cache,
        python=args.python,
        scenarios=scenarios,
        timeout=args.timeout,
        no_compat=args.no_compat,
        repeat=args.repeat,
        jobs=args.jobs,
        command=" ".join(shlex.quote(a) for a in ["python", prog, *argv]),
        progress=bar,
        on_log=bar.log,
    )
    state["report"] = session.report
    state["session"] = session
    if args.check:
        row = jobs.check(session, args.check, args.repo)
        bar.close()
        python = f" (Python {row.python})" if row.python else ""
        print(
            f"{args.check}: {report.verdict_name(row.verdict, session.report)}{python}: {row.detail}"
        )
        ran = row.facts.get("worker_class")
        if args.worker_class and ran and ran != args.worker_class:
            print(
                f"{prog}: warning: --worker-class {args.worker_class} was asked, but gunicorn "
                f"ran {ran} (it turns sync into gthread when threads > 1)",
                file=sys.stderr,
            )
        state["printed"] = True
        return {Verdict.PASS: EXIT_OK, Verdict.FAIL: EXIT_FAIL}.get(row.verdict, EXIT_UNTESTABLE)
    results_dir = _writable_dir(args.results_dir, "--results-dir")
    jobs.release_table(session, args.targets)
    if session.report.has_transitions() and not args.no_commits:
        jobs.bisect_commits(session, args.repo, args.first_parent)
    bar.close()
    rendered = report.render(
        session.report, args.format, colour=report.use_colour(), verbose=args.verbose
    )
    if args.output is not None:  # written whole or not at all
        plain = report.render(session.report, args.format, verbose=args.verbose)
        atomic_write_text(args.output, plain + "\n")
        bar(f"report written to {args.output}")
    print(rendered)
    state["printed"] = True
    record = report.write_record(session.report, results_dir, args.targets)
    bar(f"record written to {record}")
    return EXIT_OK


__all__ = ["main", "build_parser"]

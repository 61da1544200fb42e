"""Command line: parse and validate, run a job from harness.app, map outcomes to exit codes.

Exit status: 0 done; 2 a problem the user can fix (one line on stderr); 130
interrupted (what was established is printed, with the command that resumes).
``--check`` exits 0 pass, 1 fail, 125 cannot tell, for ``git bisect run``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import tempfile
from pathlib import Path

from . import app, artifacts, index, interpreters, report, targets
from .runner import NoInterpreter
from .scenarios import processes, socket_loss
from .source import DEFAULT_REPO, SourceError
from .verdict import Verdict

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_UNTESTABLE, EXIT_INTERRUPTED = 0, 1, 2, 125, 130
EXIT_INTERNAL = 3


class UsageError(Exception):
    """Anything the user can fix: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + error
        raise UsageError(f"{message} (see --help)")


def build_parser(prog: str = "bisect.py") -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description="Find the Gunicorn releases and commits where the Unix-socket loss of "
        "issue #1298 happens, where it started and which commit fixed it.",
    )
    p.add_argument(
        "targets", nargs="?", help="releases: A..B (every final release from A to B), A,B,C, or A"
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
    g = p.add_argument_group("scenario (defaults: the report's config.py, scaled for speed)")
    g.add_argument("--workers", type=int, help=f"default {socket_loss.DEFAULTS['workers']}")
    g.add_argument("--threads", type=int, help=f"default {socket_loss.DEFAULTS['threads']}")
    g.add_argument(
        "--max-requests", type=int, help=f"default {socket_loss.DEFAULTS['max_requests']}"
    )
    g.add_argument("--worker-class", help="default: gunicorn's choice (gthread when threads > 1)")
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


class _Progress:
    def __init__(self, verbose: bool, quiet: bool) -> None:
        self.on = not quiet and (verbose or sys.stderr.isatty())
        self.verbose = verbose and not quiet

    def __call__(self, msg: str) -> None:
        if self.on:
            print(f"[gunicorn-bisect] {msg}", file=sys.stderr, flush=True)

    def log(self, label: str, text: str) -> None:
        if self.verbose:
            sys.stderr.write(f"----- gunicorn log: {label} -----\n{text}\n----- end -----\n")
            sys.stderr.flush()


def _writable_dir(path: Path, option: str) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
            pass
    except OSError as exc:
        raise UsageError(f"{option} {path}: not writable ({exc.strerror or exc})") from None
    return path


def _validate(args: argparse.Namespace) -> None:
    if not args.targets and not args.check:
        raise UsageError("give releases (e.g. 19.5.0..19.7.0) or --check TARGET")
    if args.targets and args.check:
        raise UsageError("give either releases or --check, not both")
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
    try:
        return _main(argv, prog, state)
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (
        targets.TargetError,
        interpreters.InterpreterError,
        NoInterpreter,
        index.IndexUnavailable,
        artifacts.ArtifactError,
        SourceError,
    ) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
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
        processes.STOP.set()
        processes.terminate_all()
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
        processes.terminate_all()


def _main(argv: list[str], prog: str, state: dict) -> int:
    args = build_parser(prog).parse_args(argv)
    index.configure(args.index_url)
    _validate(args)
    progress = _Progress(args.verbose, args.quiet)
    state["format"] = args.format
    if args.cache_dir is None:
        from platformdirs import user_cache_dir

        args.cache_dir = Path(user_cache_dir("gunicorn-bisect"))
    cache = _writable_dir(args.cache_dir.expanduser(), "--cache-dir")
    params = socket_loss.Params(
        workers=args.workers,
        threads=args.threads,
        max_requests=args.max_requests,
        worker_class=args.worker_class,
        gunicorn_config=args.gunicorn_config,
    )
    session = app.open_session(
        cache=cache,
        python=args.python,
        params=params,
        no_compat=args.no_compat,
        repeat=args.repeat,
        jobs=args.jobs,
        command=" ".join(shlex.quote(a) for a in ["python", prog, *argv]),
        progress=progress,
        on_log=progress.log,
    )
    state["report"] = session.report
    if args.check:
        row = app.check(session, args.check, args.repo)
        python = f" (Python {row.python})" if row.python else ""
        print(f"{args.check}: {row.verdict.value}{python}: {row.detail}")
        state["printed"] = True
        return {Verdict.PASS: EXIT_OK, Verdict.FAIL: EXIT_FAIL}.get(row.verdict, EXIT_UNTESTABLE)
    results_dir = _writable_dir(args.results_dir, "--results-dir")
    app.release_table(session, args.targets)
    if session.report.transitions and not args.no_commits:
        app.bisect_commits(session, args.repo, args.first_parent)
    print(report.render(session.report, args.format, colour=report.use_colour()))
    state["printed"] = True
    record = report.write_record(session.report, results_dir, args.targets)
    progress(f"record written to {record}")
    return EXIT_OK


__all__ = ["main", "build_parser"]

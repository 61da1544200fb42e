"""The command line's shape: every option, its group and its --help text, and the
argparse types that reject a malformed value.  harness/request.py turns what it parses
into the frozen Request (the checks that need the whole command line live there)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from harness import __version__
from harness.host import proxy
from harness.host.git import DEFAULT_REPO
from harness.jobs.confident import DEFAULT_MAX_RUNS
from harness.model.errors import HarnessError
from harness.report.render import FORMATS
from harness.scenarios import base
from harness.scenarios.base import LOADS

EPILOG = """exit status: a range run exits 0 with a conclusive report, 125 when it is
inconclusive (no release could be tested), 130 when interrupted (the table so far and
the command that resumes), 2 for a problem you can fix (one line on stderr; also a
--run command that fails the same way on every target).  --check exits 0 pass, 1 fail,
125 cannot tell."""


class UsageError(HarnessError):
    """Anything the user can fix: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + error
        raise UsageError(f"{message} (see --help)")


def build_parser(prog: str = "bisect.py") -> argparse.ArgumentParser:
    """Every option, added group by group in --help order."""
    p = _Parser(
        prog=prog,
        allow_abbrev=False,  # --worker-clas is a typo, not --worker-class
        description="Find the Gunicorn releases and commits where a server-lifecycle failure "
        "happens (by default the Unix-socket loss of issue #1298), where it started and which "
        "commit fixed it.",
        epilog=EPILOG,
    )
    p.add_argument("--version", action="version", version=f"gunicorn-bisect {__version__}")
    _target_arguments(p)
    _output_arguments(p)
    _scenario_arguments(p)
    _server_arguments(p)
    _confidence_arguments(p)
    _add_app_arguments(p)
    _run_arguments(p)
    _axis_arguments(p)
    return p


def _target_arguments(p: argparse.ArgumentParser) -> None:
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
        "git ref; exit 0 pass, 1 fail, 125 error (drives `git bisect run`); with "
        "--scenario all, every known scenario, one row each",
    )
    p.add_argument(
        "--from",
        dest="from_release",
        metavar="RELEASE",
        help="with --check X: also run the release you use now, beside X, and say per "
        "scenario what upgrading changes (fixed by upgrading, new in X, still fails)",
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
    p.add_argument(
        "--pick",
        action="append",
        default=[],
        metavar="SHA",
        help="a repair (any git ref) picked on top of every commit tested without it, "
        "e.g. the fix of an outage that keeps a stretch from booting (repeatable)",
    )


def _output_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument(
        "--load",
        choices=LOADS,
        default="builtin",
        help="socket-loss/keeps-serving: the built-in keep-alive client, or Debian's wrk "
        "(-t10 -c200, TCP only: with a Unix bind it needs --proxy h2o)",
    )
    p.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="also write the report (in --format) to FILE: a regular file atomically, "
        "keeping its mode; a device, pipe or symlink written through "
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


def _scenario_arguments(p: argparse.ArgumentParser) -> None:
    s = p.add_argument_group("what to check")
    s.add_argument(
        "--scenario",
        default=None,
        metavar="NAME[,NAME...]|all|FILE.py",
        help="a built-in scenario (--list-scenarios) or your own scenario file "
        f"(default {base.DEFAULT}); with --check, several or 'all' (every listed one)",
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


def _server_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("server settings (defaults: the scenario's own)")
    g.add_argument("--workers", type=int, help="gunicorn workers (default: the scenario's)")
    g.add_argument("--threads", type=int, help="threads per worker (default: the scenario's)")
    g.add_argument(
        "--max-requests", type=int, help="requests before a worker recycles (the scenario's)"
    )
    g.add_argument(
        "--worker-class",
        type=_comma_list,
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


def _confidence_arguments(p: argparse.ArgumentParser) -> None:
    c = p.add_argument_group("racy scenarios (flake-aware search)")
    c.add_argument(
        "--confidence",
        type=float,
        metavar="P",
        help="each run is one observation: re-run releases and commits where the answer "
        "is unsure until the likeliest first changed one has posterior P (e.g. 0.95), or "
        "--max-runs is spent (then the answer says so); with --check, run until pass or "
        "fail holds at P.  Off by default (a deterministic scenario costs one run a target)",
    )
    c.add_argument(
        "--max-runs",
        type=int,
        default=DEFAULT_MAX_RUNS,
        metavar="N",
        help=f"with --confidence: runs per finding (or per --check), releases' included "
        f"(default {DEFAULT_MAX_RUNS})",
    )


def _run_arguments(p: argparse.ArgumentParser) -> None:
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


# -- what is bisected: gunicorn's releases, or a dependency's (--package) ---------------


def _axis_arguments(p: argparse.ArgumentParser) -> None:
    a = p.add_argument_group("what is bisected (default: gunicorn's releases and commits)")
    a.add_argument(
        "--package",
        metavar="NAME",
        help="the targets are releases of this dependency (e.g. eventlet), gunicorn pinned; "
        "with --repo at its git history, its commits are bisected too",
    )
    a.add_argument(
        "--gunicorn",
        metavar="VERSION",
        help="with --package: the gunicorn release every target runs (default: the newest "
        "that installs on each Python)",
    )


# -- your own app and its stack (issue 15): --with, --with-requirements, --app, --path --
def _add_app_arguments(p: argparse.ArgumentParser) -> None:
    a = p.add_argument_group("your own app and its stack")
    a.add_argument(
        "--with",
        dest="with_reqs",
        action="append",
        default=[],
        metavar="REQ",
        help="a requirement installed next to gunicorn in every target's environment "
        "(repeatable; pip's resolver, once per Python), e.g. --with flask",
    )
    a.add_argument(
        "--with-requirements",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="requirements from a file (one a line), as --with",
    )
    a.add_argument(
        "--app",
        metavar="MODULE:CALLABLE",
        help="serve your own application instead of the scenario's, as gunicorn takes it "
        "(an application factory 'pkg:create_app()' too)",
    )
    a.add_argument(
        "--app-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where --app is imported from (default: the current directory)",
    )
    a.add_argument(
        "--path",
        default="/",
        metavar="PATH",
        help="what the scenario's probes request (default /); any HTTP status is an answer",
    )


def _comma_list(text: str) -> tuple[str, ...]:
    """``a,b`` -> ("a", "b"), each once, in the order given (argparse names the option)."""
    items = [t.strip() for t in text.split(",")]
    if not all(items):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty name in the list")
    return tuple(dict.fromkeys(items))


def _binds(text: str) -> tuple[str, ...]:
    binds = _comma_list(text)
    wrong = [b for b in binds if b not in ("unix", "tcp")]
    if wrong:
        raise argparse.ArgumentTypeError(f"{wrong[0]!r}: choose unix or tcp (or unix,tcp)")
    return binds

"""argv -> one frozen Request: every option and its --help (``build_parser``), the checks that
need the whole command line and no run, and the line that reproduces a run, without secrets."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from harness import __version__
from harness.host import fsutil, proxy, wrk
from harness.host.git import DEFAULT_REPO, Repo, SourceError
from harness.host.output import check_output
from harness.jobs.bisector import DEFAULT_MAX_RUNS, Confidence
from harness.model.errors import HarnessError
from harness.model.redact import redact_argv
from harness.model.targets import LATEST
from harness.provision import requirements
from harness.report.render import FORMATS
from harness.scenarios import base, registry
from harness.scenarios.base import LOADS

GUNICORN = "gunicorn"


def _package(args: argparse.Namespace, reqs: requirements.RequirementSet) -> tuple[str, str | None]:
    """The canonical name of what is bisected, and with --package gunicorn's pin: --gunicorn
    X, or --with gunicorn==X (the uv/pipx way; any other only constrains the resolution)."""
    name = canonicalize_name(GUNICORN if args.package is None else args.package)
    if args.package is not None and not re.fullmatch(r"[a-z0-9]([a-z0-9._-]*[a-z0-9])?", name):
        raise UsageError(f"--package {args.package!r}: not a package name")
    if args.gunicorn is not None:
        if name == GUNICORN:
            raise UsageError("--gunicorn pins gunicorn for --package NAME; give --package too")
        try:
            Version(args.gunicorn)
        except InvalidVersion:
            raise UsageError(f"--gunicorn {args.gunicorn!r} is not a version number") from None
        return name, args.gunicorn
    if name == GUNICORN or reqs.gunicorn is None:
        return name, None
    spec = reqs.gunicorn.partition("==")[2].strip()
    if not spec or any(c in spec for c in ",*;"):
        raise UsageError(
            f"--with {reqs.gunicorn}: with --package, pin gunicorn exactly (gunicorn==X)"
        )
    return name, spec


_APP = re.compile(r"^[A-Za-z_][\w.]*(:[A-Za-z_][\w.]*(\(.*\))?)?$")


def _app_options(args: argparse.Namespace) -> dict:
    """The Options fields of this block, checked: one line (exit 2) for what is wrong."""
    try:
        reqs = requirements.parse(args.with_reqs, args.with_requirements)
    except requirements.RequirementsInvalid as exc:
        raise UsageError(str(exc)) from None
    if not args.path.startswith("/") or any(c.isspace() for c in args.path):
        raise UsageError(f"--path {args.path!r}: must start with / and have no spaces")
    app_dir = None
    if args.app is not None:
        if not _APP.match(args.app):
            raise UsageError(f"--app {args.app!r}: expected MODULE:CALLABLE (or pkg:factory())")
        app_dir = (args.app_dir or Path.cwd()).expanduser().resolve()
        module = args.app.split(":", 1)[0].split(".", 1)[0]
        if not ((app_dir / f"{module}.py").is_file() or (app_dir / module).is_dir()):
            raise UsageError(f"--app {args.app}: no module {module!r} in {app_dir}")
    elif args.app_dir is not None:
        raise UsageError("--app-dir is where --app is imported from: give --app too")
    return {"requirements": reqs, "app": args.app, "app_dir": app_dir, "path": args.path}


def writable_dir(path: Path, option: str) -> Path:
    """``path`` made (0700, parents too, whatever the umask) or found ours, private and
    writable; else one line."""
    try:
        fsutil.private_checked_dir(path)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".writable-"):
            pass
    except fsutil.NotPrivate as exc:
        raise UsageError(f"{option} {exc}") from None
    except OSError as exc:
        raise UsageError(f"{option} {path}: not writable ({exc.strerror or exc})") from None
    return path


def _terms(text: str | None) -> tuple[str, str] | None:
    if text is None:
        return None
    parts = [t.strip() for t in text.split(",")]
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise UsageError(f"--terms {text!r}: expected two different names, OLD,NEW")
    return parts[0], parts[1]


ALL = "all"


def known_scenarios() -> list[str]:
    """Every case ``--scenario all`` runs: the registry's listing without a file or --run."""
    return [n for n, _ in registry.listing() if not (n.startswith("-") or n.endswith(".py"))]


def _scenarios(args: argparse.Namespace) -> tuple[str, ...]:
    """``--scenario a,b`` or ``all`` -> the names, each once, in order (several take --check)."""
    text = args.scenario
    if text is None:
        return ()
    if text.strip() == ALL:
        names = tuple(known_scenarios())
    else:
        names = tuple(dict.fromkeys(t.strip() for t in text.split(",")))
        if not all(names):
            raise UsageError(f"--scenario {text!r}: an empty name in the list")
    if len(names) > 1 or text.strip() == ALL:
        if not args.check:
            raise UsageError(
                "several scenarios take --check X (one row each); a range runs one "
                "scenario: run it once per scenario"
            )
        if args.confidence is not None:
            raise UsageError("--confidence checks one scenario: give one --scenario")
        known = known_scenarios()
        unknown = [n for n in names if n not in known and not n.endswith(".py")]
        if unknown:
            raise UsageError(
                f"--scenario {unknown[0]!r}: unknown; choose from {', '.join(known)}, "
                "all, or a .py file"
            )
    return names


def _validate(args: argparse.Namespace) -> None:
    if args.from_release is not None and not args.check:
        raise UsageError("--from RELEASE goes with --check X: the release you use now, beside X")
    if args.from_release is not None and args.confidence is not None:
        raise UsageError("--confidence checks one target: drop --from")
    if args.run is not None and args.scenario is not None:
        raise UsageError("give either --run CMD or --scenario, not both")
    if args.run is not None and not args.run.strip():
        raise UsageError("--run needs a command")
    if args.output is not None:
        check_output(args.output)
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    if args.load == "wrk":
        why = wrk.unusable(args.bind, args.proxy)
        if why:
            raise UsageError(f"--load wrk: {why}")
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
    if args.confidence is not None:
        if not 0.5 < args.confidence < 1.0:
            raise UsageError(f"--confidence {args.confidence}: give a probability in (0.5, 1)")
        if args.repeat != 1:
            raise UsageError("--confidence decides how often each target runs: drop --repeat")
        if args.first_parent:
            raise UsageError("--confidence always walks the mainline: drop --first-parent")
        if args.no_commits:
            raise UsageError(
                "--confidence decides each transition down to its commit: drop --no-commits"
            )
    for name in ("workers", "threads", "max_requests", "repeat", "jobs", "max_runs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    if args.gunicorn_config is not None:
        cfg = args.gunicorn_config
        if not cfg.exists():
            raise UsageError(f"--gunicorn-config {cfg}: no such file")
        try:  # a regular file, bounded: /dev/zero is not "no such file", nor 2 GB read
            text = fsutil.read_regular(cfg, 1 << 20)
        except fsutil.NotReadable as exc:
            raise UsageError(f"--gunicorn-config {cfg}: {exc}") from None
        try:
            compile(text, str(cfg), "exec")
        except (SyntaxError, ValueError, UnicodeDecodeError) as exc:
            line = getattr(exc, "lineno", None)
            where = f" (line {line})" if line else ""
            raise UsageError(
                f"--gunicorn-config {cfg}: does not parse{where}: {getattr(exc, 'msg', exc)}"
            ) from None


@dataclass(frozen=True)
class Request:
    """Everything the command line asked for, validated, in one place."""

    prog: str  # the name it was run with: "gunicorn-bisect", or "bisect.py" as a file
    argv: tuple[str, ...]
    options: base.Options  # the scenario's knobs (one worker class and bind per deployment)
    cache_dir: Path
    results_dir: Path
    targets: str | None = None
    check: str | None = None
    list_scenarios: bool = False
    commits: bool = True
    repo: str | None = None
    first_parent: bool = False
    picks: tuple[str, ...] = ()  # --pick: repairs picked on top of commits without them
    format: str = "table"
    output: Path | None = None
    python: str | None = None
    index_url: str | None = None
    scenarios: tuple[str, ...] = ()  # --scenario: one, several, or every known one (all)
    from_release: str | None = None  # --from Y beside --check X
    worker_classes: tuple[str | None, ...] = (None,)
    binds: tuple[str, ...] = ("unix",)
    no_compat: bool = False
    repeat: int = 1
    confidence: Confidence | None = None  # --confidence P with its --max-runs
    jobs: int = 1
    verbose: bool = False
    quiet: bool = False
    package: str = GUNICORN  # --package: what the targets are releases of
    gunicorn: str | None = None  # --gunicorn: its pin when the package is another one

    @property
    def command(self) -> str:
        return command_line(self.prog, self.argv)

    @property
    def scenario(self) -> str | None:
        """The one scenario of a range run or a plain --check (None: the default)."""
        return self.scenarios[0] if self.scenarios else None

    @property
    def check_all(self) -> bool:
        """--check X against several scenarios, or beside --from Y: one row per scenario."""
        return bool(self.check) and (len(self.scenarios) > 1 or self.from_release is not None)

    @property
    def worker_class(self) -> str | None:
        """The one worker class asked for (``--check`` takes at most one)."""
        return self.worker_classes[0]

    @property
    def deployment(self) -> tuple[str, ...]:
        """The options that make a scenario run as the user's own deployment, as given."""
        o = self.options
        out = [f"--app {o.app}"] if o.app else []
        out += [f"--with {r}" for r in o.requirements.requirements]
        out += [f"--gunicorn-config {o.gunicorn_config}"] if o.gunicorn_config else []
        out += [f"--proxy {o.proxy}"] if o.proxy else []
        out += [f"--bind {','.join(self.binds)}"] if self.binds != ("unix",) else []
        out += [f"--worker-class {self.worker_class}"] if self.worker_class else []
        return tuple(out)

    def reproduce(self, asked: str, resolved: str) -> str:
        """The command line with ``asked`` replaced by what it resolved to (``latest`` -> 27.0.1)."""
        if asked == resolved:
            return self.command
        argv = [
            resolved if a == asked else f"--check={resolved}" if a == f"--check={asked}" else a
            for a in self.argv
        ]
        return command_line(self.prog, argv)

    def history(self) -> Repo:
        if self.repo is None and self.package != GUNICORN:
            raise SourceError(
                f"--package {self.package}: give --repo with {self.package}'s git history "
                "to bisect its commits"
            )
        return Repo.open(self.repo or DEFAULT_REPO, self.cache_dir)


def command_line(prog: str, argv: Sequence[str]) -> str:
    """``gunicorn-bisect ...`` or ``python bisect.py ...``, as it was run, without secrets."""
    runner = ["python", prog] if prog.endswith(".py") else [prog]
    return " ".join(shlex.quote(a) for a in [*runner, *redact_argv(argv)])


def resolved_spec(spec: str, releases: Sequence[str]) -> str:
    """A range with its open or ``latest`` end named (``19.0.0..`` -> ``19.0.0..27.0.1``)."""
    if not releases:
        return spec
    text = spec.strip()
    if text == LATEST:
        return releases[-1]
    low, dots, high = text.partition("..")
    if dots and high.strip() in ("", LATEST):
        return f"{low.strip()}..{releases[-1]}"
    return spec


def parse(argv: list[str], prog: str) -> Request:
    a = build_parser(prog).parse_args(argv)
    if not a.list_scenarios:
        _validate(a)
    if a.cache_dir is None:
        from platformdirs import user_cache_dir

        a.cache_dir = Path(user_cache_dir("gunicorn-bisect"))
    options = base.Options(
        workers=a.workers,
        threads=a.threads,
        max_requests=a.max_requests,
        gunicorn_config=a.gunicorn_config,
        proxy=a.proxy,
        trigger=a.trigger,
        timeout=a.timeout,
        terms=_terms(a.terms),
        run=a.run,
        load=a.load,
        **_app_options(a),
    )
    package, gunicorn = _package(a, options.requirements)
    same = ("targets", "check", "list_scenarios", "repo", "first_parent", "format", "output")
    same += (
        "python",
        "index_url",
        "no_compat",
        "repeat",
        "jobs",
        "verbose",
        "quiet",
        "from_release",
    )
    return Request(
        prog,
        tuple(argv),
        options,
        cache_dir=a.cache_dir.expanduser(),
        results_dir=a.results_dir,
        commits=not a.no_commits,
        picks=tuple(a.pick),
        worker_classes=a.worker_class or (None,),
        scenarios=_scenarios(a) if not a.list_scenarios else (),
        binds=a.bind,
        package=package,
        gunicorn=gunicorn,
        confidence=Confidence(a.confidence, a.max_runs) if a.confidence is not None else None,
        **{k: getattr(a, k) for k in same},
    )


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
    """Every option, group by group in --help order."""
    p = _Parser(
        prog=prog,
        allow_abbrev=False,  # --worker-clas is a typo, not --worker-class
        description="Find the Gunicorn releases and commits where a server-lifecycle failure "
        "happens (by default the Unix-socket loss of issue #1298), where it started and which "
        "commit fixed it.",
        epilog=EPILOG,
    )
    p.add_argument("--version", action="version", version=f"gunicorn-bisect {__version__}")
    p.add_argument(
        "targets",
        nargs="?",
        help="releases: A..B (every final release from A to B; B may be 'latest', or left "
        "out: A..), A,B,C, or A",
    )
    p.add_argument(
        "--check",
        metavar="TARGET",
        help="run the scenario once on a release or a git ref; exit 0 pass, 1 fail, 125 "
        "error (drives `git bisect run`); with --scenario all, every known scenario, one row "
        "each",
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

    g = p.add_argument_group("what to check")
    g.add_argument(
        "--scenario",
        metavar="NAME[,NAME...]|all|FILE.py",
        help="a built-in scenario (--list-scenarios) or your own scenario file "
        f"(default {base.DEFAULT}); with --check, several or 'all' (every listed one)",
    )
    g.add_argument(
        "--list-scenarios", action="store_true", help="list the built-in scenarios and exit"
    )
    g.add_argument(
        "--run",
        metavar="CMD",
        help="your own check, run through the shell in each target's environment, "
        "git-bisect-run style: exit 0 pass (old), 125 cannot tell, 1-127 fail (new)",
    )
    g.add_argument(
        "--terms",
        metavar="OLD,NEW",
        help="names of the two states in the table and findings (default pass,fail)",
    )
    g.add_argument(
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

    g = p.add_argument_group("racy scenarios (flake-aware search)")
    g.add_argument(
        "--confidence",
        type=float,
        metavar="P",
        help="each run is one observation: re-run releases and commits where the answer "
        "is unsure until the likeliest first changed one has posterior P (e.g. 0.95), or "
        "--max-runs is spent (then the answer says so); with --check, run until pass or "
        "fail holds at P.  Off by default (a deterministic scenario costs one run a target)",
    )
    g.add_argument(
        "--max-runs",
        type=int,
        default=DEFAULT_MAX_RUNS,
        metavar="N",
        help=f"with --confidence: runs per finding (or per --check), releases' included "
        f"(default {DEFAULT_MAX_RUNS})",
    )

    g = p.add_argument_group("your own app and its stack")  # issue 15
    g.add_argument(
        "--with",
        dest="with_reqs",
        action="append",
        default=[],
        metavar="REQ",
        help="a requirement installed next to gunicorn in every target's environment "
        "(repeatable; pip's resolver, once per Python), e.g. --with flask",
    )
    g.add_argument(
        "--with-requirements",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="requirements from a file (one a line), as --with",
    )
    g.add_argument(
        "--app",
        metavar="MODULE:CALLABLE",
        help="serve your own application instead of the scenario's, as gunicorn takes it "
        "(an application factory 'pkg:create_app()' too)",
    )
    g.add_argument(
        "--app-dir",
        type=Path,
        metavar="DIR",
        help="where --app is imported from (default: the current directory)",
    )
    g.add_argument(
        "--path",
        default="/",
        metavar="PATH",
        help="what the scenario's probes request (default /); any HTTP status is an answer",
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

    g = p.add_argument_group("what is bisected (default: gunicorn's releases and commits)")
    g.add_argument(
        "--package",
        metavar="NAME",
        help="the targets are releases of this dependency (e.g. eventlet), gunicorn pinned; "
        "with --repo at its git history, its commits are bisected too",
    )
    g.add_argument(
        "--gunicorn",
        metavar="VERSION",
        help="with --package: the gunicorn release every target runs (default: the newest "
        "that installs on each Python)",
    )
    return p


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

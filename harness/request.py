"""argv -> one frozen Request: the checks that need no run (harness/parser.py holds the
options themselves), and the line that reproduces a run as it was run (console script or
file), with no secrets in it."""

from __future__ import annotations

import argparse
import re
import shlex
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from harness.host import fsutil, proxy, wrk
from harness.host.git import DEFAULT_REPO, Repo, SourceError
from harness.host.output import check_output
from harness.jobs.confident import Confidence
from harness.model.redact import redact_argv
from harness.model.targets import LATEST
from harness.parser import UsageError, build_parser
from harness.provision import layers
from harness.scenarios import base, registry

GUNICORN = "gunicorn"

__all__ = ["Request", "UsageError", "command_line", "parse", "resolved_spec", "writable_dir"]


def _package(args: argparse.Namespace) -> str:
    """The canonical name of what is bisected; --gunicorn only makes sense with --package."""
    name = canonicalize_name(GUNICORN if args.package is None else args.package)
    if args.package is not None and not re.fullmatch(r"[a-z0-9]([a-z0-9._-]*[a-z0-9])?", name):
        raise UsageError(f"--package {args.package!r}: not a package name")
    if args.gunicorn is not None and name == GUNICORN:
        raise UsageError("--gunicorn pins gunicorn for --package NAME; give --package too")
    if args.gunicorn is not None:
        try:
            Version(args.gunicorn)
        except InvalidVersion:
            raise UsageError(f"--gunicorn {args.gunicorn!r} is not a version number") from None
    return name


def _gunicorn_pin(given: str | None, reqs: layers.RequirementSet, package: str) -> str | None:
    """With --package, gunicorn's pin: --gunicorn X, or --with gunicorn==X (the uv/pipx
    way); any other gunicorn requirement only constrains the layer's resolution."""
    if given is not None or package == GUNICORN or reqs.gunicorn is None:
        return given
    spec = reqs.gunicorn.partition("==")[2].strip()
    if not spec or any(c in spec for c in ",*;"):
        raise UsageError(
            f"--with {reqs.gunicorn}: with --package, pin gunicorn exactly (gunicorn==X)"
        )
    return spec


_APP = re.compile(r"^[A-Za-z_][\w.]*(:[A-Za-z_][\w.]*(\(.*\))?)?$")


def _app_options(args: argparse.Namespace) -> dict:
    """The Options fields of this block, checked: one line (exit 2) for what is wrong."""
    try:
        reqs = layers.parse(args.with_reqs, args.with_requirements)
    except layers.RequirementsInvalid as exc:
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
    """``path`` made (0700, parents too, whatever the umask) or found ours and writable by
    nobody else, and writable by us; else one line."""
    try:
        fsutil.private_checked_dir(path)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
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
    """Every case ``--scenario all`` runs: the registry's listing (built-ins, the
    catalogue, advisories), without the user's own kinds (a file, --run)."""
    return [n for n, _ in registry.listing() if not (n.startswith("-") or n.endswith(".py"))]


def _scenarios(args: argparse.Namespace) -> tuple[str, ...]:
    """``--scenario a,b`` or ``all`` -> the names, each once, in order; one name (or a
    file) as before.  Several take ``--check`` (one table: the candidate's)."""
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
    options: base.Options  # the scenario's knobs (one worker class and bind per column)
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
        """The command line with the release that ``asked`` resolved to (``latest`` ->
        27.0.1, ``19.0.0..`` -> ``19.0.0..27.0.1``) in place of ``asked``."""
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
    """The line that reproduces a run, as it was run (``gunicorn-bisect ...`` or
    ``python bisect.py ...``), with no secrets in it."""
    runner = ["python", prog] if prog.endswith(".py") else [prog]
    return " ".join(shlex.quote(a) for a in [*runner, *redact_argv(argv)])


def resolved_spec(spec: str, releases: Sequence[str]) -> str:
    """A range's text with its open or ``latest`` end named (``19.0.0..`` ->
    ``19.0.0..27.0.1``; ``latest`` -> ``27.0.1``), given the releases it resolved to."""
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
    package = _package(a)
    same = ("targets", "check", "list_scenarios", "repo", "first_parent", "format", "output")
    same += ("python", "index_url", "no_compat", "repeat", "jobs", "verbose", "quiet")
    same += ("from_release",)
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
        gunicorn=_gunicorn_pin(a.gunicorn, options.requirements, package),
        confidence=Confidence(a.confidence, a.max_runs) if a.confidence is not None else None,
        **{k: getattr(a, k) for k in same},
    )

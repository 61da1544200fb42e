"""One server lifecycle for every case: refuse what the case cannot honour (its ``CANNOT``,
in one line, before anything starts), boot, put the proxy in front, read the app's healthy
answer, observe, stop; then ``decide``, purely.  Every option reaches every case the same
way here (settings: SETTINGS < ``--gunicorn-config`` < flags).

``observe(server)`` (or a file's ``check``) runs in a thread with a ``ServerFixture``,
bounded by ``--timeout`` (or the case's larger ``TIMEOUT``): past it the row is ``error``
("ran out"), and the server and every thread it started are stopped (``fixture.stop``).
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.host.processes import Cancel, Cancelled
from harness.host.proxy import ProxyError
from harness.model.verdict import Axis, Decision, Verdict, primary_axis
from harness.provision import requirements, worker_libs
from harness.provision.interpreters import Interpreter
from harness.provision.requirements import RequirementSet
from harness.provision.wheels import ArtifactError
from harness.scenarios import fixture as contain  # install, adopt, stop: bounds on observe()
from harness.scenarios.base import (
    About,
    EnvNeeds,
    Options,
    RunContext,
    RunResult,
    Scenario,
    ScenarioError,
)
from harness.scenarios.case import BOTTLE_AS_REPORTED, FUNCTION, Case, bottle_for, harness_provided
from harness.scenarios.fixture import RunOver, ServerFixture, server_traceback
from harness.scenarios.server import PLAIN_APP, BootError, Server, ServerSpec

VERDICTS = {"pass": Verdict.PASS, "fail": Verdict.FAIL, "error": Verdict.ERROR}
EVIDENCE_CAP = 8192  # characters of a case's evidence a row keeps
#: At most this long to boot, and never more than half of the run's limit.
BOOT_LIMIT = 10.0
#: A proxy in front answers a dead upstream within this (shorter than a probe's wait).
PROXY_IO_TIMEOUT = 1.5
#: gunicorn settings the command line's flags set (they win over SETTINGS and the config)
FLAGS = ("workers", "threads", "max_requests", "worker_class")


def given(options: Options) -> dict[str, str]:
    """The options the command line set away from their defaults: name -> as typed."""
    o = options
    out = {
        "bind": o.bind != "unix" and f"--bind {o.bind}",
        "trigger": o.trigger != "auto" and f"--trigger {o.trigger}",
        "proxy": o.proxy and f"--proxy {o.proxy}",
        "path": o.path != "/" and f"--path {o.path}",
        "load": o.load != "builtin" and f"--load {o.load}",
        "app": o.app and f"--app {o.app}",
        "with": bool(o.requirements) and f"--with {','.join(o.requirements.requirements)}",
        "gunicorn_config": o.gunicorn_config and f"--gunicorn-config {o.gunicorn_config}",
    }
    out.update({n: f"--{n.replace('_', '-')} {getattr(o, n)}" for n in FLAGS if getattr(o, n)})
    return {k: v for k, v in out.items() if v}


def refusal(case: Case, options: Options) -> str:
    """The one line that refuses an option ``case`` cannot honour ("" when it can all)."""
    for option, typed in given(options).items():
        if option in case.cannot:
            return f"--scenario {case.name}: cannot honour {typed}: {case.cannot[option]}"
    return _shadowing(options)


def _shadowing(options: Options) -> str:
    """An ``--app-dir`` holding a ``gunicorn`` package or module would be imported instead
    of every target's gunicorn (it comes first on the server's path): one line, refused."""
    where = options.app_dir
    if where is None or options.app is None:
        return ""
    found = [p for p in (where / "gunicorn", where / "gunicorn.py") if p.exists()]
    if not found:
        return ""
    return (
        f"--app-dir {where}: it holds {found[0].name}, which would replace every target's "
        "gunicorn; give --app-dir a directory without it"
    )


@dataclass(frozen=True)
class Observation:
    """What one run of a case came to (``decide`` judges)."""

    booted: bool
    boot_error: str = ""
    returned: Any = None  # what observe()/check() returned, when it returned
    raised: str = ""  # "TypeError: ..." when it raised
    ran_out: float | None = None  # the run's limit, when it had not returned by then
    exited: int | None = None  # the status it passed to os._exit (which did not exit)
    traceback: str = ""  # its traceback, or the server's last one
    unhealthy: str = ""  # what the app answered before anything happened, when not healthy

    @property
    def finished(self) -> bool:
        """observe() ran on a healthy server and returned."""
        stopped = self.raised or self.unhealthy or self.ran_out is not None
        return self.booted and not stopped and self.exited is None


def decide(obs: Observation, function: str = FUNCTION) -> Decision:
    """The verdict ``function`` returned, or error for a run that never got there."""
    if not obs.booted:
        return Decision(Verdict.ERROR, f"server did not start: {obs.boot_error}", obs.traceback)
    if obs.unhealthy:
        return Decision(Verdict.ERROR, obs.unhealthy, obs.traceback)
    if obs.ran_out is not None:
        why = f"ran out after {obs.ran_out:g} s: {function}() had not returned (--timeout)"
        return Decision(Verdict.ERROR, why, obs.traceback)
    if obs.exited is not None:
        why = f"{function}() called os._exit({obs.exited}): stopped there, the harness goes on"
        return Decision(Verdict.ERROR, why, obs.traceback)
    if obs.raised:
        return Decision(Verdict.ERROR, f"{function}() raised {obs.raised}", obs.traceback)
    return verdict_of(obs.returned, function, obs.traceback)


def verdict_of(value: Any, function: str, tb: str = "") -> Decision:
    if isinstance(value, Decision):
        return value
    pair = isinstance(value, (tuple, list)) and len(value) == 2
    if pair and all(isinstance(v, str) for v in value) and value[0].lower() in VERDICTS:
        said, more = value[1][:EVIDENCE_CAP], len(value[1]) - EVIDENCE_CAP  # bounded row
        evidence = "; ".join(ln.strip() for ln in said.splitlines() if ln.strip())
        evidence += f" ... ({more} more characters not kept)" if more > 0 else ""
        return Decision(VERDICTS[value[0].lower()], evidence or "(no evidence given)", tb)
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    why = f"{function}() returned {shown}: expected ('pass'|'fail'|'error', 'evidence')"
    return Decision(Verdict.ERROR, why, tb)


def unhealthy(healthy_status: str, path: str, proxy: str | None) -> str:
    who = f"{proxy} in front of your app" if proxy else "your app"
    s = healthy_status
    answer = f"answers HTTP {s}" if s.isdigit() else f"gives no answer ({s})"
    return (
        f"{who} {answer} on {path} before any restart or reload: no healthy answer to compare with"
    )


class CaseScenario(Scenario):
    """A case run against a gunicorn the harness boots and owns, with every option applied."""

    def __init__(self, case: Case, options: Options) -> None:
        if why := refusal(case, options):
            raise ScenarioError(why)
        self.case, self.options = case, options

    def flags(self) -> dict[str, Any]:
        """Settings the command line gives: they win over SETTINGS and --gunicorn-config."""
        o = self.options
        out = {n: getattr(o, n) for n in FLAGS if getattr(o, n) is not None}
        if o.worker_class == "sync" and o.threads is None:
            out["threads"] = 1  # "sync" means the sync worker: threads > 1 would make it gthread
        if o.trigger == "signal":
            out["max_requests"] = 0  # workers exit only when told to
        return out

    def settings(self) -> dict[str, Any]:
        return {**self.case.settings, **self.flags()}

    def worker_class(self) -> str:
        wc = self.settings().get("worker_class")
        return wc if isinstance(wc, str) else ""

    def bind(self) -> str:
        """--bind tcp, or the case's BIND (a file may ask for tcp)."""
        return "tcp" if "tcp" in (self.options.bind, self.case.bind) else "unix"

    def spec(self, boot_timeout: float) -> ServerSpec:
        """SETTINGS < --gunicorn-config < command-line flags < what the harness owns."""
        o = self.options
        return ServerSpec(
            app_source=None if o.app else self.case.app,
            app=o.app or "web:app",
            app_dir=o.app_dir,
            settings=self.flags(),
            defaults=dict(self.case.settings),
            config_file=o.gunicorn_config,
            bind=self.bind(),
            boot_timeout=boot_timeout,
            path=o.path,
        )

    def own_needs(self, interp: Interpreter, cache_dir: Path) -> EnvNeeds:
        """bottle for the case's APP (not under --app), the worker class's libraries; the
        import trial resolves the worker class unless that is what the case judges (boots)."""
        worker = worker_libs.extras_for(self.worker_class() or None, interp, cache_dir)
        wc = "" if self.case.hooks.get("JUDGES_IMPORTS") else self.worker_class()
        bottle = [] if self.options.app else [r for r in self.case.requires if harness_provided(r)]
        if not bottle:
            return EnvNeeds(extras=tuple(worker), worker_class=wc)
        req, extra = bottle[0], bottle_for(interp, cache_dir)
        if req.specifier and not req.specifier.contains(extra.version, prereleases=True):
            raise ArtifactError(
                f"REQUIRES {req}: Python {interp.version} gets bottle {extra.version} "
                f"({BOTTLE_AS_REPORTED} runs only on Python <= 3.9)"
            )
        return EnvNeeds(extras=(extra, *worker), trial_imports=("bottle",), worker_class=wc)

    def requirements(self) -> RequirementSet:
        """--with, plus every REQUIRES the harness does not serve itself (e.g. flask)."""
        own = [str(r) for r in self.case.requires if not harness_provided(r)]
        if not own:
            return self.options.requirements
        return requirements.parse([*self.options.requirements.requirements, *own])

    def run(self, ctx: RunContext, cancel: Cancel) -> RunResult:
        """Boot, proxy, healthy answer, observe, stop (the case's TIMEOUT is a floor)."""
        if self.case.timeout is not None and self.case.timeout > ctx.timeout:
            ctx = replace(ctx, timeout=self.case.timeout)
        started = time.monotonic()
        server = Server(ctx, self.spec(boot_timeout=min(BOOT_LIMIT, ctx.timeout / 2)), cancel)
        try:
            observation = self._live(server, started + ctx.timeout, cancel)
            return RunResult(
                observation,
                log=server.log.refresh(drain=not server.alive()),
                duration=round(time.monotonic() - started, 3),
                boot_seconds=server.boot_seconds,
                compat_used=server.compat_used,
                facts=self.facts(server, observation),
            )
        finally:
            server.stop()

    def _live(self, server: Server, deadline: float, cancel: Cancel) -> Observation:
        try:
            server.start()
            if self.options.proxy:
                server.put_proxy_in_front(self.options.proxy, PROXY_IO_TIMEOUT)
        except (BootError, ProxyError) as exc:
            why = str(exc) if isinstance(exc, BootError) else f"proxy did not start: {exc}"
            return Observation(
                False, boot_error=server.scrub(why), traceback=server_traceback(server)
            )
        healthy = server.read_healthy(self.options.path)
        if not healthy.ok:
            why = unhealthy(healthy.status, self.options.path, self.options.proxy)
            return Observation(True, unhealthy=why, traceback=server_traceback(server))
        return self._observe(server, deadline, cancel)

    def _observe(self, server: Server, deadline: float, cancel: Cancel) -> Observation:
        """observe(server) in a thread until it returns or the deadline passes (``contain``)."""
        contain.install()
        over = threading.Event()
        box: dict[str, Any] = {}
        fixture = ServerFixture(server, deadline, cancel, over, self.options)
        thread = threading.Thread(
            target=self._call,
            args=(fixture, box),
            name=f"scenario {self.case.path.name} {server.ctx.label}",
            daemon=True,  # an observe() that never returns must not keep the harness alive
        )
        contain.adopt(thread)
        try:
            thread.start()
            while thread.is_alive() and time.monotonic() < deadline:
                cancel.raise_if_set()
                thread.join(min(0.05, max(0.0, deadline - time.monotonic())))
            cancel.raise_if_set()
        finally:
            ran_out = thread.is_alive()
            over.set()  # waits in observe() end now; the server goes after this returns
            contain.stop(thread)
        if ran_out or "over" in box:
            return Observation(True, ran_out=server.ctx.timeout, traceback=server_traceback(server))
        if "exited" in box or "raised" in box:
            return Observation(True, **box)
        return Observation(True, returned=box.get("returned"), traceback=server_traceback(server))

    def _call(self, fixture: ServerFixture, box: dict[str, Any]) -> None:
        try:
            box["returned"] = self.case.observe(fixture)
        except (RunOver, Cancelled, contain.Stopped):
            box["over"] = True
        except contain.ExitCalled as exc:
            box["exited"] = exc.status
            box["traceback"] = _formatted(exc)
        except BaseException as exc:  # the case's code: whatever it raises is evidence
            box["raised"] = traceback.format_exception_only(type(exc), exc)[-1].strip()
            box["traceback"] = _formatted(exc)

    def decide(self, observation: Any) -> Decision:
        """Pure: the case's own ``decide`` on what ``observe`` returned (a built-in's on a
        failed boot too); the lifecycle's rules for a run that never got that far."""
        case, obs = self.case, observation
        not_booted = case.hooks.get("not_booted")
        if not obs.booted and not_booted is not None and case.decide is not None:
            return verdict_of(case.decide(not_booted(obs.boot_error, obs.traceback)), "decide")
        if case.decide is None or not obs.finished:
            return decide(obs, case.function)
        try:
            value = case.decide(obs.returned)
        except Exception as exc:  # noqa: BLE001 - a user's decide: what it raised is the evidence
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            return Decision(Verdict.ERROR, f"decide() raised {last}", _formatted(exc))
        return verdict_of(value, "decide", obs.traceback)

    def axes(self) -> list[Axis]:
        return [primary_axis(self.options.terms), *self.case.hooks.get("AXES", ())]

    def facts(self, server: Server, observation: Observation) -> dict[str, Any]:
        """What the row and the JSON show besides the verdict (and the case's own)."""
        facts: dict[str, Any] = {"worker_class": server.log.worker_class, "bind": self.bind()}
        if server.healthy is not None:
            facts["healthy_status"] = server.healthy.status
        if self.options.app:
            facts["app"] = self.options.app
        if server.proxy is not None:  # it started; its own words for what went wrong upstream
            facts["proxy"] = self.options.proxy
            facts["proxy_log"] = server.scrub(server.proxy.log_tail(3))
        own = self.case.hooks.get("facts")
        if own is not None and isinstance(observation, Observation) and observation.returned:
            facts.update(own(observation.returned))
        return facts

    def about(self) -> About:
        case, o = self.case, self.options
        title = case.hooks.get("TITLE") or (
            f"Gunicorn bisection report: {case.name if case.name != 'file' else case.path.name}"
            + (f": {case.description}" if case.description else "")
        )
        named: dict[str, Any] = {}
        if not case.builtin:
            named = {
                "file": str(case.path),
                "path": str(case.path.resolve()),
                "sha256": case.sha256,
            }
        ids = {"tracker": case.tracker, "id": case.osv_id, "aliases": list(case.aliases)}
        named.update({k: v for k, v in ids.items() if v})
        summary = self.summary() + _suffix(o, case.builtin)
        return About(case.name, case.description, summary, title, self.parameters(), named)

    def summary(self) -> str:
        """A built-in shows its settings as they will run; a file its path and description."""
        case, o, s = self.case, self.options, self.settings()
        if not case.builtin:
            shown = f"harness/catalogue/{case.path.name}" if case.name != "file" else case.path
            return f"{shown}: {case.description or '(no description)'}"
        if o.gunicorn_config is not None:  # the file decides what flags do not
            flags = [f"{n}={v}" for n, v in self.flags().items()]
            return (
                f"config {o.gunicorn_config} (its own settings; defaults where it has "
                "none" + (f"; flags: {' '.join(flags)}" if flags else "") + ")"
            )
        wc = self.worker_class() or (
            "auto (gthread when threads > 1)" if int(s.get("threads") or 1) > 1 else "auto"
        )
        shown = " ".join(f"{n}={s[n]}" for n in ("workers", "threads", "max_requests") if n in s)
        return f"{shown} worker_class={wc}"

    def parameters(self) -> dict[str, Any]:
        case, o, s = self.case, self.options, self.settings()
        p: dict[str, Any] = {}
        if case.builtin:
            p.update({n: s[n] for n in ("workers", "threads", "max_requests") if n in s})
        else:
            p.update(file=str(case.path), settings=s, requires=[str(r) for r in case.requires])
        p.update(worker_class=self.worker_class() or "auto", bind=self.bind(), timeout=o.timeout)
        p.update(gunicorn_config=str(o.gunicorn_config) if o.gunicorn_config else None)
        p.update(proxy=o.proxy, app=o.app or _app_name(case))
        if "trigger" not in case.cannot:
            p["trigger"] = o.trigger
        p.update(case.hooks.get("PARAMETERS", {}))
        extra = {"load": o.load != "builtin" and o.load, "path": o.path != "/" and o.path}
        p.update({k: v for k, v in extra.items() if v})
        if o.app:
            p["app_dir"] = str(o.app_dir)
        if o.requirements:
            p["with"] = list(o.requirements.requirements)
        return p


def _app_name(case: Case) -> str:
    if case.app == PLAIN_APP:
        return "plain WSGI Hello World"
    return case.hooks.get("APP_NAME") or "the file's APP"


def _suffix(o: Options, builtin: bool) -> str:
    """The header's note of each option that changes the deployment ("proxy=nginx"); a
    built-in's header already shows its settings, a file's is in parentheses."""
    skip = {*FLAGS, "gunicorn_config", *(() if builtin else ("bind",))}
    parts = [v[2:].replace(" ", "=", 1) for k, v in given(o).items() if k not in skip]
    if not parts:
        return ""
    return f" {' '.join(parts)}" if builtin else f" ({' '.join(parts)})"


def _formatted(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).strip()

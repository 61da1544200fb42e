"""socket-loss: upstream issue #1298, run against one environment.

The report's bottle "Hello World" app behind gunicorn bound to a Unix socket in a
private directory; the threaded worker (``threads > 1`` makes gunicorn pick gthread,
as in the report's config.py); a small ``max_requests`` so workers recycle within a
second of keep-alive load (like wrk behind h2o).  Where a release's workers never
recycle on ``max_requests``, each worker is sent a graceful SIGTERM in turn instead.
After the restarts, *fresh* connections to the path are the evidence: a keep-alive
connection reset by a recycling worker is normal, a path that is gone is the bug.

Verdicts (``decide``): ``fail`` the socket file is gone after a worker exit (#1298);
``outage`` the file stays but nothing answers new connections (another problem);
``pass`` it kept serving; ``error`` it could not be exercised.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.build import worker_libs
from harness.build.interpreters import Interpreter
from harness.host.cancel import Cancel
from harness.host.proxy import ProxyError, status_counts
from harness.model.verdict import Axis, Decision, Verdict, last_line, ordinal, plural
from harness.scenarios import app_bottle
from harness.scenarios.base import EnvNeeds, Options, RunContext, RunResult, Scenario, register
from harness.scenarios.server import BootError, Server, ServerSpec, last_traceback

#: A proxy in front answers a dead upstream within this (shorter than a probe's wait).
PROXY_IO_TIMEOUT = 1.5
_REASONS = {
    "502": "502 Bad Gateway",
    "503": "503 Service Unavailable",
    "504": "504 Gateway Timeout",
}

# The report's config.py, scaled for speed: 5 workers x 5 threads x 512 max_requests
# becomes 3 x 5 x 16, so every worker recycles within about a second of load.
DEFAULTS = {"workers": 3, "threads": 5, "max_requests": 16}

#: Probe results that mean the path itself turns new connections away.
REFUSALS = frozenset({"ENOENT", "ECONNREFUSED"})
#: Probe results that mean nobody answered: the server accepted (or not) and went quiet.
SILENT = frozenset({"timeout", "ECONNREFUSED", "empty response"})
PROBE_TIMEOUT = 2.0

OUTAGE_AXIS = Axis(
    "outage",
    Verdict.PASS,
    Verdict.OUTAGE,
    "serves",
    "outage",
    label="another problem than #1298: stops serving after worker restarts",
)


@dataclass(frozen=True)
class Observation:
    """Facts gathered by one run (the scenario observes; ``decide`` judges)."""

    booted: bool
    boot_error: str = ""
    workers: int = 0
    recycles: int = 0
    boots: int = 0
    exits: int = 0
    trigger: str = "max-requests"
    requests_ok: int = 0
    requests_failed: int = 0
    path_present: bool = True
    path_gone_after_recycle: int | None = None
    probes_sent: int = 0
    probes_ok: int = 0
    probe_errors: tuple[str, ...] = ()
    arbiter_alive: bool = True
    arbiter_exit: str = ""
    ran_out: str = ""  # the phase the run's deadline cut short, if any
    traceback: str = ""
    error_lines: tuple[str, ...] = ()  # the arbiter's own error lines
    worker_class: str | None = None
    bind: str = "unix"  # "tcp": no socket file, so only pass/outage/error can come of it
    proxy: str | None = None  # "h2o" or "nginx" in front: probes and load went through it
    load_statuses: dict[str, int] | None = None


class _Load:
    """Keep-alive load with requests(-unixsocket), one session per thread."""

    def __init__(self, server: Server, concurrency: int) -> None:
        self.server = server
        self.stop = threading.Event()
        self.ok = 0
        self.failed = 0
        self.statuses: Counter[str] = Counter()  # what answered the load: 200, 502, errors
        self._lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._worker, daemon=True) for _ in range(concurrency)
        ]

    def _worker(self) -> None:
        import requests

        with self.server.client() as session:
            while not self.stop.is_set():
                try:
                    status = str(session.get(self.server.url, timeout=PROBE_TIMEOUT).status_code)
                except requests.RequestException as exc:
                    status = type(exc).__name__  # a reset keep-alive connection, a vanished path
                ok = status == "200"
                with self._lock:
                    self.statuses[status] += 1
                    if ok:
                        self.ok += 1
                    else:
                        self.failed += 1
                if not ok:
                    self.stop.wait(0.01)

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            if t.is_alive():
                t.join(timeout=PROBE_TIMEOUT + 0.5)


def _fresh_connection(server: Server, attempts: int = 3) -> str:
    """A probe that tells a refused path apart from a passing hiccup.

    A refusal (ENOENT: the path is gone; ECONNREFUSED: nobody listens), a timeout or
    an HTTP error status is final at once; a reset may be a worker recycling at that
    instant, so it is tried again on a new connection before it counts.
    """
    result = server.probe(PROBE_TIMEOUT)
    for _ in range(attempts - 1):
        if result == "ok" or result in REFUSALS or result in SILENT or result.startswith("HTTP"):
            break
        time.sleep(0.05)
        result = server.probe(PROBE_TIMEOUT)
    return result


def fresh_connections(
    server: Server, n: int, until: float, cancel: Cancel | None = None
) -> list[str]:
    """``n`` fresh connections, bounded: once one is slow to answer (or never does), the
    rest go at once, so a silent server costs one probe's wait, not twenty."""
    results: list[str] = []
    while len(results) < n:
        if time.monotonic() + PROBE_TIMEOUT > until and results:
            break
        if cancel is not None:
            cancel.check()
        t0 = time.monotonic()
        r = _fresh_connection(server)
        results.append(r)
        if r == "timeout" or time.monotonic() - t0 > 0.5:
            with ThreadPoolExecutor(max_workers=n - len(results) or 1) as pool:
                results += list(
                    pool.map(lambda _: server.probe(PROBE_TIMEOUT), range(n - len(results)))
                )
    return results


@register(
    "socket-loss",
    "#1298: the gthread worker unlinks its Unix socket on exit (fail = the socket file is gone)",
)
class SocketLoss(Scenario):
    title = "Gunicorn #1298 socket loss: bisection report"

    def __init__(self, options: Options) -> None:
        self.options = options
        self.concurrency = 8
        self.probes = 20

    @classmethod
    def from_options(cls, options: Options) -> SocketLoss:
        return cls(options)

    # -- what it is ----------------------------------------------------------------------
    def effective(self, name: str) -> Any:
        value = getattr(self.options, name)
        if name == "threads" and value is None and self.options.worker_class == "sync":
            return 1  # "sync" means the sync worker: threads > 1 would turn it into gthread
        return DEFAULTS.get(name) if value is None else value

    def axes(self) -> list[Axis]:
        return [self.primary_axis(), OUTAGE_AXIS]

    def parameters(self) -> dict[str, Any]:
        o = self.options
        return {
            "workers": self.effective("workers"),
            "threads": self.effective("threads"),
            "max_requests": self.effective("max_requests"),
            "worker_class": o.worker_class or "auto",
            "bind": o.bind,
            "trigger": o.trigger,
            "timeout": o.timeout,
            "gunicorn_config": str(o.gunicorn_config) if o.gunicorn_config else None,
            "proxy": o.proxy,
            "app": "bottle Hello World (the report's web.py)",
            "probes": self.probes,
        }

    def describe(self) -> str:
        o = self.options
        wc = o.worker_class or "auto (gthread when threads > 1)"
        if o.gunicorn_config is not None:  # the file decides what flags do not
            given = [f"{n}={getattr(o, n)}" for n in DEFAULTS if getattr(o, n) is not None]
            return (
                f"config {o.gunicorn_config} (its own settings; defaults where it has "
                "none" + (f"; flags: {' '.join(given)}" if given else "") + ")"
            )
        out = (
            f"workers={self.effective('workers')} threads={self.effective('threads')} "
            f"max_requests={self.effective('max_requests')} worker_class={wc}"
        )
        if o.bind != "unix":
            out += f" bind={o.bind}"
        if o.trigger != "auto":
            out += f" trigger={o.trigger}"
        if o.proxy:
            out += f" proxy={o.proxy}"
        return out

    def needs(self, interp: Interpreter, cache_dir: Path) -> EnvNeeds:
        """bottle, and gevent/eventlet (with their dependencies) for those worker classes;
        ArtifactError when no wheel fits ``interp`` (the runner tries an older Python)."""
        worker = worker_libs.extras_for(self.options.worker_class, interp, cache_dir)
        return EnvNeeds(
            extras=(app_bottle.bottle_for(interp, cache_dir), *worker),
            probe_imports=("bottle",),
            worker_class=self.options.worker_class or "",
        )

    def spec(self, boot_timeout: float) -> ServerSpec:
        o = self.options
        settings = {
            n: self.effective(n)
            for n in ("workers", "threads", "max_requests")
            if getattr(o, n) is not None or (n == "threads" and o.worker_class == "sync")
        }
        if o.worker_class:
            settings["worker_class"] = o.worker_class
        if o.trigger == "signal":
            settings["max_requests"] = 0  # workers exit only when told to
        return ServerSpec(
            app_source=app_bottle.APP,
            settings=settings,
            defaults={**DEFAULTS, "keepalive": 2, "timeout": 30, "backlog": 2048},
            config_file=o.gunicorn_config,
            bind=o.bind,
            boot_timeout=boot_timeout,
        )

    # -- the run ---------------------------------------------------------------------------
    def run(self, ctx: RunContext, cancel: Cancel) -> RunResult:
        """Boot, make workers exit, probe, tear down: within ``ctx.timeout``, never leaking."""
        started = time.monotonic()
        deadline = started + ctx.timeout
        reserve = 2 * PROBE_TIMEOUT + 1.0  # kept for the probes, whatever happens before
        server = Server(ctx, self.spec(boot_timeout=min(10.0, ctx.timeout / 2)), cancel)
        obs: dict[str, Any] = {
            "booted": False,
            "workers": server.workers,
            "bind": self.options.bind,
        }
        load = None
        try:
            try:
                server.start()
            except BootError as exc:
                obs["boot_error"] = str(exc)
                return self._result(server, obs, started)
            obs["booted"] = True
            obs["workers"] = server.workers
            obs["worker_class"] = server.log.worker_class
            if self.options.proxy:
                obs["proxy"] = self.options.proxy
                try:
                    server.put_proxy_in_front(self.options.proxy, PROXY_IO_TIMEOUT)
                except ProxyError as exc:
                    obs["booted"], obs["boot_error"] = False, f"proxy did not start: {exc}"
                    return self._result(server, obs, started)
            gone_at: int | None = None
            trigger = self.options.trigger
            if trigger in ("auto", "max-requests"):
                load = _Load(server, self.concurrency)
                load.start()
                gone_at, ran_out = self._until_recycled(server, load, deadline - reserve, cancel)
                load.finish()
                obs["requests_ok"], obs["requests_failed"] = load.ok, load.failed
                obs["load_statuses"] = dict(load.statuses)
                if ran_out:
                    obs["ran_out"] = "load (waiting for workers to recycle on max_requests)"
            if self._recycles(server) == 0 and trigger in ("auto", "signal"):
                obs["trigger"] = "signal"
                obs.pop("ran_out", None)
                gone_at, ran_out = self._signal_each(server, deadline - reserve, cancel)
                if ran_out:
                    obs["ran_out"] = "signal (waiting for a worker to exit on SIGTERM)"
            elif trigger == "signal":
                obs["trigger"] = "signal"
            # fresh connections, after the replacements booted (or clearly will not)
            self._settle(server, min(time.monotonic() + 3.0, deadline - reserve), cancel)
            cancel.check()
            recycles = self._recycles(server)
            obs.update(
                recycles=recycles,
                path_present=server.listening(),
                path_gone_after_recycle=gone_at,
            )
            results = fresh_connections(server, self.probes, deadline, cancel)
            cancel.check()
            if len(results) < self.probes and not obs.get("ran_out"):
                obs["ran_out"] = "probes"
            obs["probes_sent"] = len(results)
            obs["probes_ok"] = results.count("ok")
            obs["probe_errors"] = tuple(r for r in results if r != "ok")
            obs["arbiter_alive"] = server.alive()
            if not obs["arbiter_alive"]:
                obs["arbiter_exit"] = server.exit_status()
            return self._result(server, obs, started)
        finally:
            if load is not None:
                load.finish()
            server.stop()

    @staticmethod
    def _recycles(server: Server) -> int:
        log = server.log
        return max(log.exits, log.boots - server.workers)

    def _until_recycled(
        self, server: Server, load: _Load, until: float, cancel: Cancel
    ) -> tuple[int | None, bool]:
        """Load until every worker recycled once, the path vanished, or it is hopeless."""
        max_requests = server.setting("max_requests", self.effective("max_requests")) or 1
        workers = server.workers
        gone_at: int | None = None
        grace_until: float | None = None
        all_gone_since: float | None = None
        while time.monotonic() < until:
            cancel.check()
            log = server.log
            log.refresh()
            recycles = self._recycles(server)
            if gone_at is None and recycles > 0 and not server.listening():
                gone_at = recycles
                grace_until = time.monotonic() + 2.0  # let a second worker exit: its traceback
            if not server.alive():
                return gone_at, False
            if grace_until is not None and (time.monotonic() > grace_until or log.exits >= 2):
                return gone_at, False
            if gone_at is None and recycles >= workers:
                return gone_at, False
            if recycles == 0 and load.ok > 10 * workers * max_requests:
                return gone_at, False  # ten times what should recycle every worker: it never will
            if log.exits >= workers and not log.worker_pids:  # every worker gone, none booted
                all_gone_since = all_gone_since or time.monotonic()
                if time.monotonic() - all_gone_since > 1.0:
                    return gone_at, False
            time.sleep(0.005)
        return gone_at, True

    def _signal_each(self, server: Server, until: float, cancel: Cancel) -> tuple[int | None, bool]:
        """Graceful SIGTERM to each worker in turn; wait for it to exit (and be replaced)."""
        gone_at: int | None = None
        for pid in list(server.log.worker_pids)[: server.workers]:
            server.signal(signal.SIGTERM, pid)
            exits = server.log.exits
            while time.monotonic() < until:
                cancel.check()
                server.log.refresh()
                if server.log.exits > exits or not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.01)
            else:
                return gone_at, True
            if gone_at is None and not server.listening():
                gone_at = max(1, self._recycles(server))
                break
        return gone_at, False

    def _settle(self, server: Server, until: float, cancel: Cancel) -> None:
        """Wait for replacements to boot; stop early when they clearly will not."""
        quiet_since = time.monotonic()
        boots = server.log.boots
        while time.monotonic() < until and server.alive() and not cancel.is_set():
            server.log.refresh()
            log = server.log
            if log.boots >= server.workers + self._recycles(server) or not server.listening():
                return
            if log.boots != boots:
                boots, quiet_since = log.boots, time.monotonic()
            elif not log.worker_pids and time.monotonic() - quiet_since > 1.0:
                return  # every worker exited and none booted for a second
            time.sleep(0.02)

    def _result(self, server: Server, obs: dict[str, Any], started: float) -> RunResult:
        text = server.log.refresh()
        obs["traceback"] = server.scrub(last_traceback(text))
        obs["boots"], obs["exits"] = server.log.boots, server.log.exits
        obs["error_lines"] = tuple(server.scrub(e) for e in server.log.errors())
        obs.setdefault("worker_class", server.log.worker_class)
        observation = Observation(**obs)
        facts: dict[str, Any] = {
            "worker_class": observation.worker_class,
            "trigger": observation.trigger,
            "bind": self.options.bind,
        }
        if observation.proxy:
            facts["proxy"] = observation.proxy
            facts["proxy_statuses"] = proxy_statuses(observation)
            facts["proxy_load_statuses"] = observation.load_statuses or {}
            if server.proxy is not None:  # its own words for what went wrong upstream
                facts["proxy_log"] = server.scrub(server.proxy.log_tail(3))
        return RunResult(
            observation,
            log=text,
            duration=round(time.monotonic() - started, 3),
            boot_seconds=server.boot_seconds,
            compat_used=server.compat_used,
            facts=facts,
        )

    # -- the rules ---------------------------------------------------------------------------
    def decide(self, obs: Observation) -> Decision:
        return decide(obs)


def _restarts(obs: Observation) -> str:
    how = " (SIGTERM to each worker)" if obs.trigger == "signal" else ""
    return f"{plural(obs.recycles, 'worker restart')}{how}"


def _cause(obs: Observation) -> str:
    """Why a server that kept its socket file stopped answering, from its log."""
    replaced = max(0, obs.boots - obs.workers)
    out = f"{obs.exits} worker exit(s), {replaced} worker(s) booted again"
    if obs.error_lines:
        out += "; log: " + "; ".join(repr(e) for e in obs.error_lines)
    elif obs.traceback:
        out += f"; worker traceback: {last_line(obs.traceback)}"
    return out


def proxy_statuses(obs: Observation) -> dict[str, int]:
    """What the proxy answered the fresh requests: {"200": 0, "502": 20}."""
    return status_counts(
        "200" if r == "ok" else r.replace("HTTP ", "")
        for r in ("ok",) * obs.probes_ok + obs.probe_errors
    )


def _proxy_phrase(obs: Observation) -> str:
    """The report's own symptom: "h2o answered 502 Bad Gateway to 20/20 requests"."""
    counts = proxy_statuses(obs)
    top = max(counts, key=lambda k: counts[k]) if counts else "?"
    what = _REASONS.get(top, top)
    rest = [f"{_REASONS.get(k, k)} x{n}" for k, n in counts.items() if k != top]
    extra = f" ({', '.join(rest)})" if rest else ""
    return f"{obs.proxy} answered {what} to {counts.get(top, 0)}/{obs.probes_sent} requests{extra}"


def _served(obs: Observation) -> str:
    if obs.proxy:
        return _proxy_phrase(obs)
    return f"{obs.probes_ok}/{obs.probes_sent} new connections served"


def _unanswered(obs: Observation) -> str:
    failed = obs.probes_sent - obs.probes_ok
    kinds = sorted(set(obs.probe_errors))
    if kinds == ["timeout"]:
        return (
            f"no answer within {PROBE_TIMEOUT:g} s to {failed}/{obs.probes_sent} fresh connections"
        )
    return f"{failed}/{obs.probes_sent} fresh connections not served ({', '.join(kinds)})"


def decide(obs: Observation) -> Decision:
    """The #1298 rules, most specific first.

    - error: not exercised (never booted, the arbiter died, no worker ever exited);
    - fail: after a worker exit the socket file is gone while the arbiter is alive;
    - outage: the file stays but fresh connections go unanswered or are refused
      (another problem, e.g. workers that exit and are never replaced);
    - pass: workers restarted and the path served every fresh connection.
    A reset of a keep-alive connection while a worker recycles is not evidence: only
    fresh connections count, and a reset is retried before it does.
    """
    tb = obs.traceback
    ran_out = f"; the run's time limit ran out during {obs.ran_out}" if obs.ran_out else ""
    if not obs.booted:
        reason = obs.boot_error or "server never listened on the socket"
        return Decision(Verdict.ERROR, f"server did not start: {reason}", tb)
    if obs.recycles > 0 and not obs.path_present and obs.arbiter_alive:
        nth = obs.path_gone_after_recycle or obs.recycles
        when = "after the 1st" if nth == 1 else f"by the {ordinal(nth)}"
        detail = f"socket file gone {when} worker restart; {_served(obs)}"
        if obs.trigger == "signal":
            detail += " (workers stopped by SIGTERM)"
        if tb:
            detail += f"; worker traceback: {last_line(tb)}"
        return Decision(Verdict.FAIL, detail, tb)
    if not obs.arbiter_alive:
        why = obs.arbiter_exit or "exited"
        return Decision(Verdict.ERROR, f"arbiter died during the run: {why}{ran_out}", tb)
    if obs.recycles == 0:
        how = (
            "neither on max_requests nor on SIGTERM"
            if obs.trigger == "signal"
            else f"after {obs.requests_ok} requests"
        )
        return Decision(
            Verdict.ERROR,
            f"no worker ever exited ({how}){ran_out}; raise the load or lower --max-requests",
            tb,
        )
    if obs.probes_sent == 0:
        return Decision(Verdict.ERROR, f"no new connection was tried{ran_out}", tb)
    if obs.probes_ok < obs.probes_sent:
        errors = set(obs.probe_errors)
        if obs.probes_ok == 0 or errors <= SILENT:
            what = _proxy_phrase(obs) if obs.proxy else _unanswered(obs)
            kept = "socket file kept" if obs.bind == "unix" else "TCP port bound"
            return Decision(
                Verdict.OUTAGE,
                f"{kept}, but {what} after {_restarts(obs)}: {_cause(obs)}{ran_out}",
                tb,
            )
        return Decision(  # a few resets among answers: cannot tell
            Verdict.ERROR,
            f"{'socket path kept' if obs.bind == 'unix' else 'TCP port bound'}, but "
            f"{_unanswered(obs)} even when retried{ran_out}",
            tb,
        )
    kept = "socket kept" if obs.bind == "unix" else "kept serving on TCP (no socket file to lose)"
    return Decision(Verdict.PASS, f"{kept} through {_restarts(obs)}; {_served(obs)}", tb)

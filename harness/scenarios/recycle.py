"""What socket-loss and keeps-serving share: the report's bottle app on the threaded worker
(``threads > 1`` picks gthread, as in the report's config.py) with a small ``max_requests``,
so keep-alive load recycles every worker within a second (else a graceful SIGTERM to each);
then *fresh* connections are the evidence, each judged against the app's healthy answer.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.host.processes import Cancel
from harness.host.proxy import status_counts
from harness.host.wrk import Wrk, WrkError, url_for
from harness.model.verdict import last_line, plural
from harness.scenarios.case import BOTTLE_APP
from harness.scenarios.fixture import ServerFixture
from harness.scenarios.server import PROBE_TIMEOUT, Server, served

REASONS = {
    "502": "502 Bad Gateway",
    "503": "503 Service Unavailable",
    "504": "504 Gateway Timeout",
}

# The report's config.py, scaled for speed: 5 workers x 5 threads x 512 max_requests
# becomes 3 x 5 x 16, so every worker recycles within about a second of load.
DEFAULTS = {"workers": 3, "threads": 5, "max_requests": 16}
#: both cases' metadata
SETTINGS = {**DEFAULTS, "keepalive": 2, "timeout": 30, "backlog": 2048}
APP = BOTTLE_APP
APP_NAME = "bottle Hello World (the report's web.py)"
REQUIRES = ["bottle"]
HONOURS = ("load", "trigger")
#: Probe results that mean the path itself turns new connections away.
REFUSALS = frozenset({"ENOENT", "ECONNREFUSED"})
#: Probe results that mean nobody answered: the server accepted (or not) and went quiet.
SILENT = frozenset({"timeout", "ECONNREFUSED", "empty response"})
CONCURRENCY = 8
PROBES = 20
PARAMETERS = {"probes": PROBES}


@dataclass(frozen=True)
class Observation:
    """Facts gathered by one run."""

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
    probes_ok: int = 0  # given the app's healthy answer (as it answered before the load)
    probe_errors: tuple[str, ...] = ()  # the others: "ENOENT", "timeout", "HTTP 502" ...
    probe_answers: tuple[str, ...] = ()  # served, but not 200: "HTTP 404" (--path)
    arbiter_alive: bool = True
    arbiter_exit: str = ""
    ran_out: str = ""  # the phase the run's deadline cut short, if any
    traceback: str = ""
    error_lines: tuple[str, ...] = ()  # the arbiter's own error lines
    worker_class: str | None = None
    gthread_expected: bool = False  # auto with threads > 1: gthread, where the release has it
    bind: str = "unix"  # "tcp": no socket file, so only pass/outage/error can come of it
    proxy: str | None = None  # "h2o" or "nginx" in front: probes and load went through it
    load_statuses: dict[str, int] | None = None
    wrk: dict[str, Any] | None = None  # --load wrk: wrk's summary (WrkSummary.as_json)


def observe(fixture: ServerFixture) -> Observation:
    """Make every worker exit (load, else SIGTERM), let them be replaced, probe afresh."""
    server, o = fixture.server, fixture.options
    cancel, deadline = fixture._cancel, fixture._deadline  # the run's own bounds
    obs: dict[str, Any] = {"booted": True, "proxy": o.proxy}
    until = deadline - (2 * PROBE_TIMEOUT + 1.0)  # the rest is kept for the probes
    gone_at = _recycle(server, o, obs, until, cancel)
    # fresh connections, after the replacements booted (or clearly will not)
    _settle(server, min(time.monotonic() + 3.0, until), cancel)
    cancel.raise_if_set()
    obs.update(
        recycles=recycles(server),
        path_present=server.listening(),
        path_gone_after_recycle=gone_at,
    )
    results = fresh_connections(server, PROBES, deadline, cancel, o.path)
    cancel.raise_if_set()
    if len(results) < PROBES and not obs.get("ran_out"):
        obs["ran_out"] = "probes"
    proxied, healthy = server.proxy is not None, server.healthy
    answers = [r for r in results if served(r, proxied, healthy)]
    obs["probes_sent"], obs["probes_ok"] = len(results), len(answers)
    obs["probe_errors"] = tuple(r for r in results if not served(r, proxied, healthy))
    obs["probe_answers"] = tuple(r for r in answers if r != "ok")
    obs["arbiter_alive"] = server.alive()
    if not obs["arbiter_alive"]:
        obs["arbiter_exit"] = server.exit_status()
    return _finish(server, obs)


def _recycle(
    server: Server, o: Any, obs: dict[str, Any], until: float, cancel: Cancel
) -> int | None:
    """Load until every worker recycled on max_requests, else SIGTERM each; the restart
    after which the socket file was gone, if it went."""
    gone_at: int | None = None
    if o.trigger in ("auto", "max-requests"):
        if o.load == "wrk":
            gone_at, ran_out = _wrk_load(server, o.path, obs, until, cancel)
        else:
            with KeepAliveLoad(server, CONCURRENCY, o.path) as load:
                gone_at, ran_out = _until_recycled(server, lambda: load.ok, until, cancel)
            obs["requests_ok"], obs["requests_failed"] = load.ok, load.failed
            obs["load_statuses"] = dict(load.statuses)
        if ran_out:
            obs["ran_out"] = "load (waiting for workers to recycle on max_requests)"
    if recycles(server) == 0 and o.trigger in ("auto", "signal"):
        obs["trigger"] = "signal"
        obs.pop("ran_out", None)
        gone_at, ran_out = _signal_each(server, until, cancel)
        if ran_out:
            obs["ran_out"] = "signal (waiting for a worker to exit on SIGTERM)"
    elif o.trigger == "signal":
        obs["trigger"] = "signal"
    return gone_at


def _wrk_load(
    server: Server, path: str, obs: dict[str, Any], until: float, cancel: Cancel
) -> tuple[int | None, bool]:
    """The report's own load (``wrk -t10 -c200`` at the front) until every worker recycled."""
    try:
        load = Wrk(url_for(server.front, path), until - time.monotonic())
        with load:
            gone_at, ran_out = _until_recycled(server, lambda: 0, until, cancel)
            summary = load.stop()
    except WrkError as exc:
        obs["wrk"] = {"error": str(exc)}
        return None, False
    obs["wrk"] = summary.as_json()
    obs["requests_ok"] = max(0, summary.requests - summary.non_2xx_3xx)
    obs["requests_failed"] = summary.failed
    return gone_at, ran_out


def _until_recycled(
    server: Server, answered: Callable[[], int], until: float, cancel: Cancel
) -> tuple[int | None, bool]:
    """Load until every worker recycled once, the path vanished, or it is hopeless."""
    max_requests = server.setting("max_requests", DEFAULTS["max_requests"]) or 1
    workers = server.workers
    gone_at: int | None = None
    grace_until: float | None = None
    all_gone_since: float | None = None
    while time.monotonic() < until:
        cancel.raise_if_set()
        log = server.log
        log.refresh()
        done = recycles(server)
        if gone_at is None and done > 0 and not server.listening():
            gone_at = done
            # let a second worker exit: its traceback is the evidence (5 s: under a CPU
            # hog 2 s passed with none, the live workers slow to reach max_requests)
            grace_until = time.monotonic() + 5.0
        if not server.alive():
            return gone_at, False
        if grace_until is not None and (time.monotonic() > grace_until or log.exits >= 2):
            return gone_at, False
        if gone_at is None and done >= workers:
            return gone_at, False
        if done == 0 and answered() > 10 * workers * max_requests:
            return gone_at, False  # ten times what should recycle every worker: it never will
        if log.exits >= workers and not log.worker_pids:  # every worker gone, none booted
            all_gone_since = all_gone_since or time.monotonic()
            if time.monotonic() - all_gone_since > 1.0:
                return gone_at, False
        time.sleep(0.005)
    return gone_at, True


def _signal_each(server: Server, until: float, cancel: Cancel) -> tuple[int | None, bool]:
    """Graceful SIGTERM to each worker in turn; wait for it to exit (and be replaced)."""
    gone_at: int | None = None
    for pid in list(server.log.worker_pids)[: server.workers]:
        server.signal(signal.SIGTERM, pid)
        exits = server.log.exits
        while time.monotonic() < until:
            cancel.raise_if_set()
            server.log.refresh()
            if server.log.exits > exits or not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.01)
        else:
            return gone_at, True
        if gone_at is None and not server.listening():
            gone_at = max(1, recycles(server))
            break
    return gone_at, False


def _settle(server: Server, until: float, cancel: Cancel) -> None:
    """Wait for replacements to boot; stop early when they clearly will not."""
    quiet_since = time.monotonic()
    boots = server.log.boots
    while time.monotonic() < until and server.alive() and not cancel.is_set():
        server.log.refresh()
        log = server.log
        if log.boots >= server.workers + recycles(server) or not server.listening():
            return
        if log.boots != boots:
            boots, quiet_since = log.boots, time.monotonic()
        elif not log.worker_pids and time.monotonic() - quiet_since > 1.0:
            return  # every worker exited and none booted for a second
        time.sleep(0.02)


def _finish(server: Server, obs: dict[str, Any]) -> Observation:
    """What the log says, added to what the run saw."""
    server.log.refresh()
    obs["workers"], obs["worker_class"] = server.workers, server.log.worker_class
    spec = server.spec  # auto with threads > 1 asks for gthread (which 19.0 added)
    threads = spec.settings.get("threads", spec.defaults.get("threads", 1))
    obs["gthread_expected"] = not spec.settings.get("worker_class") and threads > 1
    obs["bind"] = server.spec.bind
    obs["traceback"] = server.scrub(server.log.last_traceback())
    obs["boots"], obs["exits"] = server.log.boots, server.log.exits
    obs["error_lines"] = tuple(server.scrub(e) for e in server.log.errors())
    return Observation(**obs)


class KeepAliveLoad:
    """Keep-alive load (a reset while a worker recycles is normal), one requests session per
    thread; ``ok`` counts what the app answered (not a proxy's gateway error)."""

    def __init__(self, server: Server, concurrency: int, path: str = "/") -> None:
        self.server, self.healthy = server, server.healthy
        self.url = server.url + path.lstrip("/")
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

        proxied = self.server.proxy is not None
        with self.server.client() as session:
            while not self.stop.is_set():
                try:
                    status = str(session.get(self.url, timeout=PROBE_TIMEOUT).status_code)
                except requests.RequestException as exc:
                    status = type(exc).__name__  # a reset keep-alive connection, a vanished path
                ok = served(status, proxied, self.healthy)
                with self._lock:
                    self.statuses[status] += 1
                    if ok:
                        self.ok += 1
                    else:
                        self.failed += 1
                if not ok:
                    self.stop.wait(0.01)

    def __enter__(self) -> KeepAliveLoad:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            if t.is_alive():
                t.join(timeout=PROBE_TIMEOUT + 0.5)


def fresh_connection(server: Server, path: str = "/", attempts: int = 3) -> str:
    """A probe that tells a refused path from a hiccup: a refusal, a timeout or an HTTP
    status is final; a reset may be a worker recycling, so it is tried again first."""
    result = server.probe(PROBE_TIMEOUT, path, server.healthy)
    for _ in range(attempts - 1):
        if result == "ok" or result in REFUSALS or result in SILENT or result.startswith("HTTP"):
            break
        time.sleep(0.05)
        result = server.probe(PROBE_TIMEOUT, path, server.healthy)
    return result


def fresh_connections(
    server: Server, n: int, until: float, cancel: Cancel, path: str = "/"
) -> list[str]:
    """``n`` fresh connections; once one is slow, the rest go at once (in parallel)."""
    results: list[str] = []
    while len(results) < n:
        if time.monotonic() + PROBE_TIMEOUT > until and results:
            break
        cancel.raise_if_set()
        t0 = time.monotonic()
        r = fresh_connection(server, path)
        results.append(r)
        if r == "timeout" or time.monotonic() - t0 > 0.5:
            with ThreadPoolExecutor(max_workers=n - len(results) or 1) as pool:
                results += list(
                    pool.map(
                        lambda _: server.probe(PROBE_TIMEOUT, path, server.healthy),
                        range(n - len(results)),
                    )
                )
    return results


def facts(obs: Observation) -> dict[str, Any]:
    """The row's facts: how workers were ended, what the fresh connections got by status,
    what wrk or the proxy counted."""
    out: dict[str, Any] = {"trigger": obs.trigger, "statuses": statuses(obs)}
    if obs.wrk is not None:
        out["wrk"] = obs.wrk
    if obs.proxy:
        out["proxy_statuses"] = statuses(obs)
        out["proxy_load_statuses"] = obs.load_statuses or {}
    return out


def recycles(server: Server) -> int:
    """Worker restarts so far: exits logged, or boots beyond the first generation."""
    log = server.log
    return max(log.exits, log.boots - server.workers)


def restarts(obs: Observation) -> str:
    how = " (SIGTERM to each worker)" if obs.trigger == "signal" else ""
    return f"{plural(obs.recycles, 'worker restart')}{how}"


def cause(obs: Observation) -> str:
    """Why a server that kept its socket file stopped answering, from its log."""
    replaced = max(0, obs.boots - obs.workers)
    out = f"{obs.exits} worker exit(s), {replaced} worker(s) booted again"
    if obs.error_lines:
        out += "; log: " + "; ".join(repr(e) for e in obs.error_lines)
    elif obs.traceback:
        out += f"; worker traceback: {last_line(obs.traceback)}"
    return out


def statuses(obs: Observation) -> dict[str, int]:
    """What the fresh requests got (through the proxy, when one is in front): {"502": 20}."""
    plain_ok = ("ok",) * (obs.probes_ok - len(obs.probe_answers))
    return status_counts(
        "200" if r == "ok" else r.replace("HTTP ", "")
        for r in plain_ok + obs.probe_answers + obs.probe_errors
    )


def unanswered(obs: Observation) -> str:
    failed = obs.probes_sent - obs.probes_ok
    kinds = sorted(set(obs.probe_errors))
    if kinds == ["timeout"]:
        return (
            f"no answer within {PROBE_TIMEOUT:g} s to {failed}/{obs.probes_sent} fresh connections"
        )
    return f"{failed}/{obs.probes_sent} fresh connections not served ({', '.join(kinds)})"


def wrk_phrase(obs: Observation) -> str:
    """The evidence's suffix under ``--load wrk``: what wrk itself counted."""
    w = obs.wrk
    if w is None:
        return ""
    if "error" in w:
        return f"; wrk: {w['error']}"
    errors = sum(w["socket_errors"].values())
    return f"; wrk: {w['requests']} requests, {w['non_2xx_3xx']} non-2xx, {errors} socket errors"


def ran_out(obs: Observation) -> str:
    """The evidence's suffix when the run's limit cut a phase short."""
    return f"; the run's time limit ran out during {obs.ran_out}" if obs.ran_out else ""

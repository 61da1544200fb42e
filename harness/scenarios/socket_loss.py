"""#1298: the gthread worker unlinks its Unix socket on exit (fail = the socket file is gone)

The run and the metadata are ``recycle``'s; these are the rules (``rules``).
"""

from __future__ import annotations

from harness.model.verdict import Axis, Decision, Verdict, last_line, ordinal
from harness.scenarios import recycle
from harness.scenarios.recycle import (  # noqa: F401  (the case's metadata and observe)
    APP,
    APP_NAME,
    HONOURS,
    PARAMETERS,
    REQUIRES,
    SETTINGS,
    Observation,
    facts,
    observe,
)

NAME = "socket-loss"
TRACKER = 1298  # the OSV record's REPORT reference
TITLE = "Gunicorn #1298 socket loss: bisection report"

#: the second question its table answers
AXES = (
    Axis(
        "outage",
        Verdict.PASS,
        Verdict.OUTAGE,
        "serves",
        "outage",
        label="another problem than #1298: stops serving after worker restarts",
    ),
)


def _proxy_phrase(obs: Observation) -> str:
    """The report's own symptom: "h2o answered 502 Bad Gateway to 20/20 requests"."""
    counts = recycle.statuses(obs)
    top = max(counts, key=lambda k: counts[k]) if counts else "?"
    what = recycle.REASONS.get(top, top)
    rest = [f"{recycle.REASONS.get(k, k)} x{n}" for k, n in counts.items() if k != top]
    extra = f" ({', '.join(rest)})" if rest else ""
    return f"{obs.proxy} answered {what} to {counts.get(top, 0)}/{obs.probes_sent} requests{extra}"


def _served(obs: Observation) -> str:
    if obs.proxy:
        return _proxy_phrase(obs)
    return f"{obs.probes_ok}/{obs.probes_sent} new connections served"


#: auto with threads > 1 ran another worker: the release has no gthread (19.0 added it)
NO_GTHREAD = "not applicable: #1298 is gthread's; no gthread worker in this release (19.0 added it)"


def decide(obs: Observation) -> Decision:
    """``rules``, once gthread ran where it was asked for (not before 19.0: an error)."""
    if obs.booted and obs.gthread_expected and obs.worker_class != "gthread":
        ran = obs.worker_class or "a worker its log does not name"
        return Decision(Verdict.ERROR, f"{NO_GTHREAD}: threads > 1 ran {ran}", obs.traceback)
    return rules(obs)


def rules(obs: Observation) -> Decision:
    """The #1298 rules, most specific first.  fail: the socket file gone after a worker exit,
    the arbiter alive; outage: the file stays but fresh connections go unanswered or are
    refused (another problem); pass: every fresh connection served after restarts; error:
    not exercised.  Only fresh connections count (a keep-alive reset while a worker
    recycles is normal), and a reset is retried before it does."""
    tb = obs.traceback
    cut = recycle.ran_out(obs) + recycle.wrk_phrase(obs)
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
        return Decision(Verdict.FAIL, detail + recycle.wrk_phrase(obs), tb)
    if not obs.arbiter_alive:
        why = obs.arbiter_exit or "exited"
        return Decision(Verdict.ERROR, f"arbiter died during the run: {why}{cut}", tb)
    if obs.recycles == 0:
        how = (
            "neither on max_requests nor on SIGTERM"
            if obs.trigger == "signal"
            else f"after {obs.requests_ok} requests"
        )
        return Decision(
            Verdict.ERROR,
            f"no worker ever exited ({how}){cut}; raise the load or lower --max-requests",
            tb,
        )
    if obs.probes_sent == 0:
        return Decision(Verdict.ERROR, f"no new connection was tried{cut}", tb)
    if obs.probes_ok < obs.probes_sent:
        errors = set(obs.probe_errors)
        if obs.probes_ok == 0 or errors <= recycle.SILENT:
            what = _proxy_phrase(obs) if obs.proxy else recycle.unanswered(obs)
            kept = "socket file kept" if obs.bind == "unix" else "TCP port bound"
            return Decision(
                Verdict.OUTAGE,
                f"{kept}, but {what} after {recycle.restarts(obs)}: {recycle.cause(obs)}{cut}",
                tb,
            )
        return Decision(  # a few resets among answers: cannot tell
            Verdict.ERROR,
            f"{'socket path kept' if obs.bind == 'unix' else 'TCP port bound'}, but "
            f"{recycle.unanswered(obs)} even when retried{cut}",
            tb,
        )
    kept = "socket kept" if obs.bind == "unix" else "kept serving on TCP (no socket file to lose)"
    detail = f"{kept} through {recycle.restarts(obs)}; {_served(obs)}"
    return Decision(Verdict.PASS, detail + recycle.wrk_phrase(obs), tb)

"""fail whenever the server stops answering new connections after its workers restart, any cause

The run of socket-loss (``recycle``), judged more broadly: any cause (the socket file
gone, workers never replaced, requests that hang), named from the log in the evidence.
"""

from __future__ import annotations

from harness.model.verdict import Decision, Verdict
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

NAME = "keeps-serving"
TITLE = "Gunicorn keeps serving after worker restarts: bisection report"


def decide(obs: Observation) -> Decision:
    """fail: stopped serving after restarts (any cause); pass: every fresh connection served."""
    tb = obs.traceback
    cut = recycle.ran_out(obs)
    if not obs.booted:
        reason = obs.boot_error or "server never listened"
        return Decision(Verdict.ERROR, f"server did not start: {reason}", tb)
    if obs.recycles == 0:
        return Decision(
            Verdict.ERROR,
            f"no worker ever exited{cut}; raise the load or lower --max-requests",
            tb,
        )
    if obs.probes_sent == 0:
        return Decision(Verdict.ERROR, f"no new connection was tried{cut}", tb)
    if obs.probes_ok == obs.probes_sent and obs.path_present and obs.arbiter_alive:
        return Decision(
            Verdict.PASS,
            f"kept serving through {recycle.restarts(obs)}; "
            f"{obs.probes_ok}/{obs.probes_sent} new connections served",
            tb,
        )
    if not obs.path_present:
        why = "the socket file is gone"
    elif not obs.arbiter_alive:
        why = f"the arbiter died ({obs.arbiter_exit or 'exited'})"
    else:
        why = recycle.cause(obs)
    if obs.probes_ok == obs.probes_sent:  # answered, but the file or the arbiter is gone
        what = f"{obs.probes_ok}/{obs.probes_sent} new connections served"
    else:
        what = recycle.unanswered(obs)
    return Decision(
        Verdict.FAIL,
        f"stopped serving after {recycle.restarts(obs)}: {what}; cause: {why}{cut}",
        tb,
    )

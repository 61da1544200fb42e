"""keeps-serving: the same server, app and load as socket-loss, judged more broadly.

``fail`` whenever the server stops answering new connections after its workers
restart, whatever the cause (the socket file gone, workers that exit and are never
replaced, requests that hang), with the cause from the log in the evidence; ``pass``
only when the path still serves every fresh connection.
"""

from __future__ import annotations

from harness.model.verdict import Axis, Decision, Verdict
from harness.scenarios.base import Options, register
from harness.scenarios.socket_loss import Observation, SocketLoss, _cause, _restarts, _unanswered


@register(
    "keeps-serving",
    "fail whenever the server stops answering new connections after its workers restart, any cause",
)
class KeepsServing(SocketLoss):
    title = "Gunicorn keeps serving after worker restarts: bisection report"

    @classmethod
    def from_options(cls, options: Options) -> KeepsServing:
        return cls(options)

    def axes(self) -> list[Axis]:
        return [self.primary_axis()]

    def decide(self, obs: Observation) -> Decision:
        return decide(obs)


def decide(obs: Observation) -> Decision:
    """fail: stopped serving after restarts (any cause); pass: every fresh connection
    served; error: never booted, or no worker ever exited."""
    tb = obs.traceback
    ran_out = f"; the run's time limit ran out during {obs.ran_out}" if obs.ran_out else ""
    if not obs.booted:
        reason = obs.boot_error or "server never listened"
        return Decision(Verdict.ERROR, f"server did not start: {reason}", tb)
    if obs.recycles == 0:
        return Decision(
            Verdict.ERROR,
            f"no worker ever exited{ran_out}; raise the load or lower --max-requests",
            tb,
        )
    if obs.probes_sent == 0:
        return Decision(Verdict.ERROR, f"no new connection was tried{ran_out}", tb)
    if obs.probes_ok == obs.probes_sent and obs.path_present and obs.arbiter_alive:
        return Decision(
            Verdict.PASS,
            f"kept serving through {_restarts(obs)}; "
            f"{obs.probes_ok}/{obs.probes_sent} new connections served",
            tb,
        )
    if not obs.path_present:
        cause = "the socket file is gone"
    elif not obs.arbiter_alive:
        cause = f"the arbiter died ({obs.arbiter_exit or 'exited'})"
    else:
        cause = _cause(obs)
    if obs.probes_ok == obs.probes_sent:  # answered, but the file or the arbiter is gone
        what = f"{obs.probes_ok}/{obs.probes_sent} new connections served"
    else:
        what = _unanswered(obs)
    return Decision(
        Verdict.FAIL,
        f"stopped serving after {_restarts(obs)}: {what}; cause: {cause}{ran_out}",
        tb,
    )

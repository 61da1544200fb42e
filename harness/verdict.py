"""From observations of one scenario run to a verdict, with the evidence that backs it.

Pure: no I/O.  The scenario module observes; this module decides.  Keeping the
rules here means one place says what "fail" means, and unit tests pin it down.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

#: Probe failures that mean the path itself turns new connections away: the bug's mark.
REFUSALS = frozenset({"ENOENT", "ECONNREFUSED"})


class Verdict(str, enum.Enum):
    """What a target did.  ``error`` means *cannot tell*, never pass or fail."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    FLAKY = "flaky"

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value

    @property
    def testable(self) -> bool:
        """Only pass and fail say something about the bug; bisection skips the rest."""
        return self in (Verdict.PASS, Verdict.FAIL)


@dataclass(frozen=True)
class Observation:
    """Facts gathered by one run of the socket-loss scenario (see scenarios/socket_loss)."""

    booted: bool
    boot_error: str = ""
    workers: int = 0
    recycles: int = 0
    requests_ok: int = 0
    requests_failed: int = 0
    path_present: bool = True
    path_gone_after_recycle: int | None = None
    probes_sent: int = 0
    probes_ok: int = 0
    probe_errors: tuple[str, ...] = ()
    arbiter_alive: bool = True
    arbiter_exit: str = ""
    timed_out: bool = False
    traceback: str = ""
    compat_used: bool = False
    duration: float = 0.0
    boot_seconds: float = 0.0


@dataclass(frozen=True)
class Outcome:
    """A verdict and its one-line evidence (plus a longer traceback when there is one)."""

    verdict: Verdict
    detail: str
    traceback: str = ""
    compat_used: bool = False
    runs: tuple[Verdict, ...] = field(default_factory=tuple)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def decide(obs: Observation) -> Outcome:
    """Apply the rules, most specific first.

    - error: the scenario could not be exercised (never booted, timed out before any
      worker recycled, the arbiter died, no worker ever recycled);
    - fail: after a worker exit, the socket path is gone or refuses new connections
      while the arbiter is alive;
    - pass: workers recycled and the path still accepts every new connection.
    A reset of a keep-alive connection while a worker recycles is not evidence: only
    fresh connections to the path count.
    """
    extra = {"traceback": obs.traceback, "compat_used": obs.compat_used}
    if not obs.booted:
        reason = obs.boot_error or "server never listened on the socket"
        return Outcome(Verdict.ERROR, f"server did not start: {reason}", **extra)
    refused = [e for e in obs.probe_errors if e in REFUSALS]
    broken = (not obs.path_present) or bool(refused)
    if obs.recycles > 0 and broken and obs.arbiter_alive:
        if not obs.path_present:
            nth = obs.path_gone_after_recycle or obs.recycles
            when = "after the 1st" if nth == 1 else f"by the {_ordinal(nth)}"
            what = f"socket file gone {when} worker restart"
        else:
            kinds = ", ".join(sorted(set(refused)))
            what = f"socket path refuses new connections after a worker restart ({kinds})"
        detail = f"{what}; {obs.probes_ok}/{obs.probes_sent} new connections served"
        if obs.traceback:
            detail += f"; worker traceback: {_last_line(obs.traceback)}"
        return Outcome(Verdict.FAIL, detail, **extra)
    if not obs.arbiter_alive:
        why = obs.arbiter_exit or "exited"
        return Outcome(Verdict.ERROR, f"arbiter died during the run: {why}", **extra)
    if obs.recycles == 0:
        why = "timed out" if obs.timed_out else "load finished"
        return Outcome(
            Verdict.ERROR,
            f"no worker ever recycled ({why} after {obs.requests_ok} requests); "
            "raise the load or lower --max-requests",
            **extra,
        )
    if obs.probes_ok < obs.probes_sent:  # resets or timeouts, not refusals: cannot tell
        kinds = ", ".join(sorted(set(obs.probe_errors)))
        return Outcome(
            Verdict.ERROR,
            f"socket path kept, but {obs.probes_sent - obs.probes_ok}/{obs.probes_sent} new "
            f"connections were not served ({kinds}) even when retried",
            **extra,
        )
    if obs.probes_sent == 0:
        return Outcome(Verdict.ERROR, "no new connection was tried after the restarts", **extra)
    detail = (
        f"socket kept through {_plural(obs.recycles, 'worker restart')}; "
        f"{obs.probes_ok}/{obs.probes_sent} new connections served"
    )
    return Outcome(Verdict.PASS, detail, **extra)


def combine(outcomes: Sequence[Outcome]) -> Outcome:
    """Several runs of one target: agreement keeps the verdict, disagreement is ``flaky``.

    Any disagreement, an ``error`` among passes included, makes the target untestable
    for bisection: a verdict we rely on must repeat.
    """
    if not outcomes:
        raise ValueError("combine() needs at least one outcome")
    verdicts = tuple(o.verdict for o in outcomes)
    compat = any(o.compat_used for o in outcomes)
    if len(set(verdicts)) == 1:
        first = outcomes[0]
        detail = (
            first.detail
            if len(outcomes) == 1
            else f"{first.detail} (same in {len(outcomes)}/{len(outcomes)} runs)"
        )
        return Outcome(first.verdict, detail, first.traceback, compat, verdicts)
    counts = Counter(v.value for v in verdicts)
    summary = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    sample = next((o for o in outcomes if o.verdict is Verdict.FAIL), outcomes[0])
    return Outcome(
        Verdict.FLAKY,
        f"verdicts disagree over {len(outcomes)} runs: {summary}; e.g. {sample.detail}",
        sample.traceback,
        compat,
        verdicts,
    )

"""#3648: the arbiter leaks fds and threads (its control socket) on every SIGHUP.

Tracker: gunicorn #3648, fixed by PR #3651 (merge a8283bbf), which says "since 25.1.0" (the
control socket's release).  Issue 19's runs: arbiter fds 12 -> 36, threads 2 -> 8 over 5
SIGHUPs on 25.2.0 and 26.0.0; flat on 25.1.0, 26.1.0, 27.0.1.  Our runs (4 workers, 5
SIGHUPs): 25.0.0 and 25.1.0 flat (12 fds, 2 threads); 25.2.0 12 -> 39 / 2 -> 9, 26.0.0
12 -> 28 / 2 -> 6; 26.1.0 flat.  Bisected with the clone: introduced by d3f80e8c
"fix(ctl): prevent fork deadlock and file watcher triggers" (PR #3520, 25.2.0), fixed by
05fb3bcb (PR #3651): "since 25.1.0" is one release early.  With 1 worker nothing leaks (no
back-to-back forks), hence 4.  Every server gets a private ``control_socket``.
"""

from __future__ import annotations

from typing import Any

TRACKER = 3648
SETTINGS = {"workers": 4}  # forks back to back on reload: the race the fix names
BIND = "unix"
RELEASES = (
    "25.0.0..latest",
    "the control socket came in 25.1.0",
)  # where bench/known_regressions.py runs it
HUPS = 5  # the tracker's count; a leak grows on most of them
ENOUGH = 2  # reloads that must complete for a verdict
MARGIN = 6.0  # seconds the run must have left to start another reload (a leaking
# release stalls 2 s per stuck thread in each reload: fewer SIGHUPs fit in --timeout)


def observe(server: Any) -> dict[str, Any]:
    """The arbiter's fds and threads before and after HUPS reloads."""
    server.settle(0.5)
    before = server.counts()
    reloaded, stalled = 0, ""
    while reloaded < HUPS and server.remaining() > MARGIN:
        gen = server.reload(timeout=server.remaining() - MARGIN / 2)
        if not gen.ok:
            stalled = f"{len(gen.new)} new worker(s) after {gen.seconds:g} s"
            break
        reloaded += 1
    server.settle(0.5)
    after = server.counts()
    return {
        "hups": HUPS,
        "reloaded": reloaded,
        "stalled": stalled,
        "before": before.as_dict() if before else None,
        "after": after.as_dict() if after else None,
    }


def decide(obs: dict[str, Any]) -> tuple[str, str]:
    """fail: the arbiter kept a thread or two fds more; pass: both flat.  The leak is a race
    (a fork before the control thread is up) that need not grow on every SIGHUP."""
    before, after, hups = obs["before"], obs["after"], obs["reloaded"]
    if before is None or after is None:
        return "error", "the arbiter is gone"
    if hups < ENOUGH:
        why = obs.get("stalled") or "the run's time was up"
        return "error", f"reload {hups + 1}: no whole new generation of workers ({why})"
    shown = (
        f"arbiter fds {before['fds']} -> {after['fds']}, "
        f"threads {before['threads']} -> {after['threads']} over {hups} SIGHUPs"
    )
    grew = after["fds"] - before["fds"] >= 2 or after["threads"] > before["threads"]
    return ("fail" if grew else "pass"), shown

"""A worker killed with -9 is reaped and replaced, and no zombie stays behind.

No single issue: a guard for the arbiter's SIGCHLD handling, which 24.0.0 broke (dead
workers not reaped or replaced).  Our runs: 19.9.0, 20.1.0, 22.0.0, 23.0.0, 24.1.0, 25.0.0,
26.1.0, 27.0.1 pass; 24.0.0 fails ("kill 1: the worker was not reaped (a zombie)").
Bisected with the clone: introduced by b650332c ("Arbiter signal handling improvements
(#3441)"), fixed by 3179789f ("fix: handle SIGCLD alias for SIGCHLD on Linux", Fix #3453).
"""

from __future__ import annotations

import signal
from typing import Any

SETTINGS = {"workers": 2}
BIND = "unix"
RELEASES = (
    "23.0.0..latest",
    "the releases around the SIGCHLD rewrite; 19.0.0..latest with socket-loss is in results/affected-versions.md, and this range keeps the whole file within 15 min",
)  # where bench/known_regressions.py runs it
KILLS = 3  # one after the other: each must be reaped and replaced
SERVED = 5  # fresh requests afterwards


def observe(server: Any) -> dict[str, Any]:
    """Kill KILLS workers with SIGKILL in turn, then probe the server."""
    kills = []
    for _ in range(KILLS):
        r = server.kill_worker(signal.SIGKILL, timeout=min(10.0, server.remaining() / 2))
        kills.append(
            {
                "victim": r.victim,
                "reaped": r.reaped,
                "replaced": bool(r.replaced_by),
                "seconds": r.seconds,
                "zombies": r.zombies,
            }
        )
        if not r.replaced_by:
            break
    probes = [server.probe(timeout=2.0) for _ in range(SERVED)]
    return {"kills": kills, "probes": probes, "alive": server.alive()}


def decide(obs: dict[str, Any]) -> tuple[str, str]:
    """fail: a killed worker not reaped or not replaced, a zombie, or no service after."""
    kills = obs["kills"]
    if not kills or not kills[0]["victim"]:
        return "error", "no booted worker to kill"
    if not obs["alive"]:
        return "fail", f"the arbiter died after {len(kills)} worker kill(s)"
    for n, k in enumerate(kills, 1):
        if not k["reaped"]:
            return "fail", f"kill {n}: the worker was not reaped (a zombie)"
        if not k["replaced"]:
            return "fail", f"kill {n}: the worker was reaped but not replaced"
    zombies = max(k["zombies"] for k in kills)
    if zombies:
        return "fail", f"{zombies} zombie child(ren) of the arbiter after a kill -9"
    served = obs["probes"].count("ok")
    if served < len(obs["probes"]):
        bad = sorted(set(obs["probes"]) - {"ok"})
        return "fail", f"{served}/{len(obs['probes'])} served after the kills ({', '.join(bad)})"
    slowest = max(k["seconds"] for k in kills)
    return (
        "pass",
        f"{len(kills)} workers killed -9: each reaped and replaced (slowest {slowest:.1f} s), "
        f"no zombie; {served}/{served} served",
    )

"""#3394: requests fail while the arbiter reloads its gthread workers on SIGHUP.

Tracker: gunicorn #3394 (open upstream), no commit named; issue 19's runs: 0 of ~2,400
requests failed across 3 SIGHUPs on 20.1.0, 4-5 on 21.0.0 and 23.0.0, 0 on 25.0.0, 26.1.0
and 27.0.1.  Our runs (2 gthread workers x 4 threads, 8 clients, 5 SIGHUPs): 20.1.0 0 of
~4,000-7,000 failed; 21.0.0, 22.0.0, 23.0.0 8-11 (ECONNRESET, a few EPIPE); 24.0.0, 24.1.0,
25.0.0, 26.1.0, 27.0.1 none.  Bisected with the clone: the drops start at 0ebb73aa
("gthread: only read sockets when they are readable") or its merge a423fca8 (PR #2918;
0ebb73aa alone deadlocks at boot) and stop at 01862114 ("gthread: Lock-free
PollableMethodQueue refactoring", PR #3440, in 24.0.0).

Racy, sized so the verdicts hold: a bad release loses ~2 connections per SIGHUP (~10 in
all, never 0 in our runs), a good one none; five SIGHUPs make a false pass need five lucky
reloads, MIN_REQUESTS keeps a starved load from passing.  ``--repeat 5`` on 20.1.0, 21.0.0,
23.0.0, 25.0.0 and ``--repeat 20`` on 20.1.0, 21.0.0 agreed every time.
"""

from __future__ import annotations

from typing import Any

TIMEOUT = 40  # a release that also leaks on reload (#3648: 25.2.0-26.0.0) needs more than 20 s for 5 reloads
TRACKER = 3394
SETTINGS = {"worker_class": "gthread", "workers": 2, "threads": 4}
BIND = "unix"
RELEASES = (
    "20.1.0..latest",
    "gthread's reload path as the tracker tests it (20.1.0 is the last good release)",
)  # where bench/known_regressions.py runs it
HUPS = 5
CLIENTS = 8  # fresh connections, one request each, back to back
GAP = 0.5  # seconds of load between reloads
MIN_REQUESTS = 300  # fewer answered than this: the load did not run, no verdict


def observe(server: Any) -> dict[str, Any]:
    """Requests on fresh connections through HUPS reloads: answered, and failed by kind."""
    reloaded = 0
    with server.load(clients=CLIENTS, timeout=5.0) as load:
        server.settle(GAP)
        for _ in range(HUPS):
            if not server.reload(timeout=min(15.0, server.remaining() - 2)).ok:
                break
            reloaded += 1
            server.settle(GAP)
    return {"hups": HUPS, "reloaded": reloaded, "ok": load.result.ok, "failed": load.result.failed}


def decide(obs: dict[str, Any]) -> tuple[str, str]:
    """fail: any request failed while the workers reloaded; pass: none did."""
    failed = sum(obs["failed"].values())
    total = obs["ok"] + failed
    if obs["reloaded"] < obs["hups"]:
        return (
            "error",
            f"reload {obs['reloaded'] + 1} of {obs['hups']}: no new generation of workers",
        )
    if total < MIN_REQUESTS:
        return "error", f"only {total} requests ran during {obs['hups']} reloads"
    shown = f"{failed} of {total} requests failed across {obs['hups']} SIGHUPs"
    if failed:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(obs["failed"].items()))
        return "fail", f"{shown} ({kinds})"
    return "pass", shown

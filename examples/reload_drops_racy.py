"""#3394's reload drops made racy on purpose: one SIGHUP, one client that pauses.

``harness/catalogue/reload_drops.py`` is sized so its verdicts hold run after run (five
reloads under eight clients: a bad release never came out clean; even one client that
never pauses loses a request to each old worker).  Here the one client waits ``PAUSE``
seconds between requests, so a bad release drops one only when a request happens to
be in flight as its workers are replaced: one run proves nothing, the case
``--confidence`` is for.  The rule is the catalogue's: any failed request is ``fail``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from harness.catalogue import reload_drops

SETTINGS = reload_drops.SETTINGS
BIND = reload_drops.BIND
HUPS = 1
PAUSE = 0.4  # seconds between one client's requests
MIN_REQUESTS = 3  # fewer answered than this: the load did not run, no verdict


def _client(server: Any, stop: threading.Event, seen: Counter) -> None:
    while not stop.is_set():
        try:
            seen[server.probe("/", 5.0)] += 1
        except BaseException:  # the run is over
            return
        time.sleep(PAUSE)


def observe(server: Any) -> dict[str, Any]:
    reloaded, stop, seen = 0, threading.Event(), Counter()
    client = threading.Thread(target=_client, args=(server, stop, seen), daemon=True)
    client.start()
    try:
        server.settle(reload_drops.GAP)
        for _ in range(HUPS):
            if not server.reload(timeout=min(15.0, server.remaining() - 2)).ok:
                break
            reloaded += 1
            server.settle(reload_drops.GAP)
    finally:
        stop.set()
        client.join(6.0)
    ok = seen.pop("ok", 0)
    return {"hups": HUPS, "reloaded": reloaded, "ok": ok, "failed": dict(seen)}


def check(server: Any) -> tuple[str, str]:
    obs = observe(server)
    failed = sum(obs["failed"].values())
    if obs["reloaded"] < HUPS:
        return "error", "the reload brought no new generation of workers"
    if obs["ok"] + failed < MIN_REQUESTS:
        return "error", f"only {obs['ok'] + failed} requests ran during the reload"
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(obs["failed"].items()))
    shown = f"{failed} of {obs['ok'] + failed} requests failed across one SIGHUP"
    return ("fail", f"{shown} ({kinds})") if failed else ("pass", shown)

"""#3025: gthread, keep-alive: a request slower than ``keepalive`` is cut off ("Bad file descriptor").

Tracker: gunicorn #3025: 21.0.x logs "Bad file descriptor" when a request outlasts
``keepalive``, 21.1.0 sends an empty reply; 20.1.0 and 21.2.0 are clean.  Caused by
e7781d2c ("gthread: consider initial connection as idle": a new connection joins the
keep-alive queue at accept and is swept while its request runs), fixed by the revert
bc905859 (PR #3033).  Our runs: 20.1.0 pass; 21.0.0 fail ("HTTP 200, ECONNRESET; the log
says: ValueError: Invalid file descriptor: -1" on Python 3.13, "Bad file descriptor" on
older ones); 21.1.0 fail (empty reply); 21.2.0 pass.  Bisected with the clone: e7781d2c
first failing, bc905859 first passing (in the mainline at f5669f64): as the tracker says.
"""

from __future__ import annotations

from typing import Any

KEEPALIVE = 1  # seconds
SLOW = 2.5  # the slow request's duration: longer than keepalive and the poll interval
APP = f"""
import time

def app(environ, start_response):
    if environ.get('PATH_INFO') == '/slow':
        time.sleep({SLOW})
    body = b'Hello World'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
"""
TRACKER = 3025
SETTINGS = {"worker_class": "gthread", "workers": 1, "threads": 4, "keepalive": KEEPALIVE}
BIND = "unix"
RELEASES = (
    "20.1.0..22.0.0",
    "the tracker's releases around 21.x (gthread keep-alive rewritten in 21.0.0)",
)  # where bench/known_regressions.py runs it
CANNOT = {
    "proxy": "it needs one kept-alive connection straight to gunicorn",
    "app": "it serves its own app (a /slow route)",
    "path": "it requests its own app's / and /slow",
}
BADF = r"Bad file descriptor|Invalid file descriptor|\[Errno 9\]"  # the worker's own words


def observe(server: Any) -> dict[str, Any]:
    """A slow request on a fresh kept-alive connection, then a fast and a slow one on it."""
    replies = server.one_connection(["/slow", "/", "/slow"], timeout=SLOW + 5)
    server.wait_for(lambda: False, 0.5)  # let the worker log what it hit
    return {
        "replies": replies,
        "badf": server.log_lines(BADF)[-1:],
        "alive": server.alive(),
    }


def decide(obs: dict[str, Any]) -> tuple[str, str]:
    """fail: a reply other than 200, or "Bad file descriptor" in the log."""
    replies = obs["replies"]
    shown = ", ".join(replies)
    if not replies:
        return "error", "no request was sent"
    if obs["badf"]:
        line = obs["badf"][0].split("] ")[-1].strip()
        return "fail", f"replies: {shown}; the log says: {line[:120]}"
    if any(r != "HTTP 200" for r in replies) or len(replies) < 3:
        return "fail", f"replies on one kept-alive connection: {shown}"
    return (
        "pass",
        f"3 requests ({SLOW:g} s, fast, {SLOW:g} s) on one connection with keepalive={KEEPALIVE}: {shown}",
    )

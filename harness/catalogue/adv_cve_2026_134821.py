"""CVE-2026-134821: the pure-Python ASGI parser buffers a line without CRLF without a limit (memory exhaustion).

Advisory: CVE-2026-134821 (VulnCheck), "Gunicorn 25.2.0 before 27.0.0 ... buffers protocol
lines without size limits ... lacking CRLF to grow worker memory"; no GHSA/PYSEC id.  Needs
the ``asgi`` worker (``SINCE``).  ``VECTORS``: 2 MiB of request line, and of one header
value, without CRLF: past every bound gunicorn's parsers keep (8190 a line; about 800 KiB a
head, where 24.x's ASGI parser refuses: 64 KiB was below it).  fail = no answer within
``WAIT`` s (still buffering); pass = refused (a 4xx, or closed while sending).  Memory is
not measured: the missing bound is what this shows.  Our runs: results/advisories.md.
"""

from __future__ import annotations

from typing import Any

from harness.catalogue import _wire

ID = "CVE-2026-134821"
ALIASES: list[str] = []
CLAIMED = {"CVE-2026-134821": [("25.2.0", "27.0.0")]}
SINCE = "24.0.0"
APP = _wire.ASGI_ECHO_APP
SETTINGS = {"workers": 1, "worker_class": "asgi"}
WAIT = 3.0  # seconds: a refusal comes at once, a buffering worker says nothing
LONG = b"a" * (2 << 20)
VECTORS = {
    "2 MiB request line without CRLF": b"GET /" + LONG,
    "2 MiB header without CRLF": b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Long: " + LONG,
}

observe = _wire.observer(VECTORS, WAIT)


def decide(obs: dict[str, Any]) -> tuple[str, str]:
    """fail: a line far past the limits, without CRLF, gets no answer (still buffered)."""
    if failed := _wire.control_failed(obs):
        return failed
    outcomes = {n: v["outcome"] for n, v in obs["vectors"].items()}
    shown = "; ".join(f"{n}: {o}" for n, o in outcomes.items())
    if any(o.startswith("no answer") for o in outcomes.values()):
        return "fail", f"no limit: a line without CRLF is buffered, not refused: {shown}"
    if all(o == "refused" for o in outcomes.values()):
        return "pass", f"control served; {shown}"
    return "error", f"an answer the case cannot read: {shown}"

"""CVE-2018-1000164: CR/LF in a response header value the app sets is sent as is (header injection).

Advisory: CVE-2018-1000164, PYSEC-2018-55 (= PYSEC-0000-CVE-2018-1000164), GHSA-32pc-xphx-q4f6,
Snyk ``[,19.5.0)``: "CWE-113 ... in process_headers ... fixed in 19.5.0"; PYSEC and GHSA:
introduced 0, fixed 19.5.0.  Tracker: gunicorn #1227.  The echo app puts the query string
into ``X-Echo``: ``GET /crlf?v=a%0d%0aX-Injected:%20yes`` fails when the response has an
``X-Injected`` header (control: ``?v=plain`` answered with ``X-Echo: plain``).
Our runs (0.9.0..27.0.1, bisected): fail 0.12.0 ... 19.4.5; pass from 19.5.0 (19.5.0-19.7.1
close the connection, 19.8.0-26.2.0 answer 400, 27.0.x 500).  Fixed by 1e10a02e 'check if
the header contains control characters' (Fix #1227).
"""

from __future__ import annotations

from typing import Any

from harness.catalogue import _wire

ID = "PYSEC-2018-55"
ALIASES = ["CVE-2018-1000164", "GHSA-32pc-xphx-q4f6"]
TRACKER = 1227
CLAIMED = {
    "PYSEC-2018-55": [("0", "19.5.0")],
    "GHSA-32pc-xphx-q4f6": [("0", "19.5.0")],
    "Snyk (pip:gunicorn)": [("0", "19.5.0")],
}
APP = _wire.ECHO_APP
SETTINGS = {"workers": 1}
CONTROL = b"GET /crlf?v=plain HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
PROBE = (
    b"GET /crlf?v=a%0d%0aX-Injected:%20yes HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
)


def observe(server: Any) -> dict[str, Any]:
    return {
        "control": _wire.seen(server.exchange(CONTROL, 5.0)),
        "probe": _wire.seen(server.exchange(PROBE, 5.0)),
    }


def _header(seen: dict[str, Any], name: str) -> str | None:
    return next((v for k, v in seen["headers"] if k.lower() == name.lower()), None)


def decide(obs: dict[str, Any]) -> tuple[str, str]:
    """fail: the CR/LF in the app's header value made a header of its own."""
    control, probe = obs["control"], obs["probe"]
    if control["status"] != 200 or _header(control, "X-Echo") != "plain":
        shown = control["line"] or control["ended"]
        return "error", f"the control (X-Echo: plain) was not served: {shown}"
    injected = _header(probe, "X-Injected")
    answer = probe["line"] or probe["ended"]
    if injected is not None:
        return "fail", f"header injection: 'X-Injected: {injected}' in the response ({answer})"
    return "pass", f"control served; the CR/LF value was not sent as a header ({answer})"

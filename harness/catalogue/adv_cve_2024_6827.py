"""CVE-2024-6827: a Transfer-Encoding the server does not validate falls back to Content-Length (TE.CL smuggling).

Advisory: CVE-2024-6827, GHSA-hc5x-x2vx-497g, PYSEC-2026-1433: "does not properly validate
the value of the 'Transfer-Encoding' header ... the default fallback method of
'Content-Length'"; GHSA: introduced 0, fixed 23.0.0; PYSEC: fixed 22.0.0.  ``VECTORS``:
``Transfer-Encoding: gzip, chunked`` (a front end reads chunked) with ``Content-Length: 4``;
fail = framed by Content-Length; pass = chunked, or refused (22.0.0: 501).
Our runs (0.9.0..27.0.1, bisected): fail 0.12.0 ... 21.2.0; pass from 22.0.0.  Fixed by
ac29c9b0 (PR #3113): PYSEC's 22.0.0 agrees, GHSA's 23.0.0 is too wide by 22.0.0.
"""

from __future__ import annotations

from harness.catalogue import _wire

ID = "PYSEC-2026-1433"
ALIASES = ["CVE-2024-6827", "GHSA-hc5x-x2vx-497g"]
CLAIMED = {
    "PYSEC-2026-1433": [("0", "22.0.0")],
    "GHSA-hc5x-x2vx-497g": [("0", "23.0.0")],
}
APP = _wire.ECHO_APP
SETTINGS = {"workers": 1}
VECTORS = {
    "TE gzip, chunked + CL": _wire.post(
        b"Content-Length: 4\r\nTransfer-Encoding: gzip, chunked\r\n"
    ),
}
BAD = {"TE gzip, chunked + CL": {"length"}}

observe = _wire.observer(VECTORS)
decide = _wire.judged(BAD, "TE.CL: Transfer-Encoding ignored, Content-Length used")

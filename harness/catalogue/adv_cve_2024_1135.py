"""CVE-2024-1135: conflicting Transfer-Encoding headers read as chunked (request smuggling).

Advisory: CVE-2024-1135, GHSA-w3h3-4rj7-4ph4, PYSEC-2026-1434 (Snyk
SNYK-PYTHON-GUNICORN-6615672): "multiple, conflicting Transfer-Encoding headers, treating
them as chunked regardless of the final encoding"; every database: introduced 0, fixed
22.0.0.  ``VECTORS``: ``Transfer-Encoding: chunked`` then ``identity`` with
``Content-Length: 4``; fail = read as chunked; pass = refused, or framed by Content-Length.
Our runs (0.9.0..27.0.1, bisected): fail 19.10.0 and 20.0.2 ... 21.2.0; every older release
frames it by Content-Length (pass).  Introduced by the 2019 fix itself (93220898 on 19.x,
f74324bd on master), fixed by ac29c9b0 (PR #3113, 22.0.0): "introduced 0" is too wide.
"""

from __future__ import annotations

from harness.catalogue import _wire

ID = "PYSEC-2026-1434"
ALIASES = ["CVE-2024-1135", "GHSA-w3h3-4rj7-4ph4"]
CLAIMED = {
    "PYSEC-2026-1434": [("0", "22.0.0")],
    "GHSA-w3h3-4rj7-4ph4": [("0", "22.0.0")],
    "Snyk SNYK-PYTHON-GUNICORN-6615672": [("0", "22.0.0")],
}
APP = _wire.ECHO_APP
SETTINGS = {"workers": 1}
VECTORS = {
    "TE chunked + TE identity + CL": _wire.post(
        b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n"
    ),
}
BAD = {"TE chunked + TE identity + CL": {"chunked"}}

observe = _wire.observer(VECTORS)
decide = _wire.judged(BAD, "smuggling: conflicting Transfer-Encoding read as chunked")

"""SNYK-PYTHON-GUNICORN-541164: TE + CL request smuggling (2019): a second Transfer-Encoding header hides chunked.

Advisory: Snyk SNYK-PYTHON-GUNICORN-541164 (and Safety), "fails to properly process the
Transfer-Encoding and Content-Length headers when both are present", affected ``[,19.10.0)
[20.0.0,20.0.1)``; no CVE, GHSA or PYSEC id.  ``VECTORS``: ``Transfer-Encoding: chunked``
then ``identity`` with ``Content-Length: 4``: a server that lets the last one win reads 4
bytes and then ``GET /smuggled``.  fail = framed by Content-Length; pass = chunked or refused.
Our runs (0.9.0..27.0.1, bisected): fail 0.12.0 ... 19.9.0 and 20.0.0; pass 19.10.0 and
20.0.2 ... 21.2.0 (chunked), 22.0.0 on (refused).  Fixed by 93220898 on the 19.x branch
("backport fix/http-desync") and f74324bd (PR #2181) on master: Snyk's ranges agree.
"""

from __future__ import annotations

from harness.catalogue import _wire

ID = "x_SNYK-PYTHON-GUNICORN-541164"
ALIASES: list[str] = []
#: each database's affected ranges, as published: [introduced, fixed) pairs
CLAIMED = {"Snyk SNYK-PYTHON-GUNICORN-541164": [("0", "19.10.0"), ("20.0.0", "20.0.1")]}
APP = _wire.ECHO_APP
SETTINGS = {"workers": 1}
VECTORS = {
    "TE chunked + TE identity + CL": _wire.post(
        b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n"
    ),
}
BAD = {"TE chunked + TE identity + CL": {"length"}}

observe = _wire.observer(VECTORS)
decide = _wire.judged(BAD, "smuggling: Content-Length won over Transfer-Encoding: chunked")
